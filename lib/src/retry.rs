//! One retry rule for everything that may fail for a moment: connecting, read-only commands,
//! probes, S3 parts. A fixed number of tries, a delay that grows by a factor up to a cap;
//! what is retried and why is said on stderr. Waiting for a condition (a lock to go, a guest
//! to run) is [`poll_until`]: bounded by a deadline the caller chose.

use std::fmt::Display;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::msg;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Attempts in all (1: no retry).
    pub tries: u32,
    pub delay: Duration,
    pub factor: u32,
    pub max_delay: Duration,
}

impl Default for Retry {
    /// Three tries, 1 s then 2 s.
    fn default() -> Self {
        Retry::new(3, Duration::from_secs(1))
    }
}

impl Retry {
    pub fn new(tries: u32, delay: Duration) -> Self {
        Retry {
            tries: tries.max(1),
            delay,
            factor: 2,
            max_delay: Duration::from_secs(60),
        }
    }

    /// One attempt only (for commands that change something).
    pub fn once() -> Self {
        Retry::new(1, Duration::ZERO)
    }

    /// The delay before attempt `n + 1` (after `n` failed).
    pub fn delay_after(&self, n: u32) -> Duration {
        let mut d = self.delay;
        for _ in 1..n {
            d = d.saturating_mul(self.factor).min(self.max_delay);
        }
        d.min(self.max_delay)
    }

    /// Runs `f(attempt)` until it succeeds, fails for good (`retry_if` false) or the tries
    /// are used up; the last error is returned.
    pub fn run_when<T, E: Display>(
        &self,
        what: &str,
        mut f: impl FnMut(u32) -> std::result::Result<T, E>,
        retry_if: impl Fn(&E) -> bool,
    ) -> std::result::Result<T, E> {
        let mut attempt = 1;
        loop {
            match f(attempt) {
                Ok(v) => return Ok(v),
                Err(e) if attempt >= self.tries || !retry_if(&e) => return Err(e),
                Err(e) => {
                    let d = self.delay_after(attempt);
                    msg::warn(format!(
                        "{what}: {e}; retrying in {:.1}s (attempt {} of {})",
                        d.as_secs_f32(),
                        attempt + 1,
                        self.tries
                    ));
                    std::thread::sleep(d);
                    attempt += 1;
                }
            }
        }
    }

    /// [`Retry::run_when`] for pvedr errors that may pass ([`Error::is_transient`]).
    pub fn run<T>(&self, what: &str, f: impl FnMut(u32) -> Result<T>) -> Result<T> {
        self.run_when(what, f, Error::is_transient)
    }
}

/// Calls `f` every `interval` until it returns `Some` or `deadline` passes (`None`). An
/// interrupt (Ctrl-C) ends the wait too.
pub fn poll_until<T>(
    deadline: Instant,
    interval: Duration,
    mut f: impl FnMut() -> Result<Option<T>>,
) -> Result<Option<T>> {
    loop {
        if let Some(v) = f()? {
            return Ok(Some(v));
        }
        let now = Instant::now();
        if now >= deadline || crate::interrupt::requested() {
            return Ok(None);
        }
        std::thread::sleep(interval.min(deadline - now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap() {
        let r = Retry {
            tries: 10,
            delay: Duration::from_secs(1),
            factor: 2,
            max_delay: Duration::from_secs(5),
        };
        let d: Vec<u64> = (1..6).map(|n| r.delay_after(n).as_secs()).collect();
        assert_eq!(d, [1, 2, 4, 5, 5]);
    }

    #[test]
    fn stops_at_the_tries_and_on_fatal_errors() {
        let r = Retry::new(3, Duration::ZERO);
        // How often a function that always fails is called, its error transient or not.
        let calls = |transient: bool| {
            let mut n = 0;
            let e: std::result::Result<(), String> = r.run_when(
                "x",
                |_| {
                    n += 1;
                    Err("down".to_string())
                },
                |_| transient,
            );
            assert!(e.is_err());
            n
        };
        assert_eq!(calls(true), 3);
        assert_eq!(calls(false), 1);
        let ok = r.run_when(
            "x",
            |a| {
                if a < 2 {
                    Err("once".to_string())
                } else {
                    Ok(a)
                }
            },
            |_| true,
        );
        assert_eq!(ok, Ok(2));
    }

    #[test]
    fn poll_ends_at_the_deadline() {
        let t0 = Instant::now();
        let r: Option<()> = poll_until(
            t0 + Duration::from_millis(50),
            Duration::from_millis(10),
            || Ok(None),
        )
        .expect("poll");
        assert!(r.is_none());
        assert!(t0.elapsed() >= Duration::from_millis(50));
    }
}
