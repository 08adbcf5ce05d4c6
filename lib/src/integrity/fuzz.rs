//! Mutation tests of the `--deep` walkers: real archives (a VMA built here with correct
//! MD5s, as `tests/sim/pvesim/archives.py` builds them; tars written by `tar`), then bit
//! flips, truncations, huge size fields and offsets, with the checksums fixed up after the
//! edit so the walk gets past them. Each case must end in `Ok` or a clean `Err`, never a
//! panic; the allocations are bounded by the walkers' own limits (header ≤ 1 MiB, long name
//! ≤ 64 KiB, cluster bitmap ≤ 64 MiB), which the huge-field cases run into.
//! `PROPTEST_CASES=N` overrides the case counts.

use std::io::Cursor;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use md5::{Digest, Md5};
use proptest::prelude::*;
use proptest::test_runner::Config;

use super::{check_file, check_tar, check_vma};

fn config(cases: u32) -> Config {
    let mut c = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = cases;
    }
    c.failure_persistence = None;
    c
}

/// Where the checksummed headers of a seed are: (offset, length, digest at).
#[derive(Debug, Clone, Copy)]
enum Sum {
    /// A VMA header: MD5 at 32..48 over `header_size` (read from the data) bytes.
    VmaHeader,
    /// A VMA extent header at this offset.
    Extent(usize),
    /// A tar header at this offset.
    Tar(usize),
}

struct Seed {
    bytes: Vec<u8>,
    sums: Vec<Sum>,
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_be_bytes());
}

/// A VMA of one config and one 2-cluster disk, in two sparse extents.
fn vma_seed() -> Seed {
    // The edit positions in `edit()` assume this layout: a 12800-byte header, extents at
    // 12800 and 17408.
    let mut blobs = vec![0u8]; // offset 0 means "none"
    let mut blob = |data: &[u8]| {
        let p = blobs.len() as u32;
        blobs.extend_from_slice(&(data.len() as u16).to_le_bytes());
        blobs.extend_from_slice(data);
        p
    };
    let conf_name = blob(b"qemu-server.conf\0");
    let conf_data = blob(b"memory: 512\nscsi0: local:100/vm-100-disk-0.raw,size=128K\n");
    let dev_name = blob(b"drive-scsi0\0");
    let header_size = (12288 + blobs.len()).next_multiple_of(512);
    let mut h = vec![0u8; header_size];
    h[0..4].copy_from_slice(b"VMA\0");
    put32(&mut h, 4, 1);
    h[8..24].copy_from_slice(b"0123456789abcdef");
    put64(&mut h, 24, 1_705_284_002);
    put32(&mut h, 48, 12288);
    put32(&mut h, 52, blobs.len() as u32);
    put32(&mut h, 56, header_size as u32);
    put32(&mut h, 2044, conf_name);
    put32(&mut h, 3068, conf_data);
    put32(&mut h, 4096 + 32, dev_name);
    put64(&mut h, 4096 + 32 + 8, 2 * 65536);
    h[12288..12288 + blobs.len()].copy_from_slice(&blobs);
    let mut sums = vec![Sum::VmaHeader];
    // (cluster, mask): one block of cluster 0, two of cluster 1.
    for (cluster, mask) in [(0u64, 0x0001u64), (1, 0x0003)] {
        let at = h.len();
        sums.push(Sum::Extent(at));
        let mut e = [0u8; 512];
        e[0..4].copy_from_slice(b"VMAE");
        let blocks = (mask as u16).count_ones() as u16;
        e[6..8].copy_from_slice(&blocks.to_be_bytes());
        e[8..24].copy_from_slice(b"0123456789abcdef");
        put64(&mut e, 40, (mask << 48) | (1 << 32) | cluster);
        h.extend_from_slice(&e);
        h.extend(std::iter::repeat_n(0xa5, usize::from(blocks) * 4096));
    }
    let mut s = Seed { bytes: h, sums };
    fix_sums(&mut s.bytes, &s.sums);
    assert_eq!(header_size, 12800);
    assert!(matches!(s.sums[2], Sum::Extent(17408)));
    s
}

