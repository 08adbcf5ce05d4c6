use pvedr::Record;
use pvedr::error::{Result, code};
use pvedr::listing::{self, Extras, Filter, Gathered};
use pvedr::output::Format;
use pvedr::records::Listing;
use pvedr::time::Zone;

use crate::cli::Cli;

/// Lists, and ends the records with a `listing` record saying whether they are whole; a run
/// that fails before listing anything still says so, so `| backup-check` cannot read an
/// unreachable node as "no problem".
pub fn run(cli: Cli) -> Result<u8> {
    let result = list(&cli);
    if let Err(e) = &result {
        // A usage error asked nothing of a node: stdout stays empty, as for a bad flag.
        let attempted = e.exit_code(pvedr::ExitScheme::Standard) != code::USAGE;
        if attempted && !e.is_broken_pipe() && cli.output.format() == Format::Jsonl {
            let closing = Listing {
                error: Some(pvedr::msg::printable(&e.to_string())),
                ..Default::default()
            };
            // Best effort: the error itself is what the exit code and stderr report.
            let mut out = cli.output.output();
            let _ = out
                .write(&Record::Listing(closing))
                .and_then(|()| out.finish());
        }
    }
    result
}

fn list(cli: &Cli) -> Result<u8> {
    let zone = Zone::from_arg(cli.listing.select.timezone.as_deref())?;
    // Every value is checked before anything runs on a node.
    let mut filter = cli.filter.parse(zone)?;
    let extras = Extras {
        guests: cli.with_guests,
        storage: cli.with_storage,
        jobs: cli.with_jobs,
        failures: cli.with_failures,
    };
    let gathered = if cli.listing.select.dir.is_some() {
        listing::gather_dir(&cli.listing.select, zone, extras)?
    } else {
        let g = cli
            .listing
            .connect
            .connect()?
            .gather(&cli.listing.select, extras)?;
        // Dates are the node's days: checked above, read again in its zone.
        filter = cli.filter.parse(g.zone(&cli.listing.select)?)?;
        g
    };
    emit(cli, &filter, gathered)
}

fn emit(cli: &Cli, filter: &Filter, g: Gathered) -> Result<u8> {
    let mut out = cli.output.output();
    let mut written: u64 = 0;
    let mut write = |out: &mut pvedr::output::Output, r: Record| {
        written += 1;
        out.write(&r)
    };
    for f in &g.failures {
        if filter.vmids.is_empty() || filter.vmids.contains(&f.vmid) {
            pvedr::msg::say(format!(
                "failed backup of {} {} at {}: {} ({})",
                f.subtype,
                f.vmid,
                f.time,
                f.error.as_deref().unwrap_or("no ERROR line"),
                f.log
            ));
        }
    }
    for s in g.storages {
        write(&mut out, Record::Storage(s))?;
    }
    for j in g.jobs {
        write(&mut out, Record::Job(j))?;
    }
    for guest in g.guests {
        if filter.vmids.is_empty() || filter.vmids.contains(&guest.vmid) {
            write(&mut out, Record::Guest(guest))?;
        }
    }
    for b in filter.apply(g.backups) {
        write(&mut out, Record::Backup(b))?;
    }
    if cli.with_failures {
        for f in g.failures {
            if filter.vmids.is_empty() || filter.vmids.contains(&f.vmid) {
                write(&mut out, Record::BackupFailure(f))?;
            }
        }
    }
    // Tables and CSV are for people, who read the problems on stderr.
    if out.format() == Format::Jsonl {
        let closing = Listing {
            complete: g.problems.is_empty(),
            records: written,
            problems: g.problems.clone(),
            blind: g.blind.clone(),
            ..Default::default()
        };
        out.write(&Record::Listing(closing))?;
    }
    out.finish()?;
    Ok(if g.problems.is_empty() {
        code::SUCCESS
    } else {
        code::PARTIAL
    })
}
