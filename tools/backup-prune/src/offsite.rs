//! `--apply` on offsite copies (`backup-sync ls` records, with `url` = `s3://BUCKET/KEY`):
//! every version of the archive, its side files and, last, its manifest are deleted, so a
//! copy half deleted is still listed and a rerun finishes it. A copy under S3 Object Lock
//! is reported with the date it frees and kept; the others go on.

use std::collections::HashMap;
use std::time::Instant;

use pvedr::error::{Error, Result};
use pvedr::output::Output;
use pvedr::records::{Backup, Record, Step, rfc3339};
use pvedr::s3::{Bucket, Endpoint};

use crate::apply::Report;
use crate::cli::Cli;

/// Manifests are small; see backup-sync.
const MAX_MANIFEST: u64 = 1024 * 1024;

/// The offsite location of a record, if it is an offsite copy.
pub fn url_of(b: &Backup) -> Option<&str> {
    b.extra
        .get("url")
        .and_then(|u| u.as_str())
        .filter(|u| u.starts_with("s3://"))
}

pub fn is_offsite(r: &Record) -> bool {
    matches!(r, Record::Backup(b) if url_of(b).is_some())
}

/// `s3://BUCKET/KEY` → (bucket, key), each part checked (no `..`, no control characters).
fn parse_url(u: &str) -> std::result::Result<(String, String), String> {
    let rest = u.strip_prefix("s3://").ok_or("not an s3:// URL")?;
    let (bucket, key) = rest.split_once('/').ok_or("no key in the URL")?;
    pvedr::s3::check_bucket(bucket).map_err(|e| e.to_string())?;
    let ok = key
        .split('/')
        .all(|p| !p.is_empty() && p != ".." && p != "." && !p.chars().any(char::is_control));
    if !ok {
        return Err(format!("invalid key '{}'", key.escape_debug()));
    }
    Ok((bucket.into(), key.into()))
}

fn step(volid: &str, status: &str, message: impl Into<String>, started: Option<Instant>) -> Step {
    Step::new("delete", volid, status, message, started)
}

pub fn apply(cli: &Cli, records: &[Record], out: &mut Output) -> Result<Report> {
    let mut report = Report::default();
    let targets: Vec<&Backup> = records
        .iter()
        .filter_map(|r| match r {
            Record::Backup(b) if url_of(b).is_some() => Some(b),
            _ => None,
        })
        .filter(|b| b.extra.get("mark").and_then(|m| m.as_str()) == Some("remove"))
        .collect();
    if targets.is_empty() {
        return Ok(report);
    }
    let endpoint = cli.s3.endpoint()?;
    let mut buckets: HashMap<String, Bucket> = HashMap::new();
    pvedr::interrupt::install();
    let total = targets.len();
    for (i, b) in targets.into_iter().enumerate() {
        let s = if pvedr::interrupt::requested() {
            report.interrupted = true;
            step(
                &b.volid,
                "skipped",
                "interrupted before this deletion",
                None,
            )
        } else if b.protected {
            step(&b.volid, "skipped", "protected", None)
        } else {
            delete_copy(&endpoint, &mut buckets, b)
        };
        pvedr::msg::say(format!(
            "[{}/{total}] {} {}: {}",
            i + 1,
            s.status,
            b.volid,
            s.message.as_deref().unwrap_or("")
        ));
        match s.status.as_str() {
            "changed" => report.deleted += 1,
            "skipped" => report.skipped += 1,
            _ => report.failed += 1,
        }
        out.write(&Record::Step(s))?;
    }
    Ok(report)
}

fn delete_copy(endpoint: &Endpoint, buckets: &mut HashMap<String, Bucket>, b: &Backup) -> Step {
    let started = Instant::now();
    let (bucket, key) = match parse_url(url_of(b).unwrap_or("")) {
        Ok(v) => v,
        Err(e) => return step(&b.volid, "failed", e, None),
    };
    if !buckets.contains_key(&bucket) {
        match Bucket::connect(endpoint, &bucket) {
            Ok(c) => {
                buckets.insert(bucket.clone(), c);
            }
            Err(e) => return step(&b.volid, "failed", e.to_string(), None),
        }
    }
    let Some(s3) = buckets.get(&bucket) else {
        return step(&b.volid, "failed", "no client", None);
    };
    match delete_objects(s3, &key) {
        Ok(None) => step(&b.volid, "skipped", "already gone offsite", Some(started)),
        Ok(Some(n)) => step(
            &b.volid,
            "changed",
            format!("deleted offsite ({n} object versions)"),
            Some(started),
        ),
        Err(Error::Refused(m)) => step(&b.volid, "skipped", m, Some(started)),
        Err(e) => step(&b.volid, "failed", e.to_string(), Some(started)),
    }
}

/// The copy's keys: side files (from the manifest), the archive, the manifest last.
fn keys_of(s3: &Bucket, key: &str) -> Result<Option<Vec<String>>> {
    let mk = format!("{key}.manifest.json");
    if s3.head_object(&mk)?.is_none() {
        return Ok(None);
    }
    let m: serde_json::Value = serde_json::from_slice(&s3.get(&mk, None, MAX_MANIFEST)?)
        .map_err(|e| Error::Other(format!("s3://{}/{mk}: not a manifest: {e}", s3.name)))?;
    let dir = key.rsplit_once('/').map_or("", |(d, _)| d);
    let mut keys: Vec<String> = m["side_files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["key"].as_str())
        // Only keys beside the archive: a manifest cannot send us to delete elsewhere.
        .filter(|k| k.rsplit_once('/').map_or("", |(d, _)| d) == dir)
        .map(String::from)
        .collect();
    keys.push(key.into());
    keys.push(mk);
    Ok(Some(keys))
}

/// Deletes every version of the copy's objects; `Ok(None)` when it is gone already,
/// `Err(Refused)` when Object Lock keeps a version (nothing is deleted then).
fn delete_objects(s3: &Bucket, key: &str) -> Result<Option<usize>> {
    let Some(keys) = keys_of(s3, key)? else {
        return Ok(None);
    };
    let mut versions = Vec::new();
    for k in &keys {
        versions.extend(s3.versions(k, true)?);
    }
    let now = pvedr::time::now();
    for v in versions.iter().filter(|v| !v.delete_marker) {
        let id = (v.version_id != "null").then_some(v.version_id.as_str());
        if let Some(l) = s3.retention(&v.key, id)?.filter(|l| l.until > now) {
            return Err(Error::Refused(format!(
                "s3://{}/{} is under Object Lock ({}) until {}: kept",
                s3.name,
                v.key,
                l.mode.as_str(),
                rfc3339(l.until)
            )));
        }
    }
    for v in &versions {
        if v.version_id == "null" {
            s3.delete(&v.key, None)?;
        } else {
            s3.delete_version(&v.key, &v.version_id)?;
        }
    }
    // The proof: nothing current is left.
    for k in &keys {
        if s3.head_object(k)?.is_some() {
            return Err(Error::Other(format!(
                "s3://{}/{k} is still there after the delete",
                s3.name
            )));
        }
    }
    Ok(Some(versions.len()))
}
