//! Dispatches to the subcommand; each lives in its own module.

use pvedr::error::Result;

use crate::cli::{Cli, Command};

pub fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Create(a) => crate::create::run(&a),
        Command::Prune(a) => crate::prune::run(&a),
        Command::Ls(a) => crate::ls::run(&a),
    }
}
