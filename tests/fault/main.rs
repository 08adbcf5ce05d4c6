//! Fault suite (issue 16): faults against the real parts while the built binaries run.
//!
//! - sshd cut (master and every live session, [`Sshd::cut`]) mid-listing, mid-restore,
//!   mid-push;
//! - the S3 server stopped ([`S3Front::stop`], moto behind it keeps its data for the checks)
//!   mid `tfstate-versions restore`, mid `minio-rebuild` re-seed, mid `backup-sync push`;
//! - Terraform failing (`minio-rebuild` reprovision);
//! - a write failing (`RLIMIT_FSIZE`, so `write` returns `EFBIG`) for an export, a pulled
//!   archive and a metrics file;
//! - SIGINT and SIGTERM in a long step of each of the eight tools.
//! - pve-restore failing in each way that decides differently what happens to the guest
//!   (a table: [`failure_cases`]).
//!
//! Every case asserts: a documented exit code (man/*.1, EXIT STATUS), no guest destroyed
//! without its safety point, no state version lost, no half-written file in place and no
//! stray temporary file, and a record or stderr line that says where the run stopped.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pvedr_testkit::s3::{Moto, S3Front, Tf, s3_env, venv_bin};
use pvedr_testkit::{SimNode, Sshd, bin_path, demo_over_ssh, json_lines};
use serde_json::{Value, json};

const VM_BACKUP: &str = "local:backup/vzdump-qemu-100-2024_01_14-02_00_02.vma.zst";
const BIG: &str = "vzdump-qemu-100-2024_01_16-02_00_02.vma.zst";
const WAIT: Duration = Duration::from_secs(30);

// --- helpers -------------------------------------------------------------------------------

fn cmd(name: &str) -> Command {
    let mut c = Command::new(bin_path(name));
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// `name ARGS` with `RLIMIT_FSIZE` = `bytes` and SIGXFSZ ignored (inherited through exec), so
/// a write past the limit fails with EFBIG instead of killing the process.
fn cmd_fsize(name: &str, bytes: u64) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("trap '' XFSZ; exec prlimit --fsize=\"$0\" -- \"$@\"")
        .arg(bytes.to_string())
        .arg(bin_path(name))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

struct Run {
    code: Option<i32>,
    recs: Vec<Value>,
    stderr: String,
}

impl Run {
    fn of_kind(&self, kind: &str) -> Vec<&Value> {
        self.recs.iter().filter(|r| r["kind"] == kind).collect()
    }
}

/// A spawned tool, killed if the test fails before [`finish`] (no orphan left running).
struct Running(Option<Child>);

impl Running {
    fn id(&self) -> u32 {
        self.0.as_ref().map(Child::id).unwrap_or(0)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits for a spawned tool (killed after 60 s: a hang is a failure).
fn finish(mut running: Running) -> Run {
    let mut child = running.0.take().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out.read_to_end(&mut b);
        b
    });
    let t_err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = err.read_to_end(&mut b);
        b
    });
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the tool hung");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stdout = t_out.join().unwrap();
    let stderr = String::from_utf8_lossy(&t_err.join().unwrap()).into_owned();
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    Run {
        code: status.code(),
        recs: json_lines(&stdout),
        stderr,
    }
}

fn run(mut c: Command) -> Run {
    finish(Running(Some(c.spawn().expect("spawn"))))
}

fn spawn(mut c: Command, stdin: Option<Vec<u8>>) -> Running {
    if stdin.is_some() {
        c.stdin(Stdio::piped());
    }
    let mut child = c.spawn().expect("spawn");
    if let Some(data) = stdin {
        let mut w = child.stdin.take().unwrap();
        std::thread::spawn(move || {
            let _ = w.write_all(&data);
        });
    }
    Running(Some(child))
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < WAIT, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Running, sig: &str) {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(st.success());
}

/// Whether the simulator ran a command whose joined line contains `needle`.
/// Spawns `c`, cuts `sshd` once the node ran a command matching `at` (`(what, needle)`), and
/// waits for its end: the live session dropped too (a slow command would otherwise sleep on
/// and succeed); the run, checked against `tool`'s documented exit codes.
fn cut_when(c: Command, sim: &SimNode, sshd: &mut Sshd, at: (&str, &str), tool: &str) -> Run {
    let child = spawn(c, None);
    wait_until(at.0, || ran(sim, at.1));
    let t0 = Instant::now();
    sshd.cut();
    let r = finish(child);
    assert!(
        t0.elapsed() < Duration::from_secs(15),
        "the session was not cut"
    );
    assert_documented(tool, &r);
    r
}

/// Spawns `c`, sends `sig` once the node ran a command matching `at` (`(what, needle)`), and
/// waits for its end: the run, checked against `tool`'s documented exit codes.
fn signalled_when(c: Command, sim: &SimNode, at: (&str, &str), sig: &str, tool: &str) -> Run {
    let child = spawn(c, None);
    wait_until(at.0, || ran(sim, at.1));
    signal(&child, sig);
    let r = finish(child);
    assert_documented(tool, &r);
    r
}

