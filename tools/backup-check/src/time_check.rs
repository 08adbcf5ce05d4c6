//! Whether a backup's time can be right: the `time` check, and what freshness and the RPO
//! leave out.

use pvedr::time::format_duration;

/// Clock skew between the node and this host tolerated before a backup is "in the future".
pub const MAX_SKEW: i64 = 300;

/// Why a backup's time cannot be right at `now`: before 1970, so far off that `now - ctime`
/// overflows, or in the future beyond [`MAX_SKEW`]. `None` for a plausible time.
pub fn time_problem(now: i64, ctime: i64) -> Option<String> {
    match now.checked_sub(ctime) {
        None => Some(format!("has an impossible time (ctime {ctime})")),
        Some(_) if ctime < 0 => Some(format!("has an impossible time (ctime {ctime})")),
        Some(age) if age < -MAX_SKEW => {
            let when = pvedr::records::rfc3339(ctime);
            Some(format!(
                "is dated in the future: {} ({} ahead, more than {} of clock skew)",
                if when.is_empty() {
                    ctime.to_string()
                } else {
                    when
                },
                format_duration(age.unsigned_abs()),
                format_duration(MAX_SKEW as u64)
            ))
        }
        Some(_) => None,
    }
}
