//! Terraform: the `backend "s3"` reader, tfvars, state files, and one runner for the
//! commands pvedr runs (`init`, `plan -detailed-exitcode`, `apply -target`,
//! `init -migrate-state`), each bounded by a timeout. A Terraform that must stop (its
//! timeout passed, or the tool was interrupted) is asked to, as at a terminal: SIGINT to
//! its process group (Terraform then stops at a safe point and releases its lock), SIGTERM
//! after [`GRACE`], SIGKILL after [`GRACE`] more; it never outlives the tool.

pub mod backend;
pub mod state;
pub mod tfvars;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::process::{self, Stopped};

/// The default bound of one Terraform command.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// How long Terraform has to stop after SIGINT (then SIGTERM, and as long again to SIGKILL).
pub const GRACE: Duration = Duration::from_secs(10);

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
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// With another bound on each command.
    pub fn with_timeout(mut self, timeout: Duration) -> Terraform {
        self.timeout = timeout;
        self
    }

    /// What a stopped Terraform may have left in this directory, and how to release it.
    pub fn stopped_hint(&self) -> String {
        let dir = crate::shell::quote(&self.dir.display().to_string());
        match backend::read_backend(&self.dir) {
            Ok(b) => format!(
                "its S3 backend's lock on {}/{} may still be held: if `terraform -chdir={dir} plan` says the state is locked, release it with `terraform -chdir={dir} force-unlock <the lock ID it prints>`",
                b.bucket.as_deref().unwrap_or("?"),
                b.key.as_deref().unwrap_or("?")
            ),
            Err(_) => format!(
                "a local state's lock ends with the process (nothing to release); `terraform -chdir={dir} plan` shows what the stopped run left"
            ),
        }
    }

    fn stopped(&self, what: &str, s: &Stopped) -> Error {
        let how = if s.by == "SIGINT" {
            "asked to stop (SIGINT), it stopped".to_string()
        } else {
            format!(
                "it did not stop within {}s of SIGINT and was ended with {}",
                GRACE.as_secs(),
                s.by
            )
        };
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&s.output.stdout),
            s.output.stderr
        );
        let said = last_lines(&text);
        let said = if said.is_empty() {
            String::new()
        } else {
            format!(" (it said: {said})")
        };
        if s.interrupted {
            crate::msg::say(format!(
                "interrupted: `{what}` in {}: {how}{said}; {}",
                self.dir.display(),
                self.stopped_hint()
            ));
            return Error::Interrupted;
        }
        Error::Other(format!(
            "`{what}` in {} did not finish within {}s: {how}{said}; {}",
            self.dir.display(),
            self.timeout.as_secs(),
            self.stopped_hint()
        ))
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
        match process::run_stoppable(cmd, self.timeout, 1 << 20, GRACE)
            .map_err(|e| Error::io(format!("cannot run {} (give --terraform-bin)", self.bin), e))?
        {
            Ok(out) => Ok((
                out.status,
                format!("{}{}", String::from_utf8_lossy(&out.stdout), out.stderr),
            )),
            Err(s) => Err(self.stopped(&what, &s)),
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
