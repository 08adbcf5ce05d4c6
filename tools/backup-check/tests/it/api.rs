//! backup-check over the Proxmox REST API with least-privilege tokens.

use pvedr_testkit::{ApiFront, bin, demo_over_api, demo_over_ssh, json_lines};
use serde_json::{Value, json};

const NOW: &str = "1705300000";
const SECRET: &str = "7d3e2a10-9c4b-4f1e-8a2d-1b2c3d4e5f60";

fn run(cmd: &mut assert_cmd::Command) -> (Vec<Value>, i32, String) {
    let out = cmd
        .args(["--now", NOW, "--timezone", "UTC"])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains(SECRET) && !String::from_utf8_lossy(&out.stdout).contains(SECRET));
    (
        json_lines(&out.stdout),
        out.status.code().unwrap_or(-1),
        err,
    )
}

fn over_api(front: &ApiFront, token: &str) -> (Vec<Value>, i32, String) {
    // The demo's nas is 85 % full: a WARNING that would outrank UNKNOWN.
    run(bin("backup-check")
        .args(["--storage-warn", "95", "--storage-crit", "99"])
        .args(front.pinned_args(token))
        .env("PVEDR_TOKEN_SECRET", SECRET))
}

/// (component, check, status) of each check.
fn verdicts(checks: &[Value]) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = checks
        .iter()
        .filter(|c| c["kind"] == "check")
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (s("component"), s("check"), s("status"))
        })
        .collect();
    v.sort();
    v
}

/// The listing role of `docs/api-tokens.md`: audit everything, and on every storage and
/// guest the two privileges Proxmox asks before it shows a backup.
fn listing_role() -> Value {
    json!([
        {"path": "/", "roles": ["PVEAuditor"], "propagate": true},
        {"path": "/storage", "privs": ["Datastore.Audit", "Datastore.AllocateSpace"], "propagate": true},
        {"path": "/vms", "privs": ["VM.Audit", "VM.Backup"], "propagate": true}
    ])
}

#[test]
fn a_token_with_the_listing_role_checks_like_root() {
    let (sim, sshd) = demo_over_ssh();
    let front = ApiFront::start(&sim);
    front.add_token("monitor@pve!check", SECRET, listing_role());
    let (as_root, root_code, _) = run(bin("backup-check")
        .args(["--storage-warn", "95", "--storage-crit", "99"])
        .args(sshd.args()));
    let (as_token, token_code, err) = over_api(&front, "monitor@pve!check");
    assert!(verdicts(&as_root).len() > 5, "{as_root:?}");
    assert_eq!(verdicts(&as_root), verdicts(&as_token), "{err}");
    assert_eq!(root_code, token_code, "{err}");
}

/// The checks whose `key` is `value`, one of which must be UNKNOWN with a message saying
/// each of `says`.
fn unknown_among<'a>(checks: &'a [Value], key: &str, value: &str, says: &[&str]) -> Vec<&'a Value> {
    let among: Vec<&Value> = checks.iter().filter(|c| c[key] == value).collect();
    let unknown = |c: &Value| {
        let m = c["message"].as_str().unwrap_or("");
        c["status"] == "unknown" && says.iter().all(|s| m.contains(s))
    };
    assert!(among.iter().copied().any(unknown), "{among:?}");
    among
}

#[test]
fn an_audit_only_token_gets_unknown_with_the_missing_privileges_not_critical() {
    let (_sim, front) = demo_over_api();
    let acl = json!([{"path": "/", "roles": ["PVEAuditor"], "propagate": true}]);
    front.add_token("monitor@pve!audit", SECRET, acl);
    let (checks, code, err) = over_api(&front, "monitor@pve!audit");
    let critical: Vec<&Value> = checks
        .iter()
        .filter(|c| c["status"] == "critical")
        .collect();
    assert!(
        critical.is_empty(),
        "an incomplete listing is not 'no backup': {critical:?}"
    );
    assert_eq!(code, 3, "UNKNOWN: {err}");
    unknown_among(
        &checks,
        "component",
        "source",
        &["Datastore.Allocate on /storage/", "VM.Backup on /vms"],
    );
    let guests = checks
        .iter()
        .filter(|c| {
            c["component"]
                .as_str()
                .is_some_and(|s| s.starts_with("guest/"))
        })
        .filter(|c| c["check"] == "coverage" && c["status"] == "unknown")
        .count();
    assert_eq!(
        guests, 4,
        "each guest is unknown, not unprotected: {checks:?}"
    );
}

#[test]
fn the_same_token_over_nagios_says_unknown_in_one_line() {
    let (_sim, front) = demo_over_api();
    let acl = json!([{"path": "/", "roles": ["PVEAuditor"], "propagate": true}]);
    front.add_token("monitor@pve!audit", SECRET, acl);
    let out = bin("backup-check")
        .args(front.pinned_args("monitor@pve!audit"))
        .args(["--nagios"])
        .args(["--storage-warn", "95", "--storage-crit", "99"])
        .args(["--now", NOW, "--timezone", "UTC"])
        .env("PVEDR_TOKEN_SECRET", SECRET)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(line.starts_with("BACKUP UNKNOWN"), "{line}");
}

#[test]
fn deep_over_the_api_says_the_archives_were_not_read() {
    let (_sim, front) = demo_over_api();
    front.add_token("monitor@pve!check", SECRET, listing_role());
    let (checks, code, err) = run(bin("backup-check")
        .args(front.pinned_args("monitor@pve!check"))
        .args(["--deep"])
        .env("PVEDR_TOKEN_SECRET", SECRET));
    // The demo has real CRITICALs (a failed PBS verification, a guest never backed up).
    assert_eq!(code, 2, "{err}");
    let integrity = unknown_among(&checks, "check", "integrity", &["over the API"]);
    assert!(
        !integrity.iter().any(|c| c["status"] == "critical"),
        "{integrity:?}"
    );
}
