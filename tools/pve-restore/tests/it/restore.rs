//! pve-restore against the simulated node over a real sshd.

use pvedr_testkit::{SimNode, Sshd, assert_says, bin, demo_over_ssh, json_lines};

use serde_json::{Value, json};

use crate::common::{
    CT_BACKUP, OVERWRITE_102, VM_BACKUP, argv, crafted_backup, each_case, new_guest, overwrite,
    overwrite_refused, overwrite_vm, overwritten, refused_untouched, restore, restore_fed,
    spawn_overwrite_vm, step, strs,
};

/// The demo's rollback of VM 100 to `before-upgrade`, its safety point on `local`.
fn rollback() -> Vec<&'static str> {
    [
        &pvedr_testkit::DEMO_ROLLBACK[..],
        &["--safety-storage", "local"],
    ]
    .concat()
}

/// A rollback of `vmid` to `snapshot`, its safety point on `local`.
fn rollback_to<'a>(vmid: &'a str, snapshot: &'a str) -> Vec<&'a str> {
    let safety = ["--safety-storage", "local"];
    [
        &["--vmid", vmid, "--snapshot", snapshot, "--force", "--yes"][..],
        &safety,
    ]
    .concat()
}

fn guest(sim: &SimNode, vmid: u64) -> Value {
    sim.read_json(&format!("guests/{vmid}.json"))
}

/// The demo over sshd, guest 100 changed by `edit` first.
fn demo_with_100(edit: impl FnOnce(&mut Value)) -> (SimNode, Sshd) {
    let (sim, sshd) = demo_over_ssh();
    sim.edit_guest(100, edit);
    (sim, sshd)
}

/// Cuts VM 100's demo backup on `local` in half.
fn damage_vm_backup(sim: &SimNode) {
    let f = sim
        .dump_dir("local")
        .join("vzdump-qemu-100-2024_01_14-02_00_02.vma.zst");
    let bytes = std::fs::read(&f).expect("read");
    std::fs::write(&f, &bytes[..bytes.len() / 2]).expect("write");
}

/// pve-ls-backups's records over `sshd` with `args`.
fn listing(sshd: &Sshd, args: &[&str]) -> Vec<u8> {
    let out = sshd.bin("pve-ls-backups").args(args).output();
    out.expect("list").stdout
}

/// Overwrites guest 100 with the connection cut at the first command matching `at`: the run
/// fails (exit 1) and still writes its record.
fn cut_at(at: &str, args: &[&str]) -> (SimNode, Value, String) {
    let (sim, sshd) = demo_over_ssh();
    sim.set_faults(json!([{"match": at, "action": "disconnect", "stderr": "", "exit": 255}]));
    let (rec, code, err) = restore(&sshd, &overwrite(VM_BACKUP, args));
    assert_eq!(code, 1, "{err}");
    assert_eq!(rec["status"], "failed");
    (sim, rec, err)
}

/// After a lost connection: no blind rollback on an unknown state, and the printed way back
/// restores the safety point.
fn assert_way_back_to_the_safety_point(rec: &Value, err: &str) {
    assert_eq!(
        step(rec, "rollback")["status"],
        "skipped",
        "no blind rollback"
    );
    let safety = rec["safety_point"]["volid"].as_str().expect("safety");
    assert_eq!(rec["way_back"], format!("qmrestore {safety} 100 --force 1"));
    assert!(err.contains("way back: qmrestore"), "{err}");
}

fn assert_lost(s: &Value) {
    assert_eq!(s["status"], "failed", "{s}");
    assert_says(s, "message", "connection lost");
}

