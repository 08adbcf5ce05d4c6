//! A whole site (issue 27): several records planned in Proxmox's boot order, bin-packed
//! onto the mapped storages, refused at once when they do not fit, predicted from a
//! history, and restored in lanes; against the simulator over sshd.

use std::path::Path;

use crate::common::{backup_holding, offsite, offsite_moto, reinstalled};
use pvedr_testkit::{SimNode, Sshd, assert_says, bin, json_lines};
use serde_json::{Value, json};

const G: u64 = 1 << 30;

/// VMs and CTs, some with a startup order: (type, VMID, config).
const SITE: [(&str, u64, &str); 6] = [
    (
        "qemu",
        300,
        "memory: 512\nname: app\nstartup: order=2,up=30\nscsi0: local-lvm:vm-300-disk-0,size=4G\n",
    ),
    (
        "lxc",
        301,
        "arch: amd64\nhostname: dns\nostype: debian\nstartup: order=1\nrootfs: local-lvm:vm-301-disk-0,size=2G\n",
    ),
    (
        "qemu",
        302,
        "memory: 512\nname: web\nscsi0: local-lvm:vm-302-disk-0,size=4G\n",
    ),
    (
        "lxc",
        303,
        "arch: amd64\nhostname: db\nostype: debian\nstartup: up=10,order=2\nrootfs: local-lvm:vm-303-disk-0,size=2G\n",
    ),
    (
        "qemu",
        304,
        "memory: 512\nname: gw\nstartup: 1\nscsi0: local-lvm:vm-304-disk-0,size=4G\n",
    ),
    (
        "lxc",
        305,
        "arch: amd64\nhostname: files\nostype: debian\nrootfs: local-lvm:vm-305-disk-0,size=2G\n",
    ),
];

/// Proxmox's boot order of [`SITE`]: order 1 (by VMID), order 2, then those without.
const BOOT_ORDER: [u64; 6] = [301, 304, 300, 303, 302, 305];

/// The demo cluster reinstalled with one `bulk` storage (`free` bytes free) for every
/// disk; the site's archives on `local`, their backup records (1000 bytes each, said).
fn site(free: u64) -> (SimNode, String) {
    let sim = reinstalled(|root| {
        vec![
            json!({"storage": "bulk", "type": "dir", "path": format!("{root}/bulk"),
                    "content": "images,rootdir", "shared": 0,
                    "status": {"total": 100 * G, "used": 100 * G - free, "avail": free}}),
        ]
    });
    let mut input = String::new();
    for (kind, vmid, config) in SITE {
        let name = backup_holding(&sim, kind, vmid, 1705197602, config);
        let format = name.split_once('.').map(|(_, f)| f).unwrap_or("");
        let rec = json!({"kind": "backup", "node": "pve1", "storage": "local",
            "volid": format!("local:backup/{name}"), "vmid": vmid, "subtype": kind,
            "format": format, "ctime": 1705197602, "size": 1000});
        input.push_str(&format!("{rec}\n"));
    }
    (sim, input)
}

/// pve-restore on the site's records: its records, summary, exit and stderr.
fn run(sshd: &Sshd, input: &str, locks: &Path, args: &[&str]) -> (Vec<Value>, Value, i32, String) {
    let mut cmd = bin("pve-restore");
    cmd.args(sshd.args())
        .args(["--all", "--target-storage", "bulk"])
        .args(args)
        .env("XDG_RUNTIME_DIR", locks)
        .write_stdin(input.to_string());
    let (lines, code, err) = pvedr_testkit::outcome(cmd);
    let of_kind = |kind: &'static str| lines.iter().filter(move |r| r["kind"] == kind).cloned();
    let summary = of_kind("summary").next().unwrap_or(Value::Null);
    (of_kind("restore").collect(), summary, code, err)
}

/// [`site`] over sshd, and a directory for the runs' locks (`XDG_RUNTIME_DIR`).
fn site_over_ssh(free: u64) -> (SimNode, String, Sshd, tempfile::TempDir) {
    let (sim, input) = site(free);
    let sshd = Sshd::start(&sim);
    (sim, input, sshd, tempfile::tempdir().expect("tmp"))
}

