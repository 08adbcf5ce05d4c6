//! The read-only checks before the first change: locks, running vzdump, what an overwrite
//! loses, privileges, the archive itself.

use super::*;

impl Job<'_> {
    /// The read-only checks (they run in a dry run too); `Some(why)` refuses.
    pub(super) fn check(&mut self) -> Option<String> {
        if let Some(m) = self.check_access() {
            return Some(m);
        }
        if let Some(m) = self.check_root_only() {
            return Some(m);
        }
        if let Some(m) = self.check_archive() {
            return Some(m);
        }
        if let Some(m) = self.check_lock() {
            return Some(m);
        }
        if let Some(m) = self.check_vzdump(self.lock_wait()) {
            return Some(m);
        }
        self.check_loss()
    }

    /// `--wait-lock`, none in a dry run.
    pub(super) fn lock_wait(&self) -> Duration {
        if self.ctx.cli.write.dry_run {
            Duration::ZERO
        } else {
            self.ctx.o.wait_lock
        }
    }

    /// No vzdump running on the node (waiting up to `wait`): it holds the node-wide vzdump
    /// lock, and the safety point, taken with the guest stopped, would queue behind it.
    pub(super) fn check_vzdump(&mut self, wait: Duration) -> Option<String> {
        let i = self.s.vzdump?;
        let t0 = Instant::now();
        let node = self.rec.node.clone().unwrap_or_default();
        let t = self.ctx.t;
        let mut busy = None;
        let r = poll_until(t0 + wait, Duration::from_secs(2), || {
            busy = guest::active_vzdump(t, &node)?;
            Ok(busy.is_none().then_some(()))
        });
        let msg = match r {
            Ok(Some(())) => {
                self.plan.finish(i, StepStatus::Ok, "no vzdump running", t0);
                return None;
            }
            Ok(None) => format!(
                "a vzdump is running on {node} ({}): the safety point would wait for its lock with guest {} stopped; nothing was changed. Wait for it or use --wait-lock",
                pvedr::msg::visible(busy.as_deref().unwrap_or("?")),
                self.target
            ),
            Err(e) => format!("cannot list the running tasks of {node}: {e}; nothing was changed"),
        };
        self.plan.finish(i, StepStatus::Failed, msg.clone(), t0);
        Some(msg)
    }

    /// What the overwrite deletes for good, in the plan and the record: the snapshots, a
    /// container's volumes that its backup does not hold (refused without
    /// `--erase-unbacked-volumes`), a VM's `backup=0` disks (kept, detached).
    pub(super) fn check_loss(&mut self) -> Option<String> {
        let i = self.s.loss?;
        let t0 = Instant::now();
        let node = self.rec.node.clone().unwrap_or_default();
        let snaps = match guest::snapshots(self.ctx.t, &node, self.lxc, self.target) {
            Ok(s) => s,
            Err(e) => {
                let msg = format!(
                    "cannot list the snapshots of guest {}: {e}; nothing was changed",
                    self.target
                );
                self.plan.finish(i, StepStatus::Failed, msg.clone(), t0);
                return Some(msg);
            }
        };
        let conf = self.conf.clone().unwrap_or_default();
        let (erased, detached) = if self.lxc {
            (guest::ct_unbacked(&conf, self.target), Vec::new())
        } else {
            (Vec::new(), guest::vm_detached(&conf))
        };
        let names: Vec<Value> = snaps.iter().map(|n| Value::from(n.as_str())).collect();
        self.rec
            .extra
            .insert("deleted_snapshots".into(), Value::Array(names));
        let key = if self.lxc {
            "erased_volumes"
        } else {
            "detached_volumes"
        };
        let vols = if self.lxc { &erased } else { &detached };
        self.rec.extra.insert(key.into(), guest::Volume::json(vols));
        let mut loss = Vec::new();
        if !snaps.is_empty() {
            let list: Vec<String> = snaps.iter().map(|n| pvedr::msg::visible(n)).collect();
            loss.push(format!("deletes every snapshot: {}", list.join(", ")));
        }
        if !erased.is_empty() {
            loss.push(format!(
                "erases volumes not in the backup: {}",
                guest::Volume::list(&erased)
            ));
        }
        if !detached.is_empty() {
            loss.push(format!(
                "backup=0 disks come back detached as unusedN (data kept): {}",
                guest::Volume::list(&detached)
            ));
        }
        let what = match loss.is_empty() {
            true => "nothing beyond the guest's current state".to_string(),
            false => loss.join("; "),
        };
        let r = self.s.restore;
        let why = self.plan.steps[r].message.clone().unwrap_or_default();
        self.plan.steps[r].message = Some(format!("{why}; {what}"));
        self.loss = Some(what.clone());
        if !erased.is_empty() && !self.ctx.cli.erase_unbacked_volumes {
            let msg = format!(
                "overwriting CT {} erases volumes its backup does not hold: {} (mount points without backup=1 come back empty, unusedN volumes are deleted, and the safety point lacks them too); nothing was changed. Copy their data first, or accept the loss with --erase-unbacked-volumes",
                self.target,
                guest::Volume::list(&erased)
            );
            self.plan.finish(i, StepStatus::Failed, msg.clone(), t0);
            return Some(msg);
        }
        self.plan.finish(i, StepStatus::Ok, what, t0);
        None
    }

    /// The storage's type as the node reports it (`pbs`, `dir`, `nfs`, …).
    pub(super) fn storage_type(&self) -> pvedr::Result<String> {
        let node = self.rec.node.as_deref().unwrap_or("");
        let s = pvedr::pve::Client::new(self.ctx.t).storage_status(node, &self.storage)?;
        Ok(s.storage_type)
    }

    /// What Proxmox will check for each step, asked before anything changes: over the API a
    /// token may lack some, and a restore refused half-way (after the safety point, the
    /// stop) is worse than one refused now. As root (SSH, local) nothing is missing.
    pub(super) fn check_access(&mut self) -> Option<String> {
        let node = self.rec.node.clone().unwrap_or_default();
        let want = crate::access::RestoreAccess {
            target: self.target,
            node: &node,
            archive_storage: &self.storage,
            archive_owner: self.b.vmid,
            target_storage: self.target_storage.as_deref(),
            overwrite: self.overwrite,
            safety_storage: self.s.safety.map(|_| self.safety_storage()),
            power: self.overwrite || self.ctx.o.start,
            isolate: self.s.isolate.is_some(),
            cleanup: self.s.cleanup.is_some(),
            agent: !self.lxc && self.ctx.o.probes.contains(&probe::Probe::Agent),
        };
        match crate::access::missing(self.ctx.t, &want) {
            Ok(m) if m.is_empty() => None,
            Ok(m) => Some(format!(
                "the API token lacks {}; nothing was changed",
                m.join("; ")
            )),
            Err(e) => Some(format!(
                "cannot read the API token's privileges: {e}; nothing was changed"
            )),
        }
    }

    /// Over an API token (never `root@pam`), what the backup's config holds that Proxmox
    /// refuses inside the restore task, after the stop and the safety point: refused now,
    /// keys named. Raw `lxc.*` keys are only dropped: a warning and `dropped_lxc_keys`.
    pub(super) fn check_root_only(&mut self) -> Option<String> {
        if self.ctx.t.is_root() {
            return None;
        }
        let why = match guest::archive_config(self.ctx.t, &self.b.volid, self.lxc) {
            Ok(Ok(c)) => return self.root_only(&c),
            Ok(Err(e)) => e,
            Err(e) => e.to_string(),
        };
        // extractconfig needs VM.Backup on the backup's guest, which a restore does not:
        // not checked is said, not refused.
        pvedr::msg::warn(format!(
            "cannot read the config inside {} ({why}): not checked for what only root@pam may restore (bind mounts, host devices, raw lxc keys)",
            self.b.volid
        ));
        None
    }

    /// [`Self::check_root_only`] on the backup's config.
    pub(super) fn root_only(&mut self, config: &GuestConfig) -> Option<String> {
        let r = guest::root_only(config, self.lxc);
        if !r.refused.is_empty() {
            return Some(format!(
                "only root@pam may restore this backup, an API token may not: {}; nothing was changed (restore it over SSH as root)",
                r.refused.join(", ")
            ));
        }
        if !r.dropped.is_empty() {
            pvedr::msg::warn(format!(
                "a restore by an API token drops the backup's raw lxc keys (restore them as root): {}",
                pvedr::msg::visible(&r.dropped.join("; "))
            ));
            self.rec
                .extra
                .insert("dropped_lxc_keys".into(), serde_json::json!(r.dropped));
        }
        None
    }

    pub(super) fn check_archive(&mut self) -> Option<String> {
        if self.streamed.is_some() {
            return self.check_streamed();
        }
        let (i, t0) = (self.s.check, Instant::now());
        if self.ctx.cli.no_archive_test {
            let why = "not tested: --no-archive-test";
            self.plan.finish(i, StepStatus::Skipped, why, t0);
            return None;
        }
        let kind = match self.storage_type() {
            Ok(k) => k,
            Err(e) => {
                self.plan.finish(i, StepStatus::Failed, e.to_string(), t0);
                return Some(format!("cannot tell the storage's type: {e}"));
            }
        };
        if kind == "pbs" {
            self.plan.finish(
                i,
                StepStatus::Skipped,
                "PBS verifies its snapshots (see the backup's verification state)",
                t0,
            );
            return None;
        }
        if !self.t.has_shell() {
            let msg = "the archive cannot be tested over the API (no shell on the node reads it): use --host (SSH) to test it, or --no-archive-test to restore it untested";
            self.plan.finish(i, StepStatus::Failed, msg, t0);
            return Some(format!("{msg}; nothing was changed"));
        }
        let node = self.rec.node.as_deref().unwrap_or("");
        let found = pvedr::pve::Client::new(self.ctx.t).volume(node, &self.storage, &self.b.volid);
        let volume = match found {
            Ok(v) => v,
            Err(e) => {
                self.plan.finish(i, StepStatus::Failed, e.to_string(), t0);
                return Some(format!("cannot locate the archive: {e}"));
            }
        };
        let Some(file) = volume.path else {
            self.plan.finish(
                i,
                StepStatus::Failed,
                "Proxmox reports no path for the archive",
                t0,
            );
            return Some("cannot locate the archive".into());
        };
        let test = pvedr::archive::test_command(&file, &self.b.format);
        self.plan.set_command(i, test.clone());
        match self
            .t
            .exec(&RemoteCommand::read(test).within(pvedr::archive::TEST_TIMEOUT))
        {
            Ok(out) if out.success() => {
                self.plan
                    .finish(i, StepStatus::Ok, format!("{file} is whole"), t0);
                None
            }
            Ok(out) => {
                let msg = format!("the archive is damaged: {}", guest::status_line(&out));
                self.plan.finish(i, StepStatus::Failed, msg.clone(), t0);
                Some(format!("{msg}; nothing was changed"))
            }
            Err(e) => {
                self.plan.finish(i, StepStatus::Failed, e.to_string(), t0);
                Some(format!("cannot test the archive: {e}; nothing was changed"))
            }
        }
    }

    pub(super) fn check_lock(&mut self) -> Option<String> {
        let i = self.s.lock?;
        let t0 = Instant::now();
        let wait = self.lock_wait();
        let (t, lxc, target) = (self.t, self.lxc, self.target);
        let node = self.rec.node.clone().unwrap_or_default();
        let mut last_lock = None;
        let mut seen = None;
        let r = poll_until(t0 + wait, Duration::from_secs(2), || {
            match guest::config(t, &node, lxc, target)? {
                Err(e) => Ok(Some(Err(format!("cannot read guest {target}: {e}")))),
                Ok(conf) if conf.protection => Ok(Some(Err(protected_msg(lxc, target)))),
                Ok(conf) => match conf.lock.clone() {
                    None => {
                        seen = Some(conf);
                        Ok(Some(Ok(())))
                    }
                    Some(l) => {
                        last_lock = Some(l);
                        Ok(None)
                    }
                },
            }
        });
        let msg = match r {
            Ok(Some(Ok(()))) => {
                self.conf = seen;
                self.plan.finish(i, StepStatus::Ok, "not locked", t0);
                return None;
            }
            Ok(Some(Err(e))) => e,
            Ok(None) => format!(
                "guest {target} is locked ({}); wait for it or use --wait-lock",
                last_lock.unwrap_or_default()
            ),
            Err(e) => format!("cannot read guest {target}: {e}"),
        };
        self.plan.finish(i, StepStatus::Failed, msg.clone(), t0);
        Some(msg)
    }
}
