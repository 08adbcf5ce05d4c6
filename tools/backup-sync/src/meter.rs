//! The writer every archive byte goes through on its way: it hashes (sha256), counts,
//! throttles (`--bwlimit`, shared by all jobs), reports progress on stderr, and stops the
//! copy at once when SIGINT/SIGTERM arrives (the upload behind it is then aborted).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use pvedr::integrity::hex;
use pvedr::output::human_bytes;
use pvedr::records::Step;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// One rate for all jobs: bytes may not run ahead of `rate` × time since the start.
#[derive(Debug)]
pub struct Throttle {
    rate: u64,
    state: Mutex<(Instant, u64)>,
}

impl Throttle {
    pub fn new(rate: u64) -> Arc<Throttle> {
        Arc::new(Throttle {
            rate: rate.max(1),
            state: Mutex::new((Instant::now(), 0)),
        })
    }

    /// Accounts `n` bytes and sleeps until they are within the rate.
    fn take(&self, n: usize) {
        let wait = {
            let Ok(mut s) = self.state.lock() else { return };
            s.1 = s.1.saturating_add(n as u64);
            let due = Duration::from_secs_f64(s.1 as f64 / self.rate as f64);
            due.saturating_sub(s.0.elapsed())
        };
        pvedr::interrupt::sleep(wait);
    }
}

/// Progress lines at most this often per archive.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

pub struct Meter<W: Write> {
    inner: W,
    hasher: Sha256,
    pub bytes: u64,
    name: String,
    total: Option<u64>,
    started: Instant,
    last_report: Instant,
    throttle: Option<Arc<Throttle>>,
}

impl<W: Write> Meter<W> {
    pub fn new(inner: W, name: &str, total: Option<u64>, throttle: Option<Arc<Throttle>>) -> Self {
        let now = Instant::now();
        Meter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
            name: name.into(),
            total,
            started: now,
            last_report: now,
            throttle,
        }
    }

    /// The writer behind, and the hex sha256 of what went through.
    pub fn into_parts(self) -> (W, String) {
        (self.inner, hex(&self.hasher.finalize()))
    }

    fn report(&mut self) {
        if self.last_report.elapsed() < PROGRESS_EVERY {
            return;
        }
        self.last_report = Instant::now();
        let of = match self.total {
            Some(t) if t > 0 => format!(
                " of {} ({}%)",
                human_bytes(t),
                self.bytes.saturating_mul(100) / t
            ),
            _ => String::new(),
        };
        pvedr::msg::say(format!(
            "{}: {}{of} at {}/s",
            self.name,
            human_bytes(self.bytes),
            human_bytes(rate(self.bytes, self.started.elapsed()))
        ));
    }
}

impl<W: Write> Write for Meter<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if pvedr::interrupt::requested() {
            // Not ErrorKind::Interrupted: write_all would retry that.
            return Err(std::io::Error::other("interrupted (SIGINT/SIGTERM)"));
        }
        let n = self.inner.write(data)?;
        self.hasher.update(&data[..n]);
        self.bytes = self.bytes.saturating_add(n as u64);
        if let Some(t) = &self.throttle {
            t.take(n);
        }
        self.report();
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A copy's figures on its step record: bytes, rate (bytes/s), url, sha256.
pub fn add(st: &mut Step, bytes: u64, started: Instant, url: &str, sha: &str) {
    st.extra.insert("bytes".into(), json!(bytes));
    st.extra
        .insert("rate".into(), json!(rate(bytes, started.elapsed())));
    st.extra.insert("url".into(), Value::String(url.into()));
    st.extra.insert("sha256".into(), Value::String(sha.into()));
}

/// Bytes per second over `d` (whole bytes; 0 for no time).
pub fn rate(bytes: u64, d: Duration) -> u64 {
    let s = d.as_secs_f64();
    if s <= 0.0 {
        0
    } else {
        (bytes as f64 / s) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_what_went_through() {
        let mut m = Meter::new(Vec::new(), "x", None, None);
        m.write_all(b"abc").expect("write");
        let (v, h) = m.into_parts();
        assert_eq!(v, b"abc");
        assert_eq!(
            h,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
