//! `--apply` on offsite copies (`backup-sync ls` records, with `url` = `s3://BUCKET/KEY`):
//! every version of the archive, its side files and, last, its manifest are deleted, so a
//! copy half deleted is still listed and a rerun finishes it. The keys are derived from the
//! archive's own name, never read from its manifest, and a key a kept copy owns is never
//! deleted. A copy under S3 Object Lock is reported with the date it frees and kept; the
//! others go on.

use pvedr::records::StepStatus;
use std::collections::{HashMap, HashSet};
use std::time::Instant;

use pvedr::error::{Error, Result};
use pvedr::output::Output;
use pvedr::records::{Backup, Record, Step, rfc3339};
use pvedr::s3::{Bucket, Endpoint};

use crate::apply::{Report, say_done, step};
use crate::cli::Cli;

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

/// The keys a copy owns, named as Proxmox names an archive's auxiliaries (pve-storage
/// `PVE::Storage::archive_info`, `archive_auxiliaries_remove`): `<archive>.notes` and
/// `<stem>.log` beside it, the archive, and the manifest last. What the manifest lists is
/// not read: a hostile one named the newest copy's archive as its side file.
fn own_keys(key: &str) -> std::result::Result<Vec<String>, String> {
    let (dir, name) = key.rsplit_once('/').ok_or("no directory in the key")?;
    let a = pvedr::archive::parse(name)
        .filter(|a| a.is_std_name())
        .ok_or("not a standard vzdump archive name")?;
    Ok(vec![
        format!("{dir}/{name}.notes"),
        format!("{dir}/{}.log", a.stem),
        key.to_string(),
        format!("{key}.manifest.json"),
    ])
}

/// `s3://BUCKET/KEY` of every key the copies not marked remove own.
fn kept_keys(records: &[Record]) -> HashSet<String> {
    let mut kept = HashSet::new();
    for b in records.iter().filter_map(|r| match r {
        Record::Backup(b) if !marked_remove(b) => Some(b),
        _ => None,
    }) {
        let Some(Ok((bucket, key))) = url_of(b).map(parse_url) else {
            continue;
        };
        let keys =
            own_keys(&key).unwrap_or_else(|_| vec![key.clone(), format!("{key}.manifest.json")]);
        kept.extend(keys.into_iter().map(|k| format!("s3://{bucket}/{k}")));
    }
    kept
}

fn marked_remove(b: &Backup) -> bool {
    b.extra.get("mark").and_then(|m| m.as_str()) == Some("remove")
}

pub fn apply(cli: &Cli, records: &[Record], out: &mut Output) -> Result<Report> {
    let mut report = Report::default();
    let targets: Vec<&Backup> = records
        .iter()
        .filter_map(|r| match r {
            Record::Backup(b) if url_of(b).is_some() => Some(b),
            _ => None,
        })
        .filter(|b| marked_remove(b))
        .collect();
    if targets.is_empty() {
        return Ok(report);
    }
    let kept = kept_keys(records);
    let endpoint = cli.s3.endpoint()?;
    let mut buckets: HashMap<String, Bucket> = HashMap::new();
    pvedr::interrupt::install();
    let total = targets.len();
    for (i, b) in targets.into_iter().enumerate() {
        let s = if pvedr::interrupt::requested() {
            report.interrupted = true;
            step(
                &b.volid,
                StepStatus::Skipped,
                "interrupted before this deletion",
                None,
            )
        } else if b.protected {
            step(&b.volid, StepStatus::Skipped, "protected", None)
        } else {
            delete_copy(&endpoint, &mut buckets, &kept, b)
        };
        say_done(i, total, &b.volid, &s);
        report.count(&s.status);
        out.write(&Record::Step(s))?;
    }
    Ok(report)
}

fn delete_copy(
    endpoint: &Endpoint,
    buckets: &mut HashMap<String, Bucket>,
    kept: &HashSet<String>,
    b: &Backup,
) -> Step {
    let started = Instant::now();
    let (bucket, key) = match parse_url(url_of(b).unwrap_or("")) {
        Ok(v) => v,
        Err(e) => return step(&b.volid, StepStatus::Failed, e, None),
    };
    let keys = match own_keys(&key) {
        Ok(k) => k,
        Err(e) => return step(&b.volid, StepStatus::Failed, e, None),
    };
    let is_kept = |k: &String| kept.contains(&format!("s3://{bucket}/{k}"));
    if is_kept(&key) {
        return step(
            &b.volid,
            StepStatus::Skipped,
            "a copy marked keep has this key: kept",
            None,
        );
    }
    let keys: Vec<String> = keys.into_iter().filter(|k| !is_kept(k)).collect();
    if !buckets.contains_key(&bucket) {
        match Bucket::connect(endpoint, &bucket) {
            Ok(c) => {
                buckets.insert(bucket.clone(), c);
            }
            Err(e) => return step(&b.volid, StepStatus::Failed, e.to_string(), None),
        }
    }
    let Some(s3) = buckets.get(&bucket) else {
        return step(&b.volid, StepStatus::Failed, "no client", None);
    };
    match delete_objects(s3, &keys) {
        Ok(None) => step(
            &b.volid,
            StepStatus::Skipped,
            "already gone offsite",
            Some(started),
        ),
        Ok(Some(n)) => step(
            &b.volid,
            StepStatus::Changed,
            format!("deleted offsite ({n} object versions)"),
            Some(started),
        ),
        Err(Error::Refused(m)) => step(&b.volid, StepStatus::Skipped, m, Some(started)),
        Err(e) => step(&b.volid, StepStatus::Failed, e.to_string(), Some(started)),
    }
}

/// Deletes every version of the copy's objects (`keys`, the manifest last); `Ok(None)`
/// when its manifest is gone already, `Err(Refused)` when Object Lock keeps a version
/// (nothing is deleted then).
fn delete_objects(s3: &Bucket, keys: &[String]) -> Result<Option<usize>> {
    let Some(mk) = keys.last().filter(|k| k.ends_with(".manifest.json")) else {
        return Ok(None);
    };
    if s3.head_object(mk)?.is_none() {
        return Ok(None);
    }
    let mut versions = Vec::new();
    for k in keys {
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
    for k in keys {
        if s3.head_object(k)?.is_some() {
            return Err(Error::Other(format!(
                "s3://{}/{k} is still there after the delete",
                s3.name
            )));
        }
    }
    Ok(Some(versions.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_owns_the_keys_its_name_gives() {
        let k = "pve/pve1/100/vzdump-qemu-100-2024_01_15-02_00_02.vma.zst";
        assert_eq!(
            own_keys(k).expect("keys"),
            [
                format!("{k}.notes"),
                "pve/pve1/100/vzdump-qemu-100-2024_01_15-02_00_02.log".into(),
                k.to_string(),
                format!("{k}.manifest.json"),
            ]
        );
        assert!(own_keys("pve/pve1/100/renamed.vma.zst").is_err());
        assert!(own_keys("vzdump-qemu-100-2024_01_15-02_00_02.vma.zst").is_err());
    }
}
