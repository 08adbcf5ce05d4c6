//! Coverage from Terraform (`--tfstate`): declared guests missing on the cluster are
//! CRITICAL, guests no state declares are reported unmanaged, and a state that cannot be
//! read or understood is UNKNOWN. The fixture is a hand-written version-4 state with the
//! providers' attributes (bpg: vm_id/node_name; Telmate: vmid/target_node), `count` and
//! `for_each` instances, a module and data sources (docs/backup-check.md cites the schemas).

use std::path::{Path, PathBuf};

use pvedr_testkit::s3::{Moto, Tf, s3_env};
use pvedr_testkit::{assert_says, bin, demo_over_ssh, json_lines};
use serde_json::{Value, json};

use crate::common::over_ssh;

const NOW: i64 = 1_705_300_000;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/tfstate/guests.tfstate")
}

fn guest(vmid: u64, template: bool) -> Value {
    json!({"kind": "guest", "node": "pve1", "vmid": vmid, "type": "qemu", "status": "running", "template": template})
}

fn backup(vmid: u64) -> Value {
    json!({"kind": "backup", "node": "pve1", "storage": "local", "vmid": vmid, "subtype": "qemu",
           "volid": format!("local:backup/vzdump-qemu-{vmid}-2024_01_15-05_00_00.vma.zst"),
           "ctime": NOW - 3600, "time": "", "size": 1000, "format": "vma.zst", "protected": false})
}

/// Guests (and a backup of each of `backed`) on the cluster, as a whole listing.
fn cluster(guests: &[u64], backed: &[u64]) -> String {
    let mut recs: Vec<Value> = guests.iter().map(|v| guest(*v, false)).collect();
    recs.push(guest(9000, true));
    recs.extend(backed.iter().map(|v| backup(*v)));
    let mut input: String = recs.iter().map(|r| format!("{r}\n")).collect();
    input.push_str(&pvedr_testkit::listing_end(recs.len()));
    input
}

fn run(input: &str, args: &[&str]) -> (Vec<Value>, i32, String) {
    let out = bin("backup-check")
        .args(["--now", &NOW.to_string(), "--timezone", "UTC"])
        .args(args)
        .envs(s3_env())
        .write_stdin(input.to_string())
        .output()
        .expect("run");
    (
        json_lines(&out.stdout),
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn terraform<'a>(checks: &'a [Value], component: &str) -> Option<&'a Value> {
    checks
        .iter()
        .find(|c| c["component"] == component && c["check"] == "terraform")
}

fn tf(checks: &[Value], component: &str) -> Value {
    terraform(checks, component)
        .unwrap_or_else(|| panic!("no terraform check of {component} in {checks:?}"))
        .clone()
}

#[test]
fn a_declared_guest_missing_on_the_cluster_is_critical_and_every_instance_counts() {
    let path = fixture();
    let declared = [100, 101, 102, 104, 200, 203]; // 201 is gone
    let input = cluster(
        &[100, 101, 102, 104, 200, 203, 500],
        &[100, 101, 102, 200, 203, 500],
    );
    let (checks, code, err) = run(&input, &["--tfstate", path.to_str().expect("utf-8")]);
    assert_eq!(code, 2, "{err}");
    let gone = tf(&checks, "guest/201");
    assert_eq!(
        (gone["status"].as_str(), gone["value"].as_str()),
        (Some("critical"), Some("missing"))
    );
    let msg = gone["message"].as_str().expect("message");
    assert!(
        msg.contains("proxmox_virtual_environment_container.db[\"replica\"]"),
        "{msg}"
    );
    assert!(msg.contains("not on the cluster"), "{msg}");
    assert!(msg.contains("no backup of it either"), "{msg}");
    for v in declared {
        let c = tf(&checks, &format!("guest/{v}"));
        assert_eq!(
            (c["status"].as_str(), c["value"].as_str()),
            (Some("ok"), Some("declared")),
            "{c}"
        );
    }
    assert_says(
        &tf(&checks, "guest/104"),
        "message",
        "module.edge.proxmox_vm_qemu.proxy[\"eu\"]",
    );
    // Declared and present without a backup: the usual coverage verdict.
    let cov = checks
        .iter()
        .find(|c| c["component"] == "guest/104" && c["check"] == "coverage")
        .expect("coverage");
    assert_eq!(cov["status"], "critical");
    // Seven instances (count, for_each, a module); the data sources declare nothing.
    let state = tf(&checks, &format!("tfstate/{}", path.display()));
    assert_eq!(
        (state["status"].as_str(), state["value"].as_u64()),
        (Some("ok"), Some(7))
    );
    assert!(
        terraform(&checks, "guest/300").is_none(),
        "a data source is no declaration"
    );
    assert!(
        terraform(&checks, "guest/9000").is_none(),
        "templates are not judged"
    );
    let un = tf(&checks, "guest/500");
    assert_eq!(
        (un["status"].as_str(), un["value"].as_str()),
        (Some("ok"), Some("unmanaged"))
    );
}

