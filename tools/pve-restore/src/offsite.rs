//! Offsite records (`backup-sync ls`: `url` = `s3://BUCKET/KEY`, `sha256`, `size`) are
//! restored straight from S3: the object streams as ranged GETs, through sha256 and the
//! decompressor, into `qmrestore -` or `pct restore N -` on the node over SSH; no archive
//! is written to the node's disk. A container's mount points and `unprivileged` are read
//! from the archive's head (a pipe restore takes no config from the archive before the
//! extraction: pve-container `API2/LXC.pm` `create_vm`).

use std::io::Read;
use std::sync::{Arc, OnceLock};

use pvedr::archive;
use pvedr::crypt::{self, Identities};
use pvedr::pipeline::{self, Compression, Expect, PipeError};
use pvedr::pve::{GuestConfig, Kind};
use pvedr::records::Backup;
use pvedr::s3::{Bucket, S3Conn};
use serde_json::json;

/// Bytes of the object read to find a container's config in its head.
const HEAD_BYTES: u64 = 1 << 20;

/// An offsite copy, as its record names it.
#[derive(Debug, Clone)]
pub struct Offsite {
    pub bucket: String,
    pub key: String,
    pub url: String,
    pub size: u64,
    pub sha256: String,
    pub compression: Compression,
    /// `vma` or `tar`.
    pub base: String,
    /// An age file: decrypted with [`Offsite::ids`] as it streams.
    pub encrypted: bool,
    pub ids: Option<Arc<Identities>>,
    /// The object's size once a HEAD said it: the check, the head read and the stream of
    /// an age file each need it, and one HEAD answers them all.
    object: Arc<OnceLock<u64>>,
}

/// `None`: not an offsite record; `Some(Err(why))`: one that cannot be restored.
pub fn of(b: &Backup) -> Option<Result<Offsite, String>> {
    let url = b.extra.get("url")?.as_str()?;
    let rest = url.strip_prefix("s3://")?;
    Some(parse(b, url, rest))
}

fn parse(b: &Backup, url: &str, rest: &str) -> Result<Offsite, String> {
    // backup-sync marks a client-side encrypted copy `age`: its object is an age file
    // whose plaintext has the record's size and sha256.
    let encrypted = match b.encrypted.as_deref() {
        None => false,
        Some(crypt::AGE) => true,
        Some(other) => {
            return Err(format!(
                "{url}: encrypted as '{}', which pvedr cannot open",
                pvedr::msg::visible(other)
            ));
        }
    };
    let (bucket, key) = rest
        .split_once('/')
        .filter(|(b, k)| !b.is_empty() && !k.is_empty())
        .ok_or_else(|| format!("{url} names no object"))?;
    let sha256 = b
        .extra
        .get("sha256")
        .and_then(|v| v.as_str())
        .filter(|s| s.len() == 64 && s.bytes().all(|c| c.is_ascii_hexdigit()))
        .ok_or_else(|| format!("{url}: the record has no sha256 to check the stream against"))?;
    let size = b
        .size
        .ok_or_else(|| format!("{url}: the record has no size"))?;
    let file = key.rsplit('/').next().unwrap_or(key);
    let a = archive::parse(file)
        .ok_or_else(|| format!("{url}: '{file}' is not a vzdump archive name"))?;
    let base = match a.format.as_str() {
        f if f.starts_with("vma") => "vma",
        f if f.starts_with("tar") || f == "tgz" => "tar",
        _ => "",
    };
    if base.is_empty() {
        return Err(format!(
            "{url}: a {} archive cannot be streamed into a restore",
            a.format
        ));
    }
    let compression = Compression::of(a.compression.as_deref()).map_err(|e| e.to_string())?;
    Ok(Offsite {
        bucket: bucket.to_string(),
        key: key.to_string(),
        url: url.to_string(),
        size,
        sha256: sha256.to_ascii_lowercase(),
        compression,
        base: base.to_string(),
        encrypted,
        ids: None,
        object: Arc::default(),
    })
}

impl Offsite {
    fn bucket(&self, s3: &S3Conn) -> pvedr::Result<Bucket> {
        Bucket::connect(&s3.endpoint()?, &self.bucket)
    }

