//! What someone with write access to the offsite bucket (the push-only key on the node
//! gives exactly that) can make a pull or a push do: side files named after other files,
//! a planted symlink at the temporary name, a copy whose archive object is gone.

use std::path::PathBuf;

use pvedr_testkit::{SimNode, Sshd, assert_says, demo_over_ssh, run_code, run_ok};

use crate::common::{BUCKET, Offsite, TO, demo_offsite, failed_steps, list_dir, of_kind, statuses};

const A: &str = "vzdump-lxc-101-2024_01_15-02_01_07.tar.zst";
const B: &str = "vzdump-qemu-100-2024_01_14-02_00_02.vma.zst";

fn key(vmid: u64, name: &str) -> String {
    format!("pve/pve1/{vmid}/{name}")
}

/// The manifest of A names a side file `name` whose bytes (`EVIL`, sha256 right) sit beside
/// A offsite.
fn hostile_side_file(s3: &Offsite, name: &str) {
    s3.moto.boto(
        BUCKET,
        &format!(
            r#"
import hashlib
k = {key:?}
evil = b"EVIL"
side = k.rsplit("/", 1)[0] + "/evil.bin"
s3.put_object(Bucket=B, Key=side, Body=evil)
m = json.loads(s3.get_object(Bucket=B, Key=k + ".manifest.json")["Body"].read())
m["side_files"] = [{{"name": {name:?}, "key": side, "size": 4, "sha256": hashlib.sha256(evil).hexdigest()}}]
s3.put_object(Bucket=B, Key=k + ".manifest.json", Body=json.dumps(m).encode())
"#,
            key = key(101, A)
        ),
    );
}

#[test]
fn pull_to_dir_never_lets_a_side_file_replace_another_file() {
    let (sim, s3) = demo_offsite();
    s3.push_local(&sim);
    let volid = format!("offsite:backup/{}", key(101, A));
    for victim in [B.to_string(), format!("{B}.notes"), A.to_string()] {
        hostile_side_file(&s3, &victim);
        let to = tempfile::tempdir().expect("tmp");
        for f in [B.to_string(), format!("{B}.notes")] {
            std::fs::write(to.path().join(f), b"mine").expect("write");
        }
        let out = run_code(s3.pull_to(to.path()).args([&volid, "--force"]), 1);
        assert_eq!(
            statuses(&out.stdout),
            [(A.to_string(), "failed".to_string())],
            "{victim}"
        );
        for f in [B.to_string(), format!("{B}.notes")] {
            assert_eq!(
                std::fs::read(to.path().join(&f)).expect("kept"),
                b"mine",
                "{f} replaced through side file {victim}"
            );
        }
        if let Ok(a) = std::fs::read(to.path().join(A)) {
            assert_ne!(
                a, b"EVIL",
                "the archive replaced through side file {victim}"
            );
        }
    }
}

#[test]
fn pull_to_dir_keeps_an_existing_side_file_that_differs() {
    let (sim, s3) = demo_offsite();
    s3.push_local(&sim);
    let to = tempfile::tempdir().expect("tmp");
    let notes = to.path().join(format!("{A}.notes"));
    std::fs::write(&notes, b"my notes").expect("write");
    let volid = format!("offsite:backup/{}", key(101, A));
    let out = run_code(s3.pull_to(to.path()).arg(&volid), 1);
    let step = &of_kind(&out.stdout, "step")[0];
    assert_eq!(step["status"], "failed");
    assert_says(step, "message", "--force");
    assert_eq!(std::fs::read(&notes).expect("kept"), b"my notes");
    assert!(!to.path().join(A).exists(), "nothing written: {step}");
    // --force replaces it with the copy's.
    run_ok(s3.pull_to(to.path()).args([&volid, "--force"]));
    assert_eq!(
        std::fs::read(&notes).expect("pulled"),
        std::fs::read(sim.dump_dir("local").join(format!("{A}.notes"))).expect("original")
    );
}

