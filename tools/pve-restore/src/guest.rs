//! What pve-restore asks of a node about guests, and the commands it runs on them.

use std::collections::HashMap;

use pvedr::error::{Error, Result};
use pvedr::pve::config::Disk;
use pvedr::pve::{Answer, At, Client, GuestConfig, Kind, Resource};
use pvedr::pvesh;
use pvedr::transport::{CommandOutput, RemoteCommand, Transport};
use pvedr::validate;

/// Every guest of the cluster by VMID, as `/cluster/resources` shows it.
pub fn resources(t: &dyn Transport) -> Result<HashMap<u64, Resource>> {
    let found = Client::new(t).vm_resources()?;
    Ok(found.into_iter().map(|r| (r.vmid, r)).collect())
}

/// The node a guest is on (none for a guest Proxmox lists without one: empty, which no
/// node command accepts).
pub fn node_of(g: &Resource) -> &str {
    g.node.as_deref().unwrap_or_default()
}

/// The nodes a backup can be restored on: its storage enabled there (`enabled` of
/// `/nodes/N/storage`: pve-storage `Storage.pm` `storage_check_enabled`, storage.cfg `nodes`)
/// and, unless the storage is shared, the archive on that node's own copy of it.
pub struct ArchiveNodes {
    pub nodes: Vec<String>,
    pub shared: bool,
}

pub fn archive_nodes(
    t: &dyn Transport,
    nodes: &[String],
    storage: &str,
    volid: &str,
) -> Result<ArchiveNodes> {
    let mut found = ArchiveNodes {
        nodes: Vec::new(),
        shared: false,
    };
    for n in nodes {
        let items = Client::new(t).storages(n)?;
        // Listed is not enabled: storage.cfg `nodes` without n still lists it, `enabled: 0`.
        let Some(s) = items.iter().find(|s| s.storage == storage && s.enabled) else {
            continue;
        };
        found.shared |= s.shared;
        let here = pvesh::get(&pvesh::paths::content(n, storage, volid), &[]);
        if found.shared || t.exec(&here)?.success() {
            found.nodes.push(n.clone());
        }
    }
    Ok(found)
}

/// HA's requested state of a resource (`vm:100`), from `/cluster/ha/resources`
/// (pve-ha-manager `src/PVE/API2/HA/Resources.pm` `index`): `None` when HA has no such
/// resource; a resource without `state` is `started` (`src/PVE/HA/Config.pm`
/// `service_check_ha_state`). `hastate` of `/cluster/resources` is the manager's runtime
/// state, not this.
pub fn ha_requested(t: &dyn Transport, sid: &str) -> Result<Option<String>> {
    let items = Client::new(t).ha_resources()?;
    Ok(items
        .iter()
        .find(|m| pvesh::str_of(m, "sid").as_deref() == Some(sid))
        .map(|m| pvesh::str_of(m, "state").unwrap_or_else(|| "started".into())))
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
/// `lockwait` (minutes) bounds its wait for the node's vzdump lock (pve-manager
/// `PVE/VZDump.pm` `getlock`), three hours by default, while the guest may be stopped.
pub fn safety_point_cmd(
    vmid: &str,
    storage: &str,
    mode: &str,
    note: &str,
    lockwait: u64,
) -> Vec<String> {
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
        "--lockwait",
        &lockwait.to_string(),
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

/// `pvesm extractconfig VOLID`: the guest config inside a backup, a config file's text
/// (pve-storage `src/PVE/CLI/pvesm.pm` `extractconfig`; over the API the same text as a
/// string, pve-manager `PVE/API2/VZDump.pm` `extractconfig`). `Ok(Err(why))` when the node
/// refused.
pub fn archive_config(t: &dyn Transport, volid: &str, lxc: bool) -> Result<Answer<GuestConfig>> {
    let out = t.exec(&extractconfig_cmd(volid))?;
    Ok(config_text(&out).map(|text| GuestConfig::from_text(Kind::of_lxc(lxc), &text)))
}

/// `pvesm extractconfig VOLID`, the read [`archive_config`] makes.
pub fn extractconfig_cmd(volid: &str) -> RemoteCommand {
    RemoteCommand::read(argv(&["pvesm", "extractconfig", volid]))
}

/// The config text `pvesm extractconfig` printed, or why it printed none.
pub fn config_text(out: &CommandOutput) -> Answer<String> {
    match out.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        false => Err(status_line(out)),
    }
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

/// Where a guest's API paths are.
pub fn at(node: &str, lxc: bool, vmid: u64) -> At<'_> {
    At {
        node,
        kind: Kind::of_lxc(lxc),
        vmid,
    }
}

/// A guest's config (`pvesh get …/config`): `Ok(Err(why))` when the node refused.
pub fn config(t: &dyn Transport, node: &str, lxc: bool, vmid: u64) -> Result<Answer<GuestConfig>> {
    Client::new(t).guest_config(at(node, lxc, vmid))
}

/// A volume of a guest's config: its key (`mp0`, `unused1`, `scsi1`) and volume ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub key: String,
    pub volume: String,
}

