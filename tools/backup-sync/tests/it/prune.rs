//! backup-sync ls | backup-prune --apply deletes exactly the `remove` set offsite.

use std::collections::BTreeSet;

use pvedr_testkit::run_ok;

use crate::common::{TO, demo_offsite, of_kind};

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
    let (sim, s3) = demo_offsite();
    s3.push_local(&sim);
    let before = s3.keys();
    let ls = run_ok(s3.tool("backup-sync").args(["ls", "--from", TO])).stdout;
    // No --timezone and no node: offsite copies alone need none (TZ gives the days).
    let out = run_ok(
        s3.tool("backup-prune")
            .args(["--keep-daily", "3", "--apply", "--yes"])
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

/// Versions of every key under the prefix: key → version ids.
fn versions(moto: &pvedr_testkit::s3::Moto) -> std::collections::BTreeMap<String, Vec<String>> {
    let out = moto.boto(
        "offsite",
        "r = s3.list_object_versions(Bucket=B)\nv = {}\nfor x in r.get('Versions', []): v.setdefault(x['Key'], []).append(x['VersionId'])\nprint(json.dumps(v))",
    );
    serde_json::from_str(&out).expect("versions")
}

/// A copy marked remove whose manifest names the kept copy's archive, manifest and notes
/// (and a key outside its folder) as its side files: the prune deletes only what the removed archive's own name gives, and
/// every version of the kept copy stays.
#[test]
fn a_hostile_manifest_cannot_delete_a_kept_copy() {
    let moto = pvedr_testkit::s3::Moto::start();
    moto.create_versioned_bucket("offsite");
    moto.put_hostile_side_files("offsite", "pve");
    let before = versions(&moto);
    let tool = |name: &str| {
        let mut c = pvedr_testkit::bin(name);
        c.envs(pvedr_testkit::s3::s3_env())
            .env("AWS_ENDPOINT_URL", moto.endpoint());
        c
    };
    let ls = run_ok(tool("backup-sync").args(["ls", "--from", TO])).stdout;
    let out = run_ok(
        tool("backup-prune")
            .args(["--keep-last", "1", "--apply", "--yes"])
            .env("TZ", "UTC")
            .write_stdin(ls),
    );
    let recs = pvedr_testkit::json_lines(&out.stdout);
    assert_eq!(marked(&recs, "remove").len(), 1, "{recs:?}");
    let after = versions(&moto);
    let new = "pve/pve1/100/vzdump-qemu-100-2024_01_15-02_00_02";
    for k in [
        format!("{new}.vma.zst"),
        format!("{new}.vma.zst.notes"),
        format!("{new}.log"),
        format!("{new}.vma.zst.manifest.json"),
    ] {
        assert_eq!(
            after.get(&k),
            before.get(&k),
            "every version of {k} is kept"
        );
    }
    assert_eq!(before[&format!("{new}.vma.zst")].len(), 2);
    let old = "pve/pve1/100/vzdump-qemu-100-2024_01_14-02_00_02.vma.zst";
    for k in [
        old.to_string(),
        format!("{old}.notes"),
        format!("{old}.manifest.json"),
    ] {
        assert!(!after.contains_key(&k), "{k} is deleted: {after:?}");
    }
}
