//! What pve-restore asks of a node about guests, and the commands it runs on them.

use std::collections::HashMap;

use pvedr::error::{Error, Result};
use pvedr::pvesh;
use pvedr::transport::{CommandOutput, Hop, RemoteCommand, Transport};
use pvedr::validate;

/// A guest as `/cluster/resources` shows it.
#[derive(Debug, Clone)]
pub struct Present {
    pub node: String,
    pub gtype: String,
    pub running: bool,
    /// The HA state (`hastate` of `/cluster/resources`), when HA manages the guest.
    pub hastate: Option<String>,
}

impl Present {
    /// Whether HA manages it (pve-ha-manager `vm_is_ha_managed`: any state but `ignored`):
    /// `qm stop` then only files a request, and vzdump's stop mode refuses it.
    pub fn ha_managed(&self) -> bool {
        self.hastate.as_deref().is_some_and(|s| s != "ignored")
    }
}

/// The cluster as `/cluster/status` shows it: the node the connection lands on
/// (`local: 1`) and each node's IP (to reach it as Proxmox does, over the cluster's SSH).
#[derive(Debug, Default)]
pub struct Cluster {
    pub local: Option<String>,
    pub ips: HashMap<String, String>,
}

impl Cluster {
    /// The way to run node-local commands (`qm`, `pct`, `vzdump`, archive tests) on `node`:
    /// the connection itself when it lands there, else a hop from it.
    pub fn route<'a>(&self, t: &'a dyn Transport, node: &str) -> Result<Option<Hop<'a>>> {
        if self.local.as_deref() == Some(node) {
            return Ok(None);
        }
        let ip = self.ips.get(node).ok_or_else(|| {
            Error::Refused(format!(
                "node {node} is not in /cluster/status (offline, or not in this cluster): its guests cannot be reached"
            ))
        })?;
        Ok(Some(Hop::new(t, node, ip)))
    }
}

pub fn cluster(t: &dyn Transport) -> Result<Cluster> {
    let cmd = pvesh::get(pvesh::paths::CLUSTER_STATUS, &[]);
    let items = pvesh::parse_list(t.host(), &cmd, t.exec(&cmd)?)?;
    let bad = |what: &str, v: &str| Error::Protocol {
        host: t.host().into(),
        command: cmd.line(),
        message: format!("the node sent an invalid {what} '{}'", v.escape_debug()),
    };
    let mut c = Cluster::default();
    for m in items
        .iter()
        .filter(|m| pvesh::str_of(m, "type").as_deref() == Some("node"))
    {
        let Some(name) = pvesh::str_of(m, "name") else {
            continue;
        };
        validate::node(&name).map_err(|_| bad("node name", &name))?;
        if pvesh::bool_of(m, "local") == Some(true) {
            c.local = Some(name.clone());
        }
        if let Some(ip) =
            pvesh::str_of(m, "ip").filter(|_| pvesh::bool_of(m, "online") != Some(false))
        {
            let ok = !ip.is_empty()
                && ip.len() <= 64
                && ip
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b".:".contains(&b));
            if !ok {
                return Err(bad("IP address", &ip));
            }
            c.ips.insert(name, ip);
        }
    }
    Ok(c)
}

/// Every guest of the cluster by VMID.
pub fn resources(t: &dyn Transport) -> Result<HashMap<u64, Present>> {
    let cmd = pvesh::get(pvesh::paths::CLUSTER_RESOURCES, &["--type", "vm"]);
    let items = pvesh::parse_list(t.host(), &cmd, t.exec(&cmd)?)?;
    Ok(items
        .iter()
        .filter_map(|m| {
            Some((
                pvesh::uint_of(m, "vmid")?,
                Present {
                    node: pvesh::str_of(m, "node").unwrap_or_default(),
                    gtype: pvesh::str_of(m, "type").unwrap_or_default(),
                    running: pvesh::str_of(m, "status").as_deref() == Some("running"),
                    hastate: pvesh::str_of(m, "hastate"),
                },
            ))
        })
        .collect())
}

pub fn tool_of(lxc: bool) -> &'static str {
    if lxc { "pct" } else { "qm" }
}

