//! One guest's restore as the run does it: stamped with when it started, whether it was a
//! drill and the archive's size; a drill on a scratch VMID only this run holds.

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
    for b in backups {
        let rec = restore_guest(ctx, b, default_node)?;
        let stop = rec.status == RestoreStatus::Interrupted;
        put(rec)?;
        if stop {
            break;
        }
    }
    Ok(())
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
