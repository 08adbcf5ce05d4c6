//! What the subcommands read from their shared flags: the guest selection (and for create
//! and prune the connection).

use pvedr::connect::Connection;
use pvedr::error::{Error, Result};
use pvedr::listing::{Filter, GuestSelection};
use pvedr::time::Zone;

use crate::cli::{Changing, Shared};
use crate::names;

/// The selection of a command. One that changes guests needs them named, and takes no
/// time filters (those are for `ls`).
pub fn selection(shared: &Shared, changes: bool) -> Result<(Filter, GuestSelection)> {
    let f = shared.filter.parse(Zone::Local)?;
    if changes && (f.since.is_some() || f.until.is_some() || f.latest) {
        return Err(Error::usage("--since, --until and --latest are for ls"));
    }
    let sel = shared.guests.parse(&f)?;
    if changes && !sel.names_guests() {
        return Err(Error::usage(
            "name the guests: --vmid, --all, --pool or --tag (nothing is done to every guest by default)",
        ));
    }
    Ok((f, sel))
}

/// What create and prune change: the label checked, then the guests named, then the
/// connection to them (nothing is reached before the flags are good).
pub fn changing(c: &Changing) -> Result<(String, GuestSelection, Connection)> {
    let label = names::label(&c.label)?.to_string();
    let (_, sel) = selection(&c.shared, true)?;
    Ok((label, sel, c.shared.connect.connect()?))
}
