//! What a hostile user, export directory or server can hand the tool: names that make no
//! bucket, files that are not files, text that would drive the terminal.

use std::net::TcpListener;
use std::time::Duration;

use pvedr_testkit::s3::Moto;

use crate::common::{env, exported_prod, run, steps, tool, wipe};

/// A loopback endpoint that counts the connections made to it.
struct Silent(TcpListener);

impl Silent {
    fn new() -> Silent {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.set_nonblocking(true).expect("nonblocking");
        Silent(l)
    }
    fn endpoint(&self) -> String {
        format!("http://{}", self.0.local_addr().expect("addr"))
    }
    fn contacted(&self) -> bool {
        self.0.accept().is_ok()
    }
}

#[test]
fn an_env_or_bucket_that_names_no_valid_bucket_is_a_usage_error_before_any_contact() {
    let s = Silent::new();
    for bad in [
        ["--env", ".."],
        ["--env", "a..b"],
        ["--env", "prod-"],
        ["--env", "prod."],
        ["--bucket", "192.168.5.4"],
        ["--bucket", ".tfstate"],
        ["--bucket", "a.-b"],
    ] {
        let out = run(tool(&s.endpoint()).args(bad).arg("--yes"), 2);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("invalid"), "{bad:?}: {err}");
        assert!(out.stdout.is_empty(), "{bad:?}");
    }
    assert!(!s.contacted(), "the endpoint was contacted");
}

/// A FIFO or a `/dev/zero` symlink beside an export: refused as not a regular file, before
/// anything is uploaded. The tool runs under a 512 MiB data limit, so reading `/dev/zero`
/// to its end (what it once did with `.version`, after the upload) aborts instead of
/// eating the machine; a FIFO once blocked the read for ever (the timeout catches it).
#[test]
fn a_fifo_or_device_beside_an_export_is_refused_before_any_upload() {
    let moto = Moto::start();
    let (_prod, dir) = exported_prod(&moto);
    for (name, how) in [
        ("prod.tfstate.sha256", "fifo"),
        ("prod.tfstate.sha256", "zero"),
        ("prod.tfstate.version", "zero"),
        ("prod.tfstate.version", "fifo"),
    ] {
        wipe(&moto);
        let d = tempfile::tempdir().expect("tmp");
        for f in [
            "prod.tfstate",
            "prod.tfstate.sha256",
            "prod.tfstate.version",
        ] {
            std::fs::copy(dir.path().join(f), d.path().join(f)).expect("copy");
        }
        let p = d.path().join(name);
        std::fs::remove_file(&p).expect("rm");
        if how == "fifo" {
            let ok = std::process::Command::new("mkfifo").arg(&p).status();
            assert!(ok.is_ok_and(|s| s.success()), "mkfifo");
        } else {
            std::os::unix::fs::symlink("/dev/zero", &p).expect("symlink");
        }
        let mut c = assert_cmd::Command::new("prlimit");
        c.envs(env())
            .arg("--data=536870912")
            .arg("--")
            .arg(assert_cmd::cargo::cargo_bin("minio-rebuild"))
            .args([
                "--endpoint",
                &moto.endpoint(),
                "--env",
                "prod",
                "--wait",
                "5s",
            ])
            .args(["--yes", "--from"])
            .arg(d.path())
            .timeout(Duration::from_secs(30));
        let out = run(&mut c, 1);
        let s = steps(&out);
        let r = s.iter().find(|r| r["step"] == "reseed").expect("reseed");
        let m = r["message"].as_str().unwrap_or("");
        assert_eq!(r["status"], "failed", "{name} {how}: {r}");
        assert!(m.contains("not a regular file"), "{name} {how}: {m}");
        assert!(m.contains("nothing uploaded"), "{name} {how}: {m}");
        assert_eq!(
            moto.version_count("tfstate-prod", "terraform.tfstate"),
            0,
            "{name} {how}: a state was uploaded"
        );
    }
}

/// A lineage read from S3 and a file name read from the export directory that carry a
/// terminal escape and a newline followed by a forged tool line: on stderr and in the table
/// they stay on their line, the escape shown, not sent.
#[test]
fn text_from_s3_or_files_cannot_drive_the_terminal_or_forge_a_line() {
    let moto = Moto::start();
    let (_prod, dir) = exported_prod(&moto);
    moto.boto(
        "tfstate-prod",
        r#"s3.put_object(Bucket=B, Key="terraform.tfstate", Body=json.dumps({"version": 4, "serial": 99, "lineage": "\u001b[2J\nminio-rebuild: forged", "resources": []}).encode())"#,
    );
    std::fs::write(
        dir.path()
            .join("x\u{1b}[31m\nminio-rebuild: forged.tfstate"),
        "{}",
    )
    .expect("write");
    let out = run(
        tool(&moto.endpoint())
            .args(["--env", "prod", "--yes", "--format", "table", "--from"])
            .arg(dir.path()),
        0,
    );
    for (name, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let text = String::from_utf8_lossy(text);
        assert!(!text.contains('\u{1b}'), "a raw escape on {name}: {text:?}");
        assert!(
            !text.lines().any(|l| l.starts_with("minio-rebuild: forged")),
            "a forged line on {name}: {text}"
        );
    }
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("\\u{1b}[2J\\nminio-rebuild: forged"),
        "{table}"
    );
}
