//! pve-ls-backups over the Proxmox REST API (the simulator's HTTPS front) with API tokens.

use pvedr_testkit::{ApiFront, SimNode, bin, demo_over_api, demo_over_ssh, json_lines, run_code};
use serde_json::{Value, json};

const SECRET: &str = "5f0c9c6e-2b1a-4e7e-9d43-0c1f2a3b4c5d";

fn api(front: &ApiFront, token: &str) -> assert_cmd::Command {
    front.bin("pve-ls-backups", token, SECRET)
}

/// pve-ls-backups on `front` as root@pam!pvedr without its CA: the certificate is trusted
/// only when it has the `--fingerprint` `fp` (none when empty).
fn pinned(front: &ApiFront, fp: &str) -> assert_cmd::Command {
    let mut c = bin("pve-ls-backups");
    c.args(["--api", &front.url(), "--token", "root@pam!pvedr"])
        .env("PVEDR_TOKEN_SECRET", SECRET);
    if !fp.is_empty() {
        c.args(["--fingerprint", fp]);
    }
    c
}

fn sorted(mut v: Vec<Value>) -> Vec<Value> {
    v.sort_by_key(|r| r["volid"].as_str().unwrap_or_default().to_string());
    v
}

#[test]
fn the_api_gives_the_same_records_as_ssh_on_the_whole_cluster() {
    let (sim, sshd) = demo_over_ssh();
    let front = ApiFront::start(&sim);
    front.add_token("root@pam!pvedr", SECRET, Value::Null);
    // pve3 is offline: both say so and exit 3 (partial).
    let over_ssh = run_code(sshd.bin("pve-ls-backups").arg("--all-nodes"), 3);
    let over_api = run_code(api(&front, "root@pam!pvedr").arg("--all-nodes"), 3);
    let a = sorted(json_lines(&over_ssh.stdout));
    let b = sorted(json_lines(&over_api.stdout));
    assert!(a.len() >= 5, "{a:?}");
    assert_eq!(a, b, "SSH and API differ");
    for out in [&over_api.stdout, &over_api.stderr] {
        assert!(!String::from_utf8_lossy(out).contains(SECRET));
    }
}

#[test]
fn a_pinned_fingerprint_is_checked_before_any_request() {
    let (sim, front) = demo_over_api();
    front.add_token("root@pam!pvedr", SECRET, Value::Null);
    let good = front.fingerprint();
    let ok = run_code(pinned(&front, &good), 0);
    assert!(!json_lines(&ok.stdout).is_empty());
    sim.clear_commands();
    let wrong: String = good
        .chars()
        .map(|c| {
            if c == 'A' {
                'B'
            } else if c == 'B' {
                'A'
            } else {
                c
            }
        })
        .collect();
    let wrong = if wrong == good {
        "00".repeat(32)
    } else {
        wrong
    };
    let out = run_code(pinned(&front, &wrong), 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not the pinned"), "{err}");
    // A refused certificate (a typed TLS error, not its wording) is not tried again.
    assert!(err.contains("certificate is not trusted"), "{err}");
    assert!(!err.contains("retrying"), "{err}");
    assert!(pvedr_testkit::only_failed_listing(&out.stdout));
    assert!(
        sim.commands().is_empty(),
        "a request got through: {:?}",
        sim.commands()
    );
    assert!(!err.contains(SECRET));
}

#[test]
fn without_a_trusted_certificate_nothing_is_sent() {
    let (sim, front) = demo_over_api();
    front.add_token("root@pam!pvedr", SECRET, Value::Null);
    sim.clear_commands();
    let out = run_code(pinned(&front, ""), 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not trusted"), "{err}");
    assert!(!err.contains("retrying"), "{err}");
    assert!(sim.commands().is_empty());
}

#[test]
fn a_wrong_secret_is_refused_and_never_printed() {
    let sim = SimNode::demo();
    let front = ApiFront::start_with(&sim, &[("PVESIM_API_AUTH_DELAY", "0")]);
    front.add_token("root@pam!pvedr", SECRET, Value::Null);
    let wrong = "11111111-2222-3333-4444-555555555555";
    let out = run_code(
        api(&front, "root@pam!pvedr").env("PVEDR_TOKEN_SECRET", wrong),
        1,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("401") || err.contains("authentication"),
        "{err}"
    );
    assert!(!err.contains(wrong) && !err.contains(SECRET), "{err}");
}

#[test]
fn the_secret_comes_from_a_file_or_the_environment_never_a_flag() {
    let (_sim, front) = demo_over_api();
    front.add_token("root@pam!pvedr", SECRET, Value::Null);
    let dir = tempfile::tempdir().expect("tmp");
    let f = dir.path().join("secret");
    std::fs::write(&f, format!("{SECRET}\n")).expect("write");
    let out = run_code(
        bin("pve-ls-backups")
            .args(front.args("root@pam!pvedr"))
            .arg("--token-secret-file")
            .arg(&f)
            .env_remove("PVEDR_TOKEN_SECRET"),
        0,
    );
    assert!(!json_lines(&out.stdout).is_empty());
    let none = run_code(
        bin("pve-ls-backups")
            .args(["--api", &front.url(), "--token", "root@pam!pvedr"])
            .env_remove("PVEDR_TOKEN_SECRET"),
        2,
    );
    assert!(String::from_utf8_lossy(&none.stderr).contains("PVEDR_TOKEN_SECRET"));
    run_code(
        bin("pve-ls-backups").args(["--api", "http://127.0.0.1:1", "--token", "a@pam!b"]),
        2,
    );
}

#[test]
fn an_audit_only_token_is_told_the_listing_may_leave_backups_out() {
    let (_sim, front) = demo_over_api();
    let acl = json!([{"path": "/", "roles": ["PVEAuditor"], "propagate": true}]);
    front.add_token("monitor@pve!audit", SECRET, acl);
    let out = run_code(api(&front, "monitor@pve!audit"), 3);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Datastore.Allocate on /storage/") && err.contains("may be incomplete"),
        "{err}"
    );
    let (recs, end) = pvedr_testkit::listed(&out.stdout);
    assert!(recs.is_empty(), "an auditor sees no backups");
    assert!(
        end["blind"][0].is_string(),
        "but backups may be left out: {end}"
    );
}

#[test]
fn a_hung_answer_is_given_up_after_the_command_timeout_retries_included() {
    let (sim, front) = demo_over_api();
    front.add_token("root@pam!pvedr", SECRET, Value::Null);
    // The storage listing answers after 25 s; the run allows each request 2 s. The first
    // requests leave keep-alive connections in the pool, where ureq has no read timeout.
    sim.set_faults(json!([{"match": "storage/local/content", "sleep": 25}]));
    let out = api(&front, "root@pam!pvedr")
        .args(["--command-timeout", "2s"])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("no whole answer within 2s (--command-timeout)"),
        "the bound that ended the wait is named: {err}"
    );
    assert!(!err.contains(SECRET));
}

