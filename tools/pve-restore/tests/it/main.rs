//! pve-restore's integration tests: one binary, a module per area, all through the built binaries.

mod api;
mod man;
mod remap;
mod restore;
mod ux;
