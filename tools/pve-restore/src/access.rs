//! The privileges a restore's steps need, as Proxmox checks them, so that a token that lacks
//! one is refused before anything changes (as root over SSH nothing is missing):
//! - the restore: `VM.Allocate` on `/vms/T`, or `VM.Backup` when overwriting (qemu-server
//!   `src/PVE/API2/Qemu.pm` `create_vm`, pve-container `src/PVE/API2/LXC.pm` `create_vm`,
//!   both ending in a bare `raise_perm_exc`), `Datastore.AllocateSpace` on a `--storage`;
//! - the archive: nothing when it is the target's own backup, else `Datastore.Allocate` on
//!   its storage, or `Datastore.AllocateSpace` there and `VM.Backup` on its guest
//!   (pve-storage `src/PVE/Storage.pm` `check_volume_access`);
//! - the safety point: `VM.Backup`, `Datastore.AllocateSpace` on its storage, and
//!   `Datastore.Allocate` for its `prune-backups` (pve-manager `PVE/API2/VZDump.pm`);
//! - the check for a running vzdump before an overwrite: `Sys.Audit` on `/nodes/N`, else
//!   the task list hides other users' tasks (pve-manager `PVE/API2/Tasks.pm` `node_tasks`);
//! - stop and start `VM.PowerMgmt`, the drill's link-down `VM.Config.Network`, its cleanup
//!   `VM.Allocate`;
//! - a VM's agent probe `VM.GuestAgent.Audit` or `VM.GuestAgent.Unrestricted` (qemu-server
//!   `src/PVE/API2/Qemu/Agent.pm` `register_command`; PVE 9 dropped `VM.Monitor`).

use pvedr::Result;
use pvedr::access::{Need, describe};
use pvedr::transport::Transport;

pub struct RestoreAccess<'a> {
    pub target: u64,
    pub node: &'a str,
    pub archive_storage: &'a str,
    pub archive_owner: Option<u64>,
    pub target_storage: Option<&'a str>,
    pub overwrite: bool,
    pub safety_storage: Option<String>,
    pub power: bool,
    pub isolate: bool,
    pub cleanup: bool,
    /// A VM's guest agent is probed.
    pub agent: bool,
}

/// What is missing, one phrase per step that would be refused.
pub fn missing(t: &dyn Transport, a: &RestoreAccess) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let vm = |privs: &[&'static str]| Need::vm(a.target, privs);
    let restore = if a.overwrite {
        vm(&["VM.Allocate", "VM.Backup"])
    } else {
        vm(&["VM.Allocate"])
    };
    let mut plain = vec![restore];
    if let Some(s) = a.target_storage {
        plain.push(Need::storage(s, &["Datastore.AllocateSpace"]));
    }
    if let Some(s) = &a.safety_storage {
        plain.push(Need::new(format!("/nodes/{}", a.node), &["Sys.Audit"]));
        plain.push(vm(&["VM.Backup"]));
        plain.push(Need::storage(s, &["Datastore.AllocateSpace"]));
        plain.push(Need::storage(s, &["Datastore.Allocate"]));
    }
    if a.power {
        plain.push(vm(&["VM.PowerMgmt"]));
    }
    if a.isolate {
        plain.push(vm(&["VM.Config.Network"]));
    }
    if a.cleanup {
        plain.push(vm(&["VM.Allocate"]));
    }
    if a.agent {
        plain.push(vm(pvedr::transport::api::AGENT_PING));
    }
    plain.dedup();
    let m = t.missing(&plain)?;
    if !m.is_empty() {
        out.push(describe(&m));
    }
    if let Some(archive) = archive_access(t, a)? {
        out.push(archive);
    }
    Ok(out)
}

fn archive_access(t: &dyn Transport, a: &RestoreAccess) -> Result<Option<String>> {
    if a.archive_owner == Some(a.target) || a.archive_storage.is_empty() {
        return Ok(None);
    }
    let all = t.missing(&[Need::storage(a.archive_storage, &["Datastore.Allocate"])])?;
    if all.is_empty() {
        return Ok(None);
    }
    let Some(owner) = a.archive_owner else {
        return Ok(Some(describe(&all)));
    };
    let some = t.missing(&[
        Need::storage(a.archive_storage, &["Datastore.AllocateSpace"]),
        Need::vm(owner, &["VM.Backup"]),
    ])?;
    Ok((!some.is_empty()).then(|| {
        format!(
            "{} to read the archive (or {})",
            describe(&some),
            describe(&all)
        )
    }))
}
