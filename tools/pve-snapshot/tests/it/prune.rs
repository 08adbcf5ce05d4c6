//! `prune`: exactly N of the label stay, nothing else is touched, refusals are reported.

use pvedr_testkit::{SimNode, Sshd, assert_says, demo_over_ssh};
use serde_json::{Value, json};

use crate::{edit_guest, names, of, section, snap, snap_ok};

const DAILY: [&str; 4] = [
    "daily-20240112-020000",
    "daily-20240113-020000",
    "daily-20240114-020000",
    "daily-20240115-020000",
];

/// Guest 101 with four daily snapshots, two weekly ones, a manual one and one that only
/// looks like pve-snapshot's (its description is not).
fn seeded() -> (SimNode, Sshd) {
    let (sim, sshd) = demo_over_ssh();
    edit_guest(&sim, 101, |g| {
        let mut snaps = serde_json::Map::new();
        let mut parent: Option<&str> = None;
        for (i, n) in DAILY.iter().enumerate() {
            snaps.insert(
                n.to_string(),
                section(1_705_000_000 + i as i64 * 86_400, parent, true),
            );
            parent = Some(n);
        }
        snaps.insert(
            "weekly-20240107-030000".into(),
            section(1_704_596_400, None, true),
        );
        snaps.insert(
            "weekly-20240114-030000".into(),
            section(1_705_201_200, None, true),
        );
        snaps.insert("before-upgrade".into(), section(1_704_000_000, None, false));
        snaps.insert(
            "daily-20240101-020000".into(),
            section(1_704_074_400, None, false),
        );
        g["snapshots"] = Value::Object(snaps);
        g["config"]["parent"] = json!(DAILY[3]);
    });
    (sim, sshd)
}

