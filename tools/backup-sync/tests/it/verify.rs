//! `backup-sync verify` against moto: the free checks, whole reads within the budget, the
//! cycle's coverage over repeated runs, each fault named and never OK, and a bucket left
//! exactly as it was.

use std::path::Path;
use std::time::Duration;

use pvedr_testkit::s3::S3Front;
use pvedr_testkit::{assert_says, json_lines, run_code, run_ok};
use serde_json::Value;

use crate::common::{BUCKET, Offsite, TO, list_dir, noise, of_kind};

const DAY: i64 = 86_400;
const T0: i64 = 1_800_000_000;
/// The noise in each archive: it does not compress, so each is a little over this.
const SIZE: usize = 40 * 1024;
const NAMES: [&str; 4] = [
    "vzdump-lxc-100-2024_01_15-02_00_02.tar.zst",
    "vzdump-lxc-101-2024_01_15-02_00_02.tar.zst",
    "vzdump-lxc-102-2024_01_15-02_00_02.tar.zst",
    "vzdump-lxc-103-2024_01_15-02_00_02.tar.zst",
];

fn key(i: usize) -> String {
    let vmid = 100 + i;
    format!("pve/pve1/{vmid}/{}", NAMES[i])
}

/// A container backup as vzdump writes one: a tar with `./etc/vzdump/pct.conf`, zstd.
pub fn archive(dir: &Path, name: &str, seed: u64) -> Vec<u8> {
    let stage = tempfile::tempdir().expect("tmp");
    std::fs::create_dir_all(stage.path().join("etc/vzdump")).expect("mkdir");
    std::fs::write(stage.path().join("etc/vzdump/pct.conf"), "arch: amd64\n").expect("conf");
    std::fs::write(stage.path().join("data"), noise(SIZE, seed)).expect("data");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("tar -C \"$1\" -cf - ./etc/vzdump/pct.conf ./data | zstd -q -c > \"$2\"")
        .arg("sh")
        .arg(stage.path())
        .arg(dir.join(name))
        .status()
        .expect("tar");
    assert!(out.success());
    std::fs::read(dir.join(name)).expect("read")
}

/// A dump directory of four archives (the first with notes and a log), pushed; their bytes.
fn pushed(s3: &Offsite, extra: &[&str]) -> Vec<Vec<u8>> {
    let dump = tempfile::tempdir().expect("tmp");
    let bytes = (0..4)
        .map(|i| archive(dump.path(), NAMES[i], i as u64 + 1))
        .collect();
    std::fs::write(
        dump.path().join(format!("{}.notes", NAMES[0])),
        "db server\n",
    )
    .expect("notes");
    std::fs::write(
        dump.path().join("vzdump-lxc-100-2024_01_15-02_00_02.log"),
        "INFO: starting\n",
    )
    .expect("log");
    run_ok(
        s3.push_from(dump.path())
            .args(extra)
            .write_stdin(list_dir(dump.path(), "local")),
    );
    bytes
}

fn verify(s3: &Offsite, state: &Path, args: &[&str], code: i32) -> Vec<Value> {
    let out = run_code(
        s3.tool("backup-sync")
            .args(["verify", "--from", TO, "--state"])
            .arg(state)
            .args(args),
        code,
    );
    json_lines(&out.stdout)
}

fn summary(recs: &[Value]) -> Value {
    recs.iter()
        .find(|r| r["kind"] == "summary")
        .cloned()
        .expect("summary")
}

/// The check `name` of the copy at `key`.
fn check_of(recs: &[Value], name: &str, key: &str) -> Value {
    let url = format!("s3://{BUCKET}/{key}");
    recs.iter()
        .find(|r| r["kind"] == "check" && r["check"] == name && r["url"] == url.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("no {name} check of {url}: {recs:?}"))
}

/// Every version and delete marker with its ETag: what a write would change.
fn versions(s3: &Offsite) -> String {
    s3.moto.boto(
        BUCKET,
        "r = s3.list_object_versions(Bucket=B)\nprint(json.dumps(sorted([[v['Key'], v['VersionId'], v.get('ETag'), v.get('Size')] for v in r.get('Versions', []) + r.get('DeleteMarkers', [])])))",
    )
}

