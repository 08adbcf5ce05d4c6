//! The lib's engines against real parts: OpenSSH on loopback (the simulator's node) and a
//! moto S3 server (with the `s3` feature, as the workspace builds it).

#![allow(clippy::unwrap_used)]

mod fuzz;
#[cfg(feature = "s3")]
mod restream;
#[cfg(feature = "s3")]
mod s3;
mod stream;

use pvedr::transport::{Ssh, SshOptions};
use pvedr_testkit::Sshd;

/// The SSH transport to `sshd`'s node.
fn ssh(sshd: &Sshd) -> Ssh {
    let mut o = SshOptions::new("127.0.0.1");
    o.port = sshd.port();
    o.identity = Some(sshd.client_key());
    o.known_hosts = Some(sshd.known_hosts());
    Ssh::new(o)
}

/// Peak resident memory of this process (VmHWM), in bytes.
fn peak_rss() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = s
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

/// Runs the ignored test `name` alone in a child process of this test binary, with `var` set
/// to `value` (so that no other test's memory counts in its peak); it must pass.
fn run_alone(name: &str, var: &str, value: &str) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--include-ignored", "--test-threads=1"])
        .arg("--nocapture")
        .env(var, value)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.contains("1 passed"), "{text}");
}

/// The bucket `name` of the S3 server at `url`, with moto's credentials.
#[cfg(feature = "s3")]
fn bucket_at(url: String, name: &str) -> pvedr::s3::Bucket {
    let ep = pvedr::s3::Endpoint {
        url: Some(url),
        region: "us-east-1".into(),
        timeouts: Default::default(),
    };
    let secret = pvedr::s3::Secret {
        ak: "test".into(),
        sk: "testtest".into(),
        token: None,
    };
    pvedr::s3::Bucket::connect_with(&ep, name, secret).unwrap()
}
