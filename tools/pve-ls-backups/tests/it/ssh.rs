//! pve-ls-backups against the simulated node over a real sshd, and locally.

use std::io::Read;
use std::process::Command as StdCommand;

use pvedr_testkit::{PARIS_JUST_AFTER_MIDNIGHT, Sshd, bin, demo_over_ssh, json_lines};
use serde_json::{Value, json};

fn strip_offline_fields(mut v: Vec<Value>) -> Vec<Value> {
    for r in &mut v {
        if let Some(m) = r.as_object_mut() {
            for k in ["path", "log", "log_status"] {
                m.remove(k);
            }
        }
    }
    v
}

/// `pve-ls-backups ARGS` over `sshd` (ARGS: words split at spaces), which must exit `code`.
fn ls(sshd: &Sshd, args: &str, code: i32) -> std::process::Output {
    pvedr_testkit::run_code(sshd.bin("pve-ls-backups").args(args.split(' ')), code)
}

/// The stderr of `pve-ls-backups ARGS` run with `home` as HOME, which must exit `code`.
fn stderr_in_home(home: &std::path::Path, args: &[&str], code: i32) -> String {
    let out = pvedr_testkit::run_code(in_home(home, "pve-ls-backups").args(args), code);
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn ssh_and_dir_mode_give_the_same_records() {
    let (sim, sshd) = demo_over_ssh();
    for storage in ["local", "nas"] {
        let remote =
            pvedr_testkit::run_code(sshd.bin("pve-ls-backups").args(["--storage", storage]), 0);
        let offline = pvedr_testkit::run_ok(
            bin("pve-ls-backups")
                .arg("--dir")
                .arg(sim.dump_dir(storage))
                .args(["--storage", storage, "--node", "pve1", "--timezone", "UTC"]),
        );
        let a = strip_offline_fields(json_lines(&remote.stdout));
        let b = strip_offline_fields(json_lines(&offline.stdout));
        assert!(a.len() >= 3, "{storage}: {a:?}");
        assert_eq!(a, b, "{storage}: SSH and --dir differ");
    }
}

#[test]
fn local_mode_runs_pvesh_on_this_machine() {
    let (sim, sshd) = demo_over_ssh();
    let mut local = bin("pve-ls-backups");
    sim.apply_env(&mut local);
    let local = local.output().expect("run");
    assert!(
        local.status.success(),
        "{}",
        String::from_utf8_lossy(&local.stderr)
    );
    let remote = sshd.bin("pve-ls-backups").output().expect("run");
    assert_eq!(json_lines(&local.stdout), json_lines(&remote.stdout));
}

#[test]
fn records_match_proxmox_field_by_field() {
    let (_sim, sshd) = demo_over_ssh();
    let out = pvedr_testkit::run_ok(sshd.bin("pve-ls-backups").args([
        "--storage",
        "pbs",
        "--storage",
        "local",
    ]));
    let recs = json_lines(&out.stdout);
    let find = |volid: &str| {
        recs.iter()
            .find(|r| r["volid"] == volid)
            .unwrap_or_else(|| panic!("{volid} missing"))
    };
    let pbs = find("pbs:backup/vm/100/2024-01-14T01:00:02Z");
    assert_eq!(pbs["kind"], "backup");
    assert_eq!(pbs["node"], "pve1");
    assert_eq!(pbs["storage"], "pbs");
    assert_eq!(pbs["format"], "pbs-vm");
    assert_eq!(pbs["subtype"], "qemu");
    assert_eq!(pbs["ctime"], 1705194002);
    assert_eq!(pbs["time"], "2024-01-14T01:00:02Z");
    assert_eq!(pbs["size"], 34359738368u64);
    assert_eq!(pbs["verification"]["state"], "ok");
    assert!(pbs["encrypted"].is_string());
    let failed_verify = find("pbs:backup/ct/101/2024-01-14T01:01:42Z");
    assert_eq!(failed_verify["verification"]["state"], "failed");
    assert_eq!(failed_verify["protected"], true);
    assert_eq!(failed_verify["subtype"], "lxc");
    let odd = find("local:backup/vzdump-qemu-100-manual-copy.vma.zst");
    assert_eq!(odd["vmid"], 100);
    assert_eq!(odd["protected"], false);
    let prot = find("local:backup/vzdump-qemu-100-2024_01_07-02_00_02.vma.zst");
    assert_eq!(prot["protected"], true);
    assert_eq!(prot["notes"], "web01", "notes: first line only");
    // Proxmox's order: storages as asked, then case-insensitive volid.
    let local: Vec<&str> = recs
        .iter()
        .filter(|r| r["storage"] == "local")
        .filter_map(|r| r["volid"].as_str())
        .collect();
    let mut sorted = local.clone();
    sorted.sort_by_key(|v| v.to_lowercase());
    assert_eq!(local, sorted);
}

#[test]
fn cluster_wide_listing_reports_offline_nodes_and_lists_shared_storage_once() {
    let (_sim, sshd) = demo_over_ssh();
    let out = sshd
        .bin("pve-ls-backups")
        .args([
            "--all-nodes",
            "--with-guests",
            "--with-storage",
            "--with-jobs",
        ])
        .output()
        .expect("run");
    // pve3 is offline: partial.
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("node pve3 is offline"), "{err}");
    let recs = json_lines(&out.stdout);
    let kinds = |k: &str| recs.iter().filter(|r| r["kind"] == k).count();
    assert_eq!(kinds("guest"), 5);
    assert_eq!(kinds("job"), 2);
    // local (pve1 only), nas and pbs (shared) once each.
    let storages: Vec<&str> = recs
        .iter()
        .filter(|r| r["kind"] == "storage")
        .filter_map(|r| r["storage"].as_str())
        .collect();
    assert_eq!(storages, ["local", "nas", "pbs"]);
    let nas_102 = recs
        .iter()
        .filter(|r| r["kind"] == "backup" && r["storage"] == "nas")
        .count();
    assert_eq!(nas_102, 3, "shared storage listed once");
    let named = recs
        .iter()
        .find(|r| r["kind"] == "backup" && r["vmid"] == 102)
        .expect("102");
    assert_eq!(named["name"], "monitoring");
    let job = recs
        .iter()
        .find(|r| r["kind"] == "job" && r["enabled"] == true)
        .expect("job");
    assert_eq!(job["prune_backups"]["keep-daily"], 7);
    assert_eq!(job["exclude"], serde_json::json!([103, 9000]));
}

