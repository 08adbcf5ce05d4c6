//! The change contract of push and pull: the plan first; --dry-run changes nothing; without
//! a terminal and without --yes nothing is copied and the exit code is 2; --yes copies.

use pvedr_testkit::{SimNode, run_code, run_ok};

use crate::common::{Offsite, TO, demo_offsite, list_dir, of_kind};

fn push(s3: &Offsite, sim: &SimNode, flags: &[&str], code: i32) -> std::process::Output {
    let dump = sim.dump_dir("local");
    run_code(
        s3.tool("backup-sync")
            .args(["push", "--to", TO])
            .args(flags)
            .arg("--dir")
            .arg(&dump)
            .write_stdin(list_dir(&dump, "local")),
        code,
    )
}

#[test]
fn push_dry_run_prints_the_plan_and_uploads_nothing() {
    let (sim, s3) = demo_offsite();
    let out = push(&s3, &sim, &["--dry-run"], 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("dry run"), "{err}");
    assert!(
        err.contains("-> s3://offsite/pve/pve1/101/vzdump-lxc-101-2024_01_15-02_01_07.tar.zst"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    assert!(s3.keys().is_empty());
}

#[test]
fn push_without_a_terminal_or_yes_refuses_and_uploads_nothing() {
    let (sim, s3) = demo_offsite();
    let out = push(&s3, &sim, &[], 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rerun with --yes"), "{err}");
    assert!(s3.keys().is_empty());
    assert_eq!(s3.uploads(), 0);
    // --yes copies.
    let out = push(&s3, &sim, &["--yes"], 0);
    assert_eq!(of_kind(&out.stdout, "summary").len(), 1);
    assert!(!s3.keys().is_empty());
}

#[test]
fn pull_dry_run_and_refusal_write_nothing_and_yes_pulls_by_url() {
    let (sim, s3) = demo_offsite();
    push(&s3, &sim, &["--yes"], 0);
    let url = "s3://offsite/pve/pve1/101/vzdump-lxc-101-2024_01_15-02_01_07.tar.zst";
    let to = tempfile::tempdir().expect("tmp");
    let pull = |flags: &[&str], code: i32| {
        run_code(
            s3.tool("backup-sync")
                .args(["pull", url, "--to-dir"])
                .arg(to.path())
                .args(flags),
            code,
        )
    };
    let dry = pull(&["--dry-run"], 0);
    assert!(String::from_utf8_lossy(&dry.stderr).contains(url));
    let refused = pull(&[], 2);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--yes"));
    assert_eq!(std::fs::read_dir(to.path()).expect("dir").count(), 0);
    let done = run_ok(
        s3.tool("backup-sync")
            .args(["pull", "--yes", url, "--to-dir"])
            .arg(to.path()),
    );
    assert_eq!(of_kind(&done.stdout, "step")[0]["status"], "changed");
    assert!(
        to.path()
            .join("vzdump-lxc-101-2024_01_15-02_01_07.tar.zst")
            .is_file()
    );
}
