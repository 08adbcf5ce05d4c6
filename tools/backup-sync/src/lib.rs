//! `backup-sync`: offsite copies of vzdump backups on S3 — push, list, pull.

mod cli;
mod location;
mod manifest;
mod meter;
mod pipe;
mod pull;
mod push;
mod run;
mod side;
mod source;
mod to_node;
mod verify;
mod verify_state;

pub use cli::Cli;
pub use run::run;
