//! pve-restore over the Proxmox REST API with API tokens.

use pvedr_testkit::{
    ApiFront, SimNode, assert_says, bin, demo_over_api, demo_over_ssh, json_lines,
};

use serde_json::{Value, json};

use crate::common::{
    CT_BACKUP, OVERWRITE_102, VM_BACKUP, crafted_backup, refused_untouched, says_not, step,
};

const SECRET: &str = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";

fn restore(front: &ApiFront, token: &str, args: &[&str]) -> (Value, i32, String) {
    let out = front
        .bin("pve-restore", token, SECRET)
        .args(args)
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stdout.contains(SECRET) && !err.contains(SECRET));
    let rec = json_lines(&out.stdout)
        .into_iter()
        .find(|r| r["kind"] == "restore")
        .unwrap_or(Value::Null);
    (rec, out.status.code().unwrap_or(-1), err)
}

/// VM 100's demo backup restored to the new VMID 9100, without the archive test.
fn restore_vm_to_9100(front: &ApiFront, token: &str) -> (Value, i32, String) {
    restore(
        front,
        token,
        &[
            "--volid",
            VM_BACKUP,
            "--target-id",
            "9100",
            "--no-archive-test",
            "--yes",
        ],
    )
}

/// What restoring needs as `docs/api-tokens.md` lists it, but `VM.Allocate` when `allocate`
/// is false.
/// Restores `volid` to the new guest `target` over `front`, as the token dr@pve!restore,
/// with no archive test: (record, exit code, stderr).
fn restore_as_dr(front: &ApiFront, volid: &str, target: &str) -> (Value, i32, String) {
    let args = [
        "--volid",
        volid,
        "--target-id",
        target,
        "--no-archive-test",
        "--yes",
    ];
    restore(front, "dr@pve!restore", &args)
}

/// Overwrites guest 102 (on pve2) with its latest backup over `front`, as a token with
/// [`restore_role`], its safety point on `nas`: (record, exit code, stderr).
fn overwrite_102(front: &ApiFront) -> (Value, i32, String) {
    front.add_token("dr@pve!restore", SECRET, restore_role(true));
    let args = [&OVERWRITE_102[..], &["--no-archive-test"]].concat();
    restore(front, "dr@pve!restore", &args)
}

fn restore_role(allocate: bool) -> Value {
    let mut vm = vec!["VM.Audit", "VM.Backup", "VM.PowerMgmt", "VM.Config.Network"];
    if allocate {
        vm.push("VM.Allocate");
    }
    json!([
        {"path": "/", "roles": ["PVEAuditor"], "propagate": true},
        {"path": "/storage", "privs": ["Datastore.Audit", "Datastore.AllocateSpace", "Datastore.Allocate"], "propagate": true},
        {"path": "/vms", "privs": vm, "propagate": true}
    ])
}

/// The requests sent to the API other than reads (GETs).
fn writes(sim: &SimNode) -> Vec<Value> {
    sim.commands()
        .into_iter()
        .filter(|c| c["via"] == "api" && c["method"] != "GET")
        .collect()
}

fn assert_only_reads_sent(sim: &SimNode) {
    let sent = writes(sim);
    assert!(sent.is_empty(), "nothing but reads was sent: {sent:?}");
}

/// Restores the backup `volid_of` writes to the new guest 9104 as a token with the
/// [`documented_role`]: refused naming `why` before any change.
fn refused_as_dr(volid_of: impl FnOnce(&SimNode) -> String, why: &str) {
    let (sim, front) = demo_over_api();
    front.add_token("dr@pve!restore", SECRET, documented_role(&[]));
    let volid = volid_of(&sim);
    sim.clear_commands();
    let (rec, code, err) = restore_as_dr(&front, &volid, "9104");
    assert_eq!(code, 1, "{err}");
    refused_untouched(&rec, &sim, why);
}

#[test]
fn a_token_without_vm_allocate_is_refused_with_the_privilege_named_and_nothing_changed() {
    let (sim, front) = demo_over_api();
    front.add_token("dr@pve!restore", SECRET, restore_role(false));
    sim.clear_commands();
    let (rec, code, err) = restore_vm_to_9100(&front, "dr@pve!restore");
    assert_eq!(code, 1, "{err}");
    assert_eq!(rec["status"], "refused", "{rec}");
    let msg = rec["error"]
        .as_str()
        .or(rec["message"].as_str())
        .unwrap_or_default();
    assert!(msg.contains("VM.Allocate on /vms/9100"), "{rec}");
    assert!(sim.mutations().is_empty(), "{:?}", sim.mutations());
    assert_only_reads_sent(&sim);
}

