//! A hostile S3 server, not only hostile objects: one that accepts a request and never
//! answers (each kind of request the S3 tools make), one whose listing says `IsTruncated`
//! with the same continuation token forever, values that reach a request header (region,
//! credentials, KMS key id), and a manifest that names another copy's keys into
//! `backup-prune --apply`. Each run must end within the bound of `run_all` (20 s) with a
//! documented exit code; no upload is left open unless the abort itself could not be sent,
//! and then the command to finish it is printed.

use std::ffi::OsString;
use std::time::Duration;

use pvedr_testkit::s3::{Moto, S3Front};
use pvedr_testkit::{SimNode, bin};

use super::{Case, argv_values, os, report, run_all};

const NAME: &str = "vzdump-qemu-100-2024_01_15-02_00_02.vma.zst";

/// Credentials, and timeouts short enough for a test (a hung request ends in ~3 s).
fn env() -> Vec<(String, OsString)> {
    [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "testtest"),
        ("AWS_REGION", "us-east-1"),
        ("PVEDR_S3_CONNECT_TIMEOUT", "2s"),
        ("PVEDR_S3_READ_TIMEOUT", "1s"),
        ("PVEDR_S3_TIMEOUT", "3s"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), os(v)))
    .collect()
}

/// `backup-sync ls --from FROM` on `moto`.
fn sync_ls(moto: &Moto, from: &str) -> assert_cmd::Command {
    let mut c = bin("backup-sync");
    c.envs(env())
        .args(["ls", "--endpoint", &moto.endpoint(), "--from", from]);
    c
}

fn record(name: &str) -> Vec<u8> {
    format!(
        "{{\"kind\":\"backup\",\"node\":\"pve1\",\"storage\":\"local\",\"volid\":\"local:backup/{name}\",\"vmid\":100,\"subtype\":\"qemu\",\"ctime\":1705284002,\"format\":\"vma.zst\"}}\n"
    )
    .into_bytes()
}

fn pending_uploads(moto: &Moto) -> usize {
    moto.boto(
        "off",
        "print(len(s3.list_multipart_uploads(Bucket=B).get('Uploads', [])))",
    )
    .parse()
    .unwrap_or(usize::MAX)
}

fn case(tool: &'static str, args: &[&str], stdin: Option<Vec<u8>>, label: &str) -> Case {
    Case {
        tool,
        args: args.iter().map(|s| os(s)).collect(),
        stdin,
        env: env(),
        want: Some(1),
        label: label.into(),
    }
}

/// Each request kind held (accepted, never answered), one run per kind: the run fails in
/// time, and a push leaves no open upload (its abort is not held).
#[test]
fn hostile_s3_server_never_answers() {
    let sim = SimNode::empty();
    let moto = Moto::start();
    moto.create_versioned_bucket("off");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(NAME), vec![7u8; 64 * 1024]).unwrap();
    let older = NAME.replace("15-02", "14-02");
    std::fs::write(dir.path().join(&older), vec![6u8; 64 * 1024]).unwrap();
    let d = dir.path().to_str().unwrap().to_string();
    // Two copies to list, pull and prune, pushed straight to moto.
    let mut push = bin("backup-sync");
    push.envs(env())
        .args([
            "push",
            "--yes",
            "--endpoint",
            &moto.endpoint(),
            "--to",
            "s3://off/pv",
            "--dir",
            &d,
        ])
        .write_stdin([record(NAME), record(&older)].concat())
        .timeout(Duration::from_secs(30));
    assert!(push.output().unwrap().status.success());
    let ls = sync_ls(&moto, "s3://off/pv")
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap()
        .stdout;
    let out = tempfile::tempdir().unwrap();
    let to = out.path().to_str().unwrap().to_string();
    let other = NAME.replace("15-02", "16-02");
    std::fs::write(dir.path().join(&other), vec![8u8; 64 * 1024]).unwrap();
    // (held request line, run)
    let runs: Vec<(&str, &str, Case)> = vec![
        (
            "partNumber=",
            "",
            case(
                "backup-sync",
                &["push", "--yes", "--to", "s3://off/pv", "--dir", &d],
                Some(record(&other)),
                "UploadPart never answered",
            ),
        ),
        (
            "list-type=2",
            "",
            case(
                "backup-sync",
                &["ls", "--from", "s3://off/pv"],
                None,
                "ListObjectsV2 never answered",
            ),
        ),
        (
            "manifest.json?x-id=GetObject",
            "",
            case(
                "backup-sync",
                &["ls", "--from", "s3://off/pv"],
                None,
                "manifest GET never answered",
            ),
        ),
        (
            "vma.zst?x-id=GetObject",
            "",
            case(
                "backup-sync",
                &["pull", "--yes", "--to-dir", &to],
                Some(ls.clone()),
                "archive GET never answered",
            ),
        ),
        (
            "?versions",
            "",
            case(
                "tfstate-versions",
                &["--bucket", "off", "list"],
                None,
                "ListObjectVersions never answered",
            ),
        ),
        (
            "HEAD ",
            "",
            case(
                "backup-prune",
                &["--keep-last", "1", "--apply", "--yes"],
                Some(ls.clone()),
                "HEAD never answered (offsite prune)",
            ),
        ),
    ];
    let (mut hard, mut soft) = (Vec::new(), Vec::new());
    let n = runs.len();
    for (needle, unless, mut c) in runs {
        let front = S3Front::start(&moto);
        front.hold(needle, unless);
        c.args.extend([os("--endpoint"), os(&front.endpoint())]);
        let label = c.label.clone();
        let (h, s) = run_all(&sim, &[c]);
        hard.extend(h);
        soft.extend(s);
        if !front.seen(needle) {
            hard.push(format!("{label}: the held request never came"));
        }
        drop(front);
        let open = pending_uploads(&moto);
        if open != 0 {
            hard.push(format!("{label}: {open} multipart uploads left open"));
        }
    }
    report("hostile_s3_server_never_answers", n, &hard, &soft);
}

