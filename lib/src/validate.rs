//! Validation of every value that can reach a remote shell. Anything that fails here is a
//! usage error (exit 2) raised before a connection is made.

use crate::error::{Error, Result};

/// A Proxmox VMID: 100 to 999999999, digits only, no leading zero (pve-vmid).
pub fn vmid(s: &str) -> Result<u64> {
    let ok =
        (3..=9).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) && !s.starts_with('0');
    if !ok {
        return Err(Error::usage(format!(
            "invalid VMID '{}': expected a number from 100 to 999999999",
            printable(s)
        )));
    }
    s.parse()
        .map_err(|_| Error::usage(format!("invalid VMID '{s}'")))
}

/// A node name: a DNS label (letters, digits, inner hyphens), as Proxmox requires.
pub fn node(s: &str) -> Result<&str> {
    let b = s.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-';
    if ok {
        Ok(s)
    } else {
        Err(Error::usage(format!(
            "invalid node name '{}': letters, digits and inner hyphens only",
            printable(s)
        )))
    }
}

/// A storage ID (pve-storage-id: `[a-z][a-z0-9-_.]*[a-z0-9]`, case-insensitive).
pub fn storage_id(s: &str) -> Result<&str> {
    let b = s.as_bytes();
    let ok = b.len() >= 2
        && b[0].is_ascii_alphabetic()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    if ok {
        Ok(s)
    } else {
        Err(Error::usage(format!(
            "invalid storage ID '{}': expected letters, digits, '-', '_' or '.', starting with a letter",
            printable(s)
        )))
    }
}

/// A backup volume ID: `<storage>:<volname>`, the volname made of safe characters only and
/// without `..` path components.
pub fn volid(s: &str) -> Result<&str> {
    let bad = || {
        Error::usage(format!(
            "invalid volume ID '{}': expected <storage>:backup/<file> or a PBS volid",
            printable(s)
        ))
    };
    let (store, name) = s.split_once(':').ok_or_else(bad)?;
    storage_id(store).map_err(|_| bad())?;
    let ok = !name.is_empty()
        && name.bytes().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'/' | b':' | b'+' | b'=')
        })
        && !name.split('/').any(|p| p == ".." || p == ".");
    if ok { Ok(s) } else { Err(bad()) }
}

/// A snapshot name used in commands: pve-common `JSONSchema.pm` `pve-snapshot-name`, format
/// `pve-configid` (`[a-z][a-z0-9_-]+`, case-insensitive: two characters at least), at most
/// 40 long.
pub fn snapshot_name(s: &str) -> Result<&str> {
    let b = s.as_bytes();
    let ok = b.len() >= 2
        && b.len() <= 40
        && b[0].is_ascii_alphabetic()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_'));
    if ok {
        Ok(s)
    } else {
        Err(Error::usage(format!(
            "invalid snapshot name '{}'",
            printable(s)
        )))
    }
}

/// Control characters shown escaped so an error message cannot mangle the terminal.
fn printable(s: &str) -> String {
    s.escape_debug().to_string()
}

#[cfg(test)]
mod tests {
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
    fn volids() {
        assert!(volid("local:backup/vzdump-qemu-100-2024_01_15-02_00_02.vma.zst").is_ok());
        assert!(volid("pbs:backup/vm/100/2024-01-15T01:00:05Z").is_ok());
        assert!(volid("local:backup/../../etc/passwd").is_err());
        assert!(volid("local:backup/a b").is_err());
        assert!(volid("local:backup/$(reboot)").is_err());
        assert!(volid("nostorage").is_err());
    }
}
