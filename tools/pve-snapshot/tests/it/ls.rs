//! `ls`: records for jq and backup-check, and the Nagios check of `--max-age`.

use std::io::Write;
use std::process::{Command, Stdio};

use pvedr_testkit::demo_over_ssh;

use crate::{of, on, snap, snap_cmd, snap_ok};

#[test]
fn ls_records_go_through_jq() {
    let (_sim, sshd) = demo_over_ssh();
    snap_ok(&sshd, "create", &on(&["101", "102"], &[]));
    let listing = pvedr_testkit::run_ok(snap_cmd(&sshd, "ls").args(["--label", "daily"]));
    let mut jq = Command::new("jq")
        .args(["-r", r#"select(.kind=="snapshot" and .node=="pve2") | "\(.vmid) \(.type) \(.label) \(.name|startswith("daily-"))""#])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("jq runs (apt-get install jq)");
    jq.stdin
        .take()
        .expect("stdin")
        .write_all(&listing.stdout)
        .expect("feed jq");
    let out = jq.wait_with_output().expect("jq");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "102 qemu daily true"
    );
}

#[test]
fn ls_shows_every_snapshot_with_its_fields() {
    let (_sim, sshd) = demo_over_ssh();
    let created = snap_ok(&sshd, "create", &["--yes", "--vmid", "100"]);
    let recs = snap_ok(&sshd, "ls", &["--vmid", "100"]);
    let r = of(&recs, 100);
    assert_eq!(r.len(), 2);
    // The demo's manual snapshot: no label, and no time (Proxmox says snaptime 0).
    assert_eq!(r[0]["name"], "before-upgrade");
    assert!(r[0].get("label").is_none() && r[0].get("time").is_none());
    assert_eq!(r[1]["name"], of(&created, 100)[0]["name"]);
    assert_eq!(r[1]["label"], "daily");
    assert_eq!(r[1]["current"], true);
    assert_eq!(r[1]["vmstate"], false);
    for k in ["node", "vmid", "type", "time", "snaptime", "description"] {
        assert!(r[1].get(k).is_some(), "{k} missing: {}", r[1]);
    }
    assert!(recs.iter().all(|x| x["kind"] == "snapshot"));
    // Only the label asked for.
    let (recs, _, _) = snap(&sshd, "ls", &["--vmid", "100", "--label", "weekly"]);
    assert!(recs.is_empty());
}

#[test]
fn max_age_is_a_nagios_check() {
    let (sim, sshd) = demo_over_ssh();
    snap_ok(&sshd, "create", &["--yes", "--vmid", "101"]);
    let (_, code, err) = snap(
        &sshd,
        "ls",
        &["--vmid", "101", "--label", "daily", "--max-age", "1h"],
    );
    assert_eq!(code, 0, "OK: {err}");
    let (_, code, err) = snap(
        &sshd,
        "ls",
        &["--vmid", "101", "--label", "weekly", "--max-age", "1h"],
    );
    assert_eq!(code, 1, "WARNING: {err}");
    assert!(err.contains("has no 'weekly' snapshot"), "{err}");
    // Usage errors are UNKNOWN, never CRITICAL.
    let (_, code, _) = snap(&sshd, "ls", &["--vmid", "101", "--max-age", "soon"]);
    assert_eq!(code, 3);
    // A guest on an offline node cannot be listed: UNKNOWN.
    sim.edit_guest(103, |g| {
        g["node"] = serde_json::json!("pve3");
    });
    let (_, code, _) = snap(&sshd, "ls", &["--vmid", "103", "--max-age", "1h"]);
    assert_eq!(code, 3);
}
