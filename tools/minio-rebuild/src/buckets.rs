//! Steps 4–5: every bucket exists, with versioning enabled and read back, and (with
//! `--noncurrent-days`) pvedr's rule expiring noncurrent versions.

use pvedr::records::StepStatus;
use std::time::Instant;

use pvedr::error::Result;
use pvedr::s3::Bucket;

use crate::ctx::Ctx;
use pvedr::change::step;

pub fn buckets(ctx: &mut Ctx) -> Result<bool> {
    for name in ctx.buckets.clone() {
        let t0 = Instant::now();
        let s = |status: StepStatus, m: String| step("buckets", &name, status, m, t0);
        if ctx.store_unread {
            ctx.missing.push(name.clone());
            ctx.emit(s(
                StepStatus::Planned,
                "would be created if missing (the store is down)".into(),
            ))?;
            continue;
        }
        let c = ctx.client(&name)?;
        let r = match c.exists() {
            Ok(true) => s(StepStatus::Ok, "exists".into()),
            Ok(false) if ctx.dry_run => {
                ctx.missing.push(name.clone());
                s(StepStatus::Planned, "missing: would be created".into())
            }
            Ok(false) => match c.create() {
                Ok(()) => s(StepStatus::Changed, "created".into()),
                Err(e) => s(
                    StepStatus::Failed,
                    format!("{e}; check the credentials' rights (s3:CreateBucket) and the name"),
                ),
            },
            Err(e) => s(
                StepStatus::Failed,
                format!("{e}; check the credentials and the endpoint"),
            ),
        };
        let failed = r.status == StepStatus::Failed;
        ctx.emit(r)?;
        if failed {
            return Ok(false);
        }
    }
    Ok(true)
}

pub fn versioning(ctx: &mut Ctx) -> Result<bool> {
    for name in ctx.buckets.clone() {
        let t0 = Instant::now();
        let r = if ctx.missing.contains(&name) {
            step("versioning", &name, StepStatus::Planned, want(ctx), t0)
        } else {
            let c = ctx.client(&name)?;
            match versioning_one(ctx, &c) {
                Ok((status, m)) => step("versioning", &name, status, m, t0),
                Err(e) => step("versioning", &name, StepStatus::Failed, e, t0),
            }
        };
        let failed = r.status == StepStatus::Failed;
        ctx.emit(r)?;
        if failed {
            return Ok(false);
        }
    }
    Ok(true)
}

fn want(ctx: &Ctx) -> String {
    match ctx.cli.noncurrent_days {
        Some(n) => format!("would enable versioning and expire noncurrent versions after {n} days"),
        None => "would enable versioning".into(),
    }
}

/// The status and message of one bucket; `Err` with the message of a failure.
fn versioning_one(ctx: &Ctx, c: &Bucket) -> std::result::Result<(StepStatus, String), String> {
    let mut changed = false;
    let mut planned = false;
    let now = c.versioning_status().map_err(|e| e.to_string())?;
    if now.as_deref() != Some("Enabled") {
        if ctx.dry_run {
            planned = true;
        } else {
            c.enable_versioning().map_err(|e| e.to_string())?;
            let back = c.versioning_status().map_err(|e| e.to_string())?;
            if back.as_deref() != Some("Enabled") {
                return Err(format!(
                    "versioning reads back as {} after enabling it: this server cannot keep state versions (an old single-disk MinIO in FS mode?); use a server that versions",
                    back.as_deref().unwrap_or("never enabled")
                ));
            }
            changed = true;
        }
    }
    let mut msg = String::from(if planned {
        "would enable versioning"
    } else {
        "versioning Enabled (read back)"
    });
    if let Some(n) = ctx.cli.noncurrent_days {
        match lifecycle(ctx, c, n)? {
            Some(true) => changed = true,
            Some(false) => planned = true,
            None => {}
        }
        msg.push_str(&format!(
            "; noncurrent versions expire after {n} days (current never)"
        ));
    }
    let status = if planned {
        StepStatus::Planned
    } else if changed {
        StepStatus::Changed
    } else {
        StepStatus::Ok
    };
    Ok((status, msg))
}

/// `None`: the rule is there already; `Some(true)`: set now; `Some(false)`: a dry run would.
fn lifecycle(ctx: &Ctx, c: &Bucket, days: i32) -> std::result::Result<Option<bool>, String> {
    let err = |e: pvedr::Error| e.to_string();
    if c.noncurrent_expiration_days().map_err(err)? == Some(days) {
        return Ok(None);
    }
    if ctx.dry_run {
        return Ok(Some(false));
    }
    c.set_noncurrent_expiration(days).map_err(err)?;
    match c.noncurrent_expiration_days().map_err(err)? {
        Some(d) if d == days => Ok(Some(true)),
        other => Err(format!(
            "the lifecycle rule reads back as {other:?} days, not {days}: the server does not keep lifecycle rules"
        )),
    }
}
