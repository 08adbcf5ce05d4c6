//! Proxmox's retention: the `prune-backups` policy and the marking algorithm. Shared by
//! backup-prune (which applies it) and backup-check (which audits storages against it).

pub mod mark;
pub mod policy;

pub use mark::{Entry, Mark, Reason, mark_group};
pub use policy::{KeepOptions, PolicyError};
