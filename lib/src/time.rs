//! Durations (`26h`, `1h30m`), dates (`YYYY-MM-DD`, RFC 3339) and the node's time zone.
//!
//! Archive names hold the node's *local* time, so every name → epoch conversion goes through
//! a [`Zone`]: the `TZ` environment variable (or the system zone), or `--timezone NAME`.

use chrono::{DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeZone};

use crate::error::{Error, Result};

/// Parses a duration into whole seconds with humantime: `30s`, `10m`, `26h`, `35d`, `2w`,
/// combinations such as `1h30m` or `1h 30m`, and the long units (`2days`, `90min`). A bare
/// `M` (humantime's month) is refused: here it was never a unit, and `10M` read as ten
/// months instead of minutes would be a silent surprise. Fractions of a second are refused.
pub fn parse_duration(s: &str) -> Result<u64> {
    let bad = || {
        Error::usage(format!(
            "invalid duration '{}': expected e.g. 30s, 10m, 26h, 7d or 1h30m",
            s.escape_debug()
        ))
    };
    let t = s.trim();
    let month = t
        .split(|c: char| !c.is_ascii_alphabetic())
        .any(|u| u == "M");
    if month {
        return Err(bad());
    }
    let d = humantime::parse_duration(t).map_err(|_| bad())?;
    if d.subsec_nanos() != 0 {
        return Err(bad());
    }
    Ok(d.as_secs())
}

/// Renders seconds back as `1d2h3m4s` (for messages).
pub fn format_duration(mut secs: u64) -> String {
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, n) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= n {
            out.push_str(&format!("{}{unit}", secs / n));
            secs %= n;
        }
    }
    out
}

/// The node's time zone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Zone {
    /// This process's local zone (`TZ` or `/etc/localtime`).
    Local,
    Named(chrono_tz::Tz),
}

impl Zone {
    /// `--timezone NAME` if given, else the process's zone (honours `TZ`).
    pub fn from_arg(name: Option<&str>) -> Result<Zone> {
        match name {
            None => Ok(Zone::Local),
            Some(n) => Zone::named(n),
        }
    }

    /// An IANA zone by name.
    pub fn named(n: &str) -> Result<Zone> {
        n.parse::<chrono_tz::Tz>().map(Zone::Named).map_err(|_| {
            Error::usage(format!(
                "unknown time zone '{n}': expected an IANA name such as Europe/Paris"
            ))
        })
    }

    /// The IANA name; `None` for this process's zone, whose name is not known.
    pub fn name(&self) -> Option<&'static str> {
        match self {
            Zone::Local => None,
            Zone::Named(tz) => Some(tz.name()),
        }
    }

    /// Local wall time → Unix seconds. Ambiguous times (the repeated hour when DST ends) take
    /// the earlier instant; times that do not exist (the skipped hour) are read with the
    /// offset in force before the change, as `mktime` does.
    pub fn to_epoch(&self, t: NaiveDateTime) -> Option<i64> {
        match self {
            Zone::Local => resolve(&chrono::Local, t),
            Zone::Named(tz) => resolve(tz, t),
        }
    }

    /// Unix seconds → local wall time.
    pub fn to_local(&self, epoch: i64) -> Option<NaiveDateTime> {
        let utc = DateTime::from_timestamp(epoch, 0)?;
        Some(match self {
            Zone::Local => utc.with_timezone(&chrono::Local).naive_local(),
            Zone::Named(tz) => utc.with_timezone(tz).naive_local(),
        })
    }
}

fn resolve<Z: TimeZone>(zone: &Z, t: NaiveDateTime) -> Option<i64> {
    match zone.from_local_datetime(&t) {
        LocalResult::Single(d) => Some(d.timestamp()),
        LocalResult::Ambiguous(a, b) => Some(a.timestamp().min(b.timestamp())),
        LocalResult::None => {
            // In a DST gap: use the offset of a moment before the gap.
            let before = t - chrono::Duration::hours(3);
            let off = zone
                .from_local_datetime(&before)
                .earliest()?
                .offset()
                .fix()
                .local_minus_utc();
            Some(t.and_utc().timestamp() - i64::from(off))
        }
    }
}