fn put(s3: &Offsite, key: &str, body: &[u8]) {
    let hex: String = body.iter().map(|b| format!("{b:02x}")).collect();
    s3.moto.boto(
        BUCKET,
        &format!("s3.put_object(Bucket=B, Key={key:?}, Body=bytes.fromhex('{hex}'))"),
    );
}

#[test]
fn repeated_runs_within_a_budget_cover_every_copy_within_the_cycle() {
    let s3 = Offsite::new();
    let sizes: Vec<u64> = pushed(&s3, &[]).iter().map(|b| b.len() as u64).collect();
    let state = tempfile::tempdir().expect("tmp");
    let st = state.path().join("verify.json");
    let before = versions(&s3);
    // Room for one copy (and its side files) a run: four runs, a day apart.
    let budget = sizes.iter().max().expect("max") + 1024;
    let mut covered = Vec::new();
    for day in 0..4 {
        let now = (T0 + day * DAY).to_string();
        let recs = verify(
            &s3,
            &st,
            &["--max-egress", &budget.to_string(), "--now", &now],
            0,
        );
        let s = summary(&recs);
        assert!(s["bytes_read"].as_u64().expect("n") <= budget, "{s}");
        assert!(s["bytes_read"].as_u64().expect("n") >= SIZE as u64, "{s}");
        covered.push(s["bytes_covered"].as_u64().expect("n"));
        assert_eq!(s["bytes_total"], sizes.iter().sum::<u64>());
        let read = check_of(&recs, "offsite-read", &key(day as usize));
        let msg = read["message"].as_str().expect("m");
        assert!(msg.contains("content walked"), "{read}");
    }
    let want: Vec<u64> = (1..=4).map(|n| sizes[..n].iter().sum()).collect();
    assert_eq!(covered, want);
    // A copy not read within the cycle is overdue: WARNING.
    let late = (T0 + 40 * DAY).to_string();
    let recs = verify(&s3, &st, &["--now", &late], 1);
    assert_eq!(
        check_of(&recs, "offsite-read", &key(0))["status"],
        "warning"
    );
    assert_eq!(versions(&s3), before, "verify wrote to the bucket");
}

#[test]
fn damaged_copies_are_critical_and_named() {
    let s3 = Offsite::new();
    let bytes = pushed(&s3, &[]);
    let st = tempfile::tempdir().expect("tmp");
    let st = st.path().join("v.json");
    // 0: a side file gone; 1: cut short; 2: one byte flipped; 3: its manifest lies.
    s3.moto.boto(
        BUCKET,
        &format!(
            "s3.delete_object(Bucket=B, Key={:?})",
            format!("{}.notes", key(0))
        ),
    );
    put(&s3, &key(1), &bytes[1][..bytes[1].len() - 100]);
    let mut flipped = bytes[2].clone();
    flipped[SIZE / 2] ^= 1;
    put(&s3, &key(2), &flipped);
    let mk = format!("{}.manifest.json", key(3));
    let m = String::from_utf8(s3.object(&mk)).expect("utf8");
    let mut v: Value = serde_json::from_str(&m).expect("manifest");
    v["sha256"] = Value::String("0".repeat(64));
    put(&s3, &mk, v.to_string().as_bytes());
    let before = versions(&s3);
    let recs = verify(&s3, &st, &["--max-egress", "1M"], 2);
    let object = check_of(&recs, "offsite-object", &key(0));
    assert_eq!(object["status"], "critical");
    assert_says(&object, "message", ".notes is missing");
    assert_eq!(
        check_of(&recs, "offsite-size", &key(1))["status"],
        "critical"
    );
    for i in [2, 3] {
        let r = check_of(&recs, "offsite-read", &key(i));
        assert_eq!(r["status"], "critical", "{r}");
        assert!(r["message"].as_str().expect("m").contains("sha256"), "{r}");
    }
    assert!(summary(&recs)["bytes_read"].as_u64().expect("n") <= 1 << 20);
    assert_eq!(versions(&s3), before, "verify wrote to the bucket");
    // backup-check folds the records in: the same CRITICAL, the same exit code.
    let again = tempfile::tempdir().expect("tmp");
    let out = run_code(
        s3.tool("backup-sync")
            .args(["verify", "--from", TO, "--max-egress", "1M", "--state"])
            .arg(again.path().join("v.json")),
        2,
    );
    let checked = run_code(s3.tool("backup-check").write_stdin(out.stdout), 2);
    let folded = json_lines(&checked.stdout);
    assert_eq!(
        check_of(&folded, "offsite-read", &key(2))["status"],
        "critical"
    );
}

