//! `pve-ls-backups`: list vzdump backups as `backup` records.

mod cli;
mod run;

pub use cli::Cli;
pub use run::run;
