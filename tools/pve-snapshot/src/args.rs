//! What the subcommands read from their shared flags: the guest selection, the lock wait.

use std::time::Duration;

use pvedr::error::{Error, Result};
use pvedr::listing::{Filter, FilterArgs, GuestArgs, GuestSelection};
use pvedr::time::{Zone, parse_duration};

/// The selection of a command. One that changes guests needs them named, and takes no
/// time filters (those are for `ls`).
pub fn selection(
    filter: &FilterArgs,
    guests: &GuestArgs,
    changes: bool,
) -> Result<(Filter, GuestSelection)> {
    let f = filter.parse(Zone::Local)?;
    if changes && (f.since.is_some() || f.until.is_some() || f.latest) {
        return Err(Error::usage("--since, --until and --latest are for ls"));
    }
    let sel = guests.parse(&f)?;
    if changes && !sel.names_guests() {
        return Err(Error::usage(
            "name the guests: --vmid, --all, --pool or --tag (nothing is done to every guest by default)",
        ));
    }
    Ok((f, sel))
}

pub fn wait_lock(arg: Option<&str>) -> Result<Option<Duration>> {
    Ok(arg
        .map(parse_duration)
        .transpose()?
        .map(Duration::from_secs))
}
