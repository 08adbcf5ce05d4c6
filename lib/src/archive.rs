//! vzdump archive names, read as pve-storage reads them (`PVE::Storage::archive_info`).
//!
//! `vzdump-<type>-<vmid>-YYYY_MM_DD-HH_MM_SS.<ext>` is a *standard* name: its time is the
//! node's local time. Any other `vzdump-<type>-….<ext>` is listed too, but is non-standard:
//! its time comes from the file and prune never removes it.

use chrono::NaiveDateTime;

/// What a backup file name says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveName {
    /// `qemu`, `lxc` or `openvz`.
    pub subtype: String,
    /// The whole extension: `vma.zst`, `tar`, `tgz`, …
    pub format: String,
    /// `gz`, `lzo`, `zst`, `bz2`, or none.
    pub compression: Option<String>,
    /// From a standard name, or from the `-NNN-` pattern Proxmox's listing uses.
    pub vmid: Option<u64>,
    /// Set for standard names only.
    pub local_time: Option<NaiveDateTime>,
    /// The name without the extension (`vzdump-qemu-100-2024_01_15-02_00_02`): the basename
    /// of the `.log` beside a standard archive.
    pub stem: String,
}

impl ArchiveName {
    pub fn is_std_name(&self) -> bool {
        self.local_time.is_some()
    }
}

const COMPRESSORS: [&str; 4] = ["gz", "lzo", "zst", "bz2"];

/// The extension part of a backup file name (`BACKUP_EXT_RE_2`), if it has one.
fn split_extension(file: &str) -> Option<(&str, String, Option<String>)> {
    if let Some(stem) = file.strip_suffix(".tgz") {
        return Some((stem, "tgz".into(), Some("gz".into())));
    }
    for base in ["vma", "tar"] {
        if let Some(stem) = file.strip_suffix(&format!(".{base}")) {
            return Some((stem, base.into(), None));
        }
        for c in COMPRESSORS {
            if let Some(stem) = file.strip_suffix(&format!(".{base}.{c}")) {
                return Some((stem, format!("{base}.{c}"), Some(c.into())));
            }
        }
    }
    None
}

/// The name without its backup extension, as [`split_extension`] finds it, without
/// allocating: the test every listed backup takes.
fn stem_of(file: &str) -> Option<&str> {
    if let Some(stem) = file.strip_suffix(".tgz") {
        return Some(stem);
    }
    let base = |b: &str| matches!(b, "vma" | "tar");
    let (body, last) = file.rsplit_once('.')?;
    if base(last) {
        return Some(body);
    }
    let (stem, b) = body.rsplit_once('.')?;
    (COMPRESSORS.contains(&last) && base(b)).then_some(stem)
}

/// Whether a file name is a standard one (`parse(file)` with a local time), without
/// allocating: prune and retention ask it of every backup.
pub fn is_std_file(file: &str) -> bool {
    stem_of(file)
        .and_then(|stem| stem.strip_prefix("vzdump-"))
        .and_then(|rest| rest.split_once('-'))
        .filter(|(t, _)| matches!(*t, "qemu" | "lxc" | "openvz"))
        .is_some_and(|(_, after)| matches!(std_parts(after), StdName::Dated(..)))
}

/// Parses a file name (no directory) as pve-storage lists it (`get_subdir_files`): every
/// name with a backup extension is a backup. `None` when it has none (logs, notes, `.dat`
/// in progress, other files). Names that are not `vzdump-<qemu|lxc|openvz>-…`, and
/// standard names with an impossible date (`archive_info` dies in `timelocal` and the
/// listing keeps nothing of it), have subtype `unknown`; neither is ever a standard name.
pub fn parse(file: &str) -> Option<ArchiveName> {
    let (stem, format, compression) = split_extension(file)?;
    let typed = stem
        .strip_prefix("vzdump-")
        .and_then(|rest| rest.split_once('-'))
        .filter(|(t, after)| matches!(*t, "qemu" | "lxc" | "openvz") && !after.is_empty());
    let (subtype, std) = match typed {
        Some((t, after)) => match std_parts(after) {
            StdName::Dated(id, time) => (t, Some((id, time))),
            StdName::Impossible => ("unknown", None),
            StdName::Not => (t, None),
        },
        None => ("unknown", None),
    };
    Some(ArchiveName {
        subtype: subtype.into(),
        vmid: std
            .map(|(id, _)| id)
            .or_else(|| listing_vmid(file, &format)),
        local_time: std.map(|(_, t)| t),
        format,
        compression,
        stem: stem.into(),
    })
}

