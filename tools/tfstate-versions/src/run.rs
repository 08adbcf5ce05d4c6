use std::io::{BufRead, IsTerminal, Write};
use std::time::Instant;

use md5::Digest;
use pvedr::error::{Error, Result, code};
use pvedr::output::Output;
use pvedr::records::{Record, Step, TfstateVersion, rfc3339};
use serde_json::{Map, Value, json};
use sha2::Sha256;

use crate::cli::{Cli, Command, WriteArgs};
use crate::s3::{Entry, S3};
use crate::target::{self, Flags, Target};
use crate::{fallback, state};

fn flags<'a>(cli: &'a Cli, env: Option<&'a str>) -> Flags<'a> {
    Flags {
        bucket: cli.bucket.as_deref(),
        key: cli.key.as_deref(),
        env,
        workspace: cli.workspace.as_deref(),
        backend_config: cli.backend_config.as_deref(),
        endpoint: cli.endpoint.as_deref(),
        region: cli.region.as_deref(),
    }
}

fn one_target(cli: &Cli) -> Result<Target> {
    if cli.env.len() > 1 {
        return Err(Error::usage(
            "several --env: only export takes more than one",
        ));
    }
    target::resolve(&flags(cli, cli.env.first().map(String::as_str)))
}

fn record(t: &Target, e: &Entry) -> TfstateVersion {
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

fn step(name: &str, target: &str, status: &str, msg: impl Into<String>, t0: Instant) -> Step {
    Step::new(name, target, status, msg, Some(t0))
}

fn confirm(what: &str, w: &WriteArgs) -> Result<()> {
    if w.yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::NeedsConfirmation(format!(
            "{what}: no terminal to ask on; rerun with --yes (nothing was written)"
        )));
    }
    eprint!("tfstate-versions: {what}. Proceed? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::io("reading the answer", e))?;
    if matches!(line.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(Error::Refused("not confirmed; nothing was written".into()))
    }
}

fn find<'a>(h: &'a [Entry], v: &str) -> Result<&'a Entry> {
    if v == "latest" {
        return h
            .first()
            .ok_or_else(|| Error::Refused("the key has no versions".into()));
    }
    h.iter()
        .find(|e| e.version_id == v)
        .ok_or_else(|| Error::Refused(format!("no version '{v}' of this key")))
}

/// The undo of a write: remove exactly the version it created.
fn undo_command(t: &Target, new_version: &str) -> String {
    let ep = t
        .endpoint
        .as_deref()
        .map(|e| format!(" --endpoint-url {e}"))
        .unwrap_or_default();
    format!(
        "aws s3api delete-object{ep} --bucket {} --key '{}' --version-id {new_version}",
        t.bucket, t.key
    )
}

