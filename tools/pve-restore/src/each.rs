//! One guest's restore as the run does it: stamped with when it started, whether it was a
//! drill and the archive's size; a drill on a scratch VMID only this run holds.

use std::time::Instant;

use pvedr::error::Result;
use pvedr::records::{Backup, Restore, RestoreStatus};
use pvedr::time;

use crate::cli::Cli;
use crate::options::Options;
use crate::restore::{Ctx, restore_one};

/// Now, as a record's `started`.
pub fn now_rfc3339() -> String {
    pvedr::records::rfc3339(time::now())
}

/// `rec` with when it started, whether it was a drill, and the archive's size.
pub fn stamped(mut rec: Restore, started: String, cli: &Cli, size: Option<u64>) -> Restore {
    rec.started = Some(started);
    rec.drill = Some(cli.test);
    rec.size = size;
    rec
}

/// Each backup in turn, each record handed over as soon as it is done; an interrupted
/// guest ends the run.
pub fn restore_all(
    ctx: &Ctx,
    backups: Vec<Backup>,
    default_node: &str,
    put: &mut dyn FnMut(Restore) -> Result<()>,
) -> Result<()> {
    let several = backups.len() > 1;
    for b in backups {
        let rec = match several {
            true => restore_among(ctx, b, default_node)?,
            false => restore_guest(ctx, b, default_node)?,
        };
        let stop = rec.status == RestoreStatus::Interrupted;
        put(rec)?;
        if stop {
            break;
        }
    }
    Ok(())
}

/// One guest of several records: what refuses this guest alone (a map that cannot place
/// it, a choice of node only --node can make; a usage error, exit 2, for one record) is
/// its own refusal, and the other guests go on.
pub fn restore_among(ctx: &Ctx, b: Backup, default_node: &str) -> Result<Restore> {
    let node = node_of(ctx, &b, default_node);
    let started = now_rfc3339();
    let (vmid, volid, size) = (b.vmid, b.volid.clone(), b.size);
    match restore_guest(ctx, b, default_node) {
        Err(pvedr::Error::Usage(msg)) => {
            let rec = Restore {
                vmid,
                volid: Some(volid),
                node: Some(node),
                dry_run: ctx.cli.write.dry_run,
                ..Default::default()
            };
            let rec = crate::restore::refused(rec, Default::default(), msg, Instant::now());
            Ok(stamped(rec, started, ctx.cli, size))
        }
        r => r,
    }
}

/// The node a backup is restored on as far as the flags and its record say (an offsite
/// copy goes to --node or this node).
pub fn node_of(ctx: &Ctx, b: &Backup, default_node: &str) -> String {
    match (&ctx.o.node, crate::offsite::of(b)) {
        (Some(n), _) => n.clone(),
        (None, None) => b.node.clone().unwrap_or_else(|| default_node.into()),
        (None, Some(_)) => default_node.to_string(),
    }
}

/// One guest's restore; a drill without --target-vmid on a scratch VMID only this run holds.
pub fn restore_guest(ctx: &Ctx, b: Backup, default_node: &str) -> Result<Restore> {
    let started = now_rfc3339();
    let size = b.size;
    let rec = match (ctx.cli.test, ctx.o.target) {
        (true, None) => drill_on_scratch(ctx, b, default_node)?,
        _ => restore_one(ctx, b, default_node)?,
    };
    Ok(stamped(rec, started, ctx.cli, size))
}

/// A drill on a reserved scratch VMID; when another machine's guest took it meanwhile,
/// again on another one, up to [`crate::drill::SCRATCH_TRIES`] times.
fn drill_on_scratch(ctx: &Ctx, b: Backup, default_node: &str) -> Result<Restore> {
    let mut taken = Vec::new();
    loop {
        let scratch = crate::drill::reserve(ctx.t, ctx.port, &taken)?;
        // Chosen from the guests as they are now: the plan must not see older ones.
        ctx.cache.changed();
        let o = Options {
            target: Some(scratch.vmid),
            ..ctx.o.clone()
        };
        let c = Ctx {
            cli: ctx.cli,
            o: &o,
            t: ctx.t,
            port: ctx.port,
            cluster: ctx.cluster.clone(),
            scratch_taken: Default::default(),
            cache: ctx.cache,
        };
        let rec = restore_one(&c, b.clone(), default_node)?;
        if !c.scratch_taken.get() || taken.len() + 1 >= crate::drill::SCRATCH_TRIES {
            return Ok(rec);
        }
        pvedr::msg::say(format_args!(
            "scratch VMID {} was taken meanwhile; drilling on another",
            scratch.vmid
        ));
        taken.push(scratch.vmid);
    }
}
