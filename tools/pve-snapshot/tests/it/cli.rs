//! Formats, pipes and usage errors.

use pvedr_testkit::{bin, demo_over_ssh};

use crate::{on, snap_cmd, snap_ok};

#[test]
fn csv_has_the_documented_columns() {
    let (_sim, sshd) = demo_over_ssh();
    snap_ok(&sshd, "create", &on(&["100", "101"], &[]));
    let out = pvedr_testkit::run_ok(snap_cmd(&sshd, "ls").args(["--format", "csv"]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("node,vmid,type,name,label,time,parent,vmstate,description"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 4, "{text}");
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    pvedr_testkit::run_code(bin("pve-snapshot").args(["prune", "--vmid", "100"]), 2);
    pvedr_testkit::run_code(bin("pve-snapshot").args(["create", "--bogus"]), 2);
    pvedr_testkit::run_code(bin("pve-snapshot").arg("explode"), 2);
    let help = pvedr_testkit::run_ok(bin("pve-snapshot").arg("--help"));
    assert!(String::from_utf8_lossy(&help.stdout).contains("SNAPSHOTS ARE NOT BACKUPS"));
}
