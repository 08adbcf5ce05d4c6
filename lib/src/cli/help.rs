//! `-h` fits a screen: each flag's short help is its first sentence (the whole text stays in
//! `--help` and the man page), applied to every tool and subcommand in one place rather than
//! by rewriting each doc comment.

/// The command with short helps cut to their first sentence.
pub fn shaped(cmd: clap::Command) -> clap::Command {
    cmd.mut_args(shorten).mut_subcommands(shaped)
}

fn shorten(arg: clap::Arg) -> clap::Arg {
    let Some(help) = arg.get_help().map(|h| h.to_string()) else {
        return arg;
    };
    let short = summary(&help);
    if short.len() == help.len() {
        return arg;
    }
    let long = arg
        .get_long_help()
        .map(|h| h.to_string())
        .unwrap_or_else(|| help.clone());
    arg.help(short).long_help(long)
}

/// A short help of one line or two: the first sentence; when long, without its asides;
/// when still long, up to a `: ` or `; ` that leaves a whole phrase ("With --vmid: …" stays).
fn summary(text: &str) -> String {
    let first = first_sentence(text);
    if first.chars().count() <= SHORT {
        return first.to_string();
    }
    let bare = without_asides(first);
    if bare.chars().count() <= SHORT {
        return bare;
    }
    match clause_end(&bare) {
        Some(i) => bare[..i].to_string(),
        None => bare,
    }
}

/// Beyond this many characters a short help is cut further.
const SHORT: usize = 60;

/// A clause shorter than this is no summary on its own.
const MIN_CLAUSE: usize = 25;

/// Up to the first `. ` that ends a sentence (the next word starts with a capital, a backtick
/// or a dash), outside brackets: "e.g. x" and "(a. b)" do not end one.
fn first_sentence(text: &str) -> &str {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'(' | b'[' => depth += 1,
            b')' | b']' => depth = depth.saturating_sub(1),
            b'.' if depth == 0 && bytes.get(i + 1).is_some_and(u8::is_ascii_whitespace) => {
                let next = text[i + 1..].trim_start().bytes().next();
                if next.is_some_and(|c| c.is_ascii_uppercase() || c == b'`' || c == b'-') {
                    return &text[..i];
                }
            }
            _ => {}
        }
    }
    text
}

/// Where the first `: ` or `; ` after [`MIN_CLAUSE`] characters is (text without brackets).
fn clause_end(text: &str) -> Option<usize> {
    text.match_indices([':', ';'])
        .map(|(i, _)| i)
        .find(|&i| i >= MIN_CLAUSE && text[i + 1..].starts_with(' '))
}

/// The text without its ` (…)` and ` […]` groups.
fn without_asides(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries() {
        assert_eq!(summary("SSH port. Default: 22"), "SSH port");
        assert_eq!(summary("One (e.g. a. Not). Two"), "One (e.g. a. Not)");
        assert_eq!(summary("e.g. lower. Upper"), "e.g. lower");
        assert_eq!(
            summary("Output format: JSON Lines"),
            "Output format: JSON Lines"
        );
        let colon = "With --vmid: the newest backup made on this day (node's local date)";
        assert_eq!(
            summary(colon),
            "With --vmid: the newest backup made on this day"
        );
        let clause = "Give up on a read-only node command that sends nothing for this long: a hung \
                      storage is then reported, not waited on forever";
        assert_eq!(
            summary(clause),
            "Give up on a read-only node command that sends nothing for this long"
        );
        assert_eq!(summary("No end"), "No end");
        let long = "Talk to the API at this URL (`https://HOST[:PORT]`, port 8006) with a token";
        assert_eq!(summary(long), "Talk to the API at this URL with a token");
    }
}
