//! `undelete`: removes the delete marker on top of a state's history.

use std::time::Instant;

use pvedr::change::step;
use pvedr::error::{Error, Result, code};
use pvedr::output::Output;
use pvedr::records::{Record, StepStatus};

use crate::cli::Cli;
use crate::history::{delete_command, one_location, open};

pub(crate) fn undelete(cli: &Cli, write: &pvedr::cli::WriteArgs, out: &mut Output) -> Result<u8> {
    let t = one_location(cli)?;
    let (s3, h) = open(&t)?;
    let t0 = Instant::now();
    let top = h
        .first()
        .ok_or_else(|| Error::Refused("the key has no versions".into()))?;
    if !top.delete_marker {
        return Err(Error::Refused(format!(
            "{} is not deleted (its newest entry is a version)",
            t.url()
        )));
    }
    if write.dry_run {
        out.write(&Record::Step(step(
            "undelete",
            &top.version_id,
            StepStatus::Planned,
            "remove this delete marker; the previous version becomes current",
            t0,
        )))?;
        return Ok(code::SUCCESS);
    }
    pvedr::cli::confirm(
        &format!("remove delete marker {} of {}", top.version_id, t.url()),
        write.yes,
    )?;
    s3.delete(&t.key, Some(&top.version_id))?;
    out.write(&Record::Step(step(
        "undelete",
        &top.version_id,
        StepStatus::Changed,
        "delete marker removed",
        t0,
    )))?;
    pvedr::msg::say(format!("to undo: {}", delete_command(&t, None)));
    Ok(code::SUCCESS)
}
