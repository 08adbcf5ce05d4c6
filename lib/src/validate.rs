//! Validation of every value that can reach a remote shell. Anything that fails here is a
//! usage error (exit 2) raised before a connection is made.

use crate::error::{Error, Result};

/// A Proxmox VMID: 100 to 999999999, digits only, no leading zero (pve-vmid).
pub fn vmid(s: &str) -> Result<u64> {
    let ok =
        (3..=9).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) && !s.starts_with('0');
    let why = "expected a number from 100 to 999999999";
    require(ok, "VMID", s, why)?;
    s.parse().map_err(|_| refused("VMID", s, why))
}

/// A node name: a DNS label (letters, digits, inner hyphens), as Proxmox requires.
pub fn node(s: &str) -> Result<&str> {
    let b = s.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-';
    require(ok, "node name", s, "letters, digits and inner hyphens only")?;
    Ok(s)
}

/// A storage ID (pve-storage-id: `[a-z][a-z0-9-_.]*[a-z0-9]`, case-insensitive).
pub fn storage_id(s: &str) -> Result<&str> {
    let b = s.as_bytes();
    let ok = b.len() >= 2
        && b[0].is_ascii_alphabetic()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    let why = "expected letters, digits, '-', '_' or '.', starting with a letter";
    require(ok, "storage ID", s, why)?;
    Ok(s)
}

/// A bridge or SDN vnet name (pve-common `JSONSchema.pm` `parse_bridge_id`:
/// `[-_.\w\d]+`), ASCII only.
pub fn bridge_id(s: &str) -> Result<&str> {
    let ok = !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    require(
        ok,
        "bridge ID",
        s,
        "expected letters, digits, '-', '_' or '.'",
    )?;
    Ok(s)
}

/// A backup volume ID: `<storage>:<volname>`, the volname made of safe characters only and
/// without `..` path components.
pub fn volid(s: &str) -> Result<&str> {
    let why = "expected <storage>:backup/<file> or a PBS volid";
    let bad = || refused("volume ID", s, why);
    let (store, name) = s.split_once(':').ok_or_else(bad)?;
    storage_id(store).map_err(|_| bad())?;
    let ok = !name.is_empty()
        && name.bytes().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'/' | b':' | b'+' | b'=')
        })
        && !name.split('/').any(|p| p == ".." || p == ".");
    require(ok, "volume ID", s, why)?;
    Ok(s)
}

/// A snapshot name used in commands: pve-common `JSONSchema.pm` `pve-snapshot-name`, format
/// `pve-configid` (`[a-z][a-z0-9_-]+`, case-insensitive: two characters at least), at most
/// 40 long; not a name Proxmox reserves: `current` (the guest's own state), `pending`
/// (qemu-server `API2/Qemu.pm` `snapshot` refuses both) and `vzdump` (the temporary
/// snapshot vzdump takes and removes, pve-guest-common `AbstractConfig.pm`).
pub fn snapshot_name(s: &str) -> Result<&str> {
    if s == "current" || s == "vzdump" || s.eq_ignore_ascii_case("pending") {
        return Err(Error::usage(format!(
            "snapshot name '{s}' is reserved by Proxmox"
        )));
    }
    require(configid(s, 2..=40), "snapshot name", s, "")?;
    Ok(s)
}

/// `pve-configid`'s characters (a letter, then letters, digits, `-`, `_`), `len` long.
pub fn configid(s: &str, len: std::ops::RangeInclusive<usize>) -> bool {
    let b = s.as_bytes();
    len.contains(&b.len())
        && b.first().is_some_and(u8::is_ascii_alphabetic)
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_'))
}

/// An S3 bucket name as S3 and MinIO accept it: 3 to 63 characters, lower-case letters,
/// digits, dots and hyphens, a letter or digit at each end, no `..` (nor `.-`/`-.`, which
/// MinIO refuses too), and not an IPv4 address.
pub fn bucket_name(b: &str) -> Result<&str> {
    let bytes = b.as_bytes();
    let edge = |c: Option<&u8>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let ok = (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'-'))
        && edge(bytes.first())
        && edge(bytes.last())
        && !["..", ".-", "-."].iter().any(|p| b.contains(p))
        && b.parse::<std::net::Ipv4Addr>().is_err();
    let why = "3 to 63 lower-case letters, digits, '.' and '-', a letter or digit at each end, no '..', not an IP address";
    require(ok, "bucket name", b, why)?;
    Ok(b)
}

