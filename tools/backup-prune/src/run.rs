use pvedr::change::{self, Approval, Tally};
use pvedr::connect::Connection;
use pvedr::error::{Error, Result, code};
use pvedr::output::Format;
use pvedr::records::{Backup, Record};
use pvedr::time::Zone;
use pvedr::{jsonl, pvesh, validate};

use crate::cli::Cli;
use crate::plan::{self, PolicySource};
use crate::{apply, offsite, table};
use pvedr::retention::KeepOptions;

fn policy_source(cli: &Cli) -> Result<PolicySource> {
    if cli.from_job {
        return Ok(PolicySource::FromJob);
    }
    if let Some(s) = &cli.prune_backups {
        let o = KeepOptions::from_arg(s)
            .map_err(|e| Error::usage(format!("--prune-backups '{s}': {e}")))?;
        return Ok(PolicySource::Fixed(o));
    }
    let flags = cli.keep.0;
    if flags.iter().all(Option::is_none) && !cli.keep_all {
        return Err(Error::usage(
            "no retention given: use --keep-last/--keep-daily/… , --keep-all, --prune-backups or --from-job",
        ));
    }
    let [last, hourly, daily, weekly, monthly, yearly] = flags.map(|f| f.unwrap_or(0));
    let o = KeepOptions {
        last,
        hourly,
        daily,
        weekly,
        monthly,
        yearly,
        all: cli.keep_all,
    };
    o.validate().map_err(|e| Error::usage(e.0))?;
    Ok(PolicySource::Fixed(o))
}

/// Periods are the node's days: with a node to talk to (--host, --tfvars, --apply) and no
/// --timezone, its own zone; the connection is kept for --apply. Offsite copies alone
/// (backup-sync ls) need no node: TZ or the system zone.
fn node_zone(cli: &Cli, given: Zone, records: &[Record]) -> Result<(Zone, Option<Connection>)> {
    let offsite_only = records
        .iter()
        .filter(|r| matches!(r, Record::Backup(_)))
        .all(offsite::is_offsite);
    let talks = (cli.apply && !offsite_only) || cli.connect.names_a_node();
    if cli.timezone.is_some() || !talks {
        return Ok((given, None));
    }
    let conn = cli.connect.connect()?;
    let zone = pvesh::node_zone(conn.transport.as_ref(), "localhost")?;
    Ok((zone, Some(conn)))
}

pub fn run(cli: Cli) -> Result<u8> {
    // Every flag is checked before any input is read or anything is run on a node.
    let zone = Zone::from_arg(cli.timezone.as_deref())?;
    let source = policy_source(&cli)?;
    if let Some(n) = &cli.node {
        validate::node(n)?;
    }
    if cli.apply {
        // The S3 flags too (a region that cannot be signed), before anything is deleted.
        cli.s3.endpoint()?;
    }
    // Other kinds are passed through as they came: one of them never fails the run.
    let kinds: &'static [&'static str] = if cli.from_job {
        &["backup", "job"]
    } else {
        &["backup"]
    };
    let mut records = jsonl::read_only(&cli.input.files, kinds)?;
    if cli.from_job && !records.iter().any(|r| matches!(r, Record::Job(_))) {
        // Without them every guest would be kept as "no job": a prune that silently does
        // nothing.
        return Err(Error::usage(
            "--from-job takes each guest's retention from the `job` records of the input, and there are none: add --with-jobs to pve-ls-backups (nothing was marked)",
        ));
    }
    let (zone, conn) = node_zone(&cli, zone, &records)?;
    let zones = if cli.timezone.is_some() {
        plan::Zones::Given(zone)
    } else {
        plan::Zones::Records { otherwise: zone }
    };
    let warnings = plan::mark_records(&mut records, &source, zones).map_err(Error::Other)?;
    for w in warnings {
        pvedr::msg::warn(w);
    }
    let mut out = cli.output.output();
    if out.format() == Format::Table {
        let backups: Vec<&Backup> = records
            .iter()
            .filter_map(|r| match r {
                Record::Backup(b) => Some(b),
                _ => None,
            })
            .collect();
        table::write(out.raw(), &backups, !cli.apply)
            .map_err(|e| Error::io("writing to standard output", e))?;
    } else {
        for r in &records {
            out.write(r)?;
        }
    }
    // The marks are out before the question, so a pipe's reader has them either way.
    out.flush()?;
    let go = cli.apply && approve(&cli, &records, out.format())? == Approval::Go;
    let status = if go {
        let started = std::time::Instant::now();
        let report = apply_both(&cli, &records, &mut out, conn)?;
        pvedr::msg::say(format!(
            "{} deleted, {} skipped, {} failed",
            report.deleted, report.skipped, report.failed
        ));
        if report.interrupted {
            pvedr::msg::say(
                "interrupted: the running deletion finished, the rest were not attempted; run the same command again to finish",
            );
        }
        let tally = Tally {
            changed: report.deleted,
            skipped: report.skipped,
            failed: report.failed,
        };
        let code = tally.exit_code(report.interrupted);
        out.write(&tally.summary("backup-prune", code, started))?;
        code
    } else {
        code::SUCCESS
    };
    out.finish()?;
    Ok(status)
}

/// The preview of what --apply deletes, on stderr before anything is deleted (unless the
/// table went to stdout already), then the change contract's gate.
fn approve(cli: &Cli, records: &[Record], format: Format) -> Result<Approval> {
    let removes: Vec<&Backup> = records
        .iter()
        .filter_map(|r| match r {
            Record::Backup(b) if b.extra.get("mark").and_then(|m| m.as_str()) == Some("remove") => {
                Some(b)
            }
            _ => None,
        })
        .collect();
    if removes.is_empty() {
        pvedr::msg::say("nothing is marked remove: nothing to delete");
        return Ok(Approval::Go);
    }
    if format != Format::Table {
        pvedr::msg::say(format!("--apply deletes these {} backups:", removes.len()));
        table::write(&mut std::io::stderr().lock(), &removes, false)
            .map_err(|e| Error::io("writing to standard error", e))?;
    }
    change::approve(
        &cli.write,
        &format!("deleting {} backups marked remove", removes.len()),
    )
}

/// Backups on a node through the node, offsite copies on S3 (`offsite`).
fn apply_both(
    cli: &Cli,
    records: &[Record],
    out: &mut pvedr::output::Output,
    conn: Option<Connection>,
) -> Result<apply::Report> {
    let (remote, local): (Vec<Record>, Vec<Record>) =
        records.iter().cloned().partition(offsite::is_offsite);
    let mut report = apply::apply(cli, &local, out, conn)?;
    let r = offsite::apply(cli, &remote, out)?;
    report.deleted += r.deleted;
    report.skipped += r.skipped;
    report.failed += r.failed;
    report.interrupted |= r.interrupted;
    Ok(report)
}
