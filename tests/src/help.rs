//! What a person sees of a tool's help: `-h` fits a screen, the flags sit under their own
//! headings, examples are not wrapped, and every page a man page names exists.

use std::path::Path;

use crate::{bin, workspace_root};

/// Lines `-h` may take: a screen.
pub const MAX_SHORT_HELP: usize = 45;

fn stdout(tool: &str, args: &[&str]) -> String {
    let out = bin(tool).args(args).output().expect("run");
    assert!(out.status.success(), "{tool} {args:?}: {out:?}");
    String::from_utf8(out.stdout).expect("utf8")
}

/// The subcommands `--help` lists (clap's own `help` aside).
pub fn subcommands(tool: &str) -> Vec<String> {
    let help = stdout(tool, &["--help"]);
    let Some((_, rest)) = help.split_once("\nCommands:\n") else {
        return Vec::new();
    };
    // A command's line is indented by two; its wrapped help, deeper.
    rest.lines()
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|s| *s != "help")
        .map(str::to_string)
        .collect()
}

/// `-h` of the tool and of each subcommand fits in [`MAX_SHORT_HELP`] lines.
pub fn assert_short_help_fits(tool: &str) {
    let mut runs = vec![vec!["-h".to_string()]];
    runs.extend(subcommands(tool).into_iter().map(|s| vec![s, "-h".into()]));
    for args in runs {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let n = stdout(tool, &args).lines().count();
        assert!(
            n <= MAX_SHORT_HELP,
            "`{tool} {}` is {n} lines, more than a screen ({MAX_SHORT_HELP})",
            args.join(" ")
        );
    }
}

/// The heading `--help` shows above the line of `flag`.
pub fn heading_of(help: &str, flag: &str) -> Option<String> {
    let mut heading = None;
    for line in help.lines() {
        if !line.starts_with(' ') && line.ends_with(':') {
            heading = Some(line.trim_end_matches(':').to_string());
        }
        let t = line.trim_start();
        if t.starts_with(&format!("{flag} ")) || t.contains(&format!(", {flag} ")) {
            return heading;
        }
    }
    None
}

/// Lines of a section of `--help` (`EXAMPLES:` up to the next heading).
fn section<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    let head = format!("{name}:");
    text.lines()
        .skip_while(|l| l.trim_end() != head)
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect()
}

/// The `.nf` lines of a man page section, roff escapes undone, up to the next heading (a
/// line that is not indented, as in `--help`).
fn man_section(page: &str, name: &str) -> Vec<String> {
    let head = format!(".SH \"{name}\"");
    page.lines()
        .skip_while(|l| *l != head)
        .skip(1)
        .filter(|l| !l.starts_with(".nf") && !l.starts_with(".fi"))
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .map(|l| {
            l.trim_start_matches("\\&")
                .replace("\\-", "-")
                .replace("\\e", "\\")
                .trim_end()
                .to_string()
        })
        .filter(|l| !l.is_empty())
        .collect()
}

/// The EXAMPLES of `--help` are the man page's line for line: clap wrapped none mid-command.
pub fn assert_examples_unwrapped(tool: &str) {
    let help = stdout(tool, &["--help"]);
    let page = stdout(tool, &["--generate-man"]);
    let shown = section(&help, "EXAMPLES");
    let written = man_section(&page, "EXAMPLES");
    assert!(!written.is_empty(), "{tool}: no EXAMPLES");
    assert_eq!(shown, written, "{tool} --help wraps its EXAMPLES");
}

/// Every `NAME(1)` page the pages in `dir` name exists there, for the tool's own pages.
pub fn assert_named_pages_exist(tool: &str, dir: &Path) {
    for entry in std::fs::read_dir(dir).expect("man dir") {
        let path = entry.expect("entry").path();
        let file = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        if !file.starts_with(tool) || !file.ends_with(".1") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("page");
        for name in named_pages(&text) {
            assert!(
                dir.join(format!("{name}.1")).exists(),
                "{} names {name}(1), which is not in {}",
                path.display(),
                dir.display()
            );
        }
    }
}

/// `tool\-sub(1)` references of a roff page, unescaped.
fn named_pages(text: &str) -> Vec<String> {
    let plain = text
        .replace("\\-", "-")
        .replace("\\fB", "")
        .replace("\\fR", "");
    let mut out = Vec::new();
    for (i, _) in plain.match_indices("(1)") {
        let name: String = plain[..i]
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        if !name.is_empty() {
            out.push(name);
        }
    }
    out
}

/// The pages `--generate-man-dir` writes are the committed ones in `man/`.
pub fn assert_pages_current(tool: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf8 path");
    stdout(tool, &["--generate-man-dir", d]);
    let man = workspace_root().join("man");
    for entry in std::fs::read_dir(dir.path()).expect("dir") {
        let path = entry.expect("entry").path();
        let file = path.file_name().unwrap_or_default().to_owned();
        let committed = std::fs::read_to_string(man.join(&file)).unwrap_or_default();
        let generated = std::fs::read_to_string(&path).expect("page");
        assert!(
            generated == committed,
            "man/{} is out of date or missing: run `make man`",
            file.to_string_lossy()
        );
    }
    assert_named_pages_exist(tool, &man);
}

/// Each option of the synopsis that takes a value shows its value name.
pub fn assert_synopsis_shows_values(tool: &str) {
    let page = stdout(tool, &["--generate-man"]);
    let synopsis = page
        .split_once(".SH SYNOPSIS\n")
        .and_then(|(_, r)| r.lines().next())
        .unwrap_or_default();
    for flag in [
        "\\-\\-format\\fR\\ \\fIFORMAT\\fR",
        "\\-\\-host\\fR\\ \\fIHOST\\fR",
    ] {
        let has_flag = synopsis.contains(flag.split_once("\\fR").map_or(flag, |(a, _)| a));
        assert!(
            !has_flag || synopsis.contains(flag),
            "{tool}: the synopsis lacks `{flag}`: {synopsis}"
        );
    }
    assert!(
        !synopsis.contains("[\\fB\\-\\-format\\fR]"),
        "{tool}: --format without its value in the synopsis: {synopsis}"
    );
}

/// All of the above for one tool.
pub fn assert_help_for_people(tool: &str) {
    assert_short_help_fits(tool);
    let help = stdout(tool, &["--help"]);
    if help.contains("--identity") {
        assert_eq!(
            heading_of(&help, "--identity").as_deref(),
            Some("SSH"),
            "{tool}"
        );
        assert_eq!(
            heading_of(&help, "--port").as_deref(),
            Some("SSH"),
            "{tool}"
        );
        assert_eq!(heading_of(&help, "--ca").as_deref(), Some("TLS"), "{tool}");
    }
    assert_examples_unwrapped(tool);
    assert_synopsis_shows_values(tool);
    assert_pages_current(tool);
}