/// What the part after `vzdump-<type>-` is.
enum StdName {
    /// `NNN-YYYY_MM_DD-HH_MM_SS` with a date Perl's `timelocal` accepts.
    Dated(u64, NaiveDateTime),
    /// That shape, but month 13, 29 Feb of a common year, hour 24, second 60, …
    Impossible,
    Not,
}

fn std_parts(s: &str) -> StdName {
    let Some((id, time)) = s.split_once('-') else {
        return StdName::Not;
    };
    let shape = time.len() == 19
        && time.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 | 13 | 16 => b == b'_',
            10 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    let Some(vmid) = vmid_digits(id).filter(|_| shape) else {
        return StdName::Not;
    };
    // The shape is checked: each field is plain digits. Read by hand, not with chrono's
    // format parser (a fifth of backup-prune's time on 100,000 records). `and_hms_opt`
    // refuses second 60, as Time::Local does.
    let field = |a: usize, b: usize| time[a..b].parse::<u32>().ok();
    let t = (|| {
        let date = chrono::NaiveDate::from_ymd_opt(
            i32::try_from(field(0, 4)?).ok()?,
            field(5, 7)?,
            field(8, 10)?,
        )?;
        date.and_hms_opt(field(11, 13)?, field(14, 16)?, field(17, 19)?)
    })();
    match t {
        Some(t) => StdName::Dated(vmid, t),
        None => StdName::Impossible,
    }
}

fn vmid_digits(id: &str) -> Option<u64> {
    let ok = (3..=9).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_digit())
        && !id.starts_with('0');
    if ok { id.parse().ok() } else { None }
}

