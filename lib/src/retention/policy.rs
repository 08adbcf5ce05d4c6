//! The retention policy: Proxmox's `prune-backups` property string and the `--keep-*` flags.
//!
//! Grammar, checks and messages follow Proxmox's Perl, read at pve-common f665029e and
//! pve-storage 0c56bad8:
//!
//! * pve-common `src/PVE/JSONSchema.pm` `parse_property_string`: split on `,`, skip parts that
//!   match `/^\s*$/`, each other part must match `/^([^=]+)=(.+)$/` (no trimming; `.` stops at a
//!   newline and `$` also matches before one final newline, so one trailing newline per part is
//!   dropped and any other newline fails). A part without `=` dies with `value without key, but
//!   schema does not define a default key`, any other mismatch with `missing key in
//!   comma-separated list property`, and a key seen before with `duplicate key in
//!   comma-separated list property: <key>` (these three stop at the first).
//!   `keep-all` goes through `parse_boolean` first.
//! * An unknown key is *not* refused where the source says `invalid key …`: `$schema->{alias}`
//!   autovivifies `$schema` to `{}`, so the `die … if !$schema` never fires. The key lands in
//!   the result (a repeat of it is then a duplicate) and `check_object` (called with
//!   additional properties off) reports it.
//! * `check_object` / `check_prop` / `check_type` / `is_integer` collect one error per key;
//!   `parse_property_string` then raises `format error` with those errors, and pve-common
//!   `src/PVE/Exception.pm` `stringify` prints `format error` and one `<key>: <error>` line
//!   each. Perl prints them in hash order (random); pvedr sorts them by key.
//! * `is_integer` is `/^[+-]?\d+$/`: a sign and any number of digits; a number too big for
//!   any integer type passes (Perl compares it as a float). pvedr keeps at most [`MAX_COUNT`];
//!   a policy typed on pvedr's command line ([`KeepOptions::from_arg`]) must fit a `u64`.
//! * pve-storage `src/PVE/Storage/Plugin.pm` `$prune_backups_format` (`keep-all` boolean, the
//!   six counts integers with `minimum => '0'`) and `validate_prune_backups` (no positive
//!   count means keep-all; keep-all with a positive count dies).
//! * pve-common `print_property_string` prints the keys sorted by name.

use std::collections::BTreeMap;
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

/// The option names in the order the marking runs them (pve-storage `Storage.pm`
/// `prune_mark_backup_group`).
pub const KEYS: [&str; 6] = [
    "keep-last",
    "keep-hourly",
    "keep-daily",
    "keep-weekly",
    "keep-monthly",
    "keep-yearly",
];

/// Larger counts (Proxmox accepts any run of digits) are kept as this: more backups than any
/// storage holds, so the marks are the same, and six of them still add up in a `u64`.
pub const MAX_COUNT: u64 = u32::MAX as u64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

