//! --deep on real archives made by the harness: every corruption is found, every good
//! archive passes.

use std::path::{Path, PathBuf};
use std::process::Command;

use pvedr_testkit::{json_lines, sim_dir};
use serde_json::Value;

use crate::common::{NOW, deep_on_dir};

/// Writes a real archive with a standard name for 2024-01-15 02:00 (+minute) UTC.
fn archive(dir: &Path, gtype: &str, vmid: u64, compress: &str, minute: u32) -> PathBuf {
    let base = if gtype == "qemu" { "vma" } else { "tar" };
    let ext = match compress {
        "zstd" => ".zst",
        "gzip" => ".gz",
        "lzo" => ".lzo",
        _ => "",
    };
    let p = dir.join(format!(
        "vzdump-{gtype}-{vmid}-2024_01_15-02_{minute:02}_00.{base}{ext}"
    ));
    let st = Command::new("python3")
        .arg(sim_dir().join("pvesim-admin"))
        .args(["archive"])
        .arg(&p)
        .args([
            "--type",
            gtype,
            "--vmid",
            &vmid.to_string(),
            "--compress",
            compress,
            "--seed",
            &minute.to_string(),
        ])
        .status()
        .expect("python3");
    assert!(st.success());
    p
}

fn corrupt(p: &Path, mode: &str) {
    let st = Command::new("python3")
        .arg(sim_dir().join("pvesim-admin"))
        .args(["corrupt"])
        .arg(p)
        .args(["--mode", mode])
        .status()
        .expect("python3");
    assert!(st.success());
}

/// Flips a bit where it changes the data: some bytes of an LZ stream (a match offset in a
/// run of zeros) decompress to the same content, which no checker can or should notice. The
/// reference tool (`zstd -t`, `gzip -t`, `lzop -t`) decides.
fn bitflip_detectably(p: &Path, compress: &str) {
    let tool = match compress {
        "zstd" => "zstd",
        "gzip" => "gzip",
        _ => "lzop",
    };
    let original = std::fs::read(p).expect("read");
    let mut offset = original.len() / 2;
    for _ in 0..200 {
        std::fs::write(p, &original).expect("write");
        let st = Command::new("python3")
            .arg(sim_dir().join("pvesim-admin"))
            .arg("corrupt")
            .arg(p)
            .args(["--mode", "bitflip", "--offset", &offset.to_string()])
            .status()
            .expect("python3");
        assert!(st.success());
        let caught = Command::new(tool)
            .args(["-q", "-t"])
            .arg(p)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("tool");
        if !caught.success() {
            return;
        }
        offset += 13;
    }
    panic!("no detectable bit flip found in {}", p.display());
}

fn deep(dir: &Path) -> (Vec<Value>, i32) {
    let out = deep_on_dir(dir, "2").output().expect("run");
    (json_lines(&out.stdout), out.status.code().unwrap_or(-1))
}

fn damaged(checks: &[Value]) -> Vec<(String, String)> {
    checks
        .iter()
        .filter(|c| c["check"] == "integrity" && c["status"] == "critical")
        .map(|c| {
            let m = c["message"].as_str().unwrap_or("").to_string();
            let file = m
                .split(" is damaged")
                .next()
                .unwrap_or("")
                .rsplit('/')
                .next()
                .unwrap_or("")
                .to_string();
            (file, m)
        })
        .collect()
}

#[test]
fn good_archives_pass() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut vmid = 100;
    for gtype in ["qemu", "lxc"] {
        for c in ["zstd", "gzip", "lzo", "none"] {
            archive(tmp.path(), gtype, vmid, c, 0);
            vmid += 1;
        }
    }
    let (checks, code) = deep(tmp.path());
    assert_eq!(code, 0, "{checks:?}");
    assert!(damaged(&checks).is_empty(), "{checks:?}");
    let whole = checks
        .iter()
        .filter(|c| c["check"] == "integrity" && c["status"] == "ok")
        .count();
    assert_eq!(whole, 8);
}

/// The file name of an archive written by [`archive`].
fn name_of(p: &std::path::Path) -> String {
    let name = p.file_name().and_then(|n| n.to_str());
    name.unwrap_or("").to_string()
}

