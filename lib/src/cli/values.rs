//! Flag values parsed when clap reads the command line, so a bad one is a usage error
//! naming its flag before anything runs: durations ([`crate::time::parse_duration`], on
//! humantime), sizes (bytesize), percentages and factors.

use std::time::Duration;

/// Any duration, `0s` included (`--wait 0s`: do not wait).
pub fn duration(s: &str) -> Result<Duration, String> {
    crate::time::parse_duration(s)
        .map(Duration::from_secs)
        .map_err(|e| e.to_string())
}

/// A bound: 0 would mean none at all.
pub fn bound(s: &str) -> Result<Duration, String> {
    match duration(s)? {
        d if d.is_zero() => Err("must be more than 0s".into()),
        d => Ok(d),
    }
}

/// An S3 timeout: 1s to 1d.
pub fn s3_timeout(s: &str) -> Result<Duration, String> {
    match bound(s)? {
        d if d.as_secs() > 86_400 => Err("must be 1s to 1d".into()),
        d => Ok(d),
    }
}

/// Bytes: `8M`, `512k`, `1G`, `1048576`, `1.5G`, `10GiB`, `500MB`. A bare K, M, G or T is
/// binary (1024-based), as these flags have always read it; `KB`, `MB`… are decimal.
pub fn size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let binary = match t.chars().last() {
        Some(c) if "kKmMgGtT".contains(c) => format!("{t}i"),
        _ => t.to_string(),
    };
    let bad = || format!("'{}' is not a size (8M, 512K, 1G)", s.escape_debug());
    match binary.parse::<bytesize::ByteSize>() {
        Ok(b) if b.as_u64() > 0 => Ok(b.as_u64()),
        Ok(_) => Err(format!("'{}' is out of range", s.escape_debug())),
        Err(_) => Err(bad()),
    }
}

/// A percentage, `80` or `80%`, as a fraction (0.8): 0 to 100.
pub fn percent(s: &str) -> Result<f64, String> {
    let n: f64 = s
        .trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("'{}' is not a percentage", s.escape_debug()))?;
    if !(0.0..=100.0).contains(&n) {
        return Err(format!("'{}' is not between 0 and 100", s.escape_debug()));
    }
    Ok(n / 100.0)
}

/// A positive, finite factor: `3`, `0.33` or `1/3`.
pub fn factor(s: &str) -> Result<f64, String> {
    let bad = || format!("'{}' is not a factor (3, 0.33, 1/3)", s.escape_debug());
    let number = |t: &str| t.trim().parse::<f64>().map_err(|_| bad());
    let n = match s.trim().split_once('/') {
        Some((a, b)) => number(a)? / number(b)?,
        None => number(s)?,
    };
    if n.is_finite() && n > 0.0 {
        Ok(n)
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_keep_their_binary_letters() {
        assert_eq!(size("8M"), Ok(8 << 20));
        assert_eq!(size("512k"), Ok(512 << 10));
        assert_eq!(size("1G"), Ok(1 << 30));
        assert_eq!(size("100"), Ok(100));
        assert_eq!(size("10GiB"), Ok(10 << 30));
        assert_eq!(size("500MB"), Ok(500_000_000));
        for bad in ["0", "8X", "M", "", "-1M", "1.5.5G"] {
            assert!(size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bounds_and_timeouts() {
        assert_eq!(duration("0s"), Ok(Duration::ZERO));
        assert!(bound("0s").is_err());
        assert_eq!(s3_timeout("1d"), Ok(Duration::from_secs(86_400)));
        assert!(s3_timeout("2d").is_err());
    }

    #[test]
    fn percents_and_factors() {
        assert_eq!(percent("80"), Ok(0.8));
        assert_eq!(percent(" 80% "), Ok(0.8));
        for bad in ["eighty", "101", "-1", ""] {
            assert!(percent(bad).is_err(), "{bad}");
        }
        assert_eq!(factor("3"), Ok(3.0));
        assert_eq!(factor("1/4"), Ok(0.25));
        for bad in ["x/3", "1/0", "0", "-2", "inf", ""] {
            assert!(factor(bad).is_err(), "{bad}");
        }
    }
}
