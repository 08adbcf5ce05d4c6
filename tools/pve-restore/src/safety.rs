//! Where a safety point goes without `--safety-storage` when no backup is being restored
//! (`--snapshot`): where the guest's backups go, that is the storage of the enabled vzdump
//! job that covers it. When that cannot be told, the refusal names the candidates.

use pvedr::jobs::{self, GuestRef};
use pvedr::pvesh::{self, paths};
use pvedr::transport::Transport;
use pvedr::{Result, validate};

use crate::guest::node_of;
use pvedr::pve::Resource;

/// The storage for guest `vmid`'s safety point, or the refusal naming the storages with
/// `backup` content on its node.
pub fn storage_for(
    t: &dyn Transport,
    vmid: u64,
    g: &Resource,
) -> std::result::Result<String, String> {
    let candidates = match backup_storages(t, node_of(g)) {
        Ok(c) => c,
        Err(e) => {
            return Err(format!(
                "no --safety-storage given, and the storages of node {} cannot be listed: {e}; nothing was changed",
                pvedr::msg::visible(node_of(g))
            ));
        }
    };
    let why = match job_storage(t, vmid, g) {
        Ok(Ok(s)) if candidates.contains(&s) => return Ok(s),
        Ok(Ok(s)) => format!(
            "the storage of its backup job, {}, holds no backups on {}",
            pvedr::msg::visible(&s),
            pvedr::msg::visible(node_of(g))
        ),
        Ok(Err(why)) => why,
        Err(e) => format!("the backup jobs cannot be read ({e})"),
    };
    let list = match candidates.is_empty() {
        true => "none has backup content there".to_string(),
        false => format!(
            "storages with backup content on {}: {}",
            pvedr::msg::visible(node_of(g)),
            candidates.join(", ")
        ),
    };
    Err(format!(
        "where guest {vmid}'s backups go cannot be told ({why}): give --safety-storage for the safety point ({list}); nothing was changed"
    ))
}

/// The storage of the enabled vzdump job covering the guest (`Err`: why there is none).
fn job_storage(
    t: &dyn Transport,
    vmid: u64,
    g: &Resource,
) -> Result<std::result::Result<String, String>> {
    let cmd = pvesh::get(paths::CLUSTER_BACKUP, &[]);
    let list: Vec<_> = pvesh::parse_list(t.host(), &cmd, t.exec(&cmd)?)?
        .iter()
        .filter_map(pvesh::job)
        .collect();
    let me = GuestRef {
        vmid,
        node: Some(node_of(g)),
        pool: g.pool.as_deref(),
    };
    let Some(job) = jobs::covering(&list, &me, None) else {
        return Ok(Err("no enabled backup job covers it".into()));
    };
    // vzdump without `storage` takes /etc/vzdump.conf's or `local` (pve-manager
    // `PVE/VZDump.pm` `new`, `get_storage_param`): not in the job, so not told here.
    Ok(match job.storage.as_deref().map(validate::storage_id) {
        Some(Ok(s)) => Ok(s.to_string()),
        _ => Err(format!(
            "backup job {} names no storage",
            pvedr::msg::visible(&job.id)
        )),
    })
}

/// The enabled storages with `backup` content on `node`, sorted (`/nodes/N/storage
/// --content backup`: pve-storage `Storage.pm` `storage_info` leaves disabled ones out).
fn backup_storages(t: &dyn Transport, node: &str) -> Result<Vec<String>> {
    let cmd = pvesh::get(&paths::storages(node), &["--content", "backup"]);
    let mut names: Vec<String> = pvesh::parse_list(t.host(), &cmd, t.exec(&cmd)?)?
        .iter()
        .filter_map(|m| pvesh::str_of(m, "storage"))
        .filter(|s| validate::storage_id(s).is_ok())
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}
