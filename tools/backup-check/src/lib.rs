//! `backup-check`: know that every backup exists, is fresh, is whole — with Nagios exit
//! codes and Prometheus metrics.

mod checks;
mod checks_snapshots;
mod checks_tfstate;
mod cli;
mod completeness;
mod deep;
mod drills;
mod evidence;
mod inputs;
mod keyed;
mod orphans;
mod policy;
mod prom;
mod report;
mod retention;
mod run;
mod seen;
mod size_anomaly;
mod status;
mod summary;
mod tfcoverage;
mod time_check;

pub use cli::Cli;
pub use run::run;
