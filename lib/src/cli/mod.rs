//! The shared entry point: parse → run → map the error to an exit code, once for all tools;
//! the flags every tool shares ([`args`]), the one confirmation rule ([`confirm`]) and the
//! man page renderer (`<tool> --generate-man`) and shell completions
//! (`<tool> --generate-completions bash|zsh|fish`).

mod args;
mod complete;
mod confirm;
mod man;

pub use args::{InputArgs, OutputArgs, WriteArgs};
pub use complete::render_completions;
pub use confirm::confirm;
pub use man::render_man;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::error::{ExitScheme, Result, code};

/// Runs a tool. `run` returns the exit code of a completed run (0, or 3 for partial, or a
/// Nagios state); errors are printed once as `<tool>: <message>` and mapped by `scheme`.
/// A closed stdout (`| head`) ends the run quietly with 0.
pub fn main<C: Parser>(
    name: &str,
    scheme: ExitScheme,
    run: impl FnOnce(C) -> Result<u8>,
) -> ExitCode {
    crate::msg::set_tool(name);
    let args: Vec<OsString> = std::env::args_os().collect();
    if args.get(1).and_then(|a| a.to_str()) == Some("--generate-man") {
        let mut out = std::io::stdout().lock();
        return match render_man(C::command(), &mut out) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "{name}: {e}");
                ExitCode::from(code::FAILURE)
            }
        };
    }
    if args.get(1).and_then(|a| a.to_str()) == Some("--generate-completions") {
        let shell = args.get(2).and_then(|a| a.to_str()).unwrap_or("bash");
        let mut out = std::io::stdout().lock();
        return match render_completions(C::command(), shell, &mut out) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "{name}: {e}");
                ExitCode::from(e.exit_code(ExitScheme::Standard))
            }
        };
    }
    let usage_code = match scheme {
        ExitScheme::Standard => code::USAGE,
        ExitScheme::Nagios => 3,
    };
    let cli = match C::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(usage_code),
            };
        }
    };
    crate::interrupt::default_exit(match scheme {
        ExitScheme::Standard => code::INTERRUPTED,
        ExitScheme::Nagios => 3,
    });
    match run(cli) {
        Ok(c) => ExitCode::from(c),
        Err(e) => {
            if !e.is_broken_pipe() {
                // stderr may be closed too; nothing more to do then.
                let _ = writeln!(
                    std::io::stderr(),
                    "{name}: {}",
                    crate::msg::printable(&e.to_string())
                );
            }
            ExitCode::from(e.exit_code(scheme))
        }
    }
}
