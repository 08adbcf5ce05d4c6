//! `backup-prune`: Proxmox-compatible retention, previewed offline and applied safely.

mod apply;
mod cli;
pub mod mark;
pub mod plan;
pub mod policy;
mod run;
mod table;

pub use cli::Cli;
pub use run::run;
