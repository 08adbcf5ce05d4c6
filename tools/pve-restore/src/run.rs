//! Parses, picks the backups, restores them one by one (each guest's record written as soon
//! as it is done), and ends with a summary.

use std::time::{Duration, Instant};

use pvedr::error::{Error, Result, exit_for};
use pvedr::listing::{self, Extras, SelectArgs};
use pvedr::records::{Backup, Record, Restore, RestoreStatus, Summary};
use pvedr::transport::Transport;
use pvedr::{archive, jsonl, time, validate};
use serde_json::Map;

use crate::cli::Cli;
use crate::probe::{self, Probe};
use crate::restore::{Ctx, restore_one};

/// What the flags asked for, checked before anything runs on a node.
pub struct Options {
    pub target: Option<u64>,
    pub node: Option<String>,
    pub storage: Option<String>,
    pub safety_storage: Option<String>,
    pub probes: Vec<Probe>,
    pub start: bool,
    pub probe_timeout: Duration,
    pub wait_lock: Duration,
}

fn storage_flag(s: &Option<String>) -> Result<Option<String>> {
    s.as_deref()
        .map(|s| validate::storage_id(s).map(String::from))
        .transpose()
}

fn options(cli: &Cli) -> Result<Options> {
    let mut probes = Vec::new();
    for p in &cli.probe {
        probes.extend(probe::parse(p)?);
    }
    if cli.test && !probes.contains(&Probe::Agent) {
        probes.insert(0, Probe::Agent);
    }
    let wait_lock = cli
        .wait_lock
        .as_deref()
        .map(time::parse_duration)
        .transpose()?;
    Ok(Options {
        target: cli.target_id.as_deref().map(validate::vmid).transpose()?,
        node: cli
            .node
            .as_deref()
            .map(|n| validate::node(n).map(String::from))
            .transpose()?,
        storage: storage_flag(&cli.storage)?,
        safety_storage: storage_flag(&cli.safety_storage)?,
        start: cli.start || !probes.is_empty(),
        probes,
        probe_timeout: Duration::from_secs(time::parse_duration(&cli.probe_timeout)?.max(1)),
        wait_lock: Duration::from_secs(wait_lock.unwrap_or(0)),
    })
}

/// A backup named by its volume ID alone.
fn backup_of_volid(volid: &str, node: Option<String>) -> Result<Backup> {
    validate::volid(volid)?;
    let (storage, name) = volid.split_once(':').unwrap_or(("", volid));
    let pbs = name
        .strip_prefix("backup/vm/")
        .map(|r| ("qemu", r))
        .or_else(|| name.strip_prefix("backup/ct/").map(|r| ("lxc", r)));
    let (subtype, vmid, format) = match pbs {
        Some((kind, rest)) => (
            kind.to_string(),
            rest.split('/').next().and_then(|v| v.parse().ok()),
            format!("pbs-{}", if kind == "qemu" { "vm" } else { "ct" }),
        ),
        None => {
            let file = name.rsplit('/').next().unwrap_or(name);
            let a = archive::parse(file)
                .ok_or_else(|| Error::usage(format!("'{volid}' is not a vzdump archive name")))?;
            (a.subtype, a.vmid, a.format)
        }
    };
    Ok(Backup {
        node,
        storage: Some(storage.into()),
        volid: volid.into(),
        vmid,
        subtype,
        format,
        ..Default::default()
    })
}

/// Backup records from FILE or stdin (read before connecting: bad input costs nothing).
fn from_input(cli: &Cli, o: &Options) -> Result<Vec<Backup>> {
    let backups: Vec<Backup> = jsonl::read_only(&cli.input.files, &["backup"])?
        .into_iter()
        .filter_map(|r| match r {
            Record::Backup(b) => Some(b),
            _ => None,
        })
        .collect();
    if backups.is_empty() {
        return Err(Error::usage(
            "no backup to restore: give --volid, --vmid, or backup records on stdin",
        ));
    }
    if let Some(b) = backups.iter().find(|b| b.unfinished) {
        return Err(Error::usage(format!(
            "{} is an unfinished PBS snapshot (no manifest: a backup still being written), not a backup to restore",
            b.volid
        )));
    }
    if backups.len() > 1 && !cli.all {
        return Err(Error::usage(format!(
            "{} backups on input: restoring several guests needs --all (or pipe one, e.g. pve-ls-backups --vmid N --latest)",
            backups.len()
        )));
    }
    if o.target.is_some() && backups.len() > 1 {
        return Err(Error::usage("--target-vmid with several backups"));
    }
    Ok(backups)
}

/// The newest backup of `vmid` on `node` (of that day with --date: the node's calendar day).
fn newest_of(t: &dyn Transport, node: &str, vmid: u64, cli: &Cli) -> Result<Backup> {
    let day = match &cli.date {
        Some(d) => Some(time::day_range(d, pvedr::pvesh::node_zone(t, node)?)?),
        None => None,
    };
    let sel = SelectArgs {
        node: vec![node.to_string()],
        ..Default::default()
    };
    let g = listing::gather_remote(t, &sel, Extras::default(), None)?;
    let of_guest = g
        .backups
        .iter()
        .filter(|b| b.vmid == Some(vmid))
        .filter(|b| day.is_none_or(|(from, to)| b.ctime >= from && b.ctime < to));
    pvedr::newest::newest(of_guest).cloned().ok_or_else(|| {
        Error::Refused(format!(
            "no backup of guest {vmid}{} found on {node}",
            cli.date
                .as_deref()
                .map(|d| format!(" from {d}"))
                .unwrap_or_default()
        ))
    })
}

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
