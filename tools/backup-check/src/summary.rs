//! A guest's backups folded into what the checks need, record by record: a listing of a
//! million backups costs the memory of its guests (and eight bytes a backup for
//! retention), not of its records.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};

use pvedr::records::{Verification, is_std_volume};

use crate::keyed::Keyed;
use crate::retention::Groups;
pub use crate::seen::Seen;
use crate::status::Status;
use crate::time_check::{MAX_SKEW, time_problem};

/// Findings of one kind named per guest (times, verifications, integrity); the rest are
/// counted, so a hostile listing cannot grow them without bound.
pub const MAX_NAMED: usize = 1000;
/// Backups remembered per guest by volid for a drill's size (the newest).
const RECENT: usize = 8;

/// The few facts of one backup that a check or a metric names.
#[derive(Debug, Clone)]
pub struct Lite {
    pub volid: String,
    pub ctime: i64,
    pub time: String,
    pub size: Option<u64>,
    pub storage: Option<String>,
    pub format: String,
    pub subtype: String,
}

impl Lite {
    fn of(b: &Seen) -> Lite {
        Lite {
            volid: b.volid.to_string(),
            ctime: b.ctime,
            time: b.time.to_string(),
            size: b.size,
            storage: b.storage.map(String::from),
            format: b.format.to_string(),
            subtype: b.subtype.to_string(),
        }
    }
}

/// `slot` becomes `b` when `b` is at least as new: of equal times the last read wins.
fn newer(slot: &mut Option<Lite>, b: &Seen) {
    if slot.as_ref().is_none_or(|l| l.ctime <= b.ctime) {
        *slot = Some(Lite::of(b));
    }
}

/// The two newest distinct times of a series, with their sizes: the newest backup and the
/// one before it.
#[derive(Debug, Default, Clone, Copy)]
pub struct TopTwo {
    first: Option<(i64, Option<u64>)>,
    second: Option<(i64, Option<u64>)>,
}

impl TopTwo {
    fn see(&mut self, ctime: i64, size: Option<u64>) {
        match self.first {
            Some((c, _)) if ctime < c => {
                if self.second.is_none_or(|(s, _)| s <= ctime) {
                    self.second = Some((ctime, size));
                }
            }
            Some((c, _)) if ctime == c => self.first = Some((ctime, size)),
            _ => {
                self.second = self.first;
                self.first = Some((ctime, size));
            }
        }
    }

    /// The newest entry older than `ctime`.
    pub fn before(&self, ctime: i64) -> Option<(i64, Option<u64>)> {
        [self.first, self.second]
            .into_iter()
            .flatten()
            .find(|(c, _)| *c < ctime)
    }
}

/// One guest's backups, folded.
#[derive(Debug, Default)]
pub struct GuestBackups {
    /// Every backup read; `good`: those `--deep` did not find damaged.
    pub all: usize,
    pub good: usize,
    /// The newest backup of all (damaged ones too).
    pub newest_any: Option<Lite>,
    /// The newest usable backup, whatever its time (the table, the metrics).
    pub latest: Option<Lite>,
    /// The newest usable backup with a possible time: what freshness judges.
    pub newest: Option<Lite>,
    /// The newest PBS snapshot and its verification.
    pub newest_pbs: Option<(Lite, Option<Verification>)>,
    /// Storage → the two newest usable non-PBS backups (`--shrink-warn`).
    pub prev: Keyed<TopTwo>,
    /// (storage, format) → the newest usable sizes, newest first (`--size-window` + 1).
    pub series: Keyed<Vec<(i64, u64)>>,
    /// What retention marks.
    pub retention: Groups,
    /// Backups with an impossible time: volid and why.
    pub times: Named,
    /// PBS verifications that are not `ok`.
    pub verifications: Named,
    /// What `--deep` found.
    pub integrity: Named,
    /// The newest backups by volid, for a drill whose record has no size.
    recent: Vec<(i64, String, Option<u64>)>,
}

/// Findings named one by one up to [`MAX_NAMED`], the rest counted.
#[derive(Debug, Default)]
pub struct Named {
    pub named: Vec<(Status, String)>,
    pub more: usize,
}

impl Named {
    fn push(&mut self, s: Status, msg: String) {
        if self.named.len() < MAX_NAMED {
            self.named.push((s, msg));
        } else {
            self.more += 1;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.named.is_empty() && self.more == 0
    }
}

/// What a fold needs to know beyond the record.
#[derive(Debug, Default)]
pub struct Context {
    pub now: i64,
    /// `--size-window`: how many previous sizes the median needs.
    pub window: usize,
    /// volid → what is wrong, for archives `--deep` found damaged.
    pub damaged: HashMap<String, String>,
    /// volid → why `--deep` could not test it (the node lacks the tool): not damage.
    pub untested: HashMap<String, String>,
    /// Whether `--deep` ran.
    pub deep: bool,
}

impl GuestBackups {
    pub fn fold(&mut self, b: &Seen, cx: &Context) {
        self.all += 1;
        newer(&mut self.newest_any, b);
        self.remember(b);
        let problem = time_problem(cx.now, b.ctime);
        if let Some(why) = &problem {
            self.times
                .push(Status::Critical, format!("{} {why}", b.volid));
        }
        self.verification(b);
        if cx.deep {
            self.integrity(b, cx);
        }
        if cx.damaged.contains_key(b.volid) {
            return;
        }
        self.good += 1;
        newer(&mut self.latest, b);
        self.retention.see(b, is_std_volume(b.format, b.volid));
        if b.ctime > cx.now.saturating_add(MAX_SKEW) {
            return;
        }
        // Not in the future: a candidate for newest, or for what the newest is compared to.
        if problem.is_none() {
            newer(&mut self.newest, b);
        }
        let storage = b.storage;
        if !b.format.starts_with("pbs-") {
            self.prev.slot(storage, "").see(b.ctime, b.size);
        }
        if let (Some(size), true) = (b.size, cx.window > 0) {
            let series = self.series.slot(storage, b.format);
            keep_newest(series, b.ctime, size, cx.window + 1);
        }
    }

