//! pve-ls-backups's integration tests: one binary, a module per area, all through the built binaries.

mod api;
mod cli;
mod hostile_dir;
mod log_status;
mod man;
mod ssh;
