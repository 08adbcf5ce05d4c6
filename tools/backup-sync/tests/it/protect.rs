//! Object Lock: a locked copy is reported by offsite prune and kept, the others are
//! deleted. Server-side encryption headers reach the server.

use pvedr_testkit::{SimNode, run_ok};

use crate::common::{Offsite, TO, demo_offsite, list_dir, of_kind};

#[test]
fn a_locked_copy_is_kept_by_prune_and_the_others_are_deleted() {
    let sim = SimNode::demo();
    let s3 = Offsite::locked();
    let dump = sim.dump_dir("local");
    let listing = String::from_utf8(list_dir(&dump, "local")).expect("utf8");
    let locked = [
        "vzdump-qemu-100-2024_01_08-02_00_02",
        "vzdump-qemu-100-2024_01_09-02_00_02",
    ];
    let (lock, rest): (Vec<&str>, Vec<&str>) = listing
        .lines()
        .partition(|l| locked.iter().any(|n| l.contains(n)));
    assert_eq!(lock.len(), 2);
    let push = |lines: &[&str], extra: &[&str]| {
        run_ok(
            s3.push_from(&dump)
                .args(extra)
                .write_stdin(lines.join("\n")),
        )
    };
    push(&lock, &["--object-lock-days", "1"]);
    push(&rest, &[]);
    let mode = s3.moto.boto(
        "offsite",
        &format!(
            "print(s3.head_object(Bucket=B, Key='pve/pve1/100/{}.vma.zst')['ObjectLockMode'])",
            locked[0]
        ),
    );
    assert_eq!(mode, "GOVERNANCE");
    let ls = run_ok(s3.tool("backup-sync").args(["ls", "--from", TO])).stdout;
    let out = run_ok(
        s3.tool("backup-prune")
            .args(["--keep-daily", "3", "--timezone", "UTC", "--apply", "--yes"])
            .write_stdin(ls),
    );
    let steps = of_kind(&out.stdout, "step");
    assert_eq!(steps.len(), 5, "{steps:?}");
    for s in &steps {
        let target = s["target"].as_str().unwrap_or("");
        if locked.iter().any(|n| target.contains(n)) {
            assert_eq!(s["status"], "skipped", "{s}");
            let msg = s["message"].as_str().unwrap_or("");
            assert!(
                msg.contains("Object Lock") && msg.contains("until 20"),
                "{msg}"
            );
        } else {
            assert_eq!(s["status"], "changed", "{s}");
        }
    }
    let keys = s3.keys();
    for n in locked {
        assert!(
            keys.contains(&format!("pve/pve1/100/{n}.vma.zst")),
            "{n} kept"
        );
    }
    assert!(!keys.contains("pve/pve1/100/vzdump-qemu-100-2024_01_10-02_00_02.vma.zst"));
}

#[test]
fn sse_reaches_the_server() {
    let (sim, s3) = demo_offsite();
    let dump = sim.dump_dir("local");
    let listing = String::from_utf8(list_dir(&dump, "local")).expect("utf8");
    let one = listing.lines().next().expect("one").to_string();
    let out = run_ok(
        s3.tool("backup-sync")
            .args(["push", "--yes", "--to", TO, "--sse", "AES256", "--dir"])
            .arg(&dump)
            .write_stdin(one),
    );
    let url = of_kind(&out.stdout, "step")[0]["url"]
        .as_str()
        .expect("url")
        .to_string();
    let key = url.strip_prefix("s3://offsite/").expect("key");
    for k in [key.to_string(), format!("{key}.manifest.json")] {
        let sse = s3.moto.boto(
            "offsite",
            &format!("print(s3.head_object(Bucket=B, Key={k:?}).get('ServerSideEncryption'))"),
        );
        assert_eq!(sse, "AES256", "{k}");
    }
}
