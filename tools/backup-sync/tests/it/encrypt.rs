//! Client-side encryption (age): a pushed copy is decrypted byte for byte by the standard
//! `age` command and by `pull --age-identity`; a wrong, missing or exposed identity is
//! refused with a message saying so, and no secret key is ever printed; verify reads an
//! encrypted copy only with an identity that opens it.

use std::path::{Path, PathBuf};
use std::process::Command;

use pvedr_testkit::{assert_says, json_lines, run_code, run_ok};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common::{BUCKET, Offsite, TO, assert_changed, list_dir, noise, of_kind, record};

pub const NAME: &str = "vzdump-qemu-100-2024_01_16-02_00_02.vma.zst";
const LOG: &str = "vzdump-qemu-100-2024_01_16-02_00_02.log";
pub const KEY: &str = "pve/pve1/100/vzdump-qemu-100-2024_01_16-02_00_02.vma.zst";
const NOTES: &str = "db server: geheim\nsecond line\n";

/// An age key pair made by age-keygen: (identity file, public key, secret key).
pub struct AgeKey {
    pub file: PathBuf,
    pub public: String,
    pub secret: String,
}

pub fn keygen(dir: &Path, name: &str) -> AgeKey {
    let file = dir.join(name);
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(&file)
        .output()
        .expect("age-keygen (Debian package age)");
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&file).expect("key");
    let line = |p: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(p))
            .expect("a key line")
            .trim()
            .to_string()
    };
    AgeKey {
        public: line("# public key: "),
        secret: format!("AGE-SECRET-KEY-{}", line("AGE-SECRET-KEY-")),
        file,
    }
}

/// `age -d -i KEY` of `data`: the standard command, not ours.
pub fn age_decrypt(key: &Path, data: &[u8]) -> Vec<u8> {
    let tmp = tempfile::tempdir().expect("tmp");
    let f = tmp.path().join("copy.age");
    std::fs::write(&f, data).expect("write");
    let out = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(key)
        .arg(&f)
        .output()
        .expect("age");
    assert!(out.status.success(), "age -d: {out:?}");
    out.stdout
}

