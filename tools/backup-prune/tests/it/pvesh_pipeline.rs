//! backup-prune reads what Proxmox prints: the `pvesh get …/content` entries, tagged with
//! `kind` by jq, with no field pvedr adds itself (no `time`, no `node`, `protected` as `1`).

use std::process::Command;

use pvedr_testkit::{Backup, SimNode, json_lines};
use serde_json::Value;

const DAY: i64 = 86_400;

#[test]
fn pvesh_content_through_jq_into_backup_prune() {
    let sim = SimNode::empty();
    let base = 1_704_074_400; // 2024-01-01 02:00:00 UTC
    for day in 0..5 {
        let mut b = Backup::new("local", "qemu", 100, base + day * DAY);
        // The oldest is protected, the second oldest has notes, the third an empty notes
        // file (no `notes` in the listing: file_read_first_line gives undef).
        b.protected = day == 0;
        b.notes = match day {
            1 => Some("before upgrade".into()),
            2 => Some(String::new()),
            _ => None,
        };
        sim.add_backup(&b);
    }
    for day in 0..2 {
        sim.add_backup(&Backup::new("local", "lxc", 101, base + day * DAY + 60));
    }

    // Not listed: the glob `<$path/*>` skips dot files.
    std::fs::write(
        sim.dump_dir("local")
            .join(".vzdump-qemu-100-2024_01_06-02_00_00.vma.zst"),
        b"x",
    )
    .expect("write");

    let prune = assert_cmd::cargo::cargo_bin("backup-prune");
    assert!(
        prune.exists(),
        "{} is missing: build the bins",
        prune.display()
    );
    let prune_dir = prune.parent().expect("bin dir").display().to_string();
    let mut cmd = Command::new("bash");
    cmd.arg("-c").arg(
        "set -o pipefail; \
         pvesh get /nodes/pve1/storage/local/content --content backup --output-format json \
         | jq -c '.[] | .kind=\"backup\"' | backup-prune --keep-last 3",
    );
    for (k, v) in sim.env() {
        cmd.env(k, v);
    }
    cmd.env("PATH", format!("{prune_dir}:{}", sim.path_env()));
    let out = cmd.output().expect("bash runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pipeline failed: {err}");

    let records = json_lines(&out.stdout);
    let marks: Vec<(String, String)> = records
        .iter()
        .map(|r| {
            let name = r["volid"]
                .as_str()
                .and_then(|v| v.strip_prefix("local:backup/"))
                .unwrap_or("?")
                .to_string();
            (name, r["mark"].as_str().unwrap_or("?").to_string())
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("vzdump-lxc-101-2024_01_01-02_01_00.tar.zst", "keep"),
        ("vzdump-lxc-101-2024_01_02-02_01_00.tar.zst", "keep"),
        ("vzdump-qemu-100-2024_01_01-02_00_00.vma.zst", "protected"),
        ("vzdump-qemu-100-2024_01_02-02_00_00.vma.zst", "remove"),
        ("vzdump-qemu-100-2024_01_03-02_00_00.vma.zst", "keep"),
        ("vzdump-qemu-100-2024_01_04-02_00_00.vma.zst", "keep"),
        ("vzdump-qemu-100-2024_01_05-02_00_00.vma.zst", "keep"),
    ]
    .iter()
    .map(|(n, m)| (n.to_string(), m.to_string()))
    .collect();
    assert_eq!(marks, want, "{err}");

    // What pvedr derives: time from ctime, storage from the volid, protected as a boolean;
    // what Proxmox gave passes through (content, notes, size, vmid, subtype, format).
    let protected = &records[2];
    assert_eq!(protected["protected"], Value::Bool(true));
    assert_eq!(protected["time"], "2024-01-01T02:00:00Z");
    assert_eq!(protected["ctime"], 1_704_074_400);
    assert_eq!(protected["storage"], "local");
    assert_eq!(protected["vmid"], 100);
    assert_eq!(protected["subtype"], "qemu");
    assert_eq!(protected["format"], "vma.zst");
    assert_eq!(protected["content"], "backup");
    assert!(protected["size"].as_u64().is_some_and(|s| s > 0));
    assert_eq!(records[3]["notes"], "before upgrade");
    assert_eq!(records[3]["protected"], Value::Bool(false));
    assert!(records[4].get("notes").is_none(), "{}", records[4]);
    assert_eq!(records[3]["reason"], Value::Null);
    assert_eq!(records[4]["reason"], "keep-last");
}
