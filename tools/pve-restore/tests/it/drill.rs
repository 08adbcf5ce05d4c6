//! Drills as evidence: `drill`/`started`/`size` in restore records, `--drill-history`,
//! `--sample`, scratch VMIDs of concurrent drills; against the simulator over sshd.

use std::path::Path;

use pvedr_testkit::{SimNode, Sshd, demo_over_ssh, json_lines};
use serde_json::{Value, json};

use crate::common::VM_BACKUP;

/// A run with its own lock directory (`XDG_RUNTIME_DIR`): the restore records and the exit.
fn run(sshd: &Sshd, locks: &Path, args: &[&str]) -> (Vec<Value>, i32, String) {
    let out = sshd
        .bin("pve-restore")
        .args(args)
        .env("XDG_RUNTIME_DIR", locks)
        .output()
        .expect("run");
    let recs = json_lines(&out.stdout)
        .into_iter()
        .filter(|r| r["kind"] == "restore")
        .collect();
    (
        recs,
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// The demo over sshd, and a directory for the drills' locks and histories.
fn drilling() -> (SimNode, Sshd, tempfile::TempDir) {
    let (sim, sshd) = demo_over_ssh();
    (sim, sshd, tempfile::tempdir().expect("tmp"))
}

fn history(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a whole line {l:?}: {e}")))
        .collect()
}

fn started(rec: &Value) -> i64 {
    let s = rec["started"].as_str().unwrap_or_else(|| panic!("{rec}"));
    assert!(s.ends_with('Z'), "UTC: {s}");
    chrono::DateTime::parse_from_rfc3339(s)
        .expect("RFC 3339")
        .timestamp()
}

/// RFC 3339 UTC, `days` ago.
fn days_ago(days: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::days(days))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// `--sample 1 --all --test --dry-run` against the history `f`: the one drill's record.
fn sample_one(sshd: &Sshd, locks: &Path, f: &str) -> Value {
    let args = [
        "--sample",
        "1",
        "--all",
        "--test",
        "--dry-run",
        "--drill-history",
        f,
    ];
    let (mut recs, code, err) = run(sshd, locks, &args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(recs.len(), 1, "{recs:?}");
    recs.remove(0)
}

/// backup-check's drill verdict per guest, reading the history `f` beside the node.
fn drill_verdicts(sshd: &Sshd, f: &str) -> Vec<(u64, String)> {
    let out = sshd
        .bin("backup-check")
        .args(["--node", "pve1", "--drill-history", f])
        .output()
        .expect("backup-check");
    json_lines(&out.stdout)
        .iter()
        .filter(|c| c["check"] == "drill")
        .filter_map(|c| {
            let vmid = c["component"]
                .as_str()?
                .strip_prefix("guest/")?
                .parse()
                .ok()?;
            Some((vmid, c["status"].as_str()?.to_string()))
        })
        .collect()
}

#[test]
fn drill_records_say_when_they_ran_that_they_were_drills_and_the_size() {
    let (sim, sshd, locks) = drilling();
    let before = chrono::Utc::now().timestamp();
    let (recs, code, err) = run(&sshd, locks.path(), &["--vmid", "100", "--test", "--yes"]);
    assert_eq!(code, 0, "{err}");
    let rec = &recs[0];
    assert_eq!(rec["status"], "verified", "{rec}");
    assert_eq!(rec["drill"], true);
    assert!(started(rec) >= before - 1, "{rec}");
    let listed = std::fs::metadata(
        sim.dump_dir("local").join(
            rec["volid"]
                .as_str()
                .expect("volid")
                .rsplit('/')
                .next()
                .expect("name"),
        ),
    )
    .expect("archive")
    .len();
    assert_eq!(rec["size"], listed, "{rec}");
    let (recs, code, err) = run(
        &sshd,
        locks.path(),
        &["--volid", VM_BACKUP, "--target-vmid", "9100", "--dry-run"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(recs[0]["drill"], false, "{}", recs[0]);
    started(&recs[0]);
}

#[test]
fn sample_needs_test() {
    let (sim, sshd, locks) = drilling();
    let (_, code, err) = run(&sshd, locks.path(), &["--sample", "1", "--all", "--yes"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--test"), "{err}");
    assert_eq!(sim.mutations(), Vec::<String>::new());
}

#[test]
fn two_sample_runs_drill_each_guest_once_and_the_history_holds_both() {
    let (_sim, sshd, locks) = drilling();
    let file = locks.path().join("drill-history.jsonl");
    let f = file.to_str().expect("utf-8");
    // Records on input, two guests: the newest backup of each is the one drilled.
    let input = [
        json!({"kind": "backup", "volid": VM_BACKUP, "vmid": 100, "subtype": "qemu",
               "format": "vma.zst", "node": "pve1", "storage": "local", "ctime": 1705197602, "time": "2024-01-14T02:00:02Z"}),
        json!({"kind": "backup", "volid": "local:backup/vzdump-qemu-100-2024_01_13-02_00_02.vma.zst", "vmid": 100, "subtype": "qemu",
               "format": "vma.zst", "node": "pve1", "storage": "local", "ctime": 1705111202, "time": "2024-01-13T02:00:02Z"}),
        // A PBS snapshot still being written (no manifest): never the one drilled.
        json!({"kind": "backup", "volid": "pbs:backup/vm/100/2024-01-15T01:00:00Z", "vmid": 100, "subtype": "qemu",
               "format": "pbs-vm", "node": "pve1", "storage": "pbs", "ctime": 1705280400, "time": "2024-01-15T01:00:00Z",
               "unfinished": true}),
        json!({"kind": "backup", "volid": "local:backup/vzdump-lxc-101-2024_01_14-02_01_07.tar.gz", "vmid": 101, "subtype": "lxc",
               "format": "tar.gz", "node": "pve1", "storage": "local", "ctime": 1705197667, "time": "2024-01-14T02:01:07Z"}),
    ]
    .iter()
    .map(|v| format!("{v}\n"))
    .collect::<String>();
    let records = locks.path().join("backups.jsonl");
    std::fs::write(&records, input).expect("write");
    let r = records.to_str().expect("utf-8");
    let args = ["--sample", "1", "--test", "--yes", "--drill-history", f, r];
    let (first, code, err) = run(&sshd, locks.path(), &args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["vmid"], 100, "never drilled, lower VMID");
    assert_eq!(first[0]["volid"], VM_BACKUP, "its newest backup");
    let (second, code, err) = run(&sshd, locks.path(), &args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        second[0]["vmid"], 101,
        "the guest not drilled yet: {}",
        second[0]
    );
    let h = history(&file);
    assert_eq!(h.len(), 2, "{h:?}");
    assert_eq!(h[0]["vmid"], 100);
    assert_eq!(h[1]["vmid"], 101);
    assert!(
        h.iter()
            .all(|r| r["drill"] == true && r["kind"] == "restore")
    );
    // The third picks 100 again: its drill is the older.
    let (third, code, err) = run(&sshd, locks.path(), &args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(third[0]["vmid"], 100);
}

#[test]
fn concurrent_runs_append_whole_lines() {
    let (_sim, sshd, locks) = drilling();
    let file = locks.path().join("h.jsonl");
    let runs: Vec<_> = (0..6)
        .map(|i| {
            let target = (9100 + i).to_string();
            let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("pve-restore"));
            c.args(sshd.args())
                .args(["--volid", VM_BACKUP, "--target-vmid", &target, "--dry-run"])
                .arg("--drill-history")
                .arg(&file)
                .env("XDG_RUNTIME_DIR", locks.path())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            c.spawn().expect("spawn")
        })
        .collect();
    for mut r in runs {
        assert!(r.wait().expect("wait").success());
    }
    let h = history(&file);
    let mut targets: Vec<_> = h.iter().map(|r| r["target_vmid"].as_u64()).collect();
    targets.sort();
    assert_eq!(targets, (9100..9106).map(Some).collect::<Vec<_>>(), "{h:?}");
}

#[test]
fn trimming_keeps_recent_records_and_what_it_cannot_date() {
    let (_sim, sshd, locks) = drilling();
    let file = locks.path().join("h.jsonl");
    let now = chrono::Utc::now();
    let at = |days: i64| {
        (now - chrono::Duration::days(days))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    let old = json!({"kind": "restore", "vmid": 100, "status": "verified", "dry_run": false, "drill": true, "started": at(40)});
    let recent = json!({"kind": "restore", "vmid": 101, "status": "verified", "dry_run": false, "drill": true, "started": at(3)});
    std::fs::write(&file, format!("{old}\nnot json\n{recent}\n")).expect("write");
    let args = |keep: &'static str| {
        let mut a = vec!["--volid", VM_BACKUP, "--target-vmid", "9100", "--dry-run"];
        a.extend(["--drill-history-keep", keep, "--drill-history"]);
        a
    };
    let f = file.to_str().expect("utf-8");
    let mut a = args("30d");
    a.push(f);
    let (_, code, err) = run(&sshd, locks.path(), &a);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&file).expect("read");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0], "not json", "kept: it cannot be dated");
    assert_eq!(
        serde_json::from_str::<Value>(lines[1]).expect("json"),
        recent
    );
    assert!(lines[2].contains("\"target_vmid\":9100"), "{text}");
    let mut a = args("2");
    a.push(f);
    let (_, code, err) = run(&sshd, locks.path(), &a);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&file).expect("read");
    assert_eq!(
        text.lines().count(),
        3,
        "the newest two, then this run's: {text}"
    );
    assert!(text.starts_with(&format!("{recent}\n")), "{text}");
}

#[test]
fn a_drill_takes_the_next_scratch_vmid_when_another_restore_holds_one() {
    let (_sim, sshd, locks) = drilling();
    // What a concurrent drill holds while it restores to 9900.
    let held = std::fs::File::create(
        locks
            .path()
            .join(format!("pvedr-restore-127.0.0.1-{}-9900.lock", sshd.port())),
    )
    .expect("lock file");
    let _held = nix::fcntl::Flock::lock(held, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|_| "lock")
        .expect("lock");
    let (recs, code, err) = run(
        &sshd,
        locks.path(),
        &["--volid", VM_BACKUP, "--test", "--yes"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(recs[0]["target_vmid"], 9901, "{}", recs[0]);
    assert_eq!(recs[0]["status"], "verified");
}

/// A drill history `h.jsonl` in `dir` holding `recs`: its path.
fn history_file(dir: &Path, recs: &[Value]) -> String {
    let file = dir.join("h.jsonl");
    let lines: String = recs.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(&file, lines).expect("write");
    file.to_str().expect("utf-8").to_string()
}

#[test]
fn sample_all_lists_the_cluster_and_drills_the_newest_backup() {
    let (sim, sshd, locks) = drilling();
    // 100 drilled last week: 101 (never drilled) comes first.
    let old = json!({"kind": "restore", "vmid": 100, "status": "verified", "dry_run": false,
                     "drill": true, "started": days_ago(7)});
    let f = &history_file(locks.path(), &[old]);
    let recs = [sample_one(&sshd, locks.path(), f)];
    assert_eq!(recs[0]["vmid"], 101, "{}", recs[0]);
    assert_eq!(
        recs[0]["volid"], "local:backup/vzdump-lxc-101-2024_01_15-02_01_07.tar.zst",
        "its newest backup: {}",
        recs[0]
    );
    assert_eq!(recs[0]["drill"], true);
    assert_eq!(sim.mutations(), Vec::<String>::new());
}

/// A guest whose tags ask for no drill (`pvedr-nodrill`, as backup-check reads them) is
/// never in the sample: the next guest is drilled instead.
#[test]
fn sample_all_leaves_out_guests_tagged_nodrill() {
    let (sim, sshd, locks) = drilling();
    sim.edit_guest(101, |g| {
        g["tags"] = json!("db;PVEDR-NODRILL");
    });
    let args = ["--sample", "1", "--all", "--test", "--dry-run"];
    let (recs, code, err) = run(&sshd, locks.path(), &args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_ne!(
        recs[0]["vmid"], 101,
        "a guest tagged pvedr-nodrill was drilled"
    );
    assert!(
        err.contains("not drilled (tag pvedr-nodrill or pvedr-nobackup): 101"),
        "{err}"
    );
}

#[test]
fn a_history_that_is_not_a_file_is_refused_before_anything_runs() {
    let (sim, sshd, locks) = drilling();
    let fifo = locks.path().join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let fifo = fifo.to_str().expect("utf-8");
    for (path, sample) in [("/dev/zero", true), (fifo, true), (fifo, false)] {
        let mut args = vec![
            "--volid",
            VM_BACKUP,
            "--test",
            "--yes",
            "--drill-history",
            path,
        ];
        if sample {
            args = vec![
                "--sample",
                "1",
                "--all",
                "--test",
                "--yes",
                "--drill-history",
                path,
            ];
        }
        let (recs, code, err) = run(&sshd, locks.path(), &args);
        assert_eq!(code, 1, "{path}: {err}");
        assert!(
            err.contains(path) && err.contains("not a regular file"),
            "{err}"
        );
        assert!(recs.is_empty(), "{recs:?}");
    }
    assert_eq!(sim.mutations(), Vec::<String>::new());
}

#[test]
fn a_scratch_vmid_another_machine_takes_meanwhile_is_left_alone_and_another_drilled_on() {
    let (sim, sshd, locks) = drilling();
    // What qmrestore says when another machine's drill created 9900 after this one chose it
    // (pve-cluster check_vmid_unused, under qemu-server create_vm's prefix).
    sim.set_faults(json!([{"match": format!("qmrestore {VM_BACKUP} 9900"), "times": 1, "exit": 255,
                         "stderr": "unable to restore VM 9900 - VM 9900 already exists on node 'pve2'\n"}]));
    let (recs, code, err) = run(
        &sshd,
        locks.path(),
        &["--volid", VM_BACKUP, "--test", "--yes"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0]["target_vmid"], 9901, "{}", recs[0]);
    assert_eq!(recs[0]["status"], "verified");
    assert!(
        err.contains("scratch VMID 9900 was taken meanwhile"),
        "{err}"
    );
    let m = sim.mutations();
    assert!(
        !m.iter()
            .any(|x| x.contains(" 9900") && !x.starts_with("qmrestore")),
        "nothing done to the other machine's 9900: {m:?}"
    );
    assert!(m.iter().any(|x| x == "qm destroy 9901"), "{m:?}");
}

/// The evidence chain as the shipped timer and a monitoring host run it: a real drill
/// appends its record to the history, and backup-check, reading that history beside the
/// node's listing, finds the guest drilled (OK) and a guest never drilled WARNING. The two
/// tools' records met only in their own tests before, and a drill went unseen.
#[test]
fn a_drill_in_the_history_is_evidence_backup_check_reads() {
    let (_sim, sshd, locks) = drilling();
    let file = locks.path().join("drills.jsonl");
    let f = file.to_str().expect("utf-8");
    let (_, code, err) = run(
        &sshd,
        locks.path(),
        &["--vmid", "100", "--test", "--yes", "--drill-history", f],
    );
    assert_eq!(code, 0, "{err}");
    let verdicts = drill_verdicts(&sshd, f);
    assert!(verdicts.contains(&(100, "ok".into())), "{verdicts:?}");
    assert!(verdicts.contains(&(101, "warning".into())), "{verdicts:?}");
}

/// `--sample` reads the history as backup-check does (one typed reading in lib): a
/// `test: true` record is a drill, a dry run's record proves nothing. Before, pve-restore
/// read the raw JSON its own way: 100 (drilled, marked `test`) was taken for never drilled
/// and 101 (a dry run only) for drilled, so 100 was drilled again.
#[test]
fn sample_reads_the_history_as_backup_check_does() {
    let (_sim, sshd, locks) = drilling();
    let marked = json!({"kind": "restore", "vmid": 100, "status": "verified", "dry_run": false,
                        "test": true, "started": days_ago(7)});
    let dry = json!({"kind": "restore", "vmid": 101, "status": "verified", "dry_run": true,
                     "drill": true, "started": days_ago(1)});
    let f = &history_file(locks.path(), &[marked, dry]);
    let rec = sample_one(&sshd, locks.path(), f);
    assert_eq!(rec["vmid"], 101, "never really drilled: {rec}");
    let verdicts = drill_verdicts(&sshd, f);
    assert!(verdicts.contains(&(100, "ok".into())), "{verdicts:?}");
    assert!(
        verdicts.contains(&(101, "warning".into())),
        "a dry run is no drill: {verdicts:?}"
    );
}
