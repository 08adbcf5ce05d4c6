//! backup-check on records (stdin) and against the simulated cluster over a real sshd:
//! each check, the Nagios exit codes 0/1/2/3, the Nagios line and the Prometheus textfile.

use std::process::{Command, Stdio};

use pvedr_testkit::{Sshd, assert_says, bin, demo_over_ssh, json_lines, outcome};
use serde_json::{Value, json};

use crate::common::{NOW, backup, find, over_ssh};

fn check_stdin(records: &[Value], args: &[&str]) -> (Vec<Value>, i32, String) {
    let mut input: String = records.iter().map(|r| format!("{r}\n")).collect();
    // As pve-ls-backups ends a whole listing.
    if !records.is_empty() {
        input.push_str(&pvedr_testkit::listing_end(records.len()));
    }
    outcome(
        bin("backup-check")
            .args(["--now", &NOW.to_string(), "--timezone", "UTC"])
            .args(args)
            .write_stdin(input),
    )
}

/// Each (component, check, status): the check of that component has that status.
fn assert_statuses(checks: &[Value], want: &[(&str, &str, &str)]) {
    for (component, check, status) in want {
        let c = find(checks, component, check);
        assert_eq!(c["status"], *status, "{component} {check}: {c}");
    }
}

#[test]
fn exit_0_when_everything_is_fresh() {
    let (checks, code, _) = check_stdin(
        &[
            backup(100, NOW - 3600, 1000),
            backup(100, NOW - 90000, 1000),
        ],
        &[],
    );
    assert_eq!(code, 0);
    assert_eq!(find(&checks, "guest/100", "freshness")["status"], "ok");
    let summary = checks.last().expect("summary");
    assert_eq!(summary["kind"], "summary");
    assert_eq!(summary["exit_code"], 0);
}

#[test]
fn dry_run_and_yes_are_accepted_and_ignored() {
    let input = [backup(100, NOW - 30 * 3600, 1000)];
    let (plain, code, _) = check_stdin(&input, &[]);
    let (flagged, flagged_code, err) = check_stdin(&input, &["--yes", "--dry-run"]);
    assert_eq!((flagged_code, code), (1, 1), "{err}");
    let statuses = |c: &[serde_json::Value]| -> Vec<String> {
        c.iter().map(|r| r["status"].to_string()).collect()
    };
    assert_eq!(statuses(&flagged), statuses(&plain));
}

#[test]
fn exit_1_when_a_backup_is_getting_old() {
    let (checks, code, _) = check_stdin(&[backup(100, NOW - 30 * 3600, 1000)], &[]);
    assert_eq!(code, 1);
    let f = find(&checks, "guest/100", "freshness");
    assert_eq!(f["status"], "warning");
    assert_eq!(f["value"], 30 * 3600);
    assert_eq!(
        f["threshold"],
        json!({"warning": 93600, "critical": 172800})
    );
}

#[test]
fn exit_2_when_a_backup_is_missing_or_empty() {
    let (checks, code, _) = check_stdin(&[backup(100, NOW - 50 * 3600, 1000)], &[]);
    assert_eq!(code, 2);
    assert_eq!(
        find(&checks, "guest/100", "freshness")["status"],
        "critical"
    );
    let (checks, code, _) = check_stdin(&[backup(101, NOW - 3600, 0)], &[]);
    assert_eq!(code, 2);
    assert_eq!(find(&checks, "guest/101", "size")["status"], "critical");
}

#[test]
fn exit_3_for_usage_errors_and_unreachable_nodes() {
    let (_, code, err) = check_stdin(&[], &["--storage-warn", "eighty"]);
    assert_eq!(code, 3, "usage errors are UNKNOWN, never CRITICAL");
    assert!(err.contains("--storage-warn"), "{err}");
    let (_, code, _) = check_stdin(&[], &["--no-such-flag"]);
    assert_eq!(code, 3);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    pvedr_testkit::run_code(
        bin("backup-check")
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--connect-timeout",
                "2s",
            ])
            .env("HOME", "/nonexistent"),
        3,
    );
}

