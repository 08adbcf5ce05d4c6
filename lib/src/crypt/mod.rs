//! Client-side encryption of offsite copies in the age format (age-encryption.org/v1)
//! through the `age` crate, X25519 keys only: the standard `age` command (Debian package
//! `age`) decrypts a copy without pvedr. Recipients are public keys and may be printed;
//! an identity is a secret key: no message of this module ever contains one, nor any line
//! of an identity file.

use std::io::{self, Read, Write};
use std::path::Path;
use std::str::FromStr;

use age::x25519;
use sha2::{Digest, Sha256};

pub(crate) mod error;
pub use error::CryptError;

/// Recipients and identity files are a few lines; a larger file is not one.
pub const MAX_KEY_FILE: u64 = 64 * 1024;

/// The `encrypted` value of an age copy (manifests, `backup` records).
pub const AGE: &str = "age";

type CResult<T> = std::result::Result<T, CryptError>;

/// The public keys a copy is encrypted to.
#[derive(Clone)]
pub struct Recipients(Vec<x25519::Recipient>);

fn recipient(value: &str, what: &str) -> CResult<x25519::Recipient> {
    if value.starts_with("AGE-SECRET-KEY-") {
        return Err(CryptError::Recipient(format!(
            "{what} is a secret key, not a recipient: give its public key (age-keygen -y FILE)"
        )));
    }
    x25519::Recipient::from_str(value).map_err(|_| {
        CryptError::Recipient(format!(
            "{what} is not an age X25519 recipient (age1…, as age-keygen prints)"
        ))
    })
}

/// The meaningful lines of a key file: `#` comments and blank lines left out.
fn key_lines(path: &Path) -> CResult<Vec<(usize, String)>> {
    let shown = path.display().to_string();
    let f = std::fs::File::open(path).map_err(|e| CryptError::KeyFile {
        path: shown.clone(),
        message: e.to_string(),
    })?;
    let mut text = String::new();
    f.take(MAX_KEY_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| CryptError::KeyFile {
            path: shown.clone(),
            message: format!("not a text file ({})", e.kind()),
        })?;
    if text.len() as u64 > MAX_KEY_FILE {
        return Err(CryptError::KeyFile {
            path: shown,
            message: format!("larger than {MAX_KEY_FILE} bytes: not a key file"),
        });
    }
    Ok(text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim().to_string()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .collect())
}

impl Recipients {
    /// `--encrypt-to` values and recipients files (age's format: one key a line, `#`
    /// comments). None at all: `None`, the copies are not encrypted.
    pub fn parse(values: &[String], files: &[impl AsRef<Path>]) -> CResult<Option<Recipients>> {
        let mut out = Vec::new();
        for (i, v) in values.iter().enumerate() {
            out.push(recipient(v.trim(), &format!("--encrypt-to #{}", i + 1))?);
        }
        for f in files {
            let path = f.as_ref();
            let lines = key_lines(path)?;
            if lines.is_empty() {
                return Err(CryptError::KeyFile {
                    path: path.display().to_string(),
                    message: "no recipient in it".into(),
                });
            }
            for (n, l) in lines {
                out.push(recipient(&l, &format!("{} line {n}", path.display()))?);
            }
        }
        let mut seen = std::collections::HashSet::new();
        out.retain(|r| seen.insert(r.to_string()));
        Ok((!out.is_empty()).then_some(Recipients(out)))
    }

    /// The public keys, as the manifest keeps them.
    pub fn keys(&self) -> Vec<String> {
        self.0.iter().map(|r| r.to_string()).collect()
    }

    /// A writer that encrypts into `out`; its `finish()` writes the last chunk and must be
    /// called (without it the object is cut and does not decrypt).
    pub fn encrypt<W: Write>(&self, out: W) -> io::Result<age::stream::StreamWriter<W>> {
        let e = age::Encryptor::with_recipients(self.0.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| io::Error::other(format!("age: {e}")))?;
        e.wrap_output(out)
    }
}

/// The secret keys of an `--age-identity` file (age-keygen's format).
pub struct Identities {
    ids: Vec<x25519::Identity>,
    path: String,
}