#[test]
fn changed_host_key_is_refused() {
    let (sim, sshd) = demo_over_ssh();
    sshd.forge_known_host_key();
    let address = format!("[127.0.0.1]:{}", sshd.port());
    nothing_listed(&sshd, &[], &[&address, "CHANGED"]);
    assert!(sim.commands().is_empty(), "nothing ran on the node");
    // Even --accept-new-host-key does not accept a changed key.
    pvedr_testkit::run_code(sshd.bin("pve-ls-backups").arg("--accept-new-host-key"), 1);
}

#[test]
fn unknown_host_key_is_refused_unless_accepted() {
    let (_sim, sshd) = demo_over_ssh();
    sshd.forget_known_host();
    let out = pvedr_testkit::run_code(sshd.bin("pve-ls-backups"), 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is not known") && err.contains("--accept-new-host-key"),
        "{err}"
    );
    pvedr_testkit::run_code(sshd.bin("pve-ls-backups").arg("--accept-new-host-key"), 0);
    let kh = std::fs::read_to_string(sshd.known_hosts()).expect("known_hosts");
    assert!(kh.contains(&format!("[127.0.0.1]:{}", sshd.port())), "{kh}");
    // Now it is known: no flag needed.
    sshd.bin("pve-ls-backups").assert().success();
}

#[test]
fn injected_vmid_exits_2_and_runs_nothing_remote() {
    let (sim, sshd) = demo_over_ssh();
    let marker = sim.root().join("pwned");
    let out = pvedr_testkit::run_code(
        sshd.bin("pve-ls-backups")
            .args(["--vmid", &format!("100;touch {}", marker.display())]),
        2,
    );
    assert!(out.stdout.is_empty());
    assert!(
        sim.commands().is_empty(),
        "a command ran: {:?}",
        sim.commands()
    );
    assert!(!marker.exists());
}

