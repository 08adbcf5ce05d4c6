//! The way back: the newest snapshot rolled back through `pve-restore --snapshot`.

use pvedr_testkit::{demo_over_ssh, json_lines};

use crate::{guest, next_second, snap_ok};

#[test]
fn the_newest_snapshot_rolls_back_through_pve_restore() {
    let (sim, sshd) = demo_over_ssh();
    snap_ok(&sshd, "create", &["--yes", "--vmid", "101"]);
    next_second();
    snap_ok(&sshd, "create", &["--yes", "--vmid", "101"]);
    let latest = snap_ok(
        &sshd,
        "ls",
        &["--vmid", "101", "--label", "daily", "--latest"],
    );
    assert_eq!(latest.len(), 1);
    let name = latest[0]["name"].as_str().expect("name").to_string();
    let out = sshd
        .bin("pve-restore")
        .args([
            "--vmid",
            "101",
            "--snapshot",
            &name,
            "--force",
            "--yes",
            "--safety-storage",
            "nas",
        ])
        .output()
        .expect("pve-restore");
    let recs = json_lines(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rec = recs
        .iter()
        .find(|r| r["kind"] == "restore")
        .expect("restore record");
    assert_eq!(rec["status"], "restored");
    assert_eq!(guest(&sim, 101)["rolled_back_to"], name.as_str());
    assert_eq!(guest(&sim, 101)["config"]["parent"], name.as_str());
    assert!(
        sim.mutations()
            .contains(&format!("pct rollback 101 {name} --start 1"))
    );
    assert_eq!(guest(&sim, 101)["status"], "running", "it ran before");
}