fn ran(sim: &SimNode, needle: &str) -> bool {
    sim.commands().iter().any(|c| {
        let argv: Vec<&str> = c["argv"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        format!("{} {}", c["cmd"].as_str().unwrap_or(""), argv.join(" ")).contains(needle)
    })
}

/// Documented exit codes (man/*.1 EXIT STATUS).
fn assert_documented(tool: &str, r: &Run) {
    let codes: &[i32] = match tool {
        // A Nagios plugin: an interrupted check is UNKNOWN (3).
        "backup-check" => &[0, 1, 2, 3],
        "minio-rebuild" => &[0, 1, 2, 130],
        _ => &[0, 1, 2, 3, 130],
    };
    assert!(
        r.code.is_some_and(|c| codes.contains(&c)),
        "{tool}: exit {:?} is not documented ({codes:?}); stderr: {}",
        r.code,
        r.stderr
    );
}

/// The run says it stopped, and why, on stderr.
fn assert_says(r: &Run, words: &[&str]) {
    for w in words {
        assert!(r.stderr.contains(w), "stderr lacks {w:?}: {}", r.stderr);
    }
}

/// Files in `dir` (names → bytes), recursively by relative path.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                m.insert(rel, std::fs::read(&p).unwrap_or_default());
            }
        }
    }
    m
}

/// No temporary or partial file left in `dir`.
fn assert_no_stray(dir: &Path) {
    for name in snapshot(dir).keys() {
        let base = name.rsplit('/').next().unwrap_or(name);
        assert!(
            !(base.ends_with(".tmp") || base.ends_with(".part") || base.contains(".partial")),
            "stray temporary file {name} in {}",
            dir.display()
        );
    }
}

/// A guest is either there or has a safety point archive on the storage the record names.
fn assert_guest_or_safety_point(sim: &SimNode, vmid: u64, rec: &Value) {
    if sim.root().join(format!("guests/{vmid}.json")).exists() {
        return;
    }
    let safety = rec["safety_point"]["volid"]
        .as_str()
        .unwrap_or_else(|| panic!("guest {vmid} is gone and there is no safety point: {rec}"));
    let file = safety.rsplit('/').next().unwrap();
    assert!(
        sim.dump_dir("local").join(file).exists(),
        "guest {vmid} is gone and its safety point {safety} is not on the storage"
    );
}

/// The guests of the simulated cluster (their config files).
fn guests(sim: &SimNode) -> Vec<String> {
    let mut g: Vec<String> = std::fs::read_dir(sim.root().join("guests"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    g.sort();
    g
}

/// Deterministic bytes that do not compress (xorshift).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x & 0xff) as u8
        })
        .collect()
}

fn backup_record(name: &str, size: u64) -> String {
    format!(
        "{{\"kind\":\"backup\",\"node\":\"pve1\",\"storage\":\"local\",\"volid\":\"local:backup/{name}\",\"vmid\":100,\"subtype\":\"qemu\",\"ctime\":1705370402,\"time\":\"2024-01-16T02:00:02Z\",\"size\":{size},\"format\":\"vma.zst\"}}\n"
    )
}

/// S3 keys of a bucket.
fn keys(moto: &Moto, bucket: &str) -> Vec<String> {
    let out = moto.boto(
        bucket,
        "p = s3.get_paginator('list_objects_v2')\nprint(json.dumps([o['Key'] for pg in p.paginate(Bucket=B) for o in pg.get('Contents', [])]))",
    );
    serde_json::from_str(&out).unwrap()
}

fn pending_uploads(moto: &Moto, bucket: &str) -> usize {
    moto.boto(
        bucket,
        "print(len(s3.list_multipart_uploads(Bucket=B).get('Uploads', [])))",
    )
    .parse()
    .unwrap()
}

/// No archive object without its manifest (the manifest is written last).
fn assert_no_copy_without_manifest(moto: &Moto, bucket: &str) {
    let k = keys(moto, bucket);
    for key in &k {
        if pvedr::archive::parse(key.rsplit('/').next().unwrap_or("")).is_some() {
            assert!(
                k.contains(&format!("{key}.manifest.json")),
                "{key} is in S3 without its manifest: {k:?}"
            );
        }
    }
}

fn s3_tool(name: &str, endpoint: &str) -> Command {
    let mut c = cmd(name);
    c.envs(s3_env()).env("AWS_ENDPOINT_URL", endpoint);
    c
}

fn s3_tool_fsize(name: &str, endpoint: &str, bytes: u64) -> Command {
    let mut c = cmd_fsize(name, bytes);
    c.envs(s3_env()).env("AWS_ENDPOINT_URL", endpoint);
    c
}

/// `backup-sync push --yes --to s3://offsite/pve ARGS` against `endpoint`.
fn push(endpoint: &str, args: &[&str]) -> Command {
    let mut c = s3_tool("backup-sync", endpoint);
    c.args(["push", "--yes", "--to", "s3://offsite/pve"])
        .args(args);
    c
}

/// A push that failed: a documented code, 1 or 3, its one step failed.
fn assert_push_failed(r: &Run) {
    assert_documented("backup-sync", r);
    assert!(matches!(r.code, Some(1 | 3)), "{:?} {}", r.code, r.stderr);
    let steps = r.of_kind("step");
    assert_eq!(steps.len(), 1, "{:?}", r.recs);
    assert_eq!(steps[0]["status"], "failed");
}

/// moto with an `offsite` bucket, and a directory holding [`BIG`]: `size` bytes of noise.
fn offsite_and_big(size: usize) -> (Moto, tempfile::TempDir) {
    let moto = Moto::start();
    moto.boto("offsite", "s3.create_bucket(Bucket=B)");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(BIG), noise(size, 3)).unwrap();
    (moto, dir)
}

/// Once `child` sends the PUT of `bucket`'s state (held by `front`), S3 stops: the run that
/// ends, with a documented code and 1.
fn stopped_at_state_put(front: &S3Front, child: Running, bucket: &str, tool: &str) -> Run {
    let put = format!("PUT /{bucket}/terraform.tfstate");
    wait_until(&put, || {
        front.seen(&format!("{put} ")) || front.seen(&format!("{put}?"))
    });
    front.stop();
    let r = finish(child);
    assert_documented(tool, &r);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    r
}

