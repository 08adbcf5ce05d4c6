//! pull: the offsite copy comes back byte for byte, verified before it is renamed in.

use pvedr_testkit::{assert_says, run_code, run_ok};

use crate::common::{Offsite, TO, assert_changed, demo_offsite, of_kind, statuses};

fn files(d: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d)
        .expect("dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    v.sort();
    v
}

#[test]
fn pull_gives_byte_identical_files_with_their_side_files() {
    let (sim, s3) = demo_offsite();
    s3.push_local(&sim);
    let ls = run_ok(s3.tool("backup-sync").args(["ls", "--from", TO])).stdout;
    let to = tempfile::tempdir().expect("tmp");
    // Records on stdin: every copy of guest 101.
    let picked: Vec<u8> = String::from_utf8_lossy(&ls)
        .lines()
        .filter(|l| l.contains("\"vmid\":101"))
        .flat_map(|l| format!("{l}\n").into_bytes())
        .collect();
    let out = run_ok(s3.pull_to(to.path()).write_stdin(picked));
    let st = statuses(&out.stdout);
    assert_eq!(st.len(), 3, "{st:?}");
    assert!(st.iter().all(|(_, s)| s == "changed"));
    let dump = sim.dump_dir("local");
    let got = files(to.path());
    assert!(
        got.iter().any(|f| f.ends_with(".notes")) && got.iter().any(|f| f.ends_with(".log")),
        "{got:?}"
    );
    for f in &got {
        assert_eq!(
            std::fs::read(to.path().join(f)).expect("pulled"),
            std::fs::read(dump.join(f)).expect("original"),
            "{f} differs"
        );
    }
    // Again: already there, skipped.
    let volid = "offsite:backup/pve/pve1/101/vzdump-lxc-101-2024_01_15-02_01_07.tar.zst";
    let again = run_ok(s3.pull_to(to.path()).arg(volid));
    assert_eq!(statuses(&again.stdout)[0].1, "skipped");
}

#[test]
fn a_corrupted_copy_is_not_written() {
    let (sim, s3) = demo_offsite();
    s3.push_local(&sim);
    let name = "vzdump-lxc-101-2024_01_15-02_01_07.tar.zst";
    let key = format!("pve/pve1/101/{name}");
    // Bit rot offsite: other bytes under the key, the manifest unchanged.
    s3.moto.boto(
        "offsite",
        &format!("s3.put_object(Bucket=B, Key={key:?}, Body=b'rotten')"),
    );
    let to = tempfile::tempdir().expect("tmp");
    let out = run_code(
        s3.pull_to(to.path()).arg(format!("offsite:backup/{key}")),
        1,
    );
    let step = &of_kind(&out.stdout, "step")[0];
    assert_eq!(step["status"], "failed");
    assert_says(step, "message", "sha256");
    assert!(
        files(to.path()).is_empty(),
        "nothing written, no temporary file left"
    );
    // An existing different file is kept without --force.
    std::fs::write(to.path().join(name), b"mine").expect("write");
    let out = run_code(
        s3.pull_to(to.path()).arg(format!("offsite:backup/{key}")),
        1,
    );
    assert_eq!(of_kind(&out.stdout, "step")[0]["status"], "failed");
    assert_eq!(std::fs::read(to.path().join(name)).expect("read"), b"mine");
}

#[test]
fn pull_to_node_puts_the_archive_back_on_the_storage_over_ssh() {
    let sim = pvedr_testkit::SimNode::demo();
    let sshd = pvedr_testkit::Sshd::start(&sim);
    let s3 = Offsite::new();
    s3.push_local(&sim);
    let dump = sim.dump_dir("local");
    let name = "vzdump-lxc-101-2024_01_15-02_01_07.tar.zst";
    let side = [
        format!("{name}.notes"),
        "vzdump-lxc-101-2024_01_15-02_01_07.log".to_string(),
    ];
    let original: Vec<Vec<u8>> = std::iter::once(name.to_string())
        .chain(side.iter().cloned())
        .map(|f| std::fs::read(dump.join(f)).expect("original"))
        .collect();
    // The node lost its disk.
    for f in std::iter::once(name.to_string()).chain(side.iter().cloned()) {
        std::fs::remove_file(dump.join(f)).expect("rm");
    }
    let volid = format!("offsite:backup/pve/pve1/101/{name}");
    let out = run_ok(s3.pull_to_node(&volid, "pve1", &sshd));
    assert_changed(&out.stdout, name);
    let back: Vec<Vec<u8>> = std::iter::once(name.to_string())
        .chain(side.iter().cloned())
        .map(|f| std::fs::read(dump.join(f)).expect("pulled back"))
        .collect();
    assert_eq!(back, original, "byte-identical, side files too");
    assert!(
        files(&dump).iter().all(|f| !f.contains(".backup-sync.")),
        "no temporary file left"
    );
    // Proxmox lists it again, ready for pve-restore.
    let listing = String::from_utf8(crate::common::list_ssh(&sshd, "local")).expect("utf8");
    assert!(listing.contains(&format!("local:backup/{name}")));
}