/// A point in time from the command line: `YYYY-MM-DD` (midnight in `zone`; with
/// `end_of_day`, the last second of that day) or RFC 3339.
pub fn parse_date(s: &str, zone: Zone, end_of_day: bool) -> Result<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp());
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
        Error::usage(format!(
            "invalid date '{s}': expected YYYY-MM-DD or RFC 3339 (2024-01-15T02:00:00Z)"
        ))
    })?;
    if d.year() < 1970 {
        return Err(Error::usage(format!("invalid date '{s}': before 1970")));
    }
    let t = if end_of_day {
        d.and_hms_opt(23, 59, 59)
    } else {
        d.and_hms_opt(0, 0, 0)
    }
    .ok_or_else(|| Error::usage(format!("invalid date '{s}'")))?;
    zone.to_epoch(t)
        .ok_or_else(|| Error::usage(format!("date '{s}' does not exist in the time zone")))
}

/// A calendar day `YYYY-MM-DD` in `zone`: [its first second, the next day's first second).
/// 23 or 25 hours long on the days the clocks change.
pub fn day_range(s: &str, zone: Zone) -> Result<(i64, i64)> {
    let start = parse_date(s, zone, false)?;
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| Error::usage(format!("invalid date '{s}': expected YYYY-MM-DD")))?;
    let next = d
        .succ_opt()
        .and_then(|n| n.and_hms_opt(0, 0, 0))
        .and_then(|n| zone.to_epoch(n))
        .ok_or_else(|| Error::usage(format!("invalid date '{s}'")))?;
    Ok((start, next))
}

/// Seconds since the epoch, now.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").ok(), Some(30));
        assert_eq!(parse_duration("26h").ok(), Some(26 * 3600));
        assert_eq!(parse_duration("1h30m").ok(), Some(5400));
        assert_eq!(parse_duration("7d").ok(), Some(7 * 86400));
        assert_eq!(parse_duration("35d").ok(), Some(35 * 86400));
        assert_eq!(parse_duration("2w").ok(), Some(14 * 86400));
        assert_eq!(parse_duration("36h").ok(), Some(36 * 3600));
        assert_eq!(parse_duration("1d12h").ok(), Some(36 * 3600));
        assert_eq!(parse_duration("1h 30m").ok(), Some(5400));
        assert_eq!(parse_duration("0s").ok(), Some(0));
        assert_eq!(parse_duration("1.5h").ok(), Some(5400));
        for bad in [
            "", "h", "10", "10x", "-1h", "1.0001s", "10M", "500ms", "1h;x",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(format_duration(93784), "1d2h3m4s");
    }

    #[test]
    fn a_day_is_23_or_25_hours_when_the_clocks_change() {
        let paris = Zone::named("Europe/Paris").expect("zone");
        let len = |d| day_range(d, paris).map(|(a, b)| b - a).ok();
        assert_eq!(len("2024-03-31"), Some(23 * 3600));
        assert_eq!(len("2024-10-27"), Some(25 * 3600));
        assert_eq!(len("2024-01-15"), Some(24 * 3600));
        assert_eq!(
            day_range("2024-01-15", paris).ok().map(|r| r.0),
            Some(1_705_273_200)
        );
        assert!(day_range("2024-01-15T00:00:00Z", paris).is_err());
    }

    #[test]
    fn zones_and_dst() {
        let paris = Zone::from_arg(Some("Europe/Paris")).expect("zone");
        let t = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").expect("t");
        // Winter: UTC+1.
        assert_eq!(paris.to_epoch(t("2024-01-15 02:00:02")), Some(1705280402));
        // 2024-10-27 02:30 happens twice in Paris: the earlier (CEST, UTC+2) instant wins.
        assert_eq!(paris.to_epoch(t("2024-10-27 02:30:00")), Some(1729989000));
        // 2024-03-31 02:30 does not exist; read with the winter offset (UTC+1) as mktime does.
        assert_eq!(paris.to_epoch(t("2024-03-31 02:30:00")), Some(1711848600));
        assert_eq!(paris.to_local(1705280402), Some(t("2024-01-15 02:00:02")));
        assert!(Zone::from_arg(Some("Mars/Olympus")).is_err());
    }

    #[test]
    fn dates() {
        let utc = Zone::from_arg(Some("UTC")).expect("zone");
        assert_eq!(parse_date("2024-01-15", utc, false).ok(), Some(1705276800));
        assert_eq!(parse_date("2024-01-15", utc, true).ok(), Some(1705363199));
        assert_eq!(
            parse_date("2024-01-15T02:00:00+01:00", utc, false).ok(),
            Some(1705280400)
        );
        assert!(parse_date("15.01.2024", utc, false).is_err());
    }
}
