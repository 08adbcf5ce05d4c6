//! Size anomalies: the newest backup against the median of the guest's previous ones, in
//! both directions ("the backup tripled", "suspiciously small"). Reported under the `size`
//! check, beside `--shrink-warn` (the previous backup alone): one size finding per guest.

use pvedr::cli::values;
use pvedr::output::human_bytes;
use pvedr::records::Check;
use serde_json::json;

use crate::status::{Status, check};
use crate::summary::{GuestBackups, Lite};

/// Fewer previous backups than this give no verdict: a median of one or two is noise.
pub const MIN_HISTORY: usize = 3;
/// The longest `--size-window`: each series of a guest keeps that many sizes.
const MAX_WINDOW: usize = 1000;

/// `--size-window`, `--size-grow`, `--size-shrink`; a window of 0 turns the rule off.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub window: usize,
    pub grow: f64,
    pub shrink: f64,
}

/// `--size-window`: 0 (off) or a bounded history (the history is sorted).
pub fn window(s: &str) -> std::result::Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n == 0 || (MIN_HISTORY..=MAX_WINDOW).contains(&n) => Ok(n),
        _ => Err(format!(
            "'{}' is not 0 (off) or {MIN_HISTORY} to {MAX_WINDOW}",
            s.escape_debug()
        )),
    }
}

/// `--size-grow`: a factor above 1.
pub fn grow(s: &str) -> std::result::Result<f64, String> {
    match values::factor(s)? {
        f if f > 1.0 => Ok(f),
        _ => Err("must be above 1 (3: three times)".into()),
    }
}

/// `--size-shrink`: a factor below 1.
pub fn shrink(s: &str) -> std::result::Result<f64, String> {
    match values::factor(s)? {
        f if f < 1.0 => Ok(f),
        _ => Err("must be below 1 (1/3 or 0.33: a third)".into()),
    }
}

/// The figures of an anomaly: the newest size, the median it is judged against.
struct Figures {
    size: u64,
    median: u64,
    backups: usize,
    pbs: bool,
}

/// The previous backups' median, like with like: same storage and same format (a change
/// of compression or of storage starts a new series), older than `newest`, the newest
/// `window` of them. PBS sizes are logical (the sum of the manifest's archive sizes: the
/// data backed up, not the chunks stored), so PBS snapshots are compared with PBS
/// snapshots only. The fold kept each series' newest sizes, newest first.
fn figures(l: &Limits, newest: &Lite, backups: &GuestBackups) -> Option<Figures> {
    let size = newest.size?;
    let prev: Vec<(i64, u64)> = backups
        .series
        .get(newest.storage.as_deref(), &newest.format)?
        .iter()
        .filter(|p| p.0 < newest.ctime)
        .take(l.window)
        .copied()
        .collect();
    if l.window == 0 || prev.len() < MIN_HISTORY {
        return None;
    }
    let mut sizes: Vec<u64> = prev.iter().map(|p| p.1).collect();
    sizes.sort_unstable();
    let mid = sizes.len() / 2;
    let median = if sizes.len() % 2 == 1 {
        sizes[mid]
    } else {
        ((u128::from(sizes[mid - 1]) + u128::from(sizes[mid])) / 2) as u64
    };
    (median > 0).then_some(Figures {
        size,
        median,
        backups: sizes.len(),
        pbs: newest.format.starts_with("pbs-"),
    })
}

/// `tripled`, … as people say it; past five times, the factor.
fn grew(ratio: f64) -> String {
    match ratio {
        r if r >= 5.0 => format!("grew {r:.1}-fold"),
        r if r >= 4.0 => "quadrupled".into(),
        r if r >= 3.0 => "tripled".into(),
        r if r >= 2.0 => "doubled".into(),
        r => format!("grew {r:.1}-fold"),
    }
}

/// A WARNING when the newest backup is at least `grow` times the median of the previous
/// ones, or at most `shrink` times it; `None` without a verdict (too few, no size, off).
pub fn judge(l: &Limits, component: &str, newest: &Lite, backups: &GuestBackups) -> Option<Check> {
    let f = figures(l, newest, backups)?;
    let ratio = f.size as f64 / f.median as f64;
    let (what, limit) = if ratio >= l.grow {
        (format!("the backup {}", grew(ratio)), l.grow)
    } else if ratio <= l.shrink {
        ("suspiciously small".to_string(), l.shrink)
    } else {
        return None;
    };
    let logical = if f.pbs { " (PBS logical sizes)" } else { "" };
    let msg = format!(
        "{what}: {} against a median of {} over {} backups{logical} ({:.2}x; {})",
        human_bytes(f.size),
        human_bytes(f.median),
        f.backups,
        ratio,
        newest.volid
    );
    let threshold = (f.median as f64 * limit).round() as u64;
    let mut c = check(
        component,
        "size",
        Status::Warning,
        msg,
        Some(json!(f.size)),
        Some(json!(threshold)),
    );
    c.extra.insert("median".into(), json!(f.median));
    c.extra.insert("backups".into(), json!(f.backups));
    c.extra
        .insert("ratio".into(), json!((ratio * 100.0).round() / 100.0));
    Some(c)
}
