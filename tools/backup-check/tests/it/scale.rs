//! A check that scales: backups are folded into per-guest summaries as they are read, so a
//! run costs the memory of its guests, not of its records.

use std::process::Command;

use pvedr_testkit::{json_lines, listing_end};

const NOW: i64 = 1_705_300_000;
const DAY: i64 = 86_400;

/// `n` daily backups of each of `guests` guests, each record carrying `notes` bytes of notes
/// (the note a backup job writes, here long so the records weigh what a big listing does).
fn listing(guests: u64, n: i64, notes: usize) -> String {
    let note = "n".repeat(notes);
    let mut out = String::new();
    for vmid in 100..100 + guests {
        for i in 0..n {
            let ctime = NOW - 3600 - i * DAY;
            let r = serde_json::json!({"kind": "backup", "node": "pve1", "storage": "local",
                "volid": format!("local:backup/vzdump-qemu-{vmid}-{ctime}.vma.zst"), "vmid": vmid,
                "subtype": "qemu", "ctime": ctime, "time": "", "size": 1_000_000 + i,
                "format": "vma.zst", "protected": false, "notes": note});
            out.push_str(&r.to_string());
            out.push('\n');
        }
    }
    out.push_str(&listing_end((guests as usize) * n as usize));
    out
}

/// About 48 MiB of records (6,000 backups with 8 KiB of notes each) checked under a 24 MiB data
/// limit (prlimit --data): a run that held its records could not allocate them.
#[test]
fn records_are_folded_not_held() {
    let input = listing(20, 300, 8 << 10);
    assert!(input.len() > 2 * (24 << 20));
    let path = assert_cmd::cargo::cargo_bin("backup-check");
    let mut child = Command::new("prlimit")
        .arg(format!("--data={}", 24 << 20))
        .arg("--")
        .arg(path)
        .args(["--now", &NOW.to_string(), "--timezone", "UTC"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("prlimit");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        // The run may end early (out of memory): a broken pipe is its answer, not ours.
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().expect("run");
    writer.join().expect("writer");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let checks = json_lines(&out.stdout);
    let fresh = checks
        .iter()
        .filter(|c| c["check"] == "freshness" && c["status"] == "ok")
        .count();
    assert_eq!(fresh, 20, "{err}");
    let counted = checks
        .iter()
        .filter(|c| c["check"] == "count" && c["value"] == 300)
        .count();
    assert_eq!(counted, 20);
}