/// An environment name E, which names the bucket `tfstate-E`: that name must be a valid
/// bucket name.
pub fn env_name(e: &str) -> Result<&str> {
    let bucket = format!("tfstate-{e}");
    let ok = !e.is_empty() && bucket_name(&bucket).is_ok();
    let why = "it names the bucket tfstate-E, which must be 3 to 63 lower-case letters, digits, '.' and '-', ending in a letter or digit, with no '..'";
    require(ok, "--env", e, why)?;
    Ok(e)
}

/// `Ok` when `ok`, else the usage error for `s` ([`refused`]): every check of a value
/// ends this way.
pub fn require(ok: bool, what: &str, s: &str, why: &str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(refused(what, s, why))
    }
}

/// The usage error for a refused value: `invalid WHAT 'S': WHY` (no WHY when empty),
/// control characters in `s` shown escaped so that the message cannot mangle the terminal.
pub fn refused(what: &str, s: &str, why: &str) -> Error {
    let s = crate::msg::one_line(s);
    if why.is_empty() {
        Error::usage(format!("invalid {what} '{s}'"))
    } else {
        Error::usage(format!("invalid {what} '{s}': {why}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ok` holds for every `good` value and for no `bad` one.
    fn sorts(ok: impl Fn(&str) -> bool, good: &[&str], bad: &[&str]) {
        for g in good {
            assert!(ok(g), "{g}");
        }
        for b in bad {
            assert!(!ok(b), "{b}");
        }
    }

    #[test]
    fn reserved_snapshot_names_are_refused() {
        let bad = ["current", "pending", "Pending", "vzdump"];
        sorts(|s| snapshot_name(s).is_ok(), &["before-upgrade"], &bad);
    }

    #[test]
    fn vmids() {
        assert_eq!(vmid("100").ok(), Some(100));
        assert_eq!(vmid("999999999").ok(), Some(999_999_999));
        let bad = [
            "99",
            "0100",
            "1000000000",
            "100;touch /tmp/x",
            "",
            "1e3",
            " 100",
        ];
        sorts(|s| vmid(s).is_ok(), &[], &bad);
    }

    #[test]
    fn nodes_and_storages() {
        sorts(
            |s| node(s).is_ok(),
            &["pve1", "pve-1"],
            &["-pve", "pve1;id"],
        );
        let (good, bad) = (["local", "nas_backup.1"], ["1local", "a$(x)"]);
        sorts(|s| storage_id(s).is_ok(), &good, &bad);
    }

    #[test]
    fn bucket_and_env_names() {
        let (a63, a64, a56) = ("a".repeat(63), "a".repeat(64), "a".repeat(56));
        let good = ["tfstate-prod", "abc", "a.b-c", "tfstate-1.2.3.4", &a63];
        let bad = [
            "tfstate-..",
            "ab",
            &a64,
            "a..b",
            ".ab",
            "ab.",
            "-ab",
            "ab-",
            "a.-b",
            "a-.b",
            "192.168.5.4",
            "Ab",
            "a_b",
            "a b",
            "a\nb",
            "",
        ];
        sorts(|s| bucket_name(s).is_ok(), &good, &bad);
        let good = ["prod", "lab-2", "a.b", "1"];
        let bad = ["..", "", "a.", "a-", ".a", "a..b", "Prod", "a/b", &a56];
        sorts(|s| env_name(s).is_ok(), &good, &bad);
    }

    #[test]
    fn volids() {
        let good = [
            "local:backup/vzdump-qemu-100-2024_01_15-02_00_02.vma.zst",
            "pbs:backup/vm/100/2024-01-15T01:00:05Z",
        ];
        let bad = [
            "local:backup/../../etc/passwd",
            "local:backup/a b",
            "local:backup/$(reboot)",
            "nostorage",
        ];
        sorts(|s| volid(s).is_ok(), &good, &bad);
    }

    #[test]
    fn a_refusal_names_the_value_on_one_line() {
        let e = node("a\n\u{1b}[2Jb").expect_err("refused");
        let want = "invalid node name 'a\\n\\u{1b}[2Jb': letters, digits and inner hyphens only";
        assert_eq!(e.to_string(), want);
        let e = snapshot_name("1x").expect_err("refused");
        assert_eq!(e.to_string(), "invalid snapshot name '1x'");
    }
}
