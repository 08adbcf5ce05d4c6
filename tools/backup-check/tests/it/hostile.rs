//! --deep on hostile archives: numbers in a header that would make the checker allocate
//! or wrap. Each must come out DAMAGED with a reason, with records and metrics written,
//! never an abort (issue 11 points 1 and 2).

use std::path::Path;
use std::time::Duration;

use md5::{Digest, Md5};
use pvedr_testkit::json_lines;
use serde_json::Value;

use crate::common::deep_on_dir;

/// An uncompressed VMA with a valid header (MD5 included): one config, one device of
/// `dev_size` bytes, no extents.
fn vma(dev_size: u64) -> Vec<u8> {
    let mut blobs = vec![0u8]; // offset 0 is never used
    let mut add = |data: &[u8]| {
        let off = blobs.len() as u32;
        blobs.extend((data.len() as u16).to_le_bytes());
        blobs.extend(data);
        off
    };
    let name = add(b"qemu-server.conf\0");
    let conf = add(b"name: evil\n");
    let dev = add(b"drive-scsi0\0");
    let header_size = 12288 + blobs.len().div_ceil(512) * 512;
    let mut h = vec![0u8; header_size];
    h[0..4].copy_from_slice(b"VMA\0");
    h[4..8].copy_from_slice(&1u32.to_be_bytes());
    h[8..24].copy_from_slice(&[7u8; 16]);
    h[48..52].copy_from_slice(&12288u32.to_be_bytes());
    h[52..56].copy_from_slice(&(blobs.len() as u32).to_be_bytes());
    h[56..60].copy_from_slice(&(header_size as u32).to_be_bytes());
    h[2044..2048].copy_from_slice(&name.to_be_bytes());
    h[3068..3072].copy_from_slice(&conf.to_be_bytes());
    let base = 4096 + 32;
    h[base..base + 4].copy_from_slice(&dev.to_be_bytes());
    h[base + 8..base + 16].copy_from_slice(&dev_size.to_be_bytes());
    h[12288..12288 + blobs.len()].copy_from_slice(&blobs);
    let sum = Md5::digest(&h);
    h[32..48].copy_from_slice(&sum);
    h
}

/// A 512-byte tar header with a valid checksum. `size` is the 12-byte size field as given.
fn tar_header(name: &str, typeflag: u8, size: [u8; 12]) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(&size);
    h[136..148].copy_from_slice(b"14541000000\0");
    h[156] = typeflag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

fn octal_size(n: u64) -> [u8; 12] {
    let mut f = [0u8; 12];
    f[..12].copy_from_slice(format!("{n:011o}\0").as_bytes());
    f
}

/// GNU base-256: marker byte 0x80, then the number big-endian in the 11 bytes left.
fn base256_size(n: u64) -> [u8; 12] {
    let mut f = [0u8; 12];
    f[0] = 0x80;
    f[4..12].copy_from_slice(&n.to_be_bytes());
    f
}

/// pct.conf, then `extra`, then the end-of-archive blocks.
fn tar_with(extra: &[u8]) -> Vec<u8> {
    let conf = b"arch: amd64\nhostname: evil\n";
    let mut t = Vec::new();
    t.extend(tar_header(
        "./etc/vzdump/pct.conf",
        b'0',
        octal_size(conf.len() as u64),
    ));
    t.extend(conf);
    t.resize(t.len().div_ceil(512) * 512, 0);
    t.extend(extra);
    t.extend([0u8; 1024]);
    t
}

fn deep(dir: &Path) -> (Vec<Value>, i32, String) {
    let prom = dir.join("metrics.prom");
    let out = deep_on_dir(dir, "1")
        .arg("--prom")
        .arg(&prom)
        .timeout(Duration::from_secs(60))
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        prom.exists(),
        "no metrics file (status {:?}): {stderr}",
        out.status
    );
    (
        json_lines(&out.stdout),
        out.status.code().unwrap_or(-1),
        stderr,
    )
}

/// The integrity message for the one archive in `dir`, which must be DAMAGED.
fn damaged_reason(dir: &Path) -> String {
    let (checks, code, stderr) = deep(dir);
    assert_eq!(code, 2, "CRITICAL expected: {checks:?} {stderr}");
    let bad: Vec<&Value> = checks
        .iter()
        .filter(|c| c["check"] == "integrity" && c["status"] == "critical")
        .collect();
    assert_eq!(bad.len(), 1, "{checks:?} {stderr}");
    bad[0]["message"].as_str().unwrap_or("").to_string()
}

const VMA: &str = "vzdump-qemu-100-2024_01_15-02_00_00.vma";
const TAR: &str = "vzdump-lxc-101-2024_01_15-02_00_00.tar";

/// A temporary dump directory holding `files` (name, bytes).
fn dump_of(files: &[(&str, Vec<u8>)]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tmp");
    for (name, bytes) in files {
        std::fs::write(tmp.path().join(name), bytes).expect("write");
    }
    tmp
}

/// [`damaged_reason`] of a dump directory holding only `name` with `bytes`.
fn reason_for(name: &str, bytes: Vec<u8>) -> String {
    damaged_reason(dump_of(&[(name, bytes)]).path())
}

#[test]
fn vma_device_of_2_pow_62_bytes_is_damaged_not_an_abort() {
    let why = reason_for(VMA, vma(1 << 62));
    assert!(why.contains("device 1"), "{why}");
    assert!(why.contains(&(1u64 << 62).to_string()), "{why}");
}

#[test]
fn vma_devices_beyond_the_tracking_bound_are_damaged() {
    // 2^47 bytes fits VMA's 32-bit cluster numbers, but is more than --deep tracks.
    let why = reason_for(VMA, vma(1 << 47));
    assert!(why.contains("device 1"), "{why}");
    assert!(why.contains(&(1u64 << 47).to_string()), "{why}");
}

#[test]
fn tar_long_name_of_2_pow_44_bytes_is_damaged_not_an_abort() {
    let long = tar_header("././@LongLink", b'L', base256_size(1 << 44));
    let why = reason_for(TAR, tar_with(&long));
    assert!(why.contains("long name"), "{why}");
}

#[test]
fn tar_member_of_2_pow_64_minus_1_bytes_is_damaged() {
    // The padded size wraps to 0 in unchecked arithmetic, and the member "fits".
    let huge = tar_header("./big", b'0', base256_size(u64::MAX));
    let why = reason_for(TAR, tar_with(&huge));
    assert!(why.contains("./big"), "{why}");
}

#[test]
fn tar_base256_size_beyond_64_bits_is_damaged() {
    // 2^64 + 512: shifting out the top bits would read 512 and skip one block.
    let mut size = base256_size(512);
    size[3] = 1;
    let mut member = tar_header("./big", b'0', size).to_vec();
    member.extend([0u8; 512]);
    let why = reason_for(TAR, tar_with(&member));
    assert!(why.contains("size"), "{why}");
}

#[test]
fn well_formed_hostile_helpers_pass() {
    // The helpers themselves make archives the checker accepts: the failures above are the
    // numbers, not the framing.
    let mut member = tar_header("./small", b'0', base256_size(3)).to_vec();
    member.extend(b"abc");
    member.resize(1024, 0);
    let tmp = dump_of(&[(TAR, tar_with(&member)), (VMA, vma(0))]);
    let (checks, code, stderr) = deep(tmp.path());
    assert_eq!(code, 0, "{checks:?} {stderr}");
}
