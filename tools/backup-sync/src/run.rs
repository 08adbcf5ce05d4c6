use std::collections::HashMap;

use pvedr::change::{Approval, run_steps};
use pvedr::error::{Error, Result};
use pvedr::records::{Backup, Record, rfc3339};
use pvedr::s3::Bucket;
use serde_json::{Map, Value, json};

use crate::cli::{Cli, Command};
use crate::location::{self, Location, manifest_key};
use crate::manifest::{MAX_MANIFEST, Manifest};
use crate::{pull, push, verify};

pub fn run(cli: Cli) -> Result<u8> {
    let endpoint = location::endpoint(&cli)?;
    let mut out = cli.output.output();
    let code = match &cli.command {
        Command::Push(a) => {
            let plan = push::plan(a, endpoint)?;
            let backups = push::backups(pvedr::jsonl::read_only(&a.input.files, &["backup"])?);
            if push::approve(&plan, &backups, &cli.write)? == Approval::DryRun {
                return Ok(0);
            }
            pvedr::interrupt::install();
            run_steps(&mut out, |emit| push::run(&plan, a, backups, emit))?
        }
        Command::Pull(a) => {
            let targets = pull::targets(a)?;
            if pull::approve(a, &targets, &cli.write)? == Approval::DryRun {
                return Ok(0);
            }
            pvedr::interrupt::install();
            run_steps(&mut out, |emit| pull::run(&endpoint, a, &targets, emit))?
        }
        Command::Ls { from } => {
            let loc = Location::parse(from)?;
            let bucket = Bucket::connect(&endpoint, &loc.bucket)?;
            for r in list(&bucket, &loc)? {
                out.write(&r)?;
            }
            0
        }
        Command::Verify(a) => verify::run(&endpoint, a, &mut out)?,
    };
    out.finish()?;
    Ok(code)
}

/// The offsite copies under the location, in key order: a `backup` record per manifest
/// whose archive object is there with the manifest's size, an `offsite_damaged` record per
/// manifest whose object is gone or of another size (a size no copy can have must not reach
/// the next tool as a backup).
pub fn list(bucket: &Bucket, loc: &Location) -> Result<Vec<Record>> {
    let objects = bucket.list(&loc.list_prefix())?;
    let sizes: HashMap<&str, u64> = objects.iter().map(|(k, s)| (k.as_str(), *s)).collect();
    let mut out = Vec::new();
    for (mk, size) in &objects {
        let Some(key) = mk.strip_suffix(".manifest.json") else {
            continue;
        };
        let Some(m) = read_manifest(bucket, mk, key, *size)? else {
            continue;
        };
        let object = sizes.get(key).copied();
        if object == Some(m.stored_size()) {
            out.push(Record::Backup(record(&bucket.name, m)));
            continue;
        }
        let why = match object {
            None => "the archive object is missing beside its manifest".to_string(),
            Some(s) => format!(
                "the archive object is {s} bytes, its manifest says {}",
                m.stored_size()
            ),
        };
        pvedr::msg::warn(format!(
            "s3://{}/{key}: {why}; listed as damaged",
            bucket.name
        ));
        out.push(damaged(&bucket.name, m, object, why));
    }
    Ok(out)
}

/// The manifest at `mk` if it is one for `key`; what is not is warned about and skipped.
pub(crate) fn read_manifest(
    bucket: &Bucket,
    mk: &str,
    key: &str,
    size: u64,
) -> Result<Option<Manifest>> {
    if size > MAX_MANIFEST {
        pvedr::msg::warn(format!(
            "s3://{}/{mk}: too large for a manifest; ignored",
            bucket.name
        ));
        return Ok(None);
    }
    Ok(
        match Manifest::parse(&bucket.get(mk, None, MAX_MANIFEST)?) {
            Ok(m) if m.key == key => Some(m),
            Ok(_) => {
                pvedr::msg::warn(format!(
                    "s3://{}/{mk}: names another key; ignored",
                    bucket.name
                ));
                None
            }
            Err(e) => {
                pvedr::msg::warn(format!("s3://{}/{mk}: {e}; ignored", bucket.name));
                None
            }
        },
    )
}

/// A copy that cannot be restored: which one, and why (`offsite_damaged`).
fn damaged(bucket: &str, m: Manifest, object: Option<u64>, why: String) -> Record {
    let mut r = Map::new();
    r.insert("kind".into(), json!("offsite_damaged"));
    r.insert("node".into(), json!(m.node));
    r.insert("storage".into(), json!(bucket));
    r.insert("vmid".into(), json!(m.vmid));
    r.insert("subtype".into(), json!(m.subtype));
    r.insert("time".into(), json!(rfc3339(m.ctime)));
    r.insert("ctime".into(), json!(m.ctime));
    r.insert("error".into(), json!(why));
    r.insert("volid".into(), json!(format!("{bucket}:backup/{}", m.key)));
    r.insert("url".into(), json!(format!("s3://{bucket}/{}", m.key)));
    r.insert("manifest_size".into(), json!(m.stored_size()));
    if let Some(s) = object {
        r.insert("object_size".into(), json!(s));
    }
    r.insert("source_volid".into(), json!(m.source_volid));
    Record::Other(r)
}

fn record(bucket: &str, m: Manifest) -> Backup {
    let mut extra = Map::new();
    extra.insert(
        "url".into(),
        Value::String(format!("s3://{bucket}/{}", m.key)),
    );
    extra.insert("sha256".into(), Value::String(m.sha256.clone()));
    extra.insert("source_volid".into(), Value::String(m.source_volid.clone()));
    if let Some(s) = &m.storage {
        extra.insert("source_storage".into(), Value::String(s.clone()));
    }
    Backup {
        node: m.node.clone(),
        storage: Some(bucket.into()),
        volid: format!("{bucket}:backup/{}", m.key),
        vmid: Some(m.vmid),
        subtype: m.subtype.clone(),
        ctime: m.ctime,
        time: rfc3339(m.ctime),
        size: Some(m.size),
        format: m.format.clone(),
        // Proxmox lists the first line of the notes.
        notes: m
            .notes
            .as_deref()
            .and_then(|n| n.lines().next())
            .filter(|l| !l.is_empty())
            .map(String::from),
        protected: m.protected,
        // `age` for an encrypted copy (Proxmox puts a PBS key's fingerprint there).
        encrypted: m.encrypted.clone(),
        extra,
        ..Default::default()
    }
}

/// The manifest of an offsite archive key.
pub fn manifest_of(bucket: &Bucket, key: &str) -> Result<Manifest> {
    let mk = manifest_key(key);
    let bytes = bucket.get(&mk, None, MAX_MANIFEST)?;
    Manifest::parse(&bytes).map_err(|e| Error::Other(format!("s3://{}/{mk}: {e}", bucket.name)))
}