    /// The object's size as the server says it (asked once).
    fn object_size(&self, s3: &S3Conn) -> Result<u64, String> {
        if let Some(n) = self.object.get() {
            return Ok(*n);
        }
        let head = self
            .bucket(s3)
            .and_then(|b| b.head_object(&self.key))
            .map_err(|e| format!("cannot read {}: {e}", self.url))?;
        let n = head
            .and_then(|h| h.size)
            .ok_or_else(|| format!("{} is gone", self.url))?;
        Ok(*self.object.get_or_init(|| n))
    }

    /// The object is there and of the manifest's size (a cut upload, a truncated copy is
    /// refused before anything changes); an age file is larger than its plaintext.
    pub fn check(&self, s3: &S3Conn) -> Result<String, String> {
        let n = self.object_size(s3)?;
        match n {
            n if n < self.size => Err(format!(
                "{} ({} is {n} bytes)",
                PipeError::Truncated {
                    expected: self.size,
                    got: n
                },
                self.url
            )),
            n if n > self.size && !self.encrypted => Err(format!(
                "{} is {n} bytes, its manifest says {}: not the copy the manifest describes",
                self.url, self.size
            )),
            n if self.encrypted => Ok(format!(
                "{} is there, an age file of {n} bytes; decrypted and its plaintext sha256 checked as it streams",
                self.url
            )),
            n => Ok(format!(
                "{} is there, {n} bytes as its manifest says; its sha256 is checked as it streams",
                self.url
            )),
        }
    }

    /// The object read from its start, decrypted when it is an age file: `len` bytes of
    /// the object (all of it for the restore, its head for the config).
    fn source(
        &self,
        s3: &S3Conn,
        len: u64,
        part: u64,
        in_flight: usize,
    ) -> pvedr::Result<Box<dyn Read + Send>> {
        let b = self.bucket(s3)?;
        let ranged = b.ranged(&self.key, len, part, in_flight);
        match (&self.ids, self.encrypted) {
            (_, false) => Ok(Box::new(ranged)),
            (Some(ids), true) => Ok(Box::new(crypt::decrypting_reader(ranged, ids)?)),
            (None, true) => Err(pvedr::Error::Other(format!(
                "{} is encrypted: give --age-identity FILE",
                self.url
            ))),
        }
    }

    /// The guest's config in the archive's head (a VMA's `qemu-server.conf` blob, a
    /// container's `etc/vzdump/pct.conf`).
    pub fn config(&self, s3: &S3Conn, kind: Kind) -> Result<GuestConfig, String> {
        // An age file's head: its header and the first chunks (64 KiB each, 16 bytes of
        // tag), cut where the range ends: what decrypts before the cut is the head.
        let object = if self.encrypted {
            self.object_size(s3)?
        } else {
            self.size
        };
        let n = object.min(HEAD_BYTES);
        let mut raw = Vec::new();
        let mut r = self
            .source(s3, n, n, 1)
            .map_err(|e| format!("cannot read the head of {}: {e}", self.url))?;
        if let Err(e) = r.read_to_end(&mut raw) {
            // An age file cut where the range ends fails its last chunk: what came before
            // it is the head, whole.
            if !self.encrypted || raw.is_empty() {
                return Err(format!("cannot read the head of {}: {e}", self.url));
            }
        }
        let head = pipeline::decompress_head(&raw, self.compression);
        let text = pipeline::config_in_head(&head, &self.base)
            .ok_or_else(|| format!("no guest config in the head of {}", self.url))?;
        Ok(GuestConfig::from_text(kind, &text))
    }

    /// Streams the object into `cmd` on the node.
    pub fn feed(
        &self,
        s3: &S3Conn,
        t: &dyn pvedr::transport::Transport,
        cmd: &pvedr::transport::RemoteCommand,
    ) -> pvedr::Result<pipeline::Fed> {
        let object = if self.encrypted {
            self.object_size(s3).map_err(pvedr::Error::Other)?
        } else {
            self.size
        };
        let source = self.source(s3, object, pvedr::s3::PART, pvedr::s3::IN_FLIGHT)?;
        // The record's size and sha256 are the plaintext's: checked after decryption.
        let expect = Expect {
            size: self.size,
            sha256: self.sha256.clone(),
        };
        let s = pipeline::stream(source, expect, self.compression)?;
        pipeline::feed(t, cmd, s)
    }

