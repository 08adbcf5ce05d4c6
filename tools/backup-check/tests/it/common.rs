//! What the areas share: the clock they check at, a backup record, and backup-check runs on
//! records and on a dump directory.

use std::path::Path;

use pvedr_testkit::{Sshd, bin};
use serde_json::{Value, json};

pub const NOW: i64 = 1_705_300_000; // 2024-01-15 06:26:40 UTC

/// A vzdump backup record of VM `vmid` on `local`, as pve-ls-backups writes it.
pub fn backup(vmid: u64, ctime: i64, size: u64) -> Value {
    let stamp = chrono::DateTime::from_timestamp(ctime, 0)
        .expect("time")
        .format("%Y_%m_%d-%H_%M_%S");
    json!({"kind": "backup", "node": "pve1", "storage": "local", "vmid": vmid, "subtype": "qemu",
           "volid": format!("local:backup/vzdump-qemu-{vmid}-{stamp}.vma.zst"), "ctime": ctime, "time": "",
           "size": size, "format": "vma.zst", "protected": false})
}

/// backup-check at [`NOW`] in UTC with `args`, fed `records` ended as a whole listing.
pub fn on_records(records: &[Value], args: &[&str]) -> std::process::Output {
    let mut input: String = records.iter().map(|r| format!("{r}\n")).collect();
    input.push_str(&pvedr_testkit::listing_end(records.len()));
    bin("backup-check")
        .args(["--now", &NOW.to_string(), "--timezone", "UTC"])
        .args(args)
        .write_stdin(input)
        .output()
        .expect("run")
}

/// backup-check at [`NOW`] in UTC over `sshd`, on the nodes `nodes` names (`--node N`,
/// `--all-nodes`).
pub fn over_ssh(sshd: &Sshd, nodes: &[&str]) -> assert_cmd::Command {
    let mut c = sshd.bin("backup-check");
    c.args(["--timezone", "UTC", "--now", &NOW.to_string()])
        .args(nodes);
    c
}

/// The check `check` of `component`; there must be one.
pub fn find<'a>(checks: &'a [Value], component: &str, check: &str) -> &'a Value {
    checks
        .iter()
        .find(|c| c["component"] == component && c["check"] == check)
        .unwrap_or_else(|| panic!("no {component} {check} in {checks:?}"))
}

/// backup-check at [`NOW`] in UTC on the dump directory `dir`.
pub fn on_dir(dir: &Path) -> assert_cmd::Command {
    let mut c = bin("backup-check");
    c.arg("--dir")
        .arg(dir)
        .args(["--timezone", "UTC", "--now", &NOW.to_string()]);
    c
}

/// [`on_dir`] reading every archive (`--deep`) with `jobs` workers.
pub fn deep_on_dir(dir: &Path, jobs: &str) -> assert_cmd::Command {
    let mut c = on_dir(dir);
    c.args(["--deep", "--jobs", jobs]);
    c
}
