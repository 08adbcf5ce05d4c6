//! An archive streamed into a command on the node: its bytes counted and hashed (checked
//! against the manifest's size and sha256 at the end), decompressed where Proxmox needs
//! a plain stream (`qmrestore -` and `pct restore N -` take no compressed input), and fed to
//! the command's stdin. Bounded memory: one decompressor's window and a read buffer.
//!
//! A failure of the source (a dropped connection, a truncated object, a damaged stream, a
//! sha256 mismatch found at the end) ends the command's input there: the command sees an
//! early end of its stream and ends as it does on one (the restore fails, or — a tar cut at
//! its end blocks, a whole stream whose sha256 is wrong — succeeds), then the failure is
//! returned typed beside the command's output ([`Fed::failed`]). The caller decides from
//! the type, never from the command's wording.

use std::io::{BufReader, Read};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

pub(crate) mod error;
use crate::transport::{CommandOutput, RemoteCommand, Transport};
pub use error::PipeError;

/// What the stream must be: the manifest's size and sha256 (hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    pub size: u64,
    pub sha256: String,
}

/// How the archive is compressed, as vzdump names it (`.vma.zst`, `.tar.gz`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Zstd,
    Gzip,
}

impl Compression {
    /// From an archive name's compression (`archive::Archive::compression`); lzo and bz2
    /// have no decompressor in pvedr.
    pub fn of(name: Option<&str>) -> std::result::Result<Compression, PipeError> {
        match name {
            None => Ok(Compression::None),
            Some("zst") => Ok(Compression::Zstd),
            Some("gz") => Ok(Compression::Gzip),
            Some(other) => Err(PipeError::Unsupported(other.to_string())),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Zstd => "zstd",
            Compression::Gzip => "gzip",
        }
    }
}

/// How the stream ended, shared between the reader and its caller.
#[derive(Debug, Default)]
struct State {
    failed: Option<PipeError>,
    bytes: u64,
    sha256: Option<String>,
}

type Shared = Arc<Mutex<State>>;

fn fail(state: &Shared, e: PipeError) {
    if let Ok(mut s) = state.lock()
        && s.failed.is_none()
    {
        s.failed = Some(e);
    }
}

impl Hashing {
    /// A failure of the raw stream, recorded with how far it got.
    fn failed(&self, e: PipeError) -> std::io::Error {
        if let Ok(mut s) = self.state.lock() {
            s.bytes = self.read;
        }
        fail(&self.state, e.clone());
        source_error(e)
    }
}

/// The typed failure inside an I/O error from a source ([`source_error`]), else the
/// error as a failed read at `at`.
fn typed(e: &std::io::Error, at: u64) -> PipeError {
    match e.get_ref().and_then(|i| i.downcast_ref::<PipeError>()) {
        Some(p) => p.clone(),
        None => PipeError::Source {
            at,
            message: e.to_string(),
        },
    }
}

/// An I/O error carrying a typed failure, for a source to return.
pub fn source_error(e: PipeError) -> std::io::Error {
    std::io::Error::other(e)
}

/// Counts and hashes the raw bytes; at most `size` of them are read.
struct Hashing {
    inner: Box<dyn Read + Send>,
    hasher: Sha256,
    expect: Expect,
    read: u64,
    state: Shared,
    done: bool,
}

impl Hashing {
    /// At the end of the raw stream: the sha256 checked.
    fn finish(&mut self) -> std::io::Result<()> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        let got = hex(&std::mem::take(&mut self.hasher).finalize());
        if let Ok(mut s) = self.state.lock() {
            s.bytes = self.read;
            s.sha256 = Some(got.clone());
        }
        if !got.eq_ignore_ascii_case(&self.expect.sha256) {
            return Err(self.failed(PipeError::Sha256Mismatch {
                expected: self.expect.sha256.clone(),
                got,
            }));
        }
        Ok(())
    }

    /// Reads what the decompressor left, so that the whole object is hashed.
    fn drain(&mut self) -> std::io::Result<()> {
        let mut buf = [0u8; 64 * 1024];
        while self.read(&mut buf)? > 0 {}
        self.finish()
    }
}

