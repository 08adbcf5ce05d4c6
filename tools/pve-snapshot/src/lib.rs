//! pve-snapshot: scheduled guest snapshots with rotation (create, prune, ls).

mod args;
mod cli;
mod create;
mod guests;
mod ls;
mod names;
mod outcome;
mod prune;
mod run;

pub use cli::Cli;
pub use run::run;