#[test]
fn head_closes_the_pipe_quietly() {
    let (_sim, sshd) = demo_over_ssh();
    let mut child = pvedr_testkit::piped("pve-ls-backups")
        .args(sshd.args())
        .arg("--all-nodes")
        .spawn()
        .expect("spawn");
    // `| head -1`: read one line, close.
    let mut stdout = child.stdout.take().expect("stdout");
    let mut byte = [0u8; 1];
    let mut line = Vec::new();
    while stdout.read(&mut byte).expect("read") == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    drop(stdout);
    let (err, status) = pvedr_testkit::rest_of(child);
    assert!(serde_json::from_slice::<Value>(&line).is_ok());
    // The offline node is reported before the records; nothing about the closed pipe.
    assert!(
        !err.contains("Broken pipe") && !err.contains("panicked"),
        "{err}"
    );
    assert!(
        status.code() == Some(0) || status.code() == Some(3),
        "{status:?}"
    );
}

#[test]
fn head_on_a_healthy_node_is_silent() {
    let (_sim, sshd) = demo_over_ssh();
    let output = StdCommand::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' {} | head -1 >/dev/null",
            assert_cmd::cargo::cargo_bin("pve-ls-backups").display(),
            sshd.args().join(" ")
        ))
        .output()
        .expect("sh");
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
}

#[test]
fn proxmox_errors_surface_with_status_and_message() {
    let (sim, sshd) = demo_over_ssh();
    sim.fail_when("/storage/nas/content", "storage 'nas' is not online", 255);
    let out = sshd.bin("pve-ls-backups").output().expect("run");
    assert_eq!(
        out.status.code(),
        Some(3),
        "partial: the other storages were listed"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("status 255") && err.contains("storage 'nas' is not online"),
        "{err}"
    );
    let recs = json_lines(&out.stdout);
    assert!(recs.iter().any(|r| r["storage"] == "local"));
    assert!(!recs.iter().any(|r| r["storage"] == "nas"));
}

#[test]
fn host_from_tfvars() {
    let (sim, sshd) = demo_over_ssh();
    let tf = sim.root().join("terraform.tfvars");
    std::fs::write(
        &tf,
        "pm_api_url = \"https://127.0.0.1:8006/api2/json\"\ntarget_node = \"pve1\"\n",
    )
    .expect("write");
    let args = sshd.args();
    // Everything but --host comes from the flags; the host and node from the file.
    let out = pvedr_testkit::run_code(
        bin("pve-ls-backups")
            .args(&args[2..])
            .arg("--tfvars")
            .arg(&tf),
        0,
    );
    assert!(!json_lines(&out.stdout).is_empty());
    // With the node known, the listing skips /cluster/status.
    assert!(
        !sim.commands()
            .iter()
            .any(|c| c["argv"][1] == "/cluster/status")
    );
}

