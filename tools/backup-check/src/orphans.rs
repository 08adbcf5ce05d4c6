//! Backups of guests that no longer exist: `orphan`, reported and counted, never alarming.
//! Only a guest list says a guest is gone, so without `guest` records there are none.

use std::collections::BTreeSet;

use pvedr::records::{Check, rfc3339};
use serde_json::json;

use crate::inputs::Inputs;
use crate::status::{Status, check};
use crate::summary::GuestBackups;

/// Every guest with backups that the guest list does not hold.
pub fn find(inp: &Inputs) -> BTreeSet<u64> {
    if inp.guests.is_empty() {
        return BTreeSet::new();
    }
    let listed: BTreeSet<u64> = inp.guests.iter().map(|g| g.vmid).collect();
    inp.backups
        .by_guest
        .keys()
        .filter(|v| !listed.contains(v))
        .copied()
        .collect()
}

/// The one finding of an orphaned guest: its backups stay until someone prunes them.
pub fn finding(component: &str, backups: &GuestBackups) -> Check {
    let newest = backups.newest_any.as_ref().map(|b| rfc3339(b.ctime));
    let msg = format!(
        "{} backup(s) of a guest that no longer exists (newest {}): prune them (backup-prune) or keep them on purpose",
        backups.all,
        newest.unwrap_or_default()
    );
    let value = Some(json!(backups.all));
    check(component, "orphan", Status::Orphan, msg, value, None)
}