/// Only the file's name: an identity is a secret.
impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identities")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Identities {
    /// Reads an identity file, refused when group or others may open it.
    pub fn load(path: &Path) -> CResult<Identities> {
        use std::os::unix::fs::PermissionsExt;
        let shown = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|e| CryptError::KeyFile {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(CryptError::Exposed { path: shown, mode });
        }
        let mut ids = Vec::new();
        for (n, l) in key_lines(path)? {
            // The line is a secret: only its number is ever said.
            let id = x25519::Identity::from_str(&l).map_err(|_| CryptError::KeyFile {
                path: shown.clone(),
                message: format!(
                    "line {n} is not an age X25519 identity (AGE-SECRET-KEY-1…, as age-keygen writes)"
                ),
            })?;
            ids.push(id);
        }
        if ids.is_empty() {
            return Err(CryptError::KeyFile {
                path: shown,
                message: "no identity in it".into(),
            });
        }
        Ok(Identities { ids, path: shown })
    }

    /// The public keys of these identities.
    pub fn recipients(&self) -> Vec<String> {
        self.ids.iter().map(|i| i.to_public().to_string()).collect()
    }

    /// Whether one of these identities is among a copy's recipients (as its manifest says:
    /// age's X25519 stanzas do not name their recipient).
    pub fn opens(&self, recipients: &[String]) -> bool {
        self.recipients().iter().any(|r| recipients.contains(r))
    }

    /// The refusal for a copy encrypted to other recipients.
    pub fn not_ours(&self) -> CryptError {
        CryptError::OtherRecipients(self.recipients().join(", "))
    }

    pub fn path(&self) -> &str {
        &self.path
    }
}

/// The plaintext of an age stream read from `inner`. The header is read here: a copy for
/// other recipients is refused before any of its payload is read. Damage further on
/// (cut, flipped) is an error of a later `read`.
pub fn decrypting_reader<R: Read>(inner: R, ids: &Identities) -> CResult<impl Read + use<R>> {
    let d = age::Decryptor::new(inner).map_err(|e| CryptError::Damaged(e.to_string()))?;
    d.decrypt(ids.ids.iter().map(|i| i as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => ids.not_ours(),
            e => CryptError::Damaged(e.to_string()),
        })
}

/// Chunks in flight between a download and its decryption: memory is this many of the
/// download's chunks.
const CHUNKS_IN_FLIGHT: usize = 16;

/// Decrypts into `out` the age file that `fill` writes (an S3 download pushes its bytes),
/// in a thread of its own; returns the plaintext's size. An error of `fill` is the cause
/// unless the decryption stopped first (other recipients, damage).
pub fn decrypt_to<W: Write + Send>(
    ids: &Identities,
    out: &mut W,
    fill: impl FnOnce(&mut dyn Write) -> crate::error::Result<u64>,
) -> crate::error::Result<u64> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(CHUNKS_IN_FLIGHT);
    std::thread::scope(|s| {
        let h = s.spawn(move || decrypt_copy(rx, ids, out));
        let mut w = ChunkWriter { tx, closed: false };
        let filled = fill(&mut w);
        let closed = w.closed;
        drop(w);
        let dec = h
            .join()
            .unwrap_or_else(|_| Err(crate::error::Error::Other("the decryption stopped".into())));
        match (filled, dec) {
            (Err(e), _) if !closed => Err(e),
            (_, Err(e)) => Err(e),
            (Err(e), Ok(_)) => Err(e),
            (Ok(_), Ok(n)) => Ok(n),
        }
    })
}

fn decrypt_copy<W: Write>(
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    ids: &Identities,
    out: &mut W,
) -> crate::error::Result<u64> {
    let mut r = decrypting_reader(ChunkReader::new(rx), ids)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0u64;
    loop {
        let got = r
            .read(&mut buf)
            .map_err(|e| CryptError::Damaged(e.to_string()))?;
        if got == 0 {
            return Ok(n);
        }
        out.write_all(&buf[..got])
            .map_err(|e| crate::error::Error::io("writing the decrypted copy", e))?;
        n = n.saturating_add(got as u64);
    }
}

/// The download's side of the channel; `closed` once the decryption stopped reading.
struct ChunkWriter {
    tx: std::sync::mpsc::SyncSender<Vec<u8>>,
    closed: bool,
}

