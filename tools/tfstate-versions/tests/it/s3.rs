//! tfstate-versions against a real moto S3 server and real Terraform.

use pvedr_testkit::json_lines;
use pvedr_testkit::s3::{Moto, Tf, s3_env};
use serde_json::Value;

fn list(moto: &Moto, bucket: &str) -> Vec<Value> {
    let out = pvedr_testkit::run_ok(tool(moto, bucket).args(["list", "--inspect"]));
    json_lines(&out.stdout)
}

/// A bucket with three applies: serials 1, 2, 3 (values one, two, three).
fn three_applies(moto: &Moto, bucket: &str) -> Tf {
    let tf = Tf::initialised(moto, bucket);
    for v in ["one", "two", "three"] {
        tf.apply(v);
    }
    tf
}

/// `terraform plan` with `v` finds nothing to change: the state holds `v`.
fn plans_no_change(tf: &Tf, v: &str) {
    let var = format!("v={v}");
    let plan = tf.run(&[
        "plan",
        "-detailed-exitcode",
        "-input=false",
        "-no-color",
        "-var",
        &var,
    ]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "the state matches {var}: {}",
        String::from_utf8_lossy(&plan.stdout)
    );
}

/// [`three_applies`], and the version id of its first state (serial 1).
fn first_of_three(moto: &Moto, bucket: &str) -> (Tf, String) {
    let tf = three_applies(moto, bucket);
    let first = version_of_serial(&list(moto, bucket), 1);
    (tf, first)
}