    /// Bytes per second of one ranged GET of the object's first `len` bytes: a site plan's
    /// short probe of the S3 side.
    pub fn probe_rate(&self, s3: &S3Conn, len: u64) -> Result<f64, String> {
        let n = self.size.min(len).max(1);
        let t0 = std::time::Instant::now();
        let b = self
            .bucket(s3)
            .map_err(|e| format!("cannot read {}: {e}", self.url))?;
        let mut r = b.ranged(&self.key, n, n, 1);
        let got = std::io::copy(&mut r, &mut std::io::sink())
            .map_err(|e| format!("cannot read {}: {e}", self.url))?;
        Ok(got as f64 / t0.elapsed().as_secs_f64().max(1e-6))
    }

    /// What the record says of the stream.
    pub fn record(&self, fed: Option<&pipeline::Fed>) -> serde_json::Value {
        json!({
            "url": self.url,
            "sha256": self.sha256,
            "encrypted": self.encrypted.then_some(crypt::AGE),
            "bytes": fed.map(|f| f.bytes),
        })
    }
}

/// `pct restore N -` takes its volumes from the call: `--rootfs STORAGE:GiB,…` and each
/// volume mount point likewise (created empty unless the archive holds its files), and
/// `--unprivileged` as the backup had it. Bind and device mount points are not passed: a
/// pipe restore would mount them during the extraction (a file restore adds them after
/// it); they are named in a warning, to be set again by hand.
pub fn ct_args(c: &GuestConfig, storage: Option<&str>) -> Result<Vec<String>, String> {
    let mut a = Vec::new();
    for d in &c.disks {
        let value = match &d.storage {
            Some(own) => {
                let sid = storage.unwrap_or(own);
                let gib = gib(d.size.as_deref())
                    .ok_or_else(|| format!("{} has no size to create it with", d.key))?;
                let opts: Vec<String> = d
                    .props
                    .pairs
                    .iter()
                    .filter(|(k, _)| k != "size" && k != "volume")
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                std::iter::once(format!("{sid}:{gib}"))
                    .chain(opts)
                    .collect::<Vec<_>>()
                    .join(",")
            }
            None => {
                pvedr::msg::warn(format!(
                    "{} ({}) is a bind or device mount point: not restored from a stream; set it again with pct set",
                    d.key,
                    pvedr::msg::visible(&d.source)
                ));
                continue;
            }
        };
        a.extend([format!("--{}", d.key), value]);
    }
    if a.first().is_none_or(|k| k != "--rootfs") {
        return Err("the backup's config has no rootfs volume".into());
    }
    if c.rest.get("unprivileged").is_some_and(|v| v == "1") {
        a.extend(["--unprivileged".to_string(), "1".to_string()]);
    }
    Ok(a)
}

/// A Proxmox size (`8G`, `512M`, `256K`, bytes) in GiB, as `create_disks` takes it.
fn gib(size: Option<&str>) -> Option<String> {
    let s = size?.trim();
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len()));
    let n: f64 = num.parse().ok()?;
    let k = match unit {
        "" => 1.0 / (1u64 << 30) as f64,
        "K" => 1.0 / (1u64 << 20) as f64,
        "M" => 1.0 / 1024.0,
        "G" => 1.0,
        "T" => 1024.0,
        _ => return None,
    };
    let g = n * k;
    (g > 0.0 && g.is_finite()).then(|| format!("{g}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ct_args_take_volumes_and_unprivileged_and_leave_bind_mounts_out() {
        let c = GuestConfig::from_text(
            Kind::Lxc,
            "rootfs: local-lvm:vm-101-disk-0,size=8G\nmp0: nas:vm-101-disk-1,mp=/data,backup=1,size=512M\nmp1: /srv/x,mp=/x\nunprivileged: 1\n",
        );
        assert_eq!(
            ct_args(&c, None).unwrap(),
            [
                "--rootfs",
                "local-lvm:8",
                "--mp0",
                "nas:0.5,mp=/data,backup=1",
                "--unprivileged",
                "1"
            ]
        );
        assert_eq!(ct_args(&c, Some("zfs")).unwrap()[1], "zfs:8");
        let none = GuestConfig::from_text(Kind::Lxc, "hostname: x\n");
        assert!(ct_args(&none, None).is_err());
    }

    #[test]
    fn sizes_in_gib() {
        assert_eq!(gib(Some("8G")).as_deref(), Some("8"));
        assert_eq!(gib(Some("512M")).as_deref(), Some("0.5"));
        assert_eq!(gib(Some("256K")).as_deref(), Some("0.000244140625"));
        assert_eq!(gib(Some("x")), None);
    }
}