#[test]
fn a_cluster_listing_takes_three_round_trips() {
    let (sim, sshd) = demo_over_ssh();
    let out = pvedr_testkit::run_code(
        sshd.bin("pve-ls-backups")
            .args(["--all-nodes"])
            .env("PVEDR_TRACE", "1"),
        3,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let trips: Vec<&str> = err.lines().filter(|l| l.contains("trace:")).collect();
    assert_eq!(trips.len(), 3, "{err}");
    // Each storage's content is asked once, shared storages from one node only.
    let paths: Vec<String> = sim
        .commands()
        .iter()
        .map(|c| c["argv"][1].as_str().unwrap_or("").to_string())
        .collect();
    // Round 1: the cluster and the node's zone; 2: two nodes' storages; 3: three contents.
    assert_eq!(paths.len(), 2 + 2 + 3, "{paths:?}");
    assert_eq!(
        paths.iter().filter(|p| p.ends_with("/content")).count(),
        3,
        "{paths:?}"
    );
}

#[test]
fn failed_runs_come_from_the_task_logs_on_a_node() {
    let (_sim, sshd) = demo_over_ssh();
    let failures_of_102 = "--node pve1 --node pve2 --with-failures --vmid 102";
    let out = ls(&sshd, failures_of_102, 0);
    let recs = json_lines(&out.stdout);
    let f = recs
        .iter()
        .find(|r| r["kind"] == "backup_failure")
        .expect("a failure");
    let error = "Backup of VM 102 failed - no space left on device";
    let fields = [&f["vmid"], &f["subtype"], &f["node"], &f["error"]];
    let want = [json!(102), json!("qemu"), json!("pve2"), json!(error)];
    assert_eq!(fields, want.each_ref(), "vmid, subtype, node, error");
    assert!(f["log"].as_str().unwrap_or("").starts_with("UPID:pve2:"));
}

#[test]
fn names_proxmox_cannot_date_are_listed_as_unknown_with_the_files_ctime() {
    // pve-storage lists every file with a backup extension; archive_info dies in
    // timelocal on an impossible date (the listing keeps nothing of it: subtype unknown).
    let (sim, sshd) = demo_over_ssh();
    let odd = [
        "vzdump-qemu-100-2021_02_29-02_00_00.vma.zst",
        "vzdump-qemu-100-2024_13_01-02_00_00.vma.zst",
        "vzdump-qemu-100-2024_01_01-24_00_00.vma.zst",
        "vzdump-qemu-100-2024_01_01-02_00_60.vma.zst",
        "mybackup-100-before-upgrade.vma.zst",
    ];
    for name in odd {
        std::fs::write(sim.dump_dir("local").join(name), b"x").expect("write");
    }
    let remote =
        pvedr_testkit::run_code(sshd.bin("pve-ls-backups").args(["--storage", "local"]), 0);
    let recs = json_lines(&remote.stdout);
    for name in odd {
        let r = recs
            .iter()
            .find(|r| r["volid"] == format!("local:backup/{name}"))
            .unwrap_or_else(|| panic!("{name} not listed"));
        assert_eq!(r["subtype"], "unknown", "{name}: {r}");
        assert_eq!(r["vmid"], 100, "{name}: {r}");
        let file_ctime = std::fs::metadata(sim.dump_dir("local").join(name))
            .map(|m| std::os::unix::fs::MetadataExt::ctime(&m))
            .expect("stat");
        assert_eq!(r["ctime"], file_ctime, "{name}: {r}");
    }
    let offline = bin("pve-ls-backups")
        .arg("--dir")
        .arg(sim.dump_dir("local"))
        .args(["--storage", "local", "--node", "pve1", "--timezone", "UTC"])
        .output()
        .expect("run");
    assert_eq!(
        strip_offline_fields(json_lines(&remote.stdout)),
        strip_offline_fields(json_lines(&offline.stdout)),
        "SSH and --dir differ"
    );
    // Never standard names: prune marks them renamed, whatever the policy.
    let marked = bin("backup-prune")
        .args(["--keep-last", "1", "--timezone", "UTC"])
        .write_stdin(remote.stdout)
        .output()
        .expect("prune");
    for r in json_lines(&marked.stdout) {
        let v = r["volid"].as_str().unwrap_or("");
        if odd.iter().any(|n| v.ends_with(n)) {
            assert_eq!(r["mark"], "renamed", "{r}");
        }
    }
}

#[test]
fn dates_are_days_in_the_nodes_time_zone_not_the_callers() {
    let (sim, sshd) = pvedr_testkit::demo_in_paris_after_midnight();
    let since = |extra: &[&str]| -> Vec<i64> {
        let out = pvedr_testkit::run_code(
            bin("pve-ls-backups")
                .env("TZ", "UTC")
                .args(sshd.args())
                .args([
                    "--storage",
                    "local",
                    "--vmid",
                    "100",
                    "--since",
                    "2024-01-15",
                ])
                .args(extra),
            0,
        );
        json_lines(&out.stdout)
            .iter()
            .filter_map(|r| r["ctime"].as_i64())
            .collect()
    };
    // The node says Europe/Paris: its 15 January began at 23:00 UTC.
    assert!(since(&[]).contains(&PARIS_JUST_AFTER_MIDNIGHT));
    // --timezone overrides what the node says.
    assert!(!since(&["--timezone", "UTC"]).contains(&PARIS_JUST_AFTER_MIDNIGHT));
    assert!(
        sim.commands()
            .iter()
            .any(|c| c["argv"].to_string().contains("/time")),
        "the node was asked for its zone"
    );
}

#[test]
fn the_repeated_hour_in_autumn_is_its_earlier_instant() {
    // Time::Local's timelocal: "the earlier of the two possible GMT times".
    let (sim, sshd) = pvedr_testkit::demo_over_ssh_in("Europe/Paris");
    let name = "vzdump-qemu-100-2024_10_27-02_30_00.vma.zst";
    std::fs::write(sim.dump_dir("local").join(name), b"x").expect("write");
    let ctime = |out: &[u8]| {
        json_lines(out)
            .into_iter()
            .find(|r| r["volid"] == format!("local:backup/{name}"))
            .map(|r| r["ctime"].clone())
    };
    let remote =
        pvedr_testkit::run_code(sshd.bin("pve-ls-backups").args(["--storage", "local"]), 0);
    let offline = bin("pve-ls-backups")
        .args(sim.dir_args("local"))
        .args(["--timezone", "Europe/Paris"])
        .output()
        .expect("run");
    // 02:30 CEST = 00:30 UTC, not 02:30 CET = 01:30 UTC.
    assert_eq!(
        ctime(&remote.stdout),
        Some(serde_json::json!(1_729_989_000))
    );
    assert_eq!(
        ctime(&offline.stdout),
        Some(serde_json::json!(1_729_989_000))
    );
}

#[test]
fn a_disabled_storage_is_not_a_backup_storage() {
    // Proxmox leaves a disabled storage out of `--content backup` and refuses its content.
    let (sim, sshd) = demo_over_ssh();
    let mut storages = sim.read_json("storage.json");
    if let Some(nas) = storages
        .as_array_mut()
        .and_then(|a| a.iter_mut().find(|s| s["storage"] == "nas"))
    {
        nas["disable"] = serde_json::json!(1);
    }
    sim.write_json("storage.json", &storages);
    let out = pvedr_testkit::run_code(sshd.bin("pve-ls-backups"), 0);
    let recs = json_lines(&out.stdout);
    assert!(!recs.is_empty());
    assert!(recs.iter().all(|r| r["storage"] != "nas"), "{recs:?}");
    let named = sshd
        .bin("pve-ls-backups")
        .args(["--storage", "nas"])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&named.stderr);
    assert_ne!(named.status.code(), Some(0), "{err}");
    assert!(err.contains("nas"), "{err}");
}

