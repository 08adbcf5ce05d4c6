//! Offsite records (`backup-sync ls`) restored straight from S3 (moto), streamed over a
//! real sshd into the simulator's `qmrestore -` / `pct restore N -`: the same guest as a
//! restore from the file, no archive on the node, and a flipped byte, a truncated object,
//! an S3 server stopped mid-stream each fail cleanly with nothing left behind.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{offsite_moto, put};
use pvedr_testkit::s3::{Moto, S3Front, s3_env};
use pvedr_testkit::{SimNode, Sshd, assert_says, bin, demo_over_ssh, json_lines};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// A real archive of the simulator's, its bytes.
fn archive(sim: &SimNode, kind: &str, compress: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a");
    let p = p.to_str().unwrap();
    sim.admin(&["archive", p, "--type", kind, "--compress", compress]);
    std::fs::read(p).unwrap()
}

/// The `backup` record `backup-sync ls` prints for an offsite copy (docs/backup-sync.md).
fn record(key: &str, vmid: u64, subtype: &str, format: &str, size: u64, sha: &str) -> String {
    json!({"kind": "backup", "node": "pve1", "storage": "offsite",
           "volid": format!("offsite:backup/{key}"), "vmid": vmid, "subtype": subtype,
           "ctime": 1705284002, "time": "2024-01-15T02:00:02Z", "size": size,
           "format": format, "protected": false, "url": format!("s3://offsite/{key}"),
           "sha256": sha, "source_volid": "local:backup/x", "source_storage": "local"})
    .to_string()
}

fn sha(b: &[u8]) -> String {
    format!("{:x}", Sha256::digest(b))
}

struct Site {
    moto: Moto,
    sim: SimNode,
    sshd: Sshd,
}

fn site() -> Site {
    let (sim, sshd) = demo_over_ssh();
    let moto = offsite_moto();
    Site { moto, sim, sshd }
}

/// pve-restore with `input` on stdin against `endpoint`; (restore record, exit code).
fn restore(s: &Site, endpoint: &str, input: &str, args: &[&str]) -> (Value, i32) {
    let out = bin("pve-restore")
        .args(s.sshd.args())
        .args(["--endpoint", endpoint, "--yes"])
        .args(args)
        .envs(s3_env())
        .write_stdin(input)
        .output()
        .unwrap();
    rec_of(&out)
}

/// [`restore`] at the site's S3.
fn at_site(s: &Site, input: &str, args: &[&str]) -> (Value, i32) {
    restore(s, &s.moto.endpoint(), input, args)
}

/// [`restore`] at the site's S3, which must end with `code` and the record's `status`:
/// that record.
fn ends(s: &Site, input: &str, args: &[&str], code: i32, status: &str) -> Value {
    let (rec, got) = at_site(s, input, args);
    assert_eq!((got, rec["status"].clone()), (code, json!(status)), "{rec}");
    rec
}

fn rec_of(out: &std::process::Output) -> (Value, i32) {
    let rec = json_lines(&out.stdout)
        .into_iter()
        .find(|r| r["kind"] == "restore")
        .unwrap_or(Value::Null);
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    (rec, out.status.code().unwrap_or(-1))
}

