//! `pve-restore`: restore a VM or container from a backup in one command, safely, and prove
//! it works.

mod cli;
mod plan;
mod probe;
mod run;

pub use cli::Cli;
pub use run::run;
