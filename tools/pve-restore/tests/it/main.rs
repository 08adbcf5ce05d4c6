//! pve-restore's integration tests: one binary, a module per area, all through the built binaries.

mod api;
mod common;
mod drill;
mod man;
mod offsite;
mod remap;
mod restore;
mod site;
mod ux;