#[test]
fn list_inspect_shows_every_serial_and_ignores_the_lock_object() {
    let moto = Moto::start();
    let _tf = three_applies(&moto, "tfstate-list");
    let recs = list(&moto, "tfstate-list");
    assert!(
        recs.iter()
            .all(|r| r["kind"] == "tfstate_version" && r["key"] == "terraform.tfstate"),
        "{recs:?}"
    );
    let serials: Vec<u64> = recs.iter().filter_map(|r| r["serial"].as_u64()).collect();
    assert_eq!(serials, [3, 2, 1], "newest first");
    assert_eq!(recs[0]["is_latest"], true);
    assert_eq!(recs[0]["terraform_version"], "1.15.5");
    assert_eq!(recs[0]["resources"], 1);
    assert_eq!(recs[0]["outputs"], serde_json::json!(["v"]));
    let lineages: std::collections::BTreeSet<&str> =
        recs.iter().filter_map(|r| r["lineage"].as_str()).collect();
    assert_eq!(lineages.len(), 1);
    // It feeds backup-check.
    let out = pvedr_testkit::bin("backup-check")
        .write_stdin(recs.iter().map(|r| format!("{r}\n")).collect::<String>())
        .output()
        .expect("check");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn restore_makes_terraform_see_the_old_content_with_a_higher_serial() {
    let moto = Moto::start();
    let (tf, first) = first_of_three(&moto, "tfstate-restore");
    let before = moto.version_count("tfstate-restore", "terraform.tfstate");
    // Without --yes and without a terminal: refused, nothing written.
    pvedr_testkit::run_code(tool(&moto, "tfstate-restore").args(["restore", &first]), 2);
    assert_eq!(
        moto.version_count("tfstate-restore", "terraform.tfstate"),
        before
    );
    // Dry run: the plan, nothing written.
    let out = pvedr_testkit::run_code(
        tool(&moto, "tfstate-restore").args(["restore", &first, "--dry-run"]),
        0,
    );
    assert!(
        json_lines(&out.stdout)
            .iter()
            .any(|s| s["step"] == "write" && s["status"] == "planned")
    );
    assert_eq!(
        moto.version_count("tfstate-restore", "terraform.tfstate"),
        before
    );
    let out = pvedr_testkit::run_code(
        tool(&moto, "tfstate-restore").args(["restore", &first, "--yes"]),
        0,
    );
    let steps = json_lines(&out.stdout);
    assert!(
        steps
            .iter()
            .any(|s| s["step"] == "verify" && s["status"] == "ok")
    );
    let undo = steps.iter().find(|s| s["step"] == "undo").expect("undo")["command"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        undo.starts_with("aws s3api delete-object") && undo.contains("--version-id"),
        "{undo}"
    );
    assert_eq!(
        moto.version_count("tfstate-restore", "terraform.tfstate"),
        before + 1,
        "history kept"
    );
    // Terraform sees the old content with serial 4.
    let pulled: Value = serde_json::from_str(&tf.ok(&["state", "pull"])).expect("state");
    assert_eq!(pulled["serial"], 4);
    assert_eq!(pulled["outputs"]["v"]["value"], "one");
    plans_no_change(&tf, "one");
    // No lock left behind.
    assert_eq!(moto.boto("tfstate-restore", "print(len(s3.list_objects_v2(Bucket=B, Prefix='terraform.tfstate.tflock').get('Contents', [])))"), "0");
}

#[test]
fn a_held_lock_blocks_restore() {
    let moto = Moto::start();
    let (_tf, first) = first_of_three(&moto, "tfstate-lock");
    moto.boto(
        "tfstate-lock",
        "s3.put_object(Bucket=B, Key='terraform.tfstate.tflock', Body=b'{\"ID\":\"someone\"}')",
    );
    let before = moto.version_count("tfstate-lock", "terraform.tfstate");
    let out = pvedr_testkit::run_code(
        tool(&moto, "tfstate-lock").args(["restore", &first, "--yes"]),
        1,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds the Terraform lock"));
    assert_eq!(
        moto.version_count("tfstate-lock", "terraform.tfstate"),
        before
    );
    // --force goes ahead but leaves the other lock alone.
    pvedr_testkit::run_code(
        tool(&moto, "tfstate-lock").args(["restore", &first, "--yes", "--force"]),
        0,
    );
    let lock = moto.boto(
        "tfstate-lock",
        "print(s3.get_object(Bucket=B, Key='terraform.tfstate.tflock')['Body'].read().decode())",
    );
    assert_eq!(lock, "{\"ID\":\"someone\"}");
}

#[test]
fn a_foreign_lineage_version_is_refused() {
    let moto = Moto::start();
    let _tf = three_applies(&moto, "tfstate-foreign");
    moto.boto(
        "tfstate-foreign",
        "s3.put_object(Bucket=B, Key='terraform.tfstate', Body=json.dumps({'version': 4, 'serial': 9, 'lineage': 'other', 'resources': []}).encode())",
    );
    // Then a normal state on top again.
    let recs = list(&moto, "tfstate-foreign");
    let foreign = recs
        .iter()
        .find(|r| r["lineage"] == "other")
        .expect("foreign")["version_id"]
        .as_str()
        .expect("id")
        .to_string();
    let real = recs.iter().find(|r| r["serial"] == 3).expect("3")["version_id"]
        .as_str()
        .expect("id")
        .to_string();
    let out = tool(&moto, "tfstate-foreign")
        .args(["restore", &real, "--yes"])
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(1),
        "the newest version is foreign now, so the real one is refused"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("lineage"));
    // Not a valid state at all.
    moto.boto(
        "tfstate-foreign",
        "s3.put_object(Bucket=B, Key='terraform.tfstate', Body=b'garbage')",
    );
    let recs = list(&moto, "tfstate-foreign");
    let garbage = recs.iter().find(|r| r["valid"] == false).expect("invalid")["version_id"]
        .as_str()
        .expect("id")
        .to_string();
    let out = pvedr_testkit::run_code(
        tool(&moto, "tfstate-foreign").args(["restore", &garbage, "--yes", "--force"]),
        1,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid state"));
    let _ = foreign;
}

#[test]
fn show_diff_undelete_and_export() {
    let moto = Moto::start();
    let _tf = three_applies(&moto, "tfstate-prod");
    let recs = list(&moto, "tfstate-prod");
    let v1 = recs.iter().find(|r| r["serial"] == 1).expect("1")["version_id"]
        .as_str()
        .expect("id")
        .to_string();
    let v3 = recs[0]["version_id"].as_str().expect("id").to_string();
    let out = tool(&moto, "tfstate-prod")
        .args(["show", &v1])
        .output()
        .expect("run");
    let st: Value = serde_json::from_slice(&out.stdout).expect("state json");
    assert_eq!(st["serial"], 1);
    let out = tool(&moto, "tfstate-prod")
        .args(["diff", &v1, &v3])
        .output()
        .expect("run");
    let d = json_lines(&out.stdout);
    assert!(
        d.iter()
            .any(|r| r["address"] == "terraform_data.a" && r["change"] == "changed"),
        "{d:?}"
    );
    assert!(d.iter().any(|r| r["serial"] == serde_json::json!([1, 3])));
    // Deleted by mistake, then undeleted.
    moto.boto(
        "tfstate-prod",
        "s3.delete_object(Bucket=B, Key='terraform.tfstate')",
    );
    pvedr_testkit::run_code(tool(&moto, "tfstate-prod").args(["undelete", "--yes"]), 0);
    let recs = list(&moto, "tfstate-prod");
    assert_eq!(recs[0]["serial"], 3);
    assert!(recs.iter().all(|r| r["delete_marker"] == false));
    // Export with sha256 and version id (bucket tfstate-prod = --env prod).
    let dir = tempfile::tempdir().expect("tmp");
    let out = pvedr_testkit::bin("tfstate-versions")
        .envs(s3_env())
        .args([
            "--endpoint",
            &moto.endpoint(),
            "--env",
            "prod",
            "--env",
            "nope",
            "export",
            "--to",
        ])
        .arg(dir.path())
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(3),
        "prod exported, nope missing: partial"
    );
    let body = std::fs::read(dir.path().join("prod.tfstate")).expect("exported");
    // A state holds secrets: owner only, whatever the umask.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("prod.tfstate"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    let st: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(st["serial"], 3);
    let sha = std::fs::read_to_string(dir.path().join("prod.tfstate.sha256")).expect("sha");
    let check = std::process::Command::new("sha256sum")
        .arg("-c")
        .arg(dir.path().join("prod.tfstate.sha256"))
        .current_dir(dir.path())
        .output()
        .expect("sha256sum");
    assert!(check.status.success(), "{sha}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("prod.tfstate.version"))
            .expect("v")
            .trim(),
        v3
    );
}

#[test]
fn fallback_and_return_lose_no_state() {
    let moto = Moto::start();
    let tf = three_applies(&moto, "tfstate-fb");
    let before = moto.version_count("tfstate-fb", "terraform.tfstate");
    let out = pvedr_testkit::run_code(
        pvedr_testkit::bin("tfstate-versions")
            .envs(s3_env())
            .args(["fallback", "--yes", "--dir"])
            .arg(tf.path()),
        0,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("IS NOW IN FALLBACK"));
    assert!(tf.path().join("terraform.tfstate").exists());
    let main = std::fs::read_to_string(tf.path().join("main.tf")).expect("main");
    assert!(
        main.contains("backend \"s3\""),
        "the user's file is untouched"
    );
    // Work goes on locally.
    tf.apply("four");
    assert_eq!(
        moto.version_count("tfstate-fb", "terraform.tfstate"),
        before,
        "S3 untouched meanwhile"
    );
    pvedr_testkit::run_code(
        pvedr_testkit::bin("tfstate-versions")
            .envs(s3_env())
            .args(["return", "--yes", "--dir"])
            .arg(tf.path()),
        0,
    );
    let after = moto.version_count("tfstate-fb", "terraform.tfstate");
    assert!(
        after > before,
        "the local work went back to S3 as a new version ({before} → {after})"
    );
    let pulled: Value = serde_json::from_str(&tf.ok(&["state", "pull"])).expect("state");
    assert_eq!(pulled["outputs"]["v"]["value"], "four");
    assert!(pulled["serial"].as_u64().unwrap_or(0) >= 4);
    assert!(
        !tf.path().join("terraform.tfstate").exists(),
        "leftovers archived"
    );
    assert!(std::fs::read_dir(tf.path()).expect("dir").any(|e| {
        e.map(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".pvedr-fallback-")
        })
        .unwrap_or(false)
    }));
    plans_no_change(&tf, "four");
}

