//! The one confirmation rule of every tool that changes something: `--yes` approves; else
//! the question goes to the terminal (`/dev/tty`) when there is one; else the run stops
//! before anything changed, with exit 2 and a line saying to add `--yes`.

use std::io::{BufRead, BufReader, IsTerminal, Write};

use crate::error::{Error, Result};
use crate::msg;

/// Asks to go ahead with `what` ("restoring … on pve1").
pub fn confirm(what: &str, yes: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
    let interactive = std::io::stdin().is_terminal() || std::io::stderr().is_terminal();
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()
        .filter(|_| interactive);
    let Some(mut tty) = tty else {
        return Err(Error::NeedsConfirmation(format!(
            "{what} changes something and there is no terminal to ask on: rerun with --yes (nothing was done)"
        )));
    };
    let _ = write!(
        tty,
        "{}: {}. Proceed? [y/N] ",
        msg::tool(),
        msg::visible(what)
    );
    let _ = tty.flush();
    let mut line = String::new();
    BufReader::new(tty)
        .read_line(&mut line)
        .map_err(|e| Error::io("reading the answer", e))?;
    if matches!(line.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(Error::Refused("not confirmed; nothing was done".into()))
    }
}