#[test]
fn a_hung_storage_is_reported_and_the_others_still_listed() {
    // A pvesh that never answers (a hung NFS mount) is stopped on the node after
    // --command-timeout; the listing goes on and exits 3 (partial).
    let (sim, sshd) = demo_over_ssh();
    sim.set_faults(serde_json::json!([{"match": "storage/nas/content", "sleep": 60}]));
    let out = pvedr_testkit::run_code(
        sshd.bin("pve-ls-backups")
            .args(["--command-timeout", "2s"])
            .timeout(std::time::Duration::from_secs(50)),
        3,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nas") && err.contains("command timeout"),
        "{err}"
    );
    let recs = json_lines(&out.stdout);
    assert!(recs.iter().any(|r| r["storage"] == "local"), "{recs:?}");
    assert!(recs.iter().all(|r| r["storage"] != "nas"));
    // A bad duration is a usage error even without --host.
    let bad = bin("pve-ls-backups")
        .args(["--command-timeout", "soon", "--dir", "/nonexistent"])
        .output()
        .expect("run");
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn a_single_command_that_never_answers_ends_the_wait() {
    // One node, one storage, a zone given: each round is one command, bounded by the SSH
    // session's own timeout (no batch script to stop it on the node).
    let (sim, sshd) = demo_over_ssh();
    sim.set_faults(serde_json::json!([{"match": "storage/local/content", "sleep": 60}]));
    let mut one = sshd.bin("pve-ls-backups");
    one.args(["--node", "pve1", "--storage", "local", "--timezone", "UTC"])
        .args(["--command-timeout", "2s"])
        .timeout(std::time::Duration::from_secs(50));
    let out = pvedr_testkit::run_code(one, 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no answer for 2s"), "{err}");
}

#[test]
fn a_node_name_the_cluster_sends_that_is_invalid_is_skipped_and_said() {
    let (sim, sshd) = demo_over_ssh();
    let mut cluster = sim.read_json("cluster.json");
    if let Some(nodes) = cluster["nodes"].as_array_mut() {
        nodes.push(
            serde_json::json!({"node": "evil;touch /tmp/x", "status": "online", "ip": "10.0.0.9"}),
        );
    }
    sim.write_json("cluster.json", &cluster);
    let out = sshd
        .bin("pve-ls-backups")
        .args(["--all-nodes"])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(2), "not a usage error: {err}");
    assert!(err.contains("not a valid node name"), "{err}");
    assert!(!json_lines(&out.stdout).is_empty());
    assert!(
        !sim.commands()
            .iter()
            .any(|c| c["argv"].to_string().contains("evil"))
    );
    let long = "a".repeat(300);
    let bad = bin("pve-ls-backups")
        .args(["--host", &long])
        .output()
        .expect("run");
    assert_eq!(bad.status.code(), Some(2));
}

/// pve-ls-backups with `args` is an error (exit 1) whose message says each of `says`, and
/// lists nothing but the failed listing.
fn nothing_listed(sshd: &Sshd, args: &[&str], says: &[&str]) {
    let out = pvedr_testkit::run_code(sshd.bin("pve-ls-backups").args(args), 1);
    let err = String::from_utf8_lossy(&out.stderr);
    for s in says {
        assert!(err.contains(s), "{s}: {err}");
    }
    assert!(pvedr_testkit::only_failed_listing(&out.stdout));
}

#[test]
fn a_mistyped_node_is_an_error_naming_the_nodes_there() {
    // The cluster does not have it: an error, exit 1, as for a storage; not "partial"
    // with Proxmox's hostname lookup failure.
    let (_sim, sshd) = demo_over_ssh();
    let says = ["no node 'pve9'", "nodes there: pve1, pve2, pve3"];
    nothing_listed(&sshd, &["--node", "pve1", "--node", "pve9"], &says);
}

#[test]
fn a_mistyped_storage_is_an_error_naming_the_storages_there() {
    // Nothing of what was asked exists where every node answered: not "partial", and not
    // an empty listing a pipe would take for "no backups".
    let (_sim, sshd) = demo_over_ssh();
    nothing_listed(
        &sshd,
        &["--node", "pve1", "--storage", "nsa"],
        &["'nsa'", "backup storages there: local, nas"],
    );
    // One of two found: the listing is partial, and says which storages exist.
    let out = ls(&sshd, "--node pve1 --storage nsa --storage local", 3);
    let (recs, end) = pvedr_testkit::listed(&out.stdout);
    assert!(!recs.is_empty());
    assert_eq!(end["complete"], false);
    assert!(
        end["problems"][0]
            .as_str()
            .unwrap_or("")
            .contains("local, nas"),
        "{end}"
    );
}

#[test]
fn latest_is_a_scheduled_backup_not_a_copy_or_a_safety_point() {
    // The demo has a manual copy of 100 (its file is newer than every backup) and here a
    // pvedr safety point dated later still: --latest, and with it the nightly offsite push
    // and pve-restore --vmid, picks the newest backup vzdump made on schedule.
    let (sim, sshd) = demo_over_ssh();
    let dump = sim.root().join("local/dump");
    let scheduled = "vzdump-qemu-100-2024_01_15-02_00_02.vma.zst";
    let safety = "vzdump-qemu-100-2024_01_15-05_00_00.vma.zst";
    std::fs::copy(dump.join(scheduled), dump.join(safety)).expect("copy");
    std::fs::write(
        dump.join(format!("{safety}.notes")),
        "pvedr safety point before restoring local:backup/x",
    )
    .expect("notes");
    let out = ls(&sshd, "--node pve1 --storage local --vmid 100 --latest", 0);
    let (recs, _) = pvedr_testkit::listed(&out.stdout);
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0]["volid"], format!("local:backup/{scheduled}"));
    // Still listed, told apart by its notes.
    let out = ls(&sshd, "--node pve1 --storage local --vmid 100", 0);
    let (all, _) = pvedr_testkit::listed(&out.stdout);
    assert!(all.iter().any(|r| {
        r["notes"]
            .as_str()
            .is_some_and(|n| n.starts_with("pvedr safety point"))
    }));
}

