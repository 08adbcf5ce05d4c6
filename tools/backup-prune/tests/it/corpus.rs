//! The corpus (tests/corpus/cases.txt) through the real binary: each case's backups become
//! `backup` records as pve-ls-backups writes them, and every mark and reason must match.

use chrono::{NaiveDateTime, TimeZone};
use pvedr_testkit::{bin, json_lines};
use serde_json::{Value, json};

struct Row {
    record: Value,
    mark: String,
    reason: Option<String>,
}

struct Case {
    name: String,
    tz: String,
    policy: String,
    rows: Vec<Row>,
}

fn epoch(tz: &str, t: NaiveDateTime) -> i64 {
    let zone: chrono_tz::Tz = tz.parse().expect("zone");
    match zone.from_local_datetime(&t) {
        chrono::LocalResult::Single(d) => d.timestamp(),
        chrono::LocalResult::Ambiguous(a, b) => a.timestamp().min(b.timestamp()),
        chrono::LocalResult::None => panic!("{t} does not exist in {tz}"),
    }
}

fn row(tz: &str, line: &str, n: usize) -> Row {
    let (input, expect) = line.split_once("=>").expect("=> in line");
    let words: Vec<&str> = input.split_whitespace().collect();
    let (subtype, vmid) = (words[0], words[1].parse::<u64>().expect("vmid"));
    let t =
        NaiveDateTime::parse_from_str(&format!("{} {}", words[2], words[3]), "%Y-%m-%d %H:%M:%S")
            .expect("time");
    let mut protected = false;
    let mut renamed = false;
    let mut storage = "local".to_string();
    let mut ext = if subtype == "qemu" {
        "vma.zst"
    } else {
        "tar.zst"
    }
    .to_string();
    for f in &words[4..] {
        match *f {
            "protected" => protected = true,
            "renamed" => renamed = true,
            other => {
                if let Some(e) = other.strip_prefix("ext=") {
                    ext = e.into();
                } else if let Some(s) = other.strip_prefix("storage=") {
                    storage = s.into();
                } else {
                    panic!("unknown flag {other}");
                }
            }
        }
    }
    let ctime = epoch(tz, t);
    let file = if renamed {
        format!("vzdump-{subtype}-{vmid}-copy{n}.{ext}")
    } else {
        format!(
            "vzdump-{subtype}-{vmid}-{}.{ext}",
            t.format("%Y_%m_%d-%H_%M_%S")
        )
    };
    let mut e = expect.split_whitespace();
    Row {
        record: json!({"kind": "backup", "node": "pve1", "storage": storage, "volid": format!("{storage}:backup/{file}"),
                       "vmid": vmid, "subtype": subtype, "ctime": ctime, "time": "", "size": 1000, "format": ext,
                       "protected": protected}),
        mark: e.next().expect("mark").to_string(),
        reason: e.next().map(String::from),
    }
}

fn cases() -> Vec<Case> {
    let text = include_str!("corpus/cases.txt");
    let mut out: Vec<Case> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix("case ") {
            out.push(Case {
                name: name.into(),
                tz: "UTC".into(),
                policy: String::new(),
                rows: Vec::new(),
            });
            continue;
        }
        let c = out.last_mut().expect("a case first");
        if let Some(tz) = line.strip_prefix("tz ") {
            c.tz = tz.into();
        } else if let Some(p) = line.strip_prefix("policy ") {
            c.policy = p.into();
        } else {
            let n = c.rows.len();
            let r = row(&c.tz, line, n);
            c.rows.push(r);
        }
    }
    out
}

#[test]
fn every_case_gets_proxmox_marks() {
    let cases = cases();
    assert!(cases.len() >= 20);
    let mut failures = Vec::new();
    for c in &cases {
        // pve-ls-backups' order: by storage, then lower-cased volid.
        let mut input: Vec<&Row> = c.rows.iter().collect();
        input.sort_by_key(|r| {
            (
                r.record["storage"].as_str().unwrap_or("").to_string(),
                r.record["volid"].as_str().unwrap_or("").to_lowercase(),
            )
        });
        let stdin: String = input.iter().map(|r| format!("{}\n", r.record)).collect();
        let out = bin("backup-prune")
            .args(["--prune-backups", &c.policy, "--timezone", &c.tz])
            .write_stdin(stdin)
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{}: {}",
            c.name,
            String::from_utf8_lossy(&out.stderr)
        );
        let recs = json_lines(&out.stdout);
        assert_eq!(
            recs.len(),
            c.rows.len(),
            "{}: every record comes back",
            c.name
        );
        for (r, got) in input.iter().zip(&recs) {
            assert_eq!(got["volid"], r.record["volid"], "{}: order kept", c.name);
            let mark = got["mark"].as_str().unwrap_or("?");
            let reason = got["reason"].as_str().map(String::from);
            if mark != r.mark || reason != r.reason {
                failures.push(format!(
                    "{}: {} expected {} {:?}, got {} {:?}",
                    c.name, r.record["volid"], r.mark, r.reason, mark, reason
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn keep_flags_equal_the_string_form() {
    let c = cases()
        .into_iter()
        .find(|c| c.name.starts_with("prod"))
        .expect("prod case");
    let stdin: String = c.rows.iter().map(|r| format!("{}\n", r.record)).collect();
    let a = bin("backup-prune")
        .args([
            "--keep-daily",
            "7",
            "--keep-weekly",
            "4",
            "--timezone",
            "UTC",
        ])
        .write_stdin(stdin.clone())
        .output()
        .expect("run");
    let b = bin("backup-prune")
        .args([
            "--prune-backups",
            "keep-weekly=4,keep-daily=7",
            "--timezone",
            "UTC",
        ])
        .write_stdin(stdin)
        .output()
        .expect("run");
    assert!(a.status.success() && b.status.success());
    assert_eq!(a.stdout, b.stdout);
}
