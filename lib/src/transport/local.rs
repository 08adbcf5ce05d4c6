//! Runs the Proxmox commands on this machine (cron on the node itself).

use std::process::{Command, Stdio};

use super::{CommandOutput, RemoteCommand, Transport};
use crate::error::{Error, Result};

#[derive(Debug, Default)]
pub struct Local;

impl Transport for Local {
    fn host(&self) -> &str {
        "local"
    }

    fn exec_quiet(&self, cmd: &RemoteCommand) -> Result<CommandOutput> {
        let (prog, args) = cmd
            .argv
            .split_first()
            .ok_or_else(|| Error::Other("empty command".into()))?;
        let out = Command::new(prog)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::io(format!("cannot run `{prog}` (is this a Proxmox VE node? use --host to reach one over SSH)"), e))?;
        Ok(CommandOutput {
            // Killed by a signal: report like a shell would.
            status: out.status.code().unwrap_or(128 + 9),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}
