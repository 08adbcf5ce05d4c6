//! Validation of every value that can reach a remote shell. Anything that fails here is a
//! usage error (exit 2) raised before a connection is made.

use crate::error::{Error, Result};

/// A Proxmox VMID: 100 to 999999999, digits only, no leading zero (pve-vmid).
pub fn vmid(s: &str) -> Result<u64> {
    let ok =
        (3..=9).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) && !s.starts_with('0');
    let bad = || refused("VMID", s, "expected a number from 100 to 999999999");
    checked(s, ok, bad)?.parse().map_err(|_| bad())
}

/// A node name: a DNS label (letters, digits, inner hyphens), as Proxmox requires.
pub fn node(s: &str) -> Result<&str> {
    let b = s.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-';
    checked(s, ok, || {
        refused("node name", s, "letters, digits and inner hyphens only")
    })
}

/// A storage ID (pve-storage-id: `[a-z][a-z0-9-_.]*[a-z0-9]`, case-insensitive).
pub fn storage_id(s: &str) -> Result<&str> {
    let b = s.as_bytes();
    let ok = b.len() >= 2
        && b[0].is_ascii_alphabetic()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    checked(s, ok, || {
        refused(
            "storage ID",
            s,
            "expected letters, digits, '-', '_' or '.', starting with a letter",
        )
    })
}

/// A bridge or SDN vnet name (pve-common `JSONSchema.pm` `parse_bridge_id`:
/// `[-_.\w\d]+`), ASCII only.
pub fn bridge_id(s: &str) -> Result<&str> {
    let ok = !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    checked(s, ok, || {
        refused("bridge ID", s, "expected letters, digits, '-', '_' or '.'")
    })
}

/// A backup volume ID: `<storage>:<volname>`, the volname made of safe characters only and
/// without `..` path components.
pub fn volid(s: &str) -> Result<&str> {
    let bad = || {
        refused(
            "volume ID",
            s,
            "expected <storage>:backup/<file> or a PBS volid",
        )
    };
    let (store, name) = s.split_once(':').ok_or_else(bad)?;
    storage_id(store).map_err(|_| bad())?;
    let ok = !name.is_empty()
        && name.bytes().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'/' | b':' | b'+' | b'=')
        })
        && !name.split('/').any(|p| p == ".." || p == ".");
    checked(s, ok, bad)
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
    checked(s, configid(s, 2..=40), || refused("snapshot name", s, ""))
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
    checked(b, ok, || {
        refused(
            "bucket name",
            b,
            "3 to 63 lower-case letters, digits, '.' and '-', a letter or digit at each end, no '..', not an IP address",
        )
    })
}

/// An environment name E, which names the bucket `tfstate-E`: that name must be a valid
/// bucket name.
pub fn env_name(e: &str) -> Result<&str> {
    let bucket = format!("tfstate-{e}");
    checked(e, !e.is_empty() && bucket_name(&bucket).is_ok(), || {
        refused(
            "--env",
            e,
            "it names the bucket tfstate-E, which must be 3 to 63 lower-case letters, digits, '.' and '-', ending in a letter or digit, with no '..'",
        )
    })
}

/// `s` when `ok`, else the error `bad` makes: every check here ends the same way.
fn checked(s: &str, ok: bool, bad: impl FnOnce() -> Error) -> Result<&str> {
    if ok { Ok(s) } else { Err(bad()) }
}

/// The usage error for a refused value: `invalid WHAT 'S': WHY`, control characters in
/// `s` shown escaped so that the message cannot mangle the terminal.
fn refused(what: &str, s: &str, why: &str) -> Error {
    let s = crate::msg::one_line(s);
    if why.is_empty() {
        Error::usage(format!("invalid {what} '{s}'"))
    } else {
        Error::usage(format!("invalid {what} '{s}': {why}"))
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn reserved_snapshot_names_are_refused() {
        for n in ["current", "pending", "Pending", "vzdump"] {
            assert!(snapshot_name(n).is_err(), "{n}");
        }
        assert!(snapshot_name("before-upgrade").is_ok());
    }

    use super::*;

    #[test]
    fn vmids() {
        assert_eq!(vmid("100").ok(), Some(100));
        assert_eq!(vmid("999999999").ok(), Some(999_999_999));
        for bad in [
            "99",
            "0100",
            "1000000000",
            "100;touch /tmp/x",
            "",
            "1e3",
            " 100",
        ] {
            assert!(vmid(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nodes_and_storages() {
        assert!(node("pve1").is_ok());
        assert!(node("pve-1").is_ok());
        assert!(node("-pve").is_err());
        assert!(node("pve1;id").is_err());
        assert!(storage_id("local").is_ok());
        assert!(storage_id("nas_backup.1").is_ok());
        assert!(storage_id("1local").is_err());
        assert!(storage_id("a$(x)").is_err());
    }

    #[test]
    fn bucket_and_env_names() {
        for good in [
            "tfstate-prod",
            "abc",
            "a.b-c",
            "tfstate-1.2.3.4",
            &"a".repeat(63),
        ] {
            assert!(bucket_name(good).is_ok(), "{good}");
        }
        for bad in [
            "tfstate-..",
            "ab",
            &"a".repeat(64),
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
        ] {
            assert!(bucket_name(bad).is_err(), "{bad}");
        }
        for good in ["prod", "lab-2", "a.b", "1"] {
            assert!(env_name(good).is_ok(), "{good}");
        }
        for bad in [
            "..",
            "",
            "a.",
            "a-",
            ".a",
            "a..b",
            "Prod",
            "a/b",
            &"a".repeat(56),
        ] {
            assert!(env_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn volids() {
        assert!(volid("local:backup/vzdump-qemu-100-2024_01_15-02_00_02.vma.zst").is_ok());
        assert!(volid("pbs:backup/vm/100/2024-01-15T01:00:05Z").is_ok());
        assert!(volid("local:backup/../../etc/passwd").is_err());
        assert!(volid("local:backup/a b").is_err());
        assert!(volid("local:backup/$(reboot)").is_err());
        assert!(volid("nostorage").is_err());
    }
}
