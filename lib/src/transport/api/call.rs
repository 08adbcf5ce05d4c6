//! The Proxmox commands pvedr runs, as the REST calls that do the same.
//!
//! Each CLI is a thin wrapper over an API method (pve-manager `PVE/CLI/*.pm`, qemu-server
//! `PVE/CLI/qm.pm` and `qmrestore.pm`, pve-container `PVE/CLI/pct.pm`: `qmrestore` is
//! `POST /nodes/N/qemu` with `archive`, `pct restore` is `POST /nodes/N/lxc` with
//! `ostemplate` and `restore=1`, `vzdump` is `POST /nodes/N/vzdump`, `pvesm extractconfig`
//! is `GET /nodes/N/vzdump/extractconfig`). What has no API method (reading an archive's
//! bytes, `vma verify`, `zstd -t`, `pct exec`) is refused: it needs SSH or `--dir`.

use crate::access::Need;
use crate::validate;

/// What `POST …/agent/ping` asks (qemu-server `src/PVE/API2/Qemu/Agent.pm`
/// `register_command`: the command's `VM.GuestAgent.Audit`, or `VM.GuestAgent.Unrestricted`;
/// PVE 9 has no `VM.Monitor`).
pub const AGENT_PING: &[&str] = &["VM.GuestAgent.Audit", "VM.GuestAgent.Unrestricted"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

/// How the answer's `data` becomes the output the CLI would have printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Render {
    /// `pvesh … --output-format json`: the data as JSON.
    Json,
    /// A string as it is (`pvesm extractconfig`).
    Text,
    /// One field of an object (`pvesm path` from the volume's attributes).
    Field(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub method: Method,
    /// Under `/api2/json`, its segments percent-encoded.
    pub path: String,
    pub params: Vec<(String, String)>,
    pub render: Render,
    /// What Proxmox checks, for a diagnosis when it answers a bare "Permission check failed".
    pub needs: Vec<Need>,
}

/// Why a command has no API form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoApi(pub String);

/// The call for `argv`, run on `node` (the node a node-local CLI would run on).
pub fn translate(argv: &[String], node: &str) -> Result<Call, NoApi> {
    let a: Vec<&str> = argv.iter().map(String::as_str).collect();
    let no = || NoApi(crate::shell::join(argv));
    match a.as_slice() {
        ["pvesh", method, path, rest @ ..] => pvesh(method, path, rest).ok_or_else(no),
        ["qmrestore", archive, vmid, rest @ ..] => {
            let vmid = id(vmid).ok_or_else(no)?;
            let mut params = vec![kv("vmid", vmid), kv("archive", archive)];
            params.extend(options(rest).ok_or_else(no)?);
            let needs = vec![Need::vm(vmid, &["VM.Allocate"])];
            worker(Method::Post, &format!("/nodes/{node}/qemu"), params, needs).ok_or_else(no)
        }
        ["pct", "restore", vmid, archive, rest @ ..] => {
            let vmid = id(vmid).ok_or_else(no)?;
            let mut params = vec![
                kv("vmid", vmid),
                kv("ostemplate", archive),
                kv("restore", 1),
            ];
            params.extend(options(rest).ok_or_else(no)?);
            let needs = vec![Need::vm(vmid, &["VM.Allocate"])];
            worker(Method::Post, &format!("/nodes/{node}/lxc"), params, needs).ok_or_else(no)
        }
        ["vzdump", vmid, rest @ ..] => {
            let vmid = id(vmid).ok_or_else(no)?;
            let mut params = vec![kv("vmid", vmid)];
            params.extend(options(rest).ok_or_else(no)?);
            let needs = vec![Need::vm(vmid, &["VM.Backup"])];
            worker(
                Method::Post,
                &format!("/nodes/{node}/vzdump"),
                params,
                needs,
            )
            .ok_or_else(no)
        }
        // `qm guest cmd VMID ping` (qemu-server `PVE/CLI/qm.pm`): the VMID comes after `cmd`.
        ["qm", "guest", "cmd", vmid, "ping"] => {
            let vmid = id(vmid).ok_or_else(no)?;
            let path = format!("/nodes/{node}/qemu/{vmid}/agent/ping");
            let needs = vec![Need::vm(vmid, AGENT_PING)];
            worker(Method::Post, &path, Vec::new(), needs).ok_or_else(no)
        }
        // `qm disk move VMID DISK STORAGE` (qemu-server `API2/Qemu.pm` `move_vm_disk`:
        // VM.Config.Disk on the VM, Datastore.AllocateSpace on the storage).
        ["qm", "disk", "move", vmid, disk, storage, rest @ ..]
            if validate::storage_id(storage).is_ok() =>
        {
            let vmid = id(vmid).ok_or_else(no)?;
            let mut params = vec![kv("disk", disk), kv("storage", storage)];
            params.extend(options(rest).ok_or_else(no)?);
            let needs = vec![
                Need::vm(vmid, &["VM.Config.Disk"]),
                Need::storage(storage, &["Datastore.AllocateSpace"]),
            ];
            let path = format!("/nodes/{node}/qemu/{vmid}/move_disk");
            worker(Method::Post, &path, params, needs).ok_or_else(no)
        }
        [tool @ ("qm" | "pct"), verb, vmid, rest @ ..] => {
            let kind = if *tool == "qm" { "qemu" } else { "lxc" };
            let vmid = id(vmid).ok_or_else(no)?;
            guest(kind, verb, vmid, rest, node).ok_or_else(no)
        }
        ["pvesm", "extractconfig", volid] if validate::volid(volid).is_ok() => Ok(Call {
            method: Method::Get,
            path: api_path(&format!("/nodes/{node}/vzdump/extractconfig")).ok_or_else(no)?,
            params: vec![kv("volume", volid)],
            render: Render::Text,
            needs: Vec::new(),
        }),
        ["pvesm", verb @ ("path" | "free"), volid] if validate::volid(volid).is_ok() => {
            let (sid, _) = volid.split_once(':').ok_or_else(no)?;
            let path = format!("/nodes/{node}/storage/{sid}/content/{volid}");
            if *verb == "path" {
                get(&path, Vec::new(), Render::Field("path"))
            } else {
                worker(Method::Delete, &path, Vec::new(), Vec::new())
            }
            .ok_or_else(no)
        }
        _ => Err(no()),
    }
}

/// `pvesh get|create|set|delete PATH [--key value]…`, `--output-format` dropped.
fn pvesh(method: &str, path: &str, rest: &[&str]) -> Option<Call> {
    let method = match method {
        "get" | "ls" => Method::Get,
        "create" => Method::Post,
        "set" => Method::Put,
        "delete" => Method::Delete,
        _ => return None,
    };
    let params: Vec<(String, String)> = options(rest)?
        .into_iter()
        .filter(|(k, _)| k != "output-format")
        .collect();
    Some(Call {
        method,
        path: api_path(path)?,
        params,
        render: Render::Json,
        needs: Vec::new(),
    })
}

/// `qm|pct VERB VMID …` on the guest's node.
fn guest(kind: &str, verb: &str, vmid: u64, rest: &[&str], node: &str) -> Option<Call> {
    let base = format!("/nodes/{node}/{kind}/{vmid}");
    // Each change on the guest needs one of `privs` on it.
    let on_vm = |method, path: &str, params, privs: &'static [&'static str]| {
        worker(method, path, params, vec![Need::vm(vmid, privs)])
    };
    let snap = &["VM.Snapshot"];
    // A snapshot name is one path segment: no `/`, no `..`.
    let named = |name: &str| validate::snapshot_name(name).is_ok();
    match (verb, rest) {
        ("set", opts) => {
            let path = format!("{base}/config");
            on_vm(Method::Put, &path, options(opts)?, &["VM.Config.Options"])
        }
        (action @ ("start" | "stop" | "shutdown" | "reboot" | "suspend" | "resume"), opts) => {
            let path = format!("{base}/status/{action}");
            on_vm(Method::Post, &path, options(opts)?, &["VM.PowerMgmt"])
        }
        ("destroy", opts) => on_vm(Method::Delete, &base, options(opts)?, &["VM.Allocate"]),
        ("snapshot", [name, opts @ ..]) => {
            let mut params = vec![kv("snapname", name)];
            params.extend(options(opts)?);
            on_vm(Method::Post, &format!("{base}/snapshot"), params, snap)
        }
        ("delsnapshot", [name, opts @ ..]) if named(name) => {
            let path = format!("{base}/snapshot/{name}");
            on_vm(Method::Delete, &path, options(opts)?, snap)
        }
        ("rollback", [name, opts @ ..]) if named(name) => {
            let path = format!("{base}/snapshot/{name}/rollback");
            // qemu-server `API2/Qemu.pm`, pve-container `API2/LXC/Snapshot.pm` `rollback`:
            // either privilege.
            let mut needs = vec![Need::vm(vmid, &["VM.Snapshot", "VM.Snapshot.Rollback"])];
            let params = options(opts)?;
            // `start` also needs VM.PowerMgmt (qemu-server checks it before the worker).
            if params.iter().any(|(k, v)| k == "start" && v == "1") {
                needs.push(Need::vm(vmid, &["VM.PowerMgmt"]));
            }
            worker(Method::Post, &path, params, needs)
        }
        _ => None,
    }
}