pub fn argv(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

/// The restore command: `qmrestore <archive> <vmid>` but `pct restore <vmid> <archive>`.
pub fn restore_cmd(
    lxc: bool,
    archive: &str,
    target: u64,
    force: bool,
    storage: Option<&str>,
    unique: bool,
) -> Vec<String> {
    let id = target.to_string();
    let mut a = if lxc {
        argv(&["pct", "restore", &id, archive])
    } else {
        argv(&["qmrestore", archive, &id])
    };
    if force {
        a.extend(argv(&["--force", "1"]));
    }
    if let Some(s) = storage {
        a.extend(argv(&["--storage", s]));
    }
    if unique {
        a.extend(argv(&["--unique", "1"]));
    }
    a
}

/// A vzdump of the guest to come back to; keep-all=1 so that no retention deletes old
/// archives (maybe the one being restored).
pub fn safety_point_cmd(vmid: &str, storage: &str, mode: &str, note: &str) -> Vec<String> {
    argv(&[
        "vzdump",
        vmid,
        "--storage",
        storage,
        "--mode",
        mode,
        "--compress",
        "zstd",
        "--notes-template",
        note,
        "--prune-backups",
        "keep-all=1",
    ])
}

/// The volid of the backup vzdump says it made, validated like user input (it comes back
/// from the node). A file archive: `creating vzdump archive '/…/vzdump-qemu-100-….vma.zst'`
/// → `STORAGE:backup/NAME`; a PBS snapshot (pve-manager `PVE/VZDump/QemuServer.pm`,
/// pve-container `PVE/VZDump/LXC.pm`): `creating Proxmox Backup Server archive
/// 'vm/100/2026-12-01T02:00:02Z'` → `STORAGE:backup/vm/100/2026-12-01T02:00:02Z`.
pub fn safety_point_volid(stdout: &str, storage: &str) -> Option<String> {
    let quoted = |l: &str, what: &str| -> Option<String> {
        let rest = l.split(what).nth(1)?;
        Some(rest.trim_end().strip_suffix('\'')?.to_string())
    };
    let v = stdout.lines().find_map(|l| {
        if let Some(path) = quoted(l, "creating vzdump archive '") {
            let file = path.rsplit('/').next()?.to_string();
            pvedr::archive::parse(&file)?;
            return Some(format!("{storage}:backup/{file}"));
        }
        let snap = quoted(l, "creating Proxmox Backup Server archive '")?;
        pbs_snapshot(&snap).then(|| format!("{storage}:backup/{snap}"))
    })?;
    validate::volid(&v).ok()?;
    Some(v)
}

/// `vm|ct/VMID/YYYY-MM-DDTHH:MM:SSZ`.
fn pbs_snapshot(s: &str) -> bool {
    let mut parts = s.split('/');
    let ok = matches!(parts.next(), Some("vm" | "ct"))
        && parts.next().is_some_and(|id| validate::vmid(id).is_ok())
        && parts.next().is_some_and(|t| {
            chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%SZ").is_ok()
        });
    ok && parts.next().is_none()
}

/// The storage of a container's root file system in a config (`rootfs: STORAGE:VOLUME,…`).
pub fn rootfs_storage(config: &str) -> Option<String> {
    let v = config
        .lines()
        .find_map(|l| l.strip_prefix("rootfs:"))?
        .trim();
    let (sid, rest) = v.split_once(':')?;
    (!rest.is_empty() && validate::storage_id(sid).is_ok()).then(|| sid.to_string())
}

/// `pvesm extractconfig VOLID`: the guest config inside a backup (pve-storage
/// `src/PVE/CLI/pvesm.pm` `extractconfig`).
pub fn archive_config(
    t: &dyn Transport,
    volid: &str,
) -> Result<std::result::Result<String, String>> {
    read_text(t, &["pvesm", "extractconfig", volid])
}

/// A read-only command's output as text: `Ok(Err(why))` when it failed on the node.
fn read_text(t: &dyn Transport, a: &[&str]) -> Result<std::result::Result<String, String>> {
    let out = t.exec(&RemoteCommand::read(argv(a)))?;
    Ok(if out.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(status_line(&out))
    })
}

