//! Summary, the Nagios status line, the admins' table and the Prometheus textfile.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;

use pvedr::records::{Check, CheckStatus, Summary};
use serde_json::Map;

use crate::inputs::Inputs;
use crate::prom::gauge;
use crate::status::Status;
use crate::summary::Lite;

pub fn worst(checks: &[Check]) -> Status {
    checks
        .iter()
        .map(|c| Status::of(&c.status))
        .max()
        .unwrap_or(Status::Ok)
        // Orphans never raise a run: an all-orphan run is OK.
        .max(Status::Ok)
}

pub fn summary(checks: &[Check], duration_s: f64) -> Summary {
    let found: Vec<Status> = checks.iter().map(|c| Status::of(&c.status)).collect();
    let each = [
        Status::Ok,
        Status::Warning,
        Status::Critical,
        Status::Unknown,
        Status::Orphan,
    ];
    let counts = pvedr::status::counts_each(&found, &each, |s| s.as_str().into());
    Summary {
        tool: Some("backup-check".into()),
        counts,
        exit_code: worst(checks).nagios_code(),
        duration_s: Some((duration_s * 1000.0).round() / 1000.0),
        extra: Map::new(),
        ..Default::default()
    }
}

/// `BACKUP CRITICAL - 1 critical, 2 warning, 0 unknown, 30 ok: guest/102 freshness: … | perfdata`
/// Text from records on the one status line: control characters (a newline would start a
/// second line, an escape sequence reach a terminal) made visible.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `BACKUP UNKNOWN - <why>` on stdout, one line, for a run that could not check. A failed
/// write is left: the exit code (3) still says UNKNOWN.
pub fn print_nagios_unknown(why: &str) {
    use std::io::Write;
    let line = one_line(why).replace('|', "/");
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "BACKUP UNKNOWN - {line}").and_then(|()| out.flush());
}

pub fn nagios_line(checks: &[Check]) -> String {
    let w = worst(checks);
    let count = |s: Status| checks.iter().filter(|c| Status::of(&c.status) == s).count();
    let mut line = format!(
        "BACKUP {} - {} critical, {} warning, {} unknown, {} ok",
        w.as_str().to_uppercase(),
        count(Status::Critical),
        count(Status::Warning),
        count(Status::Unknown),
        count(Status::Ok)
    );
    let orphans = count(Status::Orphan);
    if orphans > 0 {
        let _ = write!(line, ", {orphans} orphan");
    }
    let mut problems: Vec<&Check> = checks
        .iter()
        .filter(|c| Status::of(&c.status) > Status::Ok)
        .collect();
    // What could not be read (a storage that did not answer) comes first at its level.
    problems.sort_by_key(|c| {
        (
            std::cmp::Reverse(Status::of(&c.status)),
            c.component != "source",
        )
    });
    if !problems.is_empty() {
        let shown: Vec<String> = problems
            .iter()
            .take(3)
            .map(|c| one_line(&format!("{} {}: {}", c.component, c.check, c.message)))
            .collect();
        let _ = write!(line, ": {}", shown.join("; "));
        if problems.len() > 3 {
            let _ = write!(line, " (+{} more)", problems.len() - 3);
        }
    }
    // Perfdata must not contain '|'.
    let mut line = line.replace('|', "/");
    let mut perf = Vec::new();
    for c in checks {
        // Perfdata labels: only what no Nagios parser misreads.
        let label: String = c
            .component
            .chars()
            .map(|ch| {
                if ch.is_ascii_alphanumeric() || ".-".contains(ch) {
                    ch
                } else {
                    '_'
                }
            })
            .collect();
        match (c.check.as_str(), &c.value, &c.threshold) {
            ("freshness", Some(v), Some(t)) => perf.push(format!(
                "'{label}_age'={}s;{};{};0",
                v.as_i64().unwrap_or(0).max(0),
                t["warning"],
                t["critical"]
            )),
            ("space", Some(v), Some(t)) => perf.push(format!(
                "'{label}_used'={:.1}%;{};{};0;100",
                v.as_f64().unwrap_or(0.0) * 100.0,
                t["warning"].as_f64().unwrap_or(0.0) * 100.0,
                t["critical"].as_f64().unwrap_or(0.0) * 100.0
            )),
            _ => {}
        }
    }
    if !perf.is_empty() {
        line.push_str(" | ");
        line.push_str(&perf.join(" "));
    }
    line
}

