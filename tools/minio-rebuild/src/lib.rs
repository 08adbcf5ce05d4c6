//! `minio-rebuild`: bring the Terraform state store back — the server, the buckets with
//! versioning, the states from an export — and prove every Terraform backend works again.

mod buckets;
mod cli;
mod ctx;
mod health;
mod reseed;
mod run;
mod verify;

pub use cli::Cli;
pub use run::run;
