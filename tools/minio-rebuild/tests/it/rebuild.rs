//! The rebuild of an emptied store, idempotence, and the states it must leave alone.

use pvedr_testkit::assert_says;
use pvedr_testkit::s3::Moto;
use serde_json::Value;

use crate::common::{
    entries, environment, export, exported_prod, run, statuses, step, steps, tool, wipe,
};

#[test]
fn an_empty_server_is_rebuilt_and_a_second_run_changes_nothing() {
    let moto = Moto::start();
    let (prod, lab) = (environment(&moto, "prod"), environment(&moto, "lab"));
    let dir = tempfile::tempdir().expect("tmp");
    export(&moto, &["prod", "lab"], dir.path());
    wipe(&moto);
    let rebuild = || {
        let mut c = tool(&moto.endpoint());
        c.args([
            "--env",
            "prod",
            "--env",
            "lab",
            "--noncurrent-days",
            "30",
            "--from",
        ])
        .arg(dir.path())
        .arg("--verify-dir")
        .arg(prod.path())
        .arg("--verify-dir")
        .arg(lab.path())
        .arg("--yes");
        c
    };
    let out = run(&mut rebuild(), 0);
    let s = steps(&out);
    let order: Vec<&str> = s.iter().filter_map(|r| r["step"].as_str()).collect();
    assert_eq!(
        order,
        [
            "health",
            "buckets",
            "buckets",
            "versioning",
            "versioning",
            "reseed",
            "reseed",
            "verify-backends",
            "verify-backends"
        ]
    );
    assert_eq!(statuses(&s, "health"), ["ok"]);
    for step in ["buckets", "versioning", "reseed"] {
        assert_eq!(statuses(&s, step), ["changed", "changed"], "{step}: {s:?}");
    }
    assert_eq!(statuses(&s, "verify-backends"), ["ok", "ok"], "{s:?}");
    let r = s.iter().find(|r| r["step"] == "reseed").expect("reseed");
    let exported = std::fs::read_to_string(dir.path().join("prod.tfstate.version")).expect("v");
    assert_eq!(r["export_version_id"], exported.trim());
    assert_eq!(r["serial"], 1);
    assert!(
        r["version_id"].as_str().is_some_and(|v| !v.is_empty()),
        "{r}"
    );
    // Versioning is on, and only noncurrent versions expire.
    for b in ["tfstate-prod", "tfstate-lab"] {
        assert_eq!(
            moto.boto(b, "print(s3.get_bucket_versioning(Bucket=B)['Status'])"),
            "Enabled"
        );
        let rules = moto.boto(b, "import json\nprint(json.dumps(s3.get_bucket_lifecycle_configuration(Bucket=B)['Rules']))");
        let rules: Value = serde_json::from_str(&rules).expect("rules");
        assert_eq!(
            rules[0]["NoncurrentVersionExpiration"]["NoncurrentDays"], 30,
            "{rules}"
        );
        assert!(
            rules[0].get("Expiration").is_none(),
            "the current version never expires: {rules}"
        );
    }
    // The states are the exported bytes, and Terraform reads them.
    let exported = std::fs::read(dir.path().join("prod.tfstate")).expect("export");
    let stored = moto.boto("tfstate-prod", "import sys\nsys.stdout.write(s3.get_object(Bucket=B, Key='terraform.tfstate')['Body'].read().decode())");
    assert_eq!(stored.trim(), String::from_utf8_lossy(&exported).trim());
    let pulled: Value = serde_json::from_str(&lab.ok(&["state", "pull"])).expect("state");
    assert_eq!(pulled["outputs"]["v"]["value"], "one");
    // A second run finds everything in place: nothing changed, nothing written.
    let before = (
        entries(&moto, "tfstate-prod"),
        entries(&moto, "tfstate-lab"),
    );
    let out = run(&mut rebuild(), 0);
    let s = steps(&out);
    assert!(s.iter().all(|r| r["status"] == "ok"), "{s:?}");
    assert_eq!(s.len(), 9);
    assert_eq!(
        (
            entries(&moto, "tfstate-prod"),
            entries(&moto, "tfstate-lab")
        ),
        before
    );
    let summary = pvedr_testkit::json_lines(&out.stdout)
        .pop()
        .expect("summary");
    assert_eq!(summary["kind"], "summary");
    assert_eq!(summary["counts"], serde_json::json!({"ok": 9}));
}