fn fix_sums(b: &mut [u8], sums: &[Sum]) {
    for s in sums {
        match *s {
            Sum::VmaHeader => {
                let Some(size) = b.get(56..60) else { continue };
                let size = u32::from_be_bytes([size[0], size[1], size[2], size[3]]) as usize;
                if size < 48 || size > b.len() {
                    continue;
                }
                b[32..48].fill(0);
                let d = Md5::digest(&b[..size]);
                b[32..48].copy_from_slice(&d);
            }
            Sum::Extent(at) => {
                let Some(e) = b.get_mut(at..at + 512) else {
                    continue;
                };
                e[24..40].fill(0);
                let d = Md5::digest(&*e);
                e[24..40].copy_from_slice(&d);
            }
            Sum::Tar(at) => {
                let Some(t) = b.get_mut(at..at + 512) else {
                    continue;
                };
                t[148..156].fill(b' ');
                let sum: u32 = t.iter().map(|x| u32::from(*x)).sum();
                t[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
            }
        }
    }
}

/// A container backup as vzdump writes one (`./etc/vzdump/pct.conf` first), by `tar`.
fn tar_seed(format: &str) -> Seed {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("etc/vzdump")).expect("mkdir");
    std::fs::write(
        root.join("etc/vzdump/pct.conf"),
        "arch: amd64\nhostname: ct\n",
    )
    .expect("w");
    let long = root.join("d".repeat(60)).join("f".repeat(90));
    std::fs::create_dir_all(long.parent().expect("parent")).expect("mkdir");
    std::fs::write(&long, "x".repeat(700)).expect("w");
    let out = dir.path().join("a.tar");
    let st = Command::new("tar")
        .arg(format!("--format={format}"))
        .args(["--owner=0", "--group=0", "--mtime=@1705284002", "-C"])
        .arg(&root)
        .arg("-cf")
        .arg(&out)
        .args(["./etc/vzdump/pct.conf", "."])
        .status()
        .expect("tar runs");
    assert!(st.success(), "tar failed");
    let bytes = std::fs::read(&out).expect("read tar");
    let sums = tar_headers(&bytes).into_iter().map(Sum::Tar).collect();
    Seed { bytes, sums }
}

/// The offsets of the headers of a well-formed tar.
fn tar_headers(b: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 512 <= b.len() && b[at..at + 512].iter().any(|x| *x != 0) {
        out.push(at);
        let size = super::octal(&b[at + 124..at + 136]).expect("seed size") as usize;
        at += 512 + size.next_multiple_of(512);
    }
    out
}

fn seeds() -> &'static [Seed; 3] {
    static SEEDS: OnceLock<[Seed; 3]> = OnceLock::new();
    SEEDS.get_or_init(|| [vma_seed(), tar_seed("pax"), tar_seed("gnu")])
}

#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Set(usize, u8),
    /// A big-endian or octal number written over a field.
    Huge(usize, u64, bool),
    Truncate(usize),
    Remove(usize, usize),
    Insert(usize, Vec<u8>),
}

fn edit() -> impl Strategy<Value = Edit> {
    let big = prop_oneof![
        Just(u64::MAX),
        Just(u64::MAX / 2 + 1),
        Just(u32::MAX as u64),
        Just(1u64 << 32),
        Just(1u64 << 48),
        Just((1u64 << 32) * 65536 + 1),
        Just(0),
        any::<u64>(),
    ];
    // Positions near the fields the walkers read, and anywhere.
    let pos = prop_oneof![
        0usize..64,
        (0usize..256).prop_map(|i| 2044 + 4 * i),
        (0usize..256).prop_map(|i| 4096 + 32 * i + 8),
        12280usize..12400,
        // The two extent headers of the VMA seed (its header is 12800 bytes).
        12800usize..13312,
        17408usize..17920,
        (0usize..4).prop_map(|k| 124 + 512 * k),
        any::<usize>(),
    ];
    prop_oneof![
        (pos.clone(), 0u8..8).prop_map(|(p, b)| Edit::Flip(p, b)),
        (pos.clone(), any::<u8>()).prop_map(|(p, b)| Edit::Set(p, b)),
        (pos.clone(), big, any::<bool>()).prop_map(|(p, v, o)| Edit::Huge(p, v, o)),
        any::<usize>().prop_map(Edit::Truncate),
        (pos.clone(), 1usize..600).prop_map(|(p, n)| Edit::Remove(p, n)),
        (pos, proptest::collection::vec(any::<u8>(), 1..40)).prop_map(|(p, v)| Edit::Insert(p, v)),
    ]
}

fn apply(b: &mut Vec<u8>, e: &Edit) {
    let n = b.len();
    if n == 0 {
        return;
    }
    match e {
        Edit::Flip(p, bit) => b[p % n] ^= 1 << bit,
        Edit::Set(p, v) => b[p % n] = *v,
        Edit::Huge(p, v, octal) => {
            let bytes = if *octal {
                format!("{v:011o}\0").into_bytes()
            } else {
                v.to_be_bytes().to_vec()
            };
            let at = p % n;
            let end = (at + bytes.len()).min(n);
            b[at..end].copy_from_slice(&bytes[..end - at]);
        }
        Edit::Truncate(p) => b.truncate(p % n),
        Edit::Remove(p, k) => {
            let at = p % n;
            b.drain(at..(at + k).min(n));
        }
        Edit::Insert(p, v) => {
            let at = p % n;
            b.splice(at..at, v.iter().copied());
        }
    }
}