/// A value as `check_type` sees it.
enum Val<'a> {
    /// JSON `null` (`undef`).
    Null,
    /// A plain Perl scalar (a string, or a JSON number as text).
    Text(String),
    /// A JSON boolean (`JSON::PP::Boolean` in Perl).
    Bool(bool),
    /// Any other reference, by its Perl `ref` name.
    Ref(&'a str),
}

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

    /// From a job's `prune-backups` object, checked as pve-common `check_object` checks a hash
    /// against `$prune_backups_format`: `null` is absent (`check_prop` returns on an undefined
    /// optional value), numbers and strings are plain scalars, a JSON boolean is fine for
    /// `keep-all` but fails a count (`check_type`: `got JSON::PP::Boolean`), and strings are
    /// not run through `parse_boolean` (that only happens in `parse_property_string`).
    pub fn from_json(m: &Map<String, Value>) -> Result<Self, PolicyError> {
        let pairs = m.iter().map(|(k, v)| {
            let val = match v {
                Value::Null => Val::Null,
                Value::String(s) => Val::Text(s.clone()),
                Value::Number(n) => Val::Text(n.to_string()),
                Value::Bool(b) => Val::Bool(*b),
                Value::Array(_) => Val::Ref("ARRAY"),
                Value::Object(_) => Val::Ref("HASH"),
            };
            (k.clone(), val)
        });
        Self::check_object(pairs)
    }

    /// `check_object` with additional properties off, then `validate_prune_backups`.
    fn check_object<'a>(
        pairs: impl IntoIterator<Item = (String, Val<'a>)>,
    ) -> Result<Self, PolicyError> {
        let mut o = KeepOptions::default();
        let mut errors: BTreeMap<String, String> = BTreeMap::new();
        for (key, val) in pairs {
            match check_value(&key, &val) {
                Ok(Checked::Absent) => {}
                Ok(Checked::All(b)) => o.all = b,
                Ok(Checked::Count(n)) => o.set(&key, n),
                Err(e) => {
                    errors.insert(key, e);
                }
            }
        }
        if !errors.is_empty() {
            let lines: Vec<String> = errors.iter().map(|(k, e)| format!("{k}: {e}")).collect();
            return Err(PolicyError(format!("format error\n{}", lines.join("\n"))));
        }
        o.validate()?;
        Ok(o)
    }
}

enum Checked {
    Absent,
    All(bool),
    Count(u64),
}

/// `check_object` / `check_prop` for one key of `$prune_backups_format`: an unknown key is an
/// error whatever its value, a known one with an undefined value is absent.
fn check_value(key: &str, val: &Val<'_>) -> Result<Checked, String> {
    let known = key == "keep-all" || KEYS.contains(&key);
    if !known {
        return Err(
            "property is not defined in schema and the schema does not allow additional properties"
                .into(),
        );
    }
    if matches!(val, Val::Null) {
        return Ok(Checked::Absent);
    }
    if key == "keep-all" {
        return match val {
            Val::Null => Ok(Checked::Absent),
            Val::Bool(b) => Ok(Checked::All(*b)),
            Val::Text(s) if s == "1" => Ok(Checked::All(true)),
            Val::Text(s) if s == "0" => Ok(Checked::All(false)),
            Val::Text(s) => Err(format!("type check ('boolean') failed - got '{s}'")),
            Val::Ref(r) => Err(format!("type check ('boolean') failed - got {r}")),
        };
    }
    let s = match val {
        Val::Null => return Ok(Checked::Absent),
        Val::Text(s) => s,
        Val::Bool(_) => return Err("type check ('integer') failed - got JSON::PP::Boolean".into()),
        Val::Ref(r) => return Err(format!("type check ('integer') failed - got {r}")),
    };
    let Some((negative, digits)) = split_integer(s) else {
        return Err(format!("type check ('integer') failed - got '{s}'"));
    };
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Ok(Checked::Count(0));
    }
    if negative {
        return Err("value must have a minimum value of 0".into());
    }
    let n = digits
        .parse::<u64>()
        .map_or(MAX_COUNT, |n| n.min(MAX_COUNT));
    Ok(Checked::Count(n))
}

/// pve-common `is_integer` (`/^[+-]?\d+$/`, where `$` also matches before a final newline):
/// the sign and the digits.
fn split_integer(s: &str) -> Option<(bool, &str)> {
    let s = s.strip_suffix('\n').unwrap_or(s);
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((negative, digits))
}

/// pve-common `parse_boolean`: 1/0, on/off, yes/no, true/false (any case).
fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "yes" | "on" | "true" => Some(true),
        "0" | "no" | "off" | "false" => Some(false),
        _ => None,
    }
}

/// Perl's `\s` on a byte string.
fn perl_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0B' | '\x0C' | '\r')
}

/// `/^([^=]+)=(.+)$/`: the key up to the first `=`, the value without one final newline and
/// with no other.
fn key_value(part: &str) -> Option<(&str, &str)> {
    let (key, rest) = part.split_once('=')?;
    let value = rest.strip_suffix('\n').unwrap_or(rest);
    if key.is_empty() || value.is_empty() || value.contains('\n') {
        return None;
    }
    Some((key, value))
}

