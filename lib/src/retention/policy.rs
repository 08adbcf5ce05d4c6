//! The retention policy: Proxmox's `prune-backups` property string and the `--keep-*` flags.
//!
//! Grammar and messages follow pve-common's `parse_property_string` and pve-storage's
//! `$prune_backups_format`: comma-separated `key=value`, no trimming, whitespace-only parts
//! skipped, duplicate and unknown keys refused, `keep-all` not with other positive options.

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

/// `keep-*` counts (0 = option not set) and `keep-all`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeepOptions {
    pub last: u64,
    pub hourly: u64,
    pub daily: u64,
    pub weekly: u64,
    pub monthly: u64,
    pub yearly: u64,
    pub all: bool,
}

/// The option names in Proxmox's fixed order.
pub const KEYS: [&str; 6] = [
    "keep-last",
    "keep-hourly",
    "keep-daily",
    "keep-weekly",
    "keep-monthly",
    "keep-yearly",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

impl KeepOptions {
    pub fn counts(&self) -> [u64; 6] {
        [
            self.last,
            self.hourly,
            self.daily,
            self.weekly,
            self.monthly,
            self.yearly,
        ]
    }

    fn set(&mut self, key: &str, n: u64) {
        match key {
            "keep-last" => self.last = n,
            "keep-hourly" => self.hourly = n,
            "keep-daily" => self.daily = n,
            "keep-weekly" => self.weekly = n,
            "keep-monthly" => self.monthly = n,
            _ => self.yearly = n,
        }
    }

    /// All-zero options, or keep-all: nothing is removed.
    pub fn keeps_everything(&self) -> bool {
        self.all || self.counts().iter().all(|&n| n == 0)
    }

    /// The check Proxmox makes after parsing (`validate_prune_backups`).
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.all && self.counts().iter().any(|&n| n > 0) {
            return Err(PolicyError(
                "keep-all cannot be set together with other options.".into(),
            ));
        }
        Ok(())
    }

    /// From a job's `prune-backups` object; values may be numbers or strings.
    pub fn from_json(m: &Map<String, Value>) -> Result<Self, PolicyError> {
        let mut o = KeepOptions::default();
        for (k, v) in m {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => u8::from(*b).to_string(),
                _ => return Err(PolicyError(format!("{k}: unexpected value {v}"))),
            };
            o.apply(k, &text)?;
        }
        o.validate()?;
        Ok(o)
    }

    fn apply(&mut self, key: &str, value: &str) -> Result<(), PolicyError> {
        if key == "keep-all" {
            self.all = parse_bool(value).ok_or_else(|| {
                PolicyError(format!(
                    "invalid format - keep-all: type check ('boolean') failed - got '{value}'"
                ))
            })?;
            return Ok(());
        }
        if !KEYS.contains(&key) {
            return Err(PolicyError(format!(
                "invalid key in comma-separated list property: {key}"
            )));
        }
        let n: i64 = parse_int(value).ok_or_else(|| {
            PolicyError(format!(
                "invalid format - {key}: type check ('integer') failed - got '{value}'"
            ))
        })?;
        if n < 0 {
            return Err(PolicyError(format!(
                "invalid format - {key}: value must have a minimum value of 0"
            )));
        }
        self.set(key, n as u64);
        Ok(())
    }
}

/// Perl's integer check: optional sign, digits.
fn parse_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// JSONSchema booleans: 1/0, yes/no, on/off, true/false (any case).
fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "yes" | "on" | "true" => Some(true),
        "0" | "no" | "off" | "false" => Some(false),
        _ => None,
    }
}

impl FromStr for KeepOptions {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains('\n') {
            return Err(PolicyError("properties must not contain newlines".into()));
        }
        let mut o = KeepOptions::default();
        let mut seen: Vec<&str> = Vec::new();
        for part in s.split(',') {
            if part.trim().is_empty() {
                continue;
            }
            let Some((key, value)) = part.split_once('=') else {
                return Err(PolicyError(
                    "value without key, but schema does not define a default key".into(),
                ));
            };
            if key.is_empty() || value.is_empty() {
                return Err(PolicyError(
                    "missing key in comma-separated list property".into(),
                ));
            }
            if seen.contains(&key) {
                return Err(PolicyError(format!(
                    "duplicate key in comma-separated list property: {key}"
                )));
            }
            seen.push(key);
            o.apply(key, value)?;
        }
        o.validate()?;
        Ok(o)
    }
}

impl fmt::Display for KeepOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.all {
            return f.write_str("keep-all=1");
        }
        let parts: Vec<String> = KEYS
            .iter()
            .zip(self.counts())
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{k}={n}"))
            .collect();
        if parts.is_empty() {
            f.write_str("keep-all=1")
        } else {
            f.write_str(&parts.join(","))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(s: &str) -> Result<KeepOptions, String> {
        s.parse::<KeepOptions>().map_err(|e| e.0)
    }

    #[test]
    fn grammar() {
        let o = parse("keep-last=3,keep-daily=13,keep-yearly=9").expect("valid");
        assert_eq!((o.last, o.daily, o.yearly), (3, 13, 9));
        assert_eq!(o.to_string(), "keep-last=3,keep-daily=13,keep-yearly=9");
        assert!(parse("keep-all=1").expect("valid").all);
        assert!(
            parse("keep-all=yes,keep-daily=0")
                .expect("valid")
                .keeps_everything()
        );
        assert!(parse("").expect("empty is all-zero").keeps_everything());
        assert!(
            parse(" ,keep-daily=1").is_ok(),
            "whitespace-only parts are skipped"
        );
    }

    #[test]
    fn proxmox_errors() {
        assert_eq!(
            parse("keep-daily=7,keep-daily=3").unwrap_err(),
            "duplicate key in comma-separated list property: keep-daily"
        );
        assert_eq!(
            parse("keep-all=1,keep-daily=7").unwrap_err(),
            "keep-all cannot be set together with other options."
        );
        assert_eq!(
            parse("keep-dayly=7").unwrap_err(),
            "invalid key in comma-separated list property: keep-dayly"
        );
        assert_eq!(
            parse("keep-daily=x").unwrap_err(),
            "invalid format - keep-daily: type check ('integer') failed - got 'x'"
        );
        assert_eq!(
            parse("keep-daily=-1").unwrap_err(),
            "invalid format - keep-daily: value must have a minimum value of 0"
        );
        assert_eq!(
            parse("keep-daily").unwrap_err(),
            "value without key, but schema does not define a default key"
        );
        assert_eq!(
            parse("keep-daily=").unwrap_err(),
            "missing key in comma-separated list property"
        );
        // No trimming, as in Perl: " keep-daily" is not a known key.
        assert!(parse("keep-last=1, keep-daily=2").is_err());
    }

    #[test]
    fn job_objects() {
        let m = json!({"keep-daily": "7", "keep-weekly": 4});
        let o = KeepOptions::from_json(m.as_object().expect("obj")).expect("valid");
        assert_eq!((o.daily, o.weekly), (7, 4));
        let all = json!({"keep-all": 1});
        assert!(
            KeepOptions::from_json(all.as_object().expect("obj"))
                .expect("valid")
                .all
        );
    }
}
