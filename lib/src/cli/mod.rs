//! The shared entry point: parse → run → map the error to an exit code, once for all tools;
//! the flags every tool shares ([`args`]), the one confirmation rule ([`confirm`]) and the
//! man page renderer (`<tool> --generate-man`) and shell completions
//! (`<tool> --generate-completions bash|zsh|fish`).

mod args;
mod complete;
mod confirm;
mod help;
mod man;
pub mod values;

pub use args::{InputArgs, NoChangeArgs, OutputArgs, WriteArgs};
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
        let written = render_man(help::shaped(C::command()), &mut out).and_then(|()| out.flush());
        return printed(name, ExitScheme::Standard, written);
    }
    if args.get(1).and_then(|a| a.to_str()) == Some("--generate-man-dir") {
        let dir = args
            .get(2)
            .map(std::path::PathBuf::from)
            .unwrap_or_default();
        return match write_man_pages(help::shaped(C::command()), &dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => failed(name, ExitScheme::Standard, &e),
        };
    }
    if args.get(1).and_then(|a| a.to_str()) == Some("--generate-completions") {
        let shell = args.get(2).and_then(|a| a.to_str()).unwrap_or("bash");
        let mut out = std::io::stdout().lock();
        return match render_completions(C::command(), shell, &mut out) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => failed(name, ExitScheme::Standard, &e),
        };
    }
    let usage_code = match scheme {
        ExitScheme::Standard => code::USAGE,
        ExitScheme::Nagios => 3,
    };
    let parsed = help::shaped(C::command())
        .try_get_matches_from(args)
        .and_then(|m| C::from_arg_matches(&m));
    let cli = match parsed {
        Ok(c) => c,
        Err(e) => {
            return match e.kind() {
                // Help and version go to stdout: a full disk there is an error, as for records.
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    printed(
                        name,
                        scheme,
                        e.print().and_then(|()| std::io::stdout().flush()),
                    )
                }
                _ => {
                    let _ = e.print();
                    ExitCode::from(usage_code)
                }
            };
        }
    };
    crate::interrupt::default_exit(match scheme {
        ExitScheme::Standard => code::INTERRUPTED,
        ExitScheme::Nagios => 3,
    });
    match run(cli) {
        Ok(c) => ExitCode::from(c),
        Err(e) => failed(name, scheme, &e),
    }
}

/// `make man`: the tool's page and one per subcommand, written into `dir`, each path printed.
fn write_man_pages(cmd: clap::Command, dir: &std::path::Path) -> Result<()> {
    if dir.as_os_str().is_empty() {
        return Err(crate::error::Error::usage("--generate-man-dir DIR"));
    }
    let pages = man::render_man_pages(cmd)
        .map_err(|e| crate::error::Error::io("rendering the man pages", e))?;
    for (file, page) in pages {
        let path = dir.join(file);
        crate::fs::write_atomic(&path, &page)?;
        println!("{}", path.display());
    }
    Ok(())
}

/// The end of a run that only printed (help, version, man page): a closed pipe is quiet and
/// 0, any other failed write an error (a full disk must not pass for a written page).
fn printed(name: &str, scheme: ExitScheme, written: std::io::Result<()>) -> ExitCode {
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => failed(
            name,
            scheme,
            &crate::error::Error::io("writing to standard output", e),
        ),
    }
}

/// Says the error once, `<tool>: <message>` (not for a closed stdout), and maps it.
fn failed(name: &str, scheme: ExitScheme, e: &crate::error::Error) -> ExitCode {
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