#[test]
fn shrink_count_and_storage() {
    let recs = [
        backup(100, NOW - 3600, 400),
        backup(100, NOW - 90000, 1000),
        json!({"kind": "storage", "node": "pve1", "storage": "nas", "type": "dir", "used_fraction": 0.85, "active": true}),
        json!({"kind": "storage", "node": "pve1", "storage": "big", "type": "dir", "used_fraction": 0.95, "active": true}),
    ];
    let (checks, code, _) = check_stdin(&recs, &["--min-count", "3", "--storage-warn", "80%"]);
    assert_eq!(code, 2);
    assert_statuses(
        &checks,
        &[
            ("guest/100", "size", "warning"),
            ("guest/100", "count", "warning"),
            ("storage/pve1/nas", "space", "warning"),
            ("storage/pve1/big", "space", "critical"),
        ],
    );
}

#[test]
fn coverage_counts_only_enabled_jobs_and_skips_without_records() {
    let recs = [
        json!({"kind": "guest", "vmid": 100, "type": "qemu", "name": "web"}),
        json!({"kind": "guest", "vmid": 103, "type": "lxc", "name": "test"}),
        json!({"kind": "guest", "vmid": 104, "type": "lxc", "name": "lab"}),
        json!({"kind": "guest", "vmid": 9000, "type": "qemu", "template": true}),
        json!({"kind": "job", "id": "backup-on", "all": true, "exclude": [103, 104], "enabled": true, "schedule": "02:00"}),
        json!({"kind": "job", "id": "backup-off", "vmid": [104], "enabled": false, "schedule": "sat 01:00"}),
        backup(100, NOW - 3600, 1000),
        backup(104, NOW - 3600, 1000),
    ];
    let (checks, _, _) = check_stdin(&recs, &[]);
    assert_eq!(find(&checks, "guest/103", "coverage")["status"], "critical");
    let c104 = find(&checks, "guest/104", "coverage");
    assert_eq!(c104["status"], "warning");
    assert_says(c104, "message", "backup-off");
    assert_eq!(find(&checks, "guest/100", "coverage")["status"], "ok");
    assert!(
        !checks.iter().any(|c| c["component"] == "guest/9000"),
        "templates are not checked"
    );
    // No guest records: coverage is skipped, not UNKNOWN.
    let (checks, _, _) = check_stdin(&[backup(100, NOW - 3600, 1000)], &[]);
    assert!(!checks.iter().any(|c| c["check"] == "coverage"));
    assert!(!checks.iter().any(|c| c["check"] == "retention"));
}

#[test]
fn coverage_is_what_vzdump_would_include_as_proxmox_reports_it() {
    // get_included_guests: the pool first (exclude not applied), then the vmid list, then
    // all minus exclude; `node` keeps only that node's guests.
    let (sim, sshd) = demo_over_ssh();
    sim.edit_guest(101, |g| {
        g["pool"] = json!("prod");
    });
    sim.write_json(
        "jobs.json",
        &json!([
            {"id": "backup-pve2", "type": "vzdump", "all": 1, "node": "pve2", "enabled": 1,
             "schedule": "02:00", "storage": "nas"},
            {"id": "backup-prod", "type": "vzdump", "pool": "prod", "exclude": "101", "enabled": 1,
             "schedule": "03:00", "storage": "local"},
        ]),
    );
    let proxmox = sshd.ssh("pvesh get /cluster/backup-info/not-backed-up --output-format json");
    let not_backed_up: Vec<u64> = serde_json::from_slice::<Vec<Value>>(&proxmox.stdout)
        .expect("not-backed-up")
        .iter()
        .filter_map(|g| g["vmid"].as_u64())
        .collect();
    assert!(not_backed_up.contains(&100) && !not_backed_up.contains(&101));
    let out = sshd
        .bin("backup-check")
        .args(["--node", "pve1", "--node", "pve2", "--timezone", "UTC"])
        .output()
        .expect("run");
    let checks = json_lines(&out.stdout);
    // 103 has no backup at all (critical whatever covers it): the others say it.
    for vmid in [100u64, 101, 102] {
        let c = find(&checks, &format!("guest/{vmid}"), "coverage");
        let covered = c["status"] == "ok";
        assert_eq!(covered, !not_backed_up.contains(&vmid), "guest {vmid}: {c}");
        if vmid == 100 {
            assert_eq!(c["status"], "warning", "{c}");
        }
    }
}

