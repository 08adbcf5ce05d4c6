//! POSIX shell quoting: every argument of a remote command goes through [`quote`], even the
//! ones validated before.

/// Quotes one word for `sh`. Words made only of safe characters are left as they are.
pub fn quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-_./:=,@+%".contains(&c));
    if safe {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Joins an argument vector into one shell command line.
pub fn join<S: AsRef<str>>(argv: &[S]) -> String {
    argv.iter()
        .map(|a| quote(a.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("pvesh"), "pvesh");
        assert_eq!(quote("/nodes/pve1/storage"), "/nodes/pve1/storage");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("100;touch /tmp/x"), "'100;touch /tmp/x'");
        assert_eq!(quote("$(id)"), "'$(id)'");
        assert_eq!(
            join(&["qm", "set", "100", "--description", "a\nb"]),
            "qm set 100 --description 'a\nb'"
        );
    }
}
