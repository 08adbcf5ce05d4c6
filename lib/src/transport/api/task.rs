//! A worker task followed to its end: its status polled on its node until `stopped`, then
//! its log read (pve-manager `PVE/API2/Tasks.pm` `read_task_status`, `read_task_log`).
//! `exitstatus` is `OK`, `WARNINGS: N`, or the error the worker died with (pve-common
//! `RESTEnvironment.pm` `fork_worker`).

use std::time::{Duration, Instant};

use serde_json::Value;

use super::Api;
use crate::error::{Error, Result};
use crate::transport::{CommandOutput, MAX_OUTPUT};
use crate::validate;

/// Log lines asked for at a time.
const PAGE: usize = 1000;
/// Lines read at most: a log that never ends (or pages of empty lines) cannot hold the run.
const MAX_LINES: usize = 1_000_000;

pub fn wait(api: &Api, upid: &str, limit: Duration) -> Result<CommandOutput> {
    let node = upid
        .split(':')
        .nth(1)
        .filter(|n| validate::node(n).is_ok())
        .ok_or_else(|| Error::Other(format!("not a task id: '{}'", upid.escape_debug())))?;
    let base = format!("/nodes/{node}/tasks/{}", super::call::seg(upid));
    let exit = poll(api, &base, upid, limit)?;
    let log = read_log(api, &base)?;
    let ok = exit == "OK" || exit.starts_with("WARNINGS");
    Ok(CommandOutput {
        status: if ok { 0 } else { 255 },
        stdout: log.into_bytes(),
        stderr: if ok { String::new() } else { exit },
    })
}

/// The task's `exitstatus` once it has stopped.
fn poll(api: &Api, base: &str, upid: &str, limit: Duration) -> Result<String> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(100);
    loop {
        let st = api.get_data(&format!("{base}/status"), &[])?;
        if st.get("status").and_then(Value::as_str) == Some("stopped") {
            return Ok(st
                .get("exitstatus")
                .and_then(Value::as_str)
                .unwrap_or("unknown exit status")
                .to_string());
        }
        if start.elapsed() >= limit {
            return Err(Error::Other(format!(
                "task {upid} is still running after {}s; it goes on on the node (see its task log there)",
                limit.as_secs()
            )));
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

/// The log's lines, page by page, bounded by [`MAX_OUTPUT`].
fn read_log(api: &Api, base: &str) -> Result<String> {
    let mut text = String::new();
    let mut start = 0usize;
    loop {
        let params = [
            ("start".to_string(), start.to_string()),
            ("limit".to_string(), PAGE.to_string()),
        ];
        let page = api.get_data(&format!("{base}/log"), &params)?;
        let lines = page.as_array().map(Vec::as_slice).unwrap_or_default();
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
            return Ok(text);
        }
        start += lines.len();
    }
}
