//! Which backups to restore: one named by its volume ID, the newest of a guest, or the
//! records on input.

use pvedr::error::{Error, Result};
use pvedr::listing::{self, Extras, SelectArgs};
use pvedr::records::{Backup, Record};
use pvedr::transport::Transport;
use pvedr::{archive, jsonl, time, validate};

use crate::cli::Cli;
use crate::options::Options;

/// A backup named by its volume ID alone.
pub(crate) fn backup_of_volid(volid: &str, node: Option<String>) -> Result<Backup> {
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
pub(crate) fn from_input(cli: &Cli, o: &Options) -> Result<Vec<Backup>> {
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
    // A sample passes over them: the newest finished backup of each guest is drilled.
    let unfinished = backups.iter().find(|b| b.unfinished);
    if let Some(b) = unfinished.filter(|_| cli.sample.is_none()) {
        return Err(Error::usage(format!(
            "{} is an unfinished PBS snapshot (no manifest: a backup still being written), not a backup to restore",
            b.volid
        )));
    }
    if backups.len() > 1 && !cli.all && cli.sample.is_none() {
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
pub(crate) fn newest_of(t: &dyn Transport, node: &str, vmid: u64, cli: &Cli) -> Result<Backup> {
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