/// A read; `None` when the path has an empty, `.` or `..` segment.
fn get(path: &str, params: Vec<(String, String)>, render: Render) -> Option<Call> {
    Some(Call {
        method: Method::Get,
        path: api_path(path)?,
        params,
        render,
        needs: Vec::new(),
    })
}

/// A change (its answer may be a UPID to follow); `None` as for [`get`].
fn worker(
    method: Method,
    path: &str,
    params: Vec<(String, String)>,
    needs: Vec<Need>,
) -> Option<Call> {
    Some(Call {
        method,
        path: api_path(path)?,
        params,
        render: Render::Json,
        needs,
    })
}

fn kv(k: &str, v: impl ToString) -> (String, String) {
    (k.to_string(), v.to_string())
}

fn id(s: &str) -> Option<u64> {
    validate::vmid(s).ok()
}

/// `--key value` pairs (a bare `--flag` is `1`), as the Proxmox CLIs read them; a stray
/// positional makes the command untranslatable.
fn options(rest: &[&str]) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        let key = rest[i].strip_prefix("--")?;
        if let Some((k, v)) = key.split_once('=') {
            out.push(kv(k, v));
        } else if let Some(v) = rest.get(i + 1).filter(|v| !v.starts_with("--")) {
            out.push(kv(key, v));
            i += 1;
        } else {
            out.push(kv(key, 1));
        }
        i += 1;
    }
    Some(out)
}

