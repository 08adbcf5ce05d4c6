//! An archive streamed from S3 (moto) as ranged GETs, checked and decompressed, into
//! `qmrestore -` and `pct restore N -` on the simulated node over a real sshd: the same
//! guest as a restore from the file; a flipped byte, a truncated object and an S3 server
//! stopped mid-stream are typed failures.

use crate::ssh;
use std::io::Read;

use crate::bucket_at;
use pvedr::pipeline::{self, Compression, Expect, PipeError};
use pvedr::transport::{RemoteCommand, Ssh, Transport};
use pvedr_testkit::s3::{Moto, S3Front};
use pvedr_testkit::{SimNode, Sshd, demo_over_ssh};
use sha2::{Digest, Sha256};

fn sha(b: &[u8]) -> String {
    format!("{:x}", Sha256::digest(b))
}

/// A real archive of the simulator's (`pvesim-admin archive`), its bytes.
fn archive(sim: &SimNode, kind: &str, compress: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a");
    sim.admin(&[
        "archive",
        p.to_str().unwrap(),
        "--type",
        kind,
        "--compress",
        compress,
    ]);
    std::fs::read(p).unwrap()
}

struct Setup {
    moto: Moto,
    sim: SimNode,
    _sshd: Sshd,
    t: Ssh,
}

fn setup() -> Setup {
    let moto = Moto::start();
    moto.create_versioned_bucket("offsite");
    let (sim, sshd) = demo_over_ssh();
    let t = ssh(&sshd);
    Setup {
        moto,
        sim,
        _sshd: sshd,
        t,
    }
}

/// Streams `key` (expected to be `expect`) into `argv` on the node, 16 KiB parts.
fn fed(
    url: String,
    key: &str,
    expect: Expect,
    c: Compression,
    t: &Ssh,
    argv: &[&str],
    wrap: impl FnOnce(pvedr::s3::Ranged) -> Box<dyn Read + Send>,
) -> pipeline::Fed {
    let ranged = bucket_at(url, "offsite").ranged(key, expect.size, 16 * 1024, 4);
    let s = pipeline::stream(wrap(ranged), expect, c).unwrap();
    pipeline::feed(t, &RemoteCommand::write(argv.iter().copied()), s).unwrap()
}

/// What an object of exactly `b` is expected to be.
fn expect_of(b: &[u8]) -> Expect {
    Expect {
        size: b.len() as u64,
        sha256: sha(b),
    }
}

impl Setup {
    /// Puts `stored` at `key` in `offsite`, then streams it, expected to be `original`,
    /// into `argv` on the node.
    fn restream(
        &self,
        key: &str,
        stored: Vec<u8>,
        original: &[u8],
        c: Compression,
        argv: &[&str],
    ) -> pipeline::Fed {
        let url = self.moto.endpoint();
        bucket_at(url.clone(), "offsite").put(key, stored).unwrap();
        fed(url, key, expect_of(original), c, &self.t, argv, |r| {
            Box::new(r)
        })
    }
}

fn volume(sim: &SimNode, vol: &str) -> String {
    std::fs::read_to_string(sim.root().join("volumes/local-lvm").join(vol)).unwrap_or_default()
}

#[test]
fn a_vma_zst_streamed_from_s3_restores_the_guest_a_file_restore_gives() {
    let s = setup();
    let zst = archive(&s.sim, "qemu", "zstd");
    let plain = zstd::decode_all(&zst[..]).unwrap();
    let r = s.restream(
        "pve1/100/a.vma.zst",
        zst.clone(),
        &zst,
        Compression::Zstd,
        &["qmrestore", "-", "150"],
    );
    assert!(r.out.success(), "{}", r.out.stderr);
    assert_eq!(r.failed, None);
    assert_eq!(r.sha256.as_deref(), Some(sha(&zst).as_str()));
    // The same archive from a file on the node's storage.
    let dump = s.sim.dump_dir("local");
    std::fs::write(
        dump.join("vzdump-qemu-100-2024_01_01-00_00_00.vma.zst"),
        &zst,
    )
    .unwrap();
    let out =
        s.t.exec(&RemoteCommand::write([
            "qmrestore",
            "local:backup/vzdump-qemu-100-2024_01_01-00_00_00.vma.zst",
            "151",
        ]))
        .unwrap();
    assert!(out.success(), "{}", out.stderr);
    let g150 = s.sim.read_json("guests/150.json");
    let g151 = s.sim.read_json("guests/151.json");
    let same = |v: &serde_json::Value| {
        v.to_string()
            .replace("-150-", "-N-")
            .replace("-151-", "-N-")
    };
    assert_eq!(same(&g150["config"]), same(&g151["config"]));
    let data = volume(&s.sim, "vm-150-disk-0");
    assert_eq!(data, volume(&s.sim, "vm-151-disk-0"));
    assert!(data.contains(&sha(&plain)[..16]), "{data}");
}

