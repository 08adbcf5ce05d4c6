//! A signal during `restore`: the short write sequence (lock, write, read back, release)
//! finishes, its records are written, the lock is gone, exit 130. moto answers at once, so
//! the testkit's S3 front holds the state's PUT for a while: time for the signal.

use std::time::Duration;

use pvedr_testkit::json_lines;
use pvedr_testkit::s3::{HungTerraform, Moto, S3Front, Tf, s3_env, still_running, wait_bounded};

#[test]
fn a_signal_during_restore_finishes_the_write_and_releases_the_lock() {
    let moto = Moto::start();
    let tf = Tf::initialised(&moto, "tfstate-sig");
    for v in ["one", "two"] {
        tf.apply(v);
    }
    let list =
        pvedr_testkit::run_ok(crate::s3::tool(&moto, "tfstate-sig").args(["list", "--inspect"]));
    let first = json_lines(&list.stdout)
        .iter()
        .find(|r| r["serial"] == 1)
        .and_then(|r| r["version_id"].as_str().map(String::from))
        .expect("serial 1");
    // The state's PUT (not the lock's) is held for 3 s, then passed on.
    let front = S3Front::start(&moto);
    front.delay(
        "PUT /tfstate-sig/terraform.tfstate",
        ".tflock",
        Duration::from_secs(3),
    );
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("tfstate-versions"))
        .envs(s3_env())
        .args([
            "--endpoint",
            &front.endpoint(),
            "--bucket",
            "tfstate-sig",
            "restore",
            &first,
            "--yes",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // The lock is taken, then the state's PUT is held: the signal lands mid-write.
    let mid_write = (0..300).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        front.seen("PUT /tfstate-sig/terraform.tfstate ")
            || front.seen("PUT /tfstate-sig/terraform.tfstate?")
    });
    assert!(mid_write, "the restore never wrote the state");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    let steps = json_lines(&out.stdout);
    for s in ["take-lock", "write", "verify", "release-lock"] {
        assert!(
            steps.iter().any(|r| r["step"] == s),
            "no {s} step: {steps:?}"
        );
    }
    let locks = moto.boto(
        "tfstate-sig",
        "print(len(s3.list_objects_v2(Bucket=B, Prefix='terraform.tfstate.tflock').get('Contents', [])))",
    );
    assert_eq!(locks, "0", "the lock was left behind");
}

/// A signal while `fallback` runs a Terraform that hangs: Terraform is asked to stop
/// (SIGINT to its group), does, and is gone when the tool exits 130; the override is
/// removed, and the record says which lock may be left and how to release it.
#[test]
fn a_signal_during_fallback_stops_terraform_and_puts_the_directory_back() {
    let dir = tempfile::tempdir().expect("tmp");
    let backend = "terraform {\n  backend \"s3\" {\n    bucket = \"tfstate-fb\"\n    key = \"terraform.tfstate\"\n  }\n}\n";
    std::fs::write(dir.path().join("main.tf"), backend).expect("main.tf");
    let tf = HungTerraform::new(&[], false);
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("tfstate-versions"))
        .envs(s3_env())
        .args(["fallback", "--yes", "--dir"])
        .arg(dir.path())
        .arg("--terraform-bin")
        .arg(tf.bin())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let hung = tf.started();
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let out = wait_bounded(child, Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(tf.got_sigint(), "terraform was not asked to stop (SIGINT)");
    assert!(!still_running(hung), "terraform outlived the tool");
    assert!(
        !dir.path().join("pvedr_fallback_override.tf").exists(),
        "the override was left behind"
    );
    let steps = json_lines(&out.stdout);
    let m = steps
        .iter()
        .find(|r| r["step"] == "migrate")
        .and_then(|r| r["message"].as_str().map(String::from))
        .unwrap_or_default();
    assert!(
        m.contains("interrupted") && m.contains("tfstate-fb/terraform.tfstate"),
        "{steps:?}"
    );
    assert!(m.contains("force-unlock"), "{m}");
}
