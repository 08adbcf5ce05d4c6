//! Runs the Proxmox commands on this machine (cron on the node itself). Each command runs in
//! its own process group, so a Ctrl-C at the terminal reaches the tool (which lets the
//! running step finish) and not the Proxmox command.

use std::io::{Read, Write};
use std::process::Command;

use super::{
    CommandOutput, MAX_OUTPUT, MAX_STDERR, MAX_STDIN_REPLY, RemoteCommand, Streamed, Timeouts,
    Transport,
};
use crate::error::{Error, Result};
use crate::process::{self, Finished};

/// Runs on this machine; each command bounded by [`Timeouts`].
#[derive(Debug, Default)]
pub struct Local {
    pub timeouts: Timeouts,
}

fn command(cmd: &RemoteCommand) -> Result<(Command, String)> {
    let (prog, args) = cmd
        .argv
        .split_first()
        .ok_or_else(|| Error::Other("empty command".into()))?;
    let mut c = Command::new(prog);
    c.args(args);
    Ok((c, prog.clone()))
}

fn cannot_run(prog: &str, e: std::io::Error) -> Error {
    Error::io(
        format!(
            "cannot run `{prog}` (is this a Proxmox VE node? use --host to reach one over SSH)"
        ),
        e,
    )
}

impl Transport for Local {
    fn host(&self) -> &str {
        "local"
    }

    fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    fn exec_quiet(&self, cmd: &RemoteCommand) -> Result<CommandOutput> {
        let (c, prog) = command(cmd)?;
        let limit = self.timeouts.of(cmd);
        match process::run(c, limit, MAX_OUTPUT).map_err(|e| cannot_run(&prog, e))? {
            Finished::Exited(o) => Ok(CommandOutput {
                status: o.status,
                stdout: o.stdout,
                stderr: o.stderr,
            }),
            Finished::TimedOut => Err(Error::Other(format!(
                "`{}` did not finish within {} and was stopped (--command-timeout)",
                cmd.line(),
                crate::time::format_duration(limit.as_secs())
            ))),
        }
    }

    fn exec_stream(&self, cmd: &RemoteCommand, sink: &mut dyn Write) -> Result<Streamed> {
        super::trace(self.host(), &format!("stream: {}", cmd.line()));
        let (c, prog) = command(cmd)?;
        let (o, bytes) =
            process::run_streaming(c, None, sink, MAX_STDERR).map_err(|e| cannot_run(&prog, e))?;
        Ok(Streamed {
            status: o.status,
            stderr: o.stderr,
            bytes,
        })
    }

    fn exec_with_stdin(&self, cmd: &RemoteCommand, input: &mut dyn Read) -> Result<CommandOutput> {
        super::trace(self.host(), &format!("with stdin: {}", cmd.line()));
        let (c, prog) = command(cmd)?;
        let mut stdout = Vec::new();
        let mut bounded = BoundedVec(&mut stdout, MAX_STDIN_REPLY);
        let (o, _) = process::run_streaming(c, Some(input), &mut bounded, MAX_STDERR)
            .map_err(|e| cannot_run(&prog, e))?;
        Ok(CommandOutput {
            status: o.status,
            stdout,
            stderr: o.stderr,
        })
    }
}

/// Keeps at most `.1` bytes, dropping the rest.
struct BoundedVec<'a>(&'a mut Vec<u8>, usize);

impl Write for BoundedVec<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = self.1.saturating_sub(self.0.len());
        self.0.extend_from_slice(&buf[..buf.len().min(room)]);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
