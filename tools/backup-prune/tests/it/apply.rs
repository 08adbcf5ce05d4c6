//! --apply against the simulated node over a real sshd.

use std::collections::BTreeSet;

use pvedr_testkit::{Backup, SimNode, Sshd, assert_says, bin, demo_over_ssh, json_lines};
use serde_json::Value;

/// What `pve-ls-backups ARGS` lists over `sshd` (it must succeed).
fn listed(sshd: &Sshd, args: &[&str]) -> Vec<u8> {
    pvedr_testkit::run_ok(sshd.bin("pve-ls-backups").args(args)).stdout
}

/// pve-ls-backups | backup-prune --keep-daily 3 [--apply]: returns (marked records, steps, exit code).
fn prune(sim: &SimNode, sshd: &Sshd, extra: &[&str]) -> (Vec<Value>, Vec<Value>, i32, String) {
    let listing = listed(sshd, &["--storage", "local"]);
    let _ = sim;
    let out = bin("backup-prune")
        .args(["--keep-daily", "3", "--timezone", "UTC"])
        .args(sshd.args())
        .args(extra)
        .write_stdin(listing)
        .output()
        .expect("prune");
    let recs = json_lines(&out.stdout);
    let (steps, marked): (Vec<Value>, Vec<Value>) =
        recs.into_iter().partition(|r| r["kind"] == "step");
    (
        marked,
        steps,
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// The demo's files, then a [`prune`] with `extra` that must exit `code`: the files before,
/// the marks, the steps and stderr.
fn pruned(
    sim: &SimNode,
    sshd: &Sshd,
    extra: &[&str],
    code: i32,
) -> (BTreeSet<String>, Vec<Value>, Vec<Value>, String) {
    let before = files(sim);
    let (marked, steps, got, err) = prune(sim, sshd, extra);
    assert_eq!(got, code, "{err}");
    (before, marked, steps, err)
}

fn files(sim: &SimNode) -> BTreeSet<String> {
    std::fs::read_dir(sim.dump_dir("local"))
        .expect("dump")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect()
}

fn volids_marked(marked: &[Value], mark: &str) -> BTreeSet<String> {
    marked
        .iter()
        .filter(|r| r["mark"] == mark)
        .filter_map(|r| r["volid"].as_str().map(String::from))
        .collect()
}

/// The volumes the node was asked to delete, in order.
fn deletes(sim: &SimNode) -> Vec<String> {
    sim.commands()
        .iter()
        .filter(|c| c["argv"][0] == "delete")
        .filter_map(|c| c["argv"][1].as_str().map(String::from))
        .collect()
}

/// No file of the dump directory went, and no deletion was asked for.
fn assert_nothing_deleted(sim: &SimNode, before: &BTreeSet<String>) {
    assert_eq!(&files(sim), before);
    assert!(deletes(sim).is_empty());
}

/// `backup-prune POLICY --timezone UTC --apply --yes` over `sshd`, `input` on its stdin.
fn apply(sshd: &Sshd, policy: &[&str], input: impl Into<Vec<u8>>) -> std::process::Output {
    bin("backup-prune")
        .args(policy)
        .args(["--timezone", "UTC", "--apply", "--yes"])
        .args(sshd.args())
        .write_stdin(input)
        .output()
        .expect("prune")
}

fn file_of(volid: &str) -> String {
    volid.rsplit('/').next().unwrap_or("").to_string()
}

#[test]
fn without_apply_nothing_is_deleted() {
    let (sim, sshd) = demo_over_ssh();
    let (before, marked, steps, _) = pruned(&sim, &sshd, &[], 0);
    assert!(steps.is_empty());
    assert!(!volids_marked(&marked, "remove").is_empty());
    assert_nothing_deleted(&sim, &before);
}

#[test]
fn apply_without_a_terminal_or_yes_refuses_after_the_preview_and_deletes_nothing() {
    let (sim, sshd) = demo_over_ssh();
    let (before, marked, steps, err) = pruned(&sim, &sshd, &["--apply"], 2);
    assert!(err.contains("rerun with --yes"), "{err}");
    assert!(steps.is_empty());
    // The preview on stderr names what --apply would delete, before the refusal.
    let remove = volids_marked(&marked, "remove");
    assert!(!remove.is_empty());
    for v in &remove {
        let at = err.find(v.as_str()).unwrap_or(usize::MAX);
        assert!(
            at < err.find("--yes").unwrap_or(0),
            "{v} not previewed: {err}"
        );
    }
    assert_nothing_deleted(&sim, &before);
}

#[test]
fn apply_dry_run_shows_the_deletions_and_deletes_nothing() {
    let (sim, sshd) = demo_over_ssh();
    let (before, marked, steps, err) = pruned(&sim, &sshd, &["--apply", "--dry-run"], 0);
    assert!(steps.is_empty());
    assert!(err.contains("dry run"), "{err}");
    for v in &volids_marked(&marked, "remove") {
        assert!(err.contains(v.as_str()), "{v} not previewed: {err}");
    }
    assert_nothing_deleted(&sim, &before);
}

#[test]
fn apply_removes_exactly_the_remove_set() {
    let (sim, sshd) = demo_over_ssh();
    let (before, marked, steps, _) = pruned(&sim, &sshd, &["--apply", "--yes"], 0);
    let remove = volids_marked(&marked, "remove");
    let protected = volids_marked(&marked, "protected");
    let renamed = volids_marked(&marked, "renamed");
    assert_eq!(
        remove.len(),
        5,
        "100: 9 nightly, 1 protected, 3 kept; 101: 3 kept: {remove:?}"
    );
    assert_eq!(protected.len(), 1);
    assert_eq!(renamed.len(), 1);
    // One step per removal, all done.
    let done: BTreeSet<String> = steps
        .iter()
        .filter(|s| s["status"] == "changed")
        .filter_map(|s| s["target"].as_str().map(String::from))
        .collect();
    assert_eq!(done, remove);
    // Exactly those archives (and their .log/.notes) are gone; the rest is untouched.
    let after = files(&sim);
    let gone: BTreeSet<String> = before.difference(&after).cloned().collect();
    for v in &remove {
        let f = file_of(v);
        assert!(gone.contains(&f), "{f} still there");
        assert!(gone.contains(&format!("{f}.notes")));
    }
    let archives_gone: BTreeSet<&String> = gone
        .iter()
        .filter(|f| f.ends_with(".zst") || f.ends_with(".gz"))
        .collect();
    assert_eq!(archives_gone.len(), remove.len());
    for v in protected.iter().chain(&renamed) {
        assert!(after.contains(&file_of(v)), "{v} must stay");
    }
    // Deletes were the only changes, each once, and never of a protected volume.
    let deletes = deletes(&sim);
    assert_eq!(deletes.len(), remove.len());
    assert!(
        deletes
            .iter()
            .all(|d| !protected.iter().any(|p| d.ends_with(p.as_str())))
    );
}

#[test]
fn a_failed_delete_leaves_the_rest_deleted_and_exits_3() {
    let (sim, sshd) = demo_over_ssh();
    sim.fail_when(
        "vzdump-qemu-100-2024_01_10",
        "unable to remove volume - Input/output error",
        255,
    );
    let (marked, steps, code, err) = prune(&sim, &sshd, &["--apply", "--yes"]);
    assert_eq!(code, 3, "{err}");
    let remove = volids_marked(&marked, "remove");
    let failed: Vec<&Value> = steps.iter().filter(|s| s["status"] == "failed").collect();
    assert_eq!(failed.len(), 1);
    assert_says(failed[0], "target", "2024_01_10");
    assert_says(failed[0], "message", "Input/output error");
    let after = files(&sim);
    for v in &remove {
        let present = after.contains(&file_of(v));
        assert_eq!(present, v.contains("2024_01_10"), "{v}");
    }
}

#[test]
fn a_delete_whose_worker_fails_reports_proxmox_error_though_pvesh_exits_0() {
    // pvesh runs the imgdel worker synchronously: its error goes to stderr, the exit is 0.
    let (sim, sshd) = demo_over_ssh();
    sim.fail_when(
        "imgdel local:backup/vzdump-qemu-100-2024_01_10",
        "unable to remove volume - Device or resource busy",
        0,
    );
    let (marked, steps, code, err) = prune(&sim, &sshd, &["--apply", "--yes"]);
    assert_eq!(code, 3, "{err}");
    let failed: Vec<&Value> = steps.iter().filter(|s| s["status"] == "failed").collect();
    assert_eq!(failed.len(), 1, "{steps:?}");
    let message = failed[0]["message"].as_str().unwrap_or("");
    assert!(message.contains("Device or resource busy"), "{message}");
    let after = files(&sim);
    for v in &volids_marked(&marked, "remove") {
        assert_eq!(after.contains(&file_of(v)), v.contains("2024_01_10"), "{v}");
    }
}

#[test]
fn a_group_that_changed_since_the_listing_is_left_alone() {
    let (sim, sshd) = demo_over_ssh();
    let listing = sshd
        .bin("pve-ls-backups")
        .args(["--storage", "local"])
        .output()
        .expect("list");
    // A new nightly backup of 100 lands after the listing: the marks for 100 are stale.
    sim.add_backup(&Backup::new("local", "qemu", 100, 1_705_370_402));
    let before = files(&sim);
    let out = apply(&sshd, &["--keep-daily", "3"], listing.stdout);
    let recs = json_lines(&out.stdout);
    let steps: Vec<&Value> = recs.iter().filter(|r| r["kind"] == "step").collect();
    let skipped_100 = steps
        .iter()
        .filter(|s| {
            s["status"] == "skipped" && s["target"].as_str().unwrap_or("").contains("-100-")
        })
        .count();
    let deleted_101 = steps
        .iter()
        .filter(|s| {
            s["status"] == "changed" && s["target"].as_str().unwrap_or("").contains("-101-")
        })
        .count();
    assert!(skipped_100 >= 1, "{steps:?}");
    assert_eq!(deleted_101, 0, "101 had nothing to remove");
    assert!(
        steps
            .iter()
            .all(|s| s["status"] != "changed"
                || !s["target"].as_str().unwrap_or("").contains("-100-"))
    );
    assert_says(steps[0], "message", "appeared");
    let after = files(&sim);
    assert!(
        before
            .iter()
            .filter(|f| f.contains("-100-"))
            .all(|f| after.contains(f))
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn records_without_a_node_need_one() {
    let (sim, sshd) = demo_over_ssh();
    let listing = bin("pve-ls-backups")
        .arg("--dir")
        .arg(sim.dump_dir("local"))
        .args(["--storage", "local", "--timezone", "UTC"])
        .output()
        .expect("list");
    let out = apply(&sshd, &["--keep-daily", "3"], listing.stdout.clone());
    assert_eq!(out.status.code(), Some(1), "every deletion failed: no node");
    assert!(deletes(&sim).is_empty());
    pvedr_testkit::run_code(
        bin("backup-prune")
            .args([
                "--keep-daily",
                "3",
                "--timezone",
                "UTC",
                "--apply",
                "--yes",
                "--node",
                "pve1",
            ])
            .args(sshd.args())
            .write_stdin(listing.stdout),
        0,
    );
}

#[test]
fn periods_are_the_nodes_days_when_talking_to_a_node() {
    // Two backups one hour apart around midnight in Paris: one UTC day, two Paris days.
    let (_sim, sshd) = pvedr_testkit::demo_over_ssh_in("Europe/Paris");
    let rec = |ctime: i64| {
        format!(
            "{{\"kind\":\"backup\",\"node\":\"pve1\",\"storage\":\"local\",\"vmid\":100,\"subtype\":\"qemu\",\"ctime\":{ctime},\"format\":\"vma.zst\",\"volid\":\"local:backup/vzdump-qemu-100-{}.vma.zst\"}}\n",
            chrono::DateTime::from_timestamp(ctime, 0)
                .expect("time")
                .with_timezone(&chrono_tz::Europe::Paris)
                .format("%Y_%m_%d-%H_%M_%S")
        )
    };
    let input = rec(1_705_271_400) + &rec(1_705_275_000);
    let marks = |extra: &[&str]| -> Vec<String> {
        let out = bin("backup-prune")
            .env("TZ", "UTC")
            .args(["--keep-daily", "2"])
            .args(extra)
            .write_stdin(input.clone())
            .output()
            .expect("prune");
        json_lines(&out.stdout)
            .iter()
            .filter_map(|r| r["mark"].as_str().map(String::from))
            .collect()
    };
    // Off-node, without a node to ask: TZ (here UTC) — one day, the older one goes.
    assert_eq!(marks(&[]), ["remove", "keep"]);
    // Connected to the node: its zone, two days, both kept.
    assert_eq!(
        marks(&sshd.args().iter().map(String::as_str).collect::<Vec<_>>()),
        ["keep", "keep"]
    );
}

#[test]
fn a_record_whose_volid_is_on_another_storage_deletes_nothing() {
    // Records say storage `local`, their volids `nas:`: the older is marked remove, and the
    // deletion is refused instead of going to whichever storage the path names.
    let (sim, sshd) = demo_over_ssh();
    let rec = |day: u32, ctime: i64| {
        format!(
            "{{\"kind\":\"backup\",\"node\":\"pve1\",\"storage\":\"local\",\"vmid\":102,\"subtype\":\"qemu\",\"ctime\":{ctime},\"format\":\"vma.lzo\",\"volid\":\"nas:backup/vzdump-qemu-102-2024_01_{day}-02_00_32.vma.lzo\"}}\n"
        )
    };
    let before = files(&sim);
    let out = apply(
        &sshd,
        &["--keep-last", "1"],
        rec(13, 1_705_111_232) + &rec(14, 1_705_197_632),
    );
    let recs = json_lines(&out.stdout);
    let failed: Vec<&Value> = recs
        .iter()
        .filter(|r| r["kind"] == "step" && r["status"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{recs:?}");
    assert_says(failed[0], "message", "not on storage local");
    assert_nothing_deleted(&sim, &before);
}

#[test]
fn deletions_on_another_node_are_read_as_pvesh_prints_them() {
    // Connected to pve1, the records name pve2: pvesh proxies the delete there and prints
    // the worker's line and the JSON UPID run together (`Removed volume 'X'"UPID:…"`).
    let (sim, sshd) = demo_over_ssh();
    let listing = listed(&sshd, &["--node", "pve2", "--storage", "nas"]);
    let before: BTreeSet<String> = std::fs::read_dir(sim.dump_dir("nas"))
        .expect("dump")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    let out = apply(&sshd, &["--keep-last", "1"], listing);
    let err = String::from_utf8_lossy(&out.stderr);
    let recs = json_lines(&out.stdout);
    let remove = volids_marked(&recs, "remove");
    assert_eq!(remove.len(), 2, "{recs:?}");
    let steps: Vec<&Value> = recs.iter().filter(|r| r["kind"] == "step").collect();
    assert!(steps.iter().all(|s| s["status"] == "changed"), "{steps:?}");
    assert_eq!(out.status.code(), Some(0), "{err}");
    let deletes = deletes(&sim);
    assert!(
        deletes.iter().all(|d| d.starts_with("/nodes/pve2/")),
        "{deletes:?}"
    );
    for v in &remove {
        assert!(before.contains(&file_of(v)));
        assert!(!sim.dump_dir("nas").join(file_of(v)).exists(), "{v}");
    }
}

#[test]
fn an_unfinished_pbs_snapshot_takes_no_keep_slot_and_is_never_removed() {
    // A PBS backup of 100 is being written while --apply runs: it must not push the last
    // complete snapshot out of --keep-last 1.
    let (sim, sshd) = demo_over_ssh();
    sim.add_unfinished_pbs("vm", 100);
    let listing = listed(&sshd, &["--storage", "pbs"]);
    let out = apply(&sshd, &["--keep-last", "1"], listing);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let recs = json_lines(&out.stdout);
    let mark = |volid: &str| {
        let r = recs
            .iter()
            .find(|r| r["volid"] == volid)
            .unwrap_or_else(|| panic!("{volid} in {recs:?}"));
        (r["mark"].clone(), r["reason"].clone())
    };
    assert_eq!(
        mark("pbs:backup/vm/100/2024-01-14T01:00:02Z"),
        (Value::from("keep"), Value::from("keep-last"))
    );
    assert_eq!(
        mark("pbs:backup/vm/100/2024-01-15T06:25:40Z"),
        (Value::from("keep"), Value::from("unfinished"))
    );
    // The demo's old unfinished snapshot of 102 stays too.
    assert_eq!(mark("pbs:backup/vm/102/2024-01-13T02:00:02Z").0, "keep");
    let left: Vec<Value> = sim
        .read_json("pbs/pbs.json")
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(left.len(), 4, "nothing deleted: {left:?}");
    assert!(deletes(&sim).is_empty());
}

#[test]
fn the_preview_marks_what_apply_deletes_whatever_the_callers_zone() {
    // The node is at UTC+14, the caller at UTC-12: three backups on two of the node's days
    // fall on one of the caller's. `pve-ls-backups | backup-prune` previews off the node.
    let sim = SimNode::with("empty", "Pacific/Kiritimati", pvedr_testkit::DEFAULT_NOW);
    let sshd = Sshd::start(&sim);
    // Node-local 2024-01-10 12:00, 2024-01-10 23:30, 2024-01-11 00:30.
    for epoch in [1_704_837_600, 1_704_879_000, 1_704_882_600] {
        sim.add_backup(&Backup::new("local", "qemu", 100, epoch));
    }
    let caller = "Etc/GMT+12";
    let listing = pvedr_testkit::run_ok(
        bin("pve-ls-backups")
            .env("TZ", caller)
            .args(sshd.args())
            .args(["--storage", "local"]),
    );
    let preview = pvedr_testkit::run_ok(
        bin("backup-prune")
            .env("TZ", caller)
            .args(["--keep-daily", "2"])
            .write_stdin(listing.stdout.clone()),
    );
    let marked = volids_marked(&json_lines(&preview.stdout), "remove");
    let out = pvedr_testkit::run_code(
        bin("backup-prune")
            .env("TZ", caller)
            .args(["--keep-daily", "2", "--apply", "--yes"])
            .args(sshd.args())
            .write_stdin(listing.stdout),
        0,
    );
    let deleted: BTreeSet<String> = json_lines(&out.stdout)
        .iter()
        .filter(|r| r["kind"] == "step" && r["status"] == "changed")
        .filter_map(|r| r["target"].as_str().map(String::from))
        .collect();
    assert_eq!(marked, deleted, "the preview is what apply did");
    assert_eq!(
        deleted.into_iter().collect::<Vec<_>>(),
        ["local:backup/vzdump-qemu-100-2024_01_10-12_00_00.vma.zst"]
    );
}
