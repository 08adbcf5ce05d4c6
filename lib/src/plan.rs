//! A plan: every command a tool will run, in order, with why, shown before anything changes.
//! The run executes the plan's own commands (so `--dry-run` shows exactly what runs) and
//! fills in each step's status and duration; progress lines name the running tool.

use std::time::Instant;

use serde_json::{Map, Value};

use crate::msg;
use crate::records::{Step, StepStatus, seconds_since};
use crate::shell;

#[derive(Debug, Default)]
pub struct Plan {
    pub steps: Vec<Step>,
    commands: Vec<Option<Vec<String>>>,
}

/// A step's index in its plan.
pub type StepId = usize;

/// A step's command, when it runs one on the node.
pub type Cmd = Option<Vec<String>>;

impl Plan {
    fn push(
        &mut self,
        step: &str,
        target: &str,
        why: &str,
        argv: Option<Vec<String>>,
        mutating: bool,
    ) -> StepId {
        let mut extra = Map::new();
        if let Some(a) = &argv {
            extra.insert("command".into(), Value::from(shell::join(a)));
        }
        if mutating {
            extra.insert("mutating".into(), Value::Bool(true));
        }
        self.steps.push(Step {
            step: step.into(),
            target: Some(target.into()),
            status: StepStatus::Planned,
            message: Some(why.into()),
            duration_s: None,
            extra,
        });
        self.commands.push(argv);
        self.steps.len() - 1
    }

    /// A step that only reads.
    pub fn read(&mut self, step: &str, on: &str, why: &str, cmd: Cmd) -> StepId {
        self.push(step, on, why, cmd, false)
    }

    /// A step that changes something.
    pub fn change(&mut self, step: &str, on: &str, why: &str, cmd: Cmd) -> StepId {
        self.push(step, on, why, cmd, true)
    }

    /// The command a step runs.
    pub fn command(&self, i: StepId) -> &[String] {
        self.commands
            .get(i)
            .and_then(|c| c.as_deref())
            .unwrap_or(&[])
    }

    /// Sets a step's command once a placeholder is known (the safety point's volid).
    pub fn set_command(&mut self, i: StepId, argv: Vec<String>) {
        self.steps[i]
            .extra
            .insert("command".into(), Value::from(shell::join(&argv)));
        self.commands[i] = Some(argv);
    }

    pub fn status(&self, i: StepId) -> &StepStatus {
        &self.steps[i].status
    }

    /// Records how a step ended, and says so on stderr.
    pub fn finish(
        &mut self,
        i: StepId,
        status: StepStatus,
        message: impl Into<String>,
        started: Instant,
    ) {
        let s = &mut self.steps[i];
        s.status = status;
        s.message = Some(message.into());
        s.duration_s = Some(seconds_since(started));
        msg::say(format!(
            "[{}] {} {}: {}",
            i + 1,
            s.status,
            s.step,
            s.message.as_deref().unwrap_or("")
        ));
    }

    /// Marks everything still planned as skipped (the run stopped before them).
    pub fn skip_rest(&mut self, why: &str) {
        for s in &mut self.steps {
            if s.status == StepStatus::Planned {
                s.status = StepStatus::Skipped;
                s.message = Some(format!("{} ({why})", s.message.as_deref().unwrap_or("")));
            }
        }
    }

    /// Whether any step that changes something has run (finished in any way).
    pub fn changed_anything(&self) -> bool {
        self.steps.iter().any(|s| {
            s.extra.get("mutating") == Some(&Value::Bool(true))
                && !matches!(s.status, StepStatus::Planned | StepStatus::Skipped)
        })
    }

    /// Prints the plan on stderr, one line a step.
    pub fn print(&self, title: &str) {
        msg::say(title);
        for (n, s) in self.steps.iter().enumerate() {
            msg::line(format_args!(
                "  {}. {:<13} {}  — {}",
                n + 1,
                s.step,
                msg::visible(s.extra.get("command").and_then(Value::as_str).unwrap_or("")),
                msg::visible(s.message.as_deref().unwrap_or(""))
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_holds_the_commands_it_runs() {
        let mut p = Plan::default();
        let a = p.read(
            "check",
            "x",
            "why",
            Some(vec!["qm".into(), "config".into(), "1".into()]),
        );
        let b = p.change(
            "stop",
            "x",
            "why",
            Some(vec!["qm".into(), "stop".into(), "1".into()]),
        );
        assert_eq!(p.command(a), ["qm", "config", "1"]);
        assert!(!p.changed_anything());
        p.finish(b, StepStatus::Changed, "stopped", Instant::now());
        assert!(p.changed_anything());
        p.set_command(a, vec!["qm".into(), "config".into(), "2 x".into()]);
        assert_eq!(p.steps[a].extra["command"], "qm config '2 x'");
    }
}
