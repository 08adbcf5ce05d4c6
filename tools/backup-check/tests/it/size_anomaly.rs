//! Size anomalies: the newest backup against the median of the guest's previous ones
//! (`--size-window`, `--size-grow`, `--size-shrink`), reported under the `size` check.

use pvedr_testkit::json_lines;
use serde_json::{Value, json};

use crate::common::{NOW, on_records};

const DAY: i64 = 86_400;
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

fn backup(storage: &str, format: &str, days_ago: i64, size: u64) -> Value {
    let ctime = NOW - 3600 - days_ago * DAY;
    json!({"kind": "backup", "node": "pve1", "storage": storage, "vmid": 100, "subtype": "qemu",
           "volid": format!("{storage}:backup/vzdump-qemu-100-{ctime}.{format}"), "ctime": ctime,
           "time": "", "size": size, "format": format, "protected": false})
}

fn gib(g: f64) -> u64 {
    (g * GIB) as u64
}

/// Seven daily backups around 9.8 GiB before the newest one.
fn history(storage: &str, format: &str) -> Vec<Value> {
    [9.6, 9.9, 9.8, 10.1, 9.7, 9.8, 9.9]
        .iter()
        .enumerate()
        .map(|(i, g)| backup(storage, format, i as i64 + 1, gib(*g)))
        .collect()
}

/// [`history`], then the newest backup of `newest` GiB on `local` in vma.zst.
fn series(storage: &str, format: &str, newest: f64) -> Vec<Value> {
    let mut recs = history(storage, format);
    recs.push(backup("local", "vma.zst", 0, gib(newest)));
    recs
}

fn run(records: &[Value], args: &[&str]) -> (Vec<Value>, i32, String) {
    let out = on_records(records, args);
    (
        json_lines(&out.stdout),
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn size_of(checks: &[Value]) -> Value {
    let found: Vec<&Value> = checks.iter().filter(|c| c["check"] == "size").collect();
    assert_eq!(found.len(), 1, "one size finding per guest: {checks:?}");
    found[0].clone()
}

/// A newest backup of `newest` GiB after [`history`] warns (exit 1), its `size` finding
/// beginning with `says`: that finding.
fn warns(newest: f64, says: &str) -> Value {
    let (checks, code, err) = run(&series("local", "vma.zst", newest), &[]);
    let s = size_of(&checks);
    assert_eq!(
        (code, s["status"].as_str()),
        (1, Some("warning")),
        "{s} {err}"
    );
    let msg = s["message"].as_str().expect("message");
    assert!(msg.starts_with(says), "{msg}");
    s
}

#[test]
fn a_tripled_backup_warns_with_the_figures() {
    let s = warns(
        30.1,
        "the backup tripled: 30.1 GiB against a median of 9.8 GiB over 7 backups",
    );
    assert_eq!(s["value"], gib(30.1));
    assert_eq!(s["median"], gib(9.8));
    assert_eq!(s["backups"], 7);
    assert_eq!(s["threshold"], 3 * gib(9.8));
}

#[test]
fn a_tiny_backup_warns_and_a_steady_series_is_ok() {
    let s = warns(
        1.2,
        "suspiciously small: 1.2 GiB against a median of 9.8 GiB over 7 backups",
    );
    // The previous backup's rule (--shrink-warn) fired too: said in the same finding.
    assert!(
        s["message"].as_str().expect("m").contains("shrank to"),
        "{s}"
    );

    let steady = series("local", "vma.zst", 10.4);
    let (checks, code, _) = run(&steady, &[]);
    assert_eq!((code, size_of(&checks)["status"].as_str()), (0, Some("ok")));
}

#[test]
fn too_few_backups_or_other_series_give_no_verdict() {
    // Two previous backups: no median worth the name.
    let mut recs = history("local", "vma.zst");
    recs.truncate(2);
    recs.push(backup("local", "vma.zst", 0, gib(30.1)));
    let (checks, code, _) = run(&recs, &[]);
    assert_eq!((code, size_of(&checks)["status"].as_str()), (0, Some("ok")));
    // Like with like: the history on another storage, or in another compression, is not
    // this series.
    for (storage, format) in [("nas", "vma.zst"), ("local", "vma.gz")] {
        let recs = series(storage, format, 30.1);
        let (checks, code, _) = run(&recs, &[]);
        assert_eq!(
            (code, size_of(&checks)["status"].as_str()),
            (0, Some("ok")),
            "{storage} {format}"
        );
    }
    // Turned off.
    let recs = series("local", "vma.zst", 30.1);
    let (_, code, _) = run(&recs, &["--size-window", "0"]);
    assert_eq!(code, 0);
}

#[test]
fn pbs_snapshots_are_compared_by_their_logical_sizes() {
    let mut recs = history("pbs", "pbs-vm");
    recs.push(backup("pbs", "pbs-vm", 0, gib(40.0)));
    let (checks, code, _) = run(&recs, &[]);
    let s = size_of(&checks);
    assert_eq!(code, 1, "{s}");
    assert!(
        s["message"].as_str().expect("m").contains(
            "quadrupled: 40.0 GiB against a median of 9.8 GiB over 7 backups (PBS logical sizes)"
        ),
        "{s}"
    );
}

#[test]
fn the_window_and_factors_are_flags() {
    let recs = series("local", "vma.zst", 15.0);
    let (checks, code, _) = run(&recs, &["--size-grow", "1.5", "--size-window", "3"]);
    let s = size_of(&checks);
    assert_eq!(code, 1, "{s}");
    assert_eq!(s["backups"], 3);
    let (_, code, _) = run(&recs, &["--size-shrink", "1/2"]);
    assert_eq!(code, 0);
    for bad in [
        ["--size-grow", "0.5"],
        ["--size-shrink", "2"],
        ["--size-shrink", "x/3"],
        ["--size-window", "2"],
    ] {
        let (_, code, err) = run(&recs, &bad);
        assert_eq!(code, 3, "{bad:?}");
        assert!(err.contains(bad[0]), "{err}");
    }
}
