//! A worker task followed to its end: its status polled on its node until `stopped`, then
//! its log read (pve-manager `PVE/API2/Tasks.pm` `read_task_status`, `read_task_log`).
//! `exitstatus` is `OK`, `WARNINGS: N`, or the error the worker died with (pve-common
//! `RESTEnvironment.pm` `fork_worker`).
//!
//! The wait is bounded by the command's bound (24h for a change, as over SSH; each status
//! request by `--command-timeout`) and ends on Ctrl-C. Either way the task goes on on its
//! node, and the error names its UPID and the `pvesh delete /nodes/N/tasks/UPID` that stops
//! it (pve-manager `PVE/API2/Tasks.pm` `stop_task`).

use std::time::{Duration, Instant};

use serde_json::Value;

use super::Api;
use crate::error::{Error, Left, Result};
use crate::transport::{CommandOutput, MAX_OUTPUT};
use crate::validate;

/// A UPID's length at most (pve-common `PVE/Tools.pm` `upid_encode` makes about 80 bytes).
const MAX_UPID: usize = 512;
/// Log lines asked for at a time.
const PAGE: usize = 1000;
/// Lines read at most: a log that never ends (or pages of empty lines) cannot hold the run.
const MAX_LINES: usize = 1_000_000;

pub fn wait(api: &Api, upid: &str, limit: Duration) -> Result<CommandOutput> {
    let node = upid
        .split(':')
        .nth(1)
        .filter(|n| validate::node(n).is_ok())
        .filter(|_| upid.len() <= MAX_UPID && upid.bytes().all(|c| c.is_ascii_graphic()))
        .ok_or_else(|| Error::Other(format!("not a task id: '{}'", upid.escape_debug())))?;
    let base = format!("/nodes/{node}/tasks/{}", super::call::seg(upid));
    let exit = poll(api, &base, limit).map_err(|why| left(api, node, upid, why))?;
    let log = read_log(api, &base)?;
    let ok = !crate::status::TaskExit::parse(&exit).is_error();
    let mut stderr = if ok { String::new() } else { exit };
    // An empty stdout would read as a task that said nothing: say the log is unknown.
    let stdout = match log {
        Log::Text(t) => t,
        Log::Unreadable(why) => {
            let note = format!("the log of task {upid} cannot be read: {why}");
            stderr = if stderr.is_empty() {
                note
            } else {
                format!("{stderr}; {note}")
            };
            String::new()
        }
    };
    // What a task prints may carry a secret from its parameters or a hostile server.
    Ok(CommandOutput {
        status: if ok { 0 } else { 255 },
        stdout: crate::redact::text(&stdout).into_bytes(),
        stderr: crate::redact::text(&stderr),
    })
}

/// A task's log, or why Proxmox could not read it.
enum Log {
    Text(String),
    Unreadable(String),
}

/// Why a wait ended before the task did.
enum Ended {
    Left(Left),
    Failed(Error),
}

/// The error for a task left running on `node`.
fn left(api: &Api, node: &str, upid: &str, why: Ended) -> Error {
    let why = match why {
        Ended::Left(w) => w,
        Ended::Failed(e) => return e,
    };
    let path = format!("/nodes/{node}/tasks/{upid}");
    Error::TaskLeft {
        host: api.shared.host.clone(),
        node: node.to_string(),
        upid: upid.to_string(),
        why,
        stop: crate::shell::join(&["pvesh", "delete", &path]),
    }
}

/// The task's `exitstatus` once it has stopped.
fn poll(api: &Api, base: &str, limit: Duration) -> std::result::Result<String, Ended> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(100);
    loop {
        if crate::interrupt::requested() {
            return Err(Ended::Left(Left::Interrupted));
        }
        let st = api
            .get_data(&format!("{base}/status"), &[])
            .map_err(Ended::Failed)?;
        if st.get("status").and_then(Value::as_str) == Some("stopped") {
            return Ok(st
                .get("exitstatus")
                .and_then(Value::as_str)
                .unwrap_or("unknown exit status")
                .to_string());
        }
        if start.elapsed() >= limit {
            return Err(Ended::Left(Left::TimedOut(limit.as_secs())));
        }
        crate::interrupt::sleep(delay);
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

/// The log's lines, page by page, bounded by [`MAX_OUTPUT`].
fn read_log(api: &Api, base: &str) -> Result<Log> {
    let mut text = String::new();
    let mut start = 0usize;
    loop {
        let params = [
            ("start".to_string(), start.to_string()),
            ("limit".to_string(), PAGE.to_string()),
        ];
        let page = api.get_data(&format!("{base}/log"), &params)?;
        let lines = page.as_array().map(Vec::as_slice).unwrap_or_default();
        if start == 0 {
            let maps: Vec<_> = lines
                .iter()
                .filter_map(|l| l.as_object().cloned())
                .collect();
            if let Some(why) = crate::pvesh::unreadable_log(&maps) {
                return Ok(Log::Unreadable(why));
            }
        }
        for l in lines {
            if let Some(t) = l.get("t").and_then(Value::as_str) {
                // The log's own end marker, not output.
                if t == "no content" {
                    continue;
                }
                text.push_str(t);
                text.push('\n');
            }
        }
        if lines.len() < PAGE || text.len() > MAX_OUTPUT || start + lines.len() >= MAX_LINES {
            return Ok(Log::Text(text));
        }
        start += lines.len();
    }
}
