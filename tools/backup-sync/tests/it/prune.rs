//! backup-sync ls | backup-prune --apply deletes exactly the `remove` set offsite.

use std::collections::BTreeSet;

use pvedr_testkit::{SimNode, run_ok};

use crate::common::{Offsite, TO, list_dir, of_kind};

/// Every key of a copy: archive, manifest, notes, log.
fn keys_of(volid: &str) -> Vec<String> {
    let key = volid.split_once(":backup/").expect("volid").1.to_string();
    let (dir, name) = key.rsplit_once('/').expect("key");
    let stem = pvedr::archive::parse(name).expect("archive").stem;
    vec![
        key.clone(),
        format!("{key}.manifest.json"),
        format!("{key}.notes"),
        format!("{dir}/{stem}.log"),
    ]
}

fn marked(recs: &[serde_json::Value], mark: &str) -> BTreeSet<String> {
    recs.iter()
        .filter(|r| r["kind"] == "backup" && r["mark"] == mark)
        .filter_map(|r| r["volid"].as_str().map(String::from))
        .collect()
}

#[test]
fn offsite_prune_deletes_exactly_the_remove_set() {
    let sim = SimNode::demo();
    let s3 = Offsite::new();
    let dump = sim.dump_dir("local");
    run_ok(
        s3.tool("backup-sync")
            .args(["push", "--to", TO, "--dir"])
            .arg(&dump)
            .write_stdin(list_dir(&dump, "local")),
    );
    let before = s3.keys();
    let ls = run_ok(s3.tool("backup-sync").args(["ls", "--from", TO])).stdout;
    // No --timezone and no node: offsite copies alone need none (TZ gives the days).
    let out = run_ok(
        s3.tool("backup-prune")
            .args(["--keep-daily", "3", "--apply"])
            .env("TZ", "UTC")
            .write_stdin(ls),
    );
    let recs = pvedr_testkit::json_lines(&out.stdout);
    let remove = marked(&recs, "remove");
    assert_eq!(
        remove.len(),
        5,
        "100: 9 nightly, 1 protected, 3 kept: {remove:?}"
    );
    let done: BTreeSet<String> = of_kind(&out.stdout, "step")
        .iter()
        .filter(|s| s["status"] == "changed")
        .filter_map(|s| s["target"].as_str().map(String::from))
        .collect();
    assert_eq!(done, remove);
    let gone: BTreeSet<String> = before.difference(&s3.keys()).cloned().collect();
    let expected: BTreeSet<String> = remove.iter().flat_map(|v| keys_of(v)).collect();
    assert_eq!(
        gone, expected,
        "exactly the removed copies' objects are gone"
    );
    // What is left is what was kept: ls shows no removed copy and every other one.
    let left = pvedr_testkit::json_lines(
        &run_ok(s3.tool("backup-sync").args(["ls", "--from", TO])).stdout,
    );
    let left: BTreeSet<String> = left
        .iter()
        .filter_map(|r| r["volid"].as_str().map(String::from))
        .collect();
    let kept: BTreeSet<String> = ["keep", "protected", "renamed"]
        .iter()
        .flat_map(|m| marked(&recs, m))
        .collect();
    assert_eq!(left, kept);
}
