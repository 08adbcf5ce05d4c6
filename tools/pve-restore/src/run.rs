//! Parses, picks the backups, restores them one by one (each guest's record written as soon
//! as it is done), and ends with a summary.

use std::time::Instant;

use pvedr::error::{Error, Result, exit_for};
use pvedr::records::{Backup, Record, Restore, RestoreStatus, Summary};
use pvedr::{time, validate};
use serde_json::Map;

use crate::cli::Cli;
use crate::history::History;
use crate::options::{Options, options};
use crate::pick::{backup_of_volid, from_input, newest_of};
use crate::restore::{Ctx, restore_one};

pub fn run(cli: Cli) -> Result<u8> {
    let started = Instant::now();
    let opts = options(&cli)?;
    let vmid_arg = cli.vmid.as_deref().map(validate::vmid).transpose()?;
    if let Some(s) = &cli.snapshot {
        validate::snapshot_name(s)?;
    }
    if let Some(v) = &cli.volid {
        validate::volid(v)?;
    }
    // Checked now; read as a day in the node's zone once connected.
    if let Some(d) = &cli.date {
        time::day_range(d, time::Zone::Local)?;
    }
    if opts.maps.any() && (cli.snapshot.is_some() || cli.verify_only) {
        return Err(Error::usage(
            "--target-storage, --target-bridge and --drop-passthrough go with a restore, not --snapshot or --verify-only",
        ));
    }
    if cli.snapshot.is_some() && cli.test {
        return Err(Error::usage("--snapshot and --test do not go together"));
    }
    let keep = cli.drill_history_keep;
    let mut history = cli
        .drill_history
        .as_deref()
        .map(|p| History::open(p, keep))
        .transpose()?;
    // Read before connecting: a history that cannot be read costs nothing.
    let drilled = match (&cli.drill_history, cli.sample) {
        (Some(p), Some(_)) => crate::drill::last_success(p)?,
        _ => Default::default(),
    };
    if cli.sample.is_some() && cli.drill_history.is_none() {
        pvedr::msg::say("--sample without --drill-history: every guest counts as never drilled");
    }
    let from_node = cli.sample.is_some() && cli.all;
    let stdin_backups = match (&cli.volid, vmid_arg) {
        (None, None) if !from_node => from_input(&cli, &opts)?,
        _ => Vec::new(),
    };
    let conn = cli.connect.connect()?;
    let t = conn.transport.as_ref();
    let cluster = pvedr::cluster::read(t)?;
    let default_node = opts
        .node
        .clone()
        .or(conn.tfvars_node.clone())
        .or(cluster.local.clone())
        .ok_or_else(|| Error::Other("cannot tell which node this is; give --node".into()))?;
    let cache = crate::cache::RunCache::default();
    let ctx = Ctx {
        cli: &cli,
        o: &opts,
        t,
        port: conn.port,
        cluster,
        scratch_taken: Default::default(),
        cache: &cache,
    };
    let mut out = cli.output.output();
    let mut records: Vec<Restore> = Vec::new();
    if let (Some(vmid), true) = (vmid_arg, cli.verify_only) {
        let at = now_rfc3339();
        let r = stamped(crate::restore::verify_existing(&ctx, vmid)?, at, &cli, None);
        write(&mut out, history.as_mut(), &r)?;
        records.push(r);
    } else if let (Some(vmid), Some(snap)) = (vmid_arg, cli.snapshot.as_deref()) {
        let at = now_rfc3339();
        let r = crate::snapshot::rollback(&ctx, vmid, snap, &default_node)?;
        let r = stamped(r, at, &cli, None);
        write(&mut out, history.as_mut(), &r)?;
        records.push(r);
    } else {
        let backups = match (&cli.volid, vmid_arg) {
            // Its node is chosen by restore_one (where its storage is enabled).
            (Some(v), _) => vec![backup_of_volid(v, None)?],
            (None, Some(vmid)) => vec![newest_of(t, &default_node, vmid, &cli)?],
            (None, None) if from_node => crate::drill::from_node(t)?,
            (None, None) => stdin_backups,
        };
        let backups = match cli.sample {
            Some(n) => crate::drill::sample(backups, &drilled, n as usize),
            None => backups,
        };
        if backups.is_empty() && from_node {
            return Err(Error::Refused("no backup to drill on the cluster".into()));
        }
        crate::restore::prefetch(&ctx, &backups, &default_node);
        for b in backups {
            let rec = restore_guest(&ctx, b, &default_node)?;
            // Written now: a later guest's failure or a Ctrl-C must not lose it.
            write(&mut out, history.as_mut(), &rec)?;
            let stop = rec.status == RestoreStatus::Interrupted;
            records.push(rec);
            if stop {
                break;
            }
        }
    }
    let exit = summary(&records, started, &mut out)?;
    out.finish()?;
    Ok(exit)
}

/// Now, as a record's `started`.
fn now_rfc3339() -> String {
    pvedr::records::rfc3339(time::now())
}

/// `rec` with when it started, whether it was a drill, and the archive's size.
fn stamped(mut rec: Restore, started: String, cli: &Cli, size: Option<u64>) -> Restore {
    rec.started = Some(started);
    rec.drill = Some(cli.test);
    rec.size = size;
    rec
}

/// One guest's restore; a drill without --target-vmid on a scratch VMID only this run holds.
fn restore_guest(ctx: &Ctx, b: Backup, default_node: &str) -> Result<Restore> {
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

/// The record on standard output, flushed, and in the drill history when there is one.
fn write(
    out: &mut pvedr::output::Output,
    history: Option<&mut History>,
    r: &Restore,
) -> Result<()> {
    out.write(&Record::Restore(r.clone()))?;
    out.flush()?;
    match history {
        Some(h) => h.append(r),
        None => Ok(()),
    }
}

fn summary(records: &[Restore], started: Instant, out: &mut pvedr::output::Output) -> Result<u8> {
    use RestoreStatus as S;
    let ok = |r: &&Restore| matches!(r.status, S::Restored | S::Verified | S::Planned);
    let succeeded = records.iter().filter(ok).count();
    // A wait on a task ended by Ctrl-C leaves a failed record, but the run was interrupted.
    let interrupted =
        records.iter().any(|r| r.status == S::Interrupted) || pvedr::interrupt::requested();
    let exit = exit_for(succeeded, records.len() - succeeded, interrupted);
    out.write(&Record::Summary(Summary {
        tool: Some("pve-restore".into()),
        counts: pvedr::status::counts(records.iter().map(|r| &r.status)),
        exit_code: exit,
        duration_s: Some(pvedr::records::seconds_since(started)),
        extra: Map::new(),
    }))?;
    Ok(exit)
}
