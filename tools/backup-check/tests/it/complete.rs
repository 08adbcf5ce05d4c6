//! Never a false OK (issue 25): a listing that failed, came back empty or was cut short is
//! UNKNOWN with the reason, through the pipe as when backup-check lists itself; a run that
//! cannot check still prints its Nagios line and rewrites its metrics.

use std::time::Duration;

use pvedr_testkit::{SimNode, Sshd, bin, demo_over_ssh, json_lines};
use serde_json::Value;

fn list(sshd: &Sshd) -> std::process::Output {
    sshd.bin("pve-ls-backups")
        .args(["--node", "pve1", "--node", "pve2", "--with-guests"])
        .args(["--timezone", "UTC"])
        .timeout(Duration::from_secs(60))
        .output()
        .expect("pve-ls-backups runs")
}

fn check(input: &[u8], args: &[&str]) -> (std::process::Output, Vec<Value>) {
    let out = bin("backup-check")
        .args(["--timezone", "UTC"])
        .args(args)
        .write_stdin(input.to_vec())
        .timeout(Duration::from_secs(60))
        .output()
        .expect("backup-check runs");
    let records = if args.contains(&"--nagios") {
        Vec::new()
    } else {
        json_lines(&out.stdout)
    };
    (out, records)
}

fn source_unknown(checks: &[Value]) -> Vec<String> {
    checks
        .iter()
        .filter(|c| c["component"] == "source" && c["status"] == "unknown")
        .map(|c| c["message"].as_str().unwrap_or("").to_string())
        .collect()
}

fn last(out: &std::process::Output) -> Value {
    json_lines(&out.stdout).pop().expect("a record")
}

/// The Nagios line for `input` is UNKNOWN (exit 3) and gives `why`.
fn nagios_unknown(input: &[u8], why: &str) {
    let (out, _) = check(input, &["--nagios"]);
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("BACKUP UNKNOWN"), "{text}");
    assert!(text.contains(why), "{text}");
}

#[test]
fn empty_input_is_unknown_not_ok() {
    let (out, checks) = check(b"", &[]);
    assert_eq!(out.status.code(), Some(3));
    let why = source_unknown(&checks);
    assert!(
        why.iter().any(|m| m.contains("no records on input")),
        "{why:?}"
    );

    nagios_unknown(b"", "no records on input");
}

#[test]
fn an_unreachable_node_through_the_pipe_is_unknown_with_the_reason() {
    let sim = SimNode::demo();
    let mut sshd = Sshd::start(&sim);
    sshd.stop();
    let listed = list(&sshd);
    assert_ne!(listed.status.code(), Some(0));
    let end = last(&listed);
    assert_eq!(end["kind"], "listing", "{end}");
    assert_eq!(end["complete"], false, "{end}");
    assert!(
        end["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{end}"
    );

    nagios_unknown(&listed.stdout, "the listing failed");
}

#[test]
fn a_whole_listing_is_trusted_and_a_cut_one_is_not() {
    let (_sim, sshd) = demo_over_ssh();
    let listed = list(&sshd);
    assert_eq!(listed.status.code(), Some(0));
    let end = last(&listed);
    assert_eq!(end["kind"], "listing");
    assert_eq!(end["complete"], true);
    let lines = listed
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty());
    assert_eq!(
        end["records"],
        lines.count() - 1,
        "the count is of the records before"
    );

    let (_, checks) = check(&listed.stdout, &[]);
    assert_eq!(source_unknown(&checks), Vec::<String>::new());

    // `| head -n 3`: the listing lost its end.
    let cut: Vec<u8> = listed
        .stdout
        .split_inclusive(|b| *b == b'\n')
        .take(3)
        .flatten()
        .copied()
        .collect();
    let (out, checks) = check(&cut, &[]);
    assert_ne!(out.status.code(), Some(0));
    let why = source_unknown(&checks);
    assert!(why.iter().any(|m| m.contains("cut short")), "{why:?}");
}

#[test]
fn a_storage_that_did_not_answer_is_unknown_through_the_pipe() {
    let (sim, sshd) = demo_over_ssh();
    sim.fail_when("storage/nas/content", "storage 'nas' is not online", 255);
    let listed = list(&sshd);
    assert_eq!(listed.status.code(), Some(3), "partial");
    let end = last(&listed);
    assert_eq!(end["complete"], false, "{end}");

    // A CRITICAL found elsewhere outranks UNKNOWN in the exit code; never OK.
    let (out, checks) = check(&listed.stdout, &[]);
    assert_ne!(out.status.code(), Some(0));
    let why = source_unknown(&checks);
    assert!(why.iter().any(|m| m.contains("nas")), "{why:?}");
}

#[test]
fn could_not_check_prints_one_line_and_rewrites_the_metrics() {
    let sim = SimNode::demo();
    let mut sshd = Sshd::start(&sim);
    sshd.stop();
    let dir = tempfile::tempdir().expect("tmp");
    let prom = dir.path().join("pvedr.prom");
    std::fs::write(&prom, "pvedr_backup_guest_status{vmid=\"100\"} 0\n").expect("old metrics");
    let out = sshd
        .bin("backup-check")
        .args(["--nagios", "--now", "1705300000", "--prom"])
        .arg(&prom)
        .timeout(Duration::from_secs(60))
        .output()
        .expect("backup-check runs");
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.starts_with("BACKUP UNKNOWN - "), "{text}");
    let metrics = std::fs::read_to_string(&prom).expect("metrics");
    assert!(!metrics.contains("pvedr_backup_guest_status"), "{metrics}");
    assert!(metrics.contains("\npvedr_backup_check_up 0\n"), "{metrics}");
    assert!(
        metrics.contains("pvedr_backup_check_last_run_timestamp_seconds 1705300000"),
        "{metrics}"
    );
}