/// The part and the abort both held: the upload cannot be aborted, and the run says so
/// with the command that does it.
#[test]
fn hostile_s3_server_refuses_the_abort() {
    let moto = Moto::start();
    moto.create_versioned_bucket("off");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(NAME), vec![7u8; 64 * 1024]).unwrap();
    let front = S3Front::start(&moto);
    front.hold("uploadId=", "");
    let out = bin("backup-sync")
        .envs(env())
        .args([
            "push",
            "--yes",
            "--endpoint",
            &front.endpoint(),
            "--to",
            "s3://off/pv",
            "--dir",
        ])
        .arg(dir.path())
        .write_stdin(record(NAME))
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(front.seen("DELETE /off/pv/"), "an abort was sent: {stderr}");
    assert!(
        stderr.contains("aws s3api abort-multipart-upload --endpoint-url")
            && stderr.contains("--upload-id"),
        "the command to abort it: {stderr}"
    );
    assert_eq!(pending_uploads(&moto), 1);
}

/// A front on moto (bucket `off`) that answers every listing with one page of its own:
/// ListObjectsV2's (offsite copies) and ListObjectVersions' (state versions).
fn listing_front(moto: &Moto, objects: &str, versions: &str) -> S3Front {
    moto.create_versioned_bucket("off");
    let front = S3Front::start(moto);
    front.answer("list-type=2", "", objects);
    front.answer("?versions", "", versions);
    front
}

/// A listing that is truncated forever with the same token ends with an error at once.
#[test]
fn hostile_s3_server_repeats_a_continuation_token() {
    let sim = SimNode::empty();
    let moto = Moto::start();
    let front = listing_front(
        &moto,
        r#"<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>off</Name><Prefix>pv/</Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated><ContinuationToken>same</ContinuationToken><NextContinuationToken>same</NextContinuationToken></ListBucketResult>"#,
        r#"<?xml version="1.0" encoding="UTF-8"?><ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>off</Name><Prefix>terraform.tfstate</Prefix><KeyMarker>k</KeyMarker><VersionIdMarker>v</VersionIdMarker><NextKeyMarker>k</NextKeyMarker><NextVersionIdMarker>v</NextVersionIdMarker><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated></ListVersionsResult>"#,
    );
    let ep = front.endpoint();
    let cases = vec![
        case(
            "backup-sync",
            &["ls", "--endpoint", &ep, "--from", "s3://off/pv"],
            None,
            "ListObjectsV2 token repeated",
        ),
        case(
            "tfstate-versions",
            &["--endpoint", &ep, "--bucket", "off", "list"],
            None,
            "ListObjectVersions markers repeated",
        ),
    ];
    let (h, s) = run_all(&sim, &cases);
    report(
        "hostile_s3_server_repeats_a_continuation_token",
        cases.len(),
        &h,
        &s,
    );
}

/// A tool, its arguments, its standard input.
type Place = (&'static str, Vec<&'static str>, Option<Vec<u8>>);