#[test]
fn schedule_sets_the_expected_age() {
    // A weekly job: a 3-day-old backup is fine.
    let recs = [
        json!({"kind": "job", "id": "weekly", "all": true, "enabled": true, "schedule": "sat 01:00"}),
        backup(100, NOW - 3 * 86400, 1000),
    ];
    let (checks, code, _) = check_stdin(&recs, &[]);
    let f = find(&checks, "guest/100", "freshness");
    assert_eq!(f["status"], "ok", "{f}");
    assert_eq!(f["threshold"]["warning"], 7 * 86400 + 7200);
    assert_eq!(code, 0);
}

#[test]
fn retention_conformance() {
    let mut recs = vec![
        json!({"kind": "job", "id": "daily", "all": true, "enabled": true, "schedule": "02:00",
                               "storage": "local", "prune_backups": {"keep-last": 3}}),
    ];
    for d in 0..6 {
        recs.push(backup(100, NOW - 3600 - d * 86400, 1000));
    }
    let (checks, _, _) = check_stdin(&recs, &[]);
    let r = find(&checks, "guest/100", "retention");
    assert_eq!(r["status"], "warning");
    assert_says(r, "message", "pruning is not running");
}

#[test]
fn tfstate_records() {
    let v = |id: &str, latest: bool, serial: u64, lineage: &str| {
        json!({"kind": "tfstate_version", "env": "prod", "bucket": "tfstate-prod", "key": "terraform.tfstate",
               "version_id": id, "is_latest": latest, "delete_marker": false, "serial": serial, "lineage": lineage})
    };
    let (checks, code, _) = check_stdin(&[v("v3", true, 3, "L1"), v("v2", false, 2, "L1")], &[]);
    assert_eq!(code, 0);
    assert_eq!(find(&checks, "tfstate/prod", "state")["status"], "ok");
    let (checks, code, _) = check_stdin(&[v("v3", true, 3, "L2"), v("v2", false, 2, "L1")], &[]);
    assert_eq!(
        find(&checks, "tfstate/prod", "lineage")["status"],
        "warning"
    );
    assert_eq!(code, 1);
    let (checks, code, _) = check_stdin(&[v("null", true, 3, "L1")], &[]);
    assert_eq!(
        find(&checks, "tfstate/prod", "versioning")["status"],
        "warning"
    );
    assert_eq!(code, 1);
}

