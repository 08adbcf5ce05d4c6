//! Where offsite copies live: `s3://BUCKET/PREFIX`, and the keys under it.

use pvedr::error::{Error, Result};
use pvedr::s3::Endpoint;

use crate::cli::Cli;

/// A bucket and a key prefix (no leading or trailing `/`; may be empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub bucket: String,
    pub prefix: String,
}

/// A key part S3 and a shell both take as it is: no `/`, no `..`, no control characters.
pub fn check_part(what: &str, s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s != "."
        && s != ".."
        && s.len() <= 255
        && !s.contains('/')
        && !s.chars().any(char::is_control);
    pvedr::validate::require(ok, what, s, "")
}

impl Location {
    pub fn parse(url: &str) -> Result<Location> {
        let rest = url.strip_prefix("s3://").ok_or_else(|| {
            Error::usage(format!("'{}': give s3://BUCKET/PREFIX", url.escape_debug()))
        })?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        pvedr::s3::check_bucket(bucket)?;
        let prefix = prefix.trim_matches('/');
        if !prefix.is_empty() {
            for p in prefix.split('/') {
                check_part("prefix part", p)?;
            }
        }
        Ok(Location {
            bucket: bucket.into(),
            prefix: prefix.into(),
        })
    }

    /// `PREFIX/<group>/<vmid>/<file>`.
    pub fn key(&self, group: &str, vmid: u64, file: &str) -> String {
        if self.prefix.is_empty() {
            format!("{group}/{vmid}/{file}")
        } else {
            format!("{}/{group}/{vmid}/{file}", self.prefix)
        }
    }

    /// The listing prefix (`PREFIX/`, or everything).
    pub fn list_prefix(&self) -> String {
        if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        }
    }
}

/// The manifest's key beside an archive's.
pub fn manifest_key(archive_key: &str) -> String {
    format!("{archive_key}.manifest.json")
}

/// A copy as `ls` writes it, its volid (`BUCKET:backup/KEY`) or its url
/// (`s3://BUCKET/KEY`, as `push` writes it too) → (bucket, key).
pub fn parse_volid(volid: &str) -> Result<(String, String)> {
    let split = match volid.strip_prefix("s3://") {
        Some(url) => url.split_once('/'),
        None => volid.split_once(":backup/"),
    };
    let (bucket, key) = split.ok_or_else(|| {
        Error::usage(format!(
            "'{}': give BUCKET:backup/KEY or s3://BUCKET/KEY (as `backup-sync ls` writes)",
            volid.escape_debug()
        ))
    })?;
    pvedr::s3::check_bucket(bucket)?;
    for p in key.split('/') {
        check_part("key part", p)?;
    }
    Ok((bucket.into(), key.into()))
}

pub fn endpoint(cli: &Cli) -> Result<Endpoint> {
    cli.s3.endpoint()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_keys() {
        let l = Location::parse("s3://offsite/pve/site1/").expect("ok");
        assert_eq!(l.prefix, "pve/site1");
        assert_eq!(
            l.key("pve1", 100, "a.vma.zst"),
            "pve/site1/pve1/100/a.vma.zst"
        );
        assert_eq!(
            Location::parse("s3://offsite")
                .expect("ok")
                .key("n", 1, "f"),
            "n/1/f"
        );
        assert!(Location::parse("offsite/x").is_err());
        assert!(Location::parse("s3://offsite/a/../b").is_err());
        assert!(Location::parse("s3://Bad_Bucket/x").is_err());
        assert_eq!(
            parse_volid("offsite:backup/p/pve1/100/f.vma").expect("ok"),
            ("offsite".into(), "p/pve1/100/f.vma".into())
        );
        assert!(parse_volid("local:backup/../x").is_err());
        assert_eq!(
            parse_volid("s3://offsite/p/pve1/100/f.vma").expect("ok"),
            ("offsite".into(), "p/pve1/100/f.vma".into())
        );
        assert!(parse_volid("s3://offsite").is_err());
        assert!(parse_volid("s3://offsite/a//b").is_err());
    }
}
