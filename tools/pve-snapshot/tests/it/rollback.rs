//! The way back: the newest snapshot rolled back through `pve-restore --snapshot`.

use pvedr_testkit::{SimNode, Sshd, bin, json_lines};

use crate::{guest, next_second, snap};

#[test]
fn the_newest_snapshot_rolls_back_through_pve_restore() {
    let sim = SimNode::demo();
    let sshd = Sshd::start(&sim);
    let (_, code, err) = snap(&sshd, "create", &["--yes", "--vmid", "101"]);
    assert_eq!(code, 0, "{err}");
    next_second();
    let (_, code, err) = snap(&sshd, "create", &["--yes", "--vmid", "101"]);
    assert_eq!(code, 0, "{err}");
    let (latest, code, err) = snap(
        &sshd,
        "ls",
        &["--vmid", "101", "--label", "daily", "--latest"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(latest.len(), 1);
    let name = latest[0]["name"].as_str().expect("name").to_string();
    let out = bin("pve-restore")
        .args(sshd.args())
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