#[test]
fn the_cluster_over_ssh_with_alerts_and_metrics() {
    let (_sim, sshd) = demo_over_ssh();
    let dir = tempfile::tempdir().expect("tmp");
    let prom = dir.path().join("pvedr.prom");
    let out = pvedr_testkit::run_code(
        over_ssh(&sshd, &["--node", "pve1", "--node", "pve2"])
            .arg("--prom")
            .arg(&prom),
        2,
    );
    let checks = json_lines(&out.stdout);
    // What the demo cluster pages for, and a guest that is fine.
    let paged = [
        ("guest/103", "coverage", "critical"),
        ("job/backup-8c5b1a3e-4f2d", "last-run", "critical"),
        ("storage/pve1/nas", "space", "warning"),
        ("guest/101", "verification", "critical"),
        ("guest/100", "freshness", "ok"),
    ];
    assert_statuses(&checks, &paged);
    // The failed run of 102 is read from the task log on pve2.
    let run = find(&checks, "guest/102", "last-run");
    assert_eq!(run["status"], "critical");
    assert_says(run, "message", "no space left on device");
    // The textfile passes promtool's lint.
    let text = std::fs::read_to_string(&prom).expect("prom file");
    assert!(text.contains("pvedr_backup_storage_used_ratio{node=\"pve1\",storage=\"nas\"} 0.85"));
    assert!(text.contains("pvedr_backup_check_last_run_timestamp_seconds 1705300000"));
    // promtool: apt-get install prometheus (.ci/run does).
    let mut promtool = Command::new("promtool");
    promtool
        .args(["check", "metrics"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let res = pvedr_testkit::spawn_fed(&mut promtool, text.as_bytes())
        .wait_with_output()
        .expect("promtool");
    assert!(
        res.status.success(),
        "{}{}",
        String::from_utf8_lossy(&res.stdout),
        String::from_utf8_lossy(&res.stderr)
    );
    assert!(
        res.stdout.is_empty() && res.stderr.is_empty(),
        "promtool complains: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    // No temporary file left behind.
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1);

    // The Nagios line.
    let out = over_ssh(&sshd, &["--node", "pve1", "--nagios"])
        .output()
        .expect("run");
    let line = String::from_utf8_lossy(&out.stdout);
    assert_eq!(line.lines().count(), 1);
    assert!(line.starts_with("BACKUP CRITICAL - "), "{line}");
    assert!(line.contains(" | 'guest_100_age'="), "{line}");
}

/// backup-check `--deep` over `sshd` on the backups of `storage` on `node`: its checks.
fn deep_over(sshd: &Sshd, node: &str, storage: &str) -> Vec<Value> {
    let now = NOW.to_string();
    let out = sshd
        .bin("backup-check")
        .args(["--node", node, "--storage", storage, "--deep"])
        .args(["--timezone", "UTC", "--now", &now])
        .output()
        .expect("run");
    json_lines(&out.stdout)
}

/// The integrity checks that found an archive damaged (CRITICAL).
fn damaged(checks: &[Value]) -> Vec<&Value> {
    checks
        .iter()
        .filter(|c| c["check"] == "integrity" && c["status"] == "critical")
        .collect()
}

#[test]
fn deep_over_ssh_uses_the_nodes_own_tools() {
    let (sim, sshd) = demo_over_ssh();
    let dump = sim.dump_dir("local");
    let victim = dump.join("vzdump-qemu-100-2024_01_14-02_00_02.vma.zst");
    let bytes = std::fs::read(&victim).expect("read");
    std::fs::write(&victim, &bytes[..bytes.len() / 2]).expect("truncate");
    let checks = deep_over(&sshd, "pve1", "local");
    let bad = damaged(&checks);
    assert_eq!(bad.len(), 1, "{checks:?}");
    assert_says(bad[0], "message", "2024_01_14");
    assert!(sim.commands().iter().any(|c| {
        c["argv"]
            .to_string()
            .contains("content/local:backup/vzdump-qemu-100-2024_01_14")
    }));
}

#[test]
fn dashboard_uses_only_metrics_backup_check_writes() {
    let root = pvedr_testkit::workspace_root();
    let dash: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("contrib/grafana/pvedr-backups.json"))
            .expect("dashboard"),
    )
    .expect("json");
    assert_eq!(dash["templating"]["list"][0]["type"], "datasource");
    let known = [
        "pvedr_backup_last_timestamp_seconds",
        "pvedr_backup_last_size_bytes",
        "pvedr_backup_archives",
        "pvedr_backup_guest_status",
        "pvedr_backup_storage_used_ratio",
        "pvedr_backup_check_status",
        "pvedr_backup_check_last_run_timestamp_seconds",
        "pvedr_backup_check_duration_seconds",
        "pvedr_restore_drill_last_success_timestamp_seconds",
        "pvedr_restore_throughput_bytes_per_second",
        "pvedr_rpo_seconds",
        "pvedr_orphan_backups",
    ];
    let cli_help = String::from_utf8(
        bin("backup-check")
            .arg("--help")
            .output()
            .expect("help")
            .stdout,
    )
    .expect("utf8");
    for p in dash["panels"].as_array().expect("panels") {
        assert_eq!(p["datasource"]["uid"], "${datasource}");
        for t in p["targets"].as_array().expect("targets") {
            let expr = t["expr"].as_str().unwrap_or("");
            for word in expr
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("pvedr_"))
            {
                assert!(
                    known.contains(&word),
                    "{word} in the dashboard is not a metric"
                );
                assert!(
                    cli_help.contains(word),
                    "{word} is not documented in --help"
                );
            }
        }
    }
}

