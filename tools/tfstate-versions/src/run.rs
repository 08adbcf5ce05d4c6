//! Parses, calls the lib's S3 client, renders: list, show, diff, undelete; restore, export
//! and fallback have their own modules.

use pvedr::records::StepStatus;
use std::time::Instant;

use pvedr::change::step;
use pvedr::error::{Error, Result, code};
use pvedr::output::Output;
use pvedr::records::{Record, Step, TfstateVersion, rfc3339};
use pvedr::s3::{Bucket, Entry, MAX_IN_MEMORY};
use pvedr::shell::quote;
use pvedr::terraform::{Terraform, state};
use serde_json::{Map, Value, json};

use crate::cli::{Cli, Command};
use crate::fallback;
use crate::location::StateLocation;

pub(crate) fn location(cli: &Cli, env: Option<&str>) -> Result<StateLocation> {
    StateLocation::resolve(&cli.s3, env, cli.key.as_deref(), cli.workspace.as_deref())
}

fn one_location(cli: &Cli) -> Result<StateLocation> {
    if cli.s3.env.len() > 1 {
        return Err(Error::usage(
            "several --env: only export takes more than one",
        ));
    }
    location(cli, cli.s3.env.first().map(String::as_str))
}

/// The state's bucket and its history, newest first.
pub(crate) fn open(t: &StateLocation) -> Result<(Bucket, Vec<Entry>)> {
    let s3 = Bucket::connect(&t.endpoint, &t.bucket)?;
    let h = s3.versions(&t.key, true)?;
    Ok((s3, h))
}

pub(crate) fn get(s3: &Bucket, t: &StateLocation, version: Option<&str>) -> Result<Vec<u8>> {
    s3.get(&t.key, version, MAX_IN_MEMORY)
}

fn record(t: &StateLocation, e: &Entry) -> TfstateVersion {
    TfstateVersion {
        env: t.env.clone(),
        bucket: t.bucket.clone(),
        key: t.key.clone(),
        version_id: e.version_id.clone(),
        is_latest: e.is_latest,
        delete_marker: e.delete_marker,
        last_modified: e.last_modified.map(rfc3339),
        size: e.size,
        etag: e.etag.clone(),
        ..Default::default()
    }
}

pub(crate) fn find<'a>(h: &'a [Entry], v: &str) -> Result<&'a Entry> {
    if v == "latest" {
        return h
            .first()
            .ok_or_else(|| Error::Refused("the key has no versions".into()));
    }
    h.iter()
        .find(|e| e.version_id == v)
        .ok_or_else(|| Error::Refused(format!("no version '{}' of this key", v.escape_debug())))
}

/// `aws s3api delete-object …`, every value quoted, the endpoint without credentials.
pub(crate) fn delete_command(t: &StateLocation, version: Option<&str>) -> String {
    let ep = t
        .endpoint
        .printable()
        .map(|e| format!(" --endpoint-url {}", quote(&e)))
        .unwrap_or_default();
    let v = version
        .map(|v| format!(" --version-id {}", quote(v)))
        .unwrap_or_default();
    format!(
        "aws s3api delete-object{ep} --bucket {} --key {}{v}",
        quote(&t.bucket),
        quote(&t.key)
    )
}

pub fn run(cli: Cli) -> Result<u8> {
    let mut out = cli.output.output();
    let code = match &cli.command {
        Command::List { inspect } => list(&cli, *inspect, &mut out)?,
        Command::Show { version } => show(&cli, version, &mut out)?,
        Command::Diff { a, b } => diff(&cli, a, b, &mut out)?,
        Command::Restore {
            version,
            force,
            keep_serial,
            dynamodb_table,
        } => {
            let t = one_location(&cli)?;
            let opts = crate::restore::Options {
                force: *force,
                keep_serial: *keep_serial,
                table: dynamodb_table.clone().or(t.dynamodb_table.clone()),
                write: cli.write.clone(),
            };
            crate::restore::restore(&t, version, &opts, &mut out)?
        }
        Command::Undelete => undelete(&cli, &cli.write, &mut out)?,
        Command::Export { .. } | Command::Fallback { .. } | Command::Return { .. }
            if cli.write.dry_run =>
        {
            // Ignoring it would change what the user asked to leave alone.
            return Err(Error::usage(
                "export, fallback and return have no --dry-run (they have no plan to show); nothing was done",
            ));
        }
        Command::Export { to } => crate::export::export(&cli, to, &mut out)?,
        Command::Fallback {
            dir,
            terraform_bin,
            timeout,
        } => {
            let tf = Terraform::new(terraform_bin, dir).with_timeout(timeout.duration()?);
            // Terraform is stopped, not orphaned, on a signal; the directory is put back.
            pvedr::interrupt::install();
            let steps = fallback::fallback(&tf);
            write_steps(&mut out, steps)?
        }
        Command::Return {
            dir,
            terraform_bin,
            timeout,
        } => {
            let tf = Terraform::new(terraform_bin, dir).with_timeout(timeout.duration()?);
            pvedr::interrupt::install();
            let steps = fallback::return_home(&tf, &cli);
            write_steps(&mut out, steps)?
        }
    };
    out.finish()?;
    Ok(code)
}

/// Writes steps; a failed one is also said on stderr, and makes the exit 1.
fn write_steps(out: &mut Output, steps: Vec<Step>) -> Result<u8> {
    let failed = steps.iter().any(|s| s.status == StepStatus::Failed);
    for s in steps {
        if s.status == StepStatus::Failed {
            pvedr::msg::say(format!(
                "{} failed: {}",
                s.step,
                s.message.as_deref().unwrap_or("")
            ));
        }
        out.write(&Record::Step(s))?;
    }
    Ok(if pvedr::interrupt::requested() {
        code::INTERRUPTED
    } else if failed {
        code::FAILURE
    } else {
        code::SUCCESS
    })
}

fn list(cli: &Cli, inspect: bool, out: &mut Output) -> Result<u8> {
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

fn show(cli: &Cli, version: &str, out: &mut Output) -> Result<u8> {
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

fn diff(cli: &Cli, a: &str, b: &str, out: &mut Output) -> Result<u8> {
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

fn undelete(cli: &Cli, write: &pvedr::cli::WriteArgs, out: &mut Output) -> Result<u8> {
    let t = one_location(cli)?;
    let (s3, h) = open(&t)?;
    let t0 = Instant::now();
    let top = h
        .first()
        .ok_or_else(|| Error::Refused("the key has no versions".into()))?;
    if !top.delete_marker {
        return Err(Error::Refused(format!(
            "{} is not deleted (its newest entry is a version)",
            t.url()
        )));
    }
    if write.dry_run {
        out.write(&Record::Step(step(
            "undelete",
            &top.version_id,
            StepStatus::Planned,
            "remove this delete marker; the previous version becomes current",
            t0,
        )))?;
        return Ok(code::SUCCESS);
    }
    pvedr::cli::confirm(
        &format!("remove delete marker {} of {}", top.version_id, t.url()),
        write.yes,
    )?;
    s3.delete(&t.key, Some(&top.version_id))?;
    out.write(&Record::Step(step(
        "undelete",
        &top.version_id,
        StepStatus::Changed,
        "delete marker removed",
        t0,
    )))?;
    pvedr::msg::say(format!("to undo: {}", delete_command(&t, None)));
    Ok(code::SUCCESS)
}