/// Hostile values that reach a request header (the region is in the signature's scope, the
/// access key in `Authorization`, the token in `x-amz-security-token`, the KMS key id in its
/// own header): a usage error, never a panic in the signing (exit 101).
#[test]
fn s3_header_values() {
    let sim = SimNode::empty();
    let ep = "http://127.0.0.1:9";
    let base: Vec<Place> = vec![
        ("backup-sync", vec!["ls", "--from", "s3://off/pv"], None),
        (
            "backup-sync",
            vec![
                "push",
                "--yes",
                "--to",
                "s3://off/pv",
                "--dir",
                "/nonexistent",
            ],
            Some(record(NAME)),
        ),
        ("tfstate-versions", vec!["--bucket", "off", "list"], None),
        ("minio-rebuild", vec!["--dry-run", "--env", "prod"], None),
        (
            "backup-prune",
            vec!["--keep-last", "1", "--apply", "--yes"],
            Some(Vec::new()),
        ),
    ];
    let mut cases = Vec::new();
    for v in argv_values() {
        // A value with a control character must be refused as a usage error.
        let want = v
            .to_string_lossy()
            .chars()
            .any(char::is_control)
            .then_some(2);
        for (tool, pre, stdin) in &base {
            let mut args: Vec<OsString> = pre.iter().map(|s| os(s)).collect();
            args.extend([os("--endpoint"), os(ep)]);
            let mut flag = args.clone();
            flag.extend([os("--region"), v.clone()]);
            cases.push(Case {
                tool,
                args: flag,
                stdin: stdin.clone(),
                env: env(),
                want,
                label: "--region".into(),
            });
        }
        // The environment goes through the same resolution in every tool: one is enough,
        // and only the values a header cannot carry (the others reach a dead endpoint).
        let header_safe = v
            .to_str()
            .is_some_and(|t| t.bytes().all(|c| (0x21..0x7f).contains(&c)));
        for var in ["AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN"]
            .into_iter()
            .filter(|_| !header_safe)
        {
            let mut e = env();
            e.push((var.into(), v.clone()));
            cases.push(Case {
                tool: "backup-sync",
                args: ["ls", "--from", "s3://off/pv", "--endpoint", ep]
                    .iter()
                    .map(|s| os(s))
                    .collect(),
                stdin: None,
                env: e,
                want,
                label: format!("env {var}"),
            });
        }
        let mut args: Vec<OsString> = [
            "push",
            "--yes",
            "--endpoint",
            ep,
            "--to",
            "s3://off/pv",
            "--dir",
            "/tmp",
        ]
        .iter()
        .map(|s| os(s))
        .collect();
        args.extend([
            os("--sse"),
            os("aws:kms"),
            os("--sse-kms-key-id"),
            v.clone(),
        ]);
        let push = case("backup-sync", &[], Some(record(NAME)), "--sse-kms-key-id");
        cases.push(Case { args, want, ..push });
    }
    let (h, s) = run_all(&sim, &cases);
    report("s3_header_values", cases.len(), &h, &s);
}

/// A copy marked remove whose manifest names the kept copy's archive, manifest and notes
/// (and a key outside its folder) as side files, into `backup-sync ls | backup-prune --keep-last 1 --apply`: only the removed
/// copy's own keys go; every version of the kept copy stays.
#[test]
fn hostile_manifest_into_offsite_prune() {
    let sim = SimNode::empty();
    let moto = Moto::start();
    moto.create_versioned_bucket("off");
    moto.put_hostile_side_files("off", "pr");
    let count = || {
        moto.boto(
            "off",
            "print(len([v for v in s3.list_object_versions(Bucket=B, Prefix='pr/pve1/100/vzdump-qemu-100-2024_01_15')['Versions']]))",
        )
    };
    let before = count();
    let ls = sync_ls(&moto, "s3://off/pr")
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap()
        .stdout;
    let mut c = case(
        "backup-prune",
        &[
            "--keep-last",
            "1",
            "--apply",
            "--yes",
            "--endpoint",
            &moto.endpoint(),
        ],
        Some(ls),
        "hostile manifest into offsite prune",
    );
    c.want = Some(0);
    let (mut h, s) = run_all(&sim, &[c]);
    let after = count();
    // The kept copy's archive (two versions), notes, log and manifest.
    if after != before || before != "5" {
        h.push(format!(
            "the kept copy lost versions: {before} before, {after} after"
        ));
    }
    let old_left = moto.boto(
        "off",
        "print(len(s3.list_object_versions(Bucket=B, Prefix='pr/pve1/100/vzdump-qemu-100-2024_01_14').get('Versions', [])))",
    );
    if old_left != "0" {
        h.push(format!(
            "the removed copy is still there: {old_left} versions"
        ));
    }
    report("hostile_manifest_into_offsite_prune", 1, &h, &s);
}

/// A listing that says `IsTruncated` but gives no way to the next page is an error, never a
/// listing silently cut short (offsite copies or state versions that seem not to exist).
#[test]
fn hostile_s3_server_truncates_without_a_token() {
    let moto = Moto::start();
    let objects = r#"<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>off</Name><Prefix>pv/</Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated></ListBucketResult>"#;
    let versions = r#"<?xml version="1.0" encoding="UTF-8"?><ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>off</Name><Prefix>terraform.tfstate</Prefix><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated></ListVersionsResult>"#;
    let front = listing_front(&moto, objects, versions);
    let ep = front.endpoint();
    let runs: [(&str, Vec<&str>); 2] = [
        (
            "backup-sync",
            vec!["ls", "--endpoint", &ep, "--from", "s3://off/pv"],
        ),
        (
            "tfstate-versions",
            vec!["--endpoint", &ep, "--bucket", "off", "list"],
        ),
    ];
    for (tool, args) in runs {
        let mut cmd = bin(tool);
        cmd.args(&args).timeout(Duration::from_secs(20));
        for (k, v) in env() {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{tool}: {stderr}");
        assert!(
            stderr.contains("truncated") && stderr.contains("no continuation"),
            "{tool} says why: {stderr}"
        );
        assert!(
            out.stdout.is_empty()
                || !String::from_utf8_lossy(&out.stdout).contains("\"complete\":true")
        );
    }
}
