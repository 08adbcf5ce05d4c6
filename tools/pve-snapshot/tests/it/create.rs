//! `create`: three guests on two nodes, the same day twice, and what Proxmox refuses.

use pvedr_testkit::{assert_says, demo_over_ssh};
use serde_json::json;

use crate::{edit_guest, guest, names, next_second, of, on, snap, snap_ok};

fn stamp_ok(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("daily-") else {
        return false;
    };
    rest.len() == 15
        && rest.as_bytes()[8] == b'-'
        && rest
            .bytes()
            .enumerate()
            .all(|(i, c)| i == 8 || c.is_ascii_digit())
}

#[test]
fn three_guests_across_two_nodes_each_on_its_own_node() {
    let (sim, sshd) = demo_over_ssh();
    let recs = snap_ok(&sshd, "create", &on(&["100", "101", "102"], &[]));
    for (vmid, node) in [(100, "pve1"), (101, "pve1"), (102, "pve2")] {
        let r = &of(&recs, vmid)[0];
        assert_eq!(r["status"], "created", "{r}");
        assert_eq!(r["node"], node);
        assert_eq!(r["label"], "daily");
        let name = r["name"].as_str().unwrap_or("");
        assert!(stamp_ok(name), "{name}");
        assert!(r["snaptime"].as_i64().is_some_and(|t| t > 0), "{r}");
        assert_eq!(
            r["way_back"],
            format!(
                "{} delsnapshot {vmid} {name}",
                if vmid == 101 { "pct" } else { "qm" }
            )
        );
        assert!(names(&sim, vmid).contains(&name.to_string()));
        assert_eq!(guest(&sim, vmid)["config"]["parent"], name);
    }
    // Each snapshot command ran on the guest's own node (102 through the cluster's SSH).
    let ran: Vec<(String, String)> = sim
        .commands()
        .iter()
        .filter(|c| c["argv"][0] == "snapshot")
        .map(|c| {
            (
                c["argv"][1].as_str().unwrap_or("").to_string(),
                c["node"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(ran.len(), 3, "{ran:?}");
    assert!(ran.contains(&("102".into(), "pve2".into())), "{ran:?}");
    let last = recs.last().expect("records");
    assert_eq!(last["kind"], "summary");
    assert_eq!(last["counts"], json!({"created": 3}));
}

#[test]
fn a_second_create_the_same_day_adds_new_snapshots() {
    let (sim, sshd) = demo_over_ssh();
    let first = snap_ok(&sshd, "create", &["--yes", "--vmid", "101"]);
    next_second();
    let second = snap_ok(&sshd, "create", &["--yes", "--vmid", "101"]);
    let (a, b) = (&of(&first, 101)[0], &of(&second, 101)[0]);
    assert_ne!(a["name"], b["name"]);
    // Same day: the same date in the name; the new one grew from the first.
    assert_eq!(
        a["name"].as_str().map(|n| &n[..14]),
        b["name"].as_str().map(|n| &n[..14])
    );
    assert_eq!(b["parent"], a["name"]);
    assert_eq!(names(&sim, 101).len(), 2);
}

#[test]
fn a_locked_guest_and_a_storage_without_snapshots_are_reported_with_proxmox_reasons() {
    let (sim, sshd) = demo_over_ssh();
    edit_guest(&sim, 101, |g| g["lock"] = json!("backup"));
    // A raw image on a dir storage has no snapshots (pve-storage Plugin.pm: qcow2 only) …
    edit_guest(&sim, 100, |g| {
        g["config"]["scsi0"] = json!("local:100/vm-100-disk-0.raw,size=32G")
    });
    // … a qcow2 on a dir storage has.
    edit_guest(&sim, 102, |g| {
        g["config"]["scsi0"] = json!("nas:102/vm-102-disk-0.qcow2,size=32G")
    });
    let (recs, code, err) = snap(
        &sshd,
        "create",
        &on(&["100", "101", "102"], &["--wait-lock", "1s"]),
    );
    assert_eq!(code, 3, "partial: {err}");
    let (r100, r101, r102) = (&of(&recs, 100)[0], &of(&recs, 101)[0], &of(&recs, 102)[0]);
    assert_eq!(r100["status"], "refused");
    assert_eq!(r100["message"], "snapshot feature is not available");
    assert_eq!(r101["status"], "refused");
    assert_eq!(r101["message"], "CT is locked (backup)");
    assert_eq!(r102["status"], "created");
    assert!(names(&sim, 100).iter().all(|n| n == "before-upgrade"));
    assert!(names(&sim, 101).is_empty());
    assert!(err.contains("CT is locked (backup)"), "{err}");
}

#[test]
fn templates_are_reported_and_a_dry_run_changes_nothing() {
    let (sim, sshd) = demo_over_ssh();
    let dry_run_of_all_but_103 = ["--yes", "--all", "--exclude", "103", "--dry-run"];
    let recs = snap_ok(&sshd, "create", &dry_run_of_all_but_103);
    assert!(sim.mutations().is_empty(), "{:?}", sim.mutations());
    let t = &of(&recs, 9000)[0];
    assert_eq!(t["status"], "planned");
    assert_says(t, "message", "template");
    assert!(of(&recs, 103).is_empty());
    let (recs, code, _) = snap(&sshd, "create", &["--yes", "--vmid", "9000"]);
    assert_eq!(code, 1);
    assert_eq!(
        of(&recs, 9000)[0]["message"],
        "you can't take a snapshot if it's a template"
    );
}

#[test]
fn nothing_runs_without_named_guests_or_with_a_bad_label() {
    let (sim, sshd) = demo_over_ssh();
    for args in [
        vec![],
        vec!["--vmid", "100", "--label", "a;reboot"],
        vec!["--vmid", "100;reboot"],
        vec!["--tag", "$(id)"],
        vec!["--vmid", "100", "--since", "2024-01-01"],
    ] {
        let (_, code, err) = snap(&sshd, "create", &args);
        assert_eq!(code, 2, "{args:?}: {err}");
    }
    assert!(sim.commands().is_empty());
}

#[test]
fn vmstate_is_saved_for_a_running_vm_only() {
    let (sim, sshd) = demo_over_ssh();
    edit_guest(&sim, 100, |g| g["status"] = json!("stopped"));
    let recs = snap_ok(
        &sshd,
        "create",
        &on(
            &["100", "101", "102"],
            &["--vmstate", "--label", "pre-upgrade"],
        ),
    );
    assert_eq!(of(&recs, 102)[0]["vmstate"], true);
    let r100 = &of(&recs, 100)[0];
    assert_eq!(r100["vmstate"], false);
    assert_eq!(
        r100["message"],
        "VM not running: Proxmox saves no RAM state"
    );
    assert!(of(&recs, 101)[0].get("vmstate").is_none());
    assert!(
        of(&recs, 102)[0]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("pre-upgrade-"))
    );
}

#[test]
fn create_asks_first_and_without_a_terminal_takes_nothing() {
    let (sim, sshd) = demo_over_ssh();
    let (recs, code, err) = snap(&sshd, "create", &["--vmid", "101"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--yes"), "{err}");
    assert!(recs.is_empty());
    assert!(sim.mutations().is_empty(), "{:?}", sim.mutations());
    assert!(names(&sim, 101).is_empty());
}

#[test]
fn guests_are_selected_by_tag_pool_and_type_as_pve_ls_backups_selects() {
    let (sim, sshd) = demo_over_ssh();
    edit_guest(&sim, 102, |g| g["pool"] = json!("infra"));
    let planned = |args: &[&str]| -> Vec<u64> {
        let mut a = vec!["--dry-run"];
        a.extend_from_slice(args);
        let (recs, code, err) = snap(&sshd, "create", &a);
        assert_eq!(code, 0, "{args:?}: {err}");
        recs.iter()
            .filter(|r| r["kind"] == "snapshot")
            .filter_map(|r| r["vmid"].as_u64())
            .collect()
    };
    assert_eq!(planned(&["--tag", "prod"]), vec![100, 101]);
    assert_eq!(planned(&["--tag", "prod", "--type", "lxc"]), vec![101]);
    assert_eq!(
        planned(&["--pool", "infra", "--vmid", "103"]),
        vec![102, 103]
    );
    assert_eq!(
        planned(&["--all", "--exclude", "100,9000", "--type", "qemu"]),
        vec![102]
    );
}

#[test]
fn the_name_holds_the_node_local_time() {
    let (_sim, sshd) = pvedr_testkit::demo_over_ssh_in("Europe/Paris");
    let recs = snap_ok(&sshd, "create", &["--yes", "--vmid", "101"]);
    let r = &of(&recs, 101)[0];
    let stamp = r["name"]
        .as_str()
        .and_then(|n| n.strip_prefix("daily-"))
        .expect("name");
    let when = format!(
        "{} {}:{}:{}",
        &stamp[..8],
        &stamp[9..11],
        &stamp[11..13],
        &stamp[13..15]
    );
    // The stamp read back as Paris wall-clock time is the snapshot's own time.
    let out = std::process::Command::new("date")
        .env("TZ", "Europe/Paris")
        .args(["-d", &when, "+%s"])
        .output()
        .expect("date");
    let epoch: i64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("epoch");
    let snaptime = r["snaptime"].as_i64().expect("snaptime");
    assert!((snaptime - epoch).abs() <= 5, "{stamp} vs {snaptime}");
}
