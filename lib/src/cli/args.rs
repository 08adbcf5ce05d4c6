//! The flags several tools share, defined once and flattened into each.

use clap::Args;

use crate::output::{Format, Output};

#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// Output format: JSON Lines for pipes, an aligned table or CSV (one header row) for
    /// people and spreadsheets.
    #[arg(
        long,
        value_enum,
        default_value_t,
        value_name = "FORMAT",
        global = true
    )]
    pub format: Format,

    /// Flush after every record even when stdout is not a terminal (`tail -f`-style pipes).
    #[arg(long, short = 'u', global = true)]
    pub line_buffered: bool,
}

impl OutputArgs {
    pub fn output(&self) -> Output {
        Output::stdout(self.format, self.line_buffered)
    }
}

/// The flags of every tool that changes something.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Safety")]
pub struct WriteArgs {
    /// Show what would be done, running only what reads; change nothing.
    #[arg(long, global = true)]
    pub dry_run: bool,

    /// Do not ask: the plan is approved (needed without a terminal).
    #[arg(long, short = 'y', global = true)]
    pub yes: bool,
}

/// Input files of records.
#[derive(Args, Debug, Clone, Default)]
pub struct InputArgs {
    /// Input files of records. With no FILE, or when FILE is -, read standard input.
    #[arg(value_name = "FILE", default_value = "-")]
    pub files: Vec<String>,
}