#[test]
fn pbs_verification_states_are_an_open_set() {
    let pbs = |vmid: u64, ctime: i64, state: Option<&str>| {
        let mut b = json!({"kind": "backup", "node": "pve1", "storage": "pbs", "vmid": vmid,
            "subtype": "qemu", "ctime": ctime, "size": 1000, "format": "pbs-vm",
            "volid": format!("pbs:backup/vm/{vmid}/{}", chrono::DateTime::from_timestamp(ctime, 0)
                .expect("time").format("%Y-%m-%dT%H:%M:%SZ"))});
        if let Some(s) = state {
            // The verify task started three hours before NOW (its UPID's start time).
            b["verification"] = json!({"state": s, "upid": format!(
                "UPID:pbs1:00000A1C:0001F2C3:{:08X}:verify:store1:root@pam:", NOW - 3 * 3600)});
        }
        b
    };
    let (checks, code, _) = check_stdin(
        &[
            pbs(100, NOW - 7200, Some("ok")),
            pbs(101, NOW - 90_000, Some("failed")),
            pbs(101, NOW - 7200, Some("ok")),
            pbs(102, NOW - 7200, Some("degraded")),
            pbs(103, NOW - 7200, None),
        ],
        &[],
    );
    let v = |vmid: u64| {
        checks
            .iter()
            .filter(|c| c["component"] == format!("guest/{vmid}") && c["check"] == "verification")
            .cloned()
            .collect::<Vec<Value>>()
    };
    assert_eq!(v(100)[0]["status"], "ok", "{:?}", v(100));
    assert!(
        v(100)[0]["message"].as_str().unwrap_or("").contains("3h"),
        "{:?}",
        v(100)
    );
    // A failed verification is CRITICAL, even of an older backup.
    assert!(
        v(101).iter().any(|c| c["status"] == "critical"),
        "{:?}",
        v(101)
    );
    // A state pvedr does not know is UNKNOWN, never OK.
    assert_eq!(v(102)[0]["status"], "unknown", "{:?}", v(102));
    // Never verified: said, not alarmed.
    assert!(v(103).iter().all(|c| c["status"] == "ok"), "{:?}", v(103));
    assert!(
        v(103).iter().any(|c| c["message"]
            .as_str()
            .unwrap_or("")
            .contains("never verified")),
        "{:?}",
        v(103)
    );
    assert_eq!(code, 2);
}

#[test]
fn a_hung_storage_makes_the_nagios_check_unknown_not_hang() {
    let (sim, sshd) = demo_over_ssh();
    sim.set_faults(json!([{"match": "storage/nas/content", "sleep": 60}]));
    let out = sshd
        .bin("backup-check")
        .args(["--timezone", "UTC", "--now", &NOW.to_string()])
        .args(["--command-timeout", "2s"])
        .timeout(std::time::Duration::from_secs(50))
        .output()
        .expect("run");
    // The demo has CRITICAL findings too (which Nagios ranks above UNKNOWN); the stuck
    // storage is its own UNKNOWN finding, and the rest was checked.
    let checks = json_lines(&out.stdout);
    assert!(
        checks.iter().any(
            |c| c["status"] == "unknown" && c["message"].as_str().unwrap_or("").contains("nas")
        ),
        "{checks:?}"
    );
    assert_eq!(find(&checks, "guest/100", "freshness")["status"], "ok");
}

