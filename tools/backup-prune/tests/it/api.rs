//! backup-prune --apply over the Proxmox REST API with an API token.

use std::collections::BTreeSet;

use pvedr_testkit::{ApiFront, SimNode, assert_says, bin, demo_over_api, json_lines};
use serde_json::{Value, json};

const SECRET: &str = "c0ffee00-1234-4abc-8def-0123456789ab";

fn api(front: &ApiFront, tool: &str) -> assert_cmd::Command {
    let mut c = bin(tool);
    c.args(front.pinned_args("ops@pve!prune"))
        .env("PVEDR_TOKEN_SECRET", SECRET);
    c
}

/// The listing role: Proxmox lets whoever may list a backup delete it (pve-storage
/// `API2/Storage/Content.pm` `delete`: Datastore.AllocateSpace + VM.Backup).
fn listing_role() -> Value {
    json!([
        {"path": "/", "roles": ["PVEAuditor"], "propagate": true},
        {"path": "/storage", "privs": ["Datastore.Audit", "Datastore.AllocateSpace"], "propagate": true},
        {"path": "/vms", "privs": ["VM.Audit", "VM.Backup"], "propagate": true}
    ])
}

fn files(sim: &SimNode) -> BTreeSet<String> {
    std::fs::read_dir(sim.dump_dir("local"))
        .expect("dump")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|f| f.ends_with(".zst") || f.ends_with(".gz") || f.ends_with(".lzo"))
        .collect()
}

fn prune(front: &ApiFront) -> (Vec<Value>, Vec<Value>, i32, String) {
    let listing = pvedr_testkit::run_ok(api(front, "pve-ls-backups").args(["--storage", "local"]));
    let out = api(front, "backup-prune")
        .args(["--keep-daily", "3", "--timezone", "UTC", "--apply", "--yes"])
        .write_stdin(listing.stdout)
        .output()
        .expect("prune");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains(SECRET));
    let (steps, marked): (Vec<Value>, Vec<Value>) = json_lines(&out.stdout)
        .into_iter()
        .partition(|r| r["kind"] == "step");
    (marked, steps, out.status.code().unwrap_or(-1), err)
}

fn removed(marked: &[Value]) -> BTreeSet<String> {
    marked
        .iter()
        .filter(|r| r["mark"] == "remove")
        .filter_map(|r| Some(r["volid"].as_str()?.rsplit('/').next()?.to_string()))
        .collect()
}

#[test]
fn the_listing_role_prunes_exactly_the_remove_set_over_the_api() {
    let (sim, front) = demo_over_api();
    front.add_token("ops@pve!prune", SECRET, listing_role());
    let before = files(&sim);
    let (marked, steps, code, err) = prune(&front);
    assert_eq!(code, 0, "{err}");
    let remove = removed(&marked);
    assert_eq!(remove.len(), 5, "{marked:?}");
    assert!(steps.iter().all(|s| s["status"] == "changed"), "{steps:?}");
    let gone: BTreeSet<String> = before.difference(&files(&sim)).cloned().collect();
    assert_eq!(gone, remove);
    let deletes = sim
        .commands()
        .into_iter()
        .filter(|c| c["via"] == "api" && c["method"] == "DELETE")
        .count();
    assert_eq!(deletes, remove.len());
}

#[test]
fn a_failed_delete_task_is_reported_with_proxmox_words() {
    let (sim, front) = demo_over_api();
    front.add_token("ops@pve!prune", SECRET, listing_role());
    sim.fail_when(
        "imgdel local:backup/vzdump-qemu-100-2024_01_10",
        "unable to remove volume - Device or resource busy",
        0,
    );
    let (marked, steps, code, err) = prune(&front);
    assert_eq!(code, 3, "{err}");
    let failed: Vec<&Value> = steps.iter().filter(|s| s["status"] == "failed").collect();
    assert_eq!(failed.len(), 1, "{steps:?}");
    assert_says(failed[0], "message", "Device or resource busy");
    let after = files(&sim);
    for f in removed(&marked) {
        assert_eq!(after.contains(&f), f.contains("2024_01_10"), "{f}");
    }
}