#[test]
fn an_object_replaced_after_a_verified_read_is_critical_without_a_download() {
    let s3 = Offsite::new();
    s3.moto.boto(
        BUCKET,
        "s3.put_bucket_versioning(Bucket=B, VersioningConfiguration={'Status': 'Enabled'})",
    );
    let bytes = pushed(&s3, &[]);
    let st = tempfile::tempdir().expect("tmp");
    let st = st.path().join("v.json");
    verify(&s3, &st, &["--max-egress", "1M"], 0);
    let mut other = bytes[1].clone();
    other[100] ^= 1;
    put(&s3, &key(1), &other);
    let recs = verify(&s3, &st, &[], 2);
    let c = check_of(&recs, "offsite-checksum", &key(1));
    assert_eq!(c["status"], "critical");
    assert!(
        c["message"].as_str().expect("m").contains("replaced"),
        "{c}"
    );
    assert_eq!(summary(&recs)["bytes_read"], 0);
}

#[test]
fn a_delete_marker_hiding_a_copy_and_an_object_without_manifest_are_reported() {
    let s3 = Offsite::new();
    s3.moto.boto(
        BUCKET,
        "s3.put_bucket_versioning(Bucket=B, VersioningConfiguration={'Status': 'Enabled'})",
    );
    pushed(&s3, &[]);
    let st = tempfile::tempdir().expect("tmp");
    let st = st.path().join("v.json");
    s3.moto.boto(
        BUCKET,
        &format!("s3.delete_object(Bucket=B, Key={:?})", key(2)),
    );
    put(&s3, "pve/pve1/100/stray.bin", b"x");
    put(&s3, "pve/pve1/100/stray2.bin", b"y");
    // A manifest that names another copy's archive as its side file.
    let mk = format!("{}.manifest.json", key(3));
    let mut v: Value =
        serde_json::from_str(&String::from_utf8(s3.object(&mk)).expect("utf8")).expect("manifest");
    v["side_files"] =
        serde_json::json!([{"name": NAMES[1], "key": key(1), "size": 1, "sha256": "0"}]);
    put(&s3, &mk, v.to_string().as_bytes());
    let recs = verify(&s3, &st, &["--max-egress", "1M"], 2);
    let forged = check_of(&recs, "offsite-object", &key(3));
    assert_eq!(forged["status"], "critical");
    assert_says(&forged, "message", "not the archive's own");
    assert_eq!(check_of(&recs, "offsite-read", &key(1))["status"], "ok");
    let c = check_of(&recs, "offsite-object", &key(2));
    assert_eq!(c["status"], "critical");
    assert!(
        c["message"].as_str().expect("m").contains("delete marker"),
        "{c}"
    );
    let stray = check_of(&recs, "offsite-orphan", "pve/pve1/100/stray.bin");
    assert_eq!(stray["status"], "warning");
    // backup-check's metrics: one series per finding (node_exporter refuses a repeated one).
    let dir = tempfile::tempdir().expect("tmp");
    let prom = dir.path().join("m.prom");
    let input: String = recs.iter().map(|r| format!("{r}\n")).collect();
    run_code(
        s3.tool("backup-check")
            .arg("--prom")
            .arg(&prom)
            .write_stdin(input),
        2,
    );
    let text = std::fs::read_to_string(&prom).expect("prom");
    let series: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("pvedr_backup_check_status{"))
        .map(|l| l.rsplit_once(' ').map_or(l, |(s, _)| s))
        .collect();
    let distinct: std::collections::BTreeSet<&&str> = series.iter().collect();
    assert_eq!(series.len(), distinct.len(), "{text}");
    assert!(series.len() >= 10, "{text}");
}

