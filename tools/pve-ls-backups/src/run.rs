use pvedr::Record;
use pvedr::error::{Result, code};
use pvedr::listing::{self, Extras, Filter, Gathered};
use pvedr::time::Zone;

use crate::cli::Cli;

pub fn run(cli: Cli) -> Result<u8> {
    let zone = Zone::from_arg(cli.select.timezone.as_deref())?;
    // Every value is checked before anything runs on a node.
    let mut filter = cli.filter.parse(zone)?;
    let extras = Extras {
        guests: cli.with_guests,
        storage: cli.with_storage,
        jobs: cli.with_jobs,
        failures: cli.with_failures,
    };
    let gathered = if cli.select.dir.is_some() {
        listing::gather_dir(&cli.select, zone, extras)?
    } else {
        let conn = cli.connect.connect()?;
        let g = listing::gather_remote(
            conn.transport.as_ref(),
            &cli.select,
            extras,
            conn.tfvars_node.as_deref(),
        )?;
        // Dates are the node's days: checked above, read again in its zone.
        filter = cli.filter.parse(g.zone(&cli.select)?)?;
        g
    };
    emit(&cli, &filter, gathered)
}

fn emit(cli: &Cli, filter: &Filter, g: Gathered) -> Result<u8> {
    let mut out = cli.output.output();
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
        out.write(&Record::Storage(s))?;
    }
    for j in g.jobs {
        out.write(&Record::Job(j))?;
    }
    for guest in g.guests {
        if filter.vmids.is_empty() || filter.vmids.contains(&guest.vmid) {
            out.write(&Record::Guest(guest))?;
        }
    }
    for b in filter.apply(g.backups) {
        out.write(&Record::Backup(b))?;
    }
    if cli.with_failures {
        for f in g.failures {
            if filter.vmids.is_empty() || filter.vmids.contains(&f.vmid) {
                out.write(&Record::BackupFailure(f))?;
            }
        }
    }
    out.finish()?;
    Ok(if g.problems.is_empty() {
        code::SUCCESS
    } else {
        code::PARTIAL
    })
}