#[test]
fn an_unfinished_pbs_snapshot_is_marked_and_never_the_latest() {
    // PBS lists a snapshot without a manifest with no size; pve-storage prints `size // 1`.
    let (sim, sshd) = demo_over_ssh();
    sim.add_unfinished_pbs("vm", 100);
    let list = |extra: &[&str]| {
        let out = pvedr_testkit::run_ok(
            sshd.bin("pve-ls-backups")
                .args(["--storage", "pbs", "--vmid", "100"])
                .args(extra),
        );
        pvedr_testkit::listed(&out.stdout).0
    };
    let all = list(&[]);
    let partial = all
        .iter()
        .find(|r| r["volid"] == "pbs:backup/vm/100/2024-01-15T06:25:40Z")
        .expect("listed");
    assert_eq!(partial["unfinished"], true, "{partial}");
    assert!(
        partial.get("size").is_none(),
        "Proxmox's 1 is no size: {partial}"
    );
    let done = all
        .iter()
        .find(|r| r["volid"] == "pbs:backup/vm/100/2024-01-14T01:00:02Z")
        .expect("listed");
    assert!(done.get("unfinished").is_none(), "{done}");
    let latest = list(&["--latest"]);
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0]["volid"], "pbs:backup/vm/100/2024-01-14T01:00:02Z");
}