#[test]
fn restore_to_a_new_vmid() {
    let (sim, sshd) = demo_over_ssh();
    let args = new_guest(VM_BACKUP, "9100", &["--start", "--probe", "agent"]);
    let (rec, code, err) = restore(&sshd, &args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(rec["status"], "verified");
    assert_eq!(rec["target_vmid"], 9100);
    assert_eq!(rec["verify"][0]["status"], "ok");
    assert!(rec["duration_s"].as_f64().unwrap_or(0.0) > 0.0);
    assert_eq!(rec["way_back"], "qm destroy 9100");
    let g = guest(&sim, 9100);
    assert_eq!(g["restored_from"], VM_BACKUP);
    assert_eq!(g["status"], "running");
    assert_eq!(g["name"], "web01");
    // The original is untouched; no safety point for a new VMID.
    assert_eq!(guest(&sim, 100)["status"], "running");
    assert!(!sim.mutations().iter().any(|m| m.starts_with("vzdump")));
    assert!(
        sim.mutations()
            .contains(&format!("qmrestore {VM_BACKUP} 9100"))
    );
}

#[test]
fn overwrite_takes_a_safety_point_first() {
    let (sim, sshd) = demo_over_ssh();
    let (rec, _) = overwritten(&sshd);
    let safety = rec["safety_point"]["volid"]
        .as_str()
        .expect("safety point")
        .to_string();
    assert!(safety.starts_with("local:backup/vzdump-qemu-100-"));
    let m = sim.mutations();
    // Order: stop (it ran), vzdump without pruning, then the restore's own --force; never destroy --purge.
    assert!(m[0].starts_with("qm stop 100"), "{m:?}");
    assert!(
        m[1].starts_with("vzdump 100 --storage local")
            && m[1].contains("--prune-backups keep-all=1"),
        "{m:?}"
    );
    assert_eq!(m[2], format!("qmrestore {VM_BACKUP} 100 --force 1"));
    assert!(!m.iter().any(|x| x.contains("destroy")));
    // The safety point is a real archive with a note saying why.
    let file = safety.rsplit('/').next().expect("file");
    let notes = std::fs::read_to_string(sim.dump_dir("local").join(format!("{file}.notes")))
        .expect("notes");
    assert!(notes.contains("safety point before restoring"));
    assert_eq!(guest(&sim, 100)["restored_from"], VM_BACKUP);
    assert_eq!(rec["way_back"], format!("qmrestore {safety} 100 --force 1"));
}

#[test]
fn containers_use_pct_restore_with_the_vmid_first() {
    let (sim, sshd) = demo_over_ssh();
    let (rec, code, err) = restore(&sshd, &new_guest(CT_BACKUP, "9101", &[]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(rec["status"], "restored");
    assert!(
        sim.mutations()
            .contains(&format!("pct restore 9101 {CT_BACKUP} --storage local-lvm")),
        "the storage is always given: pct restore would put the volumes on `local`"
    );
    assert_eq!(guest(&sim, 9101)["name"], "db01");
}

#[test]
fn a_failure_after_the_safety_point_puts_the_original_back() {
    let (sim, sshd) = demo_over_ssh();
    sim.fail_when(
        &format!("qmrestore {VM_BACKUP}"),
        "unable to restore VM 100 - error before or during data restore",
        255,
    );
    let (rec, code, _) = overwrite_vm(&sshd);
    assert_eq!(code, 1);
    assert_eq!(rec["status"], "rolled-back");
    assert_says(&rec, "error", "restore failed");
    assert_eq!(step(&rec, "restore")["status"], "failed");
    assert_eq!(step(&rec, "rollback")["status"], "changed");
    let safety = rec["safety_point"]["volid"]
        .as_str()
        .expect("safety")
        .to_string();
    let g = guest(&sim, 100);
    assert_eq!(
        g["restored_from"], safety,
        "the original came back from the safety point"
    );
    assert_eq!(g["status"], "running", "it ran before, it runs again");
}

#[test]
fn a_failed_verification_rolls_back_too() {
    let (sim, sshd) = demo_over_ssh();
    sim.fail_when("guest cmd 100 ping", "QEMU guest agent is not running", 255);
    let args = overwrite(VM_BACKUP, &["--probe", "agent", "--probe-retries", "2"]);
    let (rec, code, _) = restore(&sshd, &args);
    assert_eq!(code, 1);
    assert_eq!(rec["status"], "rolled-back");
    assert_eq!(rec["verify"][0]["status"], "failed");
    assert_eq!(rec["verify"][0]["attempts"], 2);
    assert_eq!(
        guest(&sim, 100)["restored_from"],
        rec["safety_point"]["volid"]
    );
}

#[test]
fn dry_run_runs_no_mutating_command() {
    let (sim, sshd) = demo_over_ssh();
    let args = format!("--volid {VM_BACKUP} --force --dry-run --start --probe agent");
    let (rec, code, _) = restore(&sshd, &argv(&args));
    assert_eq!(code, 0);
    assert_eq!(rec["dry_run"], true);
    assert_eq!(rec["status"], "planned");
    assert_eq!(
        strs(&rec["steps"], "step"),
        [
            "check-archive",
            "check-lock",
            "check-vzdump",
            "check-loss",
            "stop",
            "safety-point",
            "restore",
            "start",
            "probe",
            "rollback"
        ]
    );
    assert_says(
        step(&rec, "safety-point"),
        "command",
        "--prune-backups keep-all=1",
    );
    assert_eq!(step(&rec, "restore")["status"], "planned");
    assert!(!sim.commands().is_empty(), "read-only checks ran");
    assert_eq!(sim.mutations(), Vec::<String>::new());
}

#[test]
fn a_corrupt_archive_is_refused_before_anything_changes() {
    let (sim, sshd) = demo_over_ssh();
    damage_vm_backup(&sim);
    let (rec, _) = overwrite_refused(&sshd);
    assert!(rec["error"].as_str().unwrap_or("").contains("damaged"));
    assert_eq!(sim.mutations(), Vec::<String>::new());
    assert_eq!(guest(&sim, 100)["status"], "running");
}

#[test]
fn an_existing_guest_needs_force() {
    let (sim, sshd) = demo_over_ssh();
    let (rec, code, _) = restore(&sshd, &["--volid", VM_BACKUP, "--yes"]);
    assert_eq!(code, 1);
    assert_eq!(rec["status"], "refused");
    assert!(rec["error"].as_str().unwrap_or("").contains("--force"));
    // Another existing VMID is never a target.
    let (rec, code, _) = restore(&sshd, &new_guest(VM_BACKUP, "101", &["--force"]));
    assert_eq!(code, 1);
    assert_says(&rec, "error", "free cluster-wide");
    assert_eq!(sim.mutations(), Vec::<String>::new());
}

#[test]
fn no_terminal_and_no_yes_is_refused() {
    let (sim, sshd) = demo_over_ssh();
    let (_, code, err) = restore(&sshd, &["--volid", VM_BACKUP, "--target-id", "9100"]);
    assert_eq!(code, 2);
    assert!(err.contains("--yes"), "{err}");
    assert_eq!(sim.mutations(), Vec::<String>::new());
}

#[test]
fn a_locked_guest_is_not_touched() {
    let (sim, sshd) = demo_with_100(|g| g["lock"] = json!("backup"));
    let (rec, code, _) = overwrite_vm(&sshd);
    assert_eq!(code, 1);
    assert_says(&rec, "error", "locked (backup)");
    assert_eq!(sim.mutations(), Vec::<String>::new());
}

/// Where a connection is cut, and what the record says then.
struct Cut {
    name: &'static str,
    /// The first command the connection dies on.
    at: String,
    args: &'static [&'static str],
    /// Each step's status; `lost`: failed, the connection lost.
    steps: &'static [(&'static str, &'static str)],
    /// The way back when nothing was overwritten (it is then said); else the safety point's.
    start_again: Option<&'static str>,
}

#[test]
fn a_cut_connection_says_which_steps_ran_and_the_way_back() {
    let cases = [
        Cut {
            name: "during the restore",
            at: format!("qmrestore {VM_BACKUP}"),
            args: &[],
            steps: &[
                ("stop", "changed"),
                ("safety-point", "changed"),
                ("restore", "lost"),
            ],
            start_again: None,
        },
        // `qm stop 100` is the first change; the connection dies on the safety point.
        Cut {
            name: "after the first change",
            at: "vzdump 100".into(),
            args: &[],
            steps: &[
                ("stop", "changed"),
                ("safety-point", "lost"),
                ("restore", "skipped"),
            ],
            start_again: Some("qm start 100"),
        },
        // The restore and `qm start` go through; the connection dies while waiting for it to
        // run: the record and the way back are still given.
        Cut {
            name: "during verification",
            at: "pvesh get /nodes/pve1/qemu/100/status/current".into(),
            args: &["--start"],
            steps: &[("restore", "changed"), ("start", "lost")],
            start_again: None,
        },
    ];
    each_case(
        &cases,
        |c| c.name,
        |c| {
            let (sim, rec, err) = cut_at(&c.at, c.args);
            for &(name, status) in c.steps {
                match status {
                    "lost" => assert_lost(step(&rec, name)),
                    _ => assert_eq!(step(&rec, name)["status"], status, "{name}"),
                }
            }
            match c.start_again {
                None => assert_way_back_to_the_safety_point(&rec, &err),
                Some(way_back) => {
                    let overwritten = sim.mutations().iter().any(|m| m.starts_with("qmrestore"));
                    assert_eq!(
                        rec["way_back"], way_back,
                        "nothing was overwritten: start it again"
                    );
                    assert!(!overwritten);
                }
            }
        },
    );
}

#[test]
fn restore_drill_on_a_scratch_vmid() {
    let (sim, sshd) = demo_over_ssh();
    let (rec, code, err) = restore(&sshd, &["--volid", VM_BACKUP, "--test", "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(rec["status"], "verified");
    assert_eq!(rec["target_vmid"], 9900);
    assert_eq!(step(&rec, "isolate")["status"], "changed");
    assert_eq!(step(&rec, "cleanup")["status"], "changed");
    let m = sim.mutations();
    assert!(
        m.iter()
            .any(|x| x.starts_with("qm set 9900 --net0") && x.contains("link_down=1")),
        "{m:?}"
    );
    assert!(m.iter().any(|x| x == "qm destroy 9900"), "{m:?}");
    assert!(
        !m.iter().any(|x| x.contains(" 100 ") || x.ends_with(" 100")),
        "production untouched: {m:?}"
    );
    assert!(
        sim.read_json("guests/9900.json").is_null(),
        "scratch guest destroyed"
    );
}

#[test]
fn newest_backup_of_a_vmid_from_stdin_or_listing() {
    let (sim, sshd) = demo_over_ssh();
    let latest = listing(&sshd, &["--storage", "local", "--vmid", "101", "--latest"]);
    let (_, code, err) = restore_fed(&sshd, &["--target-id", "9201", "--yes"], latest);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        guest(&sim, 9201)["restored_from"],
        "local:backup/vzdump-lxc-101-2024_01_15-02_01_07.tar.zst"
    );
    let args = argv("--vmid 101 --date 2024-01-13 --target-id 9202 --yes");
    let (rec, code, _) = restore(&sshd, &args);
    assert_eq!(code, 0);
    assert_eq!(
        rec["volid"],
        "local:backup/vzdump-lxc-101-2024_01_13-02_01_07.tar.gz"
    );
    // Several records need --all.
    let all = listing(&sshd, &["--storage", "local", "--vmid", "101"]);
    let (_, code, err) = restore_fed(&sshd, &["--yes"], all);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn snapshot_rollback_after_a_safety_point() {
    let (sim, sshd) = demo_over_ssh();
    let (rec, code, err) = restore(&sshd, &rollback());
    assert_eq!(code, 0, "{err}");
    assert_eq!(rec["status"], "restored");
    assert_eq!(guest(&sim, 100)["rolled_back_to"], "before-upgrade");
    let m = sim.mutations();
    assert!(
        m[0].starts_with("vzdump 100") && m[1] == "qm rollback 100 before-upgrade --start 1",
        "{m:?}"
    );
}

#[test]
fn injected_values_never_reach_the_node() {
    let (sim, sshd) = demo_over_ssh();
    for args in [
        vec!["--volid", "local:backup/x.vma.zst;reboot", "--yes"],
        vec!["--vmid", "100;reboot", "--yes"],
        vec![
            "--volid",
            VM_BACKUP,
            "--target-id",
            "9100 --force 1",
            "--yes",
        ],
        vec!["--volid", VM_BACKUP, "--storage", "$(id)", "--yes"],
        vec!["--volid", VM_BACKUP, "--probe", "tcp:a;b:22", "--yes"],
    ] {
        let (_, code, _) = restore(&sshd, &args);
        assert_eq!(code, 2, "{args:?}");
    }
    assert!(sim.commands().is_empty());
}

#[test]
fn ctrl_c_stops_at_a_safe_point_and_exits_130() {
    let (sim, sshd) = demo_over_ssh();
    sim.set_faults(json!([{"match": "vzdump 100", "sleep": 3}]));
    let child = spawn_overwrite_vm(&sshd);
    // Wait until the safety point is being made, then interrupt.
    sim.wait_for("vzdump", |c| c["cmd"] == "vzdump");
    let out = pvedr_testkit::interrupted(child);
    let recs = json_lines(&out.stdout);
    let rec = recs
        .iter()
        .find(|r| r["kind"] == "restore")
        .expect("record");
    assert_eq!(rec["status"], "interrupted");
    assert_eq!(
        step(rec, "safety-point")["status"],
        "changed",
        "the running step was finished"
    );
    assert_eq!(step(rec, "restore")["status"], "skipped");
    // Nothing was overwritten and the guest runs again, as before.
    let g = guest(&sim, 100);
    assert!(g.get("restored_from").is_none());
    assert_eq!(g["status"], "running");
}

#[test]
fn each_guest_record_is_written_when_that_guest_is_done() {
    use std::io::BufRead;
    use std::time::{Duration, Instant};
    let (sim, sshd) = demo_over_ssh();
    // The second guest's restore is slow: the first record must come out before it ends.
    sim.set_faults(json!([{"match": format!("pct restore 101 {CT_BACKUP}"), "sleep": 3}]));
    let rec = |volid: &str, vmid: u64, subtype: &str, format: &str| {
        json!({"kind": "backup", "node": "pve1", "storage": "local", "volid": volid, "vmid": vmid,
               "subtype": subtype, "format": format, "ctime": 1705194002, "time": "2024-01-14T01:00:02Z"})
    };
    let input = format!(
        "{}\n{}\n",
        rec(VM_BACKUP, 100, "qemu", "vma.zst"),
        rec(CT_BACKUP, 101, "lxc", "tar.gz")
    );
    let path = assert_cmd::cargo::cargo_bin("pve-restore");
    let mut child = pvedr_testkit::spawn_fed(
        std::process::Command::new(path)
            .args(sshd.args())
            .args(["--all", "--force", "--yes"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null()),
        input.as_bytes(),
    );
    let stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut arrivals = Vec::new();
    for line in stdout.lines() {
        let v: Value = serde_json::from_str(&line.expect("line")).expect("json");
        arrivals.push((v, Instant::now()));
    }
    let done = Instant::now();
    assert!(child.wait().expect("wait").success());
    let kinds: Vec<_> = arrivals.iter().map(|(v, _)| v["kind"].clone()).collect();
    assert_eq!(kinds, ["restore", "restore", "summary"]);
    assert_eq!(arrivals[0].0["target_vmid"], 100);
    let early = done - arrivals[0].1;
    assert!(
        early >= Duration::from_secs(2),
        "guest 100's record came {early:?} before the end, not as soon as it was done"
    );
}

#[test]
fn a_pbs_safety_point_is_found() {
    // vzdump to a PBS storage names the snapshot it makes differently from a file archive.
    let (sim, sshd) = demo_over_ssh();
    let (rec, code, err) = restore(&sshd, &overwrite(VM_BACKUP, &["--safety-storage", "pbs"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(rec["status"], "restored");
    let safety = rec["safety_point"]["volid"]
        .as_str()
        .expect("a safety point");
    assert!(safety.starts_with("pbs:backup/vm/100/"), "{safety}");
    assert!(safety.ends_with('Z'), "{safety}");
    assert_eq!(rec["way_back"], format!("qmrestore {safety} 100 --force 1"));
    let m = sim.mutations();
    assert!(
        m.iter().any(|x| x.starts_with("vzdump 100 --storage pbs")),
        "{m:?}"
    );
    assert!(m.iter().any(|x| x.starts_with("qmrestore")), "{m:?}");
}

#[test]
fn a_protected_guest_is_refused_with_nothing_stopped() {
    let (sim, sshd) = demo_with_100(|g| g["config"]["protection"] = json!("1"));
    let (rec, _) = overwrite_refused(&sshd);
    assert!(
        rec["error"].as_str().unwrap_or("").contains("protection"),
        "{rec}"
    );
    assert_eq!(
        sim.mutations(),
        Vec::<String>::new(),
        "nothing stopped, nothing backed up"
    );
    assert_eq!(guest(&sim, 100)["status"], "running");
}

#[test]
fn a_container_goes_back_to_its_own_storage_not_local() {
    // `local` cannot hold containers in the demo (no rootdir); the CT lives on local-lvm.
    let (sim, sshd) = demo_over_ssh();
    let (rec, code, err) = restore(&sshd, &overwrite(CT_BACKUP, &[]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(rec["status"], "restored");
    let m = sim.mutations();
    assert!(
        m.contains(&format!(
            "pct restore 101 {CT_BACKUP} --force 1 --storage local-lvm"
        )),
        "{m:?}"
    );
    assert!(
        guest(&sim, 101)["config"]["rootfs"]
            .as_str()
            .unwrap_or("")
            .starts_with("local-lvm:")
    );
    let safety = rec["safety_point"]["volid"].as_str().expect("safety");
    assert_eq!(
        rec["way_back"],
        format!("pct restore 101 {safety} --force 1 --storage local-lvm")
    );
    // A new VMID: the storage the archive's own config names (pvesm extractconfig).
    let (rec, code, err) = restore(&sshd, &new_guest(CT_BACKUP, "9102", &[]));
    assert_eq!(code, 0, "{err}");
    assert!(
        sim.mutations()
            .contains(&format!("pct restore 9102 {CT_BACKUP} --storage local-lvm")),
        "{rec}"
    );
}

#[test]
fn a_container_whose_rootfs_spells_out_volume_goes_back_to_its_storage() {
    // `rootfs: volume=STORAGE:NAME,…` is the same property string as the bare form
    // (pve-common JSONSchema.pm parse_property_string: `volume` is the default key): the
    // storage is local-lvm, not "none named" (read before as `volume=local-lvm`).
    let (sim, sshd) = demo_over_ssh();
    sim.edit_guest(101, |g| {
        let rootfs = g["config"]["rootfs"].as_str().expect("rootfs").to_string();
        g["config"]["rootfs"] = json!(format!("volume={rootfs}"));
    });
    let (rec, code, err) = restore(&sshd, &overwrite(CT_BACKUP, &[]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(rec["status"], "restored", "{rec}");
    assert!(
        sim.mutations().contains(&format!(
            "pct restore 101 {CT_BACKUP} --force 1 --storage local-lvm"
        )),
        "{:?}",
        sim.mutations()
    );
}

#[test]
fn an_ha_managed_guest_is_refused_with_the_ha_command() {
    // `qm stop` of an HA-managed guest only files a request, and vzdump's stop mode refuses
    // it: stop it through HA first.
    let (sim, sshd) = demo_with_100(|g| g["hastate"] = json!("started"));
    let (rec, _) = overwrite_refused(&sshd);
    let msg = rec["error"].as_str().unwrap_or("");
    assert!(
        msg.contains("ha-manager set vm:100 --state stopped")
            && msg.contains("after the restore: ha-manager set vm:100 --state started"),
        "{msg}"
    );
    assert_eq!(sim.mutations(), Vec::<String>::new());
}

#[test]
fn a_guest_on_another_node_is_restored_on_that_node() {
    // Connected to pve1; guest 102 lives on pve2: qm, vzdump and qmrestore must run there.
    let (sim, sshd) = demo_over_ssh();
    let (rec, code, err) = restore(&sshd, &OVERWRITE_102);
    assert_eq!(code, 0, "{err}");
    let backup = rec["volid"].as_str().expect("volid").to_string();
    assert_eq!(rec["status"], "restored");
    assert_eq!(rec["node"], "pve2");
    let on = |node: &str| -> Vec<String> {
        sim.commands()
            .iter()
            .filter(|c| c["node"] == node)
            .filter_map(|c| {
                let argv: Vec<&str> = c["argv"]
                    .as_array()?
                    .iter()
                    .filter_map(Value::as_str)
                    .collect();
                Some(format!("{} {}", c["cmd"].as_str()?, argv.join(" ")))
            })
            .collect()
    };
    let pve2 = on("pve2");
    assert!(
        pve2.iter().any(|c| c.starts_with("qm stop 102")),
        "{pve2:?}"
    );
    assert!(pve2.iter().any(|c| c.starts_with("vzdump 102")), "{pve2:?}");
    assert!(
        pve2.iter()
            .any(|c| c.starts_with(&format!("qmrestore {backup} 102"))),
        "{pve2:?}"
    );
    assert!(
        !on("pve1")
            .iter()
            .any(|c| c.starts_with("qm ") || c.starts_with("vzdump") || c.starts_with("qmrestore"))
    );
    assert_eq!(guest(&sim, 102)["restored_from"], backup);
}

#[test]
fn an_archive_of_unknown_type_is_refused_not_guessed() {
    // Proxmox lists `other.vma` and impossible dates as subtype `unknown`: VM or container?
    let (sim, sshd) = demo_over_ssh();
    let name = "vzdump-lxc-101-2021_02_29-02_00_00.tar.gz";
    std::fs::copy(
        sim.dump_dir("local")
            .join("vzdump-lxc-101-2024_01_14-02_01_07.tar.gz"),
        sim.dump_dir("local").join(name),
    )
    .expect("copy");
    let volid = format!("local:backup/{name}");
    let (rec, code, err) = restore(&sshd, &new_guest(&volid, "9101", &[]));
    assert_eq!(code, 1, "{err}");
    assert_eq!(rec["status"], "refused", "{rec}");
    assert_says(&rec, "error", "subtype unknown");
    assert!(sim.mutations().is_empty(), "{:?}", sim.mutations());
}

#[test]
fn date_is_a_day_in_the_nodes_time_zone() {
    // 2024-01-15 00:30 in Paris is 2024-01-14 23:30 UTC: not a backup of the 14th there.
    let (_sim, sshd) = pvedr_testkit::demo_in_paris_after_midnight();
    let out = pvedr_testkit::run_code(
        bin("pve-restore").env("TZ", "UTC").args(sshd.args()).args([
            "--vmid",
            "100",
            "--date",
            "2024-01-14",
            "--target-id",
            "9100",
            "--dry-run",
        ]),
        0,
    );
    let rec = json_lines(&out.stdout)
        .into_iter()
        .find(|r| r["kind"] == "restore")
        .expect("record");
    assert_eq!(
        rec["volid"], "local:backup/vzdump-qemu-100-2024_01_14-02_00_02.vma.zst",
        "{rec}"
    );
}

#[test]
fn a_record_with_an_impossible_vmid_is_refused() {
    let (sim, sshd) = demo_over_ssh();
    let rec = format!(
        "{{\"kind\":\"backup\",\"node\":\"pve1\",\"storage\":\"local\",\"vmid\":5,\"subtype\":\"qemu\",\"ctime\":1705197602,\"format\":\"vma.zst\",\"volid\":\"{VM_BACKUP}\"}}\n"
    );
    let (r, _, _) = restore_fed(&sshd, &["--yes", "--force"], rec);
    refused_untouched(&r, &sim, "invalid VMID");
}

#[test]
fn a_record_claiming_pbs_for_a_local_archive_is_still_tested() {
    // Whether a backup is PBS (and skips the archive test) is the node's storage type, not
    // what a record says.
    let (sim, sshd) = demo_over_ssh();
    damage_vm_backup(&sim);
    let rec = format!(
        "{{\"kind\":\"backup\",\"node\":\"pve1\",\"storage\":\"local\",\"vmid\":100,\"subtype\":\"qemu\",\"ctime\":1705197602,\"format\":\"pbs-vm\",\"volid\":\"{VM_BACKUP}\"}}\n"
    );
    let (r, _, _) = restore_fed(&sshd, &["--target-id", "9100", "--yes"], rec);
    refused_untouched(&r, &sim, "damaged");
}

#[test]
fn a_failed_safety_point_says_vzdumps_error_not_job_errors() {
    // vzdump prints the guest's ERROR line on stdout and only "job errors" on stderr.
    let (sim, sshd) = demo_over_ssh();
    sim.set_faults(json!([{"match": "vzdump 100", "exit": 255, "stderr": "job errors",
            "stdout": "INFO: starting new backup job: vzdump 100\nINFO: Starting Backup of VM 100 (qemu)\nERROR: Backup of VM 100 failed - no space left on device\nINFO: Backup job finished with errors\n"}]));
    let (rec, code, err) = overwrite_vm(&sshd);
    assert_eq!(code, 1, "{err}");
    let msg = rec["error"].as_str().unwrap_or("");
    assert!(msg.contains("no space left on device"), "{rec}");
    assert_eq!(guest(&sim, 100)["status"], "running", "nothing destroyed");
    assert!(!sim.mutations().iter().any(|m| m.starts_with("qmrestore")));
}

#[test]
fn verify_only_starts_a_stopped_guest_on_its_node_and_probes_it_without_restoring() {
    // A guest rebuilt by Terraform (no backup to restore): prove it works as it is.
    let (sim, sshd) = demo_over_ssh();
    let (rec, code, err) = restore(&sshd, &argv("--vmid 103 --verify-only --probe agent --yes"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(rec["status"], "verified", "{rec}");
    assert_eq!(rec["node"], "pve2");
    assert_eq!(step(&rec, "start")["status"], "changed", "{rec}");
    assert_eq!(rec["verify"][0]["status"], "ok", "{rec}");
    assert_eq!(rec["way_back"], "pct stop 103");
    assert_eq!(guest(&sim, 103)["status"], "running");
    assert_eq!(sim.mutations(), vec!["pct start 103".to_string()]);
    assert!(
        sim.commands()
            .iter()
            .filter(|c| c["argv"].to_string().contains("start"))
            .all(|c| c["node"] == "pve2")
    );
    // A running guest: nothing changes at all, and nothing to go back to.
    sim.clear_commands();
    let port = sshd.port().to_string();
    let tcp = format!("tcp:127.0.0.1:{port}");
    let (rec, code, err) = restore(&sshd, &["--vmid", "100", "--verify-only", "--probe", &tcp]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(rec["status"], "verified", "{rec}");
    assert!(rec["way_back"].is_null(), "{rec}");
    assert!(sim.mutations().is_empty(), "{:?}", sim.mutations());
}

/// A volume of the simulated node with data on it (`volumes/<storage>/<name>`).
fn put_volume(sim: &SimNode, volid: &str, data: &str) -> std::path::PathBuf {
    let (sid, name) = volid.split_once(':').expect("volid");
    let p = sim.root().join("volumes").join(sid).join(name);
    std::fs::create_dir_all(p.parent().expect("dir")).expect("mkdir");
    std::fs::write(&p, data).expect("write");
    p
}

/// CT 101 (stopped) with a volume mount point not in its backups, a bind mount and an
/// unused volume, each volume with data.
fn ct_with_unbacked_volumes(sim: &SimNode) -> [std::path::PathBuf; 2] {
    sim.edit_guest(101, |g| {
        g["status"] = json!("stopped");
        g["config"]["mp0"] = json!("local-lvm:vm-101-disk-1,mp=/srv/data,size=8G");
        g["config"]["mp1"] = json!("/mnt/shared,mp=/shared");
        g["config"]["mp2"] = json!("local-lvm:vm-101-disk-3,mp=/srv/www,backup=1,size=1G");
        g["config"]["unused0"] = json!("local-lvm:vm-101-disk-2");
    });
    put_volume(sim, "local-lvm:vm-101-disk-0", "root file system\n");
    put_volume(sim, "local-lvm:vm-101-disk-3", "web site, backed up\n");
    [
        put_volume(
            sim,
            "local-lvm:vm-101-disk-1",
            "the only copy of the data\n",
        ),
        put_volume(sim, "local-lvm:vm-101-disk-2", "an old disk\n"),
    ]
}

#[test]
fn a_container_overwrite_that_erases_volumes_not_in_the_backup_is_refused() {
    // pve-container create_vm re-creates the backup's mount points and destroy_lxc_container
    // frees every volume of the old config: mp0 (no backup=1) and unused0 would be gone.
    let (sim, sshd) = demo_over_ssh();
    let kept = ct_with_unbacked_volumes(&sim);
    let (rec, code, err) = restore(&sshd, &overwrite(CT_BACKUP, &[]));
    assert_eq!(code, 1, "{err}");
    assert_eq!(rec["status"], "refused");
    let msg = rec["error"].as_str().unwrap_or("");
    assert!(
        msg.contains("mp0 (local-lvm:vm-101-disk-1)")
            && msg.contains("unused0 (local-lvm:vm-101-disk-2)")
            && msg.contains("--erase-unbacked-volumes"),
        "{msg}"
    );
    assert!(
        !msg.contains("mp1") && !msg.contains("mp2"),
        "a bind mount and a backed-up volume are not lost: {msg}"
    );
    assert_eq!(sim.mutations(), Vec::<String>::new(), "nothing changed");
    for p in &kept {
        assert!(p.exists(), "{} kept", p.display());
    }
    assert_eq!(strs(&rec["erased_volumes"], "key"), ["mp0", "unused0"]);
}

#[test]
fn erase_unbacked_volumes_accepts_the_loss_and_the_record_names_it() {
    let (sim, sshd) = demo_over_ssh();
    let lost = ct_with_unbacked_volumes(&sim);
    let args = overwrite(CT_BACKUP, &["--erase-unbacked-volumes"]);
    let (rec, code, err) = restore(&sshd, &args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(rec["status"], "restored");
    assert_eq!(
        rec["erased_volumes"][0]["volume"],
        "local-lvm:vm-101-disk-1"
    );
    assert_says(
        step(&rec, "restore"),
        "message",
        "erases volumes not in the backup: mp0",
    );
    // What Proxmox does: both are freed.
    for p in &lost {
        assert!(!p.exists(), "{} erased", p.display());
    }
}

#[test]
fn a_vm_overwrite_says_its_backup_0_disks_come_back_detached() {
    // qemu-server: restore_cleanup_oldconf frees only the disks the archive holds, rescan
    // adds the kept volume as unusedN.
    let (sim, sshd) = demo_over_ssh();
    sim.edit_guest(100, |g| {
        g["config"]["scsi1"] = json!("local-lvm:vm-100-disk-1,backup=0,size=32G");
    });
    let data = put_volume(&sim, "local-lvm:vm-100-disk-1", "scratch data\n");
    let (rec, code, err) = overwrite_vm(&sshd);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        rec["detached_volumes"],
        json!([{"key": "scsi1", "volume": "local-lvm:vm-100-disk-1"}])
    );
    assert_says(
        step(&rec, "restore"),
        "message",
        "detached as unusedN (data kept): scsi1",
    );
    let conf = &guest(&sim, 100)["config"];
    assert!(conf.get("scsi1").is_none(), "{conf}");
    assert_eq!(conf["unused0"], "local-lvm:vm-100-disk-1");
    assert!(data.exists());
}

#[test]
fn an_overwrite_names_the_snapshots_it_deletes() {
    // VM 100 has the snapshot before-upgrade; a restore over it drops every snapshot.
    let (sim, sshd) = demo_over_ssh();
    let (rec, code, err) = restore(&sshd, &overwrite(VM_BACKUP, &["--dry-run"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(rec["deleted_snapshots"], json!(["before-upgrade"]));
    assert_says(
        step(&rec, "restore"),
        "message",
        "deletes every snapshot: before-upgrade",
    );
    let (rec, code, err) = overwrite_vm(&sshd);
    assert_eq!(code, 0, "{err}");
    assert_eq!(rec["deleted_snapshots"], json!(["before-upgrade"]));
    assert!(guest(&sim, 100).get("snapshots").is_none());
}

/// A vzdump task running on pve1 (it holds the node's vzdump lock); a simulated minute
/// lasts 10 ms, so Proxmox's three-hour lock wait takes 1.8 s.
fn vzdump_running(sim: &SimNode) {
    sim.write_json("sim.json", &json!({"minute": 0.01}));
    let mut tasks = sim.read_json("tasks/pve1.json");
    let task = json!({"upid": "UPID:pve1:0000A1B2:0001C3D4:65A4B000:vzdump::root@pam:",
        "type": "vzdump", "id": "", "node": "pve1", "user": "root@pam",
        "pid": 41394, "pstart": 115668, "starttime": 1_705_291_776});
    tasks.as_array_mut().expect("tasks").push(task);
    sim.write_json("tasks/pve1.json", &tasks);
}

#[test]
fn a_running_vzdump_on_the_node_refuses_the_overwrite_before_the_stop() {
    let (sim, sshd) = demo_over_ssh();
    vzdump_running(&sim);
    let (rec, _) = overwrite_refused(&sshd);
    assert_says(&rec, "error", "a vzdump is running on pve1");
    assert_eq!(sim.mutations(), Vec::<String>::new(), "not stopped");
    assert_eq!(guest(&sim, 100)["status"], "running");
    // Once it is done: the safety point may wait one minute for the lock, not 180.
    let mut tasks = sim.read_json("tasks/pve1.json");
    tasks.as_array_mut().expect("tasks").pop();
    sim.write_json("tasks/pve1.json", &tasks);
    let (rec, code, err) = overwrite_vm(&sshd);
    assert_eq!(code, 0, "{err}");
    assert_eq!(step(&rec, "check-vzdump")["status"], "ok");
    let m = sim.mutations();
    let dump = m.iter().find(|x| x.starts_with("vzdump")).expect("vzdump");
    assert!(dump.ends_with("--lockwait 1"), "{dump}");
}

#[test]
fn a_failed_restore_to_a_new_vmid_removes_qmrestores_empty_config() {
    // qemu-server create_vm: a failed restore keeps the new VM's config ("NOT cleaned up").
    let (sim, sshd) = demo_over_ssh();
    sim.fail_when(
        "qmrestore-data 9100",
        "command 'set -o pipefail && vma extract -v -r /var/tmp/vzdumptmp1.fifo - /var/tmp/vzdumptmp1' failed: exit code 133",
        255,
    );
    let (rec, code, err) = restore(&sshd, &new_guest(VM_BACKUP, "9100", &[]));
    assert_eq!(code, 1, "{err}");
    assert_eq!(rec["status"], "failed");
    assert_eq!(rec["leftover"], "removed", "{rec}");
    assert_eq!(step(&rec, "remove-leftover")["status"], "changed");
    assert_eq!(guest(&sim, 9100), Value::Null, "no VM 9100 left behind");
    assert!(sim.mutations().contains(&"qm destroy 9100".to_string()));
    assert!(rec.get("way_back").is_none(), "{rec}");
}

#[test]
fn a_containers_snapshot_way_back_names_its_storage_and_works() {
    // `pct restore` without --storage puts the volumes on `local`, which holds no containers.
    let (sim, sshd) = demo_over_ssh();
    sim.edit_guest(101, |g| {
        g["snapshots"] = json!({"before-upgrade": g["config"].clone()});
    });
    let (rec, code, err) = restore(&sshd, &rollback_to("101", "before-upgrade"));
    assert_eq!(code, 0, "{err}");
    let safety = rec["safety_point"]["volid"].as_str().expect("safety");
    let way_back = rec["way_back"].as_str().expect("way back");
    assert_eq!(
        way_back,
        format!("pct stop 101 && pct restore 101 {safety} --force 1 --storage local-lvm")
    );
    // Pasted on pve1, the simulator's commands first in PATH.
    let mut sh = assert_cmd::Command::new("sh");
    sh.args(["-c", way_back]);
    sim.apply_env(&mut sh);
    pvedr_testkit::run_ok(sh);
    assert_eq!(guest(&sim, 101)["restored_from"], safety);
}

#[test]
fn the_drill_sets_link_down_on_a_link_that_says_link_down_0() {
    // `…,link_down=0,link_down=1` is refused by Proxmox (duplicate key): the drill's copy
    // would stay connected to production's network, or the drill fail.
    let (sim, sshd) = demo_over_ssh();
    let name = "vzdump-qemu-100-2024_01_14-05_00_00.vma.zst";
    let make = "conf = archives.qemu_config(100, 'web01').replace(',bridge=vmbr0', ',link_down=0,bridge=vmbr0')\n\
         raw = archives.vma_bytes(conf, [('drive-scsi0', 65536)], seed=1)\n";
    let volid = crafted_backup(&sim, name, make);
    let (rec, code, err) = restore(&sshd, &["--volid", &volid, "--test", "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(step(&rec, "isolate")["status"], "changed", "{rec}");
    let m = sim.mutations();
    let set = m
        .iter()
        .find(|x| x.starts_with("qm set 9900 --net0"))
        .expect("qm set");
    assert!(
        set.ends_with(",link_down=1") && !set.contains("link_down=0"),
        "{set}"
    );
}

#[test]
fn a_rollback_to_a_snapshot_the_guest_does_not_have_is_refused_before_the_safety_point() {
    let (sim, sshd) = demo_over_ssh();
    // `current` is no snapshot either: a name Proxmox reserves, refused as a usage error.
    let to = |snapshot| ["--vmid", "100", "--snapshot", snapshot, "--force", "--yes"];
    let (_, code, err) = restore(&sshd, &to("current"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("reserved"), "{err}");
    let (rec, code, err) = restore(&sshd, &rollback_to("100", "no-such"));
    assert_eq!(code, 1, "{err}");
    assert_eq!(rec["status"], "refused", "{rec}");
    assert_says(&rec, "error", "(it has: before-upgrade)");
    // One character is no pve-configid: a usage error before connecting.
    let (_, code, err) = restore(&sshd, &to("a"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("invalid snapshot name 'a'"), "{err}");
    assert_eq!(sim.mutations(), Vec::<String>::new(), "no safety point");
}

#[test]
fn a_template_backup_is_restored_and_not_started() {
    // Proxmox restores a template's backup as a template and refuses to start it: the
    // restore is good, the start and the probes do not apply.
    let (sim, sshd) = demo_over_ssh();
    let name = "vzdump-qemu-9000-2024_01_14-05_00_00.vma.zst";
    let make = "conf = archives.qemu_config(9000, 'tmpl') + 'template: 1\\n'\n\
         raw = archives.vma_bytes(conf, [('drive-scsi0', 65536)], seed=1)\n";
    let volid = crafted_backup(&sim, name, make);
    let (rec, code, err) = restore(&sshd, &new_guest(&volid, "9001", &["--probe", "agent"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(rec["status"], "restored", "{rec}");
    assert_eq!(step(&rec, "start")["status"], "skipped");
    assert_eq!(step(&rec, "probe")["status"], "skipped");
    assert_eq!(guest(&sim, 9001)["template"], 1);
    assert!(!sim.mutations().iter().any(|m| m.starts_with("qm start")));
}

/// The dry run of a restore of `vmid`'s newest backup to 9100, which must succeed: the
/// record and stderr.
fn planned_newest(sshd: &Sshd, vmid: &str) -> (Value, String) {
    let (rec, code, err) = restore(sshd, &["--vmid", vmid, "--target-id", "9100", "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    (rec, err)
}

#[test]
fn vmid_restores_the_newest_scheduled_backup_and_the_plan_says_which() {
    // The demo's manual copy of 100 is the newest file; --vmid takes the newest backup
    // vzdump made on schedule, and the plan shows its date, age and size.
    let (_sim, sshd) = demo_over_ssh();
    let (rec, err) = planned_newest(&sshd, "100");
    assert_eq!(
        rec["volid"], "local:backup/vzdump-qemu-100-2024_01_15-02_00_02.vma.zst",
        "{err}"
    );
    assert!(
        err.contains("(2024-01-15T02:00:02Z, ")
            && err.contains("h old, ")
            && err.contains(" B) → 9100"),
        "{err}"
    );
}

#[test]
fn target_vmid_is_the_records_name_and_target_id_its_alias() {
    let (_sim, sshd) = demo_over_ssh();
    for flag in ["--target-vmid", "--target-id"] {
        let (rec, code, err) = restore(&sshd, &["--vmid", "100", flag, "9100", "--dry-run"]);
        assert_eq!(code, 0, "{flag}: {err}");
        assert_eq!(rec["target_vmid"], 9100, "{flag}: {rec}");
    }
}

#[test]
fn the_newest_backup_is_never_an_unfinished_pbs_snapshot() {
    // A backup to PBS is being written: the snapshot is listed, without a manifest
    // (size 1). The newest complete backup is the one to restore.
    let (sim, sshd) = demo_over_ssh();
    sim.add_unfinished_pbs("ct", 101);
    let (rec, _) = planned_newest(&sshd, "101");
    assert_eq!(
        rec["volid"], "local:backup/vzdump-lxc-101-2024_01_15-02_01_07.tar.zst",
        "{rec}"
    );
    // Piped in, it is refused, not restored.
    let listed = listing(&sshd, &["--storage", "pbs", "--vmid", "101"]);
    let unfinished: String = String::from_utf8_lossy(&listed)
        .lines()
        .filter(|l| l.contains(&format!("/{}Z", "2024-01-15T06:25:40")))
        .map(|l| format!("{l}\n"))
        .collect();
    let text = String::from_utf8_lossy(&listed);
    assert_eq!(unfinished.lines().count(), 1, "{text}");
    let (_, code, err) = restore_fed(&sshd, &["--target-id", "9100", "--dry-run"], unfinished);
    assert_eq!(code, 2);
    assert!(err.contains("unfinished"), "{err}");
}

#[test]
fn records_of_other_kinds_on_stdin_are_ignored() {
    // A listing with --with-guests as Proxmox gives tags, and a record pve-restore cannot
    // read: only the backup matters.
    let (_sim, sshd) = demo_over_ssh();
    let stdin = [
        json!({"kind": "guest", "vmid": 100, "type": "qemu", "node": "pve1", "tags": "prod;web"}),
        json!({"kind": "guest", "vmid": 101, "type": "lxc", "node": "pve1", "tags": ""}),
        json!({"kind": "job", "id": 7, "enabled": "maybe"}),
        json!({"kind": "backup", "node": "pve1", "storage": "local", "volid": VM_BACKUP,
               "vmid": 100, "subtype": "qemu", "ctime": 1_705_194_002, "format": "vma.zst"}),
    ]
    .iter()
    .map(|v| format!("{v}\n"))
    .collect::<String>();
    let out = pvedr_testkit::run_code(
        sshd.bin("pve-restore")
            .args(["--target-id", "9100", "--dry-run"])
            .write_stdin(stdin),
        0,
    );
    let rec = json_lines(&out.stdout)
        .into_iter()
        .find(|r| r["kind"] == "restore")
        .expect("record");
    assert_eq!(rec["volid"], VM_BACKUP);
}

/// Storage `local` enabled on `nodes` only (storage.cfg `nodes`).
fn local_on(sim: &SimNode, nodes: &[&str]) {
    sim.edit_storage("local", |st| st["nodes"] = json!(nodes));
}

#[test]
fn a_volid_on_a_storage_of_another_node_is_restored_there() {
    // Connected to pve1; `local` is enabled on pve2 only: qmrestore on pve1 is refused
    // ("storage 'local' is not available on node 'pve1'"), so the restore runs on pve2.
    // Shared too: `/nodes/pve1/storage` still lists a storage whose storage.cfg `nodes`
    // leaves pve1 out, with `enabled: 0` (pve-storage `Storage.pm` `storage_info`): listed
    // is not available, and this node's is not taken.
    let cases = [("a node's own storage", false), ("a shared storage", true)];
    each_case(
        &cases,
        |c| c.0,
        |&(_, shared)| {
            let (sim, sshd) = demo_over_ssh();
            local_on(&sim, &["pve2"]);
            if shared {
                sim.edit_storage("local", |st| st["shared"] = json!(1));
            }
            let (rec, code, err) = restore(&sshd, &new_guest(VM_BACKUP, "9100", &[]));
            assert_eq!(code, 0, "{err}\n{rec}");
            assert_eq!(rec["node"], "pve2");
            assert_eq!(guest(&sim, 9100)["node"], "pve2");
        },
    );
}

#[test]
fn a_volid_on_several_nodes_asks_for_node() {
    // `local` is each node's own disk: the archive on pve1 and on pve2 may differ, so
    // the choice is the user's.
    let (sim, sshd) = demo_over_ssh();
    local_on(&sim, &["pve1", "pve2"]);
    let file = VM_BACKUP.rsplit('/').next().expect("file");
    let theirs = sim.root().join("nodefs/pve2/local/dump");
    std::fs::create_dir_all(&theirs).expect("mkdir");
    std::fs::copy(sim.root().join("local/dump").join(file), theirs.join(file)).expect("copy");
    let out = pvedr_testkit::run_code(
        sshd.bin("pve-restore")
            .args(["--volid", VM_BACKUP, "--target-id", "9100", "--yes"]),
        2,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--node") && err.contains("pve1, pve2"),
        "{err}"
    );
    assert_eq!(sim.mutations(), Vec::<String>::new());
    // With --node it goes there.
    let (rec, code, err) = restore(&sshd, &new_guest(VM_BACKUP, "9100", &["--node", "pve2"]));
    assert_eq!(code, 0, "{err}\n{rec}");
    assert_eq!(guest(&sim, 9100)["node"], "pve2");
}

#[test]
fn an_ha_guest_requested_stopped_is_overwritten() {
    // HA's requested state `stopped`: the guest is not running and HA will not start it, so
    // no HA stop is needed (vzdump's stop mode refuses only `started`).
    let (sim, sshd) = demo_over_ssh();
    sim.edit_guest(100, |g| {
        g["hastate"] = json!("stopped");
        g["ha_request"] = json!("stopped");
        g["status"] = json!("stopped");
    });
    overwritten(&sshd);
}

#[test]
fn an_overwrite_keeps_the_guest_in_its_pool_and_the_plan_says_so() {
    let (sim, sshd) = demo_with_100(|g| g["pool"] = json!("prod"));
    let (rec, code, err) = overwrite_vm(&sshd);
    assert_eq!(code, 0, "{err}\n{rec}");
    assert_eq!(guest(&sim, 100)["pool"], "prod");
    // The plan (stderr) says so.
    assert!(err.contains("stays in pool prod"), "{err}");
}

/// Guest 100's disk on a ZFS pool, with `after-upgrade` taken after `before-upgrade`.
fn on_zfs_with_a_newer_snapshot(sim: &SimNode) {
    let mut storages = sim.read_json("storage.json");
    storages.as_array_mut().expect("list").push(json!({
        "storage": "tank", "type": "zfspool", "pool": "rpool/data",
        "content": "images,rootdir", "shared": 0
    }));
    sim.write_json("storage.json", &storages);
    let mut g = guest(sim, 100);
    let disk = "tank:vm-100-disk-0,size=256K";
    g["config"]["scsi0"] = json!(disk);
    g["snapshots"]["before-upgrade"]["scsi0"] = json!(disk);
    g["snapshots"]["before-upgrade"]["snaptime"] = json!(1_700_000_000);
    let mut newer = g["snapshots"]["before-upgrade"].clone();
    newer["snaptime"] = json!(1_700_000_100);
    newer["parent"] = json!("before-upgrade");
    g["snapshots"]["after-upgrade"] = newer;
    g["config"]["parent"] = json!("after-upgrade");
    sim.write_json("guests/100.json", &g);
}

#[test]
fn a_zfs_rollback_past_a_newer_snapshot_is_refused_before_the_safety_point() {
    // pve-storage ZFSPoolPlugin.pm volume_rollback_is_possible: only the most recent
    // snapshot; Proxmox would refuse after our safety point, so we refuse before it.
    let sim = SimNode::demo();
    on_zfs_with_a_newer_snapshot(&sim);
    let sshd = Sshd::start(&sim);
    let (rec, code, err) = restore(&sshd, &rollback());
    assert_eq!(code, 1, "{err}");
    assert_eq!(rec["status"], "refused", "{rec}");
    let e = rec["error"].as_str().unwrap_or("");
    assert!(e.contains("after-upgrade") && e.contains("tank"), "{rec}");
    assert_eq!(sim.mutations(), Vec::<String>::new(), "no safety point");
    // The newest one is fine.
    let mut a = rollback();
    a[3] = "after-upgrade";
    let (rec, code, err) = restore(&sshd, &a);
    assert_eq!(code, 0, "{err}");
    assert_eq!(rec["status"], "restored", "{rec}");
}

#[test]
fn a_rollback_leaves_a_running_guest_running_and_a_stopped_one_stopped() {
    // AbstractConfig.pm snapshot_rollback stops the guest; only a snapshot with RAM comes
    // back running. pve-restore asks for `--start 1` when the guest was running.
    let (sim, sshd) = demo_over_ssh();
    let (rec, code, err) = restore(&sshd, &rollback());
    assert_eq!(code, 0, "{err}");
    assert_eq!(rec["status"], "restored", "{rec}");
    assert_eq!(guest(&sim, 100)["status"], "running", "{rec}");
    assert_eq!(rec["running"], true, "{rec}");
    sim.edit_guest(100, |g| {
        g["status"] = json!("stopped");
    });
    let (rec, code, err) = restore(&sshd, &rollback());
    assert_eq!(code, 0, "{err}");
    assert_eq!(guest(&sim, 100)["status"], "stopped", "{rec}");
    assert_eq!(rec["running"], false, "{rec}");
}
