//! Steps 1–3: is the store healthy; if not, redeploy it with Terraform (`--terraform-dir`)
//! and wait for it, with a growing delay, until `--wait` runs out.

use pvedr::records::StepStatus;
use std::time::{Duration, Instant};

use pvedr::error::{Error, Result};
use pvedr::retry::Retry;
use pvedr::s3::health::{self, Health};
use pvedr::terraform::{Terraform, last_lines};

use crate::ctx::Ctx;
use pvedr::change::step;

/// The delays between health checks: 0.5 s doubling up to 10 s.
fn backoff() -> Retry {
    Retry {
        tries: u32::MAX,
        delay: Duration::from_millis(500),
        factor: 2,
        max_delay: Duration::from_secs(10),
    }
}

fn check(ctx: &Ctx) -> Result<Health> {
    // Any of the run's buckets serves as the client; ListBuckets is not bound to it.
    let client = ctx.client(&ctx.buckets[0])?;
    Ok(health::check(&ctx.endpoint, ctx.cli.minio, &client))
}

/// health, then reprovision and wait when it is unhealthy.
pub fn bring_up(ctx: &mut Ctx) -> Result<bool> {
    let t0 = Instant::now();
    let target = ctx.endpoint_text();
    let h = check(ctx)?;
    if h.healthy {
        ctx.emit(step("health", &target, StepStatus::Ok, &h.message, t0))?;
        if let Some(d) = &ctx.cli.terraform.terraform_dir {
            let d = d.display().to_string();
            let s = step(
                "reprovision",
                &d,
                StepStatus::Skipped,
                "the store is healthy",
                t0,
            );
            ctx.emit(s)?;
        }
        return Ok(true);
    }
    if h.refused {
        ctx.emit(step("health", &target, StepStatus::Failed, refused(&h), t0))?;
        return Ok(false);
    }
    let why = format!("unhealthy: {}", h.message);
    ctx.emit(step("health", &target, StepStatus::Skipped, why, t0))?;
    if ctx.cli.terraform.terraform_dir.is_some() && !reprovision(ctx)? {
        return Ok(false);
    }
    wait(ctx, &target)
}

/// The message of a server that answers but refuses the credentials.
fn refused(h: &Health) -> String {
    format!(
        "{}: the server answers but refuses these credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) to a key of this server",
        h.message
    )
}

/// Polls health until it is good or `--wait` passes.
fn wait(ctx: &mut Ctx, target: &str) -> Result<bool> {
    let t0 = Instant::now();
    if ctx.dry_run {
        ctx.store_unread = true;
        let m = format!(
            "would wait up to {} for the store (dry run: not waiting)",
            pvedr::time::format_duration(ctx.wait.as_secs())
        );
        ctx.emit(step("wait", target, StepStatus::Planned, m, t0))?;
        return Ok(true);
    }
    let deadline = t0 + ctx.wait;
    let mut tries = 0u32;
    let mut last;
    loop {
        tries += 1;
        last = check(ctx)?;
        if last.healthy {
            let m = format!(
                "healthy after {:.1}s ({tries} checks): {}",
                t0.elapsed().as_secs_f64(),
                last.message
            );
            ctx.emit(step("wait", target, StepStatus::Ok, m, t0))?;
            return Ok(true);
        }
        if last.refused {
            ctx.emit(step("wait", target, StepStatus::Failed, refused(&last), t0))?;
            return Ok(false);
        }
        let now = Instant::now();
        if now >= deadline || pvedr::interrupt::requested() {
            break;
        }
        let d = backoff().delay_after(tries).min(deadline - now);
        pvedr::msg::say(format!(
            "waiting for {target}: {}; next check in {:.1}s, {}s left",
            pvedr::msg::one_line(&last.message),
            d.as_secs_f64(),
            (deadline - now).as_secs()
        ));
        pvedr::interrupt::sleep(d);
    }
    if pvedr::interrupt::requested() {
        let m = format!(
            "interrupted after {}s of waiting; nothing was changed",
            t0.elapsed().as_secs()
        );
        ctx.emit(step("wait", target, StepStatus::Failed, m, t0))?;
        return Ok(false);
    }
    let m = format!(
        "the store at {target} is unreachable or unhealthy after {}s and {tries} checks (last: {}); tried {}. Bring the server back (or give --terraform-dir to redeploy it) and run again, or wait longer with --wait",
        t0.elapsed().as_secs(),
        last.message,
        if last.minio {
            "MinIO's /minio/health/live and /minio/health/ready"
        } else {
            "/minio/health/live, then S3 ListBuckets"
        }
    );
    ctx.emit(step("wait", target, StepStatus::Failed, m, t0))?;
    Ok(false)
}

