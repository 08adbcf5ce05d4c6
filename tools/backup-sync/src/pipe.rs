//! Reading the next part while the last one is sent: whole parts go through a channel of
//! one to an uploader thread that owns the multipart upload. In memory per job: the part
//! being filled, one queued, the one being sent (and its copy kept for a retry).

use std::io::Write;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use pvedr::error::{Error, Result};
use pvedr::s3::MultipartUpload;

pub enum Msg {
    Part(Vec<u8>),
    /// Everything was read: complete the object. A channel closed without it aborts.
    Finish,
}

pub struct PartPipe {
    tx: SyncSender<Msg>,
    buf: Vec<u8>,
    part: usize,
}

impl PartPipe {
    pub fn new(part: usize) -> (PartPipe, Receiver<Msg>) {
        let (tx, rx) = sync_channel(1);
        let pipe = PartPipe {
            tx,
            buf: Vec::with_capacity(part),
            part,
        };
        (pipe, rx)
    }

    fn send(&mut self, m: Msg) -> std::io::Result<()> {
        self.tx
            .send(m)
            .map_err(|_| std::io::Error::other("the upload stopped"))
    }

    /// Sends the rest and asks for completion.
    pub fn finish(mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let last = std::mem::take(&mut self.buf);
            self.send(Msg::Part(last))?;
        }
        self.send(Msg::Finish)
    }
}

impl Write for PartPipe {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(self.part - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == self.part {
            let full = std::mem::replace(&mut self.buf, Vec::with_capacity(self.part));
            self.send(Msg::Part(full))?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The uploader's side: parts in, the object completed on `Finish` (`Some`). The reader
/// gone without it: `None`, and the upload, dropped, is aborted (as on an S3 error).
pub fn upload(mut up: MultipartUpload<'_>, rx: Receiver<Msg>) -> Result<Option<(String, u64)>> {
    for m in rx {
        match m {
            Msg::Part(p) => up
                .write_all(&p)
                .map_err(|e| Error::Other(format!("uploading: {e}")))?,
            Msg::Finish => return up.finish().map(Some),
        }
    }
    Ok(None)
}
