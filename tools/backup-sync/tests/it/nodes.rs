//! A storage that is each node's own disk (`local`, not shared): the same path holds other
//! files on each node. push reads an archive on the node its record names, pull --to-node
//! writes on the node named, both through the node the connection lands on.

use std::path::{Path, PathBuf};

use pvedr_testkit::{SimNode, Sshd, run_ok};

use crate::common::{BUCKET, Offsite, TO, assert_changed, noise};

const NAME: &str = "vzdump-qemu-102-2024_01_15-02_00_02.vma.zst";

/// The demo with [`two_locals`], its sshd and an offsite bucket.
fn two_nodes() -> (SimNode, PathBuf, Sshd, Offsite) {
    let sim = SimNode::demo();
    let pve2 = two_locals(&sim);
    let sshd = Sshd::start(&sim);
    (sim, pve2, sshd, Offsite::new())
}

/// `local` on pve1 and pve2; pve2's own dump directory.
fn two_locals(sim: &SimNode) -> PathBuf {
    sim.edit_storage("local", |s| {
        s["nodes"] = serde_json::json!(["pve1", "pve2"])
    });
    let d = sim.root().join("nodefs/pve2/local/dump");
    std::fs::create_dir_all(&d).expect("pve2 dump");
    d
}

/// Writes the archive `NAME` of `size` bytes of noise (`seed`) in pve2's dump directory.
fn on_pve2(pve2: &Path, size: usize, seed: u64) -> Vec<u8> {
    let theirs = noise(size, seed);
    std::fs::write(pve2.join(NAME), &theirs).expect("pve2 archive");
    theirs
}

fn record(size: usize) -> String {
    format!(
        "{{\"kind\":\"backup\",\"node\":\"pve2\",\"storage\":\"local\",\"volid\":\"local:backup/{NAME}\",\"vmid\":102,\"subtype\":\"qemu\",\"ctime\":1705284002,\"time\":\"2024-01-15T02:00:02Z\",\"size\":{size},\"format\":\"vma.zst\"}}\n"
    )
}

#[test]
fn push_reads_the_archive_on_the_node_of_its_record() {
    let (sim, pve2, sshd, s3) = two_nodes();
    let theirs = on_pve2(&pve2, 300_000, 2);
    // pve1 has a file of that name too, other bytes: the one the wrong node would give.
    std::fs::write(sim.dump_dir("local").join(NAME), noise(300_000, 1)).expect("pve1 file");
    let out = run_ok(
        s3.tool("backup-sync")
            .args(["push", "--yes", "--to", TO])
            .args(sshd.args())
            .write_stdin(record(theirs.len())),
    );
    assert_changed(&out.stdout, NAME);
    assert!(
        s3.object(&format!("pve/pve2/102/{NAME}")) == theirs,
        "the offsite copy is not pve2's archive"
    );
}

#[test]
fn pull_to_node_writes_on_the_node_named() {
    let (sim, pve2, sshd, s3) = two_nodes();
    let theirs = on_pve2(&pve2, 200_000, 3);
    run_ok(s3.push_from(&pve2).write_stdin(record(theirs.len())));
    std::fs::remove_file(pve2.join(NAME)).expect("pve2 lost it");
    let volid = format!("{BUCKET}:backup/pve/pve2/102/{NAME}");
    let out = run_ok(s3.pull_to_node(&volid, "pve2", &sshd));
    assert_changed(&out.stdout, NAME);
    assert!(
        !sim.dump_dir("local").join(NAME).exists(),
        "written on pve1, the node connected to"
    );
    assert!(
        std::fs::read(pve2.join(NAME)).ok() == Some(theirs),
        "not back on pve2"
    );
}

/// An encrypted copy pulled onto a node: decrypted on the way with --age-identity, the
/// node gets the archive itself (checked against the plaintext sha256 as sent and as
/// landed); without the identity nothing is written there.
#[test]
fn pull_to_node_decrypts_an_encrypted_copy() {
    let (_sim, pve2, sshd, s3) = two_nodes();
    let keys = tempfile::tempdir().expect("tmp");
    let key = crate::encrypt::keygen(keys.path(), "key.txt");
    let theirs = on_pve2(&pve2, 200_000, 4);
    run_ok(
        s3.push_from(&pve2)
            .args(["--encrypt-to", &key.public])
            .write_stdin(record(theirs.len())),
    );
    assert!(
        s3.object(&format!("pve/pve2/102/{NAME}")) != theirs,
        "pushed in the clear"
    );
    std::fs::remove_file(pve2.join(NAME)).expect("pve2 lost it");
    let volid = format!("{BUCKET}:backup/pve/pve2/102/{NAME}");
    let pull = |extra: &[&str]| {
        s3.tool("backup-sync")
            .args([
                "pull",
                "--yes",
                &volid,
                "--to-node",
                "pve2",
                "--storage",
                "local",
            ])
            .args(extra)
            .args(sshd.args())
            .output()
            .expect("pull")
    };
    let out = pull(&[]);
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--age-identity"));
    assert!(!pve2.join(NAME).exists(), "written without an identity");
    let id = key.file.to_str().expect("utf-8");
    let out = pull(&["--age-identity", id]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::fs::read(pve2.join(NAME)).ok() == Some(theirs),
        "not the archive itself on pve2"
    );
}