impl Write for ChunkWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if self.tx.send(b.to_vec()).is_err() {
            self.closed = true;
            return Err(io::Error::other("the decryption stopped"));
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The receiving side of a channel of chunks, as a reader (a decryption, a content walk);
/// the sender gone is the end.
pub struct ChunkReader {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    buf: Vec<u8>,
    at: usize,
}

impl ChunkReader {
    pub fn new(rx: std::sync::mpsc::Receiver<Vec<u8>>) -> Self {
        ChunkReader {
            rx,
            buf: Vec::new(),
            at: 0,
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.at == self.buf.len() {
            match self.rx.recv() {
                Ok(b) => (self.buf, self.at) = (b, 0),
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.at);
        out[..n].copy_from_slice(&self.buf[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Whole bytes in memory (side files): their plaintext, at most `limit` bytes.
pub fn decrypt_bytes(data: &[u8], ids: &Identities, limit: u64) -> CResult<Vec<u8>> {
    let mut out = Vec::new();
    decrypting_reader(data, ids)?
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| CryptError::Damaged(e.to_string()))?;
    if out.len() as u64 > limit {
        return Err(CryptError::Damaged(format!(
            "its plaintext is larger than {limit} bytes"
        )));
    }
    Ok(out)
}

/// Whole bytes encrypted in memory (side files).
pub fn encrypt_bytes(data: &[u8], to: &Recipients) -> io::Result<Vec<u8>> {
    let mut w = to.encrypt(Vec::with_capacity(data.len() + 512))?;
    w.write_all(data)?;
    w.finish()
}

/// A writer that hashes and counts what goes through to `inner` (the object's bytes
/// behind an encryptor).
pub struct Tally<W> {
    inner: W,
    sha: Sha256,
    pub bytes: u64,
}

impl<W: Write> Tally<W> {
    pub fn new(inner: W) -> Self {
        Tally {
            inner,
            sha: Sha256::new(),
            bytes: 0,
        }
    }

    /// The writer behind, the hex sha256 and the count of what went through.
    pub fn into_parts(self) -> (W, String, u64) {
        let hex = crate::integrity::hex(&self.sha.finalize());
        (self.inner, hex, self.bytes)
    }
}

impl<W: Write> Write for Tally<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(data)?;
        self.sha.update(&data[..n]);
        self.bytes = self.bytes.saturating_add(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_file(dir: &Path, text: &str, mode: u32) -> std::path::PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join("key.txt");
        std::fs::write(&p, text).ok();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).ok();
        p
    }

    #[test]
    fn round_trip_and_other_recipients() {
        let dir = tempfile::tempdir().expect("tempdir");
        let id = x25519::Identity::generate();
        let other = x25519::Identity::generate();
        let secret = age::secrecy::ExposeSecret::expose_secret(&id.to_string()).to_string();
        let to = Recipients::parse(&[id.to_public().to_string()], &[] as &[&Path])
            .expect("parse")
            .expect("some");
        let ct = encrypt_bytes(b"hello", &to).expect("encrypt");
        let p = key_file(dir.path(), &format!("# created\n{secret}\n"), 0o600);
        let ids = Identities::load(&p).expect("load");
        assert!(ids.opens(&to.keys()));
        assert_eq!(decrypt_bytes(&ct, &ids, 10).expect("decrypt"), b"hello");
        let secret2 = age::secrecy::ExposeSecret::expose_secret(&other.to_string()).to_string();
        let p2 = key_file(dir.path(), &secret2, 0o400);
        let ids2 = Identities::load(&p2).expect("load");
        let e = decrypt_bytes(&ct, &ids2, 10).expect_err("refused");
        assert!(matches!(e, CryptError::OtherRecipients(_)), "{e}");
        assert!(!e.to_string().contains(&secret2));
    }

    #[test]
    fn exposed_and_bad_files_never_echo_a_secret() {
        let dir = tempfile::tempdir().expect("tempdir");
        let id = x25519::Identity::generate();
        let secret = age::secrecy::ExposeSecret::expose_secret(&id.to_string()).to_string();
        let p = key_file(dir.path(), &secret, 0o640);
        let e = Identities::load(&p).expect_err("refused");
        assert!(matches!(e, CryptError::Exposed { mode: 0o640, .. }), "{e}");
        let p = key_file(dir.path(), &format!("{secret}x\n"), 0o600);
        let e = Identities::load(&p).expect_err("refused").to_string();
        assert!(e.contains("line 1") && !e.contains(&secret), "{e}");
        let e = Recipients::parse(std::slice::from_ref(&secret), &[] as &[&Path])
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains("secret key") && !e.contains(&secret), "{e}");
    }
}