pub fn run(cli: Cli) -> Result<u8> {
    let mut out = cli.output.output();
    let code = match &cli.command {
        Command::List { inspect } => list(&cli, *inspect, &mut out)?,
        Command::Show { version } => {
            let t = one_target(&cli)?;
            let s3 = S3::connect(&t)?;
            let h = s3.history()?;
            let e = find(&h, version)?;
            if e.delete_marker {
                return Err(Error::Refused(format!(
                    "{version} is a delete marker: it has no content"
                )));
            }
            let body = s3.get(Some(&e.version_id))?;
            out.raw()
                .write_all(&body)
                .map_err(|e| Error::io("writing to standard output", e))?;
            code::SUCCESS
        }
        Command::Diff { a, b } => {
            let t = one_target(&cli)?;
            let s3 = S3::connect(&t)?;
            let h = s3.history()?;
            let (ea, eb) = (find(&h, a)?, find(&h, b)?);
            let load = |e: &Entry| -> Result<(Map<String, Value>, state::StateInfo)> {
                let bytes = s3.get(Some(&e.version_id))?;
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
            code::SUCCESS
        }
        Command::Restore {
            version,
            force,
            keep_serial,
            dynamodb_table,
            write,
        } => restore(
            &cli,
            version,
            *force,
            *keep_serial,
            dynamodb_table.as_deref(),
            write,
            &mut out,
        )?,
        Command::Undelete { write } => {
            let t = one_target(&cli)?;
            let s3 = S3::connect(&t)?;
            let h = s3.history()?;
            let t0 = Instant::now();
            let top = h
                .first()
                .ok_or_else(|| Error::Refused("the key has no versions".into()))?;
            if !top.delete_marker {
                return Err(Error::Refused(format!(
                    "s3://{}/{} is not deleted (its newest entry is a version)",
                    t.bucket, t.key
                )));
            }
            if write.dry_run {
                out.write(&Record::Step(step(
                    "undelete",
                    &top.version_id,
                    "planned",
                    "remove this delete marker; the previous version becomes current",
                    t0,
                )))?;
            } else {
                confirm(
                    &format!(
                        "remove delete marker {} of s3://{}/{}",
                        top.version_id, t.bucket, t.key
                    ),
                    write,
                )?;
                s3.delete(&t.key, Some(&top.version_id))?;
                out.write(&Record::Step(step(
                    "undelete",
                    &top.version_id,
                    "changed",
                    "delete marker removed",
                    t0,
                )))?;
                let ep = t
                    .endpoint
                    .as_deref()
                    .map(|e| format!(" --endpoint-url {e}"))
                    .unwrap_or_default();
                eprintln!(
                    "tfstate-versions: to undo: aws s3api delete-object{ep} --bucket {} --key '{}'",
                    t.bucket, t.key
                );
            }
            code::SUCCESS
        }
        Command::Export { to } => export(&cli, to, &mut out)?,
        Command::Fallback { dir, terraform_bin } => {
            let mut steps = Vec::new();
            let ok = fallback::fallback(dir, terraform_bin, &mut steps)?;
            for s in steps {
                out.write(&Record::Step(s))?;
            }
            if ok { code::SUCCESS } else { code::FAILURE }
        }
        Command::Return { dir, terraform_bin } => {
            let mut steps = Vec::new();
            let ok = fallback::return_home(dir, terraform_bin, &flags(&cli, None), &mut steps)?;
            for s in steps {
                out.write(&Record::Step(s))?;
            }
            if ok { code::SUCCESS } else { code::FAILURE }
        }
    };
    out.finish()?;
    Ok(code)
}

fn list(cli: &Cli, inspect: bool, out: &mut Output) -> Result<u8> {
    let t = one_target(cli)?;
    let s3 = S3::connect(&t)?;
    let enabled = s3.versioning()?;
    let history = s3.history()?;
    let versioned = enabled.unwrap_or_else(|| history.iter().any(|e| e.version_id != "null"));
    if !versioned {
        eprintln!(
            "tfstate-versions: warning: bucket {} has no versioning enabled: only the current object is there, and an overwritten state cannot be recovered",
            t.bucket
        );
    }
    for e in history {
        let mut r = record(&t, &e);
        if inspect && !e.delete_marker {
            match state::parse(&s3.get(Some(&e.version_id))?) {
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

fn restore(
    cli: &Cli,
    version: &str,
    force: bool,
    keep_serial: bool,
    table: Option<&str>,
    w: &WriteArgs,
    out: &mut Output,
) -> Result<u8> {
    let t = one_target(cli)?;
    let table = table.map(String::from).or(t.dynamodb_table.clone());
    let s3 = S3::connect(&t)?;
    let lock_key = format!("{}.tflock", t.key);
    let mut steps: Vec<Step> = Vec::new();
    let h = s3.history()?;
    // The checks: nothing is written when one says no.
    let t0 = Instant::now();
    let e = find(&h, version)?;
    if e.delete_marker {
        return Err(Error::Refused(format!(
            "{version} is a delete marker; use undelete"
        )));
    }
    let old = s3.get(Some(&e.version_id))?;
    let (old_map, old_info) = state::parse(&old).map_err(|m| {
        Error::Refused(format!(
            "version {version} is not a valid state ({m}); nothing was written"
        ))
    })?;
    steps.push(step(
        "check-version",
        version,
        "ok",
        format!("serial {} lineage {}", old_info.serial, old_info.lineage),
        t0,
    ));
    let t0 = Instant::now();
    let mut max_serial = old_info.serial;
    let mut current_lineage = None;
    for v in h.iter().filter(|v| !v.delete_marker) {
        if let Ok((_, i)) = state::parse(&s3.get(Some(&v.version_id))?) {
            max_serial = max_serial.max(i.serial);
            if current_lineage.is_none() {
                current_lineage = Some(i.lineage);
            }
        }
    }
    match &current_lineage {
        Some(l) if *l != old_info.lineage && !force => {
            return Err(Error::Refused(format!(
                "version {version} has lineage {} but the state's is {l}: it belongs to another state (use --force if you are sure); nothing was written",
                old_info.lineage
            )));
        }
        Some(l) if *l != old_info.lineage => steps.push(step(
            "check-lineage",
            version,
            "ok",
            format!("lineage differs ({l}); --force"),
            t0,
        )),
        _ => steps.push(step(
            "check-lineage",
            version,
            "ok",
            "same lineage as the current state",
            t0,
        )),
    }
    let t0 = Instant::now();
    let lock_held = s3.exists(&lock_key)?;
    if lock_held && !force {
        return Err(Error::Refused(format!(
            "s3://{}/{lock_key} exists: someone holds the Terraform lock (terraform force-unlock if it is stale); nothing was written",
            t.bucket
        )));
    }
    steps.push(step(
        "check-lock",
        &lock_key,
        "ok",
        if lock_held {
            "held by someone else; --force: it is left alone"
        } else {
            "not locked"
        },
        t0,
    ));
    let top = h.first();
    let versioned = s3
        .versioning()?
        .unwrap_or_else(|| h.iter().any(|e| e.version_id != "null"));
    let new_body = if keep_serial {
        old.clone()
    } else {
        state::with_serial(old_map, max_serial + 1)
    };
    let t0 = Instant::now();
    let safety = match (top, versioned) {
        (Some(top), true) => format!("current entry {} stays in the history", top.version_id),
        (Some(_), false) => format!(
            "the current object is copied to {}.pvedr-{}",
            t.key,
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
        ),
        (None, _) => "no current object".into(),
    };
    if w.dry_run {
        steps.push(step("record-current", &t.key, "planned", safety, t0));
        steps.push(step(
            "take-lock",
            &lock_key,
            if lock_held { "skipped" } else { "planned" },
            "conditional write (If-None-Match: *), as Terraform does",
            t0,
        ));
        steps.push(step(
            "write",
            &t.key,
            "planned",
            format!(
                "version {version} as a new current version, serial {}",
                if keep_serial {
                    old_info.serial
                } else {
                    max_serial + 1
                }
            ),
            t0,
        ));
        steps.push(step(
            "verify",
            &t.key,
            "planned",
            "read back and compare",
            t0,
        ));
        if let Some(tb) = &table {
            steps.push(step(
                "digest",
                tb,
                "planned",
                format!(
                    "set Digest of {}/{}-md5 to the MD5 of the new content",
                    t.bucket, t.key
                ),
                t0,
            ));
        }
        for s in steps {
            out.write(&Record::Step(s))?;
        }
        return Ok(code::SUCCESS);
    }
    confirm(
        &format!(
            "restore version {version} of s3://{}/{} as the current state",
            t.bucket, t.key
        ),
        w,
    )?;
    if let (Some(_), false) = (top, versioned) {
        let aside = format!(
            "{}.pvedr-{}",
            t.key,
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
        );
        s3.copy_to(&aside)?;
    }
    steps.push(step("record-current", &t.key, "ok", safety, t0));
    let t0 = Instant::now();
    let mut own_lock = false;
    if !lock_held {
        let info = json!({"ID": format!("pvedr-{}-{}", std::process::id(), chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)),
            "Operation": "OperationTypeInvalid", "Info": "tfstate-versions restore", "Who": format!("tfstate-versions@{}", std::env::var("HOSTNAME").unwrap_or_default()),
            "Version": "", "Created": chrono::Utc::now().to_rfc3339(), "Path": format!("{}/{}", t.bucket, t.key)});
        match s3.put(
            &lock_key,
            serde_json::to_vec(&info).unwrap_or_default(),
            true,
        )? {
            Some(_) => own_lock = true,
            None => {
                for s in steps {
                    out.write(&Record::Step(s))?;
                }
                return Err(Error::Refused(
                    "someone took the Terraform lock just now; nothing was written".into(),
                ));
            }
        }
        steps.push(step("take-lock", &lock_key, "changed", "lock taken", t0));
    }
    let t0 = Instant::now();
    let written = s3.put(&t.key, new_body.clone(), false);
    let result = written.and_then(|v| {
        let back = s3.get(None)?;
        Ok((v, back))
    });
    if own_lock {
        // Only our own lock is ever deleted.
        let _ = s3.delete(&lock_key, None);
    }
    let (new_version, back) = result?;
    let new_version = new_version.unwrap_or_else(|| "null".into());
    steps.push(step(
        "write",
        &t.key,
        "changed",
        format!("new current version {new_version}"),
        t0,
    ));
    let t0 = Instant::now();
    let same = back == new_body;
    steps.push(step(
        "verify",
        &t.key,
        if same { "ok" } else { "failed" },
        if same {
            format!("read back equal (md5 {:x})", md5::Md5::digest(&back))
        } else {
            "read back differs".into()
        },
        t0,
    ));
    let mut digest_failed = false;
    if let Some(tb) = &table {
        let t0 = Instant::now();
        let digest = format!("{:x}", md5::Md5::digest(&new_body));
        let ep = t.dynamodb_endpoint.clone().or(t.endpoint.clone());
        match s3.put_digest(tb, ep.as_deref(), &digest) {
            Ok(()) => steps.push(step(
                "digest",
                tb,
                "changed",
                format!("{}/{}-md5 = {digest}", t.bucket, t.key),
                t0,
            )),
            Err(e) => {
                digest_failed = true;
                steps.push(step(
                    "digest",
                    tb,
                    "failed",
                    format!("{e}; Terraform refuses the state until Digest = {digest}"),
                    t0,
                ));
            }
        }
    }
    if own_lock {
        steps.push(step(
            "release-lock",
            &lock_key,
            "changed",
            "lock released",
            t0,
        ));
    }
    let undo = undo_command(&t, &new_version);
    let mut last = step("undo", &t.key, "ok", undo.clone(), t0);
    last.extra
        .insert("command".into(), Value::from(undo.clone()));
    steps.push(last);
    eprintln!("tfstate-versions: restored {version} as {new_version}. To undo: {undo}");
    for s in steps {
        out.write(&Record::Step(s))?;
    }
    Ok(if same && !digest_failed {
        code::SUCCESS
    } else {
        code::FAILURE
    })
}

fn export(cli: &Cli, to: &std::path::Path, out: &mut Output) -> Result<u8> {
    std::fs::create_dir_all(to).map_err(|e| Error::io(format!("creating {}", to.display()), e))?;
    let envs: Vec<Option<&str>> = if cli.env.is_empty() {
        vec![None]
    } else {
        cli.env.iter().map(|e| Some(e.as_str())).collect()
    };
    let (mut ok, mut failed) = (0, 0);
    for env in envs {
        let t0 = Instant::now();
        let r = (|| -> Result<Step> {
            let t = target::resolve(&flags(cli, env))?;
            let s3 = S3::connect(&t)?;
            let h = s3.history()?;
            let top = h.first().filter(|e| !e.delete_marker).ok_or_else(|| {
                Error::Refused(format!("s3://{}/{} has no current state", t.bucket, t.key))
            })?;
            let body = s3.get(Some(&top.version_id))?;
            let name = env.map(String::from).unwrap_or_else(|| t.bucket.clone());
            let file = to.join(format!("{name}.tfstate"));
            let sha: String = Sha256::digest(&body)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let tmp = to.join(format!(".{name}.tfstate.{}.tmp", std::process::id()));
            std::fs::write(&tmp, &body)
                .map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
            std::fs::rename(&tmp, &file)
                .map_err(|e| Error::io(format!("renaming to {}", file.display()), e))?;
            std::fs::write(
                to.join(format!("{name}.tfstate.sha256")),
                format!("{sha}  {name}.tfstate\n"),
            )
            .map_err(|e| Error::io("writing sha256", e))?;
            std::fs::write(
                to.join(format!("{name}.tfstate.version")),
                format!("{}\n", top.version_id),
            )
            .map_err(|e| Error::io("writing version", e))?;
            let mut s = step(
                "export",
                &format!("s3://{}/{}", t.bucket, t.key),
                "changed",
                format!("{} ({} bytes)", file.display(), body.len()),
                t0,
            );
            s.extra.insert("sha256".into(), Value::from(sha));
            s.extra
                .insert("version_id".into(), Value::from(top.version_id.clone()));
            s.extra
                .insert("path".into(), Value::from(file.display().to_string()));
            Ok(s)
        })();
        match r {
            Ok(s) => {
                ok += 1;
                out.write(&Record::Step(s))?;
            }
            Err(e) => {
                failed += 1;
                eprintln!("tfstate-versions: export {}: {e}", env.unwrap_or("state"));
                out.write(&Record::Step(step(
                    "export",
                    env.unwrap_or("state"),
                    "failed",
                    e.to_string(),
                    t0,
                )))?;
            }
        }
    }
    Ok(match (ok, failed) {
        (_, 0) => code::SUCCESS,
        (0, _) => code::FAILURE,
        _ => code::PARTIAL,
    })
}