    fn verification(&mut self, b: &Seen) {
        if b.format.starts_with("pbs-")
            && self
                .newest_pbs
                .as_ref()
                .is_none_or(|(l, _)| l.ctime <= b.ctime)
        {
            self.newest_pbs = Some((Lite::of(b), b.verification.cloned()));
        }
        let Some(v) = b.verification else { return };
        match v.state.as_str() {
            "ok" => {}
            "failed" => self.verifications.push(
                Status::Critical,
                format!("PBS verification failed: {}", b.volid),
            ),
            other => self.verifications.push(
                Status::Unknown,
                format!(
                    "PBS verification of {} is '{}', a state pvedr does not know",
                    b.volid,
                    pvedr::msg::visible(other)
                ),
            ),
        }
    }

    fn integrity(&mut self, b: &Seen, cx: &Context) {
        if let Some(why) = cx.damaged.get(b.volid) {
            let msg = format!("{} is damaged: {why}", b.volid);
            self.integrity.push(Status::Critical, msg);
        }
        if let Some(why) = cx.untested.get(b.volid) {
            let msg = format!("{} could not be tested: {why}", b.volid);
            self.integrity.push(Status::Unknown, msg);
        }
    }

    /// The newest few backups by volid, for a drill's size.
    fn remember(&mut self, b: &Seen) {
        if self.recent.len() == RECENT {
            match self.recent.iter().enumerate().min_by_key(|(_, r)| r.0) {
                Some((i, r)) if r.0 < b.ctime => {
                    self.recent.swap_remove(i);
                }
                _ => return,
            }
        }
        self.recent.push((b.ctime, b.volid.to_string(), b.size));
    }

    /// The size of a recent backup by its volid.
    pub fn recent_size(&self, volid: &str) -> Option<Option<u64>> {
        self.recent
            .iter()
            .find(|(_, v, _)| v == volid)
            .map(|(_, _, s)| *s)
    }
}

/// Keeps the `cap` newest (ctime, size) of `v`, newest first.
fn keep_newest(v: &mut Vec<(i64, u64)>, ctime: i64, size: u64, cap: usize) {
    let at = v.partition_point(|(c, _)| *c > ctime);
    if at >= cap {
        return;
    }
    v.insert(at, (ctime, size));
    v.truncate(cap);
}

/// Guests past this many are not checked and the run says so (UNKNOWN): a cluster holds a
/// few thousand, and each costs a summary.
pub const MAX_GUESTS: usize = 100_000;

/// Every guest's backups, folded as they are read.
#[derive(Debug, Default)]
pub struct Summaries {
    pub by_guest: BTreeMap<u64, GuestBackups>,
    pub cx: Context,
    /// Backups of guests past [`MAX_GUESTS`]: not checked.
    pub unchecked: usize,
    /// volid → its size, for drills whose record has none (first backup of the volid).
    wanted: HashMap<String, Option<Option<u64>>>,
}

impl Summaries {
    pub fn new(cx: Context) -> Summaries {
        Summaries {
            cx,
            ..Default::default()
        }
    }

    /// Folds one backup in; an unfinished PBS snapshot (a backup being written) is no
    /// backup yet: not fresh, not counted, not in the metrics.
    pub fn fold(&mut self, b: &Seen) {
        if b.unfinished {
            return;
        }
        if !self.wanted.is_empty()
            && let Some(slot @ None) = self.wanted.get_mut(b.volid)
        {
            *slot = Some(b.size);
        }
        let Some(vmid) = b.vmid else { return };
        let full = self.by_guest.len() >= MAX_GUESTS;
        let g = match self.by_guest.entry(vmid) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(_) if full => {
                self.unchecked += 1;
                return;
            }
            Entry::Vacant(v) => v.insert(GuestBackups::default()),
        };
        g.fold(b, &self.cx);
    }

    /// A drill restored this volid without saying its size: remember the backup's.
    pub fn want(&mut self, volid: &str) {
        if self.wanted.len() < MAX_GUESTS && !self.wanted.contains_key(volid) {
            self.wanted.insert(volid.to_string(), None);
        }
    }

    /// The size of a backup by volid, as far as the fold kept it.
    pub fn size_of(&self, vmid: u64, volid: &str) -> Option<u64> {
        match self.wanted.get(volid) {
            Some(Some(s)) => *s,
            _ => self.by_guest.get(&vmid)?.recent_size(volid).flatten(),
        }
    }

    /// The UNKNOWN finding of guests not checked.
    pub fn finding(&self) -> Option<pvedr::records::Check> {
        (self.unchecked > 0).then(|| {
            let msg = format!(
                "more than {MAX_GUESTS} guests on the input: {} backup(s) of the others not checked",
                self.unchecked
            );
            crate::status::check("source", "read", Status::Unknown, msg, None, None)
        })
    }
}