#[test]
fn a_restore_over_the_api_runs_on_the_owning_node_and_polls_the_task_to_its_end() {
    let sim = SimNode::demo();
    let front = ApiFront::start_with(&sim, &[("PVESIM_API_TASK_DELAY", "1")]);
    front.add_token("dr@pve!restore", SECRET, restore_role(true));
    let (rec, code, err) = restore_vm_to_9100(&front, "dr@pve!restore");
    assert_eq!(code, 0, "{err}");
    assert_eq!(rec["status"], "restored", "{rec}");
    let check = step(&rec, "check-archive");
    assert_eq!(check["status"], "skipped", "{rec}");
    assert!(
        check["message"]
            .as_str()
            .unwrap_or_default()
            .contains("--no-archive-test")
    );
    let g = sim.read_json("guests/9100.json");
    assert_eq!(g["restored_from"], VM_BACKUP);
    assert_eq!(
        g["node"], "pve1",
        "local storage: restored on the node that holds it"
    );
    let restores: Vec<Value> = sim
        .commands()
        .into_iter()
        .filter(|c| c["via"] == "api" && c["method"] == "POST")
        .collect();
    assert_eq!(restores.len(), 1, "{restores:?}");
    assert_eq!(restores[0]["path"], "/api2/json/nodes/pve1/qemu");
    let polls = sim
        .commands()
        .into_iter()
        .filter(|c| c["via"] == "api" && c["path"].as_str().unwrap_or("").ends_with("/status"))
        .count();
    assert!(polls >= 2, "the task was polled while it ran: {polls}");
}

#[test]
fn a_failed_task_brings_its_log_lines_into_the_record() {
    let (sim, front) = demo_over_api();
    front.add_token("root@pam!dr", SECRET, Value::Null);
    sim.set_faults(json!([{"match": "qmrestore", "exit": 255,
                 "stdout": "restore vma archive: zstd -q -d -c /var/lib/vz/dump/x.vma.zst | vma extract -v -r /var/tmp/vzdumptmp.fifo - /var/tmp/vzdumptmp\n",
                 "stderr": "command 'set -o pipefail && zstd' failed: exit code 133"}]));
    let (rec, code, err) = restore_vm_to_9100(&front, "root@pam!dr");
    assert_eq!(code, 1, "{err}");
    let s = step(&rec, "restore");
    assert_eq!(s["status"], "failed", "{rec}");
    let text = rec.to_string();
    assert!(text.contains("exit code 133"), "{rec}");
}

#[test]
fn a_vzdump_file_is_not_restored_untested_over_the_api() {
    let (sim, front) = demo_over_api();
    front.add_token("root@pam!dr", SECRET, Value::Null);
    sim.clear_commands();
    let (rec, code, err) = restore(
        &front,
        "root@pam!dr",
        &["--volid", VM_BACKUP, "--target-id", "9100", "--yes"],
    );
    assert_eq!(code, 1, "{err}");
    assert_eq!(rec["status"], "refused", "{rec}");
    assert!(rec.to_string().contains("--no-archive-test"), "{rec}");
    assert!(sim.mutations().is_empty(), "{:?}", sim.mutations());
}

#[test]
fn an_https_probe_checks_the_certificate_and_the_status() {
    let (sim, sshd) = demo_over_ssh();
    // Any local HTTPS server serves: the simulator's API answers an unknown path with 501.
    let web = ApiFront::start(&sim);
    let url = format!("http:{}/no/such/page=501", web.url());
    let run = |ca: bool| {
        let mut c = bin("pve-restore");
        c.args(sshd.args())
            .args(["--volid", VM_BACKUP, "--target-id", "9100", "--yes"])
            .args(["--start", "--probe", &url, "--probe-retries", "1"]);
        if ca {
            c.arg("--ca").arg(web.ca_path());
        }
        let out = c.output().expect("run");
        let rec = json_lines(&out.stdout)
            .into_iter()
            .find(|r| r["kind"] == "restore")
            .unwrap_or(Value::Null);
        (rec, out.status.code())
    };
    let (rec, code) = run(true);
    assert_eq!(code, Some(0), "{rec}");
    assert_eq!(rec["verify"][0]["status"], "ok", "{rec}");
    assert_says(&rec["verify"][0], "message", "answered 501");
    // Without the CA the certificate is not trusted: the probe fails.
    let (rec, _) = run(false);
    assert_ne!(rec["verify"][0]["status"], "ok", "{rec}");
}

