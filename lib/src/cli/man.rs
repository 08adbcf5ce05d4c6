//! Man pages from the clap definitions: clap_mangen's sections, each subcommand's options,
//! then the sections written in the command's `after_long_help`.

use std::io::Write;

/// Renders a man page: clap_mangen's standard sections (the synopsis pvedr's own, with value
/// names), then the sections written in the command's `after_long_help` (lines such as
/// `EXIT STATUS:` start a section).
pub fn render_man(cmd: clap::Command, out: &mut dyn Write) -> std::io::Result<()> {
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    render_page(cmd, out)
}

/// The page of the tool and one per subcommand (`backup-sync-push.1`: its own options, the
/// global ones, its examples), as `(file name, page)`: each page the tool's page names.
pub fn render_man_pages(cmd: clap::Command) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let name = cmd.get_name().to_string();
    let mut pages = Vec::new();
    for sub in cmd.get_subcommands() {
        let page_name = format!("{name}-{}", sub.get_name());
        // clap takes owned names only with its `string` feature; the generator runs once.
        let title: &'static str = Box::leak(page_name.clone().into_boxed_str());
        let sub = sub
            .clone()
            .name(title)
            .bin_name(format!("{name} {}", sub.get_name()));
        let sub = match cmd.get_version() {
            Some(v) => sub.version(Box::leak(v.to_string().into_boxed_str()) as &'static str),
            None => sub,
        };
        let mut page = Vec::new();
        render_page(sub, &mut page)?;
        pages.push((format!("{page_name}.1"), page));
    }
    let mut page = Vec::new();
    render_page(cmd, &mut page)?;
    pages.insert(0, (format!("{name}.1"), page));
    Ok(pages)
}

fn render_page(cmd: clap::Command, out: &mut dyn Write) -> std::io::Result<()> {
    let extra = cmd.get_after_long_help().map(|s| s.to_string());
    let has_subcommands = cmd.get_subcommands().next().is_some();
    let sub_text = subcommand_options(&cmd);
    let synopsis = synopsis(&cmd);
    let man = clap_mangen::Man::new(cmd);
    man.render_title(out)?;
    man.render_name_section(out)?;
    out.write_all(synopsis.as_bytes())?;
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

/// The synopsis with each option's value names (`[--storage STORAGE]`; clap_mangen's shows
/// `[--storage]`), the positionals, then the subcommand.
fn synopsis(cmd: &clap::Command) -> String {
    let name = cmd.get_bin_name().unwrap_or_else(|| cmd.get_name());
    let mut s = format!(".SH SYNOPSIS\n\\fB{}\\fR", roff_escape(name));
    // Options first, then the positionals, as a usage line reads.
    let mut args: Vec<&clap::Arg> = cmd.get_arguments().filter(|a| !a.is_hide_set()).collect();
    args.sort_by_key(|a| a.is_positional());
    for arg in args {
        let values = arg
            .get_value_names()
            .filter(|_| arg.get_action().takes_values())
            .map(|v| {
                v.iter()
                    .map(|x| format!("\\ \\fI{}\\fR", roff_escape(x)))
                    .collect::<String>()
            })
            .unwrap_or_default();
        let flag = match (arg.get_short(), arg.get_long()) {
            (_, Some(l)) => format!("\\fB\\-\\-{}\\fR", roff_escape(l)),
            (Some(c), None) => format!("\\fB\\-{c}\\fR"),
            (None, None) => String::new(),
        };
        let text = if flag.is_empty() {
            values.trim_start_matches("\\ ").to_string()
        } else {
            format!("{flag}{values}")
        };
        let repeat = if arg.get_num_args().is_some_and(|n| n.max_values() > 1) {
            "..."
        } else {
            ""
        };
        // `\%` and the unbreakable `\ ` between flag and value: roff neither hyphenates an
        // option nor breaks the line inside it.
        if arg.is_required_set() {
            s.push_str(&format!(" \\%{text}{repeat}"));
        } else {
            s.push_str(&format!(" \\%[{text}]{repeat}"));
        }
    }
    if cmd.get_subcommands().next().is_some() {
        s.push_str(" \\fICOMMAND\\fR");
    }
    s.push('\n');
    s
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