/// `tfstate-versions BUCKET_ARGS export --to DIR` on `moto`, which must succeed.
fn export_ok(moto: &Moto, bucket_args: &[&str], dir: &Path) {
    let mut c = s3_tool("tfstate-versions", &moto.endpoint());
    c.args(bucket_args).args(["export", "--to"]).arg(dir);
    let r = run(c);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
}

/// A Terraform root whose module `minio` is in `./minio`.
fn minio_module_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = "module \"minio\" {\n  source = \"./minio\"\n}\n";
    std::fs::write(dir.path().join("main.tf"), root).unwrap();
    dir
}

/// A versioned bucket with a state of two versions (serials 1 and 2).
fn two_versions(moto: &Moto, bucket: &str) -> Tf {
    let tf = Tf::initialised(moto, bucket);
    tf.apply("one");
    tf.apply("two");
    tf
}

fn version_id_of_serial(moto: &Moto, bucket: &str, serial: u64) -> String {
    let r = run({
        let mut c = s3_tool("tfstate-versions", &moto.endpoint());
        c.args(["--bucket", bucket, "list", "--inspect"]);
        c
    });
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    r.recs
        .iter()
        .find(|v| v["serial"] == serial)
        .and_then(|v| v["version_id"].as_str().map(String::from))
        .unwrap_or_else(|| panic!("no serial {serial}: {:?}", r.recs))
}

/// Puts a large archive named [`BIG`] into the sim's `local` dump directory.
fn big_archive(sim: &SimNode, size: usize) -> Vec<u8> {
    let bytes = noise(size, 7);
    std::fs::write(sim.dump_dir("local").join(BIG), &bytes).unwrap();
    bytes
}