#[test]
fn the_nagios_status_is_one_line_whatever_the_input_holds() {
    // A volid with a newline and a '|' must not fake a second status line or perfdata.
    let mut b = backup(100, NOW - 300_000, 1000);
    b["volid"] = json!("local:backup/vzdump-qemu-100-x\nOK - all fine | a=1\u{1b}[2J.vma.zst");
    let out = bin("backup-check")
        .args(["--now", &NOW.to_string(), "--timezone", "UTC", "--nagios"])
        .write_stdin(format!("{b}\n"))
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert_eq!(
        text.matches('|').count(),
        1,
        "one perfdata separator: {text}"
    );
    assert!(!text.contains('\u{1b}'), "{text}");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn deep_over_ssh_verifies_a_plain_vma_with_the_nodes_vma_tool() {
    // An uncompressed VMA is tested with `vma verify` on the node (pve-qemu's tool).
    let (sim, sshd) = demo_over_ssh();
    let mut whole = pvedr_testkit::Backup::new("local", "qemu", 100, NOW - 3000);
    whole.compress = "none".into();
    sim.add_backup(&whole);
    let mut cut = pvedr_testkit::Backup::new("local", "qemu", 100, NOW - 2000);
    cut.compress = "none".into();
    let p = sim.add_backup(&cut);
    let bytes = std::fs::read(&p).expect("read");
    std::fs::write(&p, &bytes[..bytes.len() - 4096]).expect("truncate");
    let checks = deep_over(&sshd, "pve1", "local");
    let bad: Vec<&str> = damaged(&checks)
        .into_iter()
        .filter_map(|c| c["message"].as_str())
        .collect();
    let name = p.file_name().and_then(|n| n.to_str()).expect("name");
    assert_eq!(bad.len(), 1, "{checks:?}");
    assert!(bad[0].contains(name), "{bad:?}");
    assert!(
        sim.commands().iter().any(|c| c["cmd"] == "vma"),
        "vma verify ran on the node"
    );
}

fn snapshot(vmid: u64, name: &str, snaptime: i64) -> Value {
    json!({"kind": "snapshot", "node": "pve1", "vmid": vmid, "type": "lxc", "name": name,
           "label": "daily", "snaptime": snaptime, "description": "pve-snapshot: label daily"})
}

#[test]
fn snapshots_are_checked_on_their_own_and_never_count_as_backups() {
    let guest = json!({"kind": "guest", "node": "pve1", "vmid": 101, "type": "lxc", "name": "db01",
                       "status": "running"});
    let manual = json!({"kind": "snapshot", "vmid": 101, "type": "lxc", "name": "before-upgrade",
                        "snaptime": NOW - 60});
    let (checks, code, err) = check_stdin(
        &[
            guest,
            snapshot(101, "daily-20240115-020000", NOW - 3600),
            snapshot(101, "daily-20240114-020000", NOW - 90_000),
            manual,
            snapshot(102, "daily-20240112-020000", NOW - 3 * 86_400),
        ],
        &["--max-snapshot-age", "26h"],
    );
    // A fresh snapshot does not make guest 101 backed up: no backup is still CRITICAL.
    assert_eq!(code, 2, "{err}");
    assert_eq!(find(&checks, "guest/101", "coverage")["status"], "critical");
    let fresh = find(&checks, "snapshot/101/daily", "snapshots");
    assert_eq!(fresh["status"], "ok");
    assert_eq!(fresh["value"], 3600);
    let stale = find(&checks, "snapshot/102/daily", "snapshots");
    assert_eq!(stale["status"], "warning");
    assert_says(stale, "message", "daily-20240112-020000");
    // Snapshot records alone make no guest checks, and the manual snapshot no check at all.
    assert!(!checks.iter().any(|c| c["component"] == "guest/102"));
    assert_eq!(
        checks.iter().filter(|c| c["check"] == "snapshots").count(),
        2
    );
    // Only snapshots, all fresh: OK.
    let (_, code, err) = check_stdin(
        &[snapshot(101, "daily-20240115-020000", NOW - 3600)],
        &["--max-snapshot-age", "2h"],
    );
    assert_eq!(code, 0, "{err}");
}

#[test]
fn deep_tests_each_nodes_local_archives_on_that_node() {
    // A storage only pve2 has: its archives exist on pve2, so --deep tests them there
    // (through the cluster's SSH), not on the node the connection lands on.
    let (sim, sshd) = demo_over_ssh();
    let mut storages = sim.read_json("storage.json");
    let path = sim.root().join("local2");
    if let Some(a) = storages.as_array_mut() {
        a.push(
            json!({"storage": "local2", "type": "dir", "path": path.to_string_lossy(),
            "content": "backup", "shared": 0, "nodes": ["pve2"]}),
        );
    }
    sim.write_json("storage.json", &storages);
    let mut b = pvedr_testkit::Backup::new("local2", "qemu", 102, NOW - 3000);
    b.compress = "none".into();
    sim.add_backup(&b);
    let checks = deep_over(&sshd, "pve2", "local2");
    let c = find(&checks, "guest/102", "integrity");
    assert_eq!(c["status"], "ok", "{checks:?}");
    let cmds = sim.commands();
    let vma: Vec<&Value> = cmds.iter().filter(|c| c["cmd"] == "vma").collect();
    assert!(
        !vma.is_empty() && vma.iter().all(|c| c["node"] == "pve2"),
        "{vma:?}"
    );
}

#[test]
fn an_unfinished_pbs_snapshot_is_neither_fresh_nor_counted() {
    // 102's newest complete backup is 28 h old; a PBS backup of it is being written (no
    // manifest, listed with size 1): the guest is not fresh because of it.
    let (sim, sshd) = demo_over_ssh();
    sim.add_unfinished_pbs("vm", 102);
    let out = sshd
        .bin("backup-check")
        .args(["--timezone", "UTC", "--now", &NOW.to_string()])
        .output()
        .expect("run");
    let checks = json_lines(&out.stdout);
    let fresh = find(&checks, "guest/102", "freshness");
    assert_ne!(fresh["status"], "ok", "{fresh}");
    assert!(
        fresh["message"].as_str().unwrap_or("").contains("nas:"),
        "{fresh}"
    );
    // Three complete backups on the NAS; the demo's old unfinished PBS snapshot and this
    // one are not backups.
    assert_eq!(find(&checks, "guest/102", "count")["value"], 3);
}

#[test]
fn guest_records_with_tags_as_proxmox_gives_them_are_read() {
    // pvesh prints `tags` as one `;`-separated string, empty for a guest without tags.
    let guests = [
        json!({"kind": "guest", "vmid": 100, "type": "qemu", "node": "pve1", "name": "web01",
               "status": "running", "tags": "prod;web"}),
        json!({"kind": "guest", "vmid": 101, "type": "lxc", "node": "pve1", "tags": ""}),
    ];
    let mut records = guests.to_vec();
    records.push(backup(100, NOW - 3600, 1000));
    let (checks, code, err) = check_stdin(&records, &[]);
    assert!(!err.contains("bad `guest`"), "{err}");
    assert_eq!(find(&checks, "guest/100", "coverage")["status"], "ok");
    // 101 is listed and has no backup: the guest record counted.
    assert_eq!(find(&checks, "guest/101", "coverage")["status"], "critical");
    assert_eq!(code, 2, "{err}");
}

#[test]
fn a_failed_runs_log_that_cannot_be_read_is_unknown() {
    // Proxmox answers a missing task log with "unable to open file - …" (pve-common
    // Tools.pm dump_logfile): the failed run's guests are unknown, never "no failure".
    let (sim, sshd) = demo_over_ssh();
    for e in std::fs::read_dir(sim.root().join("tasks").join("pve2")).expect("logs") {
        std::fs::remove_file(e.expect("entry").path()).expect("rm");
    }
    let out = over_ssh(&sshd, &["--node", "pve2"]).output().expect("run");
    let checks = json_lines(&out.stdout);
    let read = find(&checks, "source", "read");
    assert_eq!(read["status"], "unknown", "{checks:?}");
    assert_says(read, "message", "unable to open file");
}
