//! The whole run's bound. A monitoring plugin must answer before Nagios kills it (60 s by
//! default), whatever a hung storage (NFS) does. With a deadline set, every command's bound is
//! cut to what is left of it (`transport::Timeouts::of`, the batch's per-command
//! `timeout` on the node), so a hung read ends in time and is reported by name; a watchdog
//! ([`watch`]) ends the run at the deadline itself if anything else still waits, saying what.

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

static END: OnceLock<Instant> = OnceLock::new();
static DOING: Mutex<String> = Mutex::new(String::new());

/// Time kept back from a command's bound for its answer to travel and be checked.
pub const MARGIN: Duration = Duration::from_secs(3);

/// Sets the deadline `d` from now (the first call wins).
pub fn set(d: Duration) {
    let _ = END.set(Instant::now() + d);
}

/// What is left before the deadline; `None` without one.
pub fn left() -> Option<Duration> {
    END.get()
        .map(|e| e.saturating_duration_since(Instant::now()))
}

/// `d`, or what is left before the deadline when that is shorter (at least a second: a
/// command is given a chance to answer).
pub fn cut(d: Duration) -> Duration {
    left().map_or(d, |l| d.min(l.max(Duration::from_secs(1))))
}

/// Says what the run waits for now (named if the deadline passes meanwhile).
pub fn doing(what: impl Into<String>) {
    if END.get().is_none() {
        return;
    }
    let mut d = match DOING.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    *d = what.into();
}

/// What the run waited for last ([`doing`]).
pub fn what() -> String {
    match DOING.lock() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    }
}

/// At the deadline, calls `expire` with what the run waits for, on a watchdog thread;
/// `expire` ends the process (the run is not waited for). Nothing without a deadline.
pub fn watch(expire: impl FnOnce(&str) + Send + 'static) {
    let Some(end) = END.get().copied() else {
        return;
    };
    let _ = std::thread::Builder::new()
        .name("deadline".into())
        .spawn(move || {
            std::thread::sleep(end.saturating_duration_since(Instant::now()));
            expire(&what());
        });
}
