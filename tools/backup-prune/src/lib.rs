//! `backup-prune`: Proxmox-compatible retention, previewed offline and applied safely.

mod apply;
mod cli;
mod offsite;
mod plan;
mod run;
mod table;

pub use cli::Cli;
pub use run::run;
