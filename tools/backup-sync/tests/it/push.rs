//! push over SSH and from a dump directory; idempotence; a changed copy is never replaced
//! silently; ls gives the copies back as `backup` records.

use pvedr_testkit::{assert_says, demo_over_ssh, json_lines, run_code, run_ok};
use sha2::{Digest, Sha256};

use crate::common::{
    Offsite, TO, archives, demo_offsite, failed_steps, list_dir, list_ssh, of_kind, statuses,
};

fn sha(p: &std::path::Path) -> String {
    let d = Sha256::digest(std::fs::read(p).expect("read"));
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn push_over_ssh_uploads_every_archive_and_a_second_push_skips_them_all() {
    let (sim, sshd) = demo_over_ssh();
    let s3 = Offsite::new();
    let listing = list_ssh(&sshd, "local");
    let names = archives(&sim, "local");
    assert!(names.len() >= 10, "{names:?}");
    let push = || {
        run_ok(
            s3.tool("backup-sync")
                .args(["push", "--yes", "--to", TO, "--jobs", "2"])
                .args(sshd.args())
                .write_stdin(listing.clone()),
        )
    };
    let first = push();
    let st = statuses(&first.stdout);
    assert_eq!(st.len(), names.len());
    assert!(st.iter().all(|(_, s)| s == "changed"), "{st:?}");
    let keys = s3.keys();
    for n in &names {
        let key = |f: &str| {
            let vmid = pvedr::archive::parse(n).and_then(|a| a.vmid).expect("vmid");
            format!("pve/pve1/{vmid}/{f}")
        };
        assert!(keys.contains(&key(n)), "{n} not uploaded: {keys:?}");
        assert!(keys.contains(&key(&format!("{n}.manifest.json"))));
        let path = sim.dump_dir("local").join(n);
        if path.with_file_name(format!("{n}.notes")).exists() {
            assert!(keys.contains(&key(&format!("{n}.notes"))), "{n}.notes");
        }
        // The bytes offsite are the archive's.
        let m: serde_json::Value =
            serde_json::from_slice(&s3.object(&key(&format!("{n}.manifest.json"))))
                .expect("manifest");
        assert_eq!(m["sha256"], sha(&path), "{n}");
        assert_eq!(
            s3.object(&key(n)),
            std::fs::read(&path).expect("read"),
            "{n}"
        );
    }
    let summary = &of_kind(&first.stdout, "summary")[0];
    assert_eq!(summary["counts"]["changed"], names.len());
    assert_eq!(summary["exit_code"], 0);
    // Progress and the plain lines go to stderr, only records to stdout.
    assert!(
        json_lines(&first.stdout)
            .iter()
            .all(|r| r["kind"] == "step" || r["kind"] == "summary")
    );

    let second = push();
    let st = statuses(&second.stdout);
    assert_eq!(st.len(), names.len());
    assert!(st.iter().all(|(_, s)| s == "skipped"), "{st:?}");
    assert_eq!(s3.keys(), keys, "nothing written the second time");
    assert_eq!(s3.uploads(), 0);
}

#[test]
fn push_from_dir_refuses_a_changed_copy_without_force() {
    let (sim, s3) = demo_offsite();
    let dump = sim.dump_dir("local");
    let listing = list_dir(&dump, "local");
    let push = |extra: &[&str], code: i32| {
        run_code(
            s3.push_from(&dump).args(extra).write_stdin(listing.clone()),
            code,
        )
    };
    push(&[], 0);
    // The same name, other bytes (the node was rebuilt, a file was restored from elsewhere).
    let victim = "vzdump-qemu-100-2024_01_14-02_00_02.vma.zst";
    let key = format!("pve/pve1/100/{victim}");
    let before = s3.object(&key);
    std::fs::write(dump.join(victim), b"other bytes, same size?").expect("write");
    let listing = list_dir(&dump, "local");
    let out = run_code(s3.push_from(&dump).write_stdin(listing.clone()), 3);
    let failed: Vec<_> = failed_steps(&out.stdout);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["target"], victim);
    assert_says(&failed[0], "message", "--force");
    assert_eq!(s3.object(&key), before, "the offsite copy is untouched");
    let out = run_ok(
        s3.tool("backup-sync")
            .args(["push", "--yes", "--to", TO, "--force", "--dir"])
            .arg(&dump)
            .write_stdin(listing),
    );
    assert!(statuses(&out.stdout).contains(&(victim.to_string(), "changed".to_string())));
    assert_eq!(s3.object(&key), b"other bytes, same size?");
}

#[test]
fn ls_lists_the_copies_as_backup_records() {
    let (sim, s3) = demo_offsite();
    let dump = sim.dump_dir("local");
    let listing = list_dir(&dump, "local");
    run_ok(s3.push_from(&dump).write_stdin(listing.clone()));
    let out = run_ok(s3.tool("backup-sync").args(["ls", "--from", TO]));
    let offsite = pvedr_testkit::records(&out.stdout, "backup");
    let local = pvedr_testkit::records(&listing, "backup");
    assert_eq!(offsite.len(), local.len());
    let backup = |r: &pvedr::Record| match r {
        pvedr::Record::Backup(b) => b.clone(),
        _ => panic!("not a backup"),
    };
    for o in offsite.iter().map(backup) {
        let l = local
            .iter()
            .map(backup)
            .find(|l| o.extra["source_volid"] == l.volid.as_str())
            .expect("each copy comes from a listed archive");
        let name = l.volid.rsplit('/').next().expect("name");
        assert_eq!(o.storage.as_deref(), Some("offsite"));
        assert_eq!(
            o.volid,
            format!("offsite:backup/pve/pve1/{}/{name}", l.vmid.expect("vmid"))
        );
        assert_eq!(o.node.as_deref(), Some("pve1"));
        for (a, b) in [
            (&o.subtype, &l.subtype),
            (&o.format, &l.format),
            (&o.time, &l.time),
        ] {
            assert_eq!(a, b, "{name}");
        }
        assert_eq!(
            (o.vmid, o.ctime, o.size),
            (l.vmid, l.ctime, l.size),
            "{name}"
        );
        assert_eq!((&o.notes, o.protected), (&l.notes, l.protected), "{name}");
        assert_eq!(o.extra["sha256"], sha(&dump.join(name)).as_str());
    }
}

#[test]
fn push_reads_only_the_backup_records_of_a_mixed_stream() {
    // Guests with tags as Proxmox gives them and a job backup-sync cannot read: ignored.
    let (sim, s3) = demo_offsite();
    let dump = sim.dump_dir("local");
    let listing = String::from_utf8(list_dir(&dump, "local")).expect("utf-8");
    let one = listing
        .lines()
        .find(|l| l.contains("vzdump-qemu-100-2024_01_14-02_00_02.vma.zst"))
        .expect("listed");
    let stdin = format!(
        "{}\n{}\n{}\n{one}\n",
        r#"{"kind":"guest","vmid":100,"type":"qemu","node":"pve1","tags":"prod;web"}"#,
        r#"{"kind":"guest","vmid":101,"type":"lxc","node":"pve1","tags":""}"#,
        r#"{"kind":"job","id":7,"enabled":"maybe"}"#,
    );
    let out = run_code(s3.push_from(&dump).write_stdin(stdin), 0);
    assert_eq!(
        statuses(&out.stdout),
        [(
            "vzdump-qemu-100-2024_01_14-02_00_02.vma.zst".to_string(),
            "changed".to_string()
        )]
    );
    assert!(
        s3.keys()
            .contains("pve/pve1/100/vzdump-qemu-100-2024_01_14-02_00_02.vma.zst")
    );
}