impl Volume {
    fn of(d: &Disk) -> Volume {
        Volume {
            key: d.key.clone(),
            volume: d.source.clone(),
        }
    }

    pub fn json(list: &[Volume]) -> serde_json::Value {
        list.iter()
            .map(|v| serde_json::json!({"key": v.key, "volume": v.volume}))
            .collect()
    }

    /// `mp0 (local-lvm:vm-101-disk-1), unused0 (…)`, made printable.
    pub fn list(list: &[Volume]) -> String {
        let each: Vec<String> = list
            .iter()
            .map(|v| format!("{} ({})", v.key, pvedr::msg::visible(&v.volume)))
            .collect();
        each.join(", ")
    }
}

/// Whether a volume name belongs to another guest (`vm-N-…`, `subvol-N-…`, `base-N-…`,
/// `N/…`): Proxmox does not free those (pve-container `delete_mountpoint_volume`).
fn owned_by_other(vol: &str, vmid: u64) -> bool {
    let name = vol.split_once(':').map_or(vol, |(_, n)| n);
    let file = name.rsplit('/').next().unwrap_or(name);
    let owner = ["vm-", "subvol-", "base-"]
        .iter()
        .find_map(|p| file.strip_prefix(p))
        .and_then(|r| r.split('-').next())
        .or_else(|| name.split_once('/').map(|(d, _)| d))
        .and_then(|n| n.parse::<u64>().ok());
    owner.is_some_and(|o| o != vmid)
}

/// What a restore over container `vmid` erases that its backup cannot bring back: volume
/// mount points without `backup=1` (never in the archive: pve-container
/// `src/PVE/LXC/Config.pm` `mountpoint_backup_enabled`) and `unusedN` volumes. The restore
/// re-creates the backup's mount points empty and `destroy_lxc_container` frees every
/// volume of the old config (`include_unused`). Bind and device mount points are kept.
pub fn ct_unbacked(config: &GuestConfig, vmid: u64) -> Vec<Volume> {
    let mounts = config
        .disks
        .iter()
        .filter(|d| d.key != "rootfs" && d.is_volume() && !d.backup)
        .map(Volume::of);
    let unused = config
        .unused
        .iter()
        .filter(|u| stored(&u.volume))
        .map(|u| Volume {
            key: u.key.clone(),
            volume: u.volume.clone(),
        });
    mounts
        .chain(unused)
        .filter(|v| !owned_by_other(&v.volume, vmid))
        .collect()
}

/// `STORAGE:NAME`, not a path or `none`.
fn stored(vol: &str) -> bool {
    !vol.starts_with('/')
        && vol
            .split_once(':')
            .is_some_and(|(s, n)| !s.is_empty() && !n.is_empty())
}

/// The disks of a VM with `backup=0`: a restore keeps their volumes but not their place
/// in the config, they come back detached as `unusedN` (qemu-server `QemuServer.pm`:
/// `restore_update_config_line` comments their line out, `$restore_cleanup_oldconf` frees
/// only the disks the archive holds, `rescan` adds the others as unused).
pub fn vm_detached(config: &GuestConfig) -> Vec<Volume> {
    config
        .disks
        .iter()
        .filter(|d| d.is_volume() && !d.backup)
        .map(Volume::of)
        .collect()
}

/// The UPID of a vzdump task running on `node` (`pvesh get /nodes/N/tasks --source active
/// --typefilter vzdump`, pve-manager `PVE/API2/Tasks.pm` `node_tasks`): it holds the node's
/// vzdump lock, which a safety point would wait for.
pub fn active_vzdump(t: &dyn Transport, node: &str) -> Result<Option<String>> {
    let tasks = Client::new(t).active_tasks(node, "vzdump")?;
    Ok(tasks
        .into_iter()
        .find(|task| task.task_type.as_deref() == Some("vzdump"))
        .map(|task| task.upid.unwrap_or_else(|| "?".into())))
}

