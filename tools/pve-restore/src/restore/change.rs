//! The changes: stop, safety point, the restore itself, and what a failed restore left.

use super::*;

/// The warnings of a task that ended `WARNINGS: N` (pve-common `RESTEnvironment.pm` `warn`
/// prints `WARN: MESSAGE`), from its log or, over SSH, what the CLI printed; bounded.
pub(super) fn task_warnings(out: &CommandOutput) -> Vec<String> {
    let (o, e) = (String::from_utf8_lossy(&out.stdout), out.stderr.clone());
    o.lines()
        .chain(e.lines())
        .filter_map(|l| l.strip_prefix("WARN: "))
        .map(pvedr::msg::visible)
        .take(100)
        .collect()
}

impl Job<'_> {
    /// Stop, safety point, restore.
    pub(super) fn change(&mut self) {
        if self.s.vzdump.is_some() && self.go_on() {
            // Again, now: a vzdump may have started while the question was on the terminal.
            if let Some(m) = self.check_vzdump(Duration::ZERO) {
                self.fail(FailureKind::BeforeOverwrite, m);
            }
        }
        if let (Some(i), true) = (self.s.stop, self.go_on()) {
            if self.was_running {
                match self.exec_step(i) {
                    Ok((_, t0)) => {
                        self.plan.finish(i, StepStatus::Changed, "stopped", t0);
                        self.stopped_by_us = true;
                    }
                    Err(m) => self.fail(FailureKind::BeforeOverwrite, format!("stop failed: {m}")),
                }
            } else {
                self.plan
                    .finish(i, StepStatus::Skipped, "not running", Instant::now());
            }
        }
        if let (Some(i), true) = (self.s.safety, self.go_on()) {
            self.safety_point(i);
        }
        if self.go_on() {
            let i = self.s.restore;
            match self.exec_streamed(i) {
                Ok((out, t0)) => {
                    let w = task_warnings(&out);
                    if !w.is_empty() {
                        self.rec
                            .extra
                            .insert("warnings".into(), serde_json::json!(w));
                    }
                    let done = match &self.loss {
                        Some(l) => format!("restored {}; {l}", self.b.volid),
                        None => format!("restored {}", self.b.volid),
                    };
                    self.plan.finish(i, StepStatus::Changed, done, t0);
                    self.restored = true;
                    if let Some(l) = self.s.leftover {
                        self.plan
                            .finish(l, StepStatus::Skipped, "not needed", Instant::now());
                    }
                    self.remap_steps();
                }
                Err(m) if self.ctx.cli.test && !self.lost && guest::exists_msg(&m, self.target) => {
                    if let Some(l) = self.s.leftover {
                        // Another guest's now: not ours to remove.
                        self.plan
                            .finish(l, StepStatus::Skipped, "not ours", Instant::now());
                    }
                    self.ctx.scratch_taken.set(true);
                    let f = format!("scratch VMID {} was taken meanwhile: {m}", self.target);
                    self.fail(FailureKind::ScratchTaken, f);
                }
                Err(m) => {
                    self.fail(FailureKind::RestoreTask, format!("restore failed: {m}"));
                    self.remove_leftover();
                }
            }
        }
    }

    /// Under maps, after the restore: disk moves and bridges, in order; a failure leaves
    /// the new guest to the way back (its destroy).
    fn remap_steps(&mut self) {
        for i in self.s.remap.clone() {
            if !self.go_on() {
                return;
            }
            match self.exec_step(i) {
                Ok((_, t0)) => self.plan.finish(i, StepStatus::Changed, "done", t0),
                Err(m) => self.fail(FailureKind::AfterRestore, m),
            }
        }
    }

    /// After a failed qmrestore to a new VMID: its leftover config goes when it is the empty
    /// one qmrestore leaves (so nothing of anyone else's); else it stays, and the way back
    /// says how to remove it. Proxmox: qemu-server `API2/Qemu.pm` `create_vm`.
    pub(super) fn remove_leftover(&mut self) {
        let Some(i) = self.s.leftover.filter(|_| !self.lost) else {
            return;
        };
        let t0 = Instant::now();
        let present = match guest::resources(self.t) {
            Ok(p) => p.contains_key(&self.target),
            Err(e) => {
                self.plan
                    .finish(i, StepStatus::Failed, format!("cannot tell: {e}"), t0);
                self.leftover = Some("kept");
                return;
            }
        };
        if !present {
            self.plan
                .finish(i, StepStatus::Skipped, "qmrestore left nothing", t0);
            return;
        }
        if self.streamed.is_some() {
            // The VMID was free before this run: what is there now is the restore's, done
            // from a stream that did not arrive whole.
            self.leftover = Some(match self.exec_step(i) {
                Ok((_, t0)) => {
                    let m = format!(
                        "guest {} restored from a damaged stream removed",
                        self.target
                    );
                    self.plan.finish(i, StepStatus::Changed, m, t0);
                    "removed"
                }
                Err(_) => "kept",
            });
            return;
        }
        let node = self.rec.node.clone().unwrap_or_default();
        let empty = match guest::config(self.t, &node, false, self.target) {
            Ok(Ok(c)) => c.is_empty(),
            _ => false,
        };
        if !empty {
            let m = format!(
                "VM {} holds more than qmrestore's empty config: kept",
                self.target
            );
            self.plan.finish(i, StepStatus::Skipped, m, t0);
            self.leftover = Some("kept");
            return;
        }
        self.leftover = Some(match self.exec_step(i) {
            Ok((_, t0)) => {
                let m = format!("qmrestore's empty config of VM {} removed", self.target);
                self.plan.finish(i, StepStatus::Changed, m, t0);
                "removed"
            }
            Err(_) => "kept",
        });
    }

    pub(super) fn safety_point(&mut self, i: StepId) {
        // vzdump names an archive by the second it starts in, and a vzdump of the same
        // guest in the same second replaces the earlier file (vzdump renames its temporary
        // file over it): a safety point taken within a second of the backup being restored
        // (a restore right after another one's safety point, a nightly job's archive) wrote
        // over that backup, which was then "restored" from the guest's own current state
        // and lost. A second of waiting puts the safety point's name after every archive
        // that exists now. Found by the model-based test (tests/model). Proxmox: pve-manager
        // `PVE/VZDump.pm` `exec_backup_task` names the archive from `backup_time` (whole
        // seconds) and `rename`s its `.dat` over the target without looking first.
        std::thread::sleep(SAFETY_NAME_GAP);
        if !self.go_on() {
            return;
        }
        match self.exec_step(i) {
            Ok((out, t0)) => {
                let storage = self.safety_storage();
                match guest::safety_point_volid(&String::from_utf8_lossy(&out.stdout), &storage) {
                    Some(v) => {
                        self.plan
                            .finish(i, StepStatus::Changed, format!("safety point {v}"), t0);
                        self.rec.safety_point = Some(json!({"volid": v, "storage": storage}));
                        self.safety = Some(v);
                    }
                    None => {
                        // Over the API the answer is in the task's log, which may be unreadable.
                        let why = match out.stderr.trim() {
                            "" => "vzdump did not say which archive it wrote".to_string(),
                            e => format!(
                                "vzdump did not say which archive it wrote: {}",
                                pvedr::msg::visible(e)
                            ),
                        };
                        self.plan.finish(i, StepStatus::Failed, why, t0);
                        self.fail(FailureKind::BeforeOverwrite, "no safety point".into());
                    }
                }
            }
            Err(m) => {
                let m = format!("safety point failed: {m}; nothing was overwritten");
                self.fail(FailureKind::BeforeOverwrite, m);
            }
        }
    }
}