#[test]
fn unmanaged_guests_are_reported_and_never_page() {
    let dir = tempfile::tempdir().expect("tmp");
    let state = dir.path().join("small.tfstate");
    let text = std::fs::read_to_string(fixture()).expect("fixture");
    let mut v: Value = serde_json::from_str(&text).expect("json");
    // Keep web[0] (VMID 100) only.
    let web = v["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["name"] == "web")
        .expect("web")
        .clone();
    let mut web = web;
    web["instances"]
        .as_array_mut()
        .expect("instances")
        .truncate(1);
    v["resources"] = json!([web]);
    std::fs::write(&state, v.to_string()).expect("write");
    let (checks, code, err) = run(
        &cluster(&[100, 500], &[100, 500]),
        &["--tfstate", state.to_str().expect("utf-8")],
    );
    assert_eq!(code, 0, "{err} {checks:?}");
    assert_eq!(tf(&checks, "guest/100")["value"], "declared");
    assert_eq!(tf(&checks, "guest/500")["value"], "unmanaged");
}

#[test]
fn a_state_that_cannot_be_read_or_understood_is_unknown_not_ok() {
    let dir = tempfile::tempdir().expect("tmp");
    let big = dir.path().join("big.tfstate");
    std::fs::File::create(&big)
        .expect("big")
        .set_len(64 * 1024 * 1024 + 1)
        .expect("sparse");
    let cases: [(&str, &[u8], &str); 5] = [
        (
            "garbage.tfstate",
            b"<html>502 Bad Gateway</html>",
            "not JSON",
        ),
        (
            "array.tfstate",
            b"[{\"version\":4}]",
            "not a Terraform state",
        ),
        (
            "v3.tfstate",
            br#"{"version":3,"serial":1,"modules":[]}"#,
            "state format version 3",
        ),
        (
            "noversion.tfstate",
            br#"{"resources":[]}"#,
            "no \"version\"",
        ),
        (
            "badres.tfstate",
            br#"{"version":4,"resources":{"a":1}}"#,
            "not a Terraform state",
        ),
    ];
    let input = cluster(&[100, 500], &[100, 500]);
    let mut paths: Vec<(PathBuf, &str)> = cases
        .iter()
        .map(|(name, body, why)| {
            let p = dir.path().join(name);
            std::fs::write(&p, body).expect("write");
            (p, *why)
        })
        .collect();
    paths.push((big, "larger than"));
    paths.push((dir.path().join("absent.tfstate"), "cannot read the state"));
    for (p, why) in paths {
        let (checks, code, err) = run(&input, &["--tfstate", p.to_str().expect("utf-8")]);
        assert_eq!(code, 3, "{} {err} {checks:?}", p.display());
        let s = tf(&checks, &format!("tfstate/{}", p.display()));
        assert_eq!(s["status"], "unknown");
        assert!(s["message"].as_str().expect("m").contains(why), "{s}");
        // The unread state may declare it: no guest is called unmanaged.
        assert!(terraform(&checks, "guest/500").is_none(), "{checks:?}");
    }
    let (_, code, err) = run(&input, &["--tfstate", "s3://Not_A_Bucket/x"]);
    assert_eq!(code, 3, "{err}");
}

#[test]
fn states_in_s3_by_url_and_by_a_terraform_directorys_backend() {
    let moto = Moto::start();
    // A real Terraform state (terraform_data only: no guest declared), found through the
    // directory's backend "s3" block.
    let tf_dir = Tf::initialised(&moto, "tfstate-cover");
    tf_dir.apply("one");
    let dir = tf_dir.path().to_str().expect("utf-8");
    let (checks, code, err) = run(&cluster(&[100], &[100]), &["--tfstate", dir]);
    assert_eq!(code, 0, "{err} {checks:?}");
    assert_eq!(tf(&checks, &format!("tfstate/{dir}"))["value"], 0);
    assert_eq!(tf(&checks, "guest/100")["value"], "unmanaged");
    // The hand-written state as an object, read with the S3 flags.
    let body = std::fs::read_to_string(fixture()).expect("fixture");
    moto.boto(
        "tfstate-cover",
        &format!("s3.put_object(Bucket=B, Key='prod/guests.tfstate', Body={body:?}.encode())"),
    );
    let url = "s3://tfstate-cover/prod/guests.tfstate";
    let both = [
        "--tfstate",
        url,
        "--tfstate",
        dir,
        "--endpoint",
        &moto.endpoint(),
    ];
    let (checks, code, err) = run(&cluster(&[100, 500], &[100, 500]), &both);
    assert_eq!(code, 2, "{err}");
    assert_eq!(tf(&checks, "guest/201")["status"], "critical");
    assert_eq!(
        tf(&checks, "tfstate/tfstate-cover/prod/guests.tfstate")["value"],
        7
    );
    assert_eq!(tf(&checks, "guest/500")["value"], "unmanaged");
    // An object that is not there: UNKNOWN, the run goes on.
    let gone = [
        "--tfstate",
        "s3://tfstate-cover/nothing.tfstate",
        "--endpoint",
        &moto.endpoint(),
    ];
    let (checks, code, _) = run(&cluster(&[100], &[100]), &gone);
    assert_eq!(code, 3);
    assert_eq!(
        tf(&checks, "tfstate/tfstate-cover/nothing.tfstate")["status"],
        "unknown"
    );
}

#[test]
fn a_listing_that_may_leave_guests_out_makes_missing_unknown() {
    let path = fixture();
    let input = cluster(
        &[100, 101, 102, 104, 200, 203],
        &[100, 101, 102, 104, 200, 203],
    );
    // The same listing, from a token that may not see every guest.
    let blind = input.replace(
        "\"complete\":true",
        "\"complete\":true,\"blind\":[\"VM.Audit on /vms is missing\"]",
    );
    assert_ne!(blind, input);
    let (checks, code, err) = run(&blind, &["--tfstate", path.to_str().expect("utf-8")]);
    assert_eq!(code, 3, "{err} {checks:?}");
    let gone = tf(&checks, "guest/201");
    assert_eq!(gone["status"], "unknown", "{gone}");
}

#[test]
fn against_the_simulated_cluster_a_missing_guest_pages_and_the_rest_is_unmanaged() {
    let (_sim, sshd) = demo_over_ssh();
    let dir = tempfile::tempdir().expect("tmp");
    let state = dir.path().join("prod.tfstate");
    let vm = |name: &str, vmid: u64| {
        json!({"mode": "managed", "type": "proxmox_virtual_environment_vm", "name": name,
               "provider": "provider[\"registry.terraform.io/bpg/proxmox\"]",
               "instances": [{"schema_version": 0, "attributes": {"id": vmid.to_string(), "node_name": "pve1", "vm_id": vmid}}]})
    };
    let body = json!({"version": 4, "terraform_version": "1.9.8", "serial": 3, "lineage": "L",
                      "outputs": {}, "resources": [vm("web", 100), vm("gone", 150)]});
    std::fs::write(&state, body.to_string()).expect("state");
    let prom = dir.path().join("pvedr.prom");
    let out = pvedr_testkit::run_code(
        over_ssh(&sshd, &["--all-nodes"])
            .arg("--tfstate")
            .arg(&state)
            .arg("--prom")
            .arg(&prom),
        2,
    );
    let checks = json_lines(&out.stdout);
    assert_eq!(tf(&checks, "guest/150")["value"], "missing");
    assert_eq!(tf(&checks, "guest/150")["status"], "critical");
    assert_eq!(tf(&checks, "guest/100")["value"], "declared");
    assert_eq!(tf(&checks, "guest/103")["value"], "unmanaged");
    let metrics = std::fs::read_to_string(&prom).expect("metrics");
    assert!(
        metrics
            .contains("pvedr_backup_check_status{component=\"guest/150\",check=\"terraform\"} 2"),
        "{metrics}"
    );
}
