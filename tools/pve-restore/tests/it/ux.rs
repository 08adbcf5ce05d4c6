//! What pve-restore tells its user (issue 25, points 6 and 7): a mistyped snapshot refused
//! first, the safety point's default storage, the dry run of an overwrite without --force,
//! how to start a guest the overwrite left stopped, each changing step announced as it
//! starts, and a first Ctrl-C answered at once with what will happen, then a true last word.

use pvedr_testkit::{SimNode, Sshd, demo_over_ssh, json_lines};
use serde_json::{Value, json};

use crate::common::{VM_BACKUP, overwrite_vm, overwritten, restore, says_not, spawn_overwrite_vm};

fn error(rec: &Value) -> &str {
    rec["error"].as_str().unwrap_or("")
}

fn steps(rec: &Value) -> Vec<(String, String)> {
    rec["steps"]
        .as_array()
        .map(|s| {
            s.iter()
                .map(|s| {
                    let f = |k: &str| s[k].as_str().unwrap_or("").to_string();
                    (f("step"), f("status"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The position of the first stderr line containing `needle`.
fn line_of(err: &str, needle: &str) -> usize {
    err.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{err}"))
}

#[test]
fn a_mistyped_snapshot_is_refused_first_naming_the_ones_that_exist() {
    let (sim, sshd) = demo_over_ssh();
    // As the README writes it (no --safety-storage), with --force and without.
    for args in [
        &[
            "--vmid",
            "100",
            "--snapshot",
            "before-upgrad",
            "--force",
            "--yes",
        ][..],
        &["--vmid", "100", "--snapshot", "before-upgrad", "--yes"][..],
        &["--vmid", "100", "--snapshot", "before-upgrad", "--dry-run"][..],
    ] {
        let (rec, code, err) = restore(&sshd, args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert_eq!(rec["status"], "refused", "{rec}");
        assert!(
            error(&rec).contains("has no snapshot 'before-upgrad' (it has: before-upgrade)"),
            "{args:?}: {rec}"
        );
    }
    assert_eq!(sim.mutations(), Vec::<String>::new(), "nothing changed");
    assert!(
        !sim.commands().iter().any(|c| c["cmd"] == "vzdump"),
        "no vzdump ran"
    );
}

#[test]
fn a_rollbacks_safety_point_goes_where_the_guests_backups_go() {
    let (sim, sshd) = demo_over_ssh();
    let args = pvedr_testkit::DEMO_ROLLBACK;
    // The demo's nightly job backs guest 100 up to `local`.
    let (rec, code, err) = restore(&sshd, &args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(rec["safety_point"]["storage"], "local", "{rec}");
    assert!(sim.mutations()[0].starts_with("vzdump 100 --storage local"));
    // No job covers it: the candidates are named, nothing runs.
    sim.write_json("jobs.json", &json!([]));
    sim.clear_commands();
    let (rec, code, err) = restore(&sshd, &args);
    assert_eq!(code, 1, "{err}");
    assert_eq!(rec["status"], "refused", "{rec}");
    let e = error(&rec);
    assert!(e.contains("no enabled backup job covers it"), "{e}");
    assert!(
        e.contains("--safety-storage") && e.contains("on pve1: local, nas, pbs"),
        "{e}"
    );
    assert_eq!(sim.mutations(), Vec::<String>::new());
}

#[test]
fn a_dry_run_of_an_overwrite_without_force_shows_the_plan_and_says_it_needs_force() {
    let (sim, sshd) = demo_over_ssh();
    for args in [
        &["--volid", VM_BACKUP, "--dry-run"][..],
        &["--vmid", "100", "--snapshot", "before-upgrade", "--dry-run"][..],
    ] {
        let (rec, code, err) = restore(&sshd, args);
        assert_eq!(code, 1, "refused, as documented: {err}");
        assert_eq!(rec["status"], "refused", "{rec}");
        assert!(error(&rec).starts_with("dry run: "), "{rec}");
        assert!(error(&rec).contains("needs --force"), "{rec}");
        let s = steps(&rec);
        for want in ["safety-point", "rollback"] {
            assert!(
                s.iter().any(|(n, st)| n == want && st == "skipped"),
                "{args:?}: the whole plan, {want} among it: {s:?}"
            );
        }
        assert!(line_of(&err, "plan for") < line_of(&err, "needs --force"));
    }
    let (rec, _, err) = restore(&sshd, &["--volid", VM_BACKUP, "--dry-run"]);
    assert!(steps(&rec).iter().any(|(n, _)| n == "restore"), "{rec}");
    // A backup named by --volid alone has no date: the title says so, not "20000d old".
    assert!(
        err.contains("(date unknown, ") && !err.contains("(, "),
        "{err}"
    );
    assert_eq!(sim.mutations(), Vec::<String>::new());
}

#[test]
fn an_overwrite_that_stopped_the_guest_says_how_to_start_it() {
    let (sim, sshd) = demo_over_ssh();
    let (_, err) = overwritten(&sshd);
    assert_eq!(sim.read_json("guests/100.json")["status"], "stopped");
    assert!(
        err.contains("VM 100 was stopped for the restore and is still stopped; to start it, on node pve1: qm start 100"),
        "{err}"
    );
    // Started by --start: nothing to say.
    sim.edit_guest(100, |g| {
        g["status"] = json!("running");
    });
    let (_, code, err) = restore(
        &sshd,
        &["--volid", VM_BACKUP, "--force", "--yes", "--start"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("] changed stop"), "{err}");
    assert!(!err.contains("to start it"), "{err}");
}

#[test]
fn each_changing_step_is_announced_as_it_starts() {
    let (_sim, sshd) = demo_over_ssh();
    let (rec, code, err) = overwrite_vm(&sshd);
    assert_eq!(code, 0, "{err}");
    let n = steps(&rec).len();
    for (i, (name, _)) in steps(&rec).iter().enumerate() {
        if !["stop", "safety-point", "restore"].contains(&name.as_str()) {
            continue;
        }
        let start = format!("pve-restore: [{}/{n}] {name} 100 (started ", i + 1);
        let line = &err.lines().nth(line_of(&err, &start)).unwrap_or_default();
        let clock = line.rsplit("(started ").next().unwrap_or("");
        assert!(
            clock.len() == 9 && clock.ends_with(')') && clock.as_bytes()[2] == b':',
            "{line}"
        );
        let end = format!("pve-restore: [{}] changed {name}", i + 1);
        assert!(line_of(&err, &start) < line_of(&err, &end), "{err}");
    }
}

/// Overwrites guest 100 with the command matching `slow` taking 3 s, sends one SIGINT once
/// the simulator has seen `started`: (exit code, record, stderr).
fn interrupt_during(sim: &SimNode, slow: &str, started: &str) -> (Option<i32>, Value, String) {
    let sshd = Sshd::start(sim);
    sim.set_faults(json!([{"match": slow, "sleep": 3}]));
    let child = spawn_overwrite_vm(&sshd);
    sim.wait_for(started, |c| c["cmd"] == started);
    let out = pvedr_testkit::interrupt(child);
    let rec = json_lines(&out.stdout)
        .into_iter()
        .find(|r| r["kind"] == "restore")
        .unwrap_or(Value::Null);
    (
        out.status.code(),
        rec,
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn a_first_ctrl_c_during_the_restore_is_answered_at_once_and_the_last_word_is_true() {
    let sim = SimNode::demo();
    let (code, rec, err) = interrupt_during(&sim, &format!("qmrestore {VM_BACKUP}"), "qmrestore");
    assert_eq!(code, Some(130), "{err}");
    let answer = "pve-restore: interrupt: finishing the restore, then restoring the safety point: VM 100 back as it was and started again; press Ctrl-C again to stop now";
    // Said while the restore still ran, before it ended.
    assert!(
        line_of(&err, answer) < line_of(&err, "] changed restore"),
        "{err}"
    );
    // What it said happened, and the last word says so.
    let safety = rec["safety_point"]["volid"].as_str().expect("safety point");
    let g = sim.read_json("guests/100.json");
    assert_eq!(g["restored_from"], safety, "{rec}");
    assert_eq!(g["status"], "running");
    let last = "the safety point was restored: VM 100 is back as it was, running";
    says_not(&err, last, "nothing further was started");
}

#[test]
fn a_first_ctrl_c_during_the_safety_point_says_the_guest_is_started_again() {
    let sim = SimNode::demo();
    let (code, _, err) = interrupt_during(&sim, "vzdump 100", "vzdump");
    assert_eq!(code, Some(130), "{err}");
    let answer = "pve-restore: interrupt: finishing the safety point, then starting VM 100 again; nothing is overwritten; press Ctrl-C again to stop now";
    assert!(
        line_of(&err, answer) < line_of(&err, "] changed safety-point"),
        "{err}"
    );
    assert!(
        err.contains("VM 100 was started again, nothing was overwritten"),
        "{err}"
    );
    assert_eq!(sim.read_json("guests/100.json")["status"], "running");
}
