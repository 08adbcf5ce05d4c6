//! What a failure leads to (one table, [`after_failure`]), the rollback, and the record's
//! end: status, way back, the answer to a Ctrl-C.

use super::*;

/// Where a run failed, set where it happens: what is done with the guest follows from it
/// ([`after_failure`]), never from the wording of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FailureKind {
    /// Before anything was overwritten: a vzdump started, the stop or the safety point failed.
    BeforeOverwrite,
    /// The restore task failed: the guest may be half overwritten (qemu-server
    /// `restore_vma_archive` has emptied its config and freed its disks before the data).
    RestoreTask,
    /// After the restore: isolating, starting or probing the restored guest failed.
    AfterRestore,
    /// The drill's scratch guest could not be destroyed.
    Cleanup,
    /// Ctrl-C or SIGTERM before the restore ran.
    InterruptedBefore,
    /// Ctrl-C or SIGTERM after the restore ran.
    InterruptedAfter,
    /// The connection was lost, or a task was left running: the node's state is unknown.
    StateUnknown,
}

/// What a failure leaves to do with the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AfterFailure {
    /// Restore the safety point (then start the guest if it ran).
    RollBack,
    /// Nothing was overwritten: start the guest again if the run stopped it.
    StartAgain,
    /// Touch nothing (never a blind rollback): the way back says what to do.
    Leave,
}

/// The one table of what follows a failure (docs/BACKUP-RESTORE.md, "When a restore fails").
pub(super) fn after_failure(kind: FailureKind) -> AfterFailure {
    use FailureKind as F;
    match kind {
        F::RestoreTask | F::AfterRestore | F::InterruptedAfter => AfterFailure::RollBack,
        F::BeforeOverwrite | F::InterruptedBefore => AfterFailure::StartAgain,
        F::StateUnknown | F::Cleanup => AfterFailure::Leave,
    }
}

#[derive(Debug, Clone)]
pub(super) struct Failure {
    pub(super) kind: FailureKind,
    /// The record's `error`.
    pub(super) message: String,
}

/// A refusal before anything changed.
pub fn refused(rec: Restore, plan: Plan, msg: String, started: Instant) -> Restore {
    ended_early(rec, plan, RestoreStatus::Refused, msg, started)
}

/// A failure before anything changed (a node that does not answer, say).
pub(super) fn failed_early(rec: Restore, plan: Plan, e: pvedr::Error, started: Instant) -> Restore {
    ended_early(
        rec,
        plan,
        RestoreStatus::Failed,
        format!("{e}; nothing was changed"),
        started,
    )
}

pub(super) fn ended_early(
    mut rec: Restore,
    plan: Plan,
    status: RestoreStatus,
    msg: String,
    started: Instant,
) -> Restore {
    pvedr::msg::say(format!("{status}: {msg}"));
    rec.status = status;
    rec.error = Some(msg);
    rec.steps = plan.steps;
    rec.duration_s = Some(seconds_since(started));
    rec
}

/// Whether the record's step `name` changed something.
pub(super) fn step_changed(steps: &[pvedr::records::Step], name: &str) -> bool {
    steps
        .iter()
        .any(|s| s.step == name && s.status == StepStatus::Changed)
}

