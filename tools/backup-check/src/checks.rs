//! The checks: pure functions from records (and a fixed "now") to `check` records.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use pvedr::records::{Backup, BackupFailure, Check, Guest, Job, Storage, TfstateVersion};
use pvedr::retention::{Entry, KeepOptions, Mark, mark_group};
use pvedr::schedule::Schedule;
use pvedr::time::{Zone, format_duration};
use serde_json::{Map, Value, json};

/// Status, ordered by how bad it is: the worst wins (CRITICAL > WARNING > UNKNOWN > OK).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Ok,
    Unknown,
    Warning,
    Critical,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Unknown => "unknown",
            Status::Warning => "warning",
            Status::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Status {
        match s {
            "ok" => Status::Ok,
            "warning" => Status::Warning,
            "critical" => Status::Critical,
            _ => Status::Unknown,
        }
    }

    /// The Nagios plugin exit code.
    pub fn nagios_code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Critical => 2,
            Status::Unknown => 3,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Thresholds {
    pub max_age: u64,
    pub max_age_critical: u64,
    pub grace: u64,
    pub min_count: usize,
    pub shrink_warn: f64,
    pub storage_warn: f64,
    pub storage_crit: f64,
}

#[derive(Debug, Default)]
pub struct Inputs {
    pub backups: Vec<Backup>,
    pub guests: Vec<Guest>,
    pub storages: Vec<Storage>,
    pub jobs: Vec<Job>,
    pub failures: Vec<BackupFailure>,
    pub tfstate: Vec<TfstateVersion>,
    /// volid → what is wrong, for archives `--deep` found damaged.
    pub damaged: HashMap<String, String>,
    /// How many archives `--deep` checked (None: it did not run).
    pub deep_checked: Option<usize>,
}

fn check(
    component: &str,
    name: &str,
    status: Status,
    message: String,
    value: Option<Value>,
    threshold: Option<Value>,
) -> Check {
    Check {
        component: component.into(),
        check: name.into(),
        status: status.as_str().into(),
        message,
        value,
        threshold,
        extra: Map::new(),
    }
}

fn job_policy(job: &Job) -> Option<KeepOptions> {
    job.prune_backups
        .as_ref()
        .and_then(|p| KeepOptions::from_json(p).ok())
}

/// The enabled job backing up a guest (one writing to a storage first).
fn covering_job(jobs: &[Job], vmid: u64) -> Option<&Job> {
    jobs.iter()
        .find(|j| j.enabled && j.covers(vmid) == Some(true))
}

fn age_text(secs: i64) -> String {
    format_duration(secs.max(0) as u64)
}

/// Clock skew between the node and this host tolerated before a backup is "in the future".
const MAX_SKEW: i64 = 300;

/// Why a backup's time cannot be right at `now`: before 1970, so far off that `now - ctime`
/// overflows, or in the future beyond [`MAX_SKEW`]. `None` for a plausible time.
fn time_problem(now: i64, ctime: i64) -> Option<String> {
    match now.checked_sub(ctime) {
        None => Some(format!("has an impossible time (ctime {ctime})")),
        Some(_) if ctime < 0 => Some(format!("has an impossible time (ctime {ctime})")),
        Some(age) if age < -MAX_SKEW => {
            let when = pvedr::records::rfc3339(ctime);
            Some(format!(
                "is dated in the future: {} ({} ahead, more than {} of clock skew)",
                if when.is_empty() {
                    ctime.to_string()
                } else {
                    when
                },
                format_duration(age.unsigned_abs()),
                format_duration(MAX_SKEW as u64)
            ))
        }
        Some(_) => None,
    }
}