impl Read for Hashing {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.expect.size.saturating_sub(self.read);
        if left == 0 {
            self.finish()?;
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = match self.inner.read(&mut buf[..want]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return Err(e),
            Err(e) => return Err(self.failed(typed(&e, self.read))),
        };
        if n == 0 {
            return Err(self.failed(PipeError::Truncated {
                expected: self.expect.size,
                got: self.read,
            }));
        }
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

enum Decode {
    Plain(Hashing),
    Zstd(Box<zstd::stream::read::Decoder<'static, BufReader<Hashing>>>),
    Gzip(Box<flate2::read::MultiGzDecoder<Hashing>>),
}

impl Decode {
    fn hashing(&mut self) -> &mut Hashing {
        match self {
            Decode::Plain(h) => h,
            Decode::Zstd(d) => d.get_mut().get_mut(),
            Decode::Gzip(d) => d.get_mut(),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Decode::Plain(h) => h.read(buf),
            Decode::Zstd(d) => d.read(buf),
            Decode::Gzip(d) => d.read(buf),
        }
    }
}

/// The reader fed to the command: a failure becomes the end of its input, kept typed.
pub struct Stream {
    decode: Decode,
    compression: Compression,
    state: Shared,
    ended: bool,
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.ended || buf.is_empty() {
            return Ok(0);
        }
        match self.decode.read(buf) {
            Ok(0) => {
                self.ended = true;
                // The sha256 covers the whole object, what follows the last frame too.
                let _ = self.decode.hashing().drain();
                Ok(0)
            }
            Ok(n) => Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                self.ended = true;
                // A failure of the source was recorded where it happened; anything else
                // is the decompressor's.
                fail(
                    &self.state,
                    PipeError::Decompress {
                        compression: self.compression.label(),
                        message: e.to_string(),
                    },
                );
                Ok(0)
            }
        }
    }
}

/// `source` (the raw archive) checked against `expect` and decompressed.
pub fn stream(
    source: Box<dyn Read + Send>,
    expect: Expect,
    compression: Compression,
) -> std::result::Result<Stream, PipeError> {
    let state = Shared::default();
    let h = Hashing {
        inner: source,
        hasher: Sha256::new(),
        expect,
        read: 0,
        state: state.clone(),
        done: false,
    };
    let decode = match compression {
        Compression::None => Decode::Plain(h),
        Compression::Zstd => Decode::Zstd(Box::new(zstd::stream::read::Decoder::new(h).map_err(
            |e| PipeError::Decompress {
                compression: "zstd",
                message: e.to_string(),
            },
        )?)),
        Compression::Gzip => Decode::Gzip(Box::new(flate2::read::MultiGzDecoder::new(h))),
    };
    Ok(Stream {
        decode,
        compression,
        state,
        ended: false,
    })
}

/// A command fed a stream: its output, and how the stream ended.
#[derive(Debug)]
pub struct Fed {
    pub out: CommandOutput,
    /// Why the stream did not arrive whole; `None`: every byte, sha256 checked.
    pub failed: Option<PipeError>,
    /// Raw (compressed) bytes read.
    pub bytes: u64,
    /// The sha256 of what was read, when the stream was read to its end.
    pub sha256: Option<String>,
}

/// Runs `cmd` on the node with `input` on its stdin. Needs a shell on the node: over the
/// API there is none ([`PipeError::NeedsShell`]). `Err` only for what the transport says
/// (the connection to the node lost, the command's bound passed).
pub fn feed(t: &dyn Transport, cmd: &RemoteCommand, mut input: Stream) -> Result<Fed> {
    if !t.has_shell() {
        return Err(Error::Stream(PipeError::NeedsShell {
            host: t.host().to_string(),
        }));
    }
    let out = t.exec_with_stdin(cmd, &mut input)?;
    let mut s = input
        .state
        .lock()
        .map_err(|_| Error::Other("the stream's state was poisoned".into()))?;
    Ok(Fed {
        out,
        failed: s.failed.take(),
        bytes: s.bytes,
        sha256: s.sha256.take(),
    })
}

/// The largest head of an archive decompressed to find its config (a VMA's header is at
/// most 12 KiB + 1 MiB of blobs; vzdump writes a container's `pct.conf` first).
pub const MAX_HEAD: usize = 2 << 20;

/// The first bytes of a (compressed) archive, decompressed as far as they go, at most
/// [`MAX_HEAD`].
pub fn decompress_head(raw: &[u8], c: Compression) -> Vec<u8> {
    let mut out = Vec::new();
    let r: Box<dyn Read> = match c {
        Compression::None => Box::new(raw),
        Compression::Zstd => match zstd::stream::read::Decoder::new(raw) {
            Ok(d) => Box::new(d),
            Err(_) => return out,
        },
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw)),
    };
    // The head is cut: the decompressor's error at its end is expected.
    let _ = r.take(MAX_HEAD as u64).read_to_end(&mut out);
    out
}