#[test]
fn an_overwrite_on_another_node_takes_its_safety_point_there_over_the_api() {
    // Connected to pve1; guest 102 lives on pve2: stop, vzdump and restore go to /nodes/pve2.
    let (sim, front) = demo_over_api();
    let (rec, code, err) = overwrite_102(&front);
    assert_eq!(code, 0, "{err}");
    assert_eq!(rec["status"], "restored", "{rec}");
    assert_eq!(rec["node"], "pve2");
    assert!(
        rec["safety_point"]["volid"]
            .as_str()
            .is_some_and(|v| v.starts_with("nas:backup/")),
        "{rec}"
    );
    let writes: Vec<String> = writes(&sim)
        .into_iter()
        .map(|c| {
            format!(
                "{} {}",
                c["method"].as_str().unwrap_or(""),
                c["path"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        writes,
        [
            "POST /api2/json/nodes/pve2/qemu/102/status/stop",
            "POST /api2/json/nodes/pve2/vzdump",
            "POST /api2/json/nodes/pve2/qemu",
        ],
        "{writes:?}"
    );
    assert_eq!(
        sim.read_json("guests/102.json")["restored_from"],
        rec["volid"]
    );
}

/// The restore role of `docs/api-tokens.md` (`PVEDRRestore`), `extra` added on `/vms`.
fn documented_role(extra: &[&str]) -> Value {
    let mut vm = vec![
        "VM.Audit",
        "VM.Backup",
        "VM.Allocate",
        "VM.PowerMgmt",
        "VM.Config.Network",
    ];
    vm.extend_from_slice(extra);
    json!([
        {"path": "/", "privs": ["Sys.Audit", "SDN.Use"], "propagate": true},
        {"path": "/storage", "privs": ["Datastore.Audit", "Datastore.AllocateSpace", "Datastore.Allocate"], "propagate": true},
        {"path": "/vms", "privs": vm, "propagate": true}
    ])
}

fn drill(front: &ApiFront, volid: &str) -> (Value, i32, String) {
    restore(
        front,
        "dr@pve!restore",
        &["--volid", volid, "--test", "--no-archive-test", "--yes"],
    )
}

#[test]
fn a_vm_drill_over_the_api_pings_the_agent_with_the_documented_role() {
    let (sim, front) = demo_over_api();
    front.add_token(
        "dr@pve!restore",
        SECRET,
        documented_role(&["VM.GuestAgent.Audit"]),
    );
    let (rec, code, err) = drill(&front, VM_BACKUP);
    assert_eq!(code, 0, "{err}");
    assert_eq!(rec["status"], "verified", "{rec}");
    assert_eq!(rec["verify"][0]["probe"], "agent", "{rec}");
    assert_eq!(rec["verify"][0]["status"], "ok", "{rec}");
    assert!(sim.read_json("guests/9900.json").is_null(), "cleaned up");
}

#[test]
fn a_drill_without_a_guest_agent_privilege_is_refused_before_any_change() {
    let (sim, front) = demo_over_api();
    // PVE 8's VM.Monitor is no privilege in PVE 9: the role gives nothing for it.
    front.add_token("dr@pve!restore", SECRET, documented_role(&["VM.Monitor"]));
    sim.clear_commands();
    let (rec, code, err) = drill(&front, VM_BACKUP);
    assert_eq!(code, 1, "{err}");
    assert_eq!(rec["status"], "refused", "{rec}");
    let text = rec.to_string();
    assert!(
        text.contains("VM.GuestAgent.Audit or VM.GuestAgent.Unrestricted on /vms/9900"),
        "{rec}"
    );
    assert!(!text.contains("VM.Monitor"), "{rec}");
    assert!(sim.mutations().is_empty(), "{:?}", sim.mutations());
}

#[test]
fn a_container_drill_over_the_api_says_the_agent_cannot_be_checked() {
    let (sim, front) = demo_over_api();
    front.add_token("dr@pve!restore", SECRET, documented_role(&[]));
    let (rec, code, err) = drill(&front, CT_BACKUP);
    assert_eq!(code, 0, "{err}");
    let v = &rec["verify"][0];
    assert_eq!(v["probe"], "agent", "{rec}");
    assert_eq!(v["status"], "skipped", "{rec}");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("not checked: a container has no guest agent"),
        "{rec}"
    );
    assert!(sim.read_json("guests/9900.json").is_null(), "cleaned up");
}

#[test]
fn privileges_are_asked_for_the_exact_path_so_no_access_on_the_target_is_seen() {
    let (sim, front) = demo_over_api();
    // VM.Allocate on /vms, but NoAccess on the target: the whole tree does not list
    // /vms/9100 (a path without privileges), its parent seems to grant it.
    let mut acl = restore_role(true);
    if let Some(a) = acl.as_array_mut() {
        a.push(json!({"path": "/vms/9100", "roles": ["NoAccess"], "propagate": true}));
    }
    front.add_token("dr@pve!restore", SECRET, acl);
    sim.clear_commands();
    let (rec, code, err) = restore_vm_to_9100(&front, "dr@pve!restore");
    assert_eq!(code, 1, "{err}");
    assert_eq!(rec["status"], "refused", "{rec}");
    assert!(
        rec.to_string().contains("VM.Allocate on /vms/9100"),
        "{rec}"
    );
    assert_only_reads_sent(&sim);
}

#[test]
fn credentials_a_proxy_echoes_in_its_refusals_are_not_printed_or_recorded() {
    let sim = SimNode::demo();
    let front = ApiFront::start_with(&sim, &[("PVESIM_API_ECHO_AUTH", "1")]);
    // A token with no privilege: its first request is refused, the header echoed back;
    // `restore` asserts the secret is in neither stdout nor stderr.
    front.add_token("dr@pve!restore", SECRET, json!([]));
    let (rec, code, err) = restore_vm_to_9100(&front, "dr@pve!restore");
    assert_ne!(code, 0, "{err}");
    let text = format!("{rec}{err}");
    assert!(
        text.contains("PVEAPIToken=dr@pve!restore=<redacted>"),
        "{text}"
    );
}

#[test]
fn an_ha_guest_requested_stopped_is_overwritten_over_the_api() {
    // HA's requested state comes from GET /cluster/ha/resources (Sys.Audit on /).
    let (sim, front) = demo_over_api();
    front.add_token("dr@pve!restore", SECRET, documented_role(&[]));
    sim.edit_guest(100, |g| {
        g["hastate"] = json!("stopped");
        g["ha_request"] = json!("stopped");
        g["status"] = json!("stopped");
    });
    let (rec, code, err) = restore(
        &front,
        "dr@pve!restore",
        &[
            "--volid",
            VM_BACKUP,
            "--force",
            "--yes",
            "--no-archive-test",
        ],
    );
    assert_eq!(code, 0, "{err}\n{rec}");
    assert_eq!(rec["status"], "restored", "{rec}");
}

/// A container backup of CT 104 on `local` whose config ends with `extra`.
fn ct_backup_with(sim: &SimNode, extra: &str) -> String {
    crafted_backup(
        sim,
        "vzdump-lxc-104-2024_01_14-03_00_00.tar.zst",
        &format!(
            "conf = archives.lxc_config(104, 'ct104') + {extra:?}\n\
             raw = archives.lxc_tar_bytes(conf, hostname='ct104', seed=1)\n"
        ),
    )
}

#[test]
fn a_bind_mount_a_token_may_not_restore_is_refused_before_any_change() {
    // pve-container API2/LXC.pm create_vm: "restoring 'mp0' to bind mount is only possible
    // for root", inside the task; a token is never root@pam.
    refused_as_dr(
        |sim| ct_backup_with(sim, "mp0: /srv/data,mp=/data\n"),
        "mp0",
    );
}

#[test]
fn raw_lxc_keys_a_token_restore_drops_are_named_and_the_task_warnings_recorded() {
    // LXC/Create.pm sanitize_and_merge_config: restricted, the raw lxc keys are skipped
    // with a warning, and the task ends WARNINGS: 1 (RESTEnvironment.pm).
    let (sim, front) = demo_over_api();
    front.add_token("dr@pve!restore", SECRET, documented_role(&[]));
    let volid = ct_backup_with(&sim, "lxc.apparmor.profile: unconfined\n");
    let (rec, code, err) = restore_as_dr(&front, &volid, "9104");
    assert_eq!(code, 0, "{err}");
    assert_eq!(rec["status"], "restored", "{rec}");
    assert_eq!(
        rec["dropped_lxc_keys"],
        json!(["lxc.apparmor.profile: unconfined"]),
        "{rec}"
    );
    let w = rec["warnings"][0].as_str().unwrap_or("");
    assert!(w.starts_with("skipping custom lxc options"), "{rec}");
    assert!(err.contains("lxc.apparmor.profile"), "{err}");
    let conf = &sim.read_json("guests/9104.json")["config"];
    assert!(conf.get("lxc.apparmor.profile").is_none(), "{conf}");
}

#[test]
fn a_passed_through_host_device_a_token_may_not_restore_is_refused_before_any_change() {
    // qemu-server QemuServer.pm check_restore_permissions → check_mapping_access: "only
    // root can set 'hostpci0' config for non-mapped devices", inside the restore task.
    let name = "vzdump-qemu-104-2024_01_14-03_00_00.vma.zst";
    let make = "conf = archives.qemu_config(104, 'vm104') + 'hostpci0: 0000:01:00.0,pcie=1\\n'\n\
         raw = archives.vma_bytes(conf, [('drive-scsi0', 65536)], seed=1)\n";
    refused_as_dr(|sim| crafted_backup(sim, name, make), "hostpci0");
}

#[test]
fn a_safety_point_whose_task_log_cannot_be_read_is_unknown_and_nothing_is_overwritten() {
    // Proxmox answers a log it cannot open with one line "unable to open file - …"
    // (pve-common Tools.pm dump_logfile): no archive name, and the reason said.
    let sim = SimNode::demo();
    let front = ApiFront::start_with(&sim, &[("PVESIM_API_LOSE_LOG", "vzdump")]);
    let (rec, code, err) = overwrite_102(&front);
    assert_eq!(code, 1, "{err}");
    assert_eq!(rec["status"], "failed", "{rec}");
    let m = step(&rec, "safety-point")["message"].as_str().unwrap_or("");
    assert!(m.contains("cannot be read: unable to open file"), "{rec}");
    assert_eq!(step(&rec, "restore")["status"], "skipped", "{rec}");
    assert!(
        sim.read_json("guests/102.json")
            .get("restored_from")
            .is_none()
    );
}

/// Over the API the first Ctrl-C ends the wait for the running task (the task goes on on
/// the node): the answer says so at once, not that the step is finished.
#[test]
fn a_first_ctrl_c_over_the_api_says_the_task_goes_on_without_a_wait() {
    use std::process::{Command, Stdio};
    let sim = SimNode::demo();
    let front = ApiFront::start_with(&sim, &[("PVESIM_API_TASK_DELAY", "3")]);
    front.add_token("dr@pve!restore", SECRET, restore_role(true));
    let child = Command::new(assert_cmd::cargo::cargo_bin("pve-restore"))
        .args(front.args("dr@pve!restore"))
        .env("PVEDR_TOKEN_SECRET", SECRET)
        .args(["--volid", VM_BACKUP, "--target-id", "9100"])
        .args(["--no-archive-test", "--yes"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    sim.wait_for("the restore", |c| {
        c["via"] == "api" && c["method"] == "POST"
    });
    let out = pvedr_testkit::interrupted(child);
    let err = String::from_utf8_lossy(&out.stderr);
    let answer =
        "pve-restore: interrupt: leaving the wait for the restore task, which goes on on the node";
    says_not(&err, answer, "finishing the restore");
}

#[test]
fn a_drill_over_the_api_reads_the_config_and_the_state_as_json() {
    // The drill's reads are `pvesh get …/config` and `…/status/current`, sent as the GETs
    // they name: the isolation finds the link in the config's JSON, the start waits for
    // `running` in the status's.
    let (sim, front) = demo_over_api();
    let mut role = restore_role(true);
    role[2]["privs"]
        .as_array_mut()
        .expect("privs")
        .push(json!("VM.GuestAgent.Audit"));
    front.add_token("dr@pve!restore", SECRET, role);
    let (rec, code, err) = restore(
        &front,
        "dr@pve!restore",
        &[
            "--volid",
            VM_BACKUP,
            "--test",
            "--start",
            "--no-archive-test",
            "--yes",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(step(&rec, "isolate")["status"], "changed", "{rec}");
    assert_eq!(step(&rec, "isolate")["message"], "1 link(s) down", "{rec}");
    assert_eq!(step(&rec, "start")["message"], "running", "{rec}");
    let m = sim.mutations();
    assert!(
        m.iter()
            .any(|x| x.starts_with("qm set 9900 --net0") && x.ends_with(",link_down=1")),
        "{m:?}"
    );
}
