//! `pull --to-node`: an offsite copy straight back onto a node's backup storage (the node
//! was rebuilt, its disks are new). The archive streams from S3 over SSH into a temporary
//! file beside the target; the node's own `sha256sum` must match the manifest before the
//! file is renamed into place. Side files likewise. An encrypted copy is decrypted here, as
//! it arrives (`--age-identity`): the node receives the plaintext, checked against the
//! manifest's plaintext sha256 both as sent and as landed.

use pvedr::records::StepStatus;
use std::io::Read;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Instant;

use pvedr::crypt::Identities;
use pvedr::error::{Error, Result};
use pvedr::records::Step;
use pvedr::s3::{Bucket, Endpoint};
use pvedr::transport::{RemoteCommand, Transport, check};
use pvedr::validate;

use crate::location::check_part;
use crate::meter::Meter;
use crate::run::manifest_of;
use crate::side;
use crate::source::remote_sha256;

/// Chunks in flight between the S3 reader and the SSH writer (each at most one HTTP frame).
const CHUNKS_IN_FLIGHT: usize = 16;

/// The bytes of a channel as a `Read` (the S3 download runs in its own thread).
struct ChannelReader {
    rx: Receiver<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.rx.recv() {
                Ok(b) => {
                    self.buf = b;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

struct ChannelWriter(SyncSender<Vec<u8>>);

impl std::io::Write for ChannelWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .send(b.to_vec())
            .map_err(|_| std::io::Error::other("the node stopped reading"))?;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Where `<storage>:backup/<name>` lives on the node (`pvesm path`; the file may not exist).
fn node_path(t: &dyn Transport, storage: &str, name: &str) -> Result<String> {
    let volid = format!("{storage}:backup/{name}");
    validate::volid(&volid)?;
    let out = t.run(&RemoteCommand::read(["pvesm", "path", volid.as_str()]))?;
    let p = String::from_utf8_lossy(&out).trim().to_string();
    let ok = p.starts_with('/')
        && p.ends_with(&format!("/{name}"))
        && !p.chars().any(char::is_control)
        && !p.split('/').any(|c| c == "..");
    if ok {
        Ok(p)
    } else {
        Err(Error::Other(format!(
            "storage {storage} gave no file path for {name} (not a directory storage?)"
        )))
    }
}

/// A temporary name in `dir`, hard to guess (the process id and the clock); it is created
/// exclusively all the same.
fn temp_name(dir: &str, name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{dir}/.{name}.backup-sync.{}-{nanos}.tmp",
        std::process::id()
    )
}

/// Writes `input` into a new file `path` on the node. `dd conv=excl` creates it with
/// O_EXCL: whatever is at that name already, a planted symlink included, makes the write
/// fail instead of being followed (a shell's `>` follows it).
fn write_file(t: &dyn Transport, path: &str, input: &mut dyn Read) -> Result<()> {
    let cmd = RemoteCommand::write([
        "sh",
        "-c",
        "umask 077 && exec dd of=\"$1\" conv=excl bs=1M status=none",
        "sh",
        path,
    ]);
    check(t.host(), &cmd, t.exec_with_stdin(&cmd, input)?).map(|_| ())
}

fn exists(t: &dyn Transport, path: &str) -> Result<bool> {
    // `-L` too: a dangling symlink is something there.
    let cmd = RemoteCommand::read(["sh", "-c", "test -e \"$1\" || test -L \"$1\"", "sh", path]);
    Ok(t.exec(&cmd)?.success())
}

fn remove(t: &dyn Transport, path: &str) {
    let _ = t.exec(&RemoteCommand::write(["rm", "-f", "--", path]));
}

/// `-T`: a directory at the target is an error, never a place to move into.
fn rename(t: &dyn Transport, from: &str, to: &str) -> Result<()> {
    t.run(&RemoteCommand::write(["mv", "-f", "-T", "--", from, to]))
        .map(|_| ())
}

/// Writes a small file through a temporary one and `mv`.
fn put_file(t: &dyn Transport, dir: &str, name: &str, data: &[u8]) -> Result<()> {
    let tmp = temp_name(dir, name);
    let done = write_file(t, &tmp, &mut &data[..])
        .and_then(|()| rename(t, &tmp, &format!("{dir}/{name}")));
    if done.is_err() {
        remove(t, &tmp);
    }
    done
}

/// What the node holds in `dir` where a side file goes.
fn held_on(t: &dyn Transport, dir: &str, s: &side::Fetched, sha: &str) -> Result<side::Held> {
    let target = format!("{dir}/{}", s.name);
    Ok(if !exists(t, &target)? {
        side::Held::Nothing
    } else if remote_sha256(t, &target).ok().as_deref() == Some(sha) {
        side::Held::Same
    } else {
        side::Held::Other(format!("{}:{target}", t.host()))
    })
}

/// What to stream and how: the object, the archive's name and plaintext size, and the
/// identities that decrypt it (an encrypted copy).
struct Source<'a> {
    endpoint: &'a Endpoint,
    bucket: &'a str,
    key: &'a str,
    name: &'a str,
    size: u64,
    ids: Option<&'a Identities>,
}

/// Streams the archive (decrypted, for an encrypted copy) into `tmp` on the node; returns
/// the sha256 of what was sent.
fn stream(src: Source, t: &dyn Transport, tmp: &str) -> Result<String> {
    let (tx, rx) = sync_channel::<Vec<u8>>(CHUNKS_IN_FLIGHT);
    std::thread::scope(|s| {
        let reader = s.spawn(move || -> Result<String> {
            let b = Bucket::connect(src.endpoint, src.bucket)?;
            let mut m = Meter::new(ChannelWriter(tx), src.name, Some(src.size), None);
            match src.ids {
                Some(ids) => {
                    pvedr::crypt::decrypt_to(ids, &mut m, |w| b.get_to(src.key, None, w))?;
                }
                None => {
                    b.get_to(src.key, None, &mut m)?;
                }
            }
            Ok(m.into_parts().1)
        });
        let mut input = ChannelReader {
            rx,
            buf: Vec::new(),
            pos: 0,
        };
        let written = write_file(t, tmp, &mut input);
        // Unblock the reader if the node stopped first.
        drop(input);
        let sent = reader
            .join()
            .map_err(|_| Error::Other("the download thread failed".into()))?;
        written?;
        sent
    })
}

pub fn pull_one(
    endpoint: &Endpoint,
    bucket: &Bucket,
    key: &str,
    t: &dyn Transport,
    storage: &str,
    force: bool,
    ids: Option<&Identities>,
) -> Result<Step> {
    let started = Instant::now();
    let m = manifest_of(bucket, key)?;
    check_part("archive name", &m.archive)?;
    let ids = side::identities_for(&format!("s3://{}/{key}", bucket.name), &m, ids)?;
    let target = node_path(t, storage, &m.archive)?;
    if exists(t, &target)? {
        if remote_sha256(t, &target).ok().as_deref() == Some(m.sha256.as_str()) {
            return Ok(Step::new(
                "pull",
                &m.archive,
                StepStatus::Skipped,
                format!("{}:{target} is already this copy", t.host()),
                Some(started),
            ));
        }
        if !force {
            return Err(Error::Refused(format!(
                "{target} exists on {} with other contents; kept (--force replaces it)",
                t.host()
            )));
        }
    }
    let dir = target.rsplit_once('/').map_or("", |(d, _)| d).to_string();
    // Side files are checked before anything is written: a forged one stops the pull.
    let sides = side::to_write(bucket, key, &m, ids, force, |f, sha| {
        held_on(t, &dir, f, sha)
    })?;
    let tmp = temp_name(&dir, &m.archive);
    let src = Source {
        endpoint,
        bucket: &bucket.name,
        key,
        name: &m.archive,
        size: m.size,
        ids,
    };
    let sent = stream(src, t, &tmp);
    let landed = sent.and_then(|s| Ok((s, remote_sha256(t, &tmp)?)));
    match landed {
        Ok((s, l)) if s == m.sha256 && l == m.sha256 => rename(t, &tmp, &target)?,
        Ok((s, l)) => {
            remove(t, &tmp);
            return Err(Error::Refused(format!(
                "sha256 sent {s}, on the node {l}, the manifest says {}; nothing written",
                m.sha256
            )));
        }
        Err(e) => {
            remove(t, &tmp);
            return Err(e);
        }
    }
    for s in sides {
        put_file(t, &dir, &s.name, &s.data)?;
    }
    let mut st = Step::new(
        "pull",
        &m.archive,
        StepStatus::Changed,
        format!("written to {}:{target}", t.host()),
        Some(started),
    );
    st.extra.insert("bytes".into(), serde_json::json!(m.size));
    st.extra
        .insert("sha256".into(), serde_json::Value::String(m.sha256.clone()));
    Ok(st)
}