/// fallback and return keep the change contract: the plan first; `--dry-run` changes
/// nothing (and says when the directory cannot go); without a terminal and without `--yes`
/// nothing is done and the run exits 2 naming `--yes`.
#[test]
fn fallback_and_return_show_their_plan_and_need_yes() {
    let moto = Moto::start();
    let tf = three_applies(&moto, "tfstate-fbp");
    let ov = tf.path().join("pvedr_fallback_override.tf");
    let run = |args: &[&str], code: i32| {
        pvedr_testkit::run_code(
            pvedr_testkit::bin("tfstate-versions")
                .envs(s3_env())
                .args(args)
                .arg("--dir")
                .arg(tf.path()),
            code,
        )
    };
    let out = run(&["fallback", "--dry-run"], 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("init -migrate-state -force-copy"), "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
    let planned = json_lines(&out.stdout);
    assert_eq!(planned.len(), 3, "one planned step per change");
    assert!(planned.iter().all(|r| r["status"] == "planned"));
    assert!(!ov.exists(), "a dry run wrote the override");
    let out = run(&["fallback"], 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"));
    assert!(!ov.exists(), "fallback without --yes wrote the override");
    assert!(!tf.path().join("terraform.tfstate").exists());
    let out = run(&["return", "--dry-run"], 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not in fallback"));
    run(&["fallback", "--yes"], 0);
    assert!(ov.exists());
    let out = run(&["return", "--dry-run"], 0);
    assert!(String::from_utf8_lossy(&out.stderr).contains(".pvedr-fallback-"));
    assert!(ov.exists(), "a dry run of return moved the override");
}

#[test]
fn bad_input_and_clear_errors() {
    let moto = Moto::start();
    let out = pvedr_testkit::run_code(tool(&moto, "no-such-bucket").args(["list"]), 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("NoSuchBucket"), "{err}");
    assert!(
        err.contains(&format!("no-such-bucket at {}:", moto.endpoint())),
        "the endpoint tried is named: {err}"
    );
    assert_eq!(
        err.lines().count(),
        1,
        "one clear line, not a stack of SDK text: {err}"
    );
    pvedr_testkit::run_code(
        pvedr_testkit::bin("tfstate-versions").args(["--bucket", "Bad_Name", "list"]),
        2,
    );
}

#[test]
fn a_refused_connection_names_the_endpoint_and_why() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind")
        .port();
    let ep = format!("http://127.0.0.1:{port}");
    let runs: [&[&str]; 3] = [
        &["list"],
        &["restore", "latest", "--yes"],
        &["export", "--to"],
    ];
    let dir = tempfile::tempdir().expect("tmp");
    for args in runs {
        let mut c = pvedr_testkit::bin("tfstate-versions");
        c.envs(s3_env())
            .args(["--endpoint", &ep, "--env", "prod"])
            .args(args);
        if args == ["export", "--to"] {
            c.arg(dir.path());
        }
        let out = pvedr_testkit::run_code(&mut c, 1);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("tfstate-prod") && err.contains(&format!(" at {ep}: ")),
            "{args:?}: the bucket and the endpoint tried are named: {err}"
        );
        assert!(
            err.to_ascii_lowercase().contains("connection refused"),
            "{args:?}: and why: {err}"
        );
    }
}

#[test]
fn an_env_that_names_no_valid_bucket_is_a_usage_error_before_any_contact() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    silent.set_nonblocking(true).expect("nonblocking");
    let ep = format!("http://{}", silent.local_addr().expect("addr"));
    for env in ["..", "a..b", "prod-", ".prod"] {
        let out = pvedr_testkit::run_code(
            pvedr_testkit::bin("tfstate-versions").envs(s3_env()).args([
                "--endpoint",
                &ep,
                "--env",
                env,
                "list",
            ]),
            2,
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("invalid --env"), "{env}: {err}");
    }
    let out = pvedr_testkit::run_code(
        pvedr_testkit::bin("tfstate-versions").envs(s3_env()).args([
            "--endpoint",
            &ep,
            "--bucket",
            "10.0.0.1",
            "list",
        ]),
        2,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid bucket name"));
    assert!(silent.accept().is_err(), "the endpoint was contacted");
}

#[test]
fn restore_updates_the_legacy_dynamodb_digest() {
    let moto = Moto::start();
    moto.create_versioned_bucket("tfstate-legacy");
    moto.boto(
        "tfstate-legacy",
        "import boto3\ndb = boto3.client('dynamodb', endpoint_url=s3.meta.endpoint_url, aws_access_key_id='test', aws_secret_access_key='testtest', region_name='us-east-1')\ndb.create_table(TableName='tflock', KeySchema=[{'AttributeName': 'LockID', 'KeyType': 'HASH'}], AttributeDefinitions=[{'AttributeName': 'LockID', 'AttributeType': 'S'}], BillingMode='PAY_PER_REQUEST')",
    );
    let tf = Tf::new(&moto, "tfstate-legacy");
    // The legacy lock: a DynamoDB table instead of the lock file.
    let main = std::fs::read_to_string(tf.path().join("main.tf")).expect("main");
    let main = main
        .replace(
            "use_lockfile                = true",
            "dynamodb_table              = \"tflock\"",
        )
        .replace(
            &format!(
                "endpoints                   = {{ s3 = \"{}\" }}",
                moto.endpoint()
            ),
            &format!(
                "endpoints                   = {{ s3 = \"{0}\", dynamodb = \"{0}\" }}",
                moto.endpoint()
            ),
        );
    std::fs::write(tf.path().join("main.tf"), main).expect("write");
    tf.ok(&["init", "-input=false", "-no-color"]);
    for v in ["one", "two"] {
        // Terraform still writes the digest item without taking the lock.
        tf.ok(&[
            "apply",
            "-auto-approve",
            "-input=false",
            "-no-color",
            "-lock=false",
            "-var",
            &format!("v={v}"),
        ]);
    }
    let recs = list(&moto, "tfstate-legacy");
    let first = recs.iter().find(|r| r["serial"] == 1).expect("1")["version_id"]
        .as_str()
        .expect("id")
        .to_string();
    let out = pvedr_testkit::run_code(
        pvedr_testkit::bin("tfstate-versions")
            .envs(s3_env())
            .arg("--backend-config")
            .arg(tf.path())
            .args(["restore", &first, "--yes"]),
        0,
    );
    let steps = json_lines(&out.stdout);
    assert!(
        steps
            .iter()
            .any(|s| s["step"] == "digest" && s["status"] == "changed"),
        "{steps:?}"
    );
    // Terraform accepts the restored state at once (a stale digest makes it fail). The lock
    // is not what is tested here: -lock=false keeps a slow machine's lock retries out.
    let plan = tf.run(&[
        "plan",
        "-detailed-exitcode",
        "-input=false",
        "-no-color",
        "-lock=false",
        "-var",
        "v=one",
    ]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&plan.stdout),
        String::from_utf8_lossy(&plan.stderr)
    );
}

