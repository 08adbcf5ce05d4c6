//! pve-snapshot over the Proxmox REST API with an API token.

use pvedr_testkit::{ApiFront, SimNode, bin, json_lines};
use serde_json::{Value, json};

use crate::{names, of};

const SECRET: &str = "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d";

fn snap(front: &ApiFront, sub: &str, args: &[&str]) -> (Vec<Value>, i32, String) {
    let out = bin("pve-snapshot")
        .arg(sub)
        .args(["--api", &front.url(), "--token", "ops@pve!snap"])
        .arg("--ca")
        .arg(front.ca_path())
        .env("PVEDR_TOKEN_SECRET", SECRET)
        .args(args)
        .output()
        .expect("run");
    (
        json_lines(&out.stdout),
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into(),
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
    let sim = SimNode::demo();
    let front = ApiFront::start(&sim);
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
    let sim = SimNode::demo();
    let front = ApiFront::start(&sim);
    front.add_token("ops@pve!snap", SECRET, role(&["VM.Audit"]));
    let (recs, code, err) = snap(&front, "create", &["--yes", "--vmid", "100"]);
    assert_ne!(code, 0, "{err}");
    let r = &of(&recs, 100)[0];
    assert_eq!(r["status"], "failed", "{r}");
    assert!(r.to_string().contains("VM.Snapshot"), "{r}");
    assert!(sim.mutations().is_empty(), "{:?}", sim.mutations());
}