#[test]
fn prune_keeps_exactly_n_of_the_label_and_none_of_the_others() {
    let (sim, sshd) = seeded();
    let before = names(&sim, 101);
    let plan = snap_ok(
        &sshd,
        "prune",
        &["--vmid", "101", "--keep", "2", "--dry-run"],
    );
    assert!(sim.mutations().is_empty(), "{:?}", sim.mutations());
    assert_eq!(names(&sim, 101), before);
    let marks: Vec<(String, String)> = of(&plan, 101)
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap_or("").into(),
                r["mark"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert_eq!(
        marks,
        vec![
            ("daily-20240101-020000".to_string(), "keep".to_string()),
            (DAILY[0].into(), "remove".into()),
            (DAILY[1].into(), "remove".into()),
            (DAILY[2].into(), "keep".into()),
            (DAILY[3].into(), "keep".into()),
        ]
    );
    let recs = snap_ok(&sshd, "prune", &["--vmid", "101", "--keep", "2", "--yes"]);
    let removed: Vec<&Value> = recs.iter().filter(|r| r["status"] == "removed").collect();
    assert_eq!(removed.len(), 2);
    let mut want: Vec<String> = before
        .into_iter()
        .filter(|n| n != DAILY[0] && n != DAILY[1])
        .collect();
    want.sort();
    assert_eq!(names(&sim, 101), want);
    // The oldest went first; the survivor's parent link was mended by Proxmox.
    let dels: Vec<String> = sim.mutations();
    assert_eq!(
        dels,
        vec![
            format!("pct delsnapshot 101 {}", DAILY[0]),
            format!("pct delsnapshot 101 {}", DAILY[1])
        ]
    );
    assert!(
        crate::guest(&sim, 101)["snapshots"][DAILY[2]]
            .get("parent")
            .is_none()
    );
}

#[test]
fn prune_asks_and_without_a_terminal_removes_nothing() {
    let (sim, sshd) = seeded();
    let before = names(&sim, 101);
    let (_, code, err) = snap(&sshd, "prune", &["--vmid", "101", "--keep", "1"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--yes"), "{err}");
    assert_eq!(names(&sim, 101), before);
    let (_, code, _) = snap(&sshd, "prune", &["--vmid", "101", "--keep", "0", "--yes"]);
    assert_eq!(code, 2);
    assert_eq!(names(&sim, 101), before);
}

#[test]
fn proxmox_refusing_the_current_parent_is_reported_and_the_rest_goes() {
    let (sim, sshd) = demo_over_ssh();
    // A VM rolled back to its oldest snapshot, with its TPM state on a storage that keeps
    // snapshots as volume chains: Proxmox will not remove that snapshot while it runs.
    let mut storages = sim.read_json("storage.json");
    if let Some(a) = storages.as_array_mut() {
        a.push(
            json!({"storage": "san", "type": "lvm", "content": "images", "shared": 1,
                      "snapshot-as-volume-chain": 1}),
        );
    }
    sim.write_json("storage.json", &storages);
    let tpm = "san:vm-100-disk-1.qcow2,size=4M,version=v2.0";
    edit_guest(&sim, 100, |g| {
        g["config"]["scsi0"] = json!("san:vm-100-disk-0.qcow2,size=32G");
        g["config"]["tpmstate0"] = json!(tpm);
        let mut snaps = serde_json::Map::new();
        let mut parent: Option<&str> = None;
        for (i, n) in DAILY.iter().enumerate() {
            let mut s = section(1_705_000_000 + i as i64 * 86_400, parent, true);
            s["tpmstate0"] = json!(tpm);
            snaps.insert(n.to_string(), s);
            parent = Some(n);
        }
        g["snapshots"] = Value::Object(snaps);
        g["config"]["parent"] = json!(DAILY[0]);
    });
    let (recs, code, err) = snap(&sshd, "prune", &["--vmid", "100", "--keep", "2", "--yes"]);
    assert_eq!(code, 3, "partial: {err}");
    let r = of(&recs, 100);
    let first = r.iter().find(|x| x["name"] == DAILY[0]).expect("record");
    assert_eq!(first["status"], "refused");
    assert_says(
        first,
        "message",
        "cannot be removed while the VM is running",
    );
    let second = r.iter().find(|x| x["name"] == DAILY[1]).expect("record");
    assert_eq!(second["status"], "removed");
    assert_eq!(
        names(&sim, 100),
        vec![DAILY[0].to_string(), DAILY[2].into(), DAILY[3].into()]
    );
}

#[test]
fn a_locked_guest_keeps_its_snapshots_with_proxmox_reason() {
    let (sim, sshd) = seeded();
    edit_guest(&sim, 101, |g| g["lock"] = json!("backup"));
    let before = names(&sim, 101);
    let (recs, code, err) = snap(&sshd, "prune", &["--vmid", "101", "--keep", "3", "--yes"]);
    assert_eq!(code, 1, "{err}");
    let r = of(&recs, 101);
    let refused: Vec<&Value> = r.iter().filter(|x| x["status"] == "refused").collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["message"], "CT is locked (backup)");
    assert_eq!(names(&sim, 101), before);
}

#[test]
fn ctrl_c_finishes_the_running_removal_writes_the_records_and_exits_130() {
    use std::process::{Command, Stdio};
    let (sim, sshd) = seeded();
    // The first removal is slow; Ctrl-C arrives while it runs.
    sim.set_faults(json!([{"match": format!("delsnapshot 101 {}", DAILY[0]), "sleep": 3}]));
    let child = Command::new(assert_cmd::cargo::cargo_bin("pve-snapshot"))
        .arg("prune")
        .args(sshd.args())
        .args(["--vmid", "101", "--keep", "1", "--yes"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    sim.wait_for("delsnapshot", |c| c["argv"][0] == "delsnapshot");
    let out = pvedr_testkit::interrupted(child);
    let recs = pvedr_testkit::json_lines(&out.stdout);
    let status = |n: &str| {
        of(&recs, 101)
            .iter()
            .find(|r| r["name"] == n)
            .map(|r| r["status"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(status(DAILY[0]), "removed");
    assert_eq!(status(DAILY[1]), "skipped");
    assert_eq!(status(DAILY[2]), "skipped");
    assert!(names(&sim, 101).contains(&DAILY[1].to_string()));
    assert!(!names(&sim, 101).contains(&DAILY[0].to_string()));
    assert_eq!(
        recs.last().map(|r| r["exit_code"].clone()),
        Some(json!(130))
    );
}

#[test]
fn hostile_names_from_the_node_never_reach_a_command() {
    let (sim, sshd) = seeded();
    edit_guest(&sim, 101, |g| {
        g["snapshots"]["daily-20230101-020000;touch${IFS}/tmp/pwned"] =
            section(1_600_000_000, None, true);
    });
    edit_guest(&sim, 103, |g| g["node"] = json!("pve2;id"));
    let (recs, code, err) = snap(
        &sshd,
        "prune",
        &["--vmid", "101", "--vmid", "103", "--keep", "3", "--yes"],
    );
    // 103 is left alone (its node name is not one), 101 is pruned as usual.
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("invalid node"), "{err}");
    assert!(
        of(&recs, 101)
            .iter()
            .all(|r| !r["name"].as_str().unwrap_or("").contains(';'))
    );
    let m = sim.mutations();
    assert_eq!(m, vec![format!("pct delsnapshot 101 {}", DAILY[0])]);
    assert!(
        sim.commands()
            .iter()
            .all(|c| !c.to_string().contains("pve2;id"))
    );
}
