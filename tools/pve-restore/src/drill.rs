//! Drills on a schedule: which guests a `--sample N` run drills, and each drill's own
//! scratch VMID.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};
use pvedr::error::{Error, Result};
use pvedr::listing::{self, Extras, SelectArgs};
use pvedr::policy::GuestPolicy;
use pvedr::records::Backup;
use pvedr::transport::Transport;

use crate::guest;
use serde_json::Value;

use crate::history::{self, Line, restore_in};

/// Where scratch VMIDs are looked for: the first free from 9900, as `--test` always chose,
/// and no further than this many (a bound on the search, not on Proxmox).
const SCRATCH_FIRST: u64 = 9900;
const SCRATCH_SPAN: u64 = 1000;

/// Scratch VMIDs a drill tries when each is taken by another machine's guest meanwhile.
pub const SCRATCH_TRIES: usize = 3;

/// When each guest's last successful drill started (epoch seconds), from the history:
/// `restore` records with `drill: true` and status `verified` or `restored`. A missing file
/// is an empty history; a line that is not such a record is passed over (counted on stderr).
pub fn last_success(path: &Path) -> Result<HashMap<u64, i64>> {
    let mut last = HashMap::new();
    let Some(file) = history::open(path)? else {
        return Ok(last);
    };
    let mut unread = 0usize;
    for line in history::lines(file) {
        let line = line.map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        let value = match &line {
            Line::Whole(b) if b.trim_ascii().is_empty() => continue,
            Line::Whole(b) => serde_json::from_slice::<Value>(b).ok(),
            Line::TooLong => None,
        };
        let Some(v) = value else {
            unread += 1;
            continue;
        };
        if let Some((vmid, t)) = restore_in(v).and_then(|r| r.drill_success()) {
            let e = last.entry(vmid).or_insert(t);
            *e = (*e).max(t);
        }
    }
    if unread > 0 {
        pvedr::msg::say(format_args!(
            "{}: {unread} lines are not JSON records and were passed over",
            path.display()
        ));
    }
    Ok(last)
}

/// The newest backup of each of the `n` guests drilled longest ago: never drilled first,
/// then by the start of their last successful drill, ties by VMID.
pub fn sample(backups: Vec<Backup>, drilled: &HashMap<u64, i64>, n: usize) -> Vec<Backup> {
    let mut by_guest: BTreeMap<u64, Vec<Backup>> = BTreeMap::new();
    for b in backups {
        if let Some(v) = b.vmid {
            by_guest.entry(v).or_default().push(b);
        }
    }
    let mut newest: Vec<Backup> = by_guest
        .values()
        .filter_map(|bs| pvedr::newest::newest(bs).cloned())
        .collect();
    // `None` (never drilled) orders before any time.
    newest.sort_by_key(|b| (b.vmid.and_then(|v| drilled.get(&v).copied()), b.vmid));
    newest.truncate(n);
    newest
}

/// Every backup on the cluster's nodes (`--sample --all`) but those of guests whose tags
/// ask for no drill (`pvedr-nodrill`, `pvedr-nobackup`: `pvedr::policy`, as backup-check
/// reads them); what could not be listed is said on stderr, and those guests wait for a
/// later run.
pub fn from_node(t: &dyn Transport) -> Result<Vec<Backup>> {
    let sel = SelectArgs {
        all_nodes: true,
        ..Default::default()
    };
    let extras = Extras {
        guests: true,
        ..Default::default()
    };
    let g = listing::gather_remote(t, &sel, extras, None)?;
    for p in &g.problems {
        pvedr::msg::say(format_args!("not listed: {p}"));
    }
    let parked: Vec<u64> = g
        .guests
        .iter()
        .filter(|x| !GuestPolicy::of(Some(x)).drills())
        .map(|x| x.vmid)
        .collect();
    if !parked.is_empty() {
        let ids: Vec<String> = parked.iter().map(u64::to_string).collect();
        pvedr::msg::say(format_args!(
            "not drilled (tag pvedr-nodrill or pvedr-nobackup): {}",
            ids.join(", ")
        ));
    }
    let mut backups = g.backups;
    backups.retain(|b| b.vmid.is_none_or(|v| !parked.contains(&v)));
    Ok(backups)
}

/// A scratch VMID this run holds: free on the cluster when chosen, and locked on this
/// machine so that a concurrent drill chooses another. `/cluster/nextid` reserves nothing
/// (pve-manager `PVE/API2/Cluster.pm` `nextid` returns the first VMID absent from the
/// vmlist at the time of the call), so two runs asking at once get the same one.
pub struct Scratch {
    pub vmid: u64,
    _held: Flock<File>,
}

/// The first VMID from [`SCRATCH_FIRST`] that no guest has, no other drill has reserved and
/// no other restore is working on, and this run did not find taken (`taken`).
pub fn reserve(t: &dyn Transport, port: u16, taken: &[u64]) -> Result<Scratch> {
    let present = guest::resources(t)?;
    let host = t.host();
    let last = SCRATCH_FIRST + SCRATCH_SPAN;
    let free = |v: &u64| !present.contains_key(v) && !taken.contains(v);
    for vmid in (SCRATCH_FIRST..last).filter(free) {
        let Some(held) = hold(&format!("pvedr-scratch-{host}-{port}-{vmid}.lock"))? else {
            continue;
        };
        // A restore to it under way (an older pve-restore, or --target-vmid): not free.
        if guest::lock_target(host, port, vmid).is_ok() {
            return Ok(Scratch { vmid, _held: held });
        }
    }
    Err(Error::Refused(format!(
        "no scratch VMID free in {SCRATCH_FIRST}-{}: every one is a guest or held by another drill; give --target-vmid",
        last - 1
    )))
}

/// The lock `name` in the directory of restore locks, or `None` when another run holds it.
fn hold(name: &str) -> Result<Option<Flock<File>>> {
    let path = guest::lock_dir().join(name);
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    Ok(Flock::lock(f, FlockArg::LockExclusiveNonblock).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(vmid: u64, ctime: i64) -> Backup {
        Backup {
            vmid: Some(vmid),
            ctime,
            volid: format!("local:backup/vzdump-qemu-{vmid}-{ctime}.vma.zst"),
            ..Default::default()
        }
    }

    #[test]
    fn never_drilled_first_then_oldest_drill_ties_by_vmid() {
        let backups = vec![b(102, 1), b(101, 1), b(101, 5), b(100, 1), b(103, 1)];
        let drilled = HashMap::from([(100, 50), (101, 10), (103, 10)]);
        let picked: Vec<_> = sample(backups, &drilled, 3)
            .into_iter()
            .map(|b| (b.vmid, b.ctime))
            .collect();
        assert_eq!(picked, vec![(Some(102), 1), (Some(101), 5), (Some(103), 1)]);
    }
}