impl Job<'_> {
    /// Records the run's failure; the first one stands.
    pub(super) fn fail(&mut self, kind: FailureKind, message: String) {
        self.failure.get_or_insert(Failure { kind, message });
    }

    /// The failure's kind as it decides: a lost connection makes any decision blind.
    pub(super) fn failure_kind(&self) -> Option<FailureKind> {
        let f = self.failure.as_ref()?;
        Some(if self.lost {
            FailureKind::StateUnknown
        } else {
            f.kind
        })
    }

    /// After a failure: back to the safety point when [`after_failure`] says so.
    pub(super) fn roll_back(&mut self) {
        let Some(i) = self.s.rollback else { return };
        let Some(kind) = self.failure_kind() else {
            self.plan
                .finish(i, StepStatus::Skipped, "not needed", Instant::now());
            return;
        };
        if self.ctx.cli.no_rollback {
            self.plan
                .finish(i, StepStatus::Skipped, "--no-rollback", Instant::now());
            return;
        }
        let needed = after_failure(kind) == AfterFailure::RollBack;
        let Some(s) = self.safety.clone().filter(|_| needed) else {
            return;
        };
        let _ = self.t.exec(&RemoteCommand::write(argv(&[
            self.tool(),
            "stop",
            &self.id(),
        ])));
        self.plan.set_command(i, self.back_cmd(&s));
        if let Ok((_, t0)) = self.exec_step(i) {
            if self.was_running {
                let _ = self.t.exec(&RemoteCommand::write(argv(&[
                    self.tool(),
                    "start",
                    &self.id(),
                ])));
            }
            self.plan.finish(
                i,
                StepStatus::Changed,
                format!("guest {} is back as it was ({s})", self.target),
                t0,
            );
            self.rolled_back = true;
        }
    }

    /// The record: status, steps, the way back.
    pub(super) fn finish(mut self) -> Restore {
        let after = self.failure_kind().map(after_failure);
        let restarted = self.stopped_by_us && after == Some(AfterFailure::StartAgain);
        if restarted {
            // Nothing was overwritten: bring the guest back up.
            let _ = self.t.exec(&RemoteCommand::write(argv(&[
                self.tool(),
                "start",
                &self.id(),
            ])));
            self.was_running = false;
        }
        self.plan.skip_rest(if self.lost {
            "connection lost"
        } else {
            "not reached"
        });
        self.rec.way_back = self.way_back();
        if let Some(l) = self.leftover {
            self.rec.extra.insert("leftover".into(), Value::from(l));
        }
        self.rec.steps = self.plan.steps;
        self.rec.duration_s = Some(seconds_since(self.started));
        let verified = self.rec.verify.is_some();
        use FailureKind::{InterruptedAfter, InterruptedBefore};
        self.rec.status = match (self.failure.as_ref().map(|f| f.kind), self.rolled_back) {
            (Some(InterruptedBefore | InterruptedAfter), _) => RestoreStatus::Interrupted,
            (None, _) if verified || self.ctx.cli.verify_only => RestoreStatus::Verified,
            (None, _) => RestoreStatus::Restored,
            (Some(_), true) => RestoreStatus::RolledBack,
            (Some(_), false) => RestoreStatus::Failed,
        };
        self.rec.error = self.failure.map(|f| f.message);
        let guest = format!("{} {}", if self.lxc { "CT" } else { "VM" }, self.target);
        if self.rec.status == RestoreStatus::Interrupted {
            pvedr::msg::say(progress::interrupted(&progress::Ended {
                guest: &guest,
                rolled_back: self.rolled_back,
                back_running: self.was_running,
                restarted,
                scratch_destroyed: step_changed(&self.rec.steps, "cleanup"),
                way_back: self.rec.way_back.is_some(),
            }));
        }
        if let Some(w) = self.rec.way_back.as_ref() {
            pvedr::msg::say(format!("way back: {w}"));
        }
        if self.stopped_by_us
            && self.restored
            && !self.rolled_back
            && !self.lost
            && !step_changed(&self.rec.steps, "start")
        {
            let node = self.rec.node.clone().unwrap_or_default();
            let start = argv(&[tool_of(self.lxc), "start", &self.target.to_string()]);
            pvedr::msg::say(progress::start_hint(&guest, &node, &start));
        }
        progress::done();
        self.rec
    }

    /// The command that undoes the run, quoted to be pasted.
    pub(super) fn way_back(&self) -> Option<String> {
        let tool = self.tool();
        if self.ctx.cli.verify_only {
            // Nothing was restored: at most the guest was started.
            let started = self.s.start.is_some() && !self.ctx.cli.write.dry_run;
            return started.then(|| shell::join(&argv(&[tool, "stop", &self.id()])));
        }
        if self.ctx.cli.test || self.rolled_back {
            return None;
        }
        match (&self.safety, self.overwrite, self.restored) {
            (Some(s), true, _) => Some(shell::join(&self.back_cmd(s))),
            (None, true, false) if self.was_running => {
                Some(shell::join(&argv(&[tool, "start", &self.id()])))
            }
            (_, false, true) => Some(shell::join(&argv(&[tool, "destroy", &self.id()]))),
            (_, false, false) if self.leftover == Some("kept") => {
                Some(shell::join(&argv(&[tool, "destroy", &self.id()])))
            }
            _ => None,
        }
    }

    /// What a first Ctrl-C leads to while step `i` runs: the step is finished, then what
    /// `roll_back`, `cleanup` and `finish` do after an interrupt.
    pub(super) fn interrupt_answer(&self, i: StepId) -> progress::Answer {
        let name = self.plan.steps[i].step.replace('-', " ");
        if !self.t.has_shell() {
            return progress::Answer::left(&name);
        }
        let guest = format!("{} {}", if self.lxc { "CT" } else { "VM" }, self.target);
        let last = [self.s.rollback, self.s.cleanup, self.s.leftover].contains(&Some(i));
        let then = if self.ctx.cli.verify_only || last {
            "stopping".to_string()
        } else if self.restored || i == self.s.restore {
            self.then_after_restore(&guest)
        } else if self.stopped_by_us || Some(i) == self.s.stop {
            format!("starting {guest} again; nothing is overwritten")
        } else {
            "stopping; nothing is overwritten".to_string()
        };
        progress::Answer::finishing(&name, then)
    }

    /// After an interrupt once the guest is restored (see `roll_back`, `cleanup`).
    pub(super) fn then_after_restore(&self, guest: &str) -> String {
        if self.s.cleanup.is_some() {
            return format!("destroying the scratch guest {}", self.target);
        }
        if !self.overwrite {
            return format!("stopping; {guest} stays restored (the way back is printed)");
        }
        if self.ctx.cli.no_rollback {
            return format!(
                "stopping; with --no-rollback {guest} stays restored (the way back is printed)"
            );
        }
        let start = if self.was_running {
            " and started again"
        } else {
            ""
        };
        format!("restoring the safety point: {guest} back as it was{start}")
    }
}