/// The demo over sshd with its backups pushed, then `A` lost from the node's `local`: the
/// simulator, the sshd, the bucket and the dump directory.
fn a_lost() -> (SimNode, Sshd, Offsite, PathBuf) {
    let (sim, sshd) = demo_over_ssh();
    let s3 = Offsite::new();
    s3.push_local(&sim);
    let dump = sim.dump_dir("local");
    std::fs::remove_file(dump.join(A)).expect("rm");
    (sim, sshd, s3, dump)
}

#[test]
fn pull_to_node_never_lets_a_side_file_replace_a_backup() {
    let (_sim, sshd, s3, dump) = a_lost();
    let before = std::fs::read(dump.join(B)).expect("B");
    hostile_side_file(&s3, B);
    let volid = format!("offsite:backup/{}", key(101, A));
    let out = run_code(
        s3.tool("backup-sync")
            .args([
                "pull",
                "--yes",
                &volid,
                "--force",
                "--to-node",
                "pve1",
                "--storage",
                "local",
            ])
            .args(sshd.args()),
        1,
    );
    assert_eq!(statuses(&out.stdout)[0].1, "failed");
    assert_eq!(
        std::fs::read(dump.join(B)).expect("B"),
        before,
        "B replaced"
    );
    assert!(!dump.join(A).exists(), "nothing written");
}

#[test]
fn pull_to_node_does_not_write_through_a_planted_symlink() {
    let (_sim, sshd, s3, dump) = a_lost();
    let outside = tempfile::tempdir().expect("tmp");
    let victim = outside.path().join("victim");
    std::fs::write(&victim, b"keep").expect("write");
    std::os::unix::fs::symlink(&victim, dump.join(format!(".{A}.backup-sync.tmp")))
        .expect("symlink");
    let volid = format!("offsite:backup/{}", key(101, A));
    let _ = s3
        .pull_to_node(&volid, "pve1", &sshd)
        .output()
        .expect("run");
    assert_eq!(std::fs::read(&victim).expect("victim"), b"keep");
}

#[test]
fn push_uploads_again_an_archive_whose_object_is_gone_or_cut() {
    let (sim, s3) = demo_offsite();
    s3.push_local(&sim);
    let dump = sim.dump_dir("local");
    let original = std::fs::read(dump.join(A)).expect("A");
    for damage in [
        "s3.delete_object(Bucket=B, Key=K)",
        "s3.put_object(Bucket=B, Key=K, Body=b'cut')",
    ] {
        s3.moto
            .boto(BUCKET, &format!("K = {:?}\n{damage}", key(101, A)));
        let out = run_ok(s3.push_from(&dump).write_stdin(list_dir(&dump, "local")));
        assert!(
            statuses(&out.stdout).contains(&(A.to_string(), "changed".to_string())),
            "{damage}: {:?}",
            statuses(&out.stdout)
        );
        assert_eq!(s3.object(&key(101, A)), original, "{damage}");
    }
}

/// Records from a line that never ends (`< /dev/zero`): an error at the line bound, not a
/// read without end. The wait is bounded so that the old behaviour fails instead of hanging.
#[test]
fn push_of_an_endless_line_stops_at_the_line_bound() {
    let zero = std::fs::File::open("/dev/zero").expect("/dev/zero");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("backup-sync"))
        .args(["push", "--yes", "--to", TO, "--dir", "/nonexistent"])
        .stdin(zero)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut status = None;
    for _ in 0..1200 {
        status = child.try_wait().expect("wait");
        if status.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("backup-sync push still reading /dev/zero after 120 s");
    }
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err)
        .expect("stderr");
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{err}");
    assert!(err.contains("longer than"), "{err}");
}

