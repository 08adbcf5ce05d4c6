//! Where an archive is read from: a dump directory on this machine (`--dir`), or the node
//! its record names (over SSH with `--host`, else this machine's Proxmox; another node of
//! the cluster through the connected one), whose storage says where the file is. Archives stream; side files (notes, log) are small and read whole, bounded.

use std::fs::File;
use std::io::{Read, Write};
use std::path::PathBuf;

use pvedr::error::{Error, Result};
use pvedr::records::Backup;
use pvedr::transport::{RemoteCommand, Transport};
use pvedr::{pvesh, validate};
use sha2::{Digest, Sha256};

use crate::meter::hex;

/// Notes and logs larger than this are not side files we copy.
pub const MAX_SIDE_FILE: usize = 16 * 1024 * 1024;

pub enum Source<'a> {
    Dir(PathBuf),
    /// The node that holds the archive (reached through the connected one if need be).
    Node(&'a dyn Transport),
}

/// A path the node gave: absolute, printable, ending in the archive's name.
fn check_path(p: &str, name: &str) -> Result<()> {
    let ok = p.starts_with('/')
        && !p.chars().any(char::is_control)
        && p.ends_with(&format!("/{name}"))
        && !p.split('/').any(|c| c == "..");
    if ok {
        Ok(())
    } else {
        Err(Error::Other(format!(
            "the node gave an unexpected path '{}' for {name}",
            p.escape_debug()
        )))
    }
}

impl Source<'_> {
    /// The archive's path: in the directory, or as the node's storage reports it.
    pub fn locate(&self, b: &Backup, name: &str) -> Result<String> {
        match self {
            Source::Dir(d) => Ok(d.join(name).display().to_string()),
            Source::Node(t) => {
                let (node, storage) = match (&b.node, &b.storage) {
                    (Some(n), Some(s)) => (n.as_str(), s.as_str()),
                    _ => return Err(Error::Other("the record names no node or storage".into())),
                };
                validate::node(node)?;
                validate::storage_id(storage)?;
                validate::volid(&b.volid)?;
                let cmd = pvesh::get(&pvesh::paths::content(node, storage, &b.volid), &[]);
                let out = t.exec(&cmd)?;
                let m = pvesh::parse_object(t.host(), &cmd, out)?;
                let p = pvesh::str_of(&m, "path").ok_or_else(|| {
                    Error::Other(format!("Proxmox reports no path for {}", b.volid))
                })?;
                check_path(&p, name)?;
                Ok(p)
            }
        }
    }

    /// Copies the archive into `sink`; returns the bytes copied.
    pub fn stream(&self, path: &str, sink: &mut dyn Write) -> Result<u64> {
        match self {
            Source::Dir(_) => {
                let mut f =
                    File::open(path).map_err(|e| Error::io(format!("opening {path}"), e))?;
                let mut buf = vec![0u8; 256 * 1024];
                let mut n = 0u64;
                loop {
                    let got = f
                        .read(&mut buf)
                        .map_err(|e| Error::io(format!("reading {path}"), e))?;
                    if got == 0 {
                        return Ok(n);
                    }
                    sink.write_all(&buf[..got])
                        .map_err(|e| Error::io(format!("uploading {path}"), e))?;
                    n = n.saturating_add(got as u64);
                }
            }
            Source::Node(t) => {
                let cmd = RemoteCommand::read(["cat", "--", path]);
                let s = t.exec_stream(&cmd, sink)?;
                if !s.success() {
                    return Err(Error::Remote {
                        host: t.host().into(),
                        command: cmd.line(),
                        status: s.status,
                        stderr: s.stderr,
                    });
                }
                Ok(s.bytes)
            }
        }
    }

    /// A side file whole, or `None` when there is none.
    pub fn read_small(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let data = match self {
            Source::Dir(_) => match std::fs::metadata(path) {
                Err(_) => return Ok(None),
                Ok(m) if m.len() > MAX_SIDE_FILE as u64 => {
                    return Err(Error::Refused(format!(
                        "{path} is larger than {MAX_SIDE_FILE} bytes"
                    )));
                }
                Ok(_) => {
                    std::fs::read(path).map_err(|e| Error::io(format!("reading {path}"), e))?
                }
            },
            Source::Node(t) => {
                // Status 3: no such file (a missing side file is normal).
                let cmd = RemoteCommand::read([
                    "sh",
                    "-c",
                    "test -f \"$1\" || exit 3; exec cat -- \"$1\"",
                    "sh",
                    path,
                ]);
                let out = t.exec(&cmd)?;
                if out.status == 3 {
                    return Ok(None);
                }
                pvedr::transport::check(t.host(), &cmd, out)?
            }
        };
        if data.len() > MAX_SIDE_FILE {
            return Err(Error::Refused(format!(
                "{path} is larger than {MAX_SIDE_FILE} bytes"
            )));
        }
        Ok(Some(data))
    }

    /// The archive's size when the source can tell without reading it.
    pub fn size(&self, path: &str) -> Option<u64> {
        match self {
            Source::Dir(_) => std::fs::metadata(path).ok().map(|m| m.len()),
            Source::Node(_) => None,
        }
    }

    /// The archive's sha256, computed where it is (the node's `sha256sum`: nothing crosses
    /// the network but the checksum).
    pub fn sha256(&self, path: &str) -> Result<String> {
        match self {
            Source::Dir(_) => {
                let mut f =
                    File::open(path).map_err(|e| Error::io(format!("opening {path}"), e))?;
                let mut h = Sha256::new();
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    let n = f
                        .read(&mut buf)
                        .map_err(|e| Error::io(format!("reading {path}"), e))?;
                    if n == 0 {
                        return Ok(hex(&h.finalize()));
                    }
                    h.update(&buf[..n]);
                }
            }
            Source::Node(t) => remote_sha256(*t, path),
        }
    }
}

/// A file's sha256 by the node's own `sha256sum`.
pub fn remote_sha256(t: &dyn Transport, path: &str) -> Result<String> {
    let cmd = RemoteCommand::read(["sha256sum", "--", path]);
    let out = t.run(&cmd)?;
    let text = String::from_utf8_lossy(&out);
    let sum = text.split_whitespace().next().unwrap_or("");
    if sum.len() == 64 && sum.bytes().all(|c| c.is_ascii_hexdigit()) {
        Ok(sum.to_ascii_lowercase())
    } else {
        Err(Error::Other(format!(
            "sha256sum on {} gave no checksum",
            t.host()
        )))
    }
}