fn listing_of(sshd: &Sshd, vmid: &str) -> Vec<u8> {
    let out = sshd
        .bin("pve-ls-backups")
        .args(["--storage", "local", "--vmid", vmid])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn only_big(listing: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(listing)
        .lines()
        .filter(|l| l.contains(BIG))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .into_bytes()
}

// --- 1. sshd cut ---------------------------------------------------------------------------

#[test]
fn sshd_cut_mid_listing() {
    let sim = SimNode::demo();
    let mut sshd = Sshd::start(&sim);
    sim.set_faults(json!([{"match": "storage/nas/content", "sleep": 20}]));
    let before = guests(&sim);
    let mut c = cmd("pve-ls-backups");
    c.args(sshd.args()).arg("--all-nodes");
    let at = ("the nas listing runs", "storage/nas/content");
    let r = cut_when(c, &sim, &mut sshd, at, "pve-ls-backups");
    assert!(matches!(r.code, Some(1 | 3)), "{:?} {}", r.code, r.stderr);
    // Where it stopped: the storage whose listing was cut.
    assert_says(&r, &["pve-ls-backups:", "nas"]);
    assert!(sim.mutations().is_empty());
    assert_eq!(guests(&sim), before);
}

/// Overwrite of guest 100, sshd cut while `needle` runs (a slow command).
fn restore_cut_at(needle: &str) -> (SimNode, Run) {
    let sim = SimNode::demo();
    let mut sshd = Sshd::start(&sim);
    sim.set_faults(json!([{"match": needle, "sleep": 20}]));
    let mut c = cmd("pve-restore");
    c.args(sshd.args())
        .args(["--volid", VM_BACKUP, "--force", "--yes"]);
    let r = cut_when(c, &sim, &mut sshd, (needle, needle), "pve-restore");
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    (sim, r)
}

fn restore_record(r: &Run) -> Value {
    r.of_kind("restore")
        .first()
        .map(|v| (*v).clone())
        .unwrap_or_else(|| panic!("no restore record: {:?} {}", r.recs, r.stderr))
}

fn step_status(rec: &Value, name: &str) -> String {
    rec["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["step"] == name))
        .and_then(|s| s["status"].as_str().map(String::from))
        .unwrap_or_default()
}

#[test]
fn sshd_cut_mid_restore_during_qmrestore() {
    let (sim, r) = restore_cut_at("qmrestore");
    let rec = restore_record(&r);
    assert_eq!(step_status(&rec, "safety-point"), "changed", "{rec}");
    let safety = rec["safety_point"]["volid"].as_str().expect("safety point");
    assert!(
        sim.dump_dir("local")
            .join(safety.rsplit('/').next().unwrap())
            .exists(),
        "the safety point is on the storage"
    );
    assert_guest_or_safety_point(&sim, 100, &rec);
    // Where it stopped and the pasteable way back.
    assert_eq!(rec["way_back"], format!("qmrestore {safety} 100 --force 1"));
    assert_says(&r, &["way back: qmrestore"]);
    assert_eq!(r.of_kind("summary").len(), 1);
}

#[test]
fn sshd_cut_mid_restore_during_the_safety_point() {
    let (sim, r) = restore_cut_at("vzdump 100");
    let rec = restore_record(&r);
    assert_eq!(step_status(&rec, "restore"), "skipped", "{rec}");
    assert!(!sim.mutations().iter().any(|m| m.starts_with("qmrestore")));
    assert!(sim.root().join("guests/100.json").exists());
    assert_eq!(rec["way_back"], "qm start 100");
    assert_says(&r, &["way back: qm start 100"]);
}

#[test]
fn sshd_cut_mid_push() {
    let sim = SimNode::demo();
    let mut sshd = Sshd::start(&sim);
    let moto = Moto::start();
    moto.boto("offsite", "s3.create_bucket(Bucket=B)");
    // Big enough that the cut always falls inside the upload at --bwlimit, even on a
    // loaded machine where noticing the upload takes seconds.
    big_archive(&sim, 32 << 20);
    let input = only_big(&listing_of(&sshd, "100"));
    assert!(!input.is_empty());
    let mut c = push(&moto.endpoint(), &["--part-size", "5M", "--bwlimit", "2M"]);
    c.args(sshd.args());
    let child = spawn(c, Some(input));
    wait_until("the upload is under way", || {
        pending_uploads(&moto, "offsite") == 1
    });
    sshd.cut();
    let r = finish(child);
    assert_push_failed(&r);
    assert_eq!(r.of_kind("summary").len(), 1);
    assert_no_copy_without_manifest(&moto, "offsite");
    assert_eq!(
        pending_uploads(&moto, "offsite"),
        0,
        "the upload was aborted"
    );
    assert_says(&r, &[BIG]);
}

// --- 2. S3 stopped -------------------------------------------------------------------------

#[test]
fn moto_stopped_mid_tfstate_restore() {
    let moto = Moto::start();
    let _tf = two_versions(&moto, "tfstate-stop");
    let first = version_id_of_serial(&moto, "tfstate-stop", 1);
    let before = moto.version_count("tfstate-stop", "terraform.tfstate");
    let front = S3Front::start(&moto);
    front.hold("PUT /tfstate-stop/terraform.tfstate", ".tflock");
    let mut c = s3_tool("tfstate-versions", &front.endpoint());
    c.args(["--bucket", "tfstate-stop", "restore", &first, "--yes"]);
    let child = spawn(c, None);
    let r = stopped_at_state_put(&front, child, "tfstate-stop", "tfstate-versions");
    let after = moto.version_count("tfstate-stop", "terraform.tfstate");
    assert!(
        after >= before,
        "a state version was lost: {before} -> {after}"
    );
    // The lock could not be released: the run says so and how to release it.
    assert_says(&r, &["tfstate-versions:"]);
    let steps = r.of_kind("step");
    assert!(
        steps.iter().any(|s| s["status"] == "failed"),
        "a failed step says where it stopped: {:?}",
        r.recs
    );
    let locks = keys(&moto, "tfstate-stop")
        .into_iter()
        .filter(|k| k.ends_with(".tflock"))
        .count();
    if locks > 0 {
        // S3 stopped before the release: the pasteable command that removes it.
        assert_says(
            &r,
            &[
                "could not release the lock",
                "aws s3api delete-object",
                "--key terraform.tfstate.tflock",
            ],
        );
    }
}

#[test]
fn moto_stopped_mid_reseed() {
    let moto = Moto::start();
    let tf = Tf::initialised(&moto, "tfstate-prod");
    tf.apply("one");
    let export = tempfile::tempdir().unwrap();
    export_ok(&moto, &["--env", "prod"], export.path());
    let exported = snapshot(export.path());
    // The state is lost (deleted with all its versions): the re-seed must put it back.
    moto.boto(
        "tfstate-prod",
        "for v in s3.list_object_versions(Bucket=B).get('Versions', []):\n    s3.delete_object(Bucket=B, Key=v['Key'], VersionId=v['VersionId'])",
    );
    let front = S3Front::start(&moto);
    front.hold("PUT /tfstate-prod/terraform.tfstate", ".tflock");
    let mut c = s3_tool("minio-rebuild", &front.endpoint());
    c.args([
        "--endpoint",
        &front.endpoint(),
        "--env",
        "prod",
        "--wait",
        "5s",
        "--from",
    ])
    .arg(export.path())
    .arg("--yes");
    let child = spawn(c, None);
    let r = stopped_at_state_put(&front, child, "tfstate-prod", "minio-rebuild");
    assert_eq!(snapshot(export.path()), exported, "the export is untouched");
    // Nothing reached S3 (the PUT was held when it stopped), and nothing was removed.
    assert_eq!(moto.version_count("tfstate-prod", "terraform.tfstate"), 0);
    assert!(
        r.of_kind("step").iter().any(|s| s["status"] == "failed"),
        "{:?}",
        r.recs
    );
    assert_says(&r, &["minio-rebuild:"]);
}

#[test]
fn moto_stopped_mid_push() {
    let (moto, dir) = offsite_and_big(12 << 20);
    let front = S3Front::start(&moto);
    front.hold("partNumber=2", "");
    let mut c = push(&front.endpoint(), &["--part-size", "5M", "--dir"]);
    c.arg(dir.path());
    let child = spawn(c, Some(backup_record(BIG, 12 << 20).into_bytes()));
    wait_until("the second part", || front.seen("partNumber=2"));
    front.stop();
    let r = finish(child);
    assert_push_failed(&r);
    assert_no_copy_without_manifest(&moto, "offsite");
    assert_says(&r, &[BIG]);
}

// --- 3. Terraform failing ------------------------------------------------------------------

/// A closed port on loopback: a store that is down.
fn dead_endpoint() -> String {
    format!(
        "http://127.0.0.1:{}",
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    )
}

/// minio-rebuild reprovisioning a store that is down with a Terraform that fails: one
/// failed step, `reprovision`, and nothing after it.
fn reprovision_fails(dir: &std::path::Path, terraform: &std::path::Path) -> Run {
    let dead = dead_endpoint();
    let mut c = s3_tool("minio-rebuild", &dead);
    c.args(["--endpoint", &dead, "--env", "prod", "--wait", "2s"])
        .arg("--terraform-dir")
        .arg(dir)
        .arg("--terraform-bin")
        .arg(terraform)
        .arg("--yes");
    let r = run(c);
    assert_documented("minio-rebuild", &r);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    let steps = r.of_kind("step");
    let failed: Vec<_> = steps.iter().filter(|s| s["status"] == "failed").collect();
    assert_eq!(failed.len(), 1, "{:?}", r.recs);
    assert_eq!(failed[0]["step"], "reprovision", "{:?}", r.recs);
    assert!(!steps.iter().any(|s| s["step"] == "buckets"), "{steps:?}");
    r
}

#[test]
fn terraform_failing_in_reprovision() {
    let dir = minio_module_root();
    let fake = dir.path().join("terraform-broken");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho \"Error: Failed to query available provider packages (simulated)\" >&2\nexit 1\n",
    )
    .unwrap();
    let _ = Command::new("chmod").arg("+x").arg(&fake).status();
    let r = reprovision_fails(dir.path(), &fake);
    let failed = r
        .of_kind("step")
        .into_iter()
        .find(|s| s["status"] == "failed");
    let message = failed
        .as_ref()
        .and_then(|s| s["message"].as_str())
        .unwrap_or("");
    assert!(
        message.contains("simulated") || r.stderr.contains("simulated"),
        "Terraform's error is shown: {:?} {}",
        r.recs,
        r.stderr
    );
}

#[test]
fn terraform_broken_module_in_reprovision() {
    let dir = minio_module_root();
    std::fs::create_dir_all(dir.path().join("minio")).unwrap();
    std::fs::write(
        dir.path().join("minio/main.tf"),
        "resource \"terraform_data\" \"x\" {\n  input = \n}\n",
    )
    .unwrap();
    reprovision_fails(dir.path(), &venv_bin("terraform", "PVEDR_TERRAFORM"));
}

// --- 4. A write failing (RLIMIT_FSIZE) -----------------------------------------------------

#[test]
fn write_failure_in_tfstate_export() {
    let moto = Moto::start();
    let tf = two_versions(&moto, "tfstate-full");
    let dir = tempfile::tempdir().unwrap();
    export_ok(&moto, &["--bucket", "tfstate-full"], dir.path());
    let old = snapshot(dir.path());
    assert!(!old.is_empty());
    tf.apply(&"three".repeat(200));
    let versions = moto.version_count("tfstate-full", "terraform.tfstate");
    let mut c = s3_tool_fsize("tfstate-versions", &moto.endpoint(), 300);
    c.args(["--bucket", "tfstate-full", "export", "--to"])
        .arg(dir.path());
    let r = run(c);
    assert_documented("tfstate-versions", &r);
    assert!(matches!(r.code, Some(1 | 3)), "{:?} {}", r.code, r.stderr);
    assert_eq!(snapshot(dir.path()), old, "the old export stays whole");
    assert_eq!(
        moto.version_count("tfstate-full", "terraform.tfstate"),
        versions
    );
    assert_no_stray(dir.path());
    assert_says(&r, &["tfstate-versions:"]);
    assert_says(&r, &["File too large"]);
}

#[test]
fn write_failure_in_backup_sync_pull() {
    let (moto, src) = offsite_and_big(256 << 10);
    let mut c = push(&moto.endpoint(), &["--dir"]);
    c.arg(src.path());
    let r = finish(spawn(c, Some(backup_record(BIG, 256 << 10).into_bytes())));
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let to = tempfile::tempdir().unwrap();
    // An older copy of the archive is already there: it must stay as it was.
    std::fs::write(to.path().join(BIG), b"the old file").unwrap();
    let old = snapshot(to.path());
    let mut c = s3_tool_fsize("backup-sync", &moto.endpoint(), 64 << 10);
    c.args([
        "pull",
        "--yes",
        &format!("offsite:backup/pve/pve1/100/{BIG}"),
        "--force",
        "--to-dir",
    ])
    .arg(to.path());
    let r = run(c);
    assert_documented("backup-sync", &r);
    assert!(matches!(r.code, Some(1 | 3)), "{:?} {}", r.code, r.stderr);
    assert_eq!(snapshot(to.path()), old, "no half-written archive");
    assert_no_stray(to.path());
    assert_says(&r, &[BIG, "File too large"]);
    assert_eq!(r.of_kind("summary").len(), 1);
}

#[test]
fn write_failure_in_backup_check_metrics_file() {
    let sim = SimNode::demo();
    let dir = tempfile::tempdir().unwrap();
    let prom = dir.path().join("pvedr.prom");
    std::fs::write(&prom, "# the previous metrics\n").unwrap();
    let old = snapshot(dir.path());
    let mut c = cmd_fsize("backup-check", 200);
    c.args(sim.dir_args("local"))
        .args(["--timezone", "UTC", "--prom"])
        .arg(&prom);
    let r = run(c);
    assert_documented("backup-check", &r);
    assert_eq!(r.code, Some(3), "UNKNOWN: {}", r.stderr);
    assert_eq!(
        snapshot(dir.path()),
        old,
        "the old metrics file stays whole"
    );
    assert_no_stray(dir.path());
    assert_says(&r, &["backup-check:", "pvedr.prom", "File too large"]);
}

// --- 5. SIGINT and SIGTERM in a long step of each tool -------------------------------------

/// pve-ls-backups: a slow storage listing.
fn interrupt_listing(sig: &str) {
    let (sim, sshd) = demo_over_ssh();
    sim.set_faults(json!([{"match": "storage/nas/content", "sleep": 20}]));
    let mut c = cmd("pve-ls-backups");
    c.args(sshd.args()).arg("--all-nodes");
    let at = ("the nas listing", "storage/nas/content");
    let r = signalled_when(c, &sim, at, sig, "pve-ls-backups");
    assert_eq!(r.code, Some(130), "{}", r.stderr);
    assert_says(&r, &["pve-ls-backups:", "interrupted"]);
}

/// backup-check: a slow storage listing on the node.
fn interrupt_check(sig: &str) {
    let (sim, sshd) = demo_over_ssh();
    sim.set_faults(json!([{"match": "storage/nas/content", "sleep": 20}]));
    let dir = tempfile::tempdir().unwrap();
    let prom = dir.path().join("pvedr.prom");
    let mut c = cmd("backup-check");
    c.args(sshd.args())
        .arg("--all-nodes")
        .arg("--prom")
        .arg(&prom);
    let at = ("the nas listing", "storage/nas/content");
    let r = signalled_when(c, &sim, at, sig, "backup-check");
    assert_eq!(r.code, Some(3), "UNKNOWN: {}", r.stderr);
    assert_says(&r, &["backup-check:", "interrupted"]);
    assert_no_stray(dir.path());
}

/// pve-restore: the signal lands while qmrestore runs; the step finishes, then the run
/// stops at the next safe point.
fn interrupt_restore(sig: &str) {
    let (sim, sshd) = demo_over_ssh();
    // Only the restore is slow, not the rollback's qmrestore after it.
    sim.set_faults(json!([{"match": "qmrestore", "sleep": 2, "times": 1}]));
    let mut c = cmd("pve-restore");
    c.args(sshd.args())
        .args(["--volid", VM_BACKUP, "--force", "--yes"]);
    let r = signalled_when(c, &sim, ("qmrestore", "qmrestore"), sig, "pve-restore");
    assert_eq!(r.code, Some(130), "{}", r.stderr);
    let rec = restore_record(&r);
    assert_eq!(rec["status"], "interrupted", "{rec}");
    assert_guest_or_safety_point(&sim, 100, &rec);
    assert!(
        sim.root().join("guests/100.json").exists(),
        "guest 100 is there"
    );
    // The restore that ran was finished, then the overwritten guest put back from the
    // safety point (man pve-restore, 130); nothing is left to undo, or the way back is given.
    if step_status(&rec, "rollback") == "changed" {
        assert_says(&r, &["interrupted"]);
        assert!(sim.root().join("guests/100.json").exists());
        assert_ne!(
            sim.read_json("guests/100.json")["restored_from"],
            VM_BACKUP,
            "put back as it was"
        );
        assert_eq!(
            sim.read_json("guests/100.json")["status"],
            "running",
            "the guest runs again, as before"
        );
    } else {
        assert!(rec["way_back"].is_string(), "a way back: {rec}");
        assert_says(&r, &["way back: "]);
    }
    assert_eq!(r.of_kind("summary").len(), 1);
}

/// What a failure of one kind must leave (pve-restore `restore.rs` `after_failure`).
struct FailureCase {
    kind: &'static str,
    /// `faults.json` of the case.
    faults: Value,
    args: &'static [&'static str],
    /// SIGINT once this command runs.
    interrupt_at: Option<&'static str>,
    then: Outcome,
}