/// The names of a guest's snapshots (`current` left out), from
/// `pvesh get /nodes/N/{qemu,lxc}/V/snapshot`.
pub fn snapshots(t: &dyn Transport, node: &str, lxc: bool, vmid: u64) -> Result<Vec<String>> {
    let mut names: Vec<String> = snapshot_list(t, node, lxc, vmid)?
        .into_iter()
        .map(|s| s.name)
        .collect();
    names.sort();
    Ok(names)
}

/// A snapshot of a guest as its list shows it.
#[derive(Debug, Clone)]
pub struct Snap {
    pub name: String,
    /// When it was taken (`snaptime`, 0 when unknown).
    pub snaptime: i64,
    /// Whether it holds the VM's RAM: a rollback to it starts the VM.
    pub vmstate: bool,
}

/// The snapshots of a guest, without the "You are here!" entry `current`.
pub fn snapshot_list(t: &dyn Transport, node: &str, lxc: bool, vmid: u64) -> Result<Vec<Snap>> {
    let list = Client::new(t).snapshots(at(node, lxc, vmid))?;
    Ok(list
        .into_iter()
        .filter(|s| !s.is_current())
        .map(|s| Snap {
            name: s.name,
            snaptime: s.snaptime.unwrap_or(0),
            vmstate: s.vmstate,
        })
        .collect())
}

/// Each storage's type on `node` (`/nodes/N/storage`: `zfspool`, `dir`, …).
pub fn storage_types(t: &dyn Transport, node: &str) -> Result<HashMap<String, String>> {
    let items = Client::new(t).storages(node)?;
    Ok(items
        .into_iter()
        .map(|s| (s.storage, s.storage_type))
        .collect())
}

/// The storage volumes of a guest's disks (a VM's drives but CD-ROMs, a container's root
/// file system and mount points; no bind mounts or devices).
pub fn disks(config: &GuestConfig) -> Vec<Volume> {
    config
        .disks
        .iter()
        .filter(|d| d.is_volume())
        .map(Volume::of)
        .collect()
}

/// The nets of a config whose link is up, as (key, value with `link_down=1` set).
pub fn links_up(config: &GuestConfig) -> Vec<(String, String)> {
    config
        .nets
        .iter()
        .filter(|n| !n.link_down)
        .map(|n| (n.key.clone(), n.with_link_down()))
        .collect()
}

/// Whether a failed restore's message says guest `vmid` exists: the only sign Proxmox
/// gives (pve-cluster `PVE/Cluster.pm` `check_vmid_unused`: `VM|CT <vmid> already exists
/// on node '<node>'`, which qemu-server `API2/Qemu.pm` `create_vm` prefixes with `unable
/// to restore VM <vmid> -`), read here once into a failure kind.
pub fn exists_msg(message: &str, vmid: u64) -> bool {
    ["VM", "CT"]
        .iter()
        .any(|k| message.contains(&format!("{k} {vmid} already exists on node '")))
}

/// Where restore and scratch locks live: `$XDG_RUNTIME_DIR`, else the temporary directory.
pub fn lock_dir() -> std::path::PathBuf {
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
}

