//! Parses, picks the backups, restores them one by one (each guest's record written as soon
//! as it is done), and ends with a summary.

use std::time::Instant;

use pvedr::error::{Error, Result, exit_for};
use pvedr::records::{Record, Restore, RestoreStatus, Summary};
use pvedr::{time, validate};
use serde_json::Map;

use crate::cli::Cli;
use crate::options::options;
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
    let stdin_backups = match (&cli.volid, vmid_arg) {
        (None, None) => from_input(&cli, &opts)?,
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
    let ctx = Ctx {
        cli: &cli,
        o: &opts,
        t,
        port: conn.port,
        cluster,
    };
    let mut out = cli.output.output();
    let mut records: Vec<Restore> = Vec::new();
    if let (Some(vmid), true) = (vmid_arg, cli.verify_only) {
        let r = crate::restore::verify_existing(&ctx, vmid)?;
        out.write(&Record::Restore(r.clone()))?;
        records.push(r);
    } else if let (Some(vmid), Some(snap)) = (vmid_arg, cli.snapshot.as_deref()) {
        let r = crate::snapshot::rollback(&ctx, vmid, snap, &default_node)?;
        out.write(&Record::Restore(r.clone()))?;
        records.push(r);
    } else {
        let backups = match (&cli.volid, vmid_arg) {
            // Its node is chosen by restore_one (where its storage is enabled).
            (Some(v), _) => vec![backup_of_volid(v, None)?],
            (None, Some(vmid)) => vec![newest_of(t, &default_node, vmid, &cli)?],
            (None, None) => stdin_backups,
        };
        for b in backups {
            let rec = restore_one(&ctx, b, &default_node)?;
            // Written now: a later guest's failure or a Ctrl-C must not lose it.
            out.write(&Record::Restore(rec.clone()))?;
            out.flush()?;
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
