//! An upload killed midway (SIGTERM, SIGINT) is aborted: no object, no pending upload;
//! the exit status is 130 and a rerun completes.

use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use pvedr_testkit::{assert_says, run_ok};

use crate::common::{Offsite, assert_changed, noise, of_kind, record};

const NAME: &str = "vzdump-qemu-100-2024_01_16-02_00_02.vma.zst";

/// Returns the bucket, the archive's bytes and what the object holds after the rerun.
fn interrupted_upload_leaves_nothing(signal: Signal, extra: &[&str]) -> (Vec<u8>, Vec<u8>) {
    let s3 = Offsite::new();
    let dir = tempfile::tempdir().expect("tmp");
    let size = 24 * 1024 * 1024;
    let data = noise(size, 7);
    std::fs::write(dir.path().join(NAME), &data).expect("archive");
    let rec = record(NAME, size as u64);
    // Slowed down so that the signal lands while parts are being uploaded.
    let mut child = pvedr_testkit::spawn_fed(
        s3.push_process()
            .args(["--bwlimit", "2M", "--dir"])
            .arg(dir.path())
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        rec.as_bytes(),
    );
    // Midway: wait for two progress lines (about 4 s at 2 MiB/s: the first part is up).
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    let lines = std::thread::spawn(move || {
        let mut all = Vec::new();
        for l in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
            let _ = tx.send(l.clone());
            all.push(l);
        }
        all
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut progress = Vec::new();
    while progress.len() < 2 {
        let left = deadline.saturating_duration_since(Instant::now());
        let l = rx.recv_timeout(left).expect("progress lines on stderr");
        if l.contains(" of ") && l.ends_with("/s") {
            progress.push(l);
        }
    }
    assert!(
        progress[0].starts_with(&format!("backup-sync: {NAME}: ")),
        "{progress:?}"
    );
    assert!(progress[0].contains("%) at "), "{progress:?}");
    assert_eq!(s3.uploads(), 1, "the upload is under way");
    kill(Pid::from_raw(child.id() as i32), signal).expect("signal");
    let out = child.wait_with_output().expect("wait");
    let stderr = lines.join().expect("stderr").join("\n");
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    let steps = of_kind(&out.stdout, "step");
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0]["status"], "failed");
    assert_says(&steps[0], "message", "interrupted");
    assert_eq!(of_kind(&out.stdout, "summary")[0]["exit_code"], 130);
    assert!(s3.keys().is_empty(), "no half object: {:?}", s3.keys());
    assert_eq!(s3.uploads(), 0, "the upload was aborted");

    let again = run_ok(
        s3.push_from(dir.path())
            .args(["--part-size", "5M"])
            .args(extra)
            .write_stdin(rec),
    );
    assert_changed(&again.stdout, NAME);
    let key = format!("pve/pve1/100/{NAME}");
    assert!(s3.keys().contains(&key));
    assert_eq!(s3.uploads(), 0);
    (data, s3.object(&key))
}

#[test]
fn sigterm_midway_aborts_the_upload_and_a_rerun_completes() {
    let (data, object) = interrupted_upload_leaves_nothing(Signal::SIGTERM, &[]);
    assert_eq!(object, data);
}

#[test]
fn sigint_midway_aborts_the_upload() {
    let (data, object) = interrupted_upload_leaves_nothing(Signal::SIGINT, &[]);
    assert_eq!(object, data);
}

/// An encrypted upload resumes as a plain one does, from part 1 with a new file key
/// (age's STREAM cannot be taken up mid-object): the rerun's object is one whole age file.
#[test]
fn an_encrypted_upload_interrupted_midway_reruns_whole_and_decrypts() {
    let keys = tempfile::tempdir().expect("tmp");
    let k = crate::encrypt::keygen(keys.path(), "k");
    let (data, object) =
        interrupted_upload_leaves_nothing(Signal::SIGTERM, &["--encrypt-to", &k.public]);
    assert_ne!(object, data);
    assert_eq!(crate::encrypt::age_decrypt(&k.file, &object), data);
}
