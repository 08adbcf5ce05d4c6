//! Bad flags and bad records: a clear error, nothing written.

use pvedr_testkit::{run_code, s3::s3_env};

use crate::common::{Offsite, TO, of_kind};

#[test]
fn bad_flags_exit_2_before_anything_runs() {
    for args in [
        vec!["push", "--yes", "--to", "offsite/pve"],
        vec!["push", "--yes", "--to", "s3://Bad_Bucket/x"],
        vec!["push", "--yes", "--to", "s3://offsite/a/../b"],
        vec!["push", "--yes", "--to", TO, "--part-size", "1M"],
        vec!["push", "--yes", "--to", TO, "--jobs", "0"],
        vec!["push", "--yes", "--to", TO, "--bwlimit", "fast"],
        vec!["push", "--yes", "--to", TO, "--object-lock-days", "0"],
        vec!["push", "--yes", "--to", TO, "--node", "bad node"],
        vec!["pull", "--yes", "local:backup/../x", "--to-dir", "."],
        vec!["pull", "--yes", "offsite:backup/a/b", "--to-node", "pve1"],
        vec!["ls", "--from", "s3://x"],
    ] {
        let out = run_code(
            pvedr_testkit::bin("backup-sync")
                .args(&args)
                .envs(s3_env())
                // Nothing listens here: a usage error must come before any request.
                .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
                .write_stdin(""),
            2,
        );
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}: no message");
    }
}

#[test]
fn hostile_records_fail_one_by_one_and_nothing_is_uploaded() {
    let s3 = Offsite::new();
    let dir = tempfile::tempdir().expect("tmp");
    let bad = [
        r#"{"kind":"backup","node":"pve1","storage":"local","volid":"local:backup/../../etc/passwd","vmid":100,"subtype":"qemu","ctime":1,"time":"1970-01-01T00:00:01Z","format":"vma.zst"}"#,
        r#"{"kind":"backup","node":"pve1;rm -rf /","storage":"local","volid":"local:backup/vzdump-qemu-100-2024_01_15-02_00_02.vma.zst","vmid":100,"subtype":"qemu","ctime":1,"time":"1970-01-01T00:00:01Z","format":"vma.zst"}"#,
        r#"{"kind":"backup","node":"pve1","storage":"pbs","volid":"pbs:backup/vm/100/2024-01-15T01:00:05Z","vmid":100,"subtype":"qemu","ctime":1,"time":"1970-01-01T00:00:01Z","format":"pbs-vm"}"#,
        r#"{"kind":"backup","storage":"local","volid":"local:backup/vzdump-qemu-100-2024_01_15-02_00_02.vma.zst","vmid":100,"subtype":"qemu","ctime":1,"time":"1970-01-01T00:00:01Z","format":"vma.zst"}"#,
    ];
    let out = run_code(s3.push_from(dir.path()).write_stdin(bad.join("\n")), 1);
    let steps = of_kind(&out.stdout, "step");
    assert_eq!(steps.len(), bad.len());
    assert!(steps.iter().all(|s| s["status"] == "failed"), "{steps:?}");
    assert!(s3.keys().is_empty());
    assert_eq!(
        of_kind(&out.stdout, "summary")[0]["counts"]["failed"],
        bad.len()
    );
}