impl FromStr for KeepOptions {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut res: Vec<(String, Val<'static>)> = Vec::new();
        for part in s.split(',') {
            if part.chars().all(perl_space) {
                continue;
            }
            let Some((key, value)) = key_value(part) else {
                return Err(PolicyError(if part.contains('=') {
                    "missing key in comma-separated list property".into()
                } else {
                    "value without key, but schema does not define a default key".into()
                }));
            };
            if res.iter().any(|(k, _)| k == key) {
                return Err(PolicyError(format!(
                    "duplicate key in comma-separated list property: {key}"
                )));
            }
            let value = if key == "keep-all" {
                parse_bool(value).map_or(value, |b| if b { "1" } else { "0" })
            } else {
                value
            };
            res.push((key.to_string(), Val::Text(value.to_string())));
        }
        Self::check_object(res)
    }
}

impl KeepOptions {
    /// A policy typed by a user (`--prune-backups`): Proxmox's grammar, but a count must fit
    /// what the `--keep-*` flags take (a `u64`). Proxmox accepts any run of digits; on the
    /// command line a 100-digit count is a typo, not a policy.
    pub fn from_arg(s: &str) -> Result<Self, PolicyError> {
        let o: KeepOptions = s.parse()?;
        for (key, value) in s.split(',').filter_map(key_value) {
            let digits = split_integer(value).map(|(_, d)| d.trim_start_matches('0'));
            if KEYS.contains(&key)
                && digits.is_some_and(|d| d.parse::<u64>().is_err() && !d.is_empty())
            {
                return Err(PolicyError(format!(
                    "{key}: {} digits is more than a count can be (at most {})",
                    value.trim_end().len(),
                    u64::MAX
                )));
            }
        }
        Ok(o)
    }
}