#[test]
fn every_corruption_is_found() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut expected: Vec<String> = Vec::new();
    let mut vmid = 200;
    for gtype in ["qemu", "lxc"] {
        for c in ["zstd", "gzip", "lzo"] {
            for mode in ["truncate", "bitflip", "empty"] {
                let p = archive(tmp.path(), gtype, vmid, c, 0);
                if mode == "bitflip" {
                    bitflip_detectably(&p, c);
                } else {
                    corrupt(&p, mode);
                }
                expected.push(name_of(&p));
                vmid += 1;
            }
        }
        // Uncompressed: truncation and emptiness; a flipped bit in the header.
        for mode in ["truncate", "empty"] {
            let p = archive(tmp.path(), gtype, vmid, "none", 0);
            corrupt(&p, mode);
            expected.push(name_of(&p));
            vmid += 1;
        }
        let p = archive(tmp.path(), gtype, vmid, "none", 0);
        let mut bytes = std::fs::read(&p).expect("read");
        let at = if gtype == "qemu" { 100 } else { 130 }; // VMA header; tar header of pct.conf
        bytes[at] ^= 0x20;
        std::fs::write(&p, bytes).expect("write");
        expected.push(name_of(&p));
        vmid += 1;
    }
    // One good archive among them.
    let good = archive(tmp.path(), "qemu", 999, "zstd", 1);
    let (checks, code) = deep(tmp.path());
    assert_eq!(code, 2, "damaged archives are CRITICAL");
    let found: Vec<String> = damaged(&checks).into_iter().map(|(f, _)| f).collect();
    for e in &expected {
        assert!(found.contains(e), "{e} not found damaged; found {found:?}");
    }
    assert_eq!(found.len(), expected.len());
    let good_name = good.file_name().and_then(|n| n.to_str()).unwrap_or("");
    assert!(!found.iter().any(|f| f == good_name));
    let reasons: Vec<String> = damaged(&checks).into_iter().map(|(_, m)| m).collect();
    assert!(
        reasons.iter().any(|m| m.contains("empty file")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|m| m.contains("truncated")),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|m| m.contains("MD5")), "{reasons:?}");
    assert!(
        reasons.iter().any(|m| m.contains("tar header checksum")),
        "{reasons:?}"
    );
}

#[test]
fn a_damaged_archive_does_not_count_for_freshness() {
    let tmp = tempfile::tempdir().expect("tmp");
    // 101: a good backup at 02:00 and a newer one at 02:30 that is truncated.
    archive(tmp.path(), "lxc", 101, "zstd", 0);
    let newer = archive(tmp.path(), "lxc", 101, "zstd", 30);
    corrupt(&newer, "truncate");
    let (checks, _) = deep(tmp.path());
    let fresh = checks
        .iter()
        .find(|c| c["component"] == "guest/101" && c["check"] == "freshness")
        .expect("freshness");
    // Age from 02:00, not 02:30.
    assert_eq!(fresh["value"], NOW - 1_705_284_000);
    let count = checks
        .iter()
        .find(|c| c["component"] == "guest/101" && c["check"] == "count")
        .expect("count");
    assert_eq!(count["value"], 1);
}

#[test]
fn notes_sha256_is_checked() {
    let tmp = tempfile::tempdir().expect("tmp");
    let p = archive(tmp.path(), "qemu", 100, "zstd", 0);
    let q = archive(tmp.path(), "qemu", 101, "zstd", 0);
    let sha = |p: &Path| {
        let out = Command::new("sha256sum")
            .arg(p)
            .output()
            .expect("sha256sum");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string()
    };
    std::fs::write(
        format!("{}.notes", p.display()),
        format!("web01 sha256={}", sha(&p)),
    )
    .expect("notes");
    std::fs::write(
        format!("{}.notes", q.display()),
        format!("db sha256={}", "0".repeat(64)),
    )
    .expect("notes");
    let (checks, code) = deep(tmp.path());
    assert_eq!(code, 2);
    let bad = damaged(&checks);
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert!(bad[0].1.contains("sha256 mismatch"));
    assert!(bad[0].0.contains("-101-"));
}
