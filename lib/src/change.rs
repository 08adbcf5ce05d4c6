//! The change contract of every tool that changes something: the plan is shown first;
//! `--dry-run` stops there (only reads ran); else `--yes` or a yes on the terminal, and
//! without either the run stops before any change with exit 2 naming `--yes`
//! ([`crate::cli::confirm`]). Then each step is written as it ends, and one summary record.

use std::time::Instant;

use serde_json::{Map, json};

use crate::cli::WriteArgs;
use crate::error::{Result, exit_for};
use crate::output::Output;
use crate::records::{Record, Step, StepStatus, Summary, seconds_since};

/// What the run may do once its plan is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approval {
    /// `--dry-run`: the plan was shown, nothing is changed.
    DryRun,
    /// Approved (`--yes` or the terminal): go ahead.
    Go,
}

/// The gate between the plan and the first change: `what` says what would change
/// ("deleting 3 backups"). Errs (exit 2) without a terminal and without `--yes`.
pub fn approve(write: &WriteArgs, what: &str) -> Result<Approval> {
    if write.dry_run {
        crate::msg::say(format!("dry run: would be {what}; nothing was changed"));
        return Ok(Approval::DryRun);
    }
    crate::cli::confirm(what, write.yes)?;
    Ok(Approval::Go)
}

/// A step that ran from `t0` until now: the one step helper of every tool.
pub fn step(
    name: &str,
    target: &str,
    status: StepStatus,
    msg: impl Into<String>,
    t0: Instant,
) -> Step {
    Step::new(name, target, status, msg, Some(t0))
}

/// How many steps ended in each way.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    pub changed: usize,
    pub skipped: usize,
    pub failed: usize,
}

impl Tally {
    /// Counts a step by its status (`ok` counts with `skipped`: nothing needed doing).
    pub fn add(&mut self, st: &Step) {
        match st.status {
            StepStatus::Changed => self.changed += 1,
            StepStatus::Skipped | StepStatus::Ok => self.skipped += 1,
            _ => self.failed += 1,
        }
    }

    /// The exit code of a run that ended so: 0, 1 (all failed), 3 (partial), 130.
    pub fn exit_code(&self, interrupted: bool) -> u8 {
        exit_for(self.changed + self.skipped, self.failed, interrupted)
    }

    /// The `summary` record of the run.
    pub fn summary(&self, tool: &str, code: u8, started: Instant) -> Record {
        let mut counts = Map::new();
        counts.insert(StepStatus::Changed.to_string(), json!(self.changed));
        counts.insert(StepStatus::Skipped.to_string(), json!(self.skipped));
        counts.insert(StepStatus::Failed.to_string(), json!(self.failed));
        Record::Summary(Summary {
            tool: Some(tool.into()),
            counts,
            exit_code: code,
            duration_s: Some(seconds_since(started)),
            extra: Map::new(),
            ..Default::default()
        })
    }
}

/// Runs `work`, writing each step it hands over as it ends (and a line on stderr), then the
/// summary record; returns the exit code.
pub fn run_steps(
    out: &mut Output,
    work: impl FnOnce(&mut dyn FnMut(Step) -> Result<()>) -> Result<()>,
) -> Result<u8> {
    let started = Instant::now();
    let mut tally = Tally::default();
    work(&mut |st: Step| {
        tally.add(&st);
        say_step(&st);
        out.write(&Record::Step(st))?;
        out.flush()
    })?;
    let code = tally.exit_code(crate::interrupt::requested());
    out.write(&tally.summary(crate::msg::tool(), code, started))?;
    Ok(code)
}

/// `<tool>: <status> <target>: <message>` on stderr.
pub fn say_step(st: &Step) {
    crate::msg::say(format!(
        "{} {}: {}",
        st.status,
        st.target.as_deref().unwrap_or(""),
        st.message.as_deref().unwrap_or("")
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_maps_to_the_exit_codes() {
        let mut t = Tally::default();
        t.add(&Step::new("x", "a", StepStatus::Changed, "", None));
        assert_eq!(t.exit_code(false), 0);
        t.add(&Step::new("x", "b", StepStatus::Failed, "", None));
        assert_eq!(t.exit_code(false), 3);
        assert_eq!(t.exit_code(true), 130);
    }

    #[test]
    fn a_dry_run_is_approved_as_a_dry_run_without_asking() {
        let w = WriteArgs {
            dry_run: true,
            yes: false,
        };
        assert_eq!(approve(&w, "x").ok(), Some(Approval::DryRun));
    }
}
