//! Restore drills as evidence, orphaned backups and per-guest policy from Proxmox tags
//! (issue 28, points 1 and 2): through the built binary, on records and on the simulator.

use std::path::Path;

use pvedr_testkit::{assert_says, demo_over_ssh, json_lines};
use serde_json::{Value, json};

use crate::common::{NOW, backup, on_records};

const DAY: i64 = 86_400;

fn guest(vmid: u64, tags: &str) -> Value {
    json!({"kind": "guest", "node": "pve1", "vmid": vmid, "type": "qemu", "status": "running",
           "name": format!("vm{vmid}"), "tags": tags})
}

/// A `restore` record of `pve-restore --test`, `started` that long before NOW.
fn drill(vmid: u64, ago: i64, status: &str, volid: Option<&str>) -> Value {
    let started = chrono::DateTime::from_timestamp(NOW - ago, 0).expect("time");
    json!({"kind": "restore", "vmid": vmid, "target_vmid": 9000 + vmid, "volid": volid,
           "node": "pve1", "dry_run": false, "status": status, "duration_s": 50.0,
           "error": (status != "verified").then_some("archive damaged: zstd: corrupted block"),
           "drill": true, "started": started.to_rfc3339()})
}

struct Run {
    checks: Vec<Value>,
    code: i32,
    stdout: String,
}

fn run(records: &[Value], args: &[&str]) -> Run {
    let out = on_records(records, args);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    Run {
        checks: if args.contains(&"--nagios") {
            Vec::new()
        } else {
            json_lines(&out.stdout)
        },
        code: out.status.code().unwrap_or(-1),
        stdout,
    }
}

fn find<'a>(checks: &'a [Value], component: &str, check: &str) -> Option<&'a Value> {
    checks
        .iter()
        .find(|c| c["component"] == component && c["check"] == check)
}

fn status(checks: &[Value], component: &str, check: &str) -> String {
    find(checks, component, check)
        .map(|c| c["status"].as_str().unwrap_or("").to_string())
        .unwrap_or_else(|| "absent".into())
}

fn write_lines(path: &Path, lines: &[Value]) {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(path, text).expect("write");
}

#[test]
fn drilled_never_drilled_and_failed_drill_guests_are_ok_warning_critical_with_metrics() {
    let dir = tempfile::tempdir().expect("tmp");
    let history = dir.path().join("drills.jsonl");
    let prom = dir.path().join("pvedr.prom");
    let b100 = backup(100, NOW - 3600, 500_000_000);
    let volid = b100["volid"].as_str().expect("volid").to_string();
    // 100: drilled ten days ago (the history); 102: its last drill was refused (stdin),
    // after a success.
    write_lines(
        &history,
        &[
            drill(100, 10 * DAY, "verified", Some(&volid)),
            drill(102, 20 * DAY, "verified", None),
        ],
    );
    let records = [
        guest(100, ""),
        guest(101, ""),
        guest(102, ""),
        b100,
        backup(101, NOW - 3600, 1000),
        backup(102, NOW - 7200, 1000),
        drill(102, DAY, "refused", None),
    ];
    let r = run(
        &records,
        &[
            "--drill-history",
            history.to_str().expect("path"),
            "--prom",
            prom.to_str().expect("path"),
        ],
    );
    assert_eq!(status(&r.checks, "guest/100", "drill"), "ok");
    assert_eq!(status(&r.checks, "guest/101", "drill"), "warning");
    let failed = find(&r.checks, "guest/102", "drill").expect("drill of 102");
    assert_eq!(failed["status"], "critical");
    assert!(failed["message"].as_str().unwrap_or("").contains("refused"));
    assert_eq!(r.code, 2);
    let metrics = std::fs::read_to_string(&prom).expect("metrics");
    let started = NOW - 10 * DAY;
    for line in [
        format!("pvedr_restore_drill_last_success_timestamp_seconds{{guest=\"100\"}} {started}"),
        "pvedr_restore_drill_duration_seconds{guest=\"100\"} 50.000".into(),
        // The record holds no size: the backup it restored has 500 MB, in 50 s.
        "pvedr_restore_throughput_bytes_per_second{guest=\"100\"} 10000000".into(),
        "pvedr_rpo_seconds{guest=\"100\"} 3600".into(),
        "pvedr_rpo_seconds{guest=\"102\"} 7200".into(),
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in\n{metrics}"
        );
    }
    assert!(!metrics.contains("pvedr_restore_drill_last_success_timestamp_seconds{guest=\"101\"}"));
}

