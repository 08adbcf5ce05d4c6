//! The run: checks the flags, then the steps in their order (health, reprovision, wait,
//! buckets, versioning, reseed, verify-backends), stopping at the first failure, and a
//! summary. Each step's module returns whether the run goes on.

use std::time::Instant;

use pvedr::error::{Result, code};

use crate::cli::Cli;
use crate::ctx::{Ctx, context, summary};

pub fn run(cli: Cli) -> Result<u8> {
    let t0 = Instant::now();
    let mut ctx = context(&cli)?;
    // A dry run goes on: its steps only read (the plan is what they would change).
    pvedr::change::approve(
        &cli.write,
        &format!(
            "rebuilding the state store at {}: buckets {} (created if missing, versioned){}",
            ctx.endpoint_text(),
            ctx.buckets.join(", "),
            if cli.from.is_some() {
                ", states re-seeded"
            } else {
                ""
            }
        ),
    )?;
    pvedr::interrupt::install();
    let code = match steps(&mut ctx)? {
        _ if pvedr::interrupt::requested() => code::INTERRUPTED,
        true => code::SUCCESS,
        false => code::FAILURE,
    };
    summary(&mut ctx, code, t0)?;
    ctx.out.finish()?;
    Ok(code)
}

/// Every step in order; `false` at the first failure (or an interrupt).
fn steps(ctx: &mut Ctx) -> Result<bool> {
    let phases: [fn(&mut Ctx) -> Result<bool>; 5] = [
        crate::health::bring_up,
        crate::buckets::buckets,
        crate::buckets::versioning,
        crate::reseed::reseed,
        crate::verify::verify_backends,
    ];
    for phase in phases {
        if pvedr::interrupt::requested() || !phase(ctx)? {
            return Ok(false);
        }
    }
    Ok(!pvedr::interrupt::requested())
}
