//! Fallback to a local backend when the S3 server is down, and the return. The user's files
//! are never edited: an override file switches the backend, and removing it switches back.
//! Every way out of a failed step puts the directory back as it was.

use pvedr::records::StepStatus;
use std::path::Path;
use std::time::Instant;

use pvedr::change::Approval;
use pvedr::cli::WriteArgs;
use pvedr::error::{Error, Result};
use pvedr::records::Step;
use pvedr::s3::{Bucket, MAX_IN_MEMORY};
use pvedr::terraform::backend::{FALLBACK_OVERRIDE, read_backend};
use pvedr::terraform::{PlanOutcome, Terraform, state};

use crate::cli::Cli;
use crate::location::StateLocation;

const OVERRIDE_TEXT: &str = "# Written by `tfstate-versions fallback`: the S3 backend was unavailable.\n# Remove it with `tfstate-versions return --dir .` (which migrates the state back).\nterraform {\n  backend \"local\" {\n    path = \"terraform.tfstate\"\n  }\n}\n";

fn step(
    name: &str,
    target: &Path,
    status: StepStatus,
    msg: impl Into<String>,
    t0: Instant,
) -> Step {
    pvedr::change::step(name, &target.display().to_string(), status, msg, t0)
}

/// One failed step: the record to write.
fn failed(name: &str, dir: &Path, e: impl std::fmt::Display, t0: Instant) -> Step {
    step(name, dir, StepStatus::Failed, e.to_string(), t0)
}

fn changed(name: &str, dir: &Path, what: impl Into<String>, t0: Instant) -> Step {
    step(name, dir, StepStatus::Changed, what, t0)
}

/// Why a Terraform step failed: its error, or that it was stopped and what it may have left.
fn tf_failed(e: &Error, tf: &Terraform, then: &str) -> String {
    if matches!(e, Error::Interrupted) {
        format!(
            "interrupted: terraform was stopped; {then}; {}",
            tf.stopped_hint()
        )
    } else {
        format!("{e}; {then}")
    }
}

/// Why `dir` cannot go into fallback, read-only: its backend cannot be read, or it is in
/// fallback already.
pub fn fallback_refusal(dir: &Path) -> Option<String> {
    if let Err(e) = read_backend(dir) {
        return Some(e.to_string());
    }
    let ov = dir.join(FALLBACK_OVERRIDE);
    std::fs::symlink_metadata(&ov).is_ok().then(|| {
        format!(
            "{} is already in fallback ({} exists)",
            dir.display(),
            ov.display()
        )
    })
}

/// Why `dir` cannot return, read-only: it is not in fallback.
pub fn return_refusal(dir: &Path) -> Option<String> {
    (!dir.join(FALLBACK_OVERRIDE).exists()).then(|| {
        format!(
            "{} is not in fallback (no {FALLBACK_OVERRIDE})",
            dir.display()
        )
    })
}

/// The commands `fallback` runs, in order, as the plan shows them (step, what it does).
pub fn fallback_plan(tf: &Terraform) -> Vec<(&'static str, String)> {
    let (d, tf_bin) = (quoted_dir(tf), pvedr::shell::quote(&tf.bin));
    vec![
        (
            "override",
            format!(
                "write {d}/{FALLBACK_OVERRIDE} (a backend \"local\" block; your files are not edited)"
            ),
        ),
        (
            "migrate",
            format!(
                "{tf_bin} -chdir={d} init -migrate-state -force-copy (the state copied from S3 to terraform.tfstate)"
            ),
        ),
        (
            "verify",
            format!("{tf_bin} -chdir={d} plan -lock=false (proves the local state works)"),
        ),
    ]
}

/// The commands `return` runs, in order, as the plan shows them (step, what it does).
pub fn return_plan(tf: &Terraform) -> Vec<(&'static str, String)> {
    let (d, tf_bin) = (quoted_dir(tf), pvedr::shell::quote(&tf.bin));
    vec![
        (
            "check-s3",
            "check that the backend's S3 bucket answers (else stay in fallback)".to_string(),
        ),
        (
            "migrate",
            format!(
                "move {d}/{FALLBACK_OVERRIDE} aside, then {tf_bin} -chdir={d} init -migrate-state -force-copy (the local state copied back to S3)"
            ),
        ),
        (
            "verify",
            "the S3 state's serial is at least the local one's, and S3 has a new version"
                .to_string(),
        ),
        (
            "archive",
            format!(
                "move the local state files to {d}/.pvedr-fallback-<time>/ (kept, not deleted)"
            ),
        ),
    ]
}