/// The last line of a failed command's stderr, or its status.
pub fn status_line(out: &CommandOutput) -> String {
    // vzdump (and other workers run by the CLI) log `ERROR: …` on stdout and leave only a
    // summary ("job errors") on stderr: the ERROR line says what went wrong.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let error = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("ERROR:").map(str::trim));
    let e = out.stderr.trim();
    match (error, e.lines().last()) {
        (Some(x), _) => pvedr::msg::visible(x),
        (None, Some(last)) => last.to_string(),
        (None, None) => format!("exit status {}", out.status),
    }
}

/// `qm|pct config VMID`: `Ok(Err(why))` when the command failed on the node.
pub fn config(
    t: &dyn Transport,
    lxc: bool,
    vmid: u64,
) -> Result<std::result::Result<String, String>> {
    read_text(t, &[tool_of(lxc), "config", &vmid.to_string()])
}

/// `protection: 1`: Proxmox refuses to restore over the guest (pve-guest-common
/// `AbstractConfig.pm` `check_protection`, called by qemu-server's and pve-container's
/// restore before anything is replaced).
pub fn protected(config: &str) -> bool {
    config
        .lines()
        .filter_map(|l| l.strip_prefix("protection:"))
        .any(|v| v.trim() == "1")
}

pub fn lock_of(config: &str) -> Option<String> {
    config
        .lines()
        .find_map(|l| l.strip_prefix("lock:").map(|v| v.trim().to_string()))
}

/// `netN` lines of a config whose link is up, as (key, value).
pub fn links_up(config: &str) -> Vec<(String, String)> {
    config
        .lines()
        .filter_map(|line| {
            let (k, v) = line.split_once(':')?;
            let k = k.trim();
            let is_net =
                k.len() > 3 && k.starts_with("net") && k[3..].bytes().all(|c| c.is_ascii_digit());
            (is_net && !v.contains("link_down=1")).then(|| (k.to_string(), v.trim().to_string()))
        })
        .collect()
}

/// One restore per target VMID at a time (on this machine, for this host).
pub fn lock_target(host: &str, port: u16, vmid: u64) -> Result<nix::fcntl::Flock<std::fs::File>> {
    let dir = std::env::var_os("XDG_RUNTIME_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let path = dir.join(format!("pvedr-restore-{host}-{port}-{vmid}.lock"));
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(|_| {
        Error::Refused(format!(
            "another pve-restore is working on VMID {vmid} ({})",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safety_point_from_vzdump_output() {
        let out = "INFO: starting new backup job\nINFO: creating vzdump archive '/var/lib/vz/dump/vzdump-qemu-100-2024_01_15-03_00_00.vma.zst'\n";
        assert_eq!(
            safety_point_volid(out, "local").as_deref(),
            Some("local:backup/vzdump-qemu-100-2024_01_15-03_00_00.vma.zst")
        );
        let evil = "INFO: creating vzdump archive '/x/vzdump-qemu-100-2024_01_15-03_00_00.vma.zst;rm -rf /'\n";
        assert_eq!(safety_point_volid(evil, "local"), None);
        let pbs = "INFO: creating Proxmox Backup Server archive 'vm/100/2026-12-01T02:00:02Z'\n";
        assert_eq!(
            safety_point_volid(pbs, "pbs").as_deref(),
            Some("pbs:backup/vm/100/2026-12-01T02:00:02Z")
        );
        let bad = "INFO: creating Proxmox Backup Server archive 'vm/100/$(reboot)'\n";
        assert_eq!(safety_point_volid(bad, "pbs"), None);
    }

    #[test]
    fn rootfs() {
        assert_eq!(
            rootfs_storage("arch: amd64\nrootfs: local-lvm:vm-101-disk-0,size=8G\n").as_deref(),
            Some("local-lvm")
        );
        assert_eq!(rootfs_storage("rootfs: /srv/ct101\n"), None);
        assert_eq!(rootfs_storage("rootfs: bad;id:x\n"), None);
    }

    #[test]
    fn links() {
        let c =
            "net0: virtio=AA,bridge=vmbr0\nnet1: virtio=BB,bridge=vmbr1,link_down=1\nnetwork: x\n";
        assert_eq!(
            links_up(c),
            [("net0".to_string(), "virtio=AA,bridge=vmbr0".to_string())]
        );
    }
}
