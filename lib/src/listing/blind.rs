//! What a listing may have left out because the connection lacks privileges. Proxmox drops
//! without a word every backup the caller may not access: pve-storage
//! `src/PVE/API2/Storage/Content.pm` `index` keeps a volume only when
//! `PVE::Storage::check_volume_access` allows it, which for a backup asks
//! `Datastore.Allocate` on the storage, or `Datastore.AllocateSpace` on the storage and
//! `VM.Backup` on the guest. An empty listing is then not "no backups". Over SSH pvedr is
//! root and this finds nothing.

use std::collections::BTreeSet;

use crate::access::{self, Need};
use crate::error::Result;
use crate::records::Storage;
use crate::transport::Transport;

/// One sentence per blind spot, naming the privileges missing and where.
pub fn spots(t: &dyn Transport, storages: &[Storage], guests: bool) -> Result<Vec<String>> {
    let mut out = Vec::new();
    // `GET /nodes/N/storage` lists only what the caller may audit (pve-storage
    // `API2/Storage/Status.pm` `index`).
    let seen = t.missing(&[Need::new(
        "/storage",
        &["Datastore.Audit", "Datastore.AllocateSpace"],
    )])?;
    if !seen.is_empty() {
        out.push(format!(
            "storages: the token lacks {}: storages it may not audit are not listed",
            access::describe(&seen)
        ));
    }
    let ids: BTreeSet<&str> = storages.iter().map(|s| s.storage.as_str()).collect();
    for sid in ids {
        let all = t.missing(&[Need::storage(sid, &["Datastore.Allocate"])])?;
        if all.is_empty() {
            continue;
        }
        let some = t.missing(&[
            Need::storage(sid, &["Datastore.AllocateSpace"]),
            Need::new("/vms", &["VM.Backup"]),
        ])?;
        if some.is_empty() {
            continue;
        }
        out.push(format!(
            "storage {sid}: the token lacks {} (or {}): Proxmox leaves out every backup it may not access, so the listing of {sid} may be incomplete",
            access::describe(&all),
            access::describe(&some)
        ));
    }
    if guests {
        let m = t.missing(&[Need::new("/vms", &["VM.Audit"])])?;
        if !m.is_empty() {
            out.push(format!(
                "guests: the token lacks {}: guests it may not audit are not listed",
                access::describe(&m)
            ));
        }
    }
    Ok(out)
}
