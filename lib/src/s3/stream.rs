//! An object read as ranged GETs, several in flight, handed over in order as a `Read`: a
//! restore streamed from S3 goes at the speed of several connections, in bounded memory
//! (at most [`IN_FLIGHT`] parts being fetched and [`QUEUED`] waiting, of [`PART`] bytes).
//!
//! The parts are fetched on a thread of their own (the bucket's runtime moves there), so
//! the next parts arrive while the caller writes the current one to the node.

use std::collections::VecDeque;
use std::io::Read;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use aws_sdk_s3::Client;

use super::{Bucket, Timeouts};
use crate::pipeline::{PipeError, source_error};

/// Bytes of one ranged GET. Large: a server may pay per request in proportion to the
/// object, not the range (moto reads the whole object for each; 8 MiB parts of a 433 MiB
/// archive cost it 16 s of CPU, 32 MiB parts 4.7 s: docs/benchmarks.md), and fewer
/// requests cost less on any S3.
pub const PART: u64 = 32 * 1024 * 1024;
/// Ranged GETs at once: two of 32 MiB read as fast as three (measured), in less memory.
pub const IN_FLIGHT: usize = 2;
/// Parts fetched and waiting for the reader (at most `IN_FLIGHT + QUEUED + 2` parts in
/// memory: 160 MiB).
pub const QUEUED: usize = 1;

type Part = std::result::Result<Vec<u8>, PipeError>;

/// The object's bytes in order; a failure is an I/O error carrying a [`PipeError`].
pub struct Ranged {
    rx: Receiver<Part>,
    cur: Vec<u8>,
    pos: usize,
    failed: bool,
}

impl Bucket {
    /// Reads `size` bytes of `key` as ranged GETs of `part` bytes, `in_flight` at once
    /// (each at least 1). The bucket goes with the reader: one runtime per client.
    pub fn ranged(self, key: &str, size: u64, part: u64, in_flight: usize) -> Ranged {
        let (tx, rx) = sync_channel(QUEUED);
        let key = key.to_string();
        std::thread::spawn(move || {
            let Bucket {
                client,
                rt,
                endpoint,
                name,
            } = self;
            let job = Job {
                client,
                bucket: name,
                key,
                size,
                part: part.max(1),
                t: endpoint.timeouts,
                named: endpoint.named(),
            };
            rt.block_on(job.run(in_flight.max(1), tx));
        });
        Ranged {
            rx,
            cur: Vec::new(),
            pos: 0,
            failed: false,
        }
    }
}

impl Read for Ranged {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.failed {
            return Ok(0);
        }
        if self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(Ok(v)) => {
                    self.cur = v;
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.failed = true;
                    return Err(source_error(e));
                }
                // Every part sent: the end of the object.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[derive(Clone)]
struct Job {
    client: Client,
    bucket: String,
    key: String,
    size: u64,
    part: u64,
    t: Timeouts,
    named: String,
}

impl Job {
    async fn run(self, in_flight: usize, tx: SyncSender<Part>) {
        let mut q = VecDeque::new();
        let mut next = 0u64;
        loop {
            while q.len() < in_flight && next < self.size {
                let end = (next + self.part).min(self.size);
                q.push_back(tokio::spawn(self.clone().get(next, end)));
                next = end;
            }
            let Some(h) = q.pop_front() else { return };
            let part = match h.await {
                Ok(p) => p,
                Err(e) => Err(PipeError::Source {
                    at: next,
                    message: e.to_string(),
                }),
            };
            let stop = part.is_err();
            if !send(&tx, part).await || stop {
                // The reader is gone or the stream failed: the parts in flight are
                // dropped with the runtime.
                return;
            }
        }
    }

    /// Bytes `start..end` of the object, or why not.
    async fn get(self, start: u64, end: u64) -> Part {
        let what = || {
            format!(
                "reading s3://{}/{} bytes {start}-{} at {}",
                self.bucket,
                self.key,
                end - 1,
                self.named
            )
        };
        let source = |message: String| PipeError::Source { at: start, message };
        let mut r = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .range(format!("bytes={start}-{}", end - 1))
            .send()
            .await
        {
            Ok(r) => r,
            // Asked past the end: the object is shorter than its manifest says.
            Err(e) if super::status(&e) == Some(416) => {
                return Err(PipeError::Truncated {
                    expected: self.size,
                    got: start,
                });
            }
            Err(e) => return Err(source(super::explain(&what(), e).to_string())),
        };
        let want = usize::try_from(end - start).unwrap_or(usize::MAX);
        let mut buf = Vec::with_capacity(want);
        let deadline = tokio::time::Instant::now()
            + self.t.operation
            + Timeouts::body(end - start)
            + Duration::from_secs(1);
        loop {
            let chunk = tokio::time::timeout_at(
                deadline.min(tokio::time::Instant::now() + self.t.read),
                r.body.try_next(),
            )
            .await;
            let chunk = match chunk {
                Err(_) => return Err(source(format!("{}: no data in time", what()))),
                Ok(Err(e)) => return Err(source(format!("{}: {e}", what()))),
                Ok(Ok(c)) => c,
            };
            let Some(chunk) = chunk else { break };
            if buf.len() + chunk.len() > want {
                return Err(source(format!("{}: more bytes than asked for", what())));
            }
            buf.extend_from_slice(&chunk);
        }
        if buf.len() < want {
            return Err(PipeError::Truncated {
                expected: self.size,
                got: start + buf.len() as u64,
            });
        }
        Ok(buf)
    }
}

/// Hands a part to the reader, waiting while it is behind (the parts in flight go on
/// meanwhile); false when the reader is gone.
async fn send(tx: &SyncSender<Part>, mut part: Part) -> bool {
    loop {
        match tx.try_send(part) {
            Ok(()) => return true,
            Err(TrySendError::Disconnected(_)) => return false,
            Err(TrySendError::Full(p)) => {
                part = p;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    }
}
