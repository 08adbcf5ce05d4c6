//! Streaming through the transports: an archive's worth of bytes from a node into a writer,
//! and back into a command's stdin, in bounded memory.

use crate::{peak_rss, ssh};
use std::io::{Read, Write};

use pvedr::transport::{Local, RemoteCommand, Transport};
use pvedr_testkit::{SimNode, Sshd};
use sha2::{Digest, Sha256};

/// Counts what it is given and whether all of it was zero, keeping nothing.
#[derive(Default)]
struct Sink {
    bytes: u64,
    nonzero: bool,
}

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.bytes += b.len() as u64;
        self.nonzero |= b.iter().any(|&x| x != 0);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Pseudo-random bytes, made as they are read (none of them held).
struct Gen {
    left: u64,
    x: u64,
}

impl Read for Gen {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        for b in &mut buf[..n] {
            self.x ^= self.x << 13;
            self.x ^= self.x >> 7;
            self.x ^= self.x << 17;
            *b = self.x as u8;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// The measurement runs alone in a child process of this test binary, so that no other
/// test's memory counts in its peak.
#[test]
fn one_gib_streams_over_ssh_in_bounded_memory() {
    crate::run_alone("stream::gib_alone", "PVEDR_GIB_ALONE", "1");
}

#[test]
#[ignore = "run alone by one_gib_streams_over_ssh_in_bounded_memory"]
fn gib_alone() {
    if std::env::var_os("PVEDR_GIB_ALONE").is_none() {
        return;
    }
    const GIB: u64 = 1 << 30;
    let sim = SimNode::empty();
    let sshd = Sshd::start(&sim);
    let t = ssh(&sshd);
    let mut sink = Sink::default();
    let cmd = RemoteCommand::read(["head", "-c", &GIB.to_string(), "/dev/zero"]);
    let r = t.exec_stream(&cmd, &mut sink).unwrap();
    assert!(r.success(), "{}", r.stderr);
    assert_eq!((r.bytes, sink.bytes), (GIB, GIB));
    assert!(!sink.nonzero, "every byte arrived as sent");
    let peak = peak_rss();
    println!("peak RSS after 1 GiB: {} MiB", peak >> 20);
    assert!(peak < 64 << 20, "peak RSS {} MiB", peak >> 20);
}

#[test]
fn stdin_goes_to_the_remote_command_whole() {
    let sim = SimNode::empty();
    let sshd = Sshd::start(&sim);
    let t = ssh(&sshd);
    let len = 48u64 << 20;
    let mut expect = Sha256::new();
    std::io::copy(&mut Gen { left: len, x: 7 }, &mut HashWriter(&mut expect)).unwrap();
    let expect = format!("{:x}", expect.finalize());
    for tr in [&t as &dyn Transport, &Local::default()] {
        let out = tr
            .exec_with_stdin(
                &RemoteCommand::write(["sha256sum"]),
                &mut Gen { left: len, x: 7 },
            )
            .unwrap();
        assert!(out.success(), "{}", out.stderr);
        let got = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            got.split_whitespace().next(),
            Some(expect.as_str()),
            "{}",
            tr.host()
        );
    }
}

#[test]
fn a_failing_stream_reports_status_and_stderr() {
    let sim = SimNode::empty();
    let sshd = Sshd::start(&sim);
    let cmd = RemoteCommand::read(["sh", "-c", "printf abc; echo 'zstd: damaged' >&2; exit 3"]);
    for tr in [&ssh(&sshd) as &dyn Transport, &Local::default()] {
        let mut sink = Vec::new();
        let r = tr.exec_stream(&cmd, &mut sink).unwrap();
        assert_eq!(
            (r.status, r.bytes, sink.as_slice()),
            (3, 3, &b"abc"[..]),
            "{}",
            tr.host()
        );
        assert_eq!(r.stderr.trim(), "zstd: damaged");
    }
}

struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.update(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
