//! After the restore: isolate, start, probe, and the drill's clean-up.

use super::*;

impl Job<'_> {
    /// Isolate (drill), start and wait, probes.
    pub(super) fn verify(&mut self) {
        if !self.restored {
            return;
        }
        if let (Some(i), true) = (self.s.isolate, self.go_on()) {
            self.isolate(i);
        }
        if self.go_on() && self.a_template() {
            return;
        }
        if let (Some(i), true) = (self.s.start, self.go_on()) {
            self.start(i);
        }
        if !self.ctx.o.probes.is_empty() && self.go_on() {
            self.probes();
        }
    }

    /// A template cannot be started: its start and probes are skipped, not failed (a
    /// failure would roll a good restore back). `false` when it is no template or when
    /// nothing is to be started.
    pub(super) fn a_template(&mut self) -> bool {
        if self.s.start.is_none() && self.s.probes.is_empty() {
            return false;
        }
        let Some(conf) = self.read_config() else {
            return false;
        };
        if !conf.is_ok_and(|c| c.template) {
            return false;
        }
        let why = format!(
            "guest {} is a template: Proxmox does not start templates",
            self.target
        );
        let t0 = Instant::now();
        for i in self
            .s
            .start
            .iter()
            .chain(&self.s.probes)
            .copied()
            .collect::<Vec<_>>()
        {
            self.plan.finish(i, StepStatus::Skipped, why.clone(), t0);
        }
        true
    }

    pub(super) fn isolate(&mut self, i: StepId) {
        let t0 = Instant::now();
        let Some(conf) = self.read_config() else {
            self.plan.finish(
                i,
                StepStatus::Failed,
                "connection lost reading the config",
                t0,
            );
            return;
        };
        let conf = match conf {
            Ok(c) => c,
            Err(e) => {
                self.plan.finish(i, StepStatus::Failed, e.clone(), t0);
                self.fail(FailureKind::AfterRestore, format!("isolating failed: {e}"));
                return;
            }
        };
        let links = guest::links_up(&conf);
        for (k, v) in &links {
            self.plan.set_command(
                i,
                argv(&[self.tool(), "set", &self.id(), &format!("--{k}"), v]),
            );
            if let Err(m) = self.exec_step(i) {
                self.fail(FailureKind::AfterRestore, format!("isolating failed: {m}"));
                return;
            }
        }
        self.plan.finish(
            i,
            StepStatus::Changed,
            format!("{} link(s) down", links.len()),
            t0,
        );
    }

    pub(super) fn start(&mut self, i: StepId) {
        let t0 = match self.exec_step(i) {
            Ok((_, t0)) => t0,
            Err(m) => {
                self.fail(FailureKind::AfterRestore, format!("start failed: {m}"));
                return;
            }
        };
        let deadline = Instant::now() + self.ctx.o.probe_timeout.max(Duration::from_secs(5)) * 3;
        let node = self.rec.node.clone().unwrap_or_default();
        let client = pvedr::pve::Client::new(self.t);
        let at = guest::at(&node, self.lxc, self.target);
        let polled = poll_until(deadline, Duration::from_millis(500), || {
            let status = client.guest_status(at)?;
            Ok(status.is_ok_and(|s| s.running()).then_some(()))
        });
        let running = match polled {
            Ok(r) => r.is_some(),
            Err(e) => {
                self.lost = true;
                let m = format!("{}; the node's state is unknown", e.lost());
                self.fail(FailureKind::StateUnknown, m.clone());
                self.plan.finish(i, StepStatus::Failed, m, t0);
                return;
            }
        };
        if running {
            self.plan.finish(i, StepStatus::Changed, "running", t0);
        } else {
            self.plan
                .finish(i, StepStatus::Failed, "did not reach running", t0);
            self.fail(FailureKind::AfterRestore, "the guest did not start".into());
        }
    }

    pub(super) fn probes(&mut self) {
        let Some(conf) = self.read_config() else {
            return;
        };
        let ip = conf.ok().and_then(|c| probe::config_ip(&c));
        let timeout = self.ctx.o.probe_timeout;
        let bounds = pvedr::http::Bounds {
            connect: timeout,
            io: timeout,
        };
        let http = match pvedr::http::agent(&self.ctx.cli.connect.tls, bounds) {
            Ok(a) => Some(a),
            Err(e) => {
                pvedr::msg::warn(format!("HTTP probes cannot run: {e}"));
                None
            }
        };
        let target = ProbeTarget {
            transport: self.t,
            vmid: self.target,
            lxc: self.lxc,
            ip,
            timeout,
            http: http.as_ref(),
        };
        let mut retry = Retry::new(self.ctx.cli.probe_retries, Duration::from_secs(2));
        retry.factor = 1;
        let mut verify = Vec::new();
        for (p, &i) in self.ctx.o.probes.iter().zip(&self.s.probes.clone()) {
            let t0 = Instant::now();
            if let Some(why) = probe::cannot_check(p, &target) {
                self.plan.finish(i, StepStatus::Skipped, why, t0);
                verify.push(
                    json!({"probe": p.name(), "status": StepStatus::Skipped, "message": why, "attempts": 0}),
                );
                continue;
            }
            let mut attempts = 0;
            let r = retry.run_when(
                &format!("probe {}", p.name()),
                |a| {
                    attempts = a;
                    probe::run_once(p, &target)
                },
                |_| !pvedr::interrupt::requested(),
            );
            let (status, m) = match r {
                Ok(m) => (StepStatus::Ok, m),
                Err(m) => {
                    let f = format!("verification failed: {} ({m})", p.name());
                    self.fail(FailureKind::AfterRestore, f);
                    (StepStatus::Failed, m)
                }
            };
            self.plan.finish(i, status.clone(), m.clone(), t0);
            verify.push(
                json!({"probe": p.name(), "status": status, "message": m, "attempts": attempts}),
            );
        }
        self.rec.verify = Some(Value::Array(verify));
    }

    /// The drill destroys its scratch guest whatever happened.
    pub(super) fn cleanup(&mut self) {
        let Some(i) = self.s.cleanup else { return };
        if !self.restored || self.lost {
            return;
        }
        let _ = self.t.exec(&RemoteCommand::write(argv(&[
            self.tool(),
            "stop",
            &self.id(),
        ])));
        match self.exec_step(i) {
            Ok((_, t0)) => self.plan.finish(
                i,
                StepStatus::Changed,
                format!("scratch guest {} destroyed", self.target),
                t0,
            ),
            Err(m) if !self.lost => {
                let f = format!(
                    "cleanup failed: {m}; destroy {} {} by hand",
                    self.tool(),
                    self.target
                );
                self.fail(FailureKind::Cleanup, f);
            }
            Err(_) => {}
        }
    }
}