#[test]
fn dry_run_and_yes_are_ignored_by_readers_and_refused_where_they_cannot_hold() {
    let moto = Moto::start();
    moto.create_versioned_bucket("tfstate-flags");
    moto.boto(
        "tfstate-flags",
        "s3.put_object(Bucket=B, Key='terraform.tfstate', Body=b'{}')",
    );
    let plain = pvedr_testkit::run_ok(tool(&moto, "tfstate-flags").arg("list")).stdout;
    let flagged =
        pvedr_testkit::run_ok(tool(&moto, "tfstate-flags").args(["list", "--yes", "--dry-run"]))
            .stdout;
    assert_eq!(json_lines(&flagged).len(), json_lines(&plain).len());
    assert!(!json_lines(&plain).is_empty());
    // export writes files and has no plan: a --dry-run is refused, not ignored.
    let dir = tempfile::tempdir().expect("tmp");
    let to = dir.path().join("export");
    let out = pvedr_testkit::run_code(
        tool(&moto, "tfstate-flags")
            .args(["export", "--dry-run", "--to"])
            .arg(&to),
        2,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no --dry-run"));
    assert!(!to.exists());
}

pub fn tool(moto: &Moto, bucket: &str) -> assert_cmd::Command {
    let mut c = pvedr_testkit::bin("tfstate-versions");
    c.envs(s3_env())
        .args(["--endpoint", &moto.endpoint(), "--bucket", bucket]);
    c
}

/// The version id of the version with this serial (from `list --inspect`).
fn version_of_serial(recs: &[Value], serial: u64) -> String {
    recs.iter().find(|r| r["serial"] == serial).expect("serial")["version_id"]
        .as_str()
        .expect("id")
        .to_string()
}