pub fn run_checks(inp: &Inputs, th: &Thresholds, now: i64, zone: Zone) -> Vec<Check> {
    let mut out = Vec::new();
    let guests_known = !inp.guests.is_empty();
    let jobs_known = !inp.jobs.is_empty();

    // Every guest: from guest records (templates aside), backups, failures.
    let mut vmids: BTreeSet<u64> = BTreeSet::new();
    vmids.extend(inp.guests.iter().filter(|g| !g.template).map(|g| g.vmid));
    vmids.extend(inp.backups.iter().filter_map(|b| b.vmid));
    vmids.extend(inp.failures.iter().map(|f| f.vmid));
    let templates: BTreeSet<u64> = inp
        .guests
        .iter()
        .filter(|g| g.template)
        .map(|g| g.vmid)
        .collect();

    let mut by_guest: BTreeMap<u64, Vec<&Backup>> = BTreeMap::new();
    for b in &inp.backups {
        if let Some(v) = b.vmid {
            by_guest.entry(v).or_default().push(b);
        }
    }
    for vmid in vmids {
        if templates.contains(&vmid) {
            continue;
        }
        let component = format!("guest/{vmid}");
        let all: Vec<&Backup> = by_guest.get(&vmid).cloned().unwrap_or_default();
        let good: Vec<&Backup> = all
            .iter()
            .copied()
            .filter(|b| !inp.damaged.contains_key(&b.volid))
            .collect();
        // A backup dated in the future would count as fresh forever: it gets a `time` check.
        let newest = good
            .iter()
            .copied()
            .filter(|b| time_problem(now, b.ctime).is_none())
            .max_by_key(|b| b.ctime);
        let job = covering_job(&inp.jobs, vmid);

        // Coverage (needs guest records).
        if guests_known && inp.guests.iter().any(|g| g.vmid == vmid) {
            if all.is_empty() {
                out.push(check(
                    &component,
                    "coverage",
                    Status::Critical,
                    "no backup at all".into(),
                    Some(json!(0)),
                    Some(json!(1)),
                ));
            } else if jobs_known && job.is_none() {
                let disabled: Vec<&str> = inp
                    .jobs
                    .iter()
                    .filter(|j| !j.enabled && j.covers(vmid) == Some(true))
                    .map(|j| j.id.as_str())
                    .collect();
                let msg = if disabled.is_empty() {
                    "not in any enabled backup job".to_string()
                } else {
                    format!(
                        "only in disabled backup job(s) {} (Proxmox counts these as covered; they do not run)",
                        disabled.join(", ")
                    )
                };
                out.push(check(
                    &component,
                    "coverage",
                    Status::Warning,
                    msg,
                    None,
                    None,
                ));
            } else {
                let via = job.map(|j| format!(" by job {}", j.id)).unwrap_or_default();
                out.push(check(
                    &component,
                    "coverage",
                    Status::Ok,
                    format!("backed up{via}"),
                    None,
                    None,
                ));
            }
        }

        // Freshness.
        let interval = job
            .and_then(|j| j.schedule.as_deref())
            .and_then(Schedule::parse)
            .map(|s| s.max_interval());
        let (warn, crit, basis) = match interval {
            Some(i) => (
                i + th.grace,
                2 * i + th.grace,
                format!("job {} schedule", job.map(|j| j.id.as_str()).unwrap_or("")),
            ),
            None => (th.max_age, th.max_age_critical, "--max-age".to_string()),
        };
        let threshold = json!({"warning": warn, "critical": crit});
        match newest {
            Some(b) => {
                let age = now.saturating_sub(b.ctime);
                let status = if age > crit as i64 {
                    Status::Critical
                } else if age > warn as i64 {
                    Status::Warning
                } else {
                    Status::Ok
                };
                out.push(check(
                    &component,
                    "freshness",
                    status,
                    format!(
                        "newest backup is {} old ({}; limits from {basis})",
                        age_text(age),
                        b.volid
                    ),
                    Some(json!(age)),
                    Some(threshold),
                ));
            }
            None if !all.is_empty() => out.push(check(
                &component,
                "freshness",
                Status::Critical,
                if good.is_empty() {
                    format!("no usable backup: all {} are damaged", all.len())
                } else {
                    format!(
                        "no usable backup: all {} are damaged or impossibly dated",
                        all.len()
                    )
                },
                None,
                Some(threshold),
            )),
            None if !(guests_known && inp.guests.iter().any(|g| g.vmid == vmid)) => {
                out.push(check(
                    &component,
                    "freshness",
                    Status::Critical,
                    "no backup at all".into(),
                    None,
                    Some(threshold),
                ))
            }
            None => {}
        }
        for b in &all {
            if let Some(why) = time_problem(now, b.ctime) {
                out.push(check(
                    &component,
                    "time",
                    Status::Critical,
                    format!("{} {why}", b.volid),
                    None,
                    None,
                ));
            }
        }

        // Count.
        if !all.is_empty() || th.min_count > 1 {
            let status = if good.len() < th.min_count {
                Status::Warning
            } else {
                Status::Ok
            };
            out.push(check(
                &component,
                "count",
                status,
                format!("{} usable backup(s)", good.len()),
                Some(json!(good.len())),
                Some(json!(th.min_count)),
            ));
        }

        // Size: zero bytes, or shrunk against the previous backup on the same storage.
        if let Some(b) = newest {
            let prev = good
                .iter()
                .filter(|p| {
                    p.storage == b.storage && p.ctime < b.ctime && !p.format.starts_with("pbs-")
                })
                .max_by_key(|p| p.ctime);
            let (status, msg) = match (b.size, prev.and_then(|p| p.size)) {
                (Some(0), _) => (
                    Status::Critical,
                    format!("newest backup is empty (0 bytes): {}", b.volid),
                ),
                (Some(s), Some(p))
                    if p > 0
                        && (s as f64) < th.shrink_warn * p as f64
                        && !b.format.starts_with("pbs-") =>
                {
                    (
                        Status::Warning,
                        format!(
                            "newest backup shrank to {:.0}% of the previous one ({s} < {p} bytes)",
                            100.0 * s as f64 / p as f64
                        ),
                    )
                }
                (Some(s), _) => (Status::Ok, format!("{s} bytes")),
                (None, _) => (Status::Unknown, "size unknown".into()),
            };
            out.push(check(
                &component,
                "size",
                status,
                msg,
                b.size.map(|s| json!(s)),
                Some(json!(th.shrink_warn)),
            ));
        }

        // The last run: a failed run newer than the newest good backup.
        let newest_time = newest.map(|b| b.ctime).unwrap_or(i64::MIN);
        if let Some(f) = inp
            .failures
            .iter()
            .filter(|f| f.vmid == vmid)
            .max_by_key(|f| f.ctime)
        {
            let (status, msg) = if f.ctime > newest_time {
                (
                    Status::Critical,
                    format!(
                        "last backup run failed at {}: {}",
                        f.time,
                        f.error.as_deref().unwrap_or("see log")
                    ),
                )
            } else {
                (
                    Status::Ok,
                    format!("an older run failed at {}, a newer backup exists", f.time),
                )
            };
            out.push(check(&component, "last-run", status, msg, None, None));
        }

        // PBS verification.
        for b in all
            .iter()
            .filter(|b| b.verification.as_ref().is_some_and(|v| v.state == "failed"))
        {
            let newest_here = all
                .iter()
                .filter(|x| x.storage == b.storage)
                .map(|x| x.ctime)
                .max()
                == Some(b.ctime);
            let status = if newest_here {
                Status::Critical
            } else {
                Status::Warning
            };
            out.push(check(
                &component,
                "verification",
                status,
                format!("PBS verification failed: {}", b.volid),
                None,
                None,
            ));
        }

        // Integrity (--deep).
        if inp.deep_checked.is_some() {
            for b in &all {
                if let Some(why) = inp.damaged.get(&b.volid) {
                    out.push(check(
                        &component,
                        "integrity",
                        Status::Critical,
                        format!("{} is damaged: {why}", b.volid),
                        None,
                        None,
                    ));
                }
            }
            if !all.is_empty() && all.iter().all(|b| !inp.damaged.contains_key(&b.volid)) {
                out.push(check(
                    &component,
                    "integrity",
                    Status::Ok,
                    format!("{} archive(s) whole", all.len()),
                    None,
                    None,
                ));
            }
        }

        // Retention conformance against the job's prune-backups.
        if let Some((j, opts)) = job
            .and_then(|j| job_policy(j).map(|o| (j, o)))
            .filter(|(j, _)| j.storage.is_none() || good.iter().any(|b| b.storage == j.storage))
        {
            let mut groups: BTreeMap<(Option<&str>, &str), Vec<&Backup>> = BTreeMap::new();
            for b in &good {
                if j.storage.is_none() || b.storage == j.storage {
                    groups
                        .entry((b.storage.as_deref(), b.subtype.as_str()))
                        .or_default()
                        .push(b);
                }
            }
            let local = |t: i64| zone.to_local(t).unwrap_or_default();
            let mut extra = 0;
            let mut kept = 0;
            for g in groups.values() {
                let entries: Vec<Entry> = g
                    .iter()
                    .map(|b| Entry {
                        ctime: b.ctime,
                        std_name: std_name(b),
                        protected: b.protected,
                    })
                    .collect();
                let marks = mark_group(&entries, &opts, &local);
                extra += marks.iter().filter(|(m, _)| *m == Mark::Remove).count();
                kept += marks.iter().filter(|(m, _)| *m == Mark::Keep).count();
            }
            let slots: u64 = opts.counts().iter().sum();
            let on_storage: Vec<&&Backup> = groups.values().flatten().collect();
            let span = (
                on_storage.iter().map(|b| b.ctime).min(),
                on_storage.iter().map(|b| b.ctime).max(),
            );
            let runs = match (interval, span) {
                (Some(i), (Some(oldest), Some(newest))) if i > 0 => {
                    (newest.abs_diff(oldest) / i).saturating_add(1).min(slots)
                }
                _ => 0,
            };
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
                &component,
                "retention",
                status,
                msg,
                Some(json!(good.len())),
                Some(json!(opts.to_string())),
            ));
        }
    }

    // Jobs: the last run's outcome.
    for j in inp.jobs.iter().filter(|j| j.enabled) {
        let Some(t) = j.last_task.as_ref() else {
            continue;
        };
        let status_text = t.get("status").and_then(Value::as_str).unwrap_or("");
        let node = t.get("node").and_then(Value::as_str).unwrap_or("?");
        let (status, msg) = match status_text {
            "OK" => (Status::Ok, format!("last run on {node} OK")),
            s if s.starts_with("WARNINGS") => {
                (Status::Ok, format!("last run on {node} finished with {s}"))
            }
            "RUNNING" => (Status::Ok, format!("running on {node}")),
            s => (
                Status::Critical,
                format!(
                    "last run on {node} failed: {s} ({})",
                    t.get("upid").and_then(Value::as_str).unwrap_or("")
                ),
            ),
        };
        out.push(check(
            &format!("job/{}", j.id),
            "last-run",
            status,
            msg,
            Some(json!(status_text)),
            None,
        ));
    }

    // Storage space.
    for s in &inp.storages {
        let component = format!("storage/{}/{}", s.node.as_deref().unwrap_or("-"), s.storage);
        let threshold = json!({"warning": th.storage_warn, "critical": th.storage_crit});
        match s.used_fraction {
            _ if !s.active => out.push(check(
                &component,
                "space",
                Status::Unknown,
                "storage is not active".into(),
                None,
                Some(threshold),
            )),
            None => out.push(check(
                &component,
                "space",
                Status::Unknown,
                "usage unknown".into(),
                None,
                Some(threshold),
            )),
            Some(f) => {
                let status = if f >= th.storage_crit {
                    Status::Critical
                } else if f >= th.storage_warn {
                    Status::Warning
                } else {
                    Status::Ok
                };
                out.push(check(
                    &component,
                    "space",
                    status,
                    format!("{:.1}% used", f * 100.0),
                    Some(json!(f)),
                    Some(threshold),
                ));
            }
        }
    }

    out.extend(tfstate_checks(&inp.tfstate));
    out
}

