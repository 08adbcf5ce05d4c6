//! The read-only subcommands: list, show, diff.

use pvedr::error::{Error, Result, code};
use pvedr::output::Output;
use pvedr::records::Record;
use pvedr::s3::{Bucket, Entry};
use pvedr::terraform::state;
use serde_json::{Map, Value, json};

use crate::cli::Cli;
use crate::history::{find, get, one_location, open, record};

pub(crate) fn list(cli: &Cli, inspect: bool, out: &mut Output) -> Result<u8> {
    let t = one_location(cli)?;
    let s3 = Bucket::connect(&t.endpoint, &t.bucket)?;
    let enabled = s3.versioning()?;
    let history = s3.versions(&t.key, true)?;
    let versioned = enabled.unwrap_or_else(|| history.iter().any(|e| e.version_id != "null"));
    if !versioned {
        pvedr::msg::warn(format!(
            "bucket {} has no versioning enabled: only the current object is there, and an overwritten state cannot be recovered",
            t.bucket
        ));
    }
    for e in history {
        let mut r = record(&t, &e);
        if inspect && !e.delete_marker {
            match state::parse(&get(&s3, &t, Some(&e.version_id))?) {
                Ok((_, i)) => {
                    r.serial = Some(i.serial);
                    r.lineage = Some(i.lineage);
                    r.terraform_version = i.terraform_version;
                    r.resources = Some(i.resources as u64);
                    r.extra.insert("outputs".into(), json!(i.outputs));
                }
                Err(m) => {
                    r.extra.insert("valid".into(), Value::Bool(false));
                    r.extra.insert("error".into(), Value::from(m));
                }
            }
        }
        out.write(&Record::TfstateVersion(r))?;
    }
    Ok(code::SUCCESS)
}

pub(crate) fn show(cli: &Cli, version: &str, out: &mut Output) -> Result<u8> {
    let t = one_location(cli)?;
    let (s3, h) = open(&t)?;
    let e = find(&h, version)?;
    if e.delete_marker {
        return Err(Error::Refused(format!(
            "{} is a delete marker: it has no content",
            version.escape_debug()
        )));
    }
    let body = get(&s3, &t, Some(&e.version_id))?;
    out.raw()
        .write_all(&body)
        .map_err(|e| Error::io("writing to standard output", e))?;
    Ok(code::SUCCESS)
}

pub(crate) fn diff(cli: &Cli, a: &str, b: &str, out: &mut Output) -> Result<u8> {
    let t = one_location(cli)?;
    let (s3, h) = open(&t)?;
    let (ea, eb) = (find(&h, a)?, find(&h, b)?);
    let load = |e: &Entry| -> Result<(Map<String, Value>, state::StateInfo)> {
        let bytes = get(&s3, &t, Some(&e.version_id))?;
        state::parse(&bytes).map_err(|m| {
            Error::Refused(format!(
                "version {} is not a valid state: {m}",
                e.version_id
            ))
        })
    };
    let ((ma, ia), (mb, ib)) = (load(ea)?, load(eb)?);
    for (addr, change) in state::diff(&ma, &mb) {
        out.write_value(json!({"kind": "tfstate_diff", "bucket": t.bucket, "key": t.key, "address": addr, "change": change}))?;
    }
    out.write_value(json!({"kind": "tfstate_diff", "bucket": t.bucket, "key": t.key, "from": ea.version_id, "to": eb.version_id,
        "serial": [ia.serial, ib.serial], "lineage": [ia.lineage, ib.lineage], "lineage_changed": ia.lineage != ib.lineage}))?;
    Ok(code::SUCCESS)
}
