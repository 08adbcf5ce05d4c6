//! The harness itself: the simulator prints what Proxmox prints, locally and over a real sshd.

use pvedr_testkit::{ApiFront, Backup, SimNode, demo_over_ssh};
use serde_json::Value;
use std::process::Command;

fn pvesh_local(sim: &SimNode, args: &[&str]) -> (i32, String, String) {
    let mut c = Command::new(pvedr_testkit::sim_dir().join("bin/pvesh"));
    c.args(args);
    for (k, v) in sim.env() {
        c.env(k, v);
    }
    let out = c.output().expect("pvesh runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// `pvesh get /nodes/pve1/storage/STORAGE/content --content backup` as JSON, which must
/// succeed: its stdout.
fn backups_on(sim: &SimNode, storage: &str) -> String {
    let path = format!("/nodes/pve1/storage/{storage}/content");
    let args = [
        "get",
        &path,
        "--content",
        "backup",
        "--output-format",
        "json",
    ];
    let (code, out, err) = pvesh_local(sim, &args);
    assert_eq!(code, 0, "{err}");
    out
}

#[test]
fn content_listing_matches_proxmox_fields() {
    let sim = SimNode::demo();
    let out = backups_on(&sim, "local");
    assert_eq!(out.lines().count(), 1, "one line of JSON");
    let v: Vec<Value> = serde_json::from_str(&out).expect("json");
    // Keys are sorted, as Perl's canonical JSON prints them.
    let first = out.find("\"content\"").expect("content");
    assert!(first < out.find("\"ctime\"").expect("ctime"));
    let volids: Vec<String> = v
        .iter()
        .map(|e| e["volid"].as_str().unwrap_or("").to_lowercase())
        .collect();
    let mut sorted = volids.clone();
    sorted.sort();
    assert_eq!(volids, sorted, "sorted by lower-cased volid");
    let std = v
        .iter()
        .find(|e| e["volid"] == "local:backup/vzdump-qemu-100-2024_01_15-02_00_02.vma.zst")
        .expect("standard archive");
    assert_eq!(std["ctime"], 1705284002);
    assert_eq!(std["format"], "vma.zst");
    assert_eq!(std["subtype"], "qemu");
    assert_eq!(std["vmid"], 100);
    assert_eq!(std["notes"], "web01");
    assert!(std.get("protected").is_none(), "protected only when set");
    let prot = v
        .iter()
        .find(|e| e["protected"] == 1)
        .expect("a protected one");
    assert_eq!(
        prot["volid"],
        "local:backup/vzdump-qemu-100-2024_01_07-02_00_02.vma.zst"
    );
    let odd = v
        .iter()
        .find(|e| e["volid"] == "local:backup/vzdump-qemu-100-manual-copy.vma.zst")
        .expect("non-standard name");
    assert_eq!(odd["vmid"], 100);
    for e in &v {
        let id = e["volid"].as_str().unwrap_or("");
        assert!(!id.ends_with(".log") && !id.ends_with(".notes") && !id.ends_with(".dat"));
    }
}

#[test]
fn pbs_entries() {
    let sim = SimNode::demo();
    let out = backups_on(&sim, "pbs");
    let v: Vec<Value> = serde_json::from_str(&out).expect("json");
    let vm = v.iter().find(|e| e["vmid"] == 100).expect("vm 100");
    assert_eq!(vm["format"], "pbs-vm");
    assert_eq!(vm["volid"], "pbs:backup/vm/100/2024-01-14T01:00:02Z");
    assert_eq!(vm["verification"]["state"], "ok");
    assert!(vm["encrypted"].is_string());
    let no_size = v.iter().find(|e| e["vmid"] == 102).expect("vm 102");
    assert_eq!(no_size["size"], 1, "PBS without a size reports 1");
}

#[test]
fn timezone_of_the_node_reads_names() {
    let sim = SimNode::with("empty", "Europe/Paris", 1_705_300_000);
    // 2024-01-15 02:00:02 in Paris (UTC+1).
    sim.add_backup(&Backup::new("local", "qemu", 100, 1_705_280_402));
    let (_, out, _) = pvesh_local(
        &sim,
        &[
            "get",
            "/nodes/pve1/storage/local/content",
            "--output-format",
            "json",
        ],
    );
    let v: Vec<Value> = serde_json::from_str(&out).expect("json");
    assert_eq!(
        v[0]["volid"],
        "local:backup/vzdump-qemu-100-2024_01_15-02_00_02.vma.zst"
    );
    assert_eq!(v[0]["ctime"], 1_705_280_402);
}

#[test]
fn delete_removes_side_files_and_refuses_protected() {
    let sim = SimNode::demo();
    let dump = sim.dump_dir("local");
    let vol = "local:backup/vzdump-qemu-100-2024_01_08-02_00_02.vma.zst";
    let (code, out, err) = pvesh_local(
        &sim,
        &[
            "delete",
            &format!("/nodes/pve1/storage/local/content/{vol}"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("Removed volume '{vol}'")));
    assert!(
        !dump
            .join("vzdump-qemu-100-2024_01_08-02_00_02.vma.zst")
            .exists()
    );
    assert!(
        !dump
            .join("vzdump-qemu-100-2024_01_08-02_00_02.log")
            .exists()
    );
    assert!(
        !dump
            .join("vzdump-qemu-100-2024_01_08-02_00_02.vma.zst.notes")
            .exists()
    );
    let prot = "local:backup/vzdump-qemu-100-2024_01_07-02_00_02.vma.zst";
    let (code, out, err) = pvesh_local(
        &sim,
        &[
            "delete",
            &format!("/nodes/pve1/storage/local/content/{prot}"),
        ],
    );
    // The imgdel worker failed: its error on stderr, the UPID printed, exit 0 (as pvesh).
    assert_eq!(code, 0);
    assert!(err.contains("cannot remove protected volume"), "{err}");
    assert!(
        !out.contains("Removed volume") && out.contains("UPID:"),
        "{out}"
    );
    assert!(
        dump.join("vzdump-qemu-100-2024_01_07-02_00_02.vma.zst")
            .exists()
    );
}

#[test]
fn delete_on_another_node_prints_as_the_proxy_joins_it() {
    // pvesh on pve1, the volume's path names pve2: proxy_handler joins the remote lines.
    let sim = SimNode::demo();
    let vol = "nas:backup/vzdump-qemu-102-2024_01_12-02_00_32.vma.lzo";
    let (code, out, err) = pvesh_local(
        &sim,
        &["delete", &format!("/nodes/pve2/storage/nas/content/{vol}")],
    );
    assert_eq!(code, 0, "{err}");
    let prefix = format!("Removed volume '{vol}'\"UPID:pve2:");
    assert!(
        out.starts_with(&prefix) && out.ends_with(":root@pam:\"\n"),
        "{out}"
    );
    assert_eq!(out.lines().count(), 1, "{out}");
}

#[test]
fn faults_and_command_log() {
    let sim = SimNode::demo();
    sim.fail_when("/cluster/backup", "got timeout", 255);
    let (code, _, err) = pvesh_local(&sim, &["get", "/cluster/backup", "--output-format", "json"]);
    assert_eq!((code, err.trim()), (255, "got timeout"));
    let (code, _, err) = pvesh_local(&sim, &["get", "/nope"]);
    assert_eq!(code, 1, "pvesh.pm extract_path_info exits 1");
    assert_eq!(err.trim(), "No 'get' handler defined for '/nope'");
    let cmds = sim.commands();
    assert_eq!(cmds.len(), 2);
    assert_eq!(cmds[0]["argv"][1], "/cluster/backup");
}

#[test]
fn over_a_real_sshd() {
    let (sim, sshd) = demo_over_ssh();
    let out = sshd
        .ssh("pvesh get /nodes/pve1/storage/local/content --content backup --output-format json");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        sshd.log()
    );
    let v: Vec<Value> = serde_json::from_slice(&out.stdout).expect("json");
    assert!(v.len() >= 10);
    assert_eq!(sim.commands().len(), 1);
}

/// curl against the HTTPS front: the node certificate verifies for 127.0.0.1 with the cluster CA.
fn curl(api: &ApiFront, args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-s", "-D", "-", "--cacert"])
        .arg(api.ca_path())
        .args(args)
        .output()
        .expect("curl runs");
    assert!(out.status.success(), "curl: {}", api.server_log());
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

#[test]
fn api_front_over_https() {
    let sim = SimNode::demo();
    let api = ApiFront::start_with(&sim, &[("PVESIM_API_AUTH_DELAY", "0")]);
    api.add_token("root@pam!tk", "secret-1", Value::Null);
    api.add_token(
        "audit@pve!ro",
        "secret-2",
        serde_json::json!([{"path": "/", "roles": ["PVEAuditor"], "propagate": true}]),
    );
    let url = format!("{}/api2/json/cluster/status", api.url());
    let (status, body) = curl(
        &api,
        &[
            "-H",
            "Authorization: PVEAPIToken=root@pam!tk=secret-1",
            &url,
        ],
    );
    assert_eq!(status.trim_end(), "HTTP/1.1 200 OK");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert!(
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["local"] == 1 && e["name"] == "pve1")
    );
    let (status, _) = curl(
        &api,
        &["-H", "Authorization: PVEAPIToken=root@pam!tk=nope", &url],
    );
    assert_eq!(status.trim_end(), "HTTP/1.1 401 Authentication failed!");
    let content = format!(
        "{}/api2/json/nodes/pve1/storage/local/content?content=backup",
        api.url()
    );
    let (_, body) = curl(
        &api,
        &[
            "-H",
            "Authorization: PVEAPIToken=audit@pve!ro=secret-2",
            &content,
        ],
    );
    assert_eq!(body, r#"{"data":[]}"#, "an auditor sees no backups");
    // The fingerprint is the served certificate's, as `pvenode cert info` prints it.
    let fp = api.fingerprint();
    assert_eq!(fp.len(), 95, "{fp}");
    assert!(
        fp.chars()
            .all(|c| c == ':' || c.is_ascii_digit() || ('A'..='F').contains(&c))
    );
    let served = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect 127.0.0.1:{} </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256",
            api.port()
        ))
        .output()
        .expect("openssl");
    assert!(
        String::from_utf8_lossy(&served.stdout)
            .trim()
            .ends_with(&fp)
    );
    let logged = std::fs::read_to_string(sim.root().join("commands.log")).unwrap();
    assert!(logged.contains("\"via\": \"api\""));
    assert!(!logged.contains("secret-1") && !logged.contains("nope"));
}

/// The front's own Python self-test (`tests/sim/test_api.py`), so `cargo test` runs it.
#[test]
fn pvesim_api_self_test() {
    let out = Command::new("python3")
        .arg(pvedr_testkit::sim_dir().join("test_api.py"))
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
