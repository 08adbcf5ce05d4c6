use std::collections::HashSet;
use std::time::Instant;

use pvedr::error::{Error, Result, exit_for};
use pvedr::output::Output;
use pvedr::records::{Backup, Record, Step, Summary, rfc3339, seconds_since};
use pvedr::s3::Bucket;
use serde_json::{Map, Value, json};

use crate::cli::{Cli, Command};
use crate::location::{self, Location, manifest_key};
use crate::manifest::{MAX_MANIFEST, Manifest};
use crate::{pull, push};

pub fn run(cli: Cli) -> Result<u8> {
    let endpoint = location::endpoint(&cli)?;
    let mut out = cli.output.output();
    let code = match &cli.command {
        Command::Push(a) => {
            let plan = push::plan(a, endpoint)?;
            let backups = push::backups(pvedr::jsonl::read_only(&a.input.files, &["backup"])?);
            pvedr::interrupt::install();
            steps(&mut out, |emit| push::run(&plan, a, backups, emit))?
        }
        Command::Pull(a) => {
            let targets = pull::targets(a)?;
            pvedr::interrupt::install();
            steps(&mut out, |emit| pull::run(&endpoint, a, &targets, emit))?
        }
        Command::Ls { from } => {
            let loc = Location::parse(from)?;
            let bucket = Bucket::connect(&endpoint, &loc.bucket)?;
            for b in list(&bucket, &loc)? {
                out.write(&Record::Backup(b))?;
            }
            0
        }
    };
    out.finish()?;
    Ok(code)
}

/// Writes each step as it ends, then the summary; returns the exit code.
fn steps(
    out: &mut Output,
    work: impl FnOnce(&mut dyn FnMut(Step) -> Result<()>) -> Result<()>,
) -> Result<u8> {
    let started = Instant::now();
    let mut counts: [usize; 3] = [0; 3];
    work(&mut |st: Step| {
        match st.status.as_str() {
            "changed" => counts[0] += 1,
            "skipped" => counts[1] += 1,
            _ => counts[2] += 1,
        }
        pvedr::msg::say(format!(
            "{} {}: {}",
            st.status,
            st.target.as_deref().unwrap_or(""),
            st.message.as_deref().unwrap_or("")
        ));
        out.write(&Record::Step(st))?;
        out.flush()
    })?;
    let interrupted = pvedr::interrupt::requested();
    let code = exit_for(counts[0] + counts[1], counts[2], interrupted);
    let mut c = Map::new();
    for (k, n) in ["changed", "skipped", "failed"].iter().zip(counts) {
        c.insert((*k).into(), json!(n));
    }
    out.write(&Record::Summary(Summary {
        tool: Some("backup-sync".into()),
        counts: c,
        exit_code: code,
        duration_s: Some(seconds_since(started)),
        extra: Map::new(),
    }))?;
    Ok(code)
}

/// The offsite copies under the location: one `backup` record per manifest whose archive
/// is there, in key order.
pub fn list(bucket: &Bucket, loc: &Location) -> Result<Vec<Backup>> {
    let objects = bucket.list(&loc.list_prefix())?;
    let keys: HashSet<&str> = objects.iter().map(|(k, _)| k.as_str()).collect();
    let mut out = Vec::new();
    for (mk, size) in &objects {
        let Some(key) = mk.strip_suffix(".manifest.json") else {
            continue;
        };
        if *size > MAX_MANIFEST {
            pvedr::msg::warn(format!(
                "s3://{}/{mk}: too large for a manifest; ignored",
                bucket.name
            ));
            continue;
        }
        let m = match Manifest::parse(&bucket.get(mk, None, MAX_MANIFEST)?) {
            Ok(m) if m.key == key => m,
            Ok(_) => {
                pvedr::msg::warn(format!(
                    "s3://{}/{mk}: names another key; ignored",
                    bucket.name
                ));
                continue;
            }
            Err(e) => {
                pvedr::msg::warn(format!("s3://{}/{mk}: {e}; ignored", bucket.name));
                continue;
            }
        };
        if !keys.contains(key) {
            pvedr::msg::warn(format!(
                "s3://{}/{key}: manifest without archive; ignored",
                bucket.name
            ));
            continue;
        }
        out.push(record(&bucket.name, m));
    }
    Ok(out)
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
