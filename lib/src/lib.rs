//! pvedr: what the pvedr tools share — records, JSON Lines in and out, errors and exit codes,
//! validation and quoting of remote arguments, the transports to a Proxmox VE node, and the
//! reading of backup listings.
//!
//! Tool logic lives in the tools; this crate stays thin.

pub mod archive;
pub mod cli;
pub mod connect;
pub mod dumpdir;
pub mod error;
pub mod interrupt;
pub mod jsonl;
pub mod listing;
pub mod output;
pub mod pve;
pub mod records;
pub mod retention;
pub mod schedule;
pub mod shell;
pub mod tfvars;
pub mod time;
pub mod transport;
pub mod validate;

pub use error::{Error, ExitScheme, Result};
pub use records::Record;
