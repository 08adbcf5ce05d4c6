//! pvedr: what the pvedr tools share — records, JSON Lines in and out, errors and exit codes,
//! validation and quoting of remote arguments, the transports to a Proxmox VE node, and the
//! reading of backup listings.
//!
//! The engines the tools share live here (transports, S3 behind the `s3` feature,
//! Terraform, plans, retry, atomic writes); each tool only holds its commands.

pub mod access;
pub mod archive;
pub mod backup_line;
pub mod change;
pub mod cli;
pub mod cluster;
pub mod connect;
pub mod crypt;
pub mod deadline;
pub mod dumpdir;
pub mod error;
pub mod fs;
pub mod http;
pub mod integrity;
pub mod interrupt;
pub mod jobs;
pub mod jsonl;
pub mod listing;
pub mod msg;
pub mod newest;
pub mod output;
pub mod pipeline;
pub mod plan;
pub mod policy;
pub mod process;
pub mod pve;
pub mod pvesh;
pub mod records;
pub mod redact;
pub mod retention;
pub mod retry;
#[cfg(feature = "s3")]
pub mod s3;
pub mod schedule;
pub mod shell;
pub mod status;
pub mod terraform;
pub mod time;
pub mod transport;
pub mod validate;

pub use error::{Error, ExitScheme, Result};
pub use records::Record;
