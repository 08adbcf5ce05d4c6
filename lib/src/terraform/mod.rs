//! Terraform: the `backend "s3"` reader, tfvars, state files, and one runner for the
//! commands pvedr runs (`init`, `plan -detailed-exitcode`, `apply -target`,
//! `init -migrate-state`), each bounded by a timeout and killed on it.

pub mod backend;
pub mod state;
pub mod tfvars;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::process::{self, Finished};

/// How a `terraform plan -detailed-exitcode` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanOutcome {
    NoChanges,
    /// Changes pending; how many resources, when the summary line says.
    Changes(Option<u64>),
}

/// Runs Terraform in one directory.
#[derive(Debug, Clone)]
pub struct Terraform {
    pub bin: String,
    pub dir: PathBuf,
    pub timeout: Duration,
}

/// What Terraform printed, reduced to its last meaningful lines (the error, usually).
pub fn last_lines(s: &str) -> String {
    let lines: Vec<&str> = s
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(['│', '╷', '╵']))
        .collect();
    lines[lines.len().saturating_sub(2)..].join(" / ")
}

impl Terraform {
    pub fn new(bin: &str, dir: &Path) -> Terraform {
        Terraform {
            bin: bin.into(),
            dir: dir.into(),
            timeout: Duration::from_secs(600),
        }
    }

    /// Runs `terraform ARGS`; `Ok` with the exit status and the output, `Err` when it
    /// cannot start or times out (then it is killed).
    pub fn run(&self, args: &[&str]) -> Result<(i32, String)> {
        let mut cmd = std::process::Command::new(&self.bin);
        cmd.args(args)
            .current_dir(&self.dir)
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0");
        let what = format!("{} {}", self.bin, args.first().copied().unwrap_or(""));
        match process::run(cmd, self.timeout, 1 << 20)
            .map_err(|e| Error::io(format!("cannot run {} (give --terraform-bin)", self.bin), e))?
        {
            Finished::Exited(out) => Ok((
                out.status,
                format!("{}{}", String::from_utf8_lossy(&out.stdout), out.stderr),
            )),
            Finished::TimedOut => Err(Error::Other(format!(
                "`{what}` in {} did not finish within {}s and was stopped",
                self.dir.display(),
                self.timeout.as_secs()
            ))),
        }
    }

    fn checked(&self, args: &[&str]) -> Result<String> {
        let (code, text) = self.run(args)?;
        if code == 0 {
            Ok(text)
        } else {
            Err(Error::Other(format!(
                "terraform {} failed in {}: {}",
                args.first().copied().unwrap_or(""),
                self.dir.display(),
                last_lines(&text)
            )))
        }
    }

    /// `terraform init -input=false [extra…]`.
    pub fn init(&self, extra: &[&str]) -> Result<String> {
        let mut a = vec!["init", "-input=false", "-no-color"];
        a.extend_from_slice(extra);
        self.checked(&a)
    }

    /// `terraform init -migrate-state -force-copy`: moves the state to the configured backend.
    pub fn init_migrate(&self) -> Result<String> {
        self.init(&["-migrate-state", "-force-copy"])
    }

    /// `terraform plan -detailed-exitcode` (0: no changes, 2: changes, else failed).
    pub fn plan(&self, extra: &[&str]) -> Result<PlanOutcome> {
        let mut a = vec!["plan", "-detailed-exitcode", "-input=false", "-no-color"];
        a.extend_from_slice(extra);
        let (code, text) = self.run(&a)?;
        match code {
            0 => Ok(PlanOutcome::NoChanges),
            2 => Ok(PlanOutcome::Changes(planned_count(&text))),
            _ => Err(Error::Other(format!(
                "terraform plan failed in {}: {}",
                self.dir.display(),
                last_lines(&text)
            ))),
        }
    }

    /// `terraform apply -target=ADDR -auto-approve -input=false`.
    pub fn apply_target(&self, address: &str) -> Result<String> {
        let target = format!("-target={address}");
        self.checked(&[
            "apply",
            &target,
            "-auto-approve",
            "-input=false",
            "-no-color",
        ])
    }
}

/// `Plan: 1 to add, 2 to change, 0 to destroy.` → 3.
fn planned_count(text: &str) -> Option<u64> {
    let line = text.lines().find_map(|l| l.trim().strip_prefix("Plan: "))?;
    let mut total = 0u64;
    for part in line.split(',') {
        let n: u64 = part.trim().split(' ').next()?.parse().ok()?;
        total = total.checked_add(n)?;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_summary() {
        assert_eq!(
            planned_count("x\nPlan: 1 to add, 2 to change, 0 to destroy.\n"),
            Some(3)
        );
        assert_eq!(planned_count("No changes."), None);
        assert_eq!(last_lines("a\n│ x\nb\n\nc\n"), "b / c");
    }
}