/// What a failure kind must end in: the record's status and rollback step, guest 100's
/// `status`, and whether it came back from the safety point.
struct Outcome {
    status: &'static str,
    rollback_step: &'static str,
    guest_status: &'static str,
    from_safety_point: bool,
}

/// The guest never overwritten, or started again as it was: running, no rollback.
const LEFT_RUNNING: Outcome = Outcome {
    status: "failed",
    rollback_step: "skipped",
    guest_status: "running",
    from_safety_point: false,
};

/// Proxmox emptied the guest: the safety point brought it back, running.
const ROLLED_BACK: Outcome = Outcome {
    status: "rolled-back",
    rollback_step: "changed",
    guest_status: "running",
    from_safety_point: true,
};

/// Emptied or unknown, never started as it is.
const LEFT_STOPPED: Outcome = Outcome {
    status: "failed",
    rollback_step: "skipped",
    guest_status: "stopped",
    from_safety_point: false,
};

/// pve-restore over guest 100 (running), one case per failure kind: each fails when that
/// kind's decision (roll back, start again, leave) is flipped.
fn failure_cases() -> Vec<FailureCase> {
    let data_fault = || {
        json!([{"match": "qmrestore-data 100", "exit": 255,
                "stderr": "command 'vma extract' failed: exit code 133", "times": 1}])
    };
    vec![
        FailureCase {
            // Nothing overwritten: started again, not rolled back.
            kind: "before-overwrite (the safety point failed)",
            faults: json!([{"match": "vzdump 100", "exit": 255, "stderr": "no space left on device"}]),
            args: &[],
            interrupt_at: None,
            then: LEFT_RUNNING,
        },
        FailureCase {
            kind: "interrupted before the restore",
            faults: json!([{"match": "vzdump 100", "sleep": 2, "times": 1}]),
            args: &[],
            interrupt_at: Some("vzdump 100"),
            then: Outcome {
                status: "interrupted",
                rollback_step: "skipped",
                guest_status: "running",
                from_safety_point: false,
            },
        },
        FailureCase {
            // Proxmox has emptied the guest: only the safety point brings it back.
            kind: "the restore task failed",
            faults: data_fault(),
            args: &[],
            interrupt_at: None,
            then: ROLLED_BACK,
        },
        FailureCase {
            // --no-rollback: the emptied guest is never started as it is.
            kind: "the restore task failed, --no-rollback",
            faults: data_fault(),
            args: &["--no-rollback"],
            interrupt_at: None,
            then: LEFT_STOPPED,
        },
        FailureCase {
            kind: "after the restore (a probe failed)",
            faults: json!([{"match": "guest cmd 100 ping", "exit": 255,
                            "stderr": "QEMU guest agent is not running"}]),
            args: &["--probe", "agent", "--probe-retries", "1"],
            interrupt_at: None,
            then: ROLLED_BACK,
        },
        FailureCase {
            // The node's state is unknown: no blind rollback, nothing started.
            kind: "the connection lost during the restore",
            faults: json!([{"match": "qmrestore", "action": "disconnect", "stderr": "", "exit": 255}]),
            args: &[],
            interrupt_at: None,
            then: LEFT_STOPPED,
        },
    ]
}

