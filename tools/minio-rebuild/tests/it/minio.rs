//! MinIO detection, and a server that refuses the credentials. No MinIO server can be installed here and moto answers 404 on MinIO's
//! health paths, so this test puts a small local endpoint in front of moto that answers
//! like MinIO: `Server: MinIO` and 200 (or 503) on `/minio/health/live` and
//! `/minio/health/ready`; every other request is passed through to moto unchanged.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use pvedr_testkit::s3::Moto;

use crate::common::{run, statuses, steps, tool};
use serde_json::Value;

/// The fake MinIO front: its endpoint, and whether `/minio/health/ready` says 503.
struct FakeMinio {
    endpoint: String,
    not_ready: Arc<AtomicBool>,
}

fn start(moto_port: u16) -> FakeMinio {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let not_ready = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&not_ready);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let flag = Arc::clone(&flag);
            std::thread::spawn(move || serve(conn, moto_port, &flag));
        }
    });
    FakeMinio {
        endpoint,
        not_ready,
    }
}

/// The request head, read up to its blank line (bounded); `None` when the client left.
fn read_head(conn: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    Some(head)
}

/// Answers health paths itself, pipes the rest to moto.
fn serve(mut conn: TcpStream, moto_port: u16, not_ready: &AtomicBool) {
    let Some(head) = read_head(&mut conn) else {
        return;
    };
    let line = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    let path = line.split(' ').nth(1).unwrap_or("");
    if path.starts_with("/minio/health/") {
        let ok = path == "/minio/health/live" || !not_ready.load(Ordering::SeqCst);
        let status = if ok {
            "200 OK"
        } else {
            "503 Service Unavailable"
        };
        let _ = write!(
            conn,
            "HTTP/1.1 {status}\r\nServer: MinIO\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        return;
    }
    let Ok(upstream) = TcpStream::connect(("127.0.0.1", moto_port)) else {
        return;
    };
    pvedr_testkit::s3::relay(conn, upstream, &head);
}

/// The run's steps, the first the `health` step with `status`, its message saying `says`.
fn health(out: &std::process::Output, status: &str, says: &str) -> Vec<Value> {
    let s = steps(out);
    assert_eq!(statuses(&s, "health"), [status]);
    let m = s[0]["message"].as_str().unwrap_or("");
    assert!(m.contains(says), "{m}");
    s
}

#[test]
fn minio_is_checked_on_its_health_endpoints() {
    let moto = Moto::start();
    let fake = start(moto.port);
    let out = run(tool(&fake.endpoint).args(["--env", "prod", "--yes"]), 0);
    let s = health(
        &out,
        "ok",
        "MinIO /minio/health/live and /minio/health/ready: HTTP 200",
    );
    assert_eq!(
        statuses(&s, "buckets"),
        ["changed"],
        "S3 calls go through: {s:?}"
    );
    // Live but not ready: unhealthy, and the wait says what it tried.
    fake.not_ready.store(true, Ordering::SeqCst);
    let out = run(
        tool(&fake.endpoint).args(["--env", "prod", "--wait", "2s", "--yes"]),
        1,
    );
    let s = health(
        &out,
        "skipped",
        "MinIO is live but /minio/health/ready: HTTP 503",
    );
    let w = s[1]["message"].as_str().unwrap_or("");
    assert!(
        w.contains("MinIO's /minio/health/live and /minio/health/ready"),
        "{w}"
    );
}

#[test]
fn minio_forces_the_health_probes_on_a_server_that_does_not_say_so() {
    let moto = Moto::start();
    let out = run(
        tool(&moto.endpoint()).args(["--env", "prod", "--minio", "--wait", "1s", "--yes"]),
        1,
    );
    let s = steps(&out);
    assert_eq!(statuses(&s, "health"), ["skipped"]);
    let m = s[0]["message"].as_str().unwrap_or("");
    assert!(m.contains("MinIO /minio/health/live: HTTP 404"), "{m}");
    assert_eq!(statuses(&s, "wait"), ["failed"]);
}

/// An S3 server that answers every request as S3 does for an unknown access key.
fn refusing_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            if read_head(&mut conn).is_none() {
                continue;
            }
            let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InvalidAccessKeyId</Code><Message>The Access Key Id you provided does not exist in our records.</Message></Error>";
            let _ = write!(
                conn,
                "HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    endpoint
}

#[test]
fn refused_credentials_fail_at_once_instead_of_waiting() {
    let ep = refusing_server();
    // The default --wait is 5m: a run that waited would end with a failed wait instead.
    let out = run(tool(&ep).args(["--env", "prod", "--yes"]), 1);
    let s = steps(&out);
    assert_eq!(statuses(&s, "health"), ["failed"], "{s:?}");
    assert!(statuses(&s, "wait").is_empty(), "no wait: {s:?}");
    let m = s[0]["message"].as_str().unwrap_or("");
    assert!(
        m.contains("InvalidAccessKeyId") && m.contains("refuses these credentials"),
        "{m}"
    );
}