/// The plan on stderr, then the change contract's gate. A `--dry-run` writes the plan as
/// `planned` step records and returns `None` (only the read-only check ran). A directory
/// that cannot go (already in fallback, not in fallback) is said; the run itself then
/// writes the failed step, as it always did.
pub fn approve(
    what: &str,
    tf: &Terraform,
    plan: Vec<(&'static str, String)>,
    refusal: Option<String>,
    write: &WriteArgs,
) -> Result<Option<Vec<Step>>> {
    let dir = tf.dir.as_path();
    let t0 = Instant::now();
    pvedr::msg::say(format!(
        "{what} of {}:",
        pvedr::msg::visible(&dir.display().to_string())
    ));
    for (i, (_, line)) in plan.iter().enumerate() {
        pvedr::msg::line(format_args!("  {}. {}", i + 1, pvedr::msg::visible(line)));
    }
    if let Some(why) = &refusal {
        pvedr::msg::say(format!("cannot {what}: {}", pvedr::msg::visible(why)));
        if write.dry_run {
            return Err(Error::Refused(format!("{why}; nothing was changed")));
        }
        return Ok(None);
    }
    if pvedr::change::approve(write, &format!("{what} of {}", dir.display()))? == Approval::Go {
        return Ok(None);
    }
    let planned = plan
        .into_iter()
        .map(|(name, line)| step(name, dir, StepStatus::Planned, line, t0));
    Ok(Some(planned.collect()))
}

fn quoted_dir(tf: &Terraform) -> String {
    pvedr::shell::quote(&tf.dir.display().to_string())
}

pub fn fallback(tf: &Terraform) -> Vec<Step> {
    let dir = tf.dir.as_path();
    let mut steps = Vec::new();
    let t0 = Instant::now();
    if let Some(why) = fallback_refusal(dir) {
        steps.push(failed("override", dir, why, t0));
        return steps;
    }
    let ov = dir.join(FALLBACK_OVERRIDE);
    if let Err(e) = pvedr::fs::write_atomic(&ov, OVERRIDE_TEXT.as_bytes()) {
        steps.push(failed("override", dir, e, t0));
        return steps;
    }
    steps.push(changed(
        "override",
        dir,
        format!("wrote {FALLBACK_OVERRIDE} (local backend)"),
        t0,
    ));
    let t0 = Instant::now();
    if let Err(e) = tf.init_migrate() {
        let _ = std::fs::remove_file(&ov);
        let m = tf_failed(
            &e,
            tf,
            "the override was removed, the S3 backend is configured again",
        );
        steps.push(failed("migrate", dir, m, t0));
        return steps;
    }
    steps.push(changed(
        "migrate",
        dir,
        "state copied from S3 to terraform.tfstate",
        t0,
    ));
    let t0 = Instant::now();
    steps.push(match tf.plan(&["-lock=false"]) {
        Ok(PlanOutcome::NoChanges) => step(
            "verify",
            dir,
            StepStatus::Ok,
            "terraform plan works on the local state: no changes",
            t0,
        ),
        Ok(PlanOutcome::Changes(_)) => step(
            "verify",
            dir,
            StepStatus::Ok,
            "terraform plan works on the local state (it shows pending changes)",
            t0,
        ),
        Err(e) => failed(
            "verify",
            dir,
            tf_failed(&e, tf, "the state is local now"),
            t0,
        ),
    });
    pvedr::msg::say(format!(
        "{} IS NOW IN FALLBACK: its state is local ({}). When S3 is back: tfstate-versions return --dir {}",
        dir.display(),
        dir.join("terraform.tfstate").display(),
        pvedr::shell::quote(&dir.display().to_string())
    ));
    steps
}

fn serial_of(bytes: &[u8]) -> Option<u64> {
    state::parse(bytes).ok().map(|(_, i)| i.serial)
}

pub fn return_home(tf: &Terraform, cli: &Cli) -> Vec<Step> {
    let dir = tf.dir.as_path();
    let mut steps = Vec::new();
    let t0 = Instant::now();
    let ov = dir.join(FALLBACK_OVERRIDE);
    if let Some(why) = return_refusal(dir) {
        steps.push(failed("check-s3", dir, why, t0));
        return steps;
    }
    let local_serial = std::fs::read(dir.join("terraform.tfstate"))
        .ok()
        .and_then(|b| serial_of(&b));
    // S3 must be healthy before anything moves.
    let mut args = cli.s3.clone();
    args.backend_config = Some(dir.to_path_buf());
    let checked = StateLocation::resolve(&args, None, cli.key.as_deref(), cli.workspace.as_deref())
        .and_then(|t| {
            let s3 = Bucket::connect(&t.endpoint, &t.bucket)?;
            s3.head()?;
            Ok((t, s3))
        });
    let (t, s3) = match checked {
        Ok(v) => v,
        Err(e) => {
            steps.push(failed(
                "check-s3",
                dir,
                format!("S3 is not healthy: {e}; staying in fallback"),
                t0,
            ));
            return steps;
        }
    };
    let before = s3.versions(&t.key, true).map(|h| h.len()).unwrap_or(0);
    steps.push(step(
        "check-s3",
        dir,
        StepStatus::Ok,
        format!("bucket {} answers", t.bucket),
        t0,
    ));
    let t0 = Instant::now();
    let kept = dir.join(format!(".{FALLBACK_OVERRIDE}.returned"));
    if let Err(e) = std::fs::rename(&ov, &kept) {
        steps.push(failed(
            "migrate",
            dir,
            Error::io(format!("moving {}", ov.display()), e),
            t0,
        ));
        return steps;
    }
    if let Err(e) = tf.init_migrate() {
        let _ = std::fs::rename(&kept, &ov);
        steps.push(failed(
            "migrate",
            dir,
            tf_failed(&e, tf, "still in fallback"),
            t0,
        ));
        return steps;
    }
    let _ = std::fs::remove_file(&kept);
    steps.push(changed("migrate", dir, "state copied back to S3", t0));
    let t0 = Instant::now();
    let remote = s3
        .get(&t.key, None, MAX_IN_MEMORY)
        .ok()
        .and_then(|b| serial_of(&b));
    let after = s3.versions(&t.key, true).map(|h| h.len()).unwrap_or(0);
    let serial_ok = match (remote, local_serial) {
        (Some(r), Some(l)) => r >= l,
        (Some(_), None) => true,
        _ => false,
    };
    let show = |s: Option<u64>| s.map_or("none".to_string(), |v| v.to_string());
    let ok = serial_ok && after >= before;
    steps.push(step(
        "verify",
        dir,
        if ok {
            StepStatus::Ok
        } else {
            StepStatus::Failed
        },
        format!(
            "S3 serial {} vs local {}; versions {before} → {after}",
            show(remote),
            show(local_serial)
        ),
        t0,
    ));
    if ok {
        steps.push(archive_leftovers(dir));
    } else {
        steps.push(step(
            "archive",
            dir,
            StepStatus::Skipped,
            "the local state stays where it is until S3 holds it (verification failed)",
            Instant::now(),
        ));
    }
    steps
}

/// Leftover local state files go to an archive directory, not away.
fn archive_leftovers(dir: &Path) -> Step {
    let t0 = Instant::now();
    let archive = dir.join(format!(
        ".pvedr-fallback-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
    ));
    let mut moved = Vec::new();
    for name in [
        "terraform.tfstate",
        "terraform.tfstate.backup",
        "terraform.tfstate.d",
    ] {
        let p = dir.join(name);
        if !p.exists() {
            continue;
        }
        let r = std::fs::create_dir_all(&archive)
            .and_then(|()| std::fs::rename(&p, archive.join(name)));
        if let Err(e) = r {
            return failed(
                "archive",
                dir,
                Error::io(format!("archiving {}", p.display()), e),
                t0,
            );
        }
        moved.push(name);
    }
    step(
        "archive",
        dir,
        if moved.is_empty() {
            StepStatus::Skipped
        } else {
            StepStatus::Changed
        },
        format!("moved {} to {}", moved.join(", "), archive.display()),
        t0,
    )
}