#[test]
fn each_restore_failure_kind_decides_the_rollback() {
    // Every case runs, then the kinds that went wrong are named together.
    let wrong: Vec<&str> = failure_cases()
        .into_iter()
        .filter_map(|c| {
            let kind = c.kind;
            std::panic::catch_unwind(move || failure_case(c))
                .is_err()
                .then_some(kind)
        })
        .collect();
    assert!(wrong.is_empty(), "wrong decision for: {wrong:?}");
}

fn failure_case(c: FailureCase) {
    let (sim, sshd) = demo_over_ssh();
    sim.set_faults(c.faults);
    let mut cmd = cmd("pve-restore");
    cmd.args(sshd.args())
        .args(["--volid", VM_BACKUP, "--force", "--yes"])
        .args(c.args);
    let child = spawn(cmd, None);
    if let Some(at) = c.interrupt_at {
        wait_until(at, || ran(&sim, at));
        signal(&child, "INT");
    }
    let r = finish(child);
    assert_documented("pve-restore", &r);
    let rec = restore_record(&r);
    let kind = c.kind;
    assert_eq!(rec["status"], c.then.status, "{kind}: {rec}");
    assert_eq!(
        step_status(&rec, "rollback"),
        c.then.rollback_step,
        "{kind}: {rec}"
    );
    let g = sim.read_json("guests/100.json");
    assert_eq!(g["status"], c.then.guest_status, "{kind}: {g}");
    let safety = rec["safety_point"]["volid"].clone();
    assert_eq!(
        !safety.is_null() && g["restored_from"] == safety,
        c.then.from_safety_point,
        "{kind}: {g} {rec}"
    );
    assert_guest_or_safety_point(&sim, 100, &rec);
}