#[test]
fn a_drill_older_than_max_drill_age_warns_and_drills_are_unchecked_without_evidence() {
    let records = [
        guest(100, ""),
        backup(100, NOW - 3600, 1000),
        drill(100, 40 * DAY, "verified", None),
    ];
    let stale = run(&records, &[]);
    assert_eq!(status(&stale.checks, "guest/100", "drill"), "warning");
    assert_eq!(stale.code, 1);
    let fine = run(&records, &["--max-drill-age", "60d"]);
    assert_eq!(status(&fine.checks, "guest/100", "drill"), "ok");
    assert_eq!(fine.code, 0);
    // No drill record, no flag: no drill check (the runs of today stay as they were).
    let none = run(&records[..2], &[]);
    assert_eq!(status(&none.checks, "guest/100", "drill"), "absent");
    // The flag alone asks for them.
    let asked = run(&records[..2], &["--max-drill-age", "35d"]);
    assert_eq!(status(&asked.checks, "guest/100", "drill"), "warning");
    let bad = run(&records, &["--max-drill-age", "monthly"]);
    assert_eq!(bad.code, 3);
}

#[test]
fn a_deleted_guests_backups_are_orphans_and_raise_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let prom = dir.path().join("pvedr.prom");
    // Guest 555 is gone: its backups are a year old, with a failed run and a shrink.
    let records = [
        guest(100, ""),
        backup(100, NOW - 3600, 1000),
        backup(555, NOW - 365 * DAY, 1000),
        backup(555, NOW - 364 * DAY, 1),
    ];
    let r = run(&records, &["--prom", prom.to_str().expect("path")]);
    let orphan = find(&r.checks, "guest/555", "orphan").expect("orphan finding");
    assert_eq!(orphan["status"], "orphan");
    assert_eq!(orphan["value"], 2);
    assert!(
        r.checks
            .iter()
            .filter(|c| c["component"] == "guest/555")
            .all(|c| c["status"] == "orphan"),
        "{:?}",
        r.checks
    );
    let summary = r.checks.last().expect("summary");
    assert_eq!(summary["counts"]["orphan"], 1);
    assert_eq!(summary["exit_code"], 0);
    assert_eq!(r.code, 0);
    let metrics = std::fs::read_to_string(&prom).expect("metrics");
    assert!(
        metrics.contains("pvedr_orphan_backups{guest=\"555\"} 2"),
        "{metrics}"
    );
    // The series the shipped alerts read leave it out.
    assert!(!metrics.contains("vmid=\"555\""), "{metrics}");
    assert!(!metrics.contains("component=\"guest/555\""), "{metrics}");
    let nagios = run(&records, &["--nagios"]);
    assert_eq!(nagios.code, 0);
    assert!(
        nagios.stdout.starts_with("BACKUP OK - "),
        "{}",
        nagios.stdout
    );
    assert!(nagios.stdout.contains("1 orphan"), "{}", nagios.stdout);
    // Without a guest list nobody knows the guest is gone: judged as before.
    let blind = run(&records[1..], &[]);
    assert_eq!(status(&blind.checks, "guest/555", "freshness"), "critical");
}

#[test]
fn tags_change_verdicts_as_documented() {
    // 101 parked on purpose, never backed up; 102 stopped, backed up weekly, 5 days ago;
    // 103 not to be drilled.
    let untagged = [
        guest(101, ""),
        guest(102, "prod"),
        guest(103, ""),
        backup(102, NOW - 5 * DAY, 1000),
        backup(103, NOW - 3600, 1000),
    ];
    let mut tagged = untagged.clone();
    tagged[0] = guest(101, "pvedr-nobackup");
    tagged[1] = guest(102, "prod;PVEDR-RPO-7d");
    tagged[2] = guest(103, "pvedr-nodrill");
    let args = ["--max-drill-age", "35d"];
    let before = run(&untagged, &args);
    assert_eq!(status(&before.checks, "guest/101", "coverage"), "critical");
    assert_eq!(status(&before.checks, "guest/102", "freshness"), "critical");
    assert_eq!(status(&before.checks, "guest/103", "drill"), "warning");
    let after = run(&tagged, &args);
    assert_eq!(status(&after.checks, "guest/101", "coverage"), "absent");
    assert_eq!(status(&after.checks, "guest/101", "drill"), "absent");
    assert_eq!(status(&after.checks, "guest/101", "policy"), "ok");
    let fresh = find(&after.checks, "guest/102", "freshness").expect("freshness");
    assert_eq!(fresh["status"], "ok");
    assert_eq!(
        fresh["threshold"],
        json!({"warning": 7 * DAY, "critical": 14 * DAY})
    );
    assert_eq!(status(&after.checks, "guest/103", "drill"), "ok");
    // 102 is still judged: never drilled.
    assert_eq!(status(&after.checks, "guest/102", "drill"), "warning");
    assert_eq!(after.code, 1);
    // Past its own RPO the parked guest warns again.
    let mut late = tagged.clone();
    late[3] = backup(102, NOW - 8 * DAY, 1000);
    let late = run(&late, &args);
    assert_eq!(status(&late.checks, "guest/102", "freshness"), "warning");
    // A tag that says no duration is UNKNOWN, not ignored.
    let mut odd = tagged.clone();
    odd[1] = guest(102, "pvedr-rpo-weekly");
    let odd = run(&odd, &[]);
    assert_eq!(status(&odd.checks, "guest/102", "policy"), "unknown");
}