#[test]
fn a_short_or_missing_object_lock_is_critical() {
    let s3 = Offsite::locked();
    let dump = tempfile::tempdir().expect("tmp");
    archive(dump.path(), NAMES[0], 1);
    archive(dump.path(), NAMES[1], 2);
    let listing = String::from_utf8(list_dir(dump.path(), "local")).expect("utf8");
    let lines: Vec<&str> = listing.lines().collect();
    let push = |line: &str, extra: &[&str]| {
        run_ok(
            s3.push_from(dump.path())
                .args(extra)
                .write_stdin(line.to_string()),
        )
    };
    let (a, b): (Vec<&&str>, Vec<&&str>) = lines.iter().partition(|l| l.contains(NAMES[0]));
    push(a[0], &["--object-lock-days", "40"]);
    push(b[0], &["--object-lock-days", "2"]);
    let st = tempfile::tempdir().expect("tmp");
    let st = st.path().join("v.json");
    let recs = verify(&s3, &st, &["--min-lock-days", "30"], 2);
    assert_eq!(check_of(&recs, "offsite-lock", &key(0))["status"], "ok");
    let short = check_of(&recs, "offsite-lock", &key(1));
    assert_eq!(short["status"], "critical");
    assert_says(&short, "message", "locked until");
}

#[test]
fn a_server_that_stops_mid_read_is_unknown_naming_the_object() {
    let s3 = Offsite::new();
    pushed(&s3, &[]);
    let front = S3Front::start(&s3.moto);
    // The archive's GET (not its manifest's, its notes' or log's).
    let get = format!("{}?x-id=GetObject", NAMES[0]);
    front.hold(&get, "");
    let st = tempfile::tempdir().expect("tmp");
    let st = st.path().join("v.json");
    let mut cmd = s3.tool("backup-sync");
    cmd.env("AWS_ENDPOINT_URL", front.endpoint())
        .args(["verify", "--from", TO, "--max-egress", "1M", "--state"])
        .arg(&st);
    let stopper = std::thread::spawn(move || {
        front.wait_for(&get, Duration::from_secs(30));
        front.stop();
    });
    let out = run_code(&mut cmd, 3);
    stopper.join().expect("stopper");
    let recs = json_lines(&out.stdout);
    let c = check_of(&recs, "offsite-read", &key(0));
    assert_eq!(c["status"], "unknown", "{c}");
    assert!(
        !of_kind(&out.stdout, "check")
            .iter()
            .any(|c| c["status"] == "ok"
                && c["check"] == "offsite-read"
                && c["url"].as_str().is_some_and(|u| u.ends_with(NAMES[0])))
    );
}

#[test]
fn an_archive_pushed_damaged_is_critical_though_its_sha256_matches() {
    let s3 = Offsite::new();
    let dump = tempfile::tempdir().expect("tmp");
    let whole = archive(dump.path(), NAMES[0], 1);
    // Cut before the push: the manifest's sha256 is of the cut archive.
    std::fs::write(dump.path().join(NAMES[0]), &whole[..whole.len() / 2]).expect("cut");
    run_ok(
        s3.push_from(dump.path())
            .write_stdin(list_dir(dump.path(), "local")),
    );
    let st = tempfile::tempdir().expect("tmp");
    let recs = verify(&s3, &st.path().join("v.json"), &["--max-egress", "1M"], 2);
    let c = check_of(&recs, "offsite-read", &key(0));
    assert_eq!(c["status"], "critical", "{c}");
    assert_says(&c, "message", "content is damaged");
}
