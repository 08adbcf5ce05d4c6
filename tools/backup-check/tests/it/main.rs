//! backup-check's integration tests: one binary, a module per area, all through the built binaries.

mod checks;
mod integrity;
mod man;
