//! Dispatches: checks the flags, connects, picks the backups, and hands them to the
//! restore of one guest after another (`each`), of a whole site (`site`), a verify or a
//! snapshot rollback; `report` writes the records and the summary.

use std::time::Instant;

use pvedr::error::{Error, Result};
use pvedr::records::Backup;
use pvedr::{time, validate};

use crate::cli::Cli;
use crate::each::{now_rfc3339, stamped};
use crate::history::History;
use crate::options::{Options, options};
use crate::pick::{backup_of_volid, from_input, newest_of};
use crate::report::{SiteFigures, Writer};
use crate::restore::Ctx;

pub fn run(cli: Cli) -> Result<u8> {
    let started = Instant::now();
    let opts = options(&cli)?;
    let vmid_arg = check_flags(&cli, &opts)?;
    let keep = cli.drill_history_keep;
    let history = cli
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
    let mut w = Writer::new(cli.output.output(), history);
    let mut site = None;
    if let (Some(vmid), true) = (vmid_arg, cli.verify_only) {
        let at = now_rfc3339();
        let r = crate::restore::verify_existing(&ctx, vmid)?;
        w.put(stamped(r, at, &cli, None))?;
    } else if let (Some(vmid), Some(snap)) = (vmid_arg, cli.snapshot.as_deref()) {
        let at = now_rfc3339();
        let r = crate::snapshot::rollback(&ctx, vmid, snap, &default_node)?;
        w.put(stamped(r, at, &cli, None))?;
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
        site = match is_site(&cli, &backups) {
            true => Some(restore_site(&ctx, backups, &default_node, &mut w)?),
            false => {
                crate::each::restore_all(&ctx, backups, &default_node, &mut |r| w.put(r))?;
                None
            }
        };
    }
    w.finish(started, site.as_ref())
}

/// Several records restored for real or planned (not drills: each drill is its own
/// scratch guest, destroyed after) are a site.
fn is_site(cli: &Cli, backups: &[Backup]) -> bool {
    backups.len() > 1 && !cli.test
}

/// The site's plan, said, then run: its figures for the summary.
fn restore_site(
    ctx: &Ctx,
    backups: Vec<Backup>,
    default_node: &str,
    w: &mut Writer,
) -> Result<SiteFigures> {
    let cli = ctx.cli;
    if cli.jobs > 1 && !cli.write.dry_run && !cli.write.yes {
        return Err(Error::usage(
            "--jobs above 1 restores guests at once, which one terminal cannot confirm: give --yes; nothing was done",
        ));
    }
    let history = cli.history.as_deref().or(cli.drill_history.as_deref());
    let plan = crate::site::build(ctx, backups, default_node, cli.jobs as usize, history)?;
    plan.say();
    let mut f = SiteFigures {
        predicted_rto_s: plan.predicted_rto_s,
        rpo_s: plan.rpo_s,
        rto_target: cli.rto_target,
        ..Default::default()
    };
    if f.missed() {
        pvedr::msg::warn(format!(
            "the site's predicted RTO exceeds --rto-target {}",
            crate::site::human(cli.rto_target.unwrap_or_default().as_secs_f64())
        ));
    }
    let ran = crate::site::run(ctx, &plan, default_node, &mut |r| w.put(r))?;
    f.rto_s = (!cli.write.dry_run).then_some(ran.wall_s);
    f.stopped = ran.stopped;
    Ok(f)
}

/// The flags checked before anything connects; the --vmid given.
fn check_flags(cli: &Cli, opts: &Options) -> Result<Option<u64>> {
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
    Ok(vmid_arg)
}
