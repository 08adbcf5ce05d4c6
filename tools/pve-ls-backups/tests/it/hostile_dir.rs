//! A hostile dump directory (issue 11 point 3): FIFOs named like side files, unreadable
//! notes, non-UTF-8 names. Every run finishes (under a timeout), reads only regular files
//! and says on stderr what it skipped.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command as StdCommand;

use serde_json::Value;

use crate::list;

const ARCHIVE: &str = "vzdump-qemu-100-2024_01_15-02_00_02.vma.zst";
const LOG: &str = "vzdump-qemu-100-2024_01_15-02_00_02.log";

fn mkfifo(p: &Path) {
    let st = StdCommand::new("mkfifo").arg(p).status().expect("mkfifo");
    assert!(st.success());
}

fn with_archive() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tmp");
    fs::write(tmp.path().join(ARCHIVE), b"0123456789").expect("write");
    tmp
}

fn backup(recs: &[Value]) -> &Value {
    recs.iter()
        .find(|r| r["kind"] == "backup")
        .expect("the archive is listed")
}

/// stderr names `file` and says `why` it was skipped.
fn says(err: &str, file: &str, why: &str) {
    assert!(err.contains(file) && err.contains(why), "{err}");
}

#[test]
fn fifo_notes_is_skipped_with_a_warning() {
    let tmp = with_archive();
    mkfifo(&tmp.path().join(format!("{ARCHIVE}.notes")));
    let (recs, err) = list(tmp.path());
    assert!(backup(&recs).get("notes").is_none(), "{recs:?}");
    assert!(err.contains("pve-ls-backups: "), "{err}");
    says(&err, &format!("{ARCHIVE}.notes"), "not a regular file");
}

#[test]
fn fifo_log_beside_an_archive_is_skipped_with_a_warning() {
    let tmp = with_archive();
    mkfifo(&tmp.path().join(LOG));
    let (recs, err) = list(tmp.path());
    assert!(backup(&recs).get("log_status").is_none(), "{recs:?}");
    says(&err, LOG, "not a regular file");
}

#[test]
fn fifo_log_alone_is_skipped_with_a_warning() {
    let tmp = tempfile::tempdir().expect("tmp");
    mkfifo(&tmp.path().join(LOG));
    let (recs, err) = list(tmp.path());
    assert!(
        !recs.iter().any(|r| r["kind"] == "backup_failure"),
        "{recs:?}"
    );
    says(&err, LOG, "not a regular file");
}

#[test]
fn fifo_protected_counts_as_protected_with_a_warning() {
    // Proxmox tests `-e` on the .protected file: whatever it is, the archive is protected.
    let tmp = with_archive();
    mkfifo(&tmp.path().join(format!("{ARCHIVE}.protected")));
    let (recs, err) = list(tmp.path());
    assert_eq!(backup(&recs)["protected"], true);
    says(&err, &format!("{ARCHIVE}.protected"), "not a regular file");
}

#[test]
fn unreadable_notes_are_reported() {
    // A symlink loop cannot be opened, even by root.
    let tmp = with_archive();
    let notes = tmp.path().join(format!("{ARCHIVE}.notes"));
    std::os::unix::fs::symlink(&notes, &notes).expect("symlink");
    let (recs, err) = list(tmp.path());
    assert!(backup(&recs).get("notes").is_none(), "{recs:?}");
    says(&err, &format!("{ARCHIVE}.notes"), "cannot read");
}

#[test]
fn huge_notes_give_the_first_line_only() {
    // 64 MiB on one line: the notes are bounded, the first line still comes through
    // (cut), the listing finishes.
    let tmp = with_archive();
    let mut big = b"first ".to_vec();
    big.resize(64 << 20, b'x');
    big.extend(b"\nsecond line");
    fs::write(tmp.path().join(format!("{ARCHIVE}.notes")), &big).expect("write");
    let (recs, _) = list(tmp.path());
    let notes = backup(&recs)["notes"].as_str().unwrap_or("").to_string();
    assert!(
        notes.starts_with("first x"),
        "{}",
        &notes[..20.min(notes.len())]
    );
    assert!(notes.len() < 1 << 20, "notes of {} bytes", notes.len());
}

#[test]
fn non_utf8_names_are_reported() {
    let tmp = with_archive();
    let odd = OsStr::from_bytes(b"vzdump-qemu-101-2024_01_15-02_00_02\xff.vma.zst");
    fs::write(tmp.path().join(odd), b"x").expect("write");
    let (recs, err) = list(tmp.path());
    assert_eq!(
        recs.iter().filter(|r| r["kind"] == "backup").count(),
        1,
        "{recs:?}"
    );
    assert!(
        err.contains("pve-ls-backups: ") && err.contains("not UTF-8"),
        "{err}"
    );
}
