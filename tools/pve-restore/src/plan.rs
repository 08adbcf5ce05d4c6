//! The plan: every remote command in order, with why. Printed before anything changes; the
//! run then fills in each step's status and duration.

use std::time::Instant;

use pvedr::records::Step;
use pvedr::shell;
use serde_json::{Map, Value};

#[derive(Debug, Default)]
pub struct Plan {
    pub steps: Vec<Step>,
}

impl Plan {
    /// Adds a step; returns its index.
    pub fn add(&mut self, step: &str, target: &str, why: &str, argv: Option<&[String]>) -> usize {
        let mut extra = Map::new();
        if let Some(a) = argv {
            extra.insert("command".into(), Value::from(shell::join(a)));
        }
        self.steps.push(Step {
            step: step.into(),
            target: Some(target.into()),
            status: "planned".into(),
            message: Some(why.into()),
            duration_s: None,
            extra,
        });
        self.steps.len() - 1
    }

    pub fn mark_mutating(&mut self, i: usize) {
        self.steps[i]
            .extra
            .insert("mutating".into(), Value::Bool(true));
    }

    /// Records how a step ended.
    pub fn finish(&mut self, i: usize, status: &str, message: impl Into<String>, started: Instant) {
        let s = &mut self.steps[i];
        s.status = status.into();
        s.message = Some(message.into());
        s.duration_s = Some(pvedr::records::seconds_since(started));
        eprintln!(
            "pve-restore: [{}] {} {}: {}",
            i + 1,
            s.status,
            s.step,
            s.message.as_deref().unwrap_or("")
        );
    }

    /// Updates the command of a step once a placeholder is known (the safety point's volid).
    pub fn set_command(&mut self, i: usize, argv: &[String]) {
        self.steps[i]
            .extra
            .insert("command".into(), Value::from(shell::join(argv)));
    }

    /// Marks everything still planned as skipped (the run stopped before them).
    pub fn skip_rest(&mut self, why: &str) {
        for s in &mut self.steps {
            if s.status == "planned" {
                s.status = "skipped".into();
                s.message = Some(format!("{} ({why})", s.message.as_deref().unwrap_or("")));
            }
        }
    }
}
