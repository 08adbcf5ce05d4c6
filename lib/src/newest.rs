//! Which backup is "the newest" of a guest: what `--latest`, `pve-restore --vmid` and the
//! nightly offsite push pick. A renamed or manual copy (a non-standard name, which Proxmox's
//! own prune leaves alone as `renamed`) or a pvedr safety point is never preferred over a
//! backup vzdump made on schedule; it is picked only when the guest has nothing else.

use crate::records::Backup;

/// How pve-restore's safety points begin their notes (`vzdump --notes-template`), which is
/// how a listing tells them apart.
pub const SAFETY_NOTE: &str = "pvedr safety point";

/// A backup pve-restore took before changing a guest.
pub fn is_safety_point(b: &Backup) -> bool {
    b.notes
        .as_deref()
        .is_some_and(|n| n.starts_with(SAFETY_NOTE))
}

/// A backup "the newest" may be: a standard name, not a safety point.
pub fn is_preferred(b: &Backup) -> bool {
    crate::records::is_std_backup(b) && !is_safety_point(b)
}

/// Whether `b` beats `best` for "the newest": preferred backups first, then the later one.
pub fn beats(b: &Backup, best: &Backup) -> bool {
    (is_preferred(b), b.ctime) > (is_preferred(best), best.ctime)
}

/// The newest of `backups` by that rule; an unfinished PBS snapshot (no manifest yet) is
/// never one.
pub fn newest<'a>(backups: impl IntoIterator<Item = &'a Backup>) -> Option<&'a Backup> {
    backups
        .into_iter()
        .filter(|b| !b.unfinished)
        .fold(None, |best, b| match best {
            Some(x) if !beats(b, x) => Some(x),
            _ => Some(b),
        })
}

/// `2024-01-15T02:00:02Z, 3d4h old, 1.2 GiB` (plus what makes it not a regular backup):
/// what a plan and a prompt show of the backup they act on.
pub fn describe(b: &Backup, now: i64) -> String {
    let size = b
        .size
        .map(crate::output::human_bytes)
        .unwrap_or_else(|| "size unknown".into());
    let what = if is_safety_point(b) {
        ", a pvedr safety point"
    } else if !crate::records::is_std_backup(b) {
        ", a renamed or manual copy"
    } else {
        ""
    };
    // A backup named by --volid alone has no date yet: no 1970 age.
    if b.ctime <= 0 || b.time.is_empty() {
        return format!("date unknown, {size}{what}");
    }
    let age = now
        .checked_sub(b.ctime)
        .and_then(|s| u64::try_from(s).ok())
        .map(|s| format!("{} old", coarse(s)))
        .unwrap_or_else(|| "dated in the future".into());
    format!("{}, {age}, {size}{what}", b.time)
}

/// An age in its two largest units: `3d4h`, `2h5m`, `40s`.
fn coarse(secs: u64) -> String {
    let full = crate::time::format_duration(secs);
    let mut units = 0;
    let end = full
        .char_indices()
        .find(|(_, c)| {
            units += usize::from(c.is_ascii_alphabetic());
            units == 2 && c.is_ascii_alphabetic()
        })
        .map_or(full.len(), |(i, _)| i + 1);
    full[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(name: &str, ctime: i64, notes: Option<&str>) -> Backup {
        Backup {
            volid: format!("local:backup/{name}"),
            subtype: "qemu".into(),
            format: "vma.zst".into(),
            ctime,
            notes: notes.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn a_scheduled_backup_wins_over_later_copies_and_safety_points() {
        let sched = b("vzdump-qemu-100-2024_01_15-02_00_02.vma.zst", 100, None);
        let copy = b("vzdump-qemu-100-manual-copy.vma.zst", 300, None);
        let safety = b(
            "vzdump-qemu-100-2024_01_16-02_00_02.vma.zst",
            200,
            Some("pvedr safety point before restoring x"),
        );
        let all = [sched.clone(), copy.clone(), safety.clone()];
        assert_eq!(newest(&all).map(|x| &x.volid), Some(&sched.volid));
        // Nothing else: the copy is still a backup.
        assert_eq!(
            newest([&copy, &safety]).map(|x| &x.volid),
            Some(&copy.volid)
        );
        assert!(describe(&safety, 260).ends_with("a pvedr safety point"));
        assert_eq!(coarse(3 * 86400 + 4 * 3600 + 59), "3d4h");
        assert_eq!(coarse(40), "40s");
    }
}