#[test]
fn a_newer_state_in_the_bucket_is_left_untouched_unless_forced() {
    let moto = Moto::start();
    let (tf, dir) = exported_prod(&moto);
    tf.apply("two");
    let before = moto.version_count("tfstate-prod", "terraform.tfstate");
    let rebuild = |extra: &[&str]| {
        let mut c = tool(&moto.endpoint());
        c.args(["--env", "prod", "--from"])
            .arg(dir.path())
            .args(extra);
        c
    };
    // The reseed step of a run with `extra`, which has `status`; all the run wrote.
    let reseed = |extra: &[&str], status: &str| {
        let out = run(&mut rebuild(extra), 0);
        let r = step(&steps(&out), "reseed").clone();
        assert_eq!(r["status"], status, "{r}");
        (r, out)
    };
    let (r, _) = reseed(&["--yes"], "skipped");
    let m = r["message"].as_str().unwrap_or("");
    assert!(
        m.contains("newer state (serial 2 > the export's 1)") && m.contains("--force"),
        "{m}"
    );
    assert_eq!(
        moto.version_count("tfstate-prod", "terraform.tfstate"),
        before
    );
    let pulled: Value = serde_json::from_str(&tf.ok(&["state", "pull"])).expect("state");
    assert_eq!(pulled["outputs"]["v"]["value"], "two", "left untouched");
    // A dry run with --force only plans it.
    let out = run(&mut rebuild(&["--force", "--dry-run"]), 0);
    assert_eq!(statuses(&steps(&out), "reseed"), ["planned"]);
    assert_eq!(
        moto.version_count("tfstate-prod", "terraform.tfstate"),
        before
    );
    // --force puts the export back; the newer one stays in the history, with the way back.
    let (r, out) = reseed(&["--force", "--yes"], "changed");
    let back = r["way_back"].as_str().unwrap_or("");
    assert!(
        back.starts_with("tfstate-versions --endpoint") && back.contains(" restore "),
        "{back}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains(back));
    assert_eq!(
        moto.version_count("tfstate-prod", "terraform.tfstate"),
        before + 1
    );
    let pulled: Value = serde_json::from_str(&tf.ok(&["state", "pull"])).expect("state");
    assert_eq!(pulled["serial"], 1);
}

#[test]
fn a_damaged_export_is_refused_and_nothing_is_uploaded() {
    let moto = Moto::start();
    let (_tf, dir) = exported_prod(&moto);
    wipe(&moto);
    let f = dir.path().join("prod.tfstate");
    let text = std::fs::read_to_string(&f)
        .expect("export")
        .replace("\"one\"", "\"0ne\"");
    std::fs::write(&f, text).expect("tamper");
    let out = run(
        tool(&moto.endpoint())
            .args(["--env", "prod", "--yes", "--from"])
            .arg(dir.path()),
        1,
    );
    let s = steps(&out);
    let r = s.iter().find(|r| r["step"] == "reseed").expect("reseed");
    assert_eq!(r["status"], "failed");
    assert!(
        r["message"].as_str().unwrap_or("").contains("is damaged"),
        "{r}"
    );
    assert_eq!(moto.version_count("tfstate-prod", "terraform.tfstate"), 0);
}

#[test]
fn changes_need_yes_and_bad_flags_are_usage_errors() {
    let moto = Moto::start();
    // No terminal, no --yes: nothing is created.
    let out = run(tool(&moto.endpoint()).args(["--env", "prod"]), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"));
    assert!(moto.boto("x", "print(len(s3.list_buckets()['Buckets']))") == "0");
    // A dry run reads only: the bucket is planned, not made.
    let out = run(
        tool(&moto.endpoint()).args(["--env", "prod", "--noncurrent-days", "7", "--dry-run"]),
        0,
    );
    let s = steps(&out);
    assert_eq!(statuses(&s, "buckets"), ["planned"]);
    assert_eq!(statuses(&s, "versioning"), ["planned"]);
    assert!(moto.boto("x", "print(len(s3.list_buckets()['Buckets']))") == "0");
    run(tool(&moto.endpoint()).arg("--yes"), 2);
    run(tool(&moto.endpoint()).args(["--env", "Prod;x", "--yes"]), 2);
    run(
        tool(&moto.endpoint()).args(["--env", "prod", "--wait", "soon", "--yes"]),
        2,
    );
    run(
        tool(&moto.endpoint()).args(["--env", "prod", "--noncurrent-days", "0", "--yes"]),
        2,
    );
    run(tool("ftp://x").args(["--env", "prod", "--yes"]), 2);
}

#[test]
fn drift_in_an_environment_is_reported_with_its_count_and_changes_nothing() {
    let moto = Moto::start();
    let tf = environment(&moto, "prod");
    // The state now says v = two; the configuration's default is one: one change pending.
    tf.apply("two");
    let dir = tempfile::tempdir().expect("tmp");
    export(&moto, &["prod"], dir.path());
    // Drift this run did not cause is not a change: every run over it, the first
    // included, reports `ok` with the count, and a second run nothing but `ok`.
    for pass in ["first", "second"] {
        let out = run(
            tool(&moto.endpoint())
                .args([
                    "--env",
                    "prod",
                    "--noncurrent-days",
                    "30",
                    "--yes",
                    "--from",
                ])
                .arg(dir.path())
                .arg("--verify-dir")
                .arg(tf.path()),
            0,
        );
        let s = steps(&out);
        let v = step(&s, "verify-backends");
        assert_eq!(v["status"], "ok", "{pass} run: {v}");
        assert_eq!(v["changes"], 1);
        assert!(v["message"].as_str().unwrap_or("").contains("drift"));
        assert!(String::from_utf8_lossy(&out.stderr).contains("drift"));
        if pass == "second" {
            let not_ok: Vec<_> = s.iter().filter(|r| r["status"] != "ok").collect();
            assert!(not_ok.is_empty(), "second run: {not_ok:?}");
        }
    }
    // A directory whose backend cannot initialise fails, with a way forward.
    let broken = tempfile::tempdir().expect("tmp");
    std::fs::write(
        broken.path().join("main.tf"),
        std::fs::read_to_string(tf.path().join("main.tf"))
            .expect("main")
            .replace("\"tfstate-prod\"", "\"tfstate-gone\""),
    )
    .expect("write");
    let out = run(
        tool(&moto.endpoint())
            .args(["--env", "prod", "--yes", "--verify-dir"])
            .arg(broken.path()),
        1,
    );
    let s = steps(&out);
    let v = step(&s, "verify-backends");
    assert_eq!(v["status"], "failed");
    assert_says(v, "message", "check the backend block");
}

#[test]
fn a_bucket_the_server_refuses_names_the_endpoint_tried() {
    let moto = Moto::start();
    let front = pvedr_testkit::s3::S3Front::start(&moto);
    // ListBuckets (the health check) passes; the bucket itself is refused.
    front.answer_status("HEAD /tfstate-prod", "", 403, "");
    let out = run(tool(&front.endpoint()).args(["--env", "prod", "--yes"]), 1);
    let s = steps(&out);
    assert_eq!(statuses(&s, "health"), ["ok"], "{s:?}");
    let b = s.iter().find(|r| r["step"] == "buckets").expect("buckets");
    assert_eq!(b["status"], "failed");
    let m = b["message"].as_str().unwrap_or("");
    assert!(
        m.contains(&format!("bucket tfstate-prod at {}: ", front.endpoint())) && m.contains("403"),
        "{m}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains(&front.endpoint()));
}
