//! backup-prune's integration tests: one binary, a module per area, all through the built binaries.

mod api;
mod apply;
mod cli;
mod corpus;
mod man;
mod pvesh_pipeline;
