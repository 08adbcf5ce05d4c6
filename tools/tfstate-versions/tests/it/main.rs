//! tfstate-versions's integration tests: one binary, a module per area, all through the built binaries.

mod interrupt;
mod man;
mod s3;