/// The record of a Terraform command that failed or was stopped.
pub fn tf_failed(e: &Error, tf: &Terraform, then: &str) -> String {
    if matches!(e, Error::Interrupted) {
        format!("interrupted: terraform was stopped; {}", tf.stopped_hint())
    } else {
        format!("{e}; {then}")
    }
}

/// `terraform init`, `plan -target`, then `apply -target` (not in a dry run).
fn reprovision(ctx: &mut Ctx) -> Result<bool> {
    let t0 = Instant::now();
    let Some(dir) = ctx.cli.terraform.terraform_dir.clone() else {
        return Ok(true);
    };
    let target = dir.display().to_string();
    let module = ctx.cli.terraform.module.clone();
    let tf = ctx.terraform(&dir);
    let tgt = format!("-target={module}");
    let planned = tf.init(&[]).and_then(|_| {
        tf.run(&[
            "plan",
            "-detailed-exitcode",
            "-input=false",
            "-no-color",
            &tgt,
        ])
    });
    let (code, text) = match planned {
        Ok(v) => v,
        Err(e) => {
            let m = tf_failed(
                &e,
                &tf,
                "fix the directory, or bring the store back by hand",
            );
            ctx.emit(step("reprovision", &target, StepStatus::Failed, m, t0))?;
            return Ok(false);
        }
    };
    match code {
        0 => {
            let m = format!(
                "terraform plan shows no changes for {module}: Terraform believes the server exists; if it is gone, run `terraform -chdir={} apply -replace=<its resource>`",
                pvedr::shell::quote(&target)
            );
            ctx.emit(step("reprovision", &target, StepStatus::Ok, m, t0))?;
            Ok(true)
        }
        2 if ctx.dry_run => {
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                pvedr::msg::say(format!("plan: {}", pvedr::msg::one_line(line)));
            }
            let m = format!("{}; not applied (--dry-run)", plan_line(&text));
            ctx.emit(step("reprovision", &target, StepStatus::Planned, m, t0))?;
            Ok(true)
        }
        2 => apply(ctx, &tf, &target, &module, t0),
        _ => {
            let m = format!("terraform plan failed: {}", last_lines(&text));
            ctx.emit(step("reprovision", &target, StepStatus::Failed, m, t0))?;
            Ok(false)
        }
    }
}

fn apply(ctx: &mut Ctx, tf: &Terraform, target: &str, module: &str, t0: Instant) -> Result<bool> {
    pvedr::msg::say(format!("applying {module} in {target}"));
    match tf.apply_target(module) {
        Ok(_) => {
            let m = format!("terraform apply -target={module}: applied");
            ctx.emit(step("reprovision", target, StepStatus::Changed, m, t0))?;
            Ok(true)
        }
        Err(e) => {
            let m = tf_failed(&e, tf, "nothing else was attempted: fix and run again");
            ctx.emit(step("reprovision", target, StepStatus::Failed, m, t0))?;
            Ok(false)
        }
    }
}

/// `Plan: 1 to add, 0 to change, 0 to destroy.`, or a generic phrase.
fn plan_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| l.starts_with("Plan: "))
        .map(String::from)
        .unwrap_or_else(|| "terraform plan shows changes".into())
}