fn sha256(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A dump directory with an archive of `size` bytes, its notes and log.
fn dump(size: usize) -> (tempfile::TempDir, Vec<u8>) {
    let dir = tempfile::tempdir().expect("tmp");
    let data = noise(size, 29);
    std::fs::write(dir.path().join(NAME), &data).expect("archive");
    std::fs::write(dir.path().join(format!("{NAME}.notes")), NOTES).expect("notes");
    std::fs::write(dir.path().join(LOG), "INFO: starting\n").expect("log");
    (dir, data)
}

/// `backup-sync pull` of the copy at `KEY` into `to`, with `key` as the age identity.
fn pull_with(s3: &Offsite, to: &Path, key: &AgeKey) -> assert_cmd::Command {
    let mut c = s3.pull_to(to);
    c.arg("--age-identity")
        .arg(&key.file)
        .arg(format!("s3://{BUCKET}/{KEY}"));
    c
}

/// A backup of `size` bytes pushed encrypted to a new key: the bucket, the key's directory,
/// the key and the dump directory.
fn pushed_encrypted(size: usize) -> (Offsite, tempfile::TempDir, AgeKey, tempfile::TempDir) {
    let s3 = Offsite::new();
    let keys = tempfile::tempdir().expect("tmp");
    let k1 = keygen(keys.path(), "k1");
    let (dir, _) = dump(size);
    push(&s3, dir.path(), size, &["--encrypt-to", &k1.public]);
    (s3, keys, k1, dir)
}

fn push(s3: &Offsite, dir: &Path, size: usize, args: &[&str]) -> std::process::Output {
    run_ok(
        s3.tool("backup-sync")
            .args(["push", "--yes", "--to", TO, "--part-size", "5M", "--dir"])
            .arg(dir)
            .args(args)
            .write_stdin(record(NAME, size as u64)),
    )
}

fn manifest(s3: &Offsite) -> Value {
    serde_json::from_slice(&s3.object(&format!("{KEY}.manifest.json"))).expect("manifest")
}

fn no_secret(out: &std::process::Output, key: &AgeKey) {
    for s in [&out.stdout, &out.stderr] {
        assert!(
            !String::from_utf8_lossy(s).contains(&key.secret),
            "the secret key was printed"
        );
    }
}

#[test]
fn an_encrypted_multipart_push_is_decrypted_by_age_and_by_pull_byte_identical() {
    let s3 = Offsite::new();
    let keys = tempfile::tempdir().expect("tmp");
    let (k1, k2) = (keygen(keys.path(), "k1"), keygen(keys.path(), "k2"));
    let recipients = keys.path().join("recipients");
    std::fs::write(&recipients, format!("# the second site\n{}\n\n", k2.public)).expect("r");
    // 11 MiB in parts of 5 MiB: three parts, the age stream cut across them.
    let size = 11 * 1024 * 1024 + 12345;
    let (dir, data) = dump(size);
    let first = push(&s3, dir.path(), size, &["--encrypt-to", &k1.public]);
    let plan = String::from_utf8_lossy(&first.stderr);
    assert!(
        plan.contains(&format!("encrypted (age) to {}", k1.public)),
        "{plan}"
    );
    assert_eq!(s3.uploads(), 0);
    let out = run_ok(
        s3.tool("backup-sync")
            .args(["push", "--yes", "--to", TO, "--part-size", "5M", "--dir"])
            .arg(dir.path())
            .args(["--encrypt-to", &k1.public, "--encrypt-to-file"])
            .arg(&recipients)
            .write_stdin(record(NAME, size as u64)),
    );
    // The first push had one recipient: the copy stays as it is (rotation keeps old copies).
    let st = of_kind(&out.stdout, "step");
    assert_eq!(st[0]["status"], "skipped", "{st:?}");
    assert_says(&st[0], "message", "other recipients");
    let object = s3.object(KEY);
    assert_ne!(object, data);
    let m = manifest(&s3);
    assert_eq!(m["encrypted"], "age");
    assert_eq!(m["recipients"], serde_json::json!([k1.public]));
    assert_eq!(m["sha256"], sha256(&data));
    assert_eq!(m["size"], size);
    assert_eq!(m["object_sha256"], sha256(&object));
    assert_eq!(m["object_size"], object.len());
    assert!(m.get("notes").is_none(), "notes in the clear: {m}");
    assert_eq!(age_decrypt(&k1.file, &object), data, "age -d");
    let notes = s3.object(&format!("pve/pve1/100/{NAME}.notes"));
    assert_eq!(age_decrypt(&k1.file, &notes), NOTES.as_bytes());

    let ls = run_ok(s3.tool("backup-sync").args(["ls", "--from", TO]));
    let b = &of_kind(&ls.stdout, "backup")[0];
    assert_eq!(b["encrypted"], "age", "{b}");
    assert_eq!(b["size"], size);

    let to = tempfile::tempdir().expect("tmp");
    let pulled = run_ok(pull_with(&s3, to.path(), &k1));
    no_secret(&pulled, &k1);
    assert_changed(&pulled.stdout, NAME);
    assert_eq!(std::fs::read(to.path().join(NAME)).expect("pulled"), data);
    let n = std::fs::read_to_string(to.path().join(format!("{NAME}.notes"))).expect("notes");
    assert_eq!(n, NOTES);
    assert!(to.path().join(LOG).exists());
}

#[test]
fn a_wrong_missing_or_exposed_identity_is_refused_and_no_secret_is_printed() {
    let s3 = Offsite::new();
    let keys = tempfile::tempdir().expect("tmp");
    let (k1, k2) = (keygen(keys.path(), "k1"), keygen(keys.path(), "k2"));
    let size = 300 * 1024;
    let (dir, _) = dump(size);
    push(&s3, dir.path(), size, &["--encrypt-to", &k1.public]);
    let to = tempfile::tempdir().expect("tmp");
    let pull = |extra: &[&std::ffi::OsStr], code: i32| {
        run_code(
            s3.pull_to(to.path())
                .args(extra)
                .arg(format!("s3://{BUCKET}/{KEY}")),
            code,
        )
    };
    let wrong = pull(&["--age-identity".as_ref(), k2.file.as_os_str()], 1);
    no_secret(&wrong, &k2);
    let msg = of_kind(&wrong.stdout, "step")[0]["message"].clone();
    let msg = msg.as_str().unwrap_or("");
    assert!(
        msg.contains(&k1.public) && msg.contains("does not open") && msg.contains(&k2.public),
        "{msg}"
    );
    let none = pull(&[], 1);
    let msg = of_kind(&none.stdout, "step")[0]["message"].clone();
    assert!(
        msg.as_str().unwrap_or("").contains("give --age-identity"),
        "{msg}"
    );
    assert_eq!(std::fs::read_dir(to.path()).expect("dir").count(), 0);

    // Readable by others: refused before anything is read, the secret not echoed.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&k1.file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let open = pull(&["--age-identity".as_ref(), k1.file.as_os_str()], 1);
    no_secret(&open, &k1);
    let err = String::from_utf8_lossy(&open.stderr);
    assert!(err.contains("open to group or others (mode 0644)"), "{err}");
    // A secret key given where a recipient goes: refused, not echoed.
    let mistaken = run_code(
        s3.push_from(dir.path())
            .args(["--encrypt-to", &k2.secret])
            .write_stdin(record(NAME, size as u64)),
        2,
    );
    no_secret(&mistaken, &k2);
    assert!(String::from_utf8_lossy(&mistaken.stderr).contains("is a secret key"));
}

#[test]
fn verify_reads_an_encrypted_copy_only_with_an_identity_that_opens_it() {
    let s3 = Offsite::new();
    let keys = tempfile::tempdir().expect("tmp");
    let (k1, k2) = (keygen(keys.path(), "k1"), keygen(keys.path(), "k2"));
    // A container backup whose content verify walks once decrypted.
    let dir = tempfile::tempdir().expect("tmp");
    let name = "vzdump-lxc-100-2024_01_15-02_00_02.tar.zst";
    crate::verify::archive(dir.path(), name, 3);
    run_ok(
        s3.push_from(dir.path())
            .args(["--encrypt-to", &k1.public])
            .write_stdin(list_dir(dir.path(), "local")),
    );
    let key = format!("pve/pve1/100/{name}");
    let state = keys.path().join("state.json");
    let verify = |extra: &[&std::ffi::OsStr], code: i32| {
        let out = run_code(
            s3.tool("backup-sync")
                .args(["verify", "--from", TO, "--max-egress", "10M", "--state"])
                .arg(&state)
                .args(extra),
            code,
        );
        let read = json_lines(&out.stdout)
            .into_iter()
            .find(|r| r["check"] == "offsite-read")
            .expect("offsite-read");
        (out, read)
    };
    // Without an identity: the free checks only, not read, and the state says so.
    let (_, read) = verify(&[], 0);
    assert_eq!(read["status"], "ok", "{read}");
    assert_says(&read, "message", "not read: no --age-identity");
    let st: Value = serde_json::from_slice(&std::fs::read(&state).expect("state")).expect("json");
    assert!(st["objects"][&key].get("read").is_none(), "{st}");
    // Another key: not read, UNKNOWN, naming both.
    let (out, read) = verify(&["--age-identity".as_ref(), k2.file.as_os_str()], 3);
    no_secret(&out, &k2);
    assert_eq!(read["status"], "unknown", "{read}");
    let msg = read["message"].as_str().unwrap_or("");
    assert!(
        msg.contains("does not open") && msg.contains(&k1.public),
        "{msg}"
    );
    // The right one: decrypted, the plaintext's sha256 checked, recorded as read.
    let (out, read) = verify(&["--age-identity".as_ref(), k1.file.as_os_str()], 0);
    no_secret(&out, &k1);
    assert_eq!(read["status"], "ok", "{read}");
    assert_says(&read, "message", "decrypted with --age-identity");
    let st: Value = serde_json::from_slice(&std::fs::read(&state).expect("state")).expect("json");
    assert!(st["objects"][&key]["read"].is_i64(), "{st}");
}

#[test]
fn a_plain_push_over_an_encrypted_copy_is_refused_without_force() {
    let size = 100 * 1024;
    let (s3, _keys, _k1, dir) = pushed_encrypted(size);
    let out = run_code(
        s3.push_from(dir.path())
            .write_stdin(record(NAME, size as u64)),
        1,
    );
    let msg = of_kind(&out.stdout, "step")[0]["message"].clone();
    assert!(
        msg.as_str()
            .unwrap_or("")
            .contains("encrypted, and this push does not encrypt"),
        "{msg}"
    );
}

#[test]
fn a_flipped_byte_in_an_encrypted_copy_fails_pull_and_verify_with_nothing_written() {
    // Small: the object goes back through a boto3 command line.
    let size = 30 * 1024;
    let (s3, keys, k1, _dir) = pushed_encrypted(size);
    let mut object = s3.object(KEY);
    // In the payload: age's tag of its chunk no longer matches.
    let at = object.len() - 100;
    object[at] ^= 0x01;
    let hex: String = object.iter().map(|b| format!("{b:02x}")).collect();
    s3.moto.boto(
        BUCKET,
        &format!("s3.put_object(Bucket=B, Key={KEY:?}, Body=bytes.fromhex('{hex}'))"),
    );
    let to = tempfile::tempdir().expect("tmp");
    let out = run_code(pull_with(&s3, to.path(), &k1), 1);
    let msg = of_kind(&out.stdout, "step")[0]["message"].clone();
    assert!(
        msg.as_str().unwrap_or("").contains("not a whole age file"),
        "{msg}"
    );
    let left: Vec<_> = std::fs::read_dir(to.path()).expect("dir").collect();
    assert!(left.is_empty(), "{left:?}");
    let state = keys.path().join("state.json");
    let v = run_code(
        s3.tool("backup-sync")
            .args(["verify", "--from", TO, "--max-egress", "10M", "--state"])
            .arg(&state)
            .arg("--age-identity")
            .arg(&k1.file),
        2,
    );
    let read = json_lines(&v.stdout)
        .into_iter()
        .find(|r| r["check"] == "offsite-read")
        .expect("offsite-read");
    assert_eq!(read["status"], "critical", "{read}");
}
