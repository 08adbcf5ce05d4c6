//! One error type for every tool, and the one place that turns it into an exit code.

use std::io;
use std::path::PathBuf;

/// Exit codes shared by every tool but `backup-check` (see `records.md`).
pub mod code {
    pub const SUCCESS: u8 = 0;
    /// The operation failed; nothing was destroyed.
    pub const FAILURE: u8 = 1;
    /// Bad flag or value.
    pub const USAGE: u8 = 2;
    /// Some records succeeded, some failed.
    pub const PARTIAL: u8 = 3;
    pub const INTERRUPTED: u8 = 130;
}

/// Which exit-code contract a tool follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitScheme {
    /// 0 ok, 1 failed, 2 usage, 3 partial.
    Standard,
    /// Nagios plugin convention: every error, usage errors included, is 3 (UNKNOWN), so a
    /// monitoring system never reads a typo as "CRITICAL backup".
    Nagios,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad flag or value, found before anything was done.
    #[error("{0}")]
    Usage(String),

    /// A malformed input record: names the file and line.
    #[error("{source_name}:{line}: {message}")]
    Input {
        source_name: String,
        line: u64,
        message: String,
    },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },

    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },

    /// The SSH host key could not be trusted. The message says how to fix it.
    #[error("{0}")]
    HostKey(String),

    #[error("ssh {host}: {message}")]
    Ssh { host: String, message: String },

    /// A remote (or local) command ran and failed.
    #[error("{host}: `{command}` exited with status {status}{}", stderr_suffix(.stderr))]
    Remote {
        host: String,
        command: String,
        status: i32,
        stderr: String,
    },

    /// No HTTP answer: the connection or TLS failed.
    #[error("{url}: {message}")]
    Http { url: String, message: String },

    /// Proxmox refused the API token itself (401): every request would be refused alike.
    #[error(
        "{host}: the API token {token} was refused (wrong token id or secret, or the token \
         expired); Proxmox said: 401 {reason}"
    )]
    TokenRefused {
        host: String,
        token: String,
        reason: String,
    },

    /// The Proxmox API refused a request: its status and what it said.
    #[error("{host}: {method} {path}: {status} {message}")]
    Api {
        host: String,
        method: String,
        path: String,
        status: u16,
        message: String,
    },

    /// Unexpected output from a Proxmox command.
    #[error("{host}: `{command}`: unexpected output: {message}")]
    Protocol {
        host: String,
        command: String,
        message: String,
    },

    /// An S3 request failed: what was asked, and what the server said.
    #[error("{what}: {}{message}{}", code.as_deref().map(|c| format!("{c}: ")).unwrap_or_default(), status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    S3 {
        what: String,
        code: Option<String>,
        status: Option<u16>,
        message: String,
    },

    /// An S3 request had no answer within its bounds (the SDK's retries included).
    #[error(
        "{what}: the S3 server did not answer in time (--s3-connect-timeout, --s3-read-timeout, --s3-timeout)"
    )]
    S3Timeout { what: String },

    /// A safety check said no; nothing was changed.
    #[error("{0}")]
    Refused(String),

    /// Age encryption or decryption (a key file, a copy for other recipients, damage).
    #[error(transparent)]
    Crypt(#[from] crate::crypt::error::CryptError),

    /// A change needs confirmation, and there is no terminal to ask on.
    #[error("{0}")]
    NeedsConfirmation(String),

    /// Some items failed; the others went through. Details were reported as records.
    #[error("{0}")]
    Partial(String),

    #[error("interrupted")]
    Interrupted,

    /// pvedr stopped following a worker task that goes on running on its node: `stop` is
    /// the quoted command that stops it (pve-manager `PVE/API2/Tasks.pm` `stop_task`).
    #[error(
        "{host}: stopped waiting for task {upid} ({why}); it goes on running on node {node}; to stop it: {stop}"
    )]
    TaskLeft {
        host: String,
        node: String,
        upid: String,
        why: Left,
        stop: String,
    },

    /// A streamed archive did not arrive whole, or cannot be streamed here.
    #[error("{0}")]
    Stream(#[from] crate::pipeline::error::PipeError),

    #[error("{0}")]
    Other(String),
}

/// Why a task was left running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Left {
    Interrupted,
    /// Still running after this many seconds, the run's bound.
    TimedOut(u64),
}

