//! Retention conformance against the job's prune-backups, with Proxmox's own marking. A
//! guest keeps, per group (storage, guest type), the times of the backups a prune could
//! remove: protected and renamed ones are never kept nor removed, so they only widen the
//! span the schedule should have filled.

use pvedr::records::{Check, Job};
use pvedr::retention::{Entry, KeepOptions, Mark, mark_group};
use pvedr::time::Zone;
use serde_json::json;

use crate::keyed::Keyed;
use crate::seen::Seen;
use crate::status::{Status, check};

/// The backup times one guest keeps for retention (8 bytes each); past it, its retention
/// is UNKNOWN rather than memory without bound.
pub const MAX_TIMES: usize = 100_000;

/// A guest's backups as retention sees them.
#[derive(Debug, Default)]
pub struct Groups {
    groups: Keyed<Group>,
    times: usize,
    overflow: bool,
}

#[derive(Debug, Default)]
struct Group {
    /// The times of the backups a prune may remove (standard name, not protected).
    prunable: Vec<i64>,
    oldest: Option<i64>,
    newest: Option<i64>,
}

impl Groups {
    pub fn see(&mut self, b: &Seen, std_name: bool) {
        let g = self.groups.slot(b.storage, b.subtype);
        g.oldest = Some(g.oldest.map_or(b.ctime, |o| o.min(b.ctime)));
        g.newest = Some(g.newest.map_or(b.ctime, |n| n.max(b.ctime)));
        if !std_name || b.protected {
            return;
        }
        if self.times < MAX_TIMES {
            g.prunable.push(b.ctime);
            self.times += 1;
        } else {
            self.overflow = true;
        }
    }

    fn on(&self, storage: Option<&str>) -> impl Iterator<Item = &Group> {
        self.groups
            .iter()
            .filter(move |(s, _)| storage.is_none() || *s == storage)
            .map(|(_, g)| g)
    }
}

fn job_policy(job: &Job) -> Option<KeepOptions> {
    job.prune_backups
        .as_ref()
        .and_then(|p| KeepOptions::from_json(p).ok())
}

/// What the retention check reads of one guest.
pub struct Subject<'a> {
    pub component: &'a str,
    /// The enabled job backing the guest up.
    pub job: Option<&'a Job>,
    /// Its backups' times, folded per storage.
    pub groups: &'a Groups,
    /// How many of its backups are whole (the finding's value).
    pub good: usize,
    /// The job schedule's longest interval.
    pub interval: Option<u64>,
}

/// The `retention` finding of a guest whose job has a prune policy for its storage.
pub fn retention(zone: Zone, g: &Subject, out: &mut Vec<Check>) {
    let groups = g.groups;
    let Some((j, opts)) = g
        .job
        .and_then(|j| job_policy(j).map(|o| (j, o)))
        .filter(|(j, _)| j.storage.is_none() || groups.on(j.storage.as_deref()).next().is_some())
    else {
        return;
    };
    let value = Some(json!(g.good));
    let threshold = Some(json!(opts.to_string()));
    if groups.overflow {
        let msg = format!(
            "more than {MAX_TIMES} backups: retention not judged (pruning is surely not running)"
        );
        let c = check(
            g.component,
            "retention",
            Status::Unknown,
            msg,
            value,
            threshold,
        );
        out.push(c);
        return;
    }
    let local = |t: i64| zone.to_local(t).unwrap_or_default();
    let (mut extra, mut kept) = (0, 0);
    let (mut oldest, mut newest) = (None::<i64>, None::<i64>);
    for grp in groups.on(j.storage.as_deref()) {
        let entries: Vec<Entry> = grp
            .prunable
            .iter()
            .map(|&ctime| Entry {
                ctime,
                std_name: true,
                protected: false,
            })
            .collect();
        let marks = mark_group(&entries, &opts, &local);
        extra += marks.iter().filter(|(m, _)| *m == Mark::Remove).count();
        kept += marks.iter().filter(|(m, _)| *m == Mark::Keep).count();
        oldest = [oldest, grp.oldest].into_iter().flatten().min();
        newest = [newest, grp.newest].into_iter().flatten().max();
    }
    let runs = expected_runs(g.interval, oldest.zip(newest), opts.counts().iter().sum());
    let (status, msg) = if extra > 0 {
        (
            Status::Warning,
            format!("{extra} backup(s) more than {opts} keeps: pruning is not running"),
        )
    } else if !opts.keeps_everything() && (kept as u64) < runs {
        (
            Status::Warning,
            format!(
                "{kept} backup(s) where {opts} should keep {runs}: runs failed or backups were deleted"
            ),
        )
    } else {
        (Status::Ok, format!("{kept} backup(s) kept by {opts}"))
    };
    out.push(check(
        g.component,
        "retention",
        status,
        msg,
        value,
        threshold,
    ));
}

/// How many backups the schedule should have made over the span the archives cover, at
/// most the policy's slots.
fn expected_runs(interval: Option<u64>, span: Option<(i64, i64)>, slots: u64) -> u64 {
    match (interval, span) {
        (Some(i), Some((oldest, newest))) if i > 0 => {
            (newest.abs_diff(oldest) / i).saturating_add(1).min(slots)
        }
        _ => 0,
    }
}