fn vmids(recs: &[Value]) -> Vec<u64> {
    recs.iter().filter_map(|r| r["vmid"].as_u64()).collect()
}

/// A history of past restores: guest 300 once (1000 bytes in 10 s), another guest (9000
/// bytes in 30 s): the site's rate is 10000 bytes in 40 s.
fn history(dir: &Path) -> String {
    let p = dir.join("history.jsonl");
    let line = |vmid: u64, size: u64, d: f64| {
        json!({"kind": "restore", "vmid": vmid, "dry_run": false, "status": "restored",
               "steps": [], "size": size, "duration_s": d})
    };
    let text = format!("{}\n{}\n", line(300, 1000, 10.0), line(999, 9000, 30.0));
    std::fs::write(&p, text).expect("history");
    p.display().to_string()
}

#[test]
fn a_site_is_planned_in_boot_order_with_its_predicted_rto_and_rpo() {
    let (sim, input, sshd, tmp) = site_over_ssh(50 * G);
    let h = history(tmp.path());
    sim.clear_commands();
    let args = [
        "--dry-run",
        "--jobs",
        "2",
        "--history",
        &h,
        "--rto-target",
        "20s",
    ];
    let (recs, summary, code, err) = run(&sshd, &input, tmp.path(), &args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(vmids(&recs), BOOT_ORDER, "{err}");
    let orders: Vec<Value> = recs.iter().map(|r| r["order"].clone()).collect();
    assert_eq!(
        orders,
        [
            json!(1),
            json!(1),
            json!(2),
            json!(2),
            Value::Null,
            Value::Null
        ]
    );
    for r in &recs {
        assert_eq!(r["status"], "planned", "{r}");
    }
    // 300 from its own restore (10 s), the others at the history's 250 B/s (4 s).
    assert_eq!(recs[2]["predicted_s"], 10.0);
    assert_eq!(recs[2]["predicted_from"], "history");
    assert_eq!(recs[0]["predicted_s"], 4.0);
    assert_eq!(recs[0]["predicted_from"], "history-site");
    // Waves 4 s, 10 s (300 and 303 side by side), 4 s.
    assert_eq!(summary["predicted_rto_s"], 18.0, "{summary}");
    let lanes: Vec<Value> = recs.iter().map(|r| r["lane"].clone()).collect();
    assert_eq!(
        lanes,
        [json!(1), json!(2), json!(1), json!(2), json!(1), json!(2)]
    );
    let age = chrono::Utc::now().timestamp() - 1705197602;
    let rpo = summary["rpo_s"].as_f64().expect("rpo");
    assert!((rpo - age as f64).abs() < 60.0, "{summary}");
    assert_eq!(recs[0]["rpo_s"], summary["rpo_s"]);
    assert!(
        summary.get("rto_s").is_none(),
        "a dry run measures none: {summary}"
    );
    assert_eq!(sim.mutations(), Vec::<String>::new());
}

#[test]
fn a_plan_over_its_rto_target_exits_4() {
    let (_sim, input, sshd, tmp) = site_over_ssh(50 * G);
    let h = history(tmp.path());
    // One lane: 8 + 14 + 8 = 30 s.
    let args = ["--dry-run", "--history", &h, "--rto-target", "25s"];
    let (recs, summary, code, err) = run(&sshd, &input, tmp.path(), &args);
    assert_eq!(code, 4, "{err}");
    assert_eq!(summary["exit_code"], 4);
    assert_eq!(summary["predicted_rto_s"], 30.0);
    assert_eq!(summary["rto_target_s"], 25.0);
    assert!(err.contains("exceeds --rto-target"), "{err}");
    assert_eq!(recs.len(), 6);
}

#[test]
fn a_site_that_does_not_fit_is_refused_naming_every_guest_left_out_and_nothing_changes() {
    // 18 GiB of disks on 13 GiB: in boot order 301, 304, 300 and 303 take 12 GiB; 302
    // (4 GiB) and 305 (2 GiB) do not fit in the last one.
    let (sim, input, sshd, tmp) = site_over_ssh(13 * G);
    sim.clear_commands();
    let (recs, _, code, err) = run(&sshd, &input, tmp.path(), &["--yes"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("the site does not fit"), "{err}");
    assert!(
        err.contains("guest 302 needs 4.0 GiB on pve1/bulk with 1.0 GiB left"),
        "{err}"
    );
    assert!(err.contains("guest 305 needs 2.0 GiB"), "{err}");
    assert!(!err.contains("guest 303 needs"), "{err}");
    assert!(recs.is_empty());
    assert_eq!(sim.mutations(), Vec::<String>::new());
    for (_, vmid, _) in SITE {
        assert!(sim.read_json(&format!("guests/{vmid}.json")).is_null());
    }
}

/// Whether `c` (a simulator command) is about guest `vmid`.
fn about(c: &Value, vmid: u64) -> bool {
    let v = vmid.to_string();
    let path = format!("/{vmid}/");
    c["argv"].as_array().is_some_and(|a| {
        a.iter()
            .filter_map(Value::as_str)
            .any(|s| s == v || s.contains(&path) || s.ends_with(&format!("/{vmid}")))
    })
}

/// The time of the restore command of `vmid` (qmrestore, pct restore).
fn restore_time(cmds: &[Value], vmid: u64) -> f64 {
    cmds.iter()
        .find(|c| {
            let first = c["argv"][0].as_str().unwrap_or("");
            (c["cmd"] == "qmrestore" || (c["cmd"] == "pct" && first == "restore")) && about(c, vmid)
        })
        .and_then(|c| c["time"].as_f64())
        .unwrap_or_else(|| panic!("no restore of {vmid}"))
}

#[test]
fn a_site_is_restored_in_two_lanes_in_boot_order() {
    let (sim, input, sshd, tmp) = site_over_ssh(50 * G);
    let h = history(tmp.path());
    // The first guest's restore is slow, so the other lane takes the second guest.
    sim.write_json(
        "faults.json",
        &json!([{"match": "pct restore 301", "sleep": 2}]),
    );
    sim.clear_commands();
    let (recs, summary, code, err) = run(
        &sshd,
        &input,
        tmp.path(),
        &["--jobs", "2", "--yes", "--history", &h],
    );
    assert_eq!(code, 0, "{err}");
    let mut got = vmids(&recs);
    got.sort_unstable();
    assert_eq!(got, [300, 301, 302, 303, 304, 305]);
    let mut lanes: Vec<u64> = recs.iter().filter_map(|r| r["lane"].as_u64()).collect();
    lanes.sort_unstable();
    lanes.dedup();
    assert_eq!(lanes, [1, 2], "both lanes used");
    for r in &recs {
        assert_eq!(r["status"], "restored", "{r}");
        assert!(
            r["predicted_s"].as_f64().is_some() && r["duration_s"].as_f64().is_some(),
            "{r}"
        );
        let g = sim.read_json(&format!("guests/{}.json", r["vmid"]));
        assert_eq!(g["status"], "stopped", "{g}");
    }
    // Order kept: every command about a guest of a wave ran before the restore of any
    // guest of a later wave started (the simulator's own timestamps).
    let cmds = sim.commands();
    let waves = [[301, 304], [300, 303], [302, 305]];
    for pair in waves.windows(2) {
        let last_of_wave = cmds
            .iter()
            .filter(|c| pair[0].iter().any(|&v| about(c, v)))
            .filter_map(|c| c["time"].as_f64())
            .fold(0.0, f64::max);
        for &later in &pair[1] {
            assert!(
                restore_time(&cmds, later) > last_of_wave,
                "guest {later} started before wave {:?} was done",
                pair[0]
            );
        }
    }
    assert!(summary["rto_s"].as_f64().is_some(), "{summary}");
    assert!(
        summary["prediction_error_pct"].as_f64().is_some(),
        "{summary}"
    );
    assert_eq!(summary["predicted_rto_s"], 18.0);
    lanes_name_their_guests(&recs, &err);
}

/// Every stderr line of a lane run is the tool's and names, once the lanes run, the lane
/// and guest it is about: its plan's lines, its steps (`[5/9] restore 301 (started …)`).
fn lanes_name_their_guests(recs: &[Value], err: &str) {
    for l in err.lines() {
        assert!(
            l.starts_with("pve-restore: "),
            "a line not the tool's: {l:?}\n{err}"
        );
    }
    for r in recs {
        let (vmid, lane) = (&r["vmid"], &r["lane"]);
        let kind = if [301, 303, 305].contains(&vmid.as_u64().unwrap_or(0)) {
            "CT"
        } else {
            "VM"
        };
        let tag = format!("pve-restore: [lane {lane} {kind} {vmid}] ");
        let step = err
            .lines()
            .find(|l| l.contains(&format!("] restore {vmid} (started")))
            .unwrap_or_else(|| panic!("no restore step of {vmid}: {err}"));
        assert!(step.starts_with(&tag), "{step:?} does not start {tag:?}");
        assert!(
            err.lines()
                .any(|l| l.starts_with(&tag) && l.contains("1. ")),
            "its plan's lines name lane and guest {tag:?}: {err}"
        );
    }
}

#[test]
fn an_offsite_site_without_history_is_predicted_from_probes_and_changes_nothing() {
    use pvedr_testkit::s3::s3_env;
    use sha2::{Digest, Sha256};
    let moto = offsite_moto();
    let sim = SimNode::demo();
    let sshd = Sshd::start(&sim);
    let bucket = offsite(&moto.endpoint());
    let tmp = tempfile::tempdir().expect("tmp");
    let mut input = String::new();
    for (kind, vmid, ext) in [("qemu", 500, "vma.zst"), ("lxc", 501, "tar.zst")] {
        let p = tmp.path().join(format!("a{vmid}"));
        let p = p.to_str().expect("path");
        sim.admin(&["archive", p, "--type", kind, "--compress", "zstd"]);
        let bytes = std::fs::read(p).expect("archive");
        let key = format!("pve/pve1/{vmid}/vzdump-{kind}-{vmid}-2024_01_15-02_00_02.{ext}");
        bucket.put(&key, bytes.clone()).expect("put");
        let rec = json!({"kind": "backup", "node": "pve1", "storage": "offsite",
            "volid": format!("offsite:backup/{key}"), "vmid": vmid, "subtype": kind,
            "ctime": 1705284002, "size": bytes.len(), "format": ext,
            "url": format!("s3://offsite/{key}"), "sha256": format!("{:x}", Sha256::digest(&bytes))});
        input.push_str(&format!("{rec}\n"));
    }
    sim.clear_commands();
    let out = bin("pve-restore")
        .args(sshd.args())
        .args([
            "--endpoint",
            &moto.endpoint(),
            "--all",
            "--dry-run",
            "--jobs",
            "2",
        ])
        .env("XDG_RUNTIME_DIR", tmp.path())
        .envs(s3_env())
        .write_stdin(input)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(0), "{err}");
    let lines = json_lines(&out.stdout);
    let recs: Vec<&Value> = lines.iter().filter(|r| r["kind"] == "restore").collect();
    assert_eq!(recs.len(), 2, "{err}");
    for r in &recs {
        assert_eq!(r["predicted_from"], "probe", "{r}");
        assert!(r["predicted_s"].as_f64().is_some_and(|s| s > 0.0), "{r}");
    }
    let summary = lines
        .iter()
        .find(|r| r["kind"] == "summary")
        .expect("summary");
    assert!(
        summary["predicted_rto_s"].as_f64().is_some_and(|s| s > 0.0),
        "{summary}"
    );
    assert_eq!(sim.mutations(), Vec::<String>::new());
}

#[test]
fn ctrl_c_lets_every_lane_finish_its_guest_starts_no_other_and_exits_130() {
    let (sim, input, sshd, tmp) = site_over_ssh(50 * G);
    sim.write_json(
        "faults.json",
        &json!([{"match": "pct restore 301", "sleep": 4}]),
    );
    sim.clear_commands();
    let path = assert_cmd::cargo::cargo_bin("pve-restore");
    let mut child = std::process::Command::new(path)
        .args(sshd.args())
        .args(["--all", "--target-storage", "bulk", "--jobs", "2", "--yes"])
        .env("XDG_RUNTIME_DIR", tmp.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    sim.wait_for("the restore of 301", |c| {
        c["cmd"] == "pct" && c["argv"][0] == "restore" && c["argv"][1] == "301"
    });
    let out = pvedr_testkit::interrupted(child);
    let err = String::from_utf8_lossy(&out.stderr);
    let lines = json_lines(&out.stdout);
    let recs: Vec<&Value> = lines.iter().filter(|r| r["kind"] == "restore").collect();
    let mut got: Vec<u64> = recs.iter().filter_map(|r| r["vmid"].as_u64()).collect();
    got.sort_unstable();
    assert_eq!(got, [301, 304], "the first wave's records, written: {err}");
    assert_eq!(lines.last().expect("summary")["kind"], "summary");
    for later in [300, 302, 303, 305] {
        assert!(
            !sim.commands().iter().any(|c| {
                let first = c["argv"][0].as_str().unwrap_or("");
                (c["cmd"] == "qmrestore" || (c["cmd"] == "pct" && first == "restore"))
                    && about(c, later)
            }),
            "guest {later} was started after the interrupt"
        );
    }
    // The first Ctrl-C is answered by the lane that finishes its guest, named as its other
    // lines are; no answer without a lane.
    let answers: Vec<&str> = err.lines().filter(|l| l.contains("interrupt:")).collect();
    assert!(
        answers.iter().any(|l| l.starts_with("pve-restore: [lane ")
            && l.contains(" CT 301] interrupt: finishing the restore, then ")),
        "{err}"
    );
    assert!(
        answers.iter().all(|l| l.starts_with("pve-restore: [lane ")),
        "{err}"
    );
}

/// Each restore record's status by VMID.
fn statuses(recs: &[Value]) -> std::collections::BTreeMap<u64, String> {
    recs.iter()
        .filter_map(|r| Some((r["vmid"].as_u64()?, r["status"].as_str()?.to_string())))
        .collect()
}

/// Whether a restore command (qmrestore, pct restore) of `vmid` ran.
fn restore_ran(sim: &SimNode, vmid: u64) -> bool {
    sim.commands().iter().any(|c| {
        let first = c["argv"][0].as_str().unwrap_or("");
        (c["cmd"] == "qmrestore" || (c["cmd"] == "pct" && first == "restore")) && about(c, vmid)
    })
}

#[test]
fn stop_on_failure_holds_back_the_later_waves_of_a_guest_not_restored() {
    // Guest 301 (order 1) fails its restore: 304, started in the other lane with it, goes
    // on, the later waves do not start, each refused naming 301. 301 fails after a second, so
    // that lane 2 has surely taken 304 by then (no guest starts after a failure).
    let fail_301 =
        json!([{"match": "pct restore 301", "sleep": 1, "exit": 255, "stderr": "disk on fire"}]);
    let (sim, input, sshd, tmp) = site_over_ssh(50 * G);
    sim.set_faults(fail_301.clone());
    sim.clear_commands();
    let args = ["--jobs", "2", "--yes", "--stop-on-failure"];
    let (recs, summary, code, err) = run(&sshd, &input, tmp.path(), &args);
    assert_eq!(code, 3, "{err}");
    let st = statuses(&recs);
    assert_eq!(st[&301], "failed", "{err}");
    assert_eq!(st[&304], "restored", "{err}");
    for later in [300, 302, 303, 305] {
        assert_eq!(st[&later], "refused", "{err}");
        let r = recs.iter().find(|r| r["vmid"] == later).expect("record");
        assert_says(r, "error", "guest 301 (order 1) was not restored");
        assert_says(r, "error", "--stop-on-failure");
        assert!(!restore_ran(&sim, later), "guest {later} was started");
        assert!(sim.read_json(&format!("guests/{later}.json")).is_null());
    }
    assert_says(&summary, "stopped", "guest 301 (order 1) was not restored");
    assert_says(&summary, "stopped", "4 guest(s)");
    assert_eq!(summary["counts"]["refused"], 4, "{summary}");
    // The default, as Proxmox's startall: the later waves go on.
    let (sim, input) = site(50 * G);
    let sshd = Sshd::start(&sim);
    sim.set_faults(fail_301);
    let (recs, summary, code, err) = run(&sshd, &input, tmp.path(), &["--yes"]);
    assert_eq!(code, 3, "{err}");
    let st = statuses(&recs);
    assert_eq!(st[&301], "failed", "{err}");
    for other in [300, 302, 303, 304, 305] {
        assert_eq!(st[&other], "restored", "{err}");
    }
    assert!(summary.get("stopped").is_none(), "{summary}");
}

#[test]
fn a_vm_mapped_onto_two_storages_needs_room_for_both_disks_on_one_of_them() {
    // Each disk fits its own storage (4 GiB on 6), but qmrestore puts both on one storage
    // before one moves: neither has 8 GiB.
    let sim = SimNode::demo();
    let root = sim.root().display().to_string();
    let dir = |id: &str| {
        json!({"storage": id, "type": "dir", "path": format!("{root}/{id}"),
               "content": "images,rootdir", "shared": 0,
               "status": {"total": 100 * G, "used": 94 * G, "avail": 6 * G}})
    };
    sim.write_json(
        "storage.json",
        &json!([{"storage": "local", "type": "dir", "path": format!("{root}/local"),
                 "content": "backup", "shared": 0}, dir("bulk"), dir("fast")]),
    );
    let vm = "memory: 512\nname: db\nscsi0: local-lvm:vm-400-disk-0,size=4G\nscsi1: nas:vm-400-disk-1,size=4G\n";
    let ct =
        "arch: amd64\nhostname: dns\nostype: debian\nrootfs: local-lvm:vm-401-disk-0,size=1G\n";
    let mut input = String::new();
    for (kind, vmid, config) in [("qemu", 400, vm), ("lxc", 401, ct)] {
        let file = sim.root().join(format!("conf-{vmid}"));
        std::fs::write(&file, config).expect("config");
        let vmid_s = vmid.to_string();
        let path = sim.admin(&[
            "add-backup",
            &root,
            "--storage",
            "local",
            "--type",
            kind,
            "--vmid",
            &vmid_s,
            "--epoch",
            "1705197602",
            "--config",
            &file.display().to_string(),
        ]);
        let name = path.rsplit('/').next().expect("file name");
        let rec = json!({"kind": "backup", "node": "pve1", "storage": "local",
            "volid": format!("local:backup/{name}"), "vmid": vmid, "subtype": kind,
            "ctime": 1705197602, "size": 1000});
        input.push_str(&format!("{rec}\n"));
    }
    let sshd = Sshd::start(&sim);
    let tmp = tempfile::tempdir().expect("tmp");
    sim.clear_commands();
    let out = bin("pve-restore")
        .args(sshd.args())
        .args([
            "--all",
            "--dry-run",
            "--target-storage",
            "local-lvm:bulk,nas:fast",
        ])
        .env("XDG_RUNTIME_DIR", tmp.path())
        .write_stdin(input)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("the site does not fit"), "{err}");
    assert!(
        err.contains("guest 400 needs 8.0 GiB on one of pve1/bulk, pve1/fast at once"),
        "{err}"
    );
    assert!(!err.contains("guest 401 needs"), "{err}");
    assert_eq!(sim.mutations(), Vec::<String>::new());
}

#[test]
fn stop_on_failure_in_one_lane_starts_no_guest_after_the_failed_one_not_even_of_its_wave() {
    // One lane runs wave 1 (301, 304) in series: 301 fails, so 304 is held back with the
    // later waves, as in lanes no guest starts after a failure.
    let (sim, input) = site(50 * G);
    let sshd = Sshd::start(&sim);
    let tmp = tempfile::tempdir().expect("tmp");
    sim.set_faults(json!([{"match": "pct restore 301", "exit": 255, "stderr": "disk on fire"}]));
    sim.clear_commands();
    let args = ["--jobs", "1", "--yes", "--stop-on-failure"];
    let (recs, summary, code, err) = run(&sshd, &input, tmp.path(), &args);
    // Nothing restored: exit 1, not partial.
    assert_eq!(code, 1, "{err}");
    assert_eq!(vmids(&recs), BOOT_ORDER, "{err}");
    let st = statuses(&recs);
    assert_eq!(st[&301], "failed", "{err}");
    for later in [304, 300, 303, 302, 305] {
        assert_eq!(st[&later], "refused", "guest {later}: {err}");
        let r = recs.iter().find(|r| r["vmid"] == later).expect("record");
        assert_says(r, "error", "guest 301 (order 1) was not restored");
        assert!(!restore_ran(&sim, later), "guest {later} was started");
    }
    assert_says(&summary, "stopped", "5 guest(s)");
    assert_eq!(summary["counts"]["refused"], 5, "{summary}");
}

/// Two VMs of no startup order (one wave), each with a 4 GiB disk from `local-lvm` and one
/// from `nas`, and storages `bulk` and `fast` with 12 GiB free each: staged on `bulk`
/// (qmrestore puts both disks there before one moves to `fast`), either fits alone, both at
/// once need 16 GiB there. The simulator, its records.
fn two_staged_vms() -> (SimNode, String) {
    let sim = SimNode::demo();
    let root = sim.root().display().to_string();
    let dir = |id: &str| {
        json!({"storage": id, "type": "dir", "path": format!("{root}/{id}"),
               "content": "images,rootdir", "shared": 0,
               "status": {"total": 100 * G, "used": 88 * G, "avail": 12 * G}})
    };
    sim.write_json(
        "storage.json",
        &json!([{"storage": "local", "type": "dir", "path": format!("{root}/local"),
                 "content": "backup", "shared": 0}, dir("bulk"), dir("fast")]),
    );
    let mut input = String::new();
    for vmid in [410u64, 411] {
        let config = format!(
            "memory: 512\nname: vm{vmid}\nscsi0: local-lvm:vm-{vmid}-disk-0,size=4G\nscsi1: nas:vm-{vmid}-disk-1,size=4G\n"
        );
        let name = backup_holding(&sim, "qemu", vmid, 1705197602, &config);
        let rec = json!({"kind": "backup", "node": "pve1", "storage": "local",
            "volid": format!("local:backup/{name}"), "vmid": vmid, "subtype": "qemu",
            "ctime": 1705197602, "size": 1000});
        input.push_str(&format!("{rec}\n"));
    }
    (sim, input)
}

#[test]
fn two_vms_of_one_wave_staged_on_one_storage_that_holds_either_alone_restore_in_series() {
    let (sim, input) = two_staged_vms();
    let sshd = Sshd::start(&sim);
    let tmp = tempfile::tempdir().expect("tmp");
    // Each VM's disks stay staged on bulk a while before one moves: in two lanes at once
    // both would be there together.
    sim.set_faults(json!([{"match": "qm disk move", "sleep": 2}]));
    sim.clear_commands();
    let out = bin("pve-restore")
        .args(sshd.args())
        .args(["--all", "--yes", "--jobs", "2"])
        .args(["--target-storage", "local-lvm:bulk,nas:fast"])
        .env("XDG_RUNTIME_DIR", tmp.path())
        .write_stdin(input)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    let recs: Vec<Value> = json_lines(&out.stdout)
        .into_iter()
        .filter(|r| r["kind"] == "restore")
        .collect();
    assert_eq!(out.status.code(), Some(0), "{err}");
    let st = statuses(&recs);
    assert_eq!(st[&410], "restored", "{err}");
    assert_eq!(st[&411], "restored", "{err}");
    assert!(
        err.contains("guest 411 waits for the guests before it") && err.contains("pve1/bulk"),
        "{err}"
    );
    assert!(err.contains("2 waves"), "{err}");
}
