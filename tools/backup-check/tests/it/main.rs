//! backup-check's integration tests: one binary, a module per area, all through the built binaries.

mod api;
mod checks;
mod common;
mod complete;
mod evidence;
mod hostile;
mod hostile_dir;
mod hostile_time;
mod integrity;
mod man;
mod scale;
mod size_anomaly;
mod tfcoverage;
