//! Dispatches each subcommand to its module: list, show and diff (`inspect`), undelete,
//! restore, export, fallback and return (`fallback`).

use pvedr::error::{Error, Result};
use pvedr::terraform::Terraform;

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
        Command::Fallback {
            dir,
            terraform_bin,
            timeout,
        } => {
            let tf = Terraform::new(terraform_bin, dir).with_timeout(timeout.terraform_timeout);
            let refusal = fallback::fallback_refusal(dir);
            if let Some(planned) = fallback::approve(
                "fallback",
                &tf,
                fallback::fallback_plan(&tf),
                refusal,
                &cli.write,
            )? {
                write_steps(&mut out, planned)?;
                out.finish()?;
                return Ok(0);
            }
            // Terraform is stopped, not orphaned, on a signal; the directory is put back.
            pvedr::interrupt::install();
            let steps = fallback::fallback(&tf);
            write_steps(&mut out, steps)?
        }
        Command::Return {
            dir,
            terraform_bin,
            timeout,
        } => {
            let tf = Terraform::new(terraform_bin, dir).with_timeout(timeout.terraform_timeout);
            let refusal = fallback::return_refusal(dir);
            if let Some(planned) = fallback::approve(
                "return",
                &tf,
                fallback::return_plan(&tf),
                refusal,
                &cli.write,
            )? {
                write_steps(&mut out, planned)?;
                out.finish()?;
                return Ok(0);
            }
            pvedr::interrupt::install();
            let steps = fallback::return_home(&tf, &cli);
            write_steps(&mut out, steps)?
        }
    };
    out.finish()?;
    Ok(code)
}
