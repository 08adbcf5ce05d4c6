//! `tfstate-versions`: list, inspect, diff and restore Terraform state versions on any S3,
//! and fall back to a local backend.

mod cli;
pub mod fallback;
mod run;
mod s3;
pub mod state;
pub mod target;

pub use cli::Cli;
pub use run::run;
