//! backup-sync's integration tests: one binary, a module per area, all through the built
//! binaries against moto, the simulated node and a real sshd.

mod cli;
mod common;
mod contract;
mod encrypt;
mod hostile;
mod interrupt;
mod man;
mod memory;
mod nodes;
mod protect;
mod prune;
mod pull;
mod push;
mod verify;
