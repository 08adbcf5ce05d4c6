//! The side files a pull writes beside an archive. Their names come from the manifest, which
//! whoever can write to the bucket can forge: only the names Proxmox derives from the
//! archive's own name are taken (pve-storage `PVE/Storage.pm` `archive_info`: the
//! `<stem>.log` and `<archive>.notes`; `protection_file_path`: `<archive>.protected`), each
//! fetched from the key beside the archive's and checked against its sha256 before any
//! file is written.

use pvedr::error::{Error, Result};
use pvedr::s3::Bucket;

use pvedr::crypt::Identities;

use crate::manifest::Manifest;
use crate::meter::hex;
use crate::source::MAX_SIDE_FILE;

/// A side file fetched and verified: its name beside the archive and its bytes.
pub struct Fetched {
    pub name: String,
    pub data: Vec<u8>,
}

/// The names a side file of `archive` may have.
pub fn allowed_names(archive: &str) -> Vec<String> {
    let mut v = vec![format!("{archive}.notes"), format!("{archive}.protected")];
    if let Some(a) = pvedr::archive::parse(archive) {
        v.push(format!("{}.log", a.stem));
    }
    v
}

/// The key of `name` beside the archive's key.
pub fn sibling(archive_key: &str, name: &str) -> String {
    match archive_key.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/{name}"),
        None => name.to_string(),
    }
}

/// Every side file of the manifest, refused as a whole when one is not the archive's own;
/// an encrypted copy's decrypted with `ids` (which [`identities_for`] checked).
pub fn fetch_all(
    bucket: &Bucket,
    key: &str,
    m: &Manifest,
    ids: Option<&Identities>,
) -> Result<Vec<Fetched>> {
    let allowed = allowed_names(&m.archive);
    let mut out: Vec<Fetched> = Vec::new();
    for sf in &m.side_files {
        let ok = allowed.contains(&sf.name)
            && sf.key == sibling(key, &sf.name)
            && !out.iter().any(|f| f.name == sf.name);
        if !ok {
            return Err(Error::Refused(format!(
                "the manifest of {key} names a side file '{}' (key '{}') that is not {}'s own ({}); nothing written",
                sf.name.escape_debug(),
                sf.key.escape_debug(),
                m.archive,
                allowed.join(", ")
            )));
        }
        let got = bucket.get(&sf.key, None, MAX_SIDE_FILE as u64 + AGE_OVERHEAD)?;
        let data = match ids.filter(|_| m.is_encrypted()) {
            Some(ids) => pvedr::crypt::decrypt_bytes(&got, ids, MAX_SIDE_FILE as u64)
                .map_err(|e| Error::Refused(format!("s3://{}/{}: {e}", bucket.name, sf.key)))?,
            None => got,
        };
        if data.len() as u64 != sf.size
            || hex(&<sha2::Sha256 as sha2::Digest>::digest(&data)) != sf.sha256
        {
            return Err(Error::Refused(format!(
                "s3://{}/{}: size or sha256 differs from the manifest; nothing written",
                bucket.name, sf.key
            )));
        }
        out.push(Fetched {
            name: sf.name.clone(),
            data,
        });
    }
    Ok(out)
}

/// What age adds to a small file: its header (a stanza per recipient) and a tag per
/// 64 KiB chunk.
const AGE_OVERHEAD: u64 = 64 * 1024;

/// The identities that open an encrypted copy: refused, naming the copy, without one or
/// when the copy is for other recipients (its manifest says which). A plain copy: `None`.
pub fn identities_for<'a>(
    url: &str,
    m: &Manifest,
    ids: Option<&'a Identities>,
) -> Result<Option<&'a Identities>> {
    if !m.is_encrypted() {
        return Ok(None);
    }
    match ids {
        None => Err(Error::Refused(format!(
            "{url} is encrypted (age, to {}): give --age-identity FILE; nothing written",
            m.recipients.join(", ")
        ))),
        Some(i) if !i.opens(&m.recipients) => Err(Error::Refused(format!(
            "{url} is encrypted to {}, which {} does not open: {}",
            m.recipients.join(", "),
            i.path(),
            i.not_ours()
        ))),
        Some(i) => Ok(Some(i)),
    }
}

/// What a side file's target holds.
pub enum Held {
    Nothing,
    /// These very bytes (same size and sha256): nothing to write.
    Same,
    /// Other contents, at this place (named in the refusal).
    Other(String),
}

/// The verified side files of `m` not at their targets yet; one there with other contents
/// stops the pull unless `force`. `held` says what a file's target holds, given the file
/// and its sha256.
pub fn to_write(
    bucket: &Bucket,
    key: &str,
    m: &Manifest,
    ids: Option<&Identities>,
    force: bool,
    held: impl Fn(&Fetched, &str) -> Result<Held>,
) -> Result<Vec<Fetched>> {
    let mut out = Vec::new();
    for s in fetch_all(bucket, key, m, ids)? {
        let sha = hex(&<sha2::Sha256 as sha2::Digest>::digest(&s.data));
        match held(&s, &sha)? {
            Held::Same => continue,
            Held::Other(target) if !force => return Err(exists_refusal(&target)),
            Held::Other(_) | Held::Nothing => out.push(s),
        }
    }
    Ok(out)
}

/// The refusal for a side file already there with other contents (without --force).
pub fn exists_refusal(target: &str) -> Error {
    Error::Refused(format!(
        "{target} exists with other contents; kept, and the archive not written (--force replaces it)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_derived_from_the_archive() {
        let a = "vzdump-qemu-100-2024_01_15-02_00_02.vma.zst";
        let names = allowed_names(a);
        assert!(names.contains(&format!("{a}.notes")));
        assert!(names.contains(&"vzdump-qemu-100-2024_01_15-02_00_02.log".to_string()));
        assert!(names.contains(&format!("{a}.protected")));
        assert!(!names.contains(&a.to_string()));
        assert_eq!(sibling("p/pve1/100/x", "y"), "p/pve1/100/y");
    }
}
