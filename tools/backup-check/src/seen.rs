//! The borrowed view of one backup that the per-guest fold and retention read: a leaf, so
//! that `summary` and `retention` both use it without importing each other.

use pvedr::backup_line::BackupRef;
use pvedr::records::{Backup, Verification};

/// What the fold reads of a backup, borrowed: from a [`Backup`], or from its line (no
/// record built, nothing allocated, for most lines of a listing).
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    pub volid: &'a str,
    pub ctime: i64,
    pub time: &'a str,
    pub size: Option<u64>,
    pub storage: Option<&'a str>,
    pub format: &'a str,
    pub subtype: &'a str,
    pub vmid: Option<u64>,
    pub protected: bool,
    pub unfinished: bool,
    pub verification: Option<&'a Verification>,
}

impl<'a> From<&'a Backup> for Seen<'a> {
    fn from(b: &'a Backup) -> Seen<'a> {
        Seen {
            volid: &b.volid,
            ctime: b.ctime,
            time: &b.time,
            size: b.size,
            storage: b.storage.as_deref(),
            format: &b.format,
            subtype: &b.subtype,
            vmid: b.vmid,
            protected: b.protected,
            unfinished: b.unfinished,
            verification: b.verification.as_ref(),
        }
    }
}

impl<'a> From<&'a BackupRef<'_>> for Seen<'a> {
    fn from(b: &'a BackupRef<'_>) -> Seen<'a> {
        Seen {
            volid: &b.volid,
            ctime: b.ctime,
            time: &b.time,
            size: b.size,
            storage: Some(&b.storage),
            format: &b.format,
            subtype: &b.subtype,
            vmid: Some(b.vmid),
            protected: b.protected,
            unfinished: b.unfinished,
            verification: None,
        }
    }
}