/// One restore per target VMID at a time (on this machine, for this host).
pub fn lock_target(host: &str, port: u16, vmid: u64) -> Result<nix::fcntl::Flock<std::fs::File>> {
    let path = lock_dir().join(format!("pvedr-restore-{host}-{port}-{vmid}.lock"));
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
        // (vzdump's output, the storage, the safety point's volid): a path or PBS name
        // that is not a plain one gives none.
        let cases = [
            (
                "INFO: starting new backup job\nINFO: creating vzdump archive '/var/lib/vz/dump/vzdump-qemu-100-2024_01_15-03_00_00.vma.zst'\n",
                "local",
                Some("local:backup/vzdump-qemu-100-2024_01_15-03_00_00.vma.zst"),
            ),
            (
                "INFO: creating vzdump archive '/x/vzdump-qemu-100-2024_01_15-03_00_00.vma.zst;rm -rf /'\n",
                "local",
                None,
            ),
            (
                "INFO: creating Proxmox Backup Server archive 'vm/100/2026-12-01T02:00:02Z'\n",
                "pbs",
                Some("pbs:backup/vm/100/2026-12-01T02:00:02Z"),
            ),
            (
                "INFO: creating Proxmox Backup Server archive 'vm/100/$(reboot)'\n",
                "pbs",
                None,
            ),
        ];
        for (out, storage, want) in cases {
            assert_eq!(safety_point_volid(out, storage).as_deref(), want, "{out}");
        }
    }

    #[test]
    fn what_an_overwrite_loses() {
        let ct = "rootfs: local-lvm:vm-101-disk-0,size=8G\nmp0: local-lvm:vm-101-disk-1,mp=/a\n\
                  mp1: /mnt/x,mp=/b\nmp2: local-lvm:vm-101-disk-2,mp=/c,backup=1\n\
                  mp3: volume=nas:101/vm-101-disk-3.raw,mp=/d,backup=0\nmp4: local-lvm:vm-200-disk-0,mp=/e\n\
                  unused0: local-lvm:vm-101-disk-4\nmpx: local-lvm:vm-101-disk-5\n";
        let ct = GuestConfig::from_text(Kind::Lxc, ct);
        let keys: Vec<String> = ct_unbacked(&ct, 101).into_iter().map(|v| v.key).collect();
        assert_eq!(keys, ["mp0", "mp3", "unused0"]);
        let vm = "scsi0: local-lvm:vm-100-disk-0,size=32G\nscsi1: local-lvm:vm-100-disk-1,backup=0\n\
                  ide2: local:iso/x.iso,media=cdrom,backup=0\nsata0: none,backup=0\nunused0: local-lvm:vm-100-disk-2\n";
        assert_eq!(
            vm_detached(&GuestConfig::from_text(Kind::Qemu, vm)),
            [Volume {
                key: "scsi1".into(),
                volume: "local-lvm:vm-100-disk-1".into()
            }]
        );
    }

    #[test]
    fn links() {
        let c =
            "net0: virtio=AA,bridge=vmbr0\nnet1: virtio=BB,bridge=vmbr1,link_down=1\nnetwork: x\n";
        assert_eq!(
            links_up(&GuestConfig::from_text(Kind::Qemu, c)),
            [(
                "net0".to_string(),
                "virtio=AA,bridge=vmbr0,link_down=1".to_string()
            )]
        );
        let off = "net0: virtio=AA,link_down=0,bridge=vmbr0\nnet1: virtio=BB,link_down=on\n";
        assert_eq!(
            links_up(&GuestConfig::from_text(Kind::Qemu, off)),
            [(
                "net0".to_string(),
                "virtio=AA,bridge=vmbr0,link_down=1".to_string()
            )]
        );
    }
}

/// What a backup's config holds that only `root@pam` may restore.
#[derive(Debug, Default)]
pub struct RootOnly {
    /// Keys Proxmox refuses inside the restore task, after our stop and safety point, each
    /// with Proxmox's reason.
    pub refused: Vec<String>,
    /// Raw `lxc.*` lines a restore drops with only a task warning.
    pub dropped: Vec<String>,
}

/// pve-container `API2/LXC.pm` `create_vm`: a bind or device mount point of the backup
/// ("restoring 'mpN' to bind mount is only possible for root"), `LXC/Create.pm`
/// `sanitize_and_merge_config`: raw `lxc.*` keys skipped; qemu-server `QemuServer.pm`
/// `check_restore_permissions` → `check_mapping_access`: `hostpciN` and `usbN` (but
/// `spice`) with a `host=` instead of a mapping.
pub fn root_only(config: &GuestConfig, lxc: bool) -> RootOnly {
    let mut out = RootOnly {
        dropped: config.lxc.clone(),
        ..RootOnly::default()
    };
    if lxc {
        let binds = config
            .disks
            .iter()
            .filter(|d| d.key != "rootfs" && !d.is_volume() && d.source.starts_with('/'));
        out.refused.extend(binds.map(|d| {
            format!(
                "{} is a bind or device mount ({})",
                d.key,
                pvedr::msg::visible(&d.source)
            )
        }));
    } else {
        // `usbN: spice` is no host device.
        let hosts = config.devices.iter().filter_map(|d| {
            let h = d.host.as_deref()?;
            (!(d.key.starts_with("usb") && h.eq_ignore_ascii_case("spice"))).then_some((d, h))
        });
        out.refused.extend(hosts.map(|(d, h)| {
            format!(
                "{} passes host device {} through",
                d.key,
                pvedr::msg::visible(h)
            )
        }));
    }
    out
}
