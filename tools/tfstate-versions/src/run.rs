//! Dispatches each subcommand to its module: list, show and diff (`inspect`), undelete,
//! restore, export, fallback and return (`fallback`).

use pvedr::error::{Error, Result};
use pvedr::output::Output;
use pvedr::records::Step;

use crate::cli::{Cli, Command};
use crate::fallback;
use crate::history::one_location;
use crate::inspect::{diff, list, show};
use crate::steps::write_steps;
use crate::undelete::undelete;

pub fn run(cli: Cli) -> Result<u8> {
    let mut out = cli.output.output();
    let code = match &cli.command {
        Command::List { inspect } => list(&cli, *inspect, &mut out)?,
        Command::Show { version } => show(&cli, version, &mut out)?,
        Command::Diff { a, b } => diff(&cli, a, b, &mut out)?,
        Command::Restore {
            version,
            force,
            keep_serial,
            dynamodb_table,
        } => {
            let t = one_location(&cli)?;
            let opts = crate::restore::Options {
                force: *force,
                keep_serial: *keep_serial,
                table: dynamodb_table.clone().or(t.dynamodb_table.clone()),
                write: cli.write.clone(),
            };
            crate::restore::restore(&t, version, &opts, &mut out)?
        }
        Command::Undelete => undelete(&cli, &cli.write, &mut out)?,
        Command::Export { .. } if cli.write.dry_run => {
            // Ignoring it would change what the user asked to leave alone.
            return Err(Error::usage(
                "export has no --dry-run (it only writes into its --to directory); nothing was done",
            ));
        }
        Command::Export { to } => crate::export::export(&cli, to, &mut out)?,
        Command::Fallback(d) => {
            let tf = d.terraform();
            let plan = fallback::fallback_plan(&tf);
            let refusal = fallback::fallback_refusal(&d.dir);
            let approved = fallback::approve("fallback", &tf, plan, refusal, &cli.write)?;
            switch(&mut out, approved, || fallback::fallback(&tf))?
        }
        Command::Return(d) => {
            let tf = d.terraform();
            let plan = fallback::return_plan(&tf);
            let refusal = fallback::return_refusal(&d.dir);
            let approved = fallback::approve("return", &tf, plan, refusal, &cli.write)?;
            switch(&mut out, approved, || fallback::return_home(&tf, &cli))?
        }
    };
    out.finish()?;
    Ok(code)
}

/// fallback and return: the planned steps of a --dry-run, else the change, with Terraform
/// stopped (not orphaned) on a signal and the directory put back.
fn switch(
    out: &mut Output,
    planned: Option<Vec<Step>>,
    change: impl FnOnce() -> Vec<Step>,
) -> Result<u8> {
    if let Some(planned) = planned {
        write_steps(out, planned)?;
        return Ok(0);
    }
    pvedr::interrupt::install();
    write_steps(out, change())
}
