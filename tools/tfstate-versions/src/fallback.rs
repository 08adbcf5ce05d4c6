//! Fallback to a local backend when the S3 server is down, and the return. The user's files
//! are never edited: an override file switches the backend, and removing it switches back.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use pvedr::error::{Error, Result};
use pvedr::records::Step;

use crate::s3::S3;
use crate::state;
use crate::target::{self, Flags};

pub const OVERRIDE: &str = "pvedr_fallback_override.tf";
const OVERRIDE_TEXT: &str = "# Written by `tfstate-versions fallback`: the S3 backend was unavailable.\n# Remove it with `tfstate-versions return --dir .` (which migrates the state back).\nterraform {\n  backend \"local\" {\n    path = \"terraform.tfstate\"\n  }\n}\n";

fn step(name: &str, target: &Path, status: &str, msg: impl Into<String>, t0: Instant) -> Step {
    Step::new(name, target.display().to_string(), status, msg, Some(t0))
}

fn terraform(bin: &str, dir: &Path, args: &[&str]) -> Result<(i32, String)> {
    let out = Command::new(bin)
        .args(args)
        .current_dir(dir)
        .env("TF_IN_AUTOMATION", "1")
        .output()
        .map_err(|e| Error::io(format!("cannot run {bin} (give --terraform-bin)"), e))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.code().unwrap_or(-1), text))
}

fn last_lines(s: &str) -> String {
    let lines: Vec<&str> = s
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with('│') && !l.starts_with('╷') && !l.starts_with('╵')
        })
        .collect();
    lines
        .iter()
        .rev()
        .take(2)
        .rev()
        .copied()
        .collect::<Vec<_>>()
        .join(" / ")
}

pub fn fallback(dir: &Path, bin: &str, steps: &mut Vec<Step>) -> Result<bool> {
    let t0 = Instant::now();
    target::read_backend(dir)?;
    let ov = dir.join(OVERRIDE);
    if ov.exists() {
        return Err(Error::Refused(format!(
            "{} is already in fallback ({} exists)",
            dir.display(),
            ov.display()
        )));
    }
    std::fs::write(&ov, OVERRIDE_TEXT)
        .map_err(|e| Error::io(format!("writing {}", ov.display()), e))?;
    steps.push(step(
        "override",
        dir,
        "changed",
        format!("wrote {OVERRIDE} (local backend)"),
        t0,
    ));
    let t0 = Instant::now();
    let (code, text) = terraform(
        bin,
        dir,
        &[
            "init",
            "-migrate-state",
            "-force-copy",
            "-input=false",
            "-no-color",
        ],
    )?;
    if code != 0 {
        let _ = std::fs::remove_file(&ov);
        steps.push(step(
            "migrate",
            dir,
            "failed",
            format!(
                "terraform init failed ({}); the override was removed, nothing changed",
                last_lines(&text)
            ),
            t0,
        ));
        return Ok(false);
    }
    steps.push(step(
        "migrate",
        dir,
        "changed",
        "state copied from S3 to terraform.tfstate",
        t0,
    ));
    let t0 = Instant::now();
    let (code, text) = terraform(
        bin,
        dir,
        &[
            "plan",
            "-detailed-exitcode",
            "-input=false",
            "-no-color",
            "-lock=false",
        ],
    )?;
    let ok = code == 0 || code == 2;
    steps.push(step(
        "verify",
        dir,
        if ok { "ok" } else { "failed" },
        match code {
            0 => "terraform plan works on the local state: no changes".to_string(),
            2 => "terraform plan works on the local state (it shows pending changes)".to_string(),
            _ => format!("terraform plan failed: {}", last_lines(&text)),
        },
        t0,
    ));
    eprintln!(
        "tfstate-versions: {} IS NOW IN FALLBACK: its state is local ({}). When S3 is back: tfstate-versions return --dir {}",
        dir.display(),
        dir.join("terraform.tfstate").display(),
        dir.display()
    );
    Ok(ok)
}

pub fn return_home(dir: &Path, bin: &str, f: &Flags, steps: &mut Vec<Step>) -> Result<bool> {
    let ov = dir.join(OVERRIDE);
    if !ov.exists() {
        return Err(Error::Refused(format!(
            "{} is not in fallback (no {OVERRIDE})",
            dir.display()
        )));
    }
    let local = dir.join("terraform.tfstate");
    let local_serial = std::fs::read(&local)
        .ok()
        .and_then(|b| state::parse(&b).ok())
        .map(|(_, i)| i.serial);
    // S3 must be healthy before anything moves.
    let t0 = Instant::now();
    let backend_flags = Flags {
        backend_config: Some(dir),
        ..*f
    };
    let tgt = target::resolve(&backend_flags)?;
    let s3 = S3::connect(&tgt)?;
    if let Err(e) = s3.head_bucket() {
        steps.push(step(
            "check-s3",
            dir,
            "failed",
            format!("S3 is not healthy: {e}; staying in fallback"),
            t0,
        ));
        return Ok(false);
    }
    let before = s3.history().map(|h| h.len()).unwrap_or(0);
    steps.push(step(
        "check-s3",
        dir,
        "ok",
        format!("bucket {} answers", tgt.bucket),
        t0,
    ));
    let t0 = Instant::now();
    let kept = dir.join(format!(".{OVERRIDE}.returned"));
    std::fs::rename(&ov, &kept).map_err(|e| Error::io(format!("moving {}", ov.display()), e))?;
    let (code, text) = terraform(
        bin,
        dir,
        &[
            "init",
            "-migrate-state",
            "-force-copy",
            "-input=false",
            "-no-color",
        ],
    )?;
    if code != 0 {
        let _ = std::fs::rename(&kept, &ov);
        steps.push(step(
            "migrate",
            dir,
            "failed",
            format!(
                "terraform init failed ({}); still in fallback",
                last_lines(&text)
            ),
            t0,
        ));
        return Ok(false);
    }
    let _ = std::fs::remove_file(&kept);
    steps.push(step(
        "migrate",
        dir,
        "changed",
        "state copied back to S3",
        t0,
    ));
    let t0 = Instant::now();
    let remote = s3
        .get(None)
        .ok()
        .and_then(|b| state::parse(&b).ok())
        .map(|(_, i)| i.serial);
    let after = s3.history().map(|h| h.len()).unwrap_or(0);
    let ok = match (remote, local_serial) {
        (Some(r), Some(l)) => r >= l,
        (Some(_), None) => true,
        _ => false,
    };
    steps.push(step(
        "verify",
        dir,
        if ok && after >= before {
            "ok"
        } else {
            "failed"
        },
        format!(
            "S3 serial {:?} vs local {:?}; versions {before} → {after}",
            remote, local_serial
        ),
        t0,
    ));
    // Leftover local state files go to an archive directory, not away.
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
        if p.exists() {
            std::fs::create_dir_all(&archive)
                .map_err(|e| Error::io(format!("creating {}", archive.display()), e))?;
            std::fs::rename(&p, archive.join(name))
                .map_err(|e| Error::io(format!("archiving {}", p.display()), e))?;
            moved.push(name);
        }
    }
    steps.push(step(
        "archive",
        dir,
        if moved.is_empty() {
            "skipped"
        } else {
            "changed"
        },
        format!("moved {} to {}", moved.join(", "), archive.display()),
        t0,
    ));
    Ok(ok)
}
