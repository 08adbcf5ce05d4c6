//! An offsite record's restore (`crate::offsite`): its plan steps, its check (HEAD) and
//! the restore step streamed from S3 into `qmrestore -` / `pct restore N -`.

use super::*;
use crate::offsite::{self, Offsite};
use pvedr::pve::Kind;

/// What a streamed restore needs beside the record.
pub(super) struct Streamed {
    pub o: Offsite,
    /// A container's `--rootfs`, `--mpN`, `--unprivileged` (from the archive's head).
    pub ct_args: Vec<String>,
    /// The storage of a container's root file system in the backup.
    pub rootfs_storage: Option<String>,
    /// The archive's own config, from the head of the object: a container's always, a
    /// VM's when maps need it.
    pub config: Option<GuestConfig>,
}

/// An offsite record made ready: `Ok(None)` for any other record, `Err(why)` a refusal.
pub(super) fn prepare(
    ctx: &Ctx,
    o: Option<Result<Offsite, String>>,
    lxc: bool,
    overwrite: bool,
) -> std::result::Result<Option<Streamed>, String> {
    let Some(mut o) = o.transpose()? else {
        return Ok(None);
    };
    if o.encrypted {
        o.ids = Some(identities(ctx, &o.url)?);
    }
    if !ctx.t.has_shell() {
        return Err(pvedr::pipeline::PipeError::NeedsShell {
            host: ctx.t.host().to_string(),
        }
        .to_string());
    }
    if overwrite && ctx.o.safety_storage.is_none() {
        return Err(format!(
            "overwriting a guest from {} needs --safety-storage (the bucket is no Proxmox storage for the safety point); nothing was changed",
            o.url
        ));
    }
    let (mut ct_args, mut rootfs_storage, mut config) = (Vec::new(), None, None);
    if lxc {
        let c = o.config(&ctx.cli.s3, Kind::Lxc)?;
        // Under maps each volume goes where its map says (`remap::ct_args`).
        if !ctx.o.maps.any() {
            ct_args = offsite::ct_args(&c, ctx.o.storage.as_deref())?;
        } else if c.rest.get("unprivileged").is_some_and(|v| v == "1") {
            // A pipe restore takes no config before the extraction: said again.
            ct_args = vec!["--unprivileged".into(), "1".into()];
        }
        rootfs_storage = c.rootfs_storage().map(str::to_string);
        config = Some(c);
    } else if ctx.o.maps.any() {
        config = Some(o.config(&ctx.cli.s3, Kind::Qemu)?);
    }
    Ok(Some(Streamed {
        o,
        ct_args,
        rootfs_storage,
        config,
    }))
}

/// The `--age-identity` that opens an encrypted copy: loaded once (a file group or others
/// can read is refused; no line of it is ever said), checked against nothing more here:
/// a copy for other recipients is refused when its header is read, before any change.
fn identities(
    ctx: &Ctx,
    url: &str,
) -> std::result::Result<std::sync::Arc<pvedr::crypt::Identities>, String> {
    let Some(path) = ctx.cli.age_identity.as_deref() else {
        return Err(format!(
            "{url} is encrypted (age): give --age-identity FILE, the identity its push was encrypted to; nothing was changed"
        ));
    };
    pvedr::crypt::Identities::load(path)
        .map(std::sync::Arc::new)
        .map_err(|e| format!("{e}; nothing was changed"))
}

impl Streamed {
    /// `qmrestore - N …` or `pct restore N - --rootfs … …`.
    pub fn restore_cmd(
        &self,
        lxc: bool,
        target: u64,
        force: bool,
        storage: Option<&str>,
        unique: bool,
    ) -> Vec<String> {
        let storage = storage.filter(|_| !lxc);
        let mut a = restore_cmd(lxc, "-", target, force, storage, unique);
        a.extend(self.ct_args.iter().cloned());
        a
    }
}

impl Job<'_> {
    /// The plan's check and restore steps say where the archive comes from.
    pub(super) fn plan_streamed(&mut self) {
        let Some(s) = &self.streamed else { return };
        let url = s.o.url.clone();
        let head = argv(&[
            "aws",
            "s3api",
            "head-object",
            "--bucket",
            &s.o.bucket,
            "--key",
            &s.o.key,
        ]);
        let c = &mut self.plan.steps[self.s.check];
        c.target = Some(url.clone());
        c.message = Some("the offsite copy is there and of its manifest's size (HEAD); its sha256 is checked as it streams".into());
        self.plan.set_command(self.s.check, head);
        let r = &mut self.plan.steps[self.s.restore];
        let why = r.message.clone().unwrap_or_default();
        r.message = Some(format!(
            "{why}; streamed from {url} (ranged GETs, decompressed here) into the command's stdin over SSH: no archive on the node's disk"
        ));
        if !self.overwrite {
            let id = self.id();
            self.s.leftover = Some(self.plan.change(
                "remove-leftover",
                &id,
                "only if the stream fails (sha256 mismatch, truncated, S3 lost): the guest just restored does not hold the backup",
                Some(argv(&[self.tool(), "destroy", &id])),
            ));
        }
    }

    /// HEAD of the object: there, and of the manifest's size.
    pub(super) fn check_streamed(&mut self) -> Option<String> {
        let s = self.streamed.as_ref()?;
        let (i, t0) = (self.s.check, Instant::now());
        match s.o.check(&self.ctx.cli.s3) {
            Ok(m) => {
                self.plan.finish(i, StepStatus::Ok, m, t0);
                None
            }
            Err(m) => {
                self.plan.finish(i, StepStatus::Failed, m.clone(), t0);
                Some(format!("{m}; nothing was changed"))
            }
        }
    }

    /// The restore step, the archive streamed into it; `Err` as [`Job::exec_step`].
    pub(super) fn exec_streamed(
        &mut self,
        i: StepId,
    ) -> std::result::Result<(CommandOutput, Instant), String> {
        let Some(s) = &self.streamed else {
            return self.exec_step(i);
        };
        let t0 = Instant::now();
        let _running = progress::start(&self.plan, i, &self.interrupt_answer(i));
        let cmd = RemoteCommand::write(self.plan.command(i).to_vec());
        let o = s.o.clone();
        let fed = o.feed(&self.ctx.cli.s3, self.t, &cmd);
        self.rec
            .extra
            .insert("offsite".into(), o.record(fed.as_ref().ok()));
        let m = match fed {
            Ok(f) => match (f.failed, f.out.success()) {
                (None, true) => return Ok((f.out, t0)),
                (None, false) => guest::status_line(&f.out),
                (Some(e), _) => format!("{e} ({})", guest::status_line(&f.out)),
            },
            // Nothing ran: no shell, no S3, no decompressor for this stream.
            Err(
                e @ (pvedr::Error::Stream(_)
                | pvedr::Error::S3 { .. }
                | pvedr::Error::S3Timeout { .. }
                | pvedr::Error::Usage(_)),
            ) => e.to_string(),
            Err(e) => {
                self.lost = true;
                format!("{}; the node's state is unknown", e.lost())
            }
        };
        self.plan.finish(i, StepStatus::Failed, m.clone(), t0);
        Err(m)
    }
}
