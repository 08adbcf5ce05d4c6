//! A signal during `restore`: the short write sequence (lock, write, read back, release)
//! finishes, its records are written, the lock is gone, exit 130. moto answers at once, so a
//! small front in this test holds each PUT of the state for a while: time for the signal.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pvedr_testkit::json_lines;
use pvedr_testkit::s3::{Moto, Tf, s3_env};

/// An endpoint in front of moto that delays `PUT /BUCKET/terraform.tfstate` by `delay`;
/// the flag says that PUT has arrived (the lock is held by then).
fn slow_front(moto_port: u16, delay: Duration) -> (String, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&seen);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let flag = Arc::clone(&flag);
            std::thread::spawn(move || relay(conn, moto_port, delay, &flag));
        }
    });
    (endpoint, seen)
}

/// One request per connection (`Connection: close` added), so each is seen here.
fn relay(mut conn: TcpStream, moto_port: u16, delay: Duration, seen: &AtomicBool) {
    // One request's head (the SDK sends a small PUT in one go), then a plain pipe.
    let mut head = vec![0u8; 64 * 1024];
    let n = match conn.read(&mut head) {
        Ok(n) if n > 0 => n,
        _ => return,
    };
    let line = String::from_utf8_lossy(&head[..n])
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    if line.starts_with("PUT ") && line.contains("/terraform.tfstate") && !line.contains(".tflock")
    {
        seen.store(true, Ordering::SeqCst);
        std::thread::sleep(delay);
    }
    let Ok(mut up) = TcpStream::connect(("127.0.0.1", moto_port)) else {
        return;
    };
    let first_eol = head[..n].windows(2).position(|w| w == b"\r\n").unwrap_or(n);
    let mut req = head[..first_eol].to_vec();
    req.extend_from_slice(b"\r\nConnection: close");
    req.extend_from_slice(&head[first_eol..n]);
    if up.write_all(&req).is_err() {
        return;
    }
    let (mut c2, mut u2) = match (conn.try_clone(), up.try_clone()) {
        (Ok(c), Ok(u)) => (c, u),
        _ => return,
    };
    let t = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut u2);
        let _ = u2.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut up, &mut conn);
    let _ = conn.shutdown(Shutdown::Both);
    let _ = t.join();
}

#[test]
fn a_signal_during_restore_finishes_the_write_and_releases_the_lock() {
    let moto = Moto::start();
    moto.create_versioned_bucket("tfstate-sig");
    let tf = Tf::new(&moto, "tfstate-sig");
    tf.ok(&["init", "-input=false", "-no-color"]);
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
    let port: u16 = moto
        .endpoint()
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .expect("port");
    let (front, state_put) = slow_front(port, Duration::from_secs(3));
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("tfstate-versions"))
        .envs(s3_env())
        .args([
            "--endpoint",
            &front,
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
        state_put.load(Ordering::SeqCst)
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