/// A pvesh path as an API path. A volume id after `…/content/` is one segment, slashes
/// and all (pve-storage `API2/Storage/Content.pm`: `{volume}`).
fn api_path(path: &str) -> Option<String> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let joined;
    let parts: Vec<&str> = match parts.as_slice() {
        ["nodes", n, "storage", s, "content", volid @ ..] if volid.len() > 1 => {
            joined = volid.join("/");
            vec!["nodes", n, "storage", s, "content", joined.as_str()]
        }
        _ => parts,
    };
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return None;
    }
    Some(parts.iter().map(|p| format!("/{}", seg(p))).collect())
}

/// Percent-encodes all but RFC 3986's unreserved characters.
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(a: &[&str]) -> Call {
        let argv: Vec<String> = a.iter().map(|s| s.to_string()).collect();
        translate(&argv, "pve2").expect("translates")
    }

    #[test]
    fn pvesh_paths_and_volids() {
        let c = t(&[
            "pvesh",
            "get",
            "/nodes/pve1/storage/nas/content",
            "--content",
            "backup",
            "--output-format",
            "json",
        ]);
        assert_eq!(c.method, Method::Get);
        assert_eq!(c.path, "/nodes/pve1/storage/nas/content");
        assert_eq!(c.params, vec![kv("content", "backup")]);
        let c = t(&[
            "pvesh",
            "delete",
            "/nodes/pve1/storage/nas/content/nas:backup/vzdump-qemu-100-2024_01_01-00_00_00.vma.zst",
        ]);
        assert_eq!(
            c.path,
            "/nodes/pve1/storage/nas/content/nas%3Abackup%2Fvzdump-qemu-100-2024_01_01-00_00_00.vma.zst"
        );
    }

    #[test]
    fn node_local_commands_go_to_the_node() {
        let c = t(&[
            "qmrestore",
            "nas:backup/x.vma.zst",
            "9100",
            "--storage",
            "local-lvm",
        ]);
        assert_eq!(
            (c.method, c.path.as_str()),
            (Method::Post, "/nodes/pve2/qemu")
        );
        assert_eq!(
            c.params,
            vec![
                kv("vmid", 9100),
                kv("archive", "nas:backup/x.vma.zst"),
                kv("storage", "local-lvm")
            ]
        );
        let c = t(&[
            "pct",
            "restore",
            "200",
            "nas:backup/y.tar.zst",
            "--force",
            "1",
        ]);
        assert_eq!(c.path, "/nodes/pve2/lxc");
        assert!(c.params.contains(&kv("ostemplate", "nas:backup/y.tar.zst")));
        assert!(c.params.contains(&kv("restore", 1)));
        let c = t(&["qm", "stop", "100", "--skiplock"]);
        assert_eq!(c.path, "/nodes/pve2/qemu/100/status/stop");
        assert_eq!(c.params, vec![kv("skiplock", 1)]);
        assert_eq!(
            t(&["qm", "delsnapshot", "100", "auto-1"]).path,
            "/nodes/pve2/qemu/100/snapshot/auto-1"
        );
    }

    #[test]
    fn privileges_are_those_proxmox_checks() {
        let any = |c: Call| c.needs[0].any_of.clone();
        assert_eq!(
            any(t(&["qm", "rollback", "100", "s1"])),
            ["VM.Snapshot", "VM.Snapshot.Rollback"]
        );
        assert_eq!(
            any(t(&["qm", "guest", "cmd", "100", "ping"])),
            ["VM.GuestAgent.Audit", "VM.GuestAgent.Unrestricted"]
        );
    }

    #[test]
    fn what_needs_a_shell_is_refused() {
        for a in [
            &["vma", "verify", "/x.vma"][..],
            &["zstd", "-q", "-t", "--", "/x.zst"],
            &["cat", "--", "/x"],
            &["pct", "exec", "200", "--", "true"],
            // Reads go as `pvesh get`: the CLI's text is never rendered.
            &["qm", "config", "100"],
            &["pct", "status", "200"],
            &["qm", "listsnapshot", "100"],
            &["qm", "delsnapshot", "100", "a/../../x"],
            &["qm", "rollback", "100", ".."],
            &["pvesh", "get", "/nodes/../x"],
            &["qmrestore", "a", "not-a-vmid"],
        ] {
            let argv: Vec<String> = a.iter().map(|s| s.to_string()).collect();
            assert!(translate(&argv, "pve1").is_err(), "{a:?}");
        }
    }
}
