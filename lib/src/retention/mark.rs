//! Proxmox's retention algorithm, exactly (pve-storage `PVE::Storage::prune_mark_backup_group`
//! and `$prune_mark`; see shared/reference/proxmox.md §6).
//!
//! Per group (one guest type and VMID on one storage), newest first, the options run in a
//! fixed order (last, hourly, daily, weekly, monthly, yearly). Each keeps the newest backup of
//! up to N periods that no earlier option covered; a second backup in a period taken in the
//! same pass is removed. Protected backups keep their mark and neither use a slot nor cover
//! a period. What is left is removed. Non-standard names are never in a group (`renamed`).

use std::collections::HashSet;

use chrono::{Datelike, NaiveDateTime, Timelike};

use crate::retention::policy::KeepOptions;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mark {
    Keep,
    Remove,
    Protected,
    Renamed,
}

impl Mark {
    pub fn as_str(self) -> &'static str {
        match self {
            Mark::Keep => "keep",
            Mark::Remove => "remove",
            Mark::Protected => "protected",
            Mark::Renamed => "renamed",
        }
    }
}

/// The rule that kept a backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    KeepLast,
    KeepHourly,
    KeepDaily,
    KeepWeekly,
    KeepMonthly,
    KeepYearly,
    KeepAll,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::KeepLast => "keep-last",
            Reason::KeepHourly => "keep-hourly",
            Reason::KeepDaily => "keep-daily",
            Reason::KeepWeekly => "keep-weekly",
            Reason::KeepMonthly => "keep-monthly",
            Reason::KeepYearly => "keep-yearly",
            Reason::KeepAll => "keep-all",
        }
    }
}

/// One backup as the algorithm sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub ctime: i64,
    pub std_name: bool,
    pub protected: bool,
}

/// The period a backup falls in, for one option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Period {
    Last(i64),
    Hour(i32, u32, u32, u32),
    Day(i32, u32, u32),
    Week(i32, u32),
    Month(i32, u32),
    Year(i32),
}

const RULES: [Reason; 6] = [
    Reason::KeepLast,
    Reason::KeepHourly,
    Reason::KeepDaily,
    Reason::KeepWeekly,
    Reason::KeepMonthly,
    Reason::KeepYearly,
];

fn period(rule: Reason, ctime: i64, t: NaiveDateTime) -> Period {
    match rule {
        Reason::KeepLast | Reason::KeepAll => Period::Last(ctime),
        Reason::KeepHourly => Period::Hour(t.year(), t.month(), t.day(), t.hour()),
        Reason::KeepDaily => Period::Day(t.year(), t.month(), t.day()),
        // ISO week and ISO year (`%G/%V`): safe across year boundaries.
        Reason::KeepWeekly => {
            let w = t.iso_week();
            Period::Week(w.year(), w.week())
        }
        Reason::KeepMonthly => Period::Month(t.year(), t.month()),
        Reason::KeepYearly => Period::Year(t.year()),
    }
}

/// Marks one group. `local` turns an epoch into the node's wall time. The result is in input
/// order; entries with equal ctime keep their input order (Proxmox's sort is stable and its
/// input is the listing, sorted by lower-cased volid).
pub fn mark_group(
    entries: &[Entry],
    opts: &KeepOptions,
    local: &dyn Fn(i64) -> NaiveDateTime,
) -> Vec<(Mark, Option<Reason>)> {
    let mut marks: Vec<Option<(Mark, Option<Reason>)>> = entries
        .iter()
        .map(|e| {
            if e.protected {
                Some((Mark::Protected, None))
            } else if !e.std_name {
                Some((Mark::Renamed, None))
            } else {
                None
            }
        })
        .collect();
    if opts.keeps_everything() {
        return marks
            .into_iter()
            .map(|m| m.unwrap_or((Mark::Keep, Some(Reason::KeepAll))))
            .collect();
    }
    // Newest first, stable.
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by(|&a, &b| entries[b].ctime.cmp(&entries[a].ctime));
    let times: Vec<NaiveDateTime> = entries.iter().map(|e| local(e.ctime)).collect();
    for (rule, count) in RULES.iter().zip(opts.counts()) {
        if count == 0 {
            continue;
        }
        let id = |i: usize| period(*rule, entries[i].ctime, times[i]);
        let already: HashSet<Period> = order
            .iter()
            .filter(|&&i| matches!(marks[i], Some((Mark::Keep, _))))
            .map(|&i| id(i))
            .collect();
        let mut newly: HashSet<Period> = HashSet::new();
        for &i in &order {
            if marks[i].is_some() {
                continue;
            }
            let p = id(i);
            if already.contains(&p) {
                continue;
            }
            if !newly.contains(&p) {
                if newly.len() as u64 >= count {
                    break;
                }
                newly.insert(p);
                marks[i] = Some((Mark::Keep, Some(*rule)));
            } else {
                marks[i] = Some((Mark::Remove, None));
            }
        }
    }
    marks
        .into_iter()
        .map(|m| m.unwrap_or((Mark::Remove, None)))
        .collect()
}
