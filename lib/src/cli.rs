//! The shared entry point: parse → run → map the error to an exit code, once for all tools.
//! Also the common output flags and the man page renderer (`<tool> --generate-man`).

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::{Args, Parser};

use crate::error::{ExitScheme, Result, code};
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

/// Runs a tool. `run` returns the exit code of a completed run (0, or 3 for partial, or a
/// Nagios state); errors are printed once as `<tool>: <message>` and mapped by `scheme`.
/// A closed stdout (`| head`) ends the run quietly with 0.
pub fn main<C: Parser>(
    name: &str,
    scheme: ExitScheme,
    run: impl FnOnce(C) -> Result<u8>,
) -> ExitCode {
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
    match run(cli) {
        Ok(c) => ExitCode::from(c),
        Err(e) => {
            if !e.is_broken_pipe() {
                // stderr may be closed too; nothing more to do then.
                let _ = writeln!(std::io::stderr(), "{name}: {e}");
            }
            ExitCode::from(e.exit_code(scheme))
        }
    }
}

/// Renders a man page: clap_mangen's standard sections, then the sections written in the
/// command's `after_long_help` (lines such as `EXIT STATUS:` start a section).
pub fn render_man(cmd: clap::Command, out: &mut dyn Write) -> std::io::Result<()> {
    let extra = cmd.get_after_long_help().map(|s| s.to_string());
    let has_subcommands = cmd.get_subcommands().next().is_some();
    let sub_text = subcommand_options(&cmd);
    let man = clap_mangen::Man::new(cmd);
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    if has_subcommands {
        man.render_subcommands_section(out)?;
        out.write_all(sub_text.as_bytes())?;
    }
    if let Some(text) = extra {
        out.write_all(roff_sections(&text).as_bytes())?;
    }
    man.render_version_section(out)?;
    Ok(())
}

fn roff_escape(s: &str) -> String {
    s.replace('\\', "\\e").replace('-', "\\-")
}

/// Each subcommand's own arguments (clap_mangen lists only the subcommands' names).
fn subcommand_options(cmd: &clap::Command) -> String {
    let mut s = String::new();
    for sub in cmd.get_subcommands() {
        s.push_str(&format!(
            ".SH \"{} OPTIONS\"\n",
            sub.get_name().to_uppercase()
        ));
        if let Some(a) = sub.get_about() {
            s.push_str(&format!("{}\n", roff_escape(&a.to_string())));
        }
        for arg in sub
            .get_arguments()
            .filter(|a| !a.is_hide_set() && a.get_id() != "help")
        {
            let name = match (arg.get_long(), arg.get_value_names()) {
                (Some(l), _) => format!("\\fB\\-\\-{}\\fR", l.replace('-', "\\-")),
                (None, Some(v)) => format!(
                    "\\fI<{}>\\fR",
                    v.iter()
                        .map(|x| x.to_string())
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                (None, None) => format!("\\fI<{}>\\fR", arg.get_id()),
            };
            let help = arg
                .get_long_help()
                .or(arg.get_help())
                .map(|h| h.to_string())
                .unwrap_or_default();
            s.push_str(&format!(".TP\n{name}\n{}\n", roff_escape(&help)));
        }
    }
    s
}

fn roff_sections(text: &str) -> String {
    let mut s = String::new();
    let mut open = false;
    for line in text.lines() {
        let t = line.trim_end();
        let is_head = t.ends_with(':')
            && !t.starts_with(' ')
            && t.len() > 1
            && t[..t.len() - 1]
                .chars()
                .all(|c| c.is_ascii_uppercase() || c == ' ');
        if is_head {
            if open {
                s.push_str(".fi\n");
            }
            s.push_str(&format!(".SH \"{}\"\n.nf\n", &t[..t.len() - 1]));
            open = true;
            continue;
        }
        if !open {
            s.push_str(".SH NOTES\n.nf\n");
            open = true;
        }
        let esc = t.replace('\\', "\\e");
        if esc.starts_with('.') || esc.starts_with('\'') {
            s.push_str("\\&");
        }
        s.push_str(&esc);
        s.push('\n');
    }
    if open {
        s.push_str(".fi\n");
    }
    s
}

/// The standard EXIT STATUS text for tools following the common contract.
pub const EXIT_STATUS: &str = "EXIT STATUS:
  0    success
  1    the operation failed (nothing destroyed; the records say where it stopped)
  2    usage error (bad flag or value); nothing was done
  3    partial: some items succeeded, some failed (see stderr and the records)
  130  interrupted
  A closed standard output (`| head`) ends the run quietly with status 0.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections() {
        let r = roff_sections("EXAMPLES:\n.x | jq\nEXIT STATUS:\n  0 ok\\n");
        assert_eq!(
            r,
            ".SH \"EXAMPLES\"\n.nf\n\\&.x | jq\n.fi\n.SH \"EXIT STATUS\"\n.nf\n  0 ok\\en\n.fi\n"
        );
    }
}
