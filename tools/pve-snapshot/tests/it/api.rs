//! pve-snapshot over the Proxmox REST API with an API token.

use pvedr_testkit::{ApiFront, SimNode, bin, demo_over_api, json_lines, outcome};
use serde_json::{Value, json};

use crate::{names, of};

const SECRET: &str = "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d";

fn snap(front: &ApiFront, sub: &str, args: &[&str]) -> (Vec<Value>, i32, String) {
    outcome(
        bin("pve-snapshot")
            .arg(sub)
            .args(front.args("ops@pve!snap"))
            .env("PVEDR_TOKEN_SECRET", SECRET)
            .args(args),
    )
}

fn role(privs: &[&str]) -> Value {
    json!([
        {"path": "/", "roles": ["PVEAuditor"], "propagate": true},
        {"path": "/vms", "privs": privs, "propagate": true}
    ])
}

#[test]
fn snapshots_over_the_api_are_taken_on_each_guests_node() {
    let (sim, front) = demo_over_api();
    front.add_token("ops@pve!snap", SECRET, role(&["VM.Audit", "VM.Snapshot"]));
    let (recs, code, err) = snap(
        &front,
        "create",
        &["--yes", "--vmid", "100", "--vmid", "102"],
    );
    assert_eq!(code, 0, "{err}");
    for vmid in [100u64, 102] {
        let r = &of(&recs, vmid)[0];
        assert_eq!(r["status"], "created", "{r}");
        let name = r["name"].as_str().unwrap_or("").to_string();
        assert!(names(&sim, vmid).contains(&name), "{vmid}: {name}");
    }
    let posts: Vec<String> = sim
        .commands()
        .into_iter()
        .filter(|c| c["via"] == "api" && c["method"] == "POST")
        .filter_map(|c| c["path"].as_str().map(String::from))
        .collect();
    assert!(
        posts.contains(&"/api2/json/nodes/pve2/qemu/102/snapshot".to_string()),
        "{posts:?}"
    );
}

#[test]
fn a_token_without_vm_snapshot_is_told_so() {
    let (sim, front) = demo_over_api();
    front.add_token("ops@pve!snap", SECRET, role(&["VM.Audit"]));
    let (recs, code, err) = snap(&front, "create", &["--yes", "--vmid", "100"]);
    assert_ne!(code, 0, "{err}");
    let r = &of(&recs, 100)[0];
    assert_eq!(r["status"], "failed", "{r}");
    assert!(r.to_string().contains("VM.Snapshot"), "{r}");
    assert!(sim.mutations().is_empty(), "{:?}", sim.mutations());
}

/// Whether the front was asked for a task's status.
fn task_polled(sim: &SimNode) -> bool {
    sim.commands().iter().any(|c| {
        c["via"] == "api"
            && c["path"]
                .as_str()
                .is_some_and(|p| p.contains("/tasks/") && p.ends_with("/status"))
    })
}

#[test]
fn ctrl_c_while_a_task_runs_ends_the_wait_and_names_the_task_and_its_stop_command() {
    let sim = SimNode::demo();
    // The worker stays `running` far longer than the test waits.
    let front = ApiFront::start_with(&sim, &[("PVESIM_API_TASK_DELAY", "60")]);
    front.add_token("ops@pve!snap", SECRET, role(&["VM.Audit", "VM.Snapshot"]));
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("pve-snapshot"))
        .args(["create", "--yes", "--vmid", "100"])
        .args(front.args("ops@pve!snap"))
        .env("PVEDR_TOKEN_SECRET", SECRET)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // The task is polled once its POST was answered: wait for the first status request.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !task_polled(&sim) {
        assert!(std::time::Instant::now() < deadline, "no task was polled");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    let r = &of(&json_lines(&out.stdout), 100)[0];
    assert_eq!(r["status"], "failed", "{r}");
    let m = r["message"].as_str().unwrap_or_default();
    assert!(
        m.contains("interrupted") && m.contains("pvesh delete '/nodes/pve1/tasks/UPID:pve1:"),
        "the record names the task left running and how to stop it: {r}"
    );
    assert!(!err.contains(SECRET) && !r.to_string().contains(SECRET));
}
