//! `pull --to-node`: an offsite copy straight back onto a node's backup storage (the node
//! was rebuilt, its disks are new). The archive streams from S3 over SSH into a temporary
//! file beside the target; the node's own `sha256sum` must match the manifest before the
//! file is renamed into place. Side files likewise.

use std::io::Read;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Instant;

use pvedr::error::{Error, Result};
use pvedr::records::Step;
use pvedr::s3::{Bucket, Endpoint};
use pvedr::transport::{RemoteCommand, Transport, check};
use pvedr::validate;

use crate::location::check_part;
use crate::meter::{Meter, hex};
use crate::run::manifest_of;
use crate::source::{MAX_SIDE_FILE, remote_sha256};

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

fn write_file(t: &dyn Transport, path: &str, input: &mut dyn Read) -> Result<()> {
    let cmd = RemoteCommand::write(["sh", "-c", "umask 077 && cat > \"$1\"", "sh", path]);
    check(t.host(), &cmd, t.exec_with_stdin(&cmd, input)?).map(|_| ())
}

fn exists(t: &dyn Transport, path: &str) -> Result<bool> {
    let cmd = RemoteCommand::read(["test", "-e", path]);
    Ok(t.exec(&cmd)?.success())
}

fn remove(t: &dyn Transport, path: &str) {
    let _ = t.exec(&RemoteCommand::write(["rm", "-f", "--", path]));
}

fn rename(t: &dyn Transport, from: &str, to: &str) -> Result<()> {
    t.run(&RemoteCommand::write(["mv", "-f", "--", from, to]))
        .map(|_| ())
}

/// Streams the archive into `tmp` on the node; returns the sha256 of what was sent.
fn stream(
    endpoint: &Endpoint,
    bucket: &str,
    key: &str,
    t: &dyn Transport,
    tmp: &str,
    name: &str,
    size: u64,
) -> Result<String> {
    let (tx, rx) = sync_channel::<Vec<u8>>(CHUNKS_IN_FLIGHT);
    std::thread::scope(|s| {
        let reader = s.spawn(move || -> Result<String> {
            let b = Bucket::connect(endpoint, bucket)?;
            let mut m = Meter::new(ChannelWriter(tx), name, Some(size), None);
            b.get_to(key, None, &mut m)?;
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
) -> Result<Step> {
    let started = Instant::now();
    let m = manifest_of(bucket, key)?;
    check_part("archive name", &m.archive)?;
    let target = node_path(t, storage, &m.archive)?;
    if exists(t, &target)? {
        if remote_sha256(t, &target)? == m.sha256 {
            return Ok(Step::new(
                "pull",
                &m.archive,
                "skipped",
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
    let tmp = format!("{dir}/.{}.backup-sync.tmp", m.archive);
    let sent = stream(endpoint, &bucket.name, key, t, &tmp, &m.archive, m.size);
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
    for sf in &m.side_files {
        check_part("side file name", &sf.name)?;
        let data = bucket.get(&sf.key, None, MAX_SIDE_FILE as u64)?;
        if hex(&<sha2::Sha256 as sha2::Digest>::digest(&data)) != sf.sha256 {
            return Err(Error::Refused(format!(
                "s3://{}/{}: sha256 differs from the manifest; not written",
                bucket.name, sf.key
            )));
        }
        let tmp = format!("{dir}/.{}.backup-sync.tmp", sf.name);
        write_file(t, &tmp, &mut data.as_slice())?;
        rename(t, &tmp, &format!("{dir}/{}", sf.name))?;
    }
    let mut st = Step::new(
        "pull",
        &m.archive,
        "changed",
        format!("written to {}:{target}", t.host()),
        Some(started),
    );
    st.extra.insert("bytes".into(), serde_json::json!(m.size));
    st.extra
        .insert("sha256".into(), serde_json::Value::String(m.sha256.clone()));
    Ok(st)
}