/// Proxmox's listing takes the vmid of any name from `-([1-9][0-9]{2,8})-[^/]+\.<format>$`
/// (the first such group, as a leftmost regex match does).
fn listing_vmid(file: &str, format: &str) -> Option<u64> {
    let body = file.strip_suffix(format)?.strip_suffix('.')?;
    let bytes = body.as_bytes();
    for (i, _) in body.match_indices('-') {
        let digits = bytes[i + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let end = i + 1 + digits;
        // `-NNN-` then at least one more character before the extension.
        let closed = bytes.get(end) == Some(&b'-') && end + 1 < bytes.len();
        if closed && (3..=9).contains(&digits) && bytes[i + 1] != b'0' {
            return body[i + 1..end].parse().ok();
        }
    }
    None
}

/// `vzdump-qemu-100-2024_01_15-02_00_02` → the `.dat` in-progress name's test: is this file
/// the partial output of a running backup? (`X.vma.zst` is written as `X.vma.dat`.)
pub fn is_in_progress(file: &str) -> bool {
    file.starts_with("vzdump-") && file.ends_with(".dat")
}

/// A vzdump log name (`<stem>.log`) → (subtype, vmid, local time), for standard stems only.
pub fn parse_log_name(file: &str) -> Option<(String, u64, NaiveDateTime)> {
    let stem = file.strip_suffix(".log")?;
    let rest = stem.strip_prefix("vzdump-")?;
    let (subtype, after) = rest.split_once('-')?;
    if !matches!(subtype, "qemu" | "lxc" | "openvz") {
        return None;
    }
    match std_parts(after) {
        StdName::Dated(vmid, t) => Some((subtype.into(), vmid, t)),
        StdName::Impossible | StdName::Not => None,
    }
}

/// How long an archive test may run silently: reading a large archive off a slow NAS takes
/// hours, and the test tools print nothing until they are done.
pub const TEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// The command that tests an archive on the node with its own tools: the compressor's test
/// mode for `.zst/.gz/.lzo/.bz2`, `vma verify` for a plain VMA, `tar -t` for a plain tar.
pub fn test_command(path: &str, format: &str) -> Vec<String> {
    // `--`: a path is never an option, wherever it came from.
    let with = |v: &[&str]| {
        v.iter()
            .map(|s| s.to_string())
            .chain(["--".to_string(), path.to_string()])
            .collect()
    };
    let compression = if format == "tgz" {
        "gz"
    } else {
        format.rsplit_once('.').map(|(_, c)| c).unwrap_or("")
    };
    match compression {
        "zst" => with(&["zstd", "-q", "-t"]),
        "gz" => with(&["gzip", "-t"]),
        "lzo" => with(&["lzop", "-t"]),
        "bz2" => with(&["bzip2", "-t"]),
        _ if format == "vma" => with(&["vma", "verify"]),
        _ => vec![
            "sh".into(),
            "-c".into(),
            "tar -tf \"$1\" >/dev/null".into(),
            "sh".into(),
            path.into(),
        ],
    }
}

/// What a volid says of its backup.
pub(crate) struct FromVolid {
    pub(crate) storage: Option<String>,
    pub(crate) subtype: String,
    pub(crate) format: Option<String>,
    pub(crate) vmid: Option<u64>,
}

pub(crate) fn from_volid(volid: &str) -> FromVolid {
    let (storage, volname) = match volid.split_once(':') {
        Some((s, v)) if !s.is_empty() => (Some(s.to_string()), v),
        _ => (None, volid),
    };
    if let Some((btype, vmid)) = pbs_volname(volname) {
        return FromVolid {
            storage,
            subtype: if btype == "vm" { "qemu" } else { "lxc" }.into(),
            format: Some(format!("pbs-{btype}")),
            vmid,
        };
    }
    let file = volname.rsplit('/').next().unwrap_or(volname);
    match parse(file) {
        Some(a) => FromVolid {
            storage,
            subtype: a.subtype,
            format: Some(a.format),
            vmid: a.vmid,
        },
        None => FromVolid {
            storage,
            subtype: "unknown".into(),
            format: None,
            vmid: None,
        },
    }
}

/// `backup/<vm|ct>/<id>/YYYY-MM-DDTHH:MM:SSZ` → (type, numeric id).
fn pbs_volname(volname: &str) -> Option<(&str, Option<u64>)> {
    let mut parts = volname.split('/');
    let (Some("backup"), Some(btype), Some(id), Some(time), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    // `[^\s_]+` for the id, `[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z` for the time.
    if !matches!(btype, "vm" | "ct")
        || id.is_empty()
        || id.contains(|c: char| c.is_whitespace() || c == '_')
    {
        return None;
    }
    let pattern = b"dddd-dd-ddTdd:dd:ddZ";
    let time_ok = time.len() == pattern.len()
        && time.bytes().zip(pattern).all(|(b, &p)| {
            if p == b'd' {
                b.is_ascii_digit()
            } else {
                b == p
            }
        });
    if !time_ok {
        return None;
    }
    let vmid = if id.bytes().all(|b| b.is_ascii_digit()) {
        id.parse().ok()
    } else {
        None
    };
    Some((btype, vmid))
}

#[cfg(test)]
mod tests {

    #[test]
    fn is_std_file_agrees_with_parse() {
        for f in [
            "vzdump-qemu-100-2024_01_15-02_00_00.vma.zst",
            "vzdump-lxc-101-2024_01_15-02_00_00.tar.gz",
            "vzdump-openvz-102-2024_01_15-02_00_00.tgz",
            "vzdump-qemu-100-2024_01_15-02_00_00.vma",
            "vzdump-qemu-100-2024_02_30-02_00_00.vma.zst",
            "vzdump-qemu-100-2024_01_15-02_00_00.vma.xz",
            "vzdump-qemu-100-2024_01_15-02_00_00.zst",
            "vzdump-qemu-100-before-upgrade.vma.zst",
            "vzdump-qemu-099-2024_01_15-02_00_00.vma.zst",
            "vzdump-kvm-100-2024_01_15-02_00_00.vma.zst",
            "backup-qemu-100-2024_01_15-02_00_00.vma.zst",
            "vzdump-qemu-100-2024_01_15-02_00_00.tar.lzo.vma",
            ".vma",
            "vma",
            "",
        ] {
            let want = parse(f).is_some_and(|a| a.is_std_name());
            assert_eq!(is_std_file(f), want, "{f}");
        }
    }

    use super::*;

    #[test]
    fn standard_names() {
        let a = parse("vzdump-qemu-100-2024_01_15-02_00_02.vma.zst").expect("archive");
        assert_eq!(a.subtype, "qemu");
        assert_eq!(a.format, "vma.zst");
        assert_eq!(a.compression.as_deref(), Some("zst"));
        assert_eq!(a.vmid, Some(100));
        assert!(a.is_std_name());
        assert_eq!(a.stem, "vzdump-qemu-100-2024_01_15-02_00_02");
        let t = parse("vzdump-lxc-101-2024_01_15-02_01_07.tar").expect("archive");
        assert_eq!((t.format.as_str(), t.compression), ("tar", None));
        let g = parse("vzdump-openvz-16110-2020_03_30-21_39_30.tgz").expect("archive");
        assert_eq!(
            (g.format.as_str(), g.compression.as_deref()),
            ("tgz", Some("gz"))
        );
    }

    #[test]
    fn non_standard_and_rejected() {
        let a = parse("vzdump-qemu-100-manual-copy.vma.zst").expect("archive");
        assert!(!a.is_std_name());
        assert_eq!(a.vmid, Some(100));
        let b = parse("vzdump-qemu-foo.vma").expect("archive");
        assert_eq!(b.vmid, None);
        for bad in [
            "vzdump-qemu-100-2024_01_15-02_00_02.vma.xz",
            "vzdump-qemu-100-2024_01_15-02_00_02.vms.gz",
            "vzdump-qemu-100-2024_01_15-02_00_02.log",
            "vzdump-qemu-100-2024_01_15-02_00_02.vma.zst.notes",
            "vzdump-qemu-100-2024_01_15-02_00_02.vma.dat",
            "vzdump-lxc-101-2024_01_15-02_01_07.tgz.lzo",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
        // Listed as Proxmox lists them, but undated and of unknown type.
        for odd in [
            "vzdump-none-100-2024_01_15-02_00_02.tar.gz",
            "other.vma",
            "vzdump-qemu-100-2021_02_29-02_00_00.vma",
            "vzdump-qemu-100-2024_01_15-02_00_60.vma",
            "vzdump-qemu-100-2024_01_15-24_00_00.vma",
        ] {
            let a = parse(odd).expect(odd);
            assert_eq!(
                (a.subtype.as_str(), a.is_std_name()),
                ("unknown", false),
                "{odd}"
            );
        }
        assert!(parse("vzdump-qemu-100-2024_02_29-02_00_00.vma").is_some_and(|a| a.is_std_name()));
        assert!(is_in_progress(
            "vzdump-qemu-100-2024_01_15-02_00_02.vma.dat"
        ));
    }

    #[test]
    fn logs() {
        let (t, id, _) = parse_log_name("vzdump-qemu-102-2024_01_15-02_00_02.log").expect("log");
        assert_eq!((t.as_str(), id), ("qemu", 102));
        assert!(parse_log_name("vzdump-qemu-102-x.log").is_none());
    }
}