#[test]
fn a_stock_node_certificate_says_to_pass_the_cluster_ca_or_its_fingerprint() {
    let (_sim, front) = demo_over_api();
    front.add_token("root@pam!pvedr", SECRET, Value::Null);
    let out = run_code(pinned(&front, ""), 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("UnknownIssuer"), "{err}");
    assert!(
        err.contains("/etc/pve/pve-root-ca.pem")
            && err.contains("--ca")
            && err.contains("--fingerprint")
            && err.contains("pvenode cert info"),
        "{err}"
    );
    // A pinned fingerprint that does not match is not told to pin one.
    let wrong = "AA:".repeat(31) + "AA";
    let out = run_code(pinned(&front, &wrong), 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not the pinned"), "{err}");
    assert!(!err.contains("pve-root-ca.pem"), "{err}");
}

#[test]
fn a_refused_token_is_said_to_be_refused_not_a_failed_pvesh() {
    let sim = SimNode::demo();
    let front = ApiFront::start_with(&sim, &[("PVESIM_API_AUTH_DELAY", "0")]);
    front.add_token("root@pam!pvedr", SECRET, Value::Null);
    for token in ["root@pam!pvedr", "root@pam!other"] {
        let wrong = "11111111-2222-3333-4444-555555555555";
        let out = run_code(api(&front, token).env("PVEDR_TOKEN_SECRET", wrong), 1);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!(
                "the API token {token} was refused (wrong token id or secret, or the token expired)"
            )),
            "{err}"
        );
        assert!(!err.contains("pvesh"), "{err}");
        assert!(!err.contains(wrong) && !err.contains(SECRET), "{err}");
    }
}

/// `--node` is checked against `/cluster/status`, which needs Sys.Audit on `/`: a token
/// without it (storages and nodes only) still lists a named node, the names standing as given.
#[test]
fn a_token_without_sys_audit_on_root_lists_a_named_node() {
    let (_sim, front) = demo_over_api();
    let acl = json!([
        {"path": "/storage", "roles": ["PVEDatastoreAdmin"], "propagate": true},
        {"path": "/nodes", "roles": ["PVEAuditor"], "propagate": true}
    ]);
    front.add_token("backup@pve!list", SECRET, acl);
    let out = run_code(
        api(&front, "backup@pve!list").args(["--node", "pve1", "--storage", "local"]),
        0,
    );
    let (recs, end) = pvedr_testkit::listed(&out.stdout);
    assert!(!recs.is_empty(), "{end}");
    assert_eq!(end["complete"], true, "{end}");
}