/// pve-common `print_property_string` after `validate_prune_backups`: keys sorted by name,
/// `keep-all=1` when no count is set. (Proxmox also prints a count given as 0; pvedr does not
/// keep "given as 0" apart from "not given".)
impl fmt::Display for KeepOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.keeps_everything() {
            return f.write_str("keep-all=1");
        }
        let mut parts: Vec<(&str, u64)> = KEYS
            .iter()
            .copied()
            .zip(self.counts())
            .filter(|(_, n)| *n > 0)
            .collect();
        parts.sort_unstable_by_key(|(k, _)| *k);
        let parts: Vec<String> = parts.iter().map(|(k, n)| format!("{k}={n}")).collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(s: &str) -> Result<KeepOptions, String> {
        s.parse::<KeepOptions>().map_err(|e| e.0)
    }

    fn job(v: Value) -> Result<KeepOptions, String> {
        KeepOptions::from_json(v.as_object().expect("obj")).map_err(|e| e.0)
    }

    const NOT_IN_SCHEMA: &str =
        "property is not defined in schema and the schema does not allow additional properties";

    /// What `parse` says of a keep-daily that is not an integer (pve-common's wording).
    fn daily_not_integer(got: &str) -> String {
        format!("format error\nkeep-daily: type check ('integer') failed - got '{got}'")
    }

    #[test]
    fn a_typed_count_must_fit_a_flag() {
        let huge = format!("keep-last={}", "9".repeat(100));
        assert!(parse(&huge).is_ok(), "Proxmox's grammar takes it");
        let e = KeepOptions::from_arg(&huge).expect_err("a typo").0;
        assert!(e.starts_with("keep-last: 100 digits"), "{e}");
        let o =
            KeepOptions::from_arg("keep-last=0003,keep-daily=18446744073709551615").expect("fits");
        assert_eq!((o.last, o.daily), (3, MAX_COUNT));
        assert!(KeepOptions::from_arg("keep-last=-1").is_err());
    }

    #[test]
    fn grammar() {
        let o = parse("keep-last=3,keep-daily=13,keep-yearly=9").expect("valid");
        assert_eq!((o.last, o.daily, o.yearly), (3, 13, 9));
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
        assert_eq!(parse("keep-last=+5").expect("sign").last, 5);
        assert_eq!(parse("keep-last=007").expect("zeros").last, 7);
        assert!(parse("keep-last=-0").expect("-0").keeps_everything());
        assert!(parse("keep-all=TRUE").expect("any case").all);
        // '=' after the first one belongs to the value.
        assert_eq!(
            parse("keep-daily=7=8").unwrap_err(),
            daily_not_integer("7=8")
        );
    }

    #[test]
    fn display_sorts_keys_by_name() {
        // print_property_string: `foreach my $key (sort keys %$data)`.
        let o = parse("keep-yearly=9,keep-last=3,keep-weekly=2,keep-daily=13").expect("valid");
        assert_eq!(
            o.to_string(),
            "keep-daily=13,keep-last=3,keep-weekly=2,keep-yearly=9"
        );
        let all = ["keep-all=0", "keep-daily=0", "", "keep-all=1"];
        for s in all {
            assert_eq!(parse(s).expect("valid").to_string(), "keep-all=1", "{s}");
        }
    }

    #[test]
    fn structural_errors_stop_at_the_first() {
        for (s, msg) in [
            (
                "keep-daily=7,keep-daily=3",
                "duplicate key in comma-separated list property: keep-daily",
            ),
            (
                "keep-daily=x,keep-daily=7",
                "duplicate key in comma-separated list property: keep-daily",
            ),
            (
                "keep-all=1,keep-all=0",
                "duplicate key in comma-separated list property: keep-all",
            ),
            // An unknown key is stored like a known one, so its repeat is a duplicate.
            (
                "keep-dayly=7,keep-dayly=8",
                "duplicate key in comma-separated list property: keep-dayly",
            ),
            (
                "keep-daily",
                "value without key, but schema does not define a default key",
            ),
            (
                "keep-daily=x,keep-bogus",
                "value without key, but schema does not define a default key",
            ),
            (
                "keep-daily=",
                "missing key in comma-separated list property",
            ),
            ("=5", "missing key in comma-separated list property"),
            (
                "keep-daily=\n",
                "missing key in comma-separated list property",
            ),
            (
                "keep-daily=7\n\n",
                "missing key in comma-separated list property",
            ),
            (
                "keep-daily=7\nx",
                "missing key in comma-separated list property",
            ),
            (
                "keep-all=1,keep-daily=7",
                "keep-all cannot be set together with other options.",
            ),
        ] {
            assert_eq!(parse(s).unwrap_err(), msg, "{s:?}");
        }
    }

    #[test]
    fn unknown_keys_are_format_errors() {
        assert_eq!(
            parse("keep-dayly=7").unwrap_err(),
            format!("format error\nkeep-dayly: {NOT_IN_SCHEMA}")
        );
        // No trimming, as in Perl: " keep-daily" is not a known key.
        assert_eq!(
            parse("keep-last=1, keep-daily=2").unwrap_err(),
            format!("format error\n keep-daily: {NOT_IN_SCHEMA}")
        );
        assert_eq!(
            parse("\nkeep-daily=7").unwrap_err(),
            format!("format error\n\nkeep-daily: {NOT_IN_SCHEMA}")
        );
    }

    #[test]
    fn every_value_error_is_reported() {
        assert_eq!(
            parse("keep-daily=x,keep-weekly=-1,keep-last=y,keep-bogus=1").unwrap_err(),
            "format error\n\
             keep-bogus: property is not defined in schema and the schema does not allow additional properties\n\
             keep-daily: type check ('integer') failed - got 'x'\n\
             keep-last: type check ('integer') failed - got 'y'\n\
             keep-weekly: value must have a minimum value of 0"
        );
        assert_eq!(
            parse("keep-all=x").unwrap_err(),
            "format error\nkeep-all: type check ('boolean') failed - got 'x'"
        );
        assert_eq!(parse("keep-daily= 7").unwrap_err(), daily_not_integer(" 7"));
        assert_eq!(
            parse("keep-daily=-99999999999999999999999").unwrap_err(),
            "format error\nkeep-daily: value must have a minimum value of 0"
        );
        // Value errors come before validate_prune_backups.
        assert_eq!(
            parse("keep-all=1,keep-daily=x").unwrap_err(),
            daily_not_integer("x")
        );
    }

    #[test]
    fn one_trailing_newline_per_part_is_dropped() {
        assert_eq!(parse("keep-daily=7\n").expect("valid").daily, 7);
        let o = parse("keep-daily=7\n,keep-last=2").expect("valid");
        assert_eq!((o.daily, o.last), (7, 2));
        assert!(parse("keep-all=1\n").expect("valid").all);
        assert!(parse("\n").expect("whitespace").keeps_everything());
        assert_eq!(parse("keep-daily=x\n").unwrap_err(), daily_not_integer("x"));
    }

    #[test]
    fn overflowing_counts_pass() {
        let o = parse("keep-daily=99999999999999999999999").expect("is_integer passes");
        assert_eq!(o.daily, MAX_COUNT);
        assert_eq!(o.to_string(), format!("keep-daily={MAX_COUNT}"));
        let o = job(json!({"keep-last": "18446744073709551616"})).expect("valid");
        assert_eq!(o.last, MAX_COUNT);
    }

    #[test]
    fn job_objects() {
        let o = job(json!({"keep-daily": "7", "keep-weekly": 4})).expect("valid");
        assert_eq!((o.daily, o.weekly), (7, 4));
        assert!(job(json!({"keep-all": 1})).expect("valid").all);
        assert!(job(json!({"keep-all": true})).expect("valid").all);
        assert!(job(json!({"keep-all": "1"})).expect("valid").all);
        // null is absent (check_prop returns on an undefined optional value).
        let o = job(json!({"keep-daily": null, "keep-last": 2})).expect("valid");
        assert_eq!((o.daily, o.last), (0, 2));
        assert!(
            job(json!({"keep-all": null}))
                .expect("valid")
                .keeps_everything()
        );
        // is_integer's `$` matches before a final newline.
        assert_eq!(job(json!({"keep-daily": "7\n"})).expect("valid").daily, 7);
    }

    #[test]
    fn job_object_errors() {
        for (v, msg) in [
            (
                json!({"keep-daily": true}),
                "keep-daily: type check ('integer') failed - got JSON::PP::Boolean",
            ),
            (
                json!({"keep-all": "yes"}),
                "keep-all: type check ('boolean') failed - got 'yes'",
            ),
            (
                json!({"keep-all": 2}),
                "keep-all: type check ('boolean') failed - got '2'",
            ),
            (
                json!({"keep-daily": [1]}),
                "keep-daily: type check ('integer') failed - got ARRAY",
            ),
            (
                json!({"keep-daily": {"a": 1}}),
                "keep-daily: type check ('integer') failed - got HASH",
            ),
            (
                json!({"keep-daily": 1.5}),
                "keep-daily: type check ('integer') failed - got '1.5'",
            ),
            (
                json!({"keep-daily": -1, "keep-last": "x"}),
                "keep-daily: value must have a minimum value of 0\n\
                 keep-last: type check ('integer') failed - got 'x'",
            ),
        ] {
            assert_eq!(
                job(v.clone()).unwrap_err(),
                format!("format error\n{msg}"),
                "{v}"
            );
        }
        assert_eq!(
            job(json!({"bogus": null})).unwrap_err(),
            format!("format error\nbogus: {NOT_IN_SCHEMA}")
        );
        assert_eq!(
            job(json!({"keep-all": true, "keep-daily": 3})).unwrap_err(),
            "keep-all cannot be set together with other options."
        );
    }
}
