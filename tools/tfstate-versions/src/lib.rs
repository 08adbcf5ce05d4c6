//! `tfstate-versions`: list, inspect, diff and restore Terraform state versions on any S3,
//! and fall back to a local backend.

mod cli;
mod export;
mod fallback;
mod history;
mod inspect;
mod location;
mod restore;
mod run;
mod steps;
mod undelete;

pub use cli::Cli;
pub use run::run;
