//! Running Proxmox commands: on this machine ([`Local`]) or on a node over SSH ([`Ssh`]).
//!
//! Commands are argument vectors, quoted for the shell in one place ([`crate::shell`]).
//! Several read-only commands can run as one batch: one round trip, the commands in parallel
//! on the node (each `pvesh` costs Proxmox about half a second to start). Archives stream:
//! [`Transport::exec_stream`] copies a command's output into a writer as it comes, and
//! [`Transport::exec_with_stdin`] feeds a reader to a command, both in bounded memory.

pub mod api;
mod batch;
mod hop;
mod local;
mod ssh;
pub mod ssh_config;

pub use api::{Api, ApiOptions};
pub use hop::Hop;
pub use local::Local;
pub use ssh::{Ssh, SshOptions};

use std::io::{Read, Write};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::shell;

/// Output kept of a command run whole (a `pvesh` listing of a large cluster fits easily).
pub const MAX_OUTPUT: usize = 256 * 1024 * 1024;
/// Standard error kept of any command (the end of it is what explains a failure).
pub const MAX_STDERR: usize = 1024 * 1024;
/// Standard output kept of a command fed through [`Transport::exec_with_stdin`].
pub const MAX_STDIN_REPLY: usize = 16 * 1024 * 1024;

/// How long a command may go without an answer before pvedr gives up on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// A read-only command (a listing, a config): a hung storage must not hold cron forever.
    pub read: Duration,
    /// A command that changes the node (restore, vzdump, delete): it may take hours.
    pub write: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            read: Duration::from_secs(5 * 60),
            write: Duration::from_secs(24 * 3600),
        }
    }
}

impl Timeouts {
    /// A command's bound: its own, else the transport's, cut to what is left of the run's
    /// deadline ([`crate::deadline`]) when there is one.
    pub fn of(&self, cmd: &RemoteCommand) -> Duration {
        crate::deadline::cut(cmd.timeout.unwrap_or(if cmd.mutating {
            self.write
        } else {
            self.read
        }))
    }
}

/// A command to run on the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCommand {
    pub argv: Vec<String>,
    /// Mutating commands are never retried.
    pub mutating: bool,
    /// Its own bound instead of the transport's (a batch of many commands).
    pub timeout: Option<Duration>,
}

impl RemoteCommand {
    /// A read-only command (retried on connection failures).
    pub fn read<S: Into<String>>(argv: impl IntoIterator<Item = S>) -> Self {
        RemoteCommand {
            argv: argv.into_iter().map(Into::into).collect(),
            mutating: false,
            timeout: None,
        }
    }

    /// A command that changes the node (never retried).
    pub fn write<S: Into<String>>(argv: impl IntoIterator<Item = S>) -> Self {
        RemoteCommand {
            argv: argv.into_iter().map(Into::into).collect(),
            mutating: true,
            timeout: None,
        }
    }

    /// The same command with its own bound.
    pub fn within(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    /// The command as one quoted shell line.
    pub fn line(&self) -> String {
        shell::join(&self.argv)
    }
}

/// What a command left behind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandOutput {
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl CommandOutput {
    pub fn success(&self) -> bool {
        self.status == 0
    }
}

/// What a streamed command left: its output went to the caller's writer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Streamed {
    pub status: i32,
    pub stderr: String,
    /// Bytes of standard output copied.
    pub bytes: u64,
}

impl Streamed {
    pub fn success(&self) -> bool {
        self.status == 0
    }
}

pub trait Transport {
    /// The host, for messages (`local` for [`Local`]).
    fn host(&self) -> &str;

    /// The bounds it puts on commands.
    fn timeouts(&self) -> Timeouts {
        Timeouts::default()
    }

    /// Whether commands run in a shell on the node (SSH, local). Over the API only what has
    /// an API method runs: no archive is read, no `vma` or `zstd` test.
    fn has_shell(&self) -> bool {
        true
    }