/// A mutated seed: which one, its edits, and whether the checksums are fixed after them.
fn mutant() -> impl Strategy<Value = (usize, Vec<u8>)> {
    (
        0usize..3,
        proptest::collection::vec(edit(), 1..5),
        any::<bool>(),
    )
        .prop_map(|(which, edits, fix)| {
            let seed = &seeds()[which];
            let mut b = seed.bytes.clone();
            for e in &edits {
                apply(&mut b, e);
            }
            if fix {
                fix_sums(&mut b, &seed.sums);
            }
            (which, b)
        })
}

fn walk(which: usize, b: &[u8]) -> Result<(), String> {
    let mut r = Cursor::new(b);
    if which == 0 {
        check_vma(&mut r)
    } else {
        check_tar(&mut r)
    }
}

#[test]
fn fuzz_seeds_pass() {
    // Mutations start from archives the walkers accept.
    for (i, s) in seeds().iter().enumerate() {
        assert_eq!(walk(i, &s.bytes), Ok(()), "seed {i}");
    }
}

proptest! {
    #![proptest_config(config(4000))]

    #[test]
    fn fuzz_archive_walkers((which, b) in mutant()) {
        if let Err(e) = walk(which, &b) {
            prop_assert!(!e.is_empty());
        }
    }

    #[test]
    fn fuzz_walkers_arbitrary_bytes(b in proptest::collection::vec(any::<u8>(), 0..2048), vma in any::<bool>()) {
        let _ = walk(usize::from(!vma), &b);
    }
}

proptest! {
    #![proptest_config(config(60))]

    /// The whole path `--deep` takes: a file, compressed or not, with a `sha256=`.
    #[test]
    fn fuzz_check_file((which, b) in mutant(), compress in 0u8..3) {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = if which == 0 { "vma" } else { "tar" };
        let (format, data) = match compress {
            0 => (base.to_string(), b),
            1 => (format!("{base}.zst"), zstd::encode_all(&b[..], 1).expect("zstd")),
            _ => {
                let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                std::io::Write::write_all(&mut g, &b).expect("gz");
                (format!("{base}.gz"), g.finish().expect("gz"))
            }
        };
        let path = dir.path().join(format!("a.{format}"));
        std::fs::write(&path, &data).expect("write");
        let _ = check_file(Path::new(&path), &format, Some("00"));
        // The compressed stream itself mutated.
        let mut raw = data;
        let n = raw.len();
        // An empty mutant stays empty uncompressed: nothing to flip.
        if let Some(b) = raw.get_mut(n / 2) {
            *b ^= 0x10;
        }
        raw.truncate(n - n / 7);
        std::fs::write(&path, &raw).expect("write");
        let _ = check_file(Path::new(&path), &format, None);
    }
}

#[test]
fn huge_fields_are_clean_errors() {
    // A device of 2^48 + 1 bytes (beyond what VMA addresses), a header size of 4 GiB, and a tar
    // member of 2^64-1 bytes: refused before anything that large is allocated or skipped.
    let seed = &seeds()[0];
    let mut b = seed.bytes.clone();
    put64(&mut b, 4096 + 32 + 8, (1 << 48) + 1);
    fix_sums(&mut b, &seed.sums);
    assert!(walk(0, &b).is_err_and(|e| e.contains("impossible size")));
    // 2^48 bytes is addressable, but more than --deep tracks (a 64 MiB bitmap).
    let mut b = seed.bytes.clone();
    put64(&mut b, 4096 + 32 + 8, 1 << 48);
    fix_sums(&mut b, &seed.sums);
    assert!(walk(0, &b).is_err_and(|e| e.contains("beyond what --deep checks")));
    let mut b = seed.bytes.clone();
    put32(&mut b, 56, u32::MAX);
    assert!(walk(0, &b).is_err_and(|e| e.contains("header size")));
    let tar = &seeds()[1];
    let mut b = tar.bytes.clone();
    b[124..136].copy_from_slice(&[0xff; 12]);
    fix_sums(&mut b, &tar.sums);
    assert!(walk(1, &b).is_err());
    let mut b = tar.bytes.clone();
    b[124..136].copy_from_slice(b"77777777777\0");
    fix_sums(&mut b, &tar.sums);
    assert!(walk(1, &b).is_err_and(|e| e.contains("truncated")));
}
