//! The names and descriptions pve-snapshot gives: `<label>-<YYYYMMDD-HHMMSS>` in the node's
//! local time, a description beginning [`MARK`]. Only a snapshot with both is pve-snapshot's
//! own: prune never touches any other, whatever its name.

use pvedr::error::{Error, Result};

/// How every description pve-snapshot writes begins.
pub const MARK: &str = "pve-snapshot";

/// Longest label: the name (`<label>-` and 15 characters of time) must fit Proxmox's 40.
const MAX_LABEL: usize = 24;

/// A label: a letter, then letters, digits, `-`, `_` (a pve-configid prefix).
pub fn label(s: &str) -> Result<&str> {
    if pvedr::validate::configid(s, 1..=MAX_LABEL) {
        Ok(s)
    } else {
        Err(Error::usage(format!(
            "invalid label '{}': a letter, then letters, digits, '-' or '_', at most {MAX_LABEL} characters",
            s.escape_debug()
        )))
    }
}

/// `YYYYMMDD-HHMMSS`, as `date +%Y%m%d-%H%M%S` prints it on the node.
pub fn is_stamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 15
        && b[8] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 8 || c.is_ascii_digit())
}

pub fn name(label: &str, stamp: &str) -> String {
    format!("{label}-{stamp}")
}

/// The label of a name of pve-snapshot's form.
pub fn label_of(name: &str) -> Option<&str> {
    let cut = name.len().checked_sub(16)?;
    let (label, rest) = name.split_at_checked(cut)?;
    let stamp = rest.strip_prefix('-')?;
    (is_stamp(stamp) && self::label(label).is_ok()).then_some(label)
}

/// Whether pve-snapshot made it: its name and its description say so.
pub fn ours<'a>(name: &'a str, description: Option<&str>) -> Option<&'a str> {
    let marked = description.is_some_and(|d| d.starts_with(MARK));
    label_of(name).filter(|_| marked)
}

pub fn description(label: &str) -> String {
    format!("{MARK}: label {label}, taken by pvedr pve-snapshot create (rotated by prune)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_others_are_not_ours() {
        let n = name("daily", "20240115-020000");
        assert_eq!(n, "daily-20240115-020000");
        assert_eq!(label_of(&n), Some("daily"));
        assert_eq!(label_of("pre-upgrade-20240115-020000"), Some("pre-upgrade"));
        assert_eq!(label_of("before-upgrade"), None);
        assert_eq!(label_of("daily-2024011-0200000"), None);
        assert_eq!(label_of("-20240115-020000"), None);
        let d = description("daily");
        assert_eq!(ours(&n, Some(&d)), Some("daily"));
        assert_eq!(ours(&n, Some("made by hand")), None);
        assert_eq!(ours(&n, None), None);
        assert!(label("daily").is_ok() && label("1x").is_err() && label("a;b").is_err());
        assert!(label(&"x".repeat(25)).is_err());
        assert!(name(&"x".repeat(24), "20240115-020000").len() <= 40);
    }
}