    /// This transport aimed at another node of the cluster, when it can get there itself
    /// (the API routes `/nodes/N/…`); `None`: go through the cluster's SSH ([`Hop`]).
    fn on_node(&self, _node: &str) -> Option<Box<dyn Transport + '_>> {
        None
    }

    /// Whether Proxmox sees this connection as `root@pam`, which some checks exempt (raw
    /// `lxc.*` keys, bind mounts, host devices). Over SSH or on the node it is; an API
    /// token never is (pve-access-control: a token is `USER@REALM!NAME`).
    fn is_root(&self) -> bool {
        true
    }

    /// The privileges of `needs` this connection lacks. Over SSH or on the node pvedr is
    /// root, which lacks none.
    fn missing(&self, _needs: &[crate::access::Need]) -> Result<Vec<crate::access::Need>> {
        Ok(Vec::new())
    }

    /// Runs one command; a non-zero exit status is not an error here.
    fn exec(&self, cmd: &RemoteCommand) -> Result<CommandOutput> {
        trace(self.host(), &cmd.line());
        self.exec_quiet(cmd)
    }

    /// [`Transport::exec`] without the trace line.
    fn exec_quiet(&self, cmd: &RemoteCommand) -> Result<CommandOutput>;

    /// Runs a command with its standard output copied into `sink` as it comes, in bounded
    /// memory (an archive from a node into an upload). Never retried: part of the output
    /// may already be gone.
    fn exec_stream(&self, cmd: &RemoteCommand, sink: &mut dyn Write) -> Result<Streamed>;

    /// Runs a command with `input` fed to its standard input (an archive back to a node).
    /// Never retried. Its standard output is kept up to [`MAX_STDIN_REPLY`].
    fn exec_with_stdin(&self, cmd: &RemoteCommand, input: &mut dyn Read) -> Result<CommandOutput>;

    /// Runs read-only commands in parallel on the node, in one round trip; outputs in order.
    fn exec_batch(&self, cmds: &[RemoteCommand]) -> Result<Vec<CommandOutput>> {
        if cmds.len() == 1 {
            return Ok(vec![self.exec(&cmds[0])?]);
        }
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        // Each command is bounded on the node (one hung storage must not sink the others);
        // the whole batch by as many bounds as it has waves of parallel commands.
        // Under a run's deadline each command is stopped early enough for the batch to
        // still answer which one hung.
        let mut each = self.timeouts().read;
        if let Some(left) = crate::deadline::left() {
            each = each.min(left.saturating_sub(crate::deadline::MARGIN));
        }
        let script = batch::script(cmds, each);
        trace(
            self.host(),
            &format!(
                "batch of {} commands: {}",
                cmds.len(),
                cmds.iter()
                    .map(RemoteCommand::line)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        );
        let whole = crate::deadline::cut(
            batch::longest(cmds, each).saturating_mul(batch::waves(cmds.len()))
                + Duration::from_secs(30),
        );
        let out =
            self.exec_quiet(&RemoteCommand::read(["sh", "-c", script.as_str()]).within(whole))?;
        batch::parse(&out, cmds.len()).map_err(|message| Error::Protocol {
            host: self.host().into(),
            command: "batch of read-only commands".into(),
            message,
        })
    }

    /// Runs a command and returns its standard output; a non-zero status is an error that
    /// carries the status and standard error.
    fn run(&self, cmd: &RemoteCommand) -> Result<Vec<u8>> {
        let out = self.exec(cmd)?;
        check(self.host(), cmd, out)
    }
}

/// With `PVEDR_TRACE=1`, every round trip to the node is shown on stderr.
fn trace(host: &str, what: &str) {
    use std::sync::OnceLock;
    static ON: OnceLock<bool> = OnceLock::new();
    if *ON
        .get_or_init(|| std::env::var_os("PVEDR_TRACE").is_some_and(|v| v != "0" && !v.is_empty()))
    {
        crate::msg::say(format_args!("trace: {host}: {what}"));
    }
}

/// Turns a failed command's output into [`Error::Remote`].
pub fn check(host: &str, cmd: &RemoteCommand, out: CommandOutput) -> Result<Vec<u8>> {
    if out.success() {
        Ok(out.stdout)
    } else {
        Err(Error::Remote {
            host: host.into(),
            command: cmd.line(),
            status: out.status,
            stderr: out.stderr,
        })
    }
}