/// The record says one size, the file has another (it changed since it was listed):
/// `--dir` aborts that archive as a push over SSH does.
#[test]
fn push_from_dir_aborts_an_archive_whose_size_is_not_the_records() {
    let (sim, s3) = demo_offsite();
    let dump = sim.dump_dir("local");
    let listing = list_dir(&dump, "local");
    let mut grown = std::fs::read(dump.join(A)).expect("A");
    grown.extend_from_slice(b"appended after the listing");
    std::fs::write(dump.join(A), grown).expect("write");
    let out = run_code(s3.push_from(&dump).write_stdin(listing), 3);
    let failed: Vec<_> = failed_steps(&out.stdout);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["target"], A);
    assert_says(&failed[0], "message", "record");
    assert!(!s3.keys().iter().any(|k| k.contains(A)), "{:?}", s3.keys());
    assert_eq!(s3.uploads(), 0);
}

/// Notes and a node name from a forged manifest reach `ls --format table|csv` escaped:
/// no terminal escape, no carriage return, one line per copy.
#[test]
fn ls_table_and_csv_escape_control_characters_from_manifests() {
    let (sim, s3) = demo_offsite();
    s3.push_local(&sim);
    s3.edit_manifest(
        &key(101, A),
        r#"m["notes"] = "\x1b]0;owned\x07\x1b[2Jnotes\rover"
m["node"] = "pve1\x1b[31m"
m["source_volid"] = "local:backup/a\nb""#,
    );
    for format in ["table", "csv"] {
        let out = run_ok(
            s3.tool("backup-sync")
                .args(["ls", "--from", TO, "--format", format]),
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            !text.contains(['\u{1b}', '\u{7}', '\r']),
            "{format}: {text:?}"
        );
        assert!(text.contains("\\u{1b}[2Jnotes\\rover"), "{format}: {text}");
        let copies = text.lines().filter(|l| l.contains("vzdump-")).count();
        assert_eq!(copies, text.lines().count() - 1, "{format}: {text}");
    }
}

/// A manifest whose size is not its object's (here one no record can carry): `ls` reports
/// the copy as `offsite_damaged`, not as a `backup`, and the offsite prune of the others
/// goes on.
#[test]
fn ls_reports_a_copy_whose_size_lies_as_damaged() {
    let (sim, s3) = demo_offsite();
    s3.push_local(&sim);
    s3.edit_manifest(&key(101, A), r#"m["size"] = 18446744073709551615"#);
    let ls = run_ok(s3.tool("backup-sync").args(["ls", "--from", TO])).stdout;
    let damaged = of_kind(&ls, "offsite_damaged");
    assert_eq!(damaged.len(), 1, "{}", String::from_utf8_lossy(&ls));
    assert_eq!(
        damaged[0]["volid"],
        format!("offsite:backup/{}", key(101, A))
    );
    assert_eq!(damaged[0]["manifest_size"], 18446744073709551615u64);
    assert!(damaged[0]["object_size"].is_u64(), "{}", damaged[0]);
    assert!(
        of_kind(&ls, "backup")
            .iter()
            .all(|b| !b["volid"].as_str().unwrap_or("").ends_with(A))
    );
    // The next tool reads the listing: the others are marked, the damaged copy passes.
    let out = run_ok(
        s3.tool("backup-prune")
            .args(["--keep-last", "1"])
            .write_stdin(ls.clone()),
    );
    assert!(!of_kind(&out.stdout, "backup").is_empty());
    assert_eq!(of_kind(&out.stdout, "offsite_damaged").len(), 1);
    // backup-check reads the same listing: the copy that cannot be restored is CRITICAL.
    let out = s3
        .tool("backup-check")
        .write_stdin(ls)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let checks = of_kind(&out.stdout, "check");
    let offsite: Vec<&serde_json::Value> =
        checks.iter().filter(|c| c["check"] == "offsite").collect();
    assert_eq!(offsite.len(), 1, "{checks:?}");
    assert_eq!(offsite[0]["component"], "guest/101");
    assert_eq!(offsite[0]["status"], "critical");
}
