//! Backups of guests that no longer exist: `orphan`, reported and counted, never alarming.
//! Only a guest list says a guest is gone, so without `guest` records there are none.

use std::collections::BTreeMap;

use pvedr::records::{Backup, Check, rfc3339};
use serde_json::json;

use crate::inputs::Inputs;
use crate::status::{Status, check};

/// VMID → its backups, for every guest with backups that the guest list does not hold.
pub fn find(inp: &Inputs) -> BTreeMap<u64, Vec<&Backup>> {
    let mut out: BTreeMap<u64, Vec<&Backup>> = BTreeMap::new();
    if inp.guests.is_empty() {
        return out;
    }
    for b in &inp.backups {
        if let Some(v) = b.vmid
            && !inp.guests.iter().any(|g| g.vmid == v)
        {
            out.entry(v).or_default().push(b);
        }
    }
    out
}

/// The one finding of an orphaned guest: its backups stay until someone prunes them.
pub fn finding(component: &str, backups: &[&Backup]) -> Check {
    let newest = backups.iter().map(|b| b.ctime).max().map(rfc3339);
    let msg = format!(
        "{} backup(s) of a guest that no longer exists (newest {}): prune them (backup-prune) or keep them on purpose",
        backups.len(),
        newest.unwrap_or_default()
    );
    let value = Some(json!(backups.len()));
    check(component, "orphan", Status::Orphan, msg, value, None)
}