#[test]
fn a_ct_tar_gz_streams_into_pct_restore_with_its_rootfs_given() {
    let s = setup();
    let gz = archive(&s.sim, "lxc", "gzip");
    let r = s.restream(
        "pve1/101/a.tar.gz",
        gz.clone(),
        &gz,
        Compression::Gzip,
        &[
            "pct",
            "restore",
            "160",
            "-",
            "--rootfs",
            "local-lvm:1",
            "--unprivileged",
            "1",
        ],
    );
    assert!(r.out.success(), "{}", r.out.stderr);
    assert_eq!(r.failed, None);
    let g = s.sim.read_json("guests/160.json");
    assert_eq!(g["config"]["rootfs"], "local-lvm:vm-160-disk-0,size=1G");
    assert_eq!(g["config"]["unprivileged"], "1");
    assert_eq!(
        g["config"]["hostname"], "vm100",
        "merged from the archive's pct.conf"
    );
}

#[test]
fn a_flipped_byte_in_a_plain_vma_restores_but_fails_the_sha256() {
    let s = setup();
    let plain = archive(&s.sim, "qemu", "none");
    let mut bad = plain.clone();
    // A block's data, past the header: VMA checksums do not cover it.
    let at = bad.len() - 100;
    bad[at] ^= 0x01;
    let r = s.restream(
        "k.vma",
        bad,
        &plain,
        Compression::None,
        &["qmrestore", "-", "152"],
    );
    assert!(r.out.success(), "qmrestore cannot see it: {}", r.out.stderr);
    assert!(
        matches!(r.failed, Some(PipeError::Sha256Mismatch { .. })),
        "{:?}",
        r.failed
    );
}

#[test]
fn a_truncated_object_is_typed_and_the_restore_fails_on_the_node() {
    let s = setup();
    let zst = archive(&s.sim, "qemu", "zstd");
    let half = zst.len() / 2;
    let r = s.restream(
        "k.vma.zst",
        zst[..half].to_vec(),
        &zst,
        Compression::Zstd,
        &["qmrestore", "-", "153"],
    );
    assert!(!r.out.success());
    assert!(
        matches!(r.failed, Some(PipeError::Truncated { .. })),
        "{:?}",
        r.failed
    );
}

/// Stops the S3 server once the first bytes were read.
struct StopAfter {
    inner: pvedr::s3::Ranged,
    front: std::sync::Arc<S3Front>,
    read: u64,
}

impl Read for StopAfter {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > 0 {
            self.front.stop();
        }
        Ok(n)
    }
}

#[test]
fn an_s3_server_stopped_mid_stream_is_a_typed_failure() {
    let s = setup();
    // Many parts: more than are in flight and queued when the server stops.
    let zst = archive(&s.sim, "qemu", "none");
    let big: Vec<u8> = zst.iter().copied().cycle().take(2 << 20).collect();
    bucket_at(s.moto.endpoint(), "offsite")
        .put("k.vma", big.clone())
        .unwrap();
    let front = std::sync::Arc::new(S3Front::start(&s.moto));
    let f = front.clone();
    let r = fed(
        front.endpoint(),
        "k.vma",
        expect_of(&big),
        Compression::None,
        &s.t,
        &["qmrestore", "-", "154"],
        move |r| {
            Box::new(StopAfter {
                inner: r,
                front: f,
                read: 0,
            })
        },
    );
    assert!(
        matches!(r.failed, Some(PipeError::Source { .. })),
        "{:?}",
        r.failed
    );
    assert!(r.bytes < big.len() as u64);
}

/// The measurement runs alone in a child process of this test binary (no other test's
/// memory counts): 48 MiB streamed from S3 in 1 MiB parts into `sha256sum` on the node.
#[test]
fn an_object_streams_into_the_node_in_bounded_memory() {
    let moto = Moto::start();
    moto.create_versioned_bucket("offsite");
    let body: Vec<u8> = (0..48u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let digest = sha(&body);
    bucket_at(moto.endpoint(), "offsite")
        .put("big", body)
        .unwrap();
    crate::run_alone(
        "restream::bounded_alone",
        "PVEDR_BOUNDED_ALONE",
        &format!("{} {digest}", moto.endpoint()),
    );
}

#[test]
#[ignore = "run alone by an_object_streams_into_the_node_in_bounded_memory"]
fn bounded_alone() {
    let Some(arg) = std::env::var_os("PVEDR_BOUNDED_ALONE") else {
        return;
    };
    let arg = arg.to_string_lossy().into_owned();
    let (url, digest) = arg.split_once(' ').unwrap();
    let sim = SimNode::empty();
    let sshd = Sshd::start(&sim);
    let t = ssh(&sshd);
    let size = 48u64 << 20;
    let ranged = bucket_at(url.to_string(), "offsite").ranged("big", size, 1 << 20, 4);
    let expect = Expect {
        size,
        sha256: digest.to_string(),
    };
    let s = pipeline::stream(Box::new(ranged), expect, Compression::None).unwrap();
    let r = pipeline::feed(&t, &RemoteCommand::write(["sha256sum"]), s).unwrap();
    assert_eq!(r.failed, None);
    let got = String::from_utf8_lossy(&r.out.stdout).into_owned();
    assert_eq!(got.split_whitespace().next(), Some(digest));
    let peak_kb = crate::peak_rss() >> 10;
    println!("peak RSS streaming 48 MiB: {} MiB", peak_kb >> 10);
    assert!(peak_kb < 40 << 10, "peak RSS {} MiB", peak_kb >> 10);
}
