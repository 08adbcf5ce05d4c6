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
    // The checks `check` whose `field` is `value`: one for each of the 20 guests.
    let said = |check: &str, field: &str, value: serde_json::Value| {
        let of = |c: &&serde_json::Value| c["check"] == check && c[field] == value;
        checks.iter().filter(of).count()
    };
    assert_eq!(said("freshness", "status", "ok".into()), 20, "{err}");
    assert_eq!(said("count", "value", 300.into()), 20);
}

/// The run's output without its time: the same input gives the same bytes.
fn verdicts(input: &str) -> (Option<i32>, Vec<serde_json::Value>, String) {
    let out = pvedr_testkit::bin("backup-check")
        .args([
            "--now",
            &NOW.to_string(),
            "--timezone",
            "UTC",
            "--size-window",
            "3",
        ])
        .write_stdin(input.to_string())
        .output()
        .expect("run");
    let mut recs = json_lines(&out.stdout);
    for r in &mut recs {
        if let Some(m) = r.as_object_mut() {
            m.remove("duration_s");
        }
    }
    (
        out.status.code(),
        recs,
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Backup lines of pve-ls-backups' shape are folded straight from the line (no record
/// built); any other shape is read into a record. Both must give the same verdicts: here
/// the same listing, once as pve-ls-backups writes it and once with a field more on every
/// backup (which the fast reading declines), over what the fold judges (future, negative
/// and equal times, PBS snapshots finished or not, protected, non-standard names, missing
/// sizes and nodes, escaped strings, two storages).
#[test]
fn lines_read_straight_or_as_records_give_the_same_verdicts() {
    let mut records = Vec::new();
    for vmid in 100..104_i64 {
        for i in 0..6_i64 {
            let ctime = NOW - 3600 - i * DAY - vmid;
            let storage = if i % 2 == 0 { "local" } else { "n\u{e9}s" };
            records.push(serde_json::json!({"kind": "backup", "node": "pve1", "storage": storage,
                "volid": format!("{storage}:backup/vzdump-qemu-{vmid}-2024_01_{:02}-02_00_00.vma.zst", 15 - i),
                "vmid": vmid, "subtype": "qemu", "ctime": ctime, "time": "", "size": 1_000 + i * vmid,
                "format": "vma.zst", "protected": i == 3}));
        }
    }
    for (vmid, ctime, size, format, volid) in [
        (
            100,
            NOW + 7 * DAY,
            Some(5),
            "vma.zst",
            "local:backup/vzdump-qemu-100-2024_01_22-02_00_00.vma.zst",
        ),
        (
            101,
            -5,
            Some(5),
            "vma.zst",
            "local:backup/vzdump-qemu-101-1969.vma.zst",
        ),
        (
            102,
            NOW - 60,
            Some(1),
            "pbs-vm",
            "pbs:backup/vm/102/2024-01-15T06:25:40Z",
        ),
        (
            102,
            NOW - DAY,
            Some(9),
            "pbs-vm",
            "pbs:backup/vm/102/2024-01-14T06:26:40Z",
        ),
        (
            103,
            NOW - 3600 - 103,
            None,
            "vma.zst",
            "local:backup/my \"copy\" of 103.vma.zst",
        ),
        (
            104,
            NOW - 2 * DAY,
            Some(7),
            "tar.zst",
            "local:backup/vzdump-lxc-104-2024_01_13-06_26_40.tar.zst",
        ),
    ] {
        records.push(serde_json::json!({"kind": "backup", "node": null, "storage": volid.split(':').next(),
            "volid": volid, "vmid": vmid, "subtype": if format == "tar.zst" { "lxc" } else { "qemu" },
            "ctime": ctime, "time": "t", "size": size, "format": format}));
    }
    let text = |extra: bool| {
        let mut s = String::new();
        for r in &records {
            let mut r = r.clone();
            if extra {
                r["tag"] = serde_json::json!("x");
            }
            s.push_str(&format!("{r}\n"));
        }
        s + &listing_end(records.len())
    };
    let (straight, general) = (verdicts(&text(false)), verdicts(&text(true)));
    assert_eq!(straight.0, Some(2), "{:?} {}", straight.1, straight.2);
    assert!(straight.1.len() > 12, "{:?}", straight.1);
    assert_eq!(straight, general);
}