#[test]
fn a_failed_tasks_log_that_cannot_be_read_is_unknown_not_clean() {
    // pve-common Tools.pm dump_logfile: a missing log is one line "unable to open file -
    // …", no error: read as a log, it names no failure and the run looked clean.
    let (sim, sshd) = demo_over_ssh();
    let logs = sim.root().join("tasks").join("pve2");
    for e in std::fs::read_dir(&logs).expect("logs") {
        std::fs::remove_file(e.expect("entry").path()).expect("rm");
    }
    let out = sshd
        .bin("pve-ls-backups")
        .args(["--node", "pve2", "--with-failures", "--vmid", "102"])
        .output()
        .expect("run");
    let (_, listing) = pvedr_testkit::listed(&out.stdout);
    assert_eq!(listing["complete"], false, "{listing}");
    let problems = listing["problems"].to_string();
    assert!(
        problems.contains("unable to open file") && problems.contains("UPID:pve2:"),
        "{listing}"
    );
}

/// A table is for people: a backup's time is shown in its node's zone, labelled, as the
/// archive name and Proxmox's GUI show it; JSON keeps UTC.
#[test]
fn tables_show_times_in_the_nodes_zone() {
    let (_sim, sshd) = pvedr_testkit::demo_in_paris_after_midnight();
    let run = |format: &str| {
        let out = pvedr_testkit::run_code(
            bin("pve-ls-backups")
                .env("TZ", "UTC")
                .args(sshd.args())
                .args(["--storage", "local", "--vmid", "100", "--format", format]),
            0,
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let table = run("table");
    assert!(table.contains("2024-01-15 00:30:00 CET"), "{table}");
    let jsonl = run("jsonl");
    assert!(
        jsonl.contains("\"time\":\"2024-01-14T23:30:00Z\""),
        "{jsonl}"
    );
}

/// A HOME whose `~/.ssh/config` names the test sshd under an alias; its known_hosts holds
/// the server's key under the real address and port, as `ssh` would have written it.
fn home_with_ssh_config(sshd: &Sshd, config: &str) -> tempfile::TempDir {
    let home = tempfile::tempdir().expect("tempdir");
    let ssh = home.path().join(".ssh");
    std::fs::create_dir(&ssh).expect("mkdir");
    std::fs::copy(sshd.client_key(), home.path().join("lab_key")).expect("key");
    std::fs::copy(sshd.known_hosts(), ssh.join("known_hosts")).expect("known_hosts");
    let config = config.replace("PORT", &sshd.port().to_string());
    std::fs::write(ssh.join("config"), config).expect("config");
    home
}

const LAB_CONFIG: &str = "Host pve-lab*\n  HostName 127.0.0.1\n  Port PORT\n  User root\n  \
                          IdentityFile ~/lab_key\nHost *\n  User nobody\n";

fn in_home(home: &std::path::Path, tool: &str) -> assert_cmd::Command {
    let mut c = bin(tool);
    c.env("HOME", home).env_remove("SSH_AUTH_SOCK");
    c
}

#[test]
fn ssh_config_alias_reaches_the_node_with_its_port_user_and_key() {
    let (_sim, sshd) = demo_over_ssh();
    let home = home_with_ssh_config(&sshd, LAB_CONFIG);
    let out = pvedr_testkit::run_code(
        in_home(home.path(), "pve-ls-backups").args(["--host", "pve-lab1", "--storage", "local"]),
        0,
    );
    assert!(json_lines(&out.stdout).len() >= 3);
    // The same through an explicit --ssh-config FILE, from another HOME.
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let cfg = home.path().join(".ssh/config");
    let text = std::fs::read_to_string(&cfg).expect("config").replace(
        "~/lab_key",
        &home.path().join("lab_key").display().to_string(),
    );
    std::fs::write(&cfg, text).expect("config");
    pvedr_testkit::run_code(
        in_home(elsewhere.path(), "pve-ls-backups")
            .args(["--host", "pve-lab1", "--storage", "local", "--ssh-config"])
            .arg(&cfg)
            .arg("--known-hosts")
            .arg(home.path().join(".ssh/known_hosts")),
        0,
    );
}

#[test]
fn flags_win_over_the_ssh_config() {
    let (_sim, sshd) = demo_over_ssh();
    // The config's port is closed and its user unknown: the flags' are used.
    let home = home_with_ssh_config(
        &sshd,
        "Host lab\n  HostName 127.0.0.1\n  Port 1\n  User nobody\n  IdentityFile ~/lab_key\n",
    );
    let port = sshd.port().to_string();
    pvedr_testkit::run_code(
        in_home(home.path(), "pve-ls-backups")
            .args(["--host", "lab", "--port", &port, "--user", "root"]),
        0,
    );
    let err = stderr_in_home(home.path(), &["--host", "lab", "--user", "root"], 1);
    assert!(err.contains("port 1"), "{err}");
}

#[test]
fn ssh_config_jump_hosts_and_bad_files_are_clear_usage_errors() {
    let (sim, sshd) = demo_over_ssh();
    let jump = "Host lab\n  HostName 127.0.0.1\n  Port PORT\n  ProxyJump bastion\n";
    let home = home_with_ssh_config(&sshd, jump);
    let err = stderr_in_home(home.path(), &["--host", "lab"], 2);
    assert!(
        err.contains("ProxyJump bastion") && err.contains("--port"),
        "{err}"
    );
    assert!(sim.commands().is_empty(), "nothing ran on the node");
    std::fs::write(home.path().join(".ssh/config"), "Host lab\n  Port many\n").expect("write");
    let err = stderr_in_home(home.path(), &["--host", "lab"], 2);
    assert!(err.contains(".ssh/config"), "{err}");
    let nonexistent = ["--host", "lab", "--ssh-config", "/nonexistent/config"];
    let err = stderr_in_home(home.path(), &nonexistent, 2);
    assert!(err.contains("/nonexistent/config"), "{err}");
}

#[test]
fn a_new_ssh_directory_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let (_sim, sshd) = demo_over_ssh();
    let home = tempfile::tempdir().expect("tempdir");
    let port = sshd.port().to_string();
    let key = sshd.client_key().display().to_string();
    pvedr_testkit::run_code(
        in_home(home.path(), "pve-ls-backups").args([
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--identity",
            &key,
            "--accept-new-host-key",
        ]),
        0,
    );
    let dir = home.path().join(".ssh");
    let mode = std::fs::metadata(&dir).expect(".ssh").permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "{mode:o}");
    let kh = std::fs::read_to_string(dir.join("known_hosts")).expect("known_hosts");
    assert!(kh.contains(&format!("[127.0.0.1]:{port}")), "{kh}");
}