fn std_name(b: &Backup) -> bool {
    if b.format.starts_with("pbs-") {
        return true;
    }
    let file = b.volid.rsplit('/').next().unwrap_or("");
    pvedr::archive::parse(file).is_some_and(|a| a.is_std_name())
}

fn tfstate_checks(versions: &[TfstateVersion]) -> Vec<Check> {
    let mut out = Vec::new();
    let mut groups: BTreeMap<(String, String), Vec<&TfstateVersion>> = BTreeMap::new();
    for v in versions {
        groups
            .entry((v.bucket.clone(), v.key.clone()))
            .or_default()
            .push(v);
    }
    for ((bucket, key), vs) in groups {
        let env = vs
            .iter()
            .find_map(|v| v.env.clone())
            .unwrap_or_else(|| bucket.clone());
        let component = format!("tfstate/{env}");
        if vs.iter().any(|v| v.version_id == "null") {
            out.push(check(
                &component,
                "versioning",
                Status::Warning,
                format!(
                    "bucket {bucket} has no versioning: an overwritten state cannot be recovered"
                ),
                None,
                None,
            ));
        } else {
            out.push(check(
                &component,
                "versioning",
                Status::Ok,
                format!("{} version(s) of {key}", vs.len()),
                Some(json!(vs.len())),
                None,
            ));
        }
        let latest = vs.iter().find(|v| v.is_latest);
        match latest {
            Some(l) if l.delete_marker => out.push(check(
                &component,
                "state",
                Status::Critical,
                format!(
                    "{key} is deleted (newest entry is a delete marker {})",
                    l.version_id
                ),
                None,
                None,
            )),
            Some(l) => {
                let parsed = l.serial.is_some() && l.lineage.is_some();
                let valid = l.extra.get("valid").and_then(Value::as_bool);
                let (status, msg) = match (parsed, valid) {
                    (_, Some(false)) => (
                        Status::Critical,
                        format!("current version {} is not a valid state file", l.version_id),
                    ),
                    (true, _) => (
                        Status::Ok,
                        format!(
                            "serial {} lineage {}",
                            l.serial.unwrap_or(0),
                            l.lineage.as_deref().unwrap_or("")
                        ),
                    ),
                    (false, _) => (
                        Status::Unknown,
                        "not inspected: use tfstate-versions list --inspect".into(),
                    ),
                };
                out.push(check(
                    &component,
                    "state",
                    status,
                    msg,
                    l.serial.map(|s| json!(s)),
                    None,
                ));
            }
            None => out.push(check(
                &component,
                "state",
                Status::Unknown,
                "no current version in the input".into(),
                None,
                None,
            )),
        }
        let lineages: BTreeSet<&str> = vs.iter().filter_map(|v| v.lineage.as_deref()).collect();
        if lineages.len() > 1 {
            out.push(check(
                &component,
                "lineage",
                Status::Warning,
                format!(
                    "{} lineages across versions: {}",
                    lineages.len(),
                    lineages.iter().copied().collect::<Vec<_>>().join(", ")
                ),
                None,
                None,
            ));
        } else if lineages.len() == 1 {
            out.push(check(
                &component,
                "lineage",
                Status::Ok,
                "one lineage across versions".into(),
                None,
                None,
            ));
        }
    }
    out
}