/// Every file under the node's dir storages (what a restore must not leave there).
fn storage_files(sim: &SimNode) -> Vec<String> {
    fn walk(p: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                walk(&e.path(), out);
            } else {
                out.push(e.path().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    for s in ["local", "nas"] {
        walk(sim.dump_dir(s).parent().unwrap(), &mut out);
    }
    out.sort();
    out
}

fn volume(sim: &SimNode, vol: &str) -> String {
    std::fs::read_to_string(sim.root().join("volumes/local-lvm").join(vol)).unwrap_or_default()
}

fn same(v: &Value, a: u64, b: u64) -> String {
    v.to_string()
        .replace(&format!("-{a}-"), "-N-")
        .replace(&format!("-{b}-"), "-N-")
}

/// The archive restored streamed to `streamed`, then from the file to `filed`: same config
/// (volume names aside), same data; no file on the node's storages from the stream.
fn compare(s: &Site, kind: &str, compress: &str, format: &str, streamed: u64, filed: u64) {
    let bytes = archive(&s.sim, kind, compress);
    let name = format!("vzdump-{kind}-100-2024_01_15-02_00_02.{format}");
    let key = format!("pve1/100/{name}");
    put(&s.moto.endpoint(), &key, bytes.clone());
    let before = storage_files(&s.sim);
    let input = record(&key, 100, kind, format, bytes.len() as u64, &sha(&bytes));
    let t = streamed.to_string();
    let rec = ends(s, &input, &["--target-vmid", &t], 0, "restored");
    assert_eq!(
        storage_files(&s.sim),
        before,
        "no archive written on the node"
    );
    assert_eq!(rec["offsite"]["bytes"], json!(bytes.len()), "{rec}");
    std::fs::write(s.sim.dump_dir("local").join(&name), &bytes).unwrap();
    let volid = format!("local:backup/{name}");
    let f = filed.to_string();
    let storage = if kind == "lxc" { "local-lvm" } else { "" };
    let mut args = vec!["--volid", &volid, "--target-vmid", &f];
    if kind == "lxc" {
        args.extend(["--storage", storage]);
    }
    let (rec, code) = at_site(s, "", &args);
    assert_eq!(code, 0, "{rec}");
    let a = s.sim.read_json(&format!("guests/{streamed}.json"));
    let b = s.sim.read_json(&format!("guests/{filed}.json"));
    assert_eq!(
        same(&a["config"], streamed, filed),
        same(&b["config"], streamed, filed)
    );
    let d = |v: u64| volume(&s.sim, &format!("vm-{v}-disk-0"));
    assert!(!d(streamed).is_empty());
    assert_eq!(d(streamed), d(filed));
}

#[test]
fn a_streamed_vm_restore_gives_the_guest_the_file_gives() {
    let s = site();
    compare(&s, "qemu", "zstd", "vma.zst", 150, 151);
}

#[test]
fn a_streamed_ct_restore_gives_the_guest_the_file_gives() {
    let s = site();
    compare(&s, "lxc", "zstd", "tar.zst", 160, 161);
}

/// A plain VMA of the simulator's put offsite with a byte flipped in a block's data (VMA
/// checksums do not cover it): the archive it should be, and its key.
fn flipped_copy(s: &Site) -> (Vec<u8>, &'static str) {
    let good = archive(&s.sim, "qemu", "none");
    let mut bad = good.clone();
    let at = bad.len() - 100;
    bad[at] ^= 1;
    let key = "pve1/100/vzdump-qemu-100-2024_01_15-02_00_02.vma";
    put(&s.moto.endpoint(), key, bad);
    (good, key)
}

/// A byte flipped in a block's data (VMA checksums do not cover it): qmrestore succeeds,
/// the sha256 at the end fails, and the guest just restored is removed.
#[test]
fn a_flipped_byte_fails_the_sha256_and_removes_the_new_guest() {
    let s = site();
    let (good, key) = flipped_copy(&s);
    let input = record(key, 100, "qemu", "vma", good.len() as u64, &sha(&good));
    let rec = ends(&s, &input, &["--target-vmid", "152"], 1, "failed");
    assert!(rec["error"].as_str().unwrap().contains("sha256"), "{rec}");
    assert_eq!(rec["leftover"], "removed", "{rec}");
    assert!(s.sim.read_json("guests/152.json").is_null(), "nothing left");
    assert!(volume(&s.sim, "vm-152-disk-0").is_empty());
}

/// A restore that fails before it reads its stream (here at once): the node stops reading,
/// the writes find no room, and pvedr sees the command ended and takes its status; it
/// neither waits for the stream's end nor calls the node's state unknown. The stream
/// (a 24 MiB disk, a third of it random) outgrows what SSH and the pipe buffer.
#[test]
fn a_restore_that_stops_reading_its_stream_fails_with_its_own_error() {
    let s = site();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a");
    let p = p.to_str().unwrap();
    s.sim.admin(&[
        "archive",
        p,
        "--type",
        "qemu",
        "--compress",
        "none",
        "--size-kib",
        "24576",
        "--content",
        "disk",
    ]);
    let bytes = std::fs::read(p).unwrap();
    let key = "pve1/100/vzdump-qemu-100-2024_01_15-02_00_02.vma";
    put(&s.moto.endpoint(), key, bytes.clone());
    s.sim
        .fail_when("qmrestore - 155", "no space left for the restore", 255);
    let input = record(key, 100, "qemu", "vma", bytes.len() as u64, &sha(&bytes));
    let (rec, code) = restore(&s, &s.moto.endpoint(), &input, &["--target-vmid", "155"]);
    assert_eq!((code, rec["status"].clone()), (1, json!("failed")), "{rec}");
    assert_says(&rec, "error", "no space left for the restore");
    assert!(s.sim.read_json("guests/155.json").is_null(), "nothing left");
}

/// A ranged GET may cost the S3 server in proportion to the whole object (moto reads all
/// of it for each): a 40 MiB archive (a 60 MiB disk) is read in two GETs of 32 MiB, not five
/// of 8 MiB.
#[test]
fn an_archive_streams_in_few_large_ranged_gets() {
    let s = site();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a");
    let p = p.to_str().unwrap();
    s.sim.admin(&[
        "archive",
        p,
        "--type",
        "qemu",
        "--compress",
        "none",
        "--size-kib",
        "61440",
        "--content",
        "disk",
    ]);
    let bytes = std::fs::read(p).unwrap();
    assert!(bytes.len() > 32 << 20 && bytes.len() <= 64 << 20);
    let key = "pve1/100/vzdump-qemu-100-2024_01_15-02_00_02.vma";
    put(&s.moto.endpoint(), key, bytes.clone());
    let front = S3Front::start(&s.moto);
    let input = record(key, 100, "qemu", "vma", bytes.len() as u64, &sha(&bytes));
    let (rec, code) = restore(&s, &front.endpoint(), &input, &["--target-vmid", "156"]);
    assert_eq!(
        (code, rec["status"].clone()),
        (0, json!("restored")),
        "{rec}"
    );
    assert_eq!(front.count(&format!("GET /offsite/{key}")), 2, "{rec}");
}

/// An object shorter than its manifest: refused at the check, nothing run on the node.
#[test]
fn a_truncated_object_is_refused_before_anything_changes() {
    let s = site();
    let good = archive(&s.sim, "qemu", "zstd");
    let key = "pve1/100/vzdump-qemu-100-2024_01_15-02_00_02.vma.zst";
    put(&s.moto.endpoint(), key, good[..good.len() / 2].to_vec());
    let input = record(key, 100, "qemu", "vma.zst", good.len() as u64, &sha(&good));
    let rec = ends(&s, &input, &["--target-vmid", "153"], 1, "refused");
    assert!(
        rec["error"].as_str().unwrap().contains("truncated"),
        "{rec}"
    );
    assert!(s.sim.read_json("guests/153.json").is_null());
    let log = std::fs::read_to_string(s.sim.root().join("commands.log")).unwrap_or_default();
    assert!(!log.contains("qmrestore"), "{log}");
}

/// An age key pair made by the standard `age-keygen`: (identity file, public key).
fn age_key(dir: &Path, name: &str) -> (std::path::PathBuf, String) {
    let key = dir.join(name);
    let ok = std::process::Command::new("age-keygen")
        .arg("-o")
        .arg(&key)
        .output()
        .expect("age-keygen (Debian package age)");
    assert!(ok.status.success(), "{ok:?}");
    let public = std::process::Command::new("age-keygen")
        .arg("-y")
        .arg(&key)
        .output()
        .expect("age-keygen -y");
    (
        key,
        String::from_utf8_lossy(&public.stdout).trim().to_string(),
    )
}

/// `bytes` encrypted by the standard `age` command, as backup-sync push writes a copy.
fn age_encrypt(bytes: &[u8], recipient: &str) -> Vec<u8> {
    use std::io::Write;
    let mut c = std::process::Command::new("age")
        .args(["-r", recipient])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("age (Debian package age)");
    let mut stdin = c.stdin.take().expect("stdin");
    let data = bytes.to_vec();
    let w = std::thread::spawn(move || stdin.write_all(&data));
    let out = c.wait_with_output().expect("age");
    w.join().expect("writer").expect("write");
    assert!(out.status.success());
    out.stdout
}

const ENCRYPTED_CT: &str = "pve1/100/vzdump-lxc-100-2024_01_15-02_00_02.tar.zst";

/// A container's backup encrypted to `public` in the bucket: its plaintext and its
/// offsite record (`encrypted: age`).
fn put_encrypted_ct(s: &Site, public: &str) -> (Vec<u8>, String) {
    let plain = archive(&s.sim, "lxc", "zstd");
    put(
        &s.moto.endpoint(),
        ENCRYPTED_CT,
        age_encrypt(&plain, public),
    );
    let n = plain.len() as u64;
    let rec = record(ENCRYPTED_CT, 100, "lxc", "tar.zst", n, &sha(&plain));
    let mut rec: Value = serde_json::from_str(&rec).expect("json");
    rec["encrypted"] = json!("age");
    (plain, rec.to_string())
}

/// An encrypted copy (backup-sync push --encrypt-to) streams decrypted with
/// --age-identity: a container (whose config is read from the decrypted head) comes back
/// as from the plain copy. Without an identity, or with one for other recipients, nothing
/// runs on the node and the refusal says why; the secret is never printed.
#[test]
fn an_encrypted_copy_streams_decrypted_with_its_identity_and_is_refused_without() {
    let s = site();
    let keys = tempfile::tempdir().expect("tmp");
    let (key, public) = age_key(keys.path(), "key.txt");
    let (other, _) = age_key(keys.path(), "other.txt");
    let (plain, input) = put_encrypted_ct(&s, &public);
    let (out, code) = at_site(&s, &input, &["--target-vmid", "157"]);
    assert_eq!(
        (code, out["status"].clone()),
        (1, json!("refused")),
        "{out}"
    );
    assert_says(&out, "error", "--age-identity");
    let wrong = other.to_str().expect("utf-8");
    let (out, code) = at_site(
        &s,
        &input,
        &["--target-vmid", "157", "--age-identity", wrong],
    );
    assert_ne!(code, 0, "{out}");
    assert!(out.to_string().contains("other recipients"), "{out}");
    assert!(s.sim.read_json("guests/157.json").is_null());
    let secret = std::fs::read_to_string(&other).expect("key");
    let secret = secret
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY"))
        .expect("secret");
    assert!(!out.to_string().contains(secret), "the secret was printed");
    let good = key.to_str().expect("utf-8");
    let (out, code) = at_site(
        &s,
        &input,
        &["--target-vmid", "158", "--age-identity", good],
    );
    assert_eq!(
        (code, out["status"].clone()),
        (0, json!("restored")),
        "{out}"
    );
    assert_eq!(out["offsite"]["encrypted"], "age", "{out}");
    // The same archive in the clear, streamed: the same guest.
    let plain_key = "pve1/100/plain/vzdump-lxc-100-2024_01_15-02_00_02.tar.zst";
    put(&s.moto.endpoint(), plain_key, plain.clone());
    let input = record(
        plain_key,
        100,
        "lxc",
        "tar.zst",
        plain.len() as u64,
        &sha(&plain),
    );
    let (out, code) = at_site(&s, &input, &["--target-vmid", "159"]);
    assert_eq!(code, 0, "{out}");
    let a = s.sim.read_json("guests/158.json");
    let b = s.sim.read_json("guests/159.json");
    assert_eq!(same(&a["config"], 158, 159), same(&b["config"], 158, 159));
    let d = |v: u64| volume(&s.sim, &format!("vm-{v}-disk-0"));
    assert!(!d(158).is_empty());
    assert_eq!(d(158), d(159));
}

/// The S3 server stops while the second of three parts is asked for.
#[test]
fn an_s3_server_stopped_mid_stream_fails_and_removes_the_new_guest() {
    let s = site();
    let vma = archive(&s.sim, "qemu", "none");
    let mut big = vma.clone();
    big.resize(80 << 20, 0);
    let key = "pve1/100/vzdump-qemu-100-2024_01_15-02_00_02.vma";
    put(&s.moto.endpoint(), key, big.clone());
    let front = S3Front::start(&s.moto);
    front.hold_head("range: bytes=33554432-");
    let input = record(key, 100, "qemu", "vma", big.len() as u64, &sha(&big));
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("pve-restore"));
    c.args(s.sshd.args())
        .args([
            "--endpoint",
            &front.endpoint(),
            "--yes",
            "--target-vmid",
            "154",
        ])
        .envs(s3_env())
        .env("PVEDR_S3_READ_TIMEOUT", "5s")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    let t0 = Instant::now();
    while front.held() == 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the second part was never asked"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    front.stop();
    let out = child.wait_with_output().unwrap();
    let (rec, code) = rec_of(&out);
    assert_eq!((code, rec["status"].clone()), (1, json!("failed")), "{rec}");
    assert!(
        rec["error"]
            .as_str()
            .unwrap()
            .contains("reading the archive failed"),
        "{rec}"
    );
    assert!(s.sim.read_json("guests/154.json").is_null(), "nothing left");
}

/// Over the API there is no stdin restore (qemu-server and pve-container `create_vm`:
/// `pipe requires cli environment`): refused, saying SSH is needed, nothing run.
#[test]
fn over_the_api_a_streamed_restore_is_refused_naming_ssh() {
    let sim = SimNode::demo();
    let front = pvedr_testkit::ApiFront::start(&sim);
    let secret = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";
    front.add_token(
        "dr@pve!restore",
        secret,
        json!([{"path": "/", "roles": ["Administrator"], "propagate": true}]),
    );
    sim.clear_commands();
    let key = "pve1/100/vzdump-qemu-100-2024_01_15-02_00_02.vma.zst";
    let input = record(key, 100, "qemu", "vma.zst", 1000, &sha(b"x"));
    let out = front
        .bin("pve-restore", "dr@pve!restore", secret)
        .args(["--yes", "--target-vmid", "155"])
        .write_stdin(input)
        .output()
        .unwrap();
    let (rec, code) = rec_of(&out);
    assert_eq!(
        (code, rec["status"].clone()),
        (1, json!("refused")),
        "{rec}"
    );
    assert!(
        rec["error"].as_str().unwrap().contains("--host (SSH)"),
        "{rec}"
    );
    let log = std::fs::read_to_string(sim.root().join("commands.log")).unwrap_or_default();
    assert!(!log.contains("qmrestore"), "{log}");
}

/// An overwrite from an offsite copy whose sha256 fails at the end: the safety point is
/// restored, and the record says so with the way back.
#[test]
fn an_overwrite_whose_stream_fails_its_sha256_rolls_back_to_the_safety_point() {
    let s = site();
    let (good, key) = flipped_copy(&s);
    let before = s.sim.read_json("guests/100.json")["config"]["name"].clone();
    let input = record(key, 100, "qemu", "vma", good.len() as u64, &sha(&good));
    let (rec, code) = at_site(&s, &input, &["--force"]);
    assert_eq!(code, 1, "{rec}");
    assert!(
        rec["error"].as_str().unwrap().contains("--safety-storage"),
        "{rec}"
    );
    let rec = ends(
        &s,
        &input,
        &["--force", "--safety-storage", "local"],
        1,
        "rolled-back",
    );
    assert!(rec["error"].as_str().unwrap().contains("sha256"), "{rec}");
    let g = s.sim.read_json("guests/100.json");
    assert_eq!(g["config"]["name"], before, "{g}");
    assert!(
        g["restored_from"]
            .as_str()
            .unwrap()
            .starts_with("local:backup/"),
        "the safety point: {g}"
    );
}

/// A dry run reads (HEAD, the archive's head) and changes nothing; a drill streams into a
/// scratch VMID, isolates, probes and destroys it.
#[test]
fn dry_run_and_drill_work_on_an_offsite_record() {
    let s = site();
    let bytes = archive(&s.sim, "lxc", "gzip");
    let key = "pve1/101/vzdump-lxc-101-2024_01_15-02_00_02.tar.gz";
    put(&s.moto.endpoint(), key, bytes.clone());
    let input = record(key, 101, "lxc", "tar.gz", bytes.len() as u64, &sha(&bytes));
    s.sim.clear_commands();
    let rec = ends(
        &s,
        &input,
        &["--dry-run", "--target-vmid", "170"],
        0,
        "planned",
    );
    let cmd = rec["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|st| st["step"] == "restore")
        .unwrap()["command"]
        .clone();
    assert_eq!(
        cmd,
        json!("pct restore 170 - --rootfs local-lvm:1 --unprivileged 1"),
        "{rec}"
    );
    let log = std::fs::read_to_string(s.sim.root().join("commands.log")).unwrap_or_default();
    assert!(!log.contains("\"restore\""), "{log}");
    let (rec, code) = at_site(&s, &input, &["--test"]);
    assert_eq!(code, 0, "{rec}");
    let target = rec["target_vmid"].as_u64().unwrap();
    assert!(
        s.sim.read_json(&format!("guests/{target}.json")).is_null(),
        "scratch gone"
    );
    let log = std::fs::read_to_string(s.sim.root().join("commands.log")).unwrap_or_default();
    assert!(
        log.contains(&format!("\"restore\", \"{target}\", \"-\"")),
        "{log}"
    );
}

/// An encrypted copy's object size (an age file is larger than its plaintext) is asked of
/// S3 once: the head read, the check step and the stream each asked again (3 HEADs).
#[test]
fn an_encrypted_copy_is_asked_its_size_once() {
    let s = site();
    let keys = tempfile::tempdir().expect("tmp");
    let (key, public) = age_key(keys.path(), "key.txt");
    let (_, input) = put_encrypted_ct(&s, &public);
    let front = S3Front::start(&s.moto);
    let good = key.to_str().expect("utf-8");
    let args = ["--target-vmid", "160", "--age-identity", good];
    let (out, code) = restore(&s, &front.endpoint(), &input, &args);
    assert_eq!(code, 0, "{out}");
    assert_eq!(front.count(&format!("HEAD /offsite/{ENCRYPTED_CT}")), 1);
}
