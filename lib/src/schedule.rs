//! Proxmox calendar events (the `schedule` of backup jobs), read well enough to know when a
//! job runs: `21:00`, `mon..fri 02:30`, `sat 01:00`, `mon,wed,fri 21:00`, `*/6:00`,
//! `02,14:30`, `daily`, `weekly`, `hourly`. Anything else is `None` (callers fall back).

/// When a job runs within a week: days (bit 0 = Monday) and times of day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    days: u8,
    hours: Vec<u32>,
    minutes: Vec<u32>,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn day(s: &str) -> Option<u32> {
    DAYS.iter().position(|d| *d == s).map(|p| p as u32)
}

fn day_spec(s: &str) -> Option<u8> {
    let mut bits = 0u8;
    for part in s.split(',') {
        if let Some((a, b)) = part.split_once("..") {
            let (a, b) = (day(a)?, day(b)?);
            if a > b {
                return None;
            }
            for d in a..=b {
                bits |= 1 << d;
            }
        } else {
            bits |= 1 << day(part)?;
        }
    }
    Some(bits)
}

/// `*`, `N`, `a,b`, `a..b`, `*/n`, `a/n` within 0..max.
fn values(s: &str, max: u32) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, st)) => (r, st.parse::<u32>().ok().filter(|&n| n > 0)?),
            None => (part, 1),
        };
        let (lo, hi) = if range == "*" {
            (0, max - 1)
        } else if let Some((a, b)) = range.split_once("..") {
            (a.parse().ok()?, b.parse().ok()?)
        } else {
            let v: u32 = range.parse().ok()?;
            (v, if part.contains('/') { max - 1 } else { v })
        };
        if lo > hi || hi >= max {
            return None;
        }
        out.extend((lo..=hi).step_by(step as usize));
    }
    out.sort_unstable();
    out.dedup();
    Some(out)
}

impl Schedule {
    pub fn parse(s: &str) -> Option<Schedule> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "daily" => return Schedule::parse("00:00"),
            "weekly" => return Schedule::parse("mon 00:00"),
            "hourly" => return Schedule::parse("*:00"),
            _ => {}
        }
        let words: Vec<&str> = s.split_whitespace().collect();
        let (days, time) = match words.as_slice() {
            [t] => (0x7f, *t),
            [d, t] => (day_spec(d)?, *t),
            _ => return None,
        };
        let (h, m) = time.split_once(':')?;
        Some(Schedule {
            days,
            hours: values(h, 24)?,
            minutes: values(m, 60)?,
        })
    }

    /// The longest time between two runs, in seconds.
    pub fn max_interval(&self) -> u64 {
        let mut runs: Vec<u64> = Vec::new();
        for d in 0..7u64 {
            if self.days & (1 << d) == 0 {
                continue;
            }
            for h in &self.hours {
                for m in &self.minutes {
                    runs.push(d * 86400 + u64::from(*h) * 3600 + u64::from(*m) * 60);
                }
            }
        }
        runs.sort_unstable();
        let week = 7 * 86400;
        match runs.as_slice() {
            [] => week,
            [_] => week,
            _ => {
                let mut gap = runs[0] + week - runs[runs.len() - 1];
                for w in runs.windows(2) {
                    gap = gap.max(w[1] - w[0]);
                }
                gap
            }
        }
    }

    /// Whether a run starting at this local weekday (0 = Monday) and minute of day belongs to
    /// the schedule (within `slack` minutes after a scheduled time).
    pub fn matches(&self, weekday: u32, minute_of_day: u32, slack: u32) -> bool {
        if self.days & (1 << weekday) == 0 {
            return false;
        }
        self.hours.iter().any(|h| {
            self.minutes.iter().any(|m| {
                let at = h * 60 + m;
                minute_of_day >= at && minute_of_day <= at + slack
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        let i = |s: &str| Schedule::parse(s).map(|x| x.max_interval());
        assert_eq!(i("21:00"), Some(86400));
        assert_eq!(i("daily"), Some(86400));
        assert_eq!(i("sat 01:00"), Some(7 * 86400));
        assert_eq!(i("mon..fri 02:30"), Some(3 * 86400));
        assert_eq!(i("mon,wed,fri 21:00"), Some(3 * 86400));
        assert_eq!(i("*/6:00"), Some(6 * 3600));
        assert_eq!(i("02,14:30"), Some(12 * 3600));
        assert_eq!(i("hourly"), Some(3600));
        assert_eq!(i("first day of month"), None);
        assert_eq!(i("25:00"), None);
    }

    #[test]
    fn matching() {
        let s = Schedule::parse("mon..fri 02:30").expect("parse");
        assert!(s.matches(0, 150, 10));
        assert!(s.matches(4, 155, 10));
        assert!(!s.matches(5, 150, 10));
        assert!(!s.matches(0, 170, 10));
    }
}