/// The admins' report: one row per component.
pub fn table(out: &mut dyn Write, checks: &[Check], inputs: &Inputs) -> std::io::Result<()> {
    let mut rows: BTreeMap<&str, Vec<&Check>> = BTreeMap::new();
    for c in checks {
        rows.entry(c.component.as_str()).or_default().push(c);
    }
    let newest =
        |vmid: u64| -> Option<&Lite> { inputs.backups.by_guest.get(&vmid)?.latest.as_ref() };
    let mut cells: Vec<[String; 5]> = vec![[
        "COMPONENT".into(),
        "STATUS".into(),
        "LAST BACKUP".into(),
        "SIZE".into(),
        "NOTES".into(),
    ]];
    for (component, cs) in rows {
        let status = cs
            .iter()
            .map(|c| Status::of(&c.status))
            .max()
            .unwrap_or(Status::Ok);
        let b = component
            .strip_prefix("guest/")
            .and_then(|v| v.parse().ok())
            .and_then(newest);
        let notes: Vec<String> = cs
            .iter()
            .filter(|c| c.status != CheckStatus::Ok)
            .map(|c| format!("{}: {}", c.check, c.message))
            .collect();
        cells.push([
            component.to_string(),
            status.as_str().to_uppercase(),
            b.map(|b| b.time.clone()).unwrap_or_else(|| "-".into()),
            b.and_then(|b| b.size)
                .map(pvedr::output::human_bytes)
                .unwrap_or_else(|| "-".into()),
            if notes.is_empty() {
                "ok".into()
            } else {
                notes.join("; ")
            },
        ]);
    }
    let mut widths = [0usize; 5];
    for r in &cells {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    for r in &cells {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        writeln!(out, "{}", line.join("  ").trim_end())?;
    }
    Ok(())
}

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn status_value(s: Status) -> u8 {
    s.nagios_code()
}

/// Prometheus textfile-collector metrics.
pub fn prometheus(checks: &[Check], inputs: &Inputs, run_ts: i64, duration_s: f64) -> String {
    let mut m = String::new();
    let mut metric =
        |name: &str, help: &str, samples: Vec<(String, String)>| gauge(&mut m, name, help, samples);
    // Orphans (their guest is gone) have their own metric: the per-guest series are for
    // guests that exist, so no shipped alert counts them.
    let orphans = crate::orphans::find(inputs);
    // Per guest.
    let names: BTreeMap<u64, &str> = inputs
        .guests
        .iter()
        .filter_map(|g| Some((g.vmid, g.name.as_deref()?)))
        .collect();
    // Guests with a usable backup: its time, size, how many, the guest type.
    let per_guest: BTreeMap<u64, (i64, Option<u64>, usize, &str)> = inputs
        .backups
        .by_guest
        .iter()
        .filter(|(v, _)| !orphans.contains(v))
        .filter_map(|(v, g)| {
            let l = g.latest.as_ref()?;
            Some((*v, (l.ctime, l.size, g.good, l.subtype.as_str())))
        })
        .collect();
    let guest_labels = |v: u64, t: &str| {
        format!(
            "vmid=\"{v}\",type=\"{}\",name=\"{}\"",
            esc(t),
            esc(names.get(&v).copied().unwrap_or(""))
        )
    };
    metric(
        "pvedr_backup_last_timestamp_seconds",
        "Unix time of the newest usable backup of the guest (from the archive name).",
        per_guest
            .iter()
            .map(|(v, e)| (guest_labels(*v, e.3), e.0.to_string()))
            .collect(),
    );
    metric(
        "pvedr_backup_last_size_bytes",
        "Size in bytes of the newest usable backup of the guest.",
        per_guest
            .iter()
            .filter_map(|(v, e)| Some((guest_labels(*v, e.3), e.1?.to_string())))
            .collect(),
    );
    metric(
        "pvedr_backup_archives",
        "Number of usable backups of the guest.",
        per_guest
            .iter()
            .map(|(v, e)| (guest_labels(*v, e.3), e.2.to_string()))
            .collect(),
    );
    let mut guest_status: BTreeMap<u64, Status> = BTreeMap::new();
    for c in checks.iter().filter(|c| c.status != CheckStatus::Orphan) {
        if let Some(v) = c
            .component
            .strip_prefix("guest/")
            .and_then(|v| v.parse().ok())
        {
            let s = guest_status.entry(v).or_insert(Status::Ok);
            *s = (*s).max(Status::of(&c.status));
        }
    }
    metric(
        "pvedr_backup_guest_status",
        "Worst check status of the guest: 0 ok, 1 warning, 2 critical, 3 unknown.",
        guest_status
            .iter()
            .map(|(v, s)| {
                let t = per_guest.get(v).map(|e| e.3).unwrap_or("");
                (guest_labels(*v, t), status_value(*s).to_string())
            })
            .collect(),
    );
    metric(
        "pvedr_backup_storage_used_ratio",
        "Used fraction (0 to 1) of the backup storage.",
        inputs
            .storages
            .iter()
            .filter_map(|s| {
                Some((
                    format!(
                        "node=\"{}\",storage=\"{}\"",
                        esc(s.node.as_deref().unwrap_or("")),
                        esc(&s.storage)
                    ),
                    s.used_fraction?.to_string(),
                ))
            })
            .collect(),
    );
    metric(
        "pvedr_backup_check_status",
        "Status of each check: 0 ok, 1 warning, 2 critical, 3 unknown.",
        checks
            .iter()
            .filter(|c| c.status != CheckStatus::Orphan)
            .map(|c| {
                (
                    format!(
                        "component=\"{}\",check=\"{}\"",
                        esc(&c.component),
                        esc(&c.check)
                    ),
                    status_value(Status::of(&c.status)).to_string(),
                )
            })
            .collect(),
    );
    crate::evidence::metrics(&mut m, inputs, &orphans, run_ts);
    let could_check = !checks
        .iter()
        .any(|c| c.component == "source" && c.status == CheckStatus::Unknown);
    run_metrics(&mut m, could_check, run_ts, duration_s);
    m
}

/// The metrics of a run that could not check at all: only that, with a fresh timestamp, so
/// the file never keeps an earlier run's verdicts.
pub fn prometheus_down(run_ts: i64, duration_s: f64) -> String {
    let mut m = String::new();
    run_metrics(&mut m, false, run_ts, duration_s);
    m
}

fn run_metrics(m: &mut String, could_check: bool, run_ts: i64, duration_s: f64) {
    let gauges = [
        (
            "pvedr_backup_check_up",
            "1 when the last backup-check run could read every source, 0 when it could not (see the source checks).",
            u8::from(could_check).to_string(),
        ),
        (
            "pvedr_backup_check_last_run_timestamp_seconds",
            "Unix time of the last backup-check run.",
            run_ts.to_string(),
        ),
        (
            "pvedr_backup_check_duration_seconds",
            "Duration of the last backup-check run in seconds.",
            format!("{duration_s:.3}"),
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(m, "# HELP {name} {help}");
        let _ = writeln!(m, "# TYPE {name} gauge");
        let _ = writeln!(m, "{name} {value}");
    }
}