/// backup-prune --apply: a slow deletion.
fn interrupt_prune(sig: &str) {
    let (sim, sshd) = demo_over_ssh();
    let listing = listing_of(&sshd, "100");
    let before = guests(&sim);
    sim.set_faults(json!([{"match": "pvesh delete", "sleep": 2}]));
    let mut c = cmd("backup-prune");
    c.args(["--keep-daily", "3", "--timezone", "UTC", "--apply", "--yes"])
        .args(sshd.args());
    let child = spawn(c, Some(listing));
    wait_until("a deletion", || ran(&sim, "pvesh delete"));
    signal(&child, sig);
    let r = finish(child);
    assert_documented("backup-prune", &r);
    assert_eq!(r.code, Some(130), "{}", r.stderr);
    let deletes = sim
        .mutations()
        .iter()
        .filter(|m| m.starts_with("pvesh delete"))
        .count();
    assert_eq!(
        deletes, 1,
        "the running deletion finished, no other started"
    );
    assert_eq!(guests(&sim), before);
    assert!(!r.of_kind("step").is_empty(), "{:?}", r.recs);
    assert_says(&r, &["interrupted"]);
    // The first signal is answered at once (interrupt::set_answer's general answer).
    assert_says(
        &r,
        &["backup-prune: interrupt: stopping at the next safe point"],
    );
}

/// backup-sync push: a slow upload (S3 holds the second part).
fn interrupt_push(sig: &str) {
    let (moto, dir) = offsite_and_big(12 << 20);
    let slow = ["--part-size", "5M", "--bwlimit", "4M", "--dir"];
    let mut c = push(&moto.endpoint(), &slow);
    c.arg(dir.path());
    let child = spawn(c, Some(backup_record(BIG, 12 << 20).into_bytes()));
    wait_until("the upload", || pending_uploads(&moto, "offsite") == 1);
    signal(&child, sig);
    let r = finish(child);
    assert_documented("backup-sync", &r);
    assert_eq!(r.code, Some(130), "{}", r.stderr);
    assert_eq!(r.of_kind("summary")[0]["exit_code"], 130);
    assert_no_copy_without_manifest(&moto, "offsite");
    assert_eq!(pending_uploads(&moto, "offsite"), 0);
}

/// backup-sync push: S3 accepts the part and never answers (its timeouts an hour), then
/// SIGINT: the run does not wait the hour out; the upload is aborted, exit 130.
#[test]
fn sigint_push_with_s3_not_answering() {
    let (moto, dir) = offsite_and_big(64 << 10);
    let front = S3Front::start(&moto);
    front.hold("partNumber=1", "");
    let mut c = push(&front.endpoint(), &["--dir"]);
    c.env("PVEDR_S3_READ_TIMEOUT", "1h")
        .env("PVEDR_S3_TIMEOUT", "1h")
        .arg(dir.path());
    let child = spawn(c, Some(backup_record(BIG, 64 << 10).into_bytes()));
    wait_until("the part", || front.seen("partNumber=1"));
    signal(&child, "INT");
    let r = finish(child);
    assert_documented("backup-sync", &r);
    assert_eq!(r.code, Some(130), "{}", r.stderr);
    assert!(front.seen("DELETE /offsite/pve/"), "aborted: {}", r.stderr);
    assert_eq!(pending_uploads(&moto, "offsite"), 0);
    assert_no_copy_without_manifest(&moto, "offsite");
}

