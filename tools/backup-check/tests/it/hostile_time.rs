//! Impossible times (issue 11 point 4): a ctime that wraps the age subtraction, or a backup
//! dated in the future, never reads as "0s old, OK". Such a backup gets a CRITICAL `time`
//! check with the reason and does not count for freshness.

use std::time::Duration;

use pvedr_testkit::{bin, json_lines, outcome};
use serde_json::Value;

use crate::common::{NOW, on_dir};

/// A backup record of guest 100 with `ctime` written as given (any JSON number).
fn record(volid_time: &str, ctime: &str) -> String {
    format!(
        r#"{{"kind":"backup","node":"pve1","storage":"local","vmid":100,"subtype":"qemu","volid":"local:backup/vzdump-qemu-100-{volid_time}.vma.zst","ctime":{ctime},"time":"","size":1000,"format":"vma.zst","protected":false}}"#
    )
}

const JOB: &str = r#"{"kind":"job","id":"daily","all":true,"enabled":true,"schedule":"02:00","storage":"local","prune_backups":{"keep-last":3}}"#;

fn check_stdin(lines: &[String]) -> (Vec<Value>, i32, String) {
    let mut input: String = lines.iter().map(|l| format!("{l}\n")).collect();
    input.push_str(&pvedr_testkit::listing_end(lines.len()));
    outcome(
        bin("backup-check")
            .args(["--now", &NOW.to_string(), "--timezone", "UTC"])
            .write_stdin(input)
            .timeout(Duration::from_secs(20)),
    )
}

fn find<'a>(checks: &'a [Value], check: &str) -> &'a Value {
    checks
        .iter()
        .find(|c| c["component"] == "guest/100" && c["check"] == check)
        .unwrap_or_else(|| panic!("no {check} in {checks:?}"))
}

fn freshness(checks: &[Value]) -> &Value {
    find(checks, "freshness")
}

/// The messages of the CRITICAL `time` checks of guest 100.
fn time_problems(checks: &[Value]) -> Vec<String> {
    checks
        .iter()
        .filter(|c| c["component"] == "guest/100" && c["check"] == "time")
        .inspect(|c| assert_eq!(c["status"], "critical", "{c}"))
        .map(|c| c["message"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn absurd_ctimes_are_never_ok() {
    // i64::MIN wraps `now - ctime`; i64::MAX is the far future.
    for ctime in ["-9223372036854775808", "9223372036854775807"] {
        let (checks, code, err) = check_stdin(&[record("2024_01_15-02_00_00", ctime)]);
        assert_eq!(code, 2, "ctime {ctime}: {checks:?} {err}");
        let f = freshness(&checks);
        assert_eq!(f["status"], "critical", "ctime {ctime}: {f}");
        let t = time_problems(&checks);
        assert_eq!(t.len(), 1, "{checks:?}");
        assert!(
            t[0].contains("impossible") || t[0].contains("future"),
            "{t:?}"
        );
    }
    // 1e300 is no integer: the record is refused, the run UNKNOWN.
    let (checks, code, err) = check_stdin(&[record("2024_01_15-02_00_00", "1e300")]);
    assert_eq!(code, 3, "{checks:?} {err}");
    assert!(err.contains("bad `backup` record"), "{err}");
}

#[test]
fn absurd_ctimes_beside_a_job_and_good_backups_do_not_break_the_run() {
    // Retention spans the oldest to the newest backup: MIN and MAX on one storage.
    let lines = vec![
        JOB.to_string(),
        record("2024_01_15-02_00_00", &(NOW - 3600).to_string()),
        record("1970_01_01-00_00_00", "-9223372036854775808"),
        record("2099_01_01-00_00_00", "9223372036854775807"),
    ];
    let (checks, code, err) = check_stdin(&lines);
    assert_eq!(code, 2, "{checks:?} {err}");
    // Freshness is that of the good backup; the two others are reported.
    assert_eq!(freshness(&checks)["status"], "ok", "{checks:?}");
    assert_eq!(freshness(&checks)["value"], 3600);
    assert_eq!(time_problems(&checks).len(), 2, "{checks:?}");
    assert!(
        checks.iter().any(|c| c["check"] == "retention"),
        "{checks:?}"
    );
}

#[test]
fn a_backup_from_the_future_is_critical() {
    // An archive named for 2099 (read in UTC), listed from a dump directory.
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::write(
        tmp.path()
            .join("vzdump-qemu-100-2099_01_01-00_00_00.vma.zst"),
        b"0123456789",
    )
    .expect("write");
    let out = on_dir(tmp.path())
        .timeout(Duration::from_secs(20))
        .output()
        .expect("run");
    let checks = json_lines(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{checks:?}");
    assert_eq!(freshness(&checks)["status"], "critical", "{checks:?}");
    let t = time_problems(&checks);
    assert_eq!(t.len(), 1, "{checks:?}");
    assert!(
        t[0].contains("future") && t[0].contains("2099-01-01"),
        "{t:?}"
    );

    // Within the clock skew (two minutes ahead) it is simply fresh.
    let (checks, code, err) =
        check_stdin(&[record("2024_01_15-06_28_40", &(NOW + 120).to_string())]);
    assert_eq!(code, 0, "{checks:?} {err}");
    assert_eq!(freshness(&checks)["status"], "ok");
}