impl std::fmt::Display for Left {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Left::Interrupted => f.write_str("interrupted"),
            Left::TimedOut(s) => write!(f, "still running after {s}s"),
        }
    }
}

fn stderr_suffix(stderr: &str) -> String {
    let s = stderr.trim();
    if s.is_empty() {
        String::new()
    } else {
        format!(": {s}")
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }

    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// How a failed call to the node is told: a task left running says so itself (its UPID
    /// and how to stop it); anything else lost the connection.
    pub fn lost(&self) -> String {
        match self {
            Error::TaskLeft { .. } => self.to_string(),
            _ => format!("connection lost: {self}"),
        }
    }

    /// True when the error is a closed stdout (`| head`): the tool ends quietly with 0.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == io::ErrorKind::BrokenPipe)
    }

    /// Whether trying again may help: a lost connection, an S3 server that is busy or down.
    /// Never a refusal, a usage error or an answer that will not change.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Ssh { .. } | Error::Http { .. } => true,
            Error::Api { status, .. } => matches!(status, 502..=504),
            Error::S3 { status, .. } => match status {
                None => true,
                Some(s) => *s >= 500 || *s == 429 || *s == 408,
            },
            _ => false,
        }
    }

    /// The one map from error to exit code.
    pub fn exit_code(&self, scheme: ExitScheme) -> u8 {
        if self.is_broken_pipe() {
            return code::SUCCESS;
        }
        if matches!(
            self,
            Error::Interrupted
                | Error::TaskLeft {
                    why: Left::Interrupted,
                    ..
                }
        ) {
            return code::INTERRUPTED;
        }
        match scheme {
            ExitScheme::Nagios => 3,
            ExitScheme::Standard => match self {
                Error::Usage(_) | Error::NeedsConfirmation(_) => code::USAGE,
                Error::Partial(_) => code::PARTIAL,
                _ => code::FAILURE,
            },
        }
    }
}

/// The exit code of a run over several items, from how they ended (standard scheme).
pub fn exit_for(succeeded: usize, failed: usize, interrupted: bool) -> u8 {
    match (succeeded, failed) {
        _ if interrupted => code::INTERRUPTED,
        (_, 0) => code::SUCCESS,
        (0, _) => code::FAILURE,
        _ => code::PARTIAL,
    }
}

impl From<io::Error> for Error {
    fn from(source: io::Error) -> Self {
        Error::Io {
            context: "I/O error".into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        let s = ExitScheme::Standard;
        assert_eq!(Error::usage("x").exit_code(s), 2);
        assert_eq!(Error::Refused("x".into()).exit_code(s), 1);
        assert_eq!(Error::Partial("x".into()).exit_code(s), 3);
        assert_eq!(Error::NeedsConfirmation("x".into()).exit_code(s), 2);
        assert_eq!(Error::usage("x").exit_code(ExitScheme::Nagios), 3);
        let bp = Error::io("stdout", io::Error::from(io::ErrorKind::BrokenPipe));
        assert_eq!(bp.exit_code(s), 0);
        assert_eq!(bp.exit_code(ExitScheme::Nagios), 0);
    }

    #[test]
    fn outcomes() {
        assert_eq!(exit_for(2, 0, false), 0);
        assert_eq!(exit_for(0, 0, false), 0);
        assert_eq!(exit_for(1, 1, false), 3);
        assert_eq!(exit_for(0, 2, false), 1);
        assert_eq!(exit_for(1, 0, true), 130);
    }

    #[test]
    fn s3_errors_say_what_the_server_said() {
        let e = Error::S3 {
            what: "bucket tfstate-prod".into(),
            code: Some("NoSuchBucket".into()),
            status: Some(404),
            message: "The specified bucket does not exist".into(),
        };
        assert_eq!(
            e.to_string(),
            "bucket tfstate-prod: NoSuchBucket: The specified bucket does not exist (HTTP 404)"
        );
        assert!(!e.is_transient());
    }

    #[test]
    fn remote_message_has_status_and_stderr() {
        let e = Error::Remote {
            host: "pve1".into(),
            command: "pvesh get /x".into(),
            status: 255,
            stderr: "No 'get' handler defined for '/x'\n".into(),
        };
        assert_eq!(
            e.to_string(),
            "pve1: `pvesh get /x` exited with status 255: No 'get' handler defined for '/x'"
        );
    }
}
