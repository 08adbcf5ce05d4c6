//! A store that is down before the run: the wait fails when it stays down, and the run
//! completes when the server comes back within the wait.

use pvedr_testkit::assert_says;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};

use pvedr_testkit::s3::venv_bin;

use crate::common::{assert_no_secret, env, free_port, run, statuses, steps, tool};

#[test]
fn a_store_that_stays_down_fails_the_wait() {
    let ep = format!("http://127.0.0.1:{}", free_port());
    let out = run(
        tool(&ep).args(["--env", "prod", "--wait", "3s", "--yes"]),
        1,
    );
    let s = steps(&out);
    assert_eq!(statuses(&s, "health"), ["skipped"]);
    assert_eq!(statuses(&s, "wait"), ["failed"]);
    assert!(
        statuses(&s, "buckets").is_empty(),
        "nothing after the failure: {s:?}"
    );
    let m = s[1]["message"].as_str().unwrap_or("");
    assert!(
        m.contains("unreachable") && m.contains("ListBuckets") && m.contains("--wait"),
        "{m}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("minio-rebuild: waiting for"),
        "progress on stderr: {err}"
    );
    // A secret in the endpoint's user:password is not printed either (run() checks).
    let port = ep.rsplit(':').next().unwrap_or("1");
    let with_secret = format!("http://ak:{}@127.0.0.1:{port}", crate::common::SECRET);
    let out = run(
        tool(&with_secret).args(["--env", "prod", "--wait", "1s", "--yes"]),
        1,
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("http://127.0.0.1:{port}")));
    // A dry run does not wait: it plans.
    let out = run(tool(&ep).args(["--env", "prod", "--dry-run"]), 0);
    let s = steps(&out);
    assert_eq!(statuses(&s, "wait"), ["planned"]);
    assert_eq!(statuses(&s, "buckets"), ["planned"]);
}

/// A moto server on a given port, killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// minio-rebuild waiting up to a minute for a store, its records line-buffered, and the
/// first record it wrote (health's, once it waits).
struct Waiting {
    child: std::process::Child,
    stdout: BufReader<std::process::ChildStdout>,
    first: String,
}

fn waiting_on(ep: &str) -> Waiting {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("minio-rebuild"))
        .envs(env())
        .args([
            "--endpoint",
            ep,
            "--env",
            "prod",
            "--wait",
            "60s",
            "--yes",
            "-u",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("health record");
    Waiting {
        child,
        stdout,
        first,
    }
}

impl Waiting {
    /// The run to its end: every record, its stderr and how it exited.
    fn finish(mut self) -> std::process::Output {
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).expect("records");
        let mut err = Vec::new();
        self.child
            .stderr
            .take()
            .expect("stderr")
            .read_to_end(&mut err)
            .expect("stderr");
        std::process::Output {
            status: self.child.wait().expect("exit"),
            stdout: format!("{}{rest}", self.first).into_bytes(),
            stderr: err,
        }
    }
}

#[test]
fn a_store_brought_back_within_the_wait_completes_the_run() {
    let port = free_port();
    let ep = format!("http://127.0.0.1:{port}");
    let w = waiting_on(&ep);
    assert!(
        w.first.contains("\"step\":\"health\"") && w.first.contains("skipped"),
        "{}",
        w.first
    );
    // The store comes back while the tool waits.
    let _server = Server(
        Command::new(venv_bin("moto_server", "PVEDR_MOTO_SERVER"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto"),
    );
    let out = w.finish();
    assert_no_secret(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = steps(&out);
    assert_eq!(statuses(&s, "wait"), ["ok"]);
    assert_eq!(statuses(&s, "buckets"), ["changed"]);
    assert_eq!(statuses(&s, "versioning"), ["changed"]);
}

#[test]
fn an_interrupted_wait_ends_with_its_record_and_exit_130() {
    let ep = format!("http://127.0.0.1:{}", free_port());
    let w = waiting_on(&ep);
    assert!(w.first.contains("\"step\":\"health\""), "{}", w.first);
    // The health record is out: the tool is waiting. SIGTERM, with the shell's own kill.
    let killed = Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", w.child.id())])
        .status()
        .expect("kill");
    assert!(killed.success());
    let out = w.finish();
    assert_no_secret(&out);
    assert_eq!(out.status.code(), Some(130));
    let s = steps(&out);
    assert_eq!(statuses(&s, "wait"), ["failed"]);
    assert_says(&s[1], "message", "interrupted");
    let summary = pvedr_testkit::json_lines(&out.stdout)
        .pop()
        .expect("summary");
    assert_eq!(summary["exit_code"], 130);
}
