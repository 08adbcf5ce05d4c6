//! The flags several tools share, defined once and flattened into each.

use std::io::IsTerminal;

use clap::Args;

use crate::output::{Format, Output};

#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// Output format. JSON Lines for pipes, an aligned table or CSV (one header row) for
    /// people and spreadsheets [default: table when standard output is a terminal, else
    /// jsonl].
    #[arg(long, value_enum, value_name = "FORMAT", global = true)]
    pub format: Option<Format>,

    /// Flush after every record even when stdout is not a terminal (`tail -f`-style pipes).
    #[arg(long, short = 'u', global = true, hide_short_help = true)]
    pub line_buffered: bool,
}

impl OutputArgs {
    /// `--format`, else a table for a person at a terminal and JSON Lines for a pipe.
    pub fn format(&self) -> Format {
        self.format.unwrap_or_else(|| {
            if std::io::stdout().is_terminal() {
                Format::Table
            } else {
                Format::Jsonl
            }
        })
    }

    pub fn output(&self) -> Output {
        Output::stdout(self.format(), self.line_buffered)
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

/// `--dry-run` and `--yes` on a tool that changes nothing: accepted so one command line
/// vocabulary fits every tool (a wrapper may pass them to all), and ignored.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Safety")]
pub struct NoChangeArgs {
    /// Accepted and ignored: this tool only reads.
    // Only in --help: a flag that does nothing has no place on the one screen of -h.
    #[arg(long, global = true, hide_short_help = true)]
    pub dry_run: bool,

    /// Accepted and ignored: this tool asks nothing.
    #[arg(long, short = 'y', global = true, hide_short_help = true)]
    pub yes: bool,
}

/// Input files of records.
#[derive(Args, Debug, Clone, Default)]
pub struct InputArgs {
    /// Input files of records. With no FILE, or when FILE is -, read standard input.
    #[arg(value_name = "FILE", default_value = "-")]
    pub files: Vec<String>,
}