/// pve-snapshot create: a slow `qm snapshot`.
fn interrupt_snapshot(sig: &str) {
    let (sim, sshd) = demo_over_ssh();
    let before = guests(&sim);
    sim.set_faults(json!([{"match": "qm snapshot 100", "sleep": 2}]));
    let mut c = cmd("pve-snapshot");
    c.arg("create")
        .args(sshd.args())
        .args(["--yes", "--vmid", "100", "--vmid", "101"]);
    let at = ("qm snapshot", "qm snapshot 100");
    let r = signalled_when(c, &sim, at, sig, "pve-snapshot");
    assert_eq!(r.code, Some(130), "{}", r.stderr);
    let snaps = r.of_kind("snapshot");
    assert!(
        snaps
            .iter()
            .any(|s| s["vmid"] == 100 && s["way_back"].is_string()),
        "the finished snapshot's record and its way back: {:?}",
        r.recs
    );
    assert!(!ran(&sim, "snapshot 101"), "nothing further started");
    assert_eq!(guests(&sim), before);
}

/// tfstate-versions export: S3 is slow to answer the state's GET.
fn interrupt_export(sig: &str) {
    let moto = Moto::start();
    let _tf = two_versions(&moto, "tfstate-int");
    let dir = tempfile::tempdir().unwrap();
    let versions = moto.version_count("tfstate-int", "terraform.tfstate");
    let front = S3Front::start(&moto);
    front.hold("GET /tfstate-int/terraform.tfstate", "");
    let mut c = s3_tool("tfstate-versions", &front.endpoint());
    c.args(["--bucket", "tfstate-int", "export", "--to"])
        .arg(dir.path());
    let child = spawn(c, None);
    wait_until("the state GET", || {
        front.seen("GET /tfstate-int/terraform.tfstate")
    });
    signal(&child, sig);
    let r = finish(child);
    assert_documented("tfstate-versions", &r);
    assert_eq!(r.code, Some(130), "{}", r.stderr);
    assert_no_stray(dir.path());
    assert_says(&r, &["tfstate-versions:", "interrupted"]);
    assert_eq!(
        moto.version_count("tfstate-int", "terraform.tfstate"),
        versions
    );
}

/// minio-rebuild: waiting for an unreachable store to become healthy.
fn interrupt_rebuild(sig: &str) {
    let dead = dead_endpoint();
    let mut c = s3_tool("minio-rebuild", &dead);
    c.args([
        "--endpoint",
        &dead,
        "--env",
        "prod",
        "--wait",
        "60s",
        "--yes",
    ]);
    let t0 = Instant::now();
    let child = spawn(c, None);
    std::thread::sleep(Duration::from_millis(500));
    signal(&child, sig);
    let r = finish(child);
    assert!(t0.elapsed() < Duration::from_secs(20), "stopped promptly");
    assert_documented("minio-rebuild", &r);
    assert_eq!(r.code, Some(130), "{}", r.stderr);
    assert!(!r.of_kind("step").is_empty(), "the records were written");
}

/// pve-restore --snapshot: the signal lands during the safety point's vzdump; the vzdump is
/// finished, the rollback is not started, and the record says so.
fn interrupt_snapshot_rollback(sig: &str) {
    let (sim, sshd) = demo_over_ssh();
    sim.set_faults(json!([{"match": "vzdump 100", "sleep": 2, "times": 1}]));
    let mut c = cmd("pve-restore");
    c.args(sshd.args())
        .args(pvedr_testkit::DEMO_ROLLBACK)
        .args(["--safety-storage", "local"]);
    let at = ("the safety point's vzdump", "vzdump 100");
    let r = signalled_when(c, &sim, at, sig, "pve-restore");
    assert_eq!(r.code, Some(130), "{}", r.stderr);
    let rec = restore_record(&r);
    assert_eq!(rec["status"], "interrupted", "{rec}");
    assert!(
        !sim.mutations().iter().any(|m| m.starts_with("qm rollback")),
        "no rollback was started: {:?}",
        sim.mutations()
    );
    assert!(
        sim.read_json("guests/100.json")["rolled_back_to"].is_null(),
        "the guest is as it was"
    );
    assert_says(&r, &["pve-restore:", "interrupted"]);
}

macro_rules! signal_tests {
    ($($int:ident, $term:ident => $f:ident;)*) => {$(
        #[test]
        fn $int() {
            $f("INT");
        }
        #[test]
        fn $term() {
            $f("TERM");
        }
    )*};
}

signal_tests! {
    sigint_pve_ls_backups, sigterm_pve_ls_backups => interrupt_listing;
    sigint_backup_check, sigterm_backup_check => interrupt_check;
    sigint_pve_restore_during_qmrestore, sigterm_pve_restore_during_qmrestore => interrupt_restore;
    sigint_pve_restore_snapshot_rollback, sigterm_pve_restore_snapshot_rollback => interrupt_snapshot_rollback;
    sigint_backup_prune_apply, sigterm_backup_prune_apply => interrupt_prune;
    sigint_backup_sync_push, sigterm_backup_sync_push => interrupt_push;
    sigint_pve_snapshot_create, sigterm_pve_snapshot_create => interrupt_snapshot;
    sigint_tfstate_versions_export, sigterm_tfstate_versions_export => interrupt_export;
    sigint_minio_rebuild_wait, sigterm_minio_rebuild_wait => interrupt_rebuild;
}
