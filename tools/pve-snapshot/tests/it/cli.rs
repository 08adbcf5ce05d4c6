//! Formats, pipes and usage errors.

use pvedr_testkit::{SimNode, Sshd, bin};

use crate::snap;

#[test]
fn csv_has_the_documented_columns() {
    let sim = SimNode::demo();
    let sshd = Sshd::start(&sim);
    let (_, code, err) = snap(
        &sshd,
        "create",
        &["--yes", "--vmid", "100", "--vmid", "101"],
    );
    assert_eq!(code, 0, "{err}");
    let out = bin("pve-snapshot")
        .arg("ls")
        .args(sshd.args())
        .args(["--format", "csv"])
        .output()
        .expect("ls");
    assert!(out.status.success());
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