/// The guest config inside an archive's head: a VMA's `qemu-server.conf` blob, or a
/// container tar's `./etc/vzdump/pct.conf` (what `pvesm extractconfig` prints).
pub fn config_in_head(head: &[u8], base: &str) -> Option<String> {
    match base {
        "vma" => vma_config(head),
        "tar" => tar_config(head),
        _ => None,
    }
}

fn be32(b: &[u8], at: usize) -> Option<usize> {
    let v = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([v[0], v[1], v[2], v[3]]) as usize)
}

/// A blob of the VMA header's blob buffer: a 2-byte little-endian length, then the data.
fn vma_blob(h: &[u8], off: usize, p: usize) -> Option<&[u8]> {
    let at = off.checked_add(p)?;
    let len = h
        .get(at..at + 2)
        .map(|l| u16::from_le_bytes([l[0], l[1]]) as usize)?;
    h.get(at + 2..at + 2 + len)
}

fn vma_config(h: &[u8]) -> Option<String> {
    if h.get(0..4)? != b"VMA\0" {
        return None;
    }
    let off = be32(h, 48)?;
    (0..256).find_map(|i| {
        let name_p = be32(h, 2044 + 4 * i)?;
        let data_p = be32(h, 3068 + 4 * i)?;
        if name_p == 0 || vma_blob(h, off, name_p)? != b"qemu-server.conf\0" {
            return None;
        }
        let data = vma_blob(h, off, data_p)?;
        Some(String::from_utf8_lossy(data.strip_suffix(b"\0").unwrap_or(data)).into_owned())
    })
}

fn tar_config(mut h: &[u8]) -> Option<String> {
    // vzdump writes the config first; a few members are looked at, no more.
    for _ in 0..8 {
        let head = h.get(..512)?;
        let name = String::from_utf8_lossy(head[..100].split(|&b| b == 0).next()?).into_owned();
        let size_field = String::from_utf8_lossy(&head[124..136]).into_owned();
        let size =
            usize::from_str_radix(size_field.trim_matches(|c: char| c == '\0' || c == ' '), 8)
                .ok()?;
        let data = h.get(512..512 + size)?;
        if name == "./etc/vzdump/pct.conf" {
            return Some(String::from_utf8_lossy(data).into_owned());
        }
        h = h.get(512 + size.div_ceil(512) * 512..)?;
    }
    None
}

fn hex(b: &[u8]) -> String {
    use std::fmt::Write;
    b.iter()
        .fold(String::with_capacity(b.len() * 2), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(b: &[u8]) -> String {
        hex(&Sha256::digest(b))
    }

    fn read_all(s: &mut Stream) -> Vec<u8> {
        let mut v = Vec::new();
        s.read_to_end(&mut v).unwrap();
        v
    }

    fn failed(s: &Stream) -> Option<PipeError> {
        s.state.lock().unwrap().failed.clone()
    }

    #[test]
    fn whole_plain_and_zstd_streams_pass() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut s = stream(
            Box::new(std::io::Cursor::new(data.clone())),
            Expect {
                size: data.len() as u64,
                sha256: sha(&data),
            },
            Compression::None,
        )
        .unwrap();
        assert_eq!(read_all(&mut s), data);
        assert_eq!(failed(&s), None);
        let z = zstd::encode_all(&data[..], 3).unwrap();
        let mut s = stream(
            Box::new(std::io::Cursor::new(z.clone())),
            Expect {
                size: z.len() as u64,
                sha256: sha(&z),
            },
            Compression::Zstd,
        )
        .unwrap();
        assert_eq!(read_all(&mut s), data);
        assert_eq!(failed(&s), None);
    }

    #[test]
    fn a_flipped_byte_a_cut_and_lzo_are_typed() {
        let data = vec![7u8; 100_000];
        let mut bad = data.clone();
        bad[5000] ^= 1;
        let mut s = stream(
            Box::new(std::io::Cursor::new(bad)),
            Expect {
                size: data.len() as u64,
                sha256: sha(&data),
            },
            Compression::None,
        )
        .unwrap();
        assert_eq!(read_all(&mut s).len(), data.len());
        assert!(matches!(failed(&s), Some(PipeError::Sha256Mismatch { .. })));
        let mut s = stream(
            Box::new(std::io::Cursor::new(data[..40_000].to_vec())),
            Expect {
                size: data.len() as u64,
                sha256: sha(&data),
            },
            Compression::None,
        )
        .unwrap();
        assert_eq!(read_all(&mut s).len(), 40_000);
        assert_eq!(
            failed(&s),
            Some(PipeError::Truncated {
                expected: 100_000,
                got: 40_000
            })
        );
        assert!(matches!(
            Compression::of(Some("lzo")),
            Err(PipeError::Unsupported(_))
        ));
    }
}
