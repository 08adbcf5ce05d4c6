//! The plan: every step of a restore (or a --verify-only run), built before anything runs.

use super::*;

const WHY_LOCK: &str = "a locked guest (backup, snapshot, migration) must not be touched";
const WHY_VZDUMP: &str = "no vzdump may be running on the node: the safety point would wait for its lock (up to 3 h by default) with the guest stopped";
const WHY_LOSS: &str = "what the overwrite deletes that the backup and the safety point cannot bring back: snapshots, volumes not in the backup";

impl Job<'_> {
    pub(super) fn build_plan(&mut self) {
        self.s.check = self.plan.read(
            "check-archive",
            &self.b.volid,
            "test the archive on the node before anything changes",
            Some(pvedr::archive::test_command("<path>", &self.b.format)),
        );
        if self.overwrite {
            self.plan_overwrite();
        }
        self.plan_restore();
        self.plan_streamed();
        self.plan_remap();
        self.plan_after_restore();
    }

    /// What an overwrite adds before the restore: its checks, the stop, the safety point.
    fn plan_overwrite(&mut self) {
        let (tool, id) = (self.tool(), self.id());
        let p = &mut self.plan;
        let node = self.rec.node.clone().unwrap_or_default();
        let at = guest::at(&node, self.lxc, self.target);
        let vzdumps = pvedr::pve::active_tasks_cmd(&node, "vzdump");
        // The checks an overwrite adds: (step, on, why, command).
        let [lock, vzdump, loss] = [
            ("check-lock", &id, WHY_LOCK, at.config_cmd()),
            ("check-vzdump", &node, WHY_VZDUMP, vzdumps),
            ("check-loss", &id, WHY_LOSS, at.snapshots_cmd()),
        ]
        .map(|(step, on, why, cmd)| Some(p.read(step, on, why, Some(cmd.argv))));
        (self.s.lock, self.s.vzdump, self.s.loss) = (lock, vzdump, loss);
        self.s.stop = Some(p.change(
            "stop",
            &id,
            "stop the guest, only if it runs",
            Some(argv(&[tool, "stop", &id])),
        ));
        let note = format!("pvedr safety point before restoring {}", self.b.volid);
        let storage = self
            .ctx
            .o
            .safety_storage
            .clone()
            .unwrap_or_else(|| self.storage.clone());
        self.s.safety = Some(p.change(
            "safety-point",
            &id,
            "a vzdump of the current guest to come back to; keep-all=1 so no retention deletes old archives (maybe the one being restored)",
            Some(guest::safety_point_cmd(
                &id,
                &storage,
                "stop",
                &note,
                SAFETY_LOCKWAIT_MIN,
            )),
        ));
    }

    /// The restore itself, and to a new VMID qmrestore's leftover should it fail.
    fn plan_restore(&mut self) {
        let id = self.id();
        let (why, cmd) = (self.restore_why(), self.restore_argv());
        self.s.restore = self.plan.change("restore", &id, &why, Some(cmd));
        if !self.overwrite && !self.lxc && self.streamed.is_none() {
            self.s.leftover = Some(self.plan.change(
                "remove-leftover",
                &id,
                "only if qmrestore fails: it leaves the new VM's config behind (pct restore cleans up); removed when it holds no volume",
                Some(argv(&["qm", "destroy", &id])),
            ));
        }
    }

    /// The restore command: from the archive or from the stream, a container's maps added.
    fn restore_argv(&self) -> Vec<String> {
        let unique = self.ctx.cli.unique;
        let mut cmd = match &self.streamed {
            Some(s) => s.restore_cmd(
                self.lxc,
                self.target,
                self.overwrite,
                self.target_storage.as_deref(),
                unique,
            ),
            None => restore_cmd(
                self.lxc,
                &self.b.volid,
                self.target,
                self.overwrite,
                self.target_storage.as_deref(),
                unique,
            ),
        };
        if let (Some(r), true) = (&self.remap, self.lxc) {
            cmd.extend(crate::remap::ct_args(r));
        }
        cmd
    }

    /// Why the restore step does what it does: over the guest or to a free VMID, onto which
    /// storage, in which pool.
    fn restore_why(&self) -> String {
        let why = if self.overwrite {
            "overwrite with the restore command's own --force (destroy --purge would silently drop the guest from backup jobs)"
        } else {
            "restore to a VMID that is free cluster-wide"
        };
        let mut why = match &self.target_storage {
            Some(s) => format!("{why}; every volume on storage {s}"),
            None => format!(
                "{why}; qmrestore puts each disk back on its original storage (--storage chooses one)"
            ),
        };
        if let Some(pool) = &self.pool {
            // Membership is in user.cfg: qmrestore and pct restore over the guest leave it
            // (they call add_vm_to_pool only with --pool; only destroy removes it).
            why.push_str(&format!(
                "; the guest stays in pool {}",
                pvedr::msg::visible(pool)
            ));
        }
        why
    }

    /// After the restore: a drill's isolation, the start, the probes, a drill's clean-up,
    /// and an overwrite's rollback should any of it fail.
    fn plan_after_restore(&mut self) {
        let (tool, id, cli) = (self.tool(), self.id(), self.ctx.cli);
        let back_cmd = self.back_cmd("<safety point>");
        let p = &mut self.plan;
        if cli.test {
            self.s.isolate = Some(p.change(
                "isolate",
                &id,
                "every network link down: the copy must not talk to production",
                Some(argv(&[tool, "set", &id, "--netN", "<net>,link_down=1"])),
            ));
        }
        if self.ctx.o.start {
            self.s.start = Some(p.change(
                "start",
                &id,
                "start the restored guest and wait until it runs",
                Some(argv(&[tool, "start", &id])),
            ));
        }
        for pr in &self.ctx.o.probes {
            self.s
                .probes
                .push(p.read("probe", &pr.name(), "prove the restored guest works", None));
        }
        if cli.test {
            self.s.cleanup = Some(p.change(
                "cleanup",
                &id,
                "destroy the scratch guest",
                Some(argv(&[tool, "destroy", &id])),
            ));
        }
        if self.overwrite {
            self.s.rollback = Some(p.change(
                "rollback",
                &id,
                "only if the restore or the verification fails: restore the safety point",
                Some(back_cmd),
            ));
        }
    }

    /// Under maps, a VM's steps after qmrestore: each disk not on the storage restored to
    /// moves (`qm disk move … --delete 1`: without it the old copy stays as `unusedN`,
    /// qemu-server `API2/Qemu.pm` `move_vm_disk`), then one `qm set` gives the NICs their
    /// new bridges (whole lines) and drops the host devices asked to be dropped.
    fn plan_remap(&mut self) {
        let Some(r) = self.remap.as_ref().filter(|_| !self.lxc) else {
            return;
        };
        let id = self.id();
        let on = self.target_storage.clone().unwrap_or_default();
        for d in r.moves(&on) {
            let cmd = argv(&["qm", "disk", "move", &id, &d.key, &d.to, "--delete", "1"]);
            let why = format!(
                "{} from {} to {}: qmrestore put every disk on {on}",
                d.key, d.from, d.to
            );
            self.s
                .remap
                .push(self.plan.change("disk-move", &id, &why, Some(cmd)));
        }
        let mut set = argv(&["qm", "set", &id]);
        for n in r.changed_nets() {
            set.extend([format!("--{}", n.key), n.line.clone()]);
        }
        let drop: Vec<&str> = r.passthrough.iter().map(|d| d.key.as_str()).collect();
        if !drop.is_empty() {
            set.extend(argv(&["--delete", &drop.join(",")]));
        }
        if set.len() > 3 {
            let why = "each NIC on its mapped bridge, the line kept but for bridge=; host devices dropped";
            self.s
                .remap
                .push(self.plan.change("set-nets", &id, why, Some(set)));
        }
    }

    /// `--verify-only`: start (when stopped) and the probes.
    pub(super) fn plan_verify(&mut self) {
        let (tool, id) = (self.tool(), self.id());
        if !self.was_running {
            self.s.start = Some(self.plan.change(
                "start",
                &id,
                "the guest is stopped: start it and wait until it runs",
                Some(argv(&[tool, "start", &id])),
            ));
        }
        for pr in &self.ctx.o.probes {
            let p = self
                .plan
                .read("probe", &pr.name(), "prove the guest works", None);
            self.s.probes.push(p);
        }
    }
}