#[test]
fn a_drill_history_with_garbage_is_unknown_naming_file_and_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let history = dir.path().join("drills.jsonl");
    let good = drill(100, DAY, "verified", None).to_string();
    let huge = format!("{{\"kind\":\"restore\",\"x\":\"{}\"}}", "a".repeat(3 << 20));
    let text = format!("{good}\nnot json at all\n{huge}\n{{\"kind\":\"restore\"}}\n");
    std::fs::write(&history, text).expect("write");
    let records = [guest(100, ""), backup(100, NOW - 3600, 1000)];
    let path = history.to_str().expect("path");
    let r = run(&records, &["--drill-history", path]);
    let unknown: Vec<&str> = r
        .checks
        .iter()
        .filter(|c| c["check"] == "drill-history" && c["status"] == "unknown")
        .filter_map(|c| c["message"].as_str())
        .collect();
    for line in [2, 3, 4] {
        let at = format!("{path}:{line}:");
        assert!(
            unknown.iter().any(|m| m.contains(&at)),
            "{at} in {unknown:?}"
        );
    }
    // The good line still counts.
    assert_eq!(status(&r.checks, "guest/100", "drill"), "ok");
    assert_eq!(r.code, 3);
    // A file that is not JSON Lines at all, or is missing: UNKNOWN, never OK.
    std::fs::write(&history, [0u8, 159, 146, 150, 255, 10, 1, 2]).expect("write");
    let binary = run(&records, &["--drill-history", path]);
    assert_eq!(status(&binary.checks, "source", "drill-history"), "unknown");
    // No drill read: 100 counts as never drilled, which outranks UNKNOWN.
    assert_eq!(status(&binary.checks, "guest/100", "drill"), "warning");
    assert_eq!(binary.code, 1);
    // A drill without a time cannot be aged; an error with escapes reaches no terminal.
    let mut undated = drill(100, DAY, "failed", None);
    undated["started"] = json!("yesterday");
    let mut escaped = drill(101, DAY, "failed", None);
    escaped["error"] = json!("\u{1b}[2J\ncleared");
    let r = run(&[guest(100, ""), guest(101, ""), undated, escaped], &[]);
    let u = find(&r.checks, "source", "drill-history").expect("undated finding");
    assert_says(u, "message", "without a `started` time");
    let m = find(&r.checks, "guest/101", "drill").expect("drill of 101");
    assert!(
        !m["message"].as_str().unwrap_or("").contains('\u{1b}'),
        "{m}"
    );
    let gone = dir.path().join("none.jsonl");
    let missing = run(&records, &["--drill-history", gone.to_str().expect("path")]);
    let m = find(&missing.checks, "source", "drill-history").expect("finding");
    assert_eq!(m["status"], "unknown");
    assert!(m["message"].as_str().unwrap_or("").contains("none.jsonl"));
}

#[test]
fn on_the_cluster_a_deleted_guest_is_an_orphan_and_a_parked_one_is_not_alarmed() {
    let (sim, sshd) = demo_over_ssh();
    // 102 (backups on nas, a failed last run) is deleted; 103 (stopped, no backup) is parked.
    std::fs::remove_file(sim.root().join("guests/102.json")).expect("delete 102");
    sim.edit_guest(103, |g| {
        g["tags"] = json!("test;pvedr-nobackup");
    });
    let out = sshd
        .bin("backup-check")
        .args(["--node", "pve1", "--node", "pve2", "--timezone", "UTC"])
        .args(["--now", &NOW.to_string()])
        .output()
        .expect("run");
    let checks = json_lines(&out.stdout);
    assert_eq!(status(&checks, "guest/102", "orphan"), "orphan");
    assert_eq!(status(&checks, "guest/102", "last-run"), "absent");
    assert_eq!(status(&checks, "guest/103", "coverage"), "absent");
    assert_eq!(status(&checks, "guest/103", "policy"), "ok");
    assert_eq!(status(&checks, "guest/100", "freshness"), "ok");
}
