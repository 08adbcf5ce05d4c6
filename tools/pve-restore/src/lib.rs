//! `pve-restore`: restore a VM or container from a backup in one command, safely, and prove
//! it works.

mod access;
mod cache;
mod cli;
mod drill;
mod each;
mod guest;
mod history;
mod offsite;
mod options;
mod pick;
mod probe;
mod progress;
mod remap;
mod report;
mod restore;
mod run;
mod safety;
mod site;
mod snapshot;

pub use cli::Cli;
pub use run::run;
