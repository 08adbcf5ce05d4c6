//! SSH to a node with `ssh2`: host key checked against known_hosts, key or agent auth, one
//! connection per run, retries for connecting and for read-only commands only.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ssh2::{CheckResult, HashType, HostKeyType, KnownHostFileKind, KnownHostKeyFormat, Session};

use super::{
    CommandOutput, MAX_OUTPUT, MAX_STDERR, MAX_STDIN_REPLY, RemoteCommand, Streamed, Timeouts,
    Transport,
};
use crate::error::{Error, Result};
use crate::msg;
use crate::retry::Retry;

/// How to reach and trust a node.
#[derive(Debug, Clone)]
pub struct SshOptions {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// Private key file; else the agent, else `~/.ssh/id_ed25519`, `~/.ssh/id_rsa`.
    pub identity: Option<PathBuf>,
    /// Key files the SSH config names for the host (those that exist), tried before the
    /// agent when no `identity` is given.
    pub config_identities: Vec<PathBuf>,
    /// Default `~/.ssh/known_hosts`.
    pub known_hosts: Option<PathBuf>,
    /// Add an unknown host key to known_hosts (a changed key is never accepted).
    pub accept_new_host_key: bool,
    pub connect_timeout: Duration,
    /// How long a command may go without sending anything.
    pub timeouts: Timeouts,
    /// Connecting and read-only commands are retried so; changing commands never are.
    pub retry: Retry,
}

impl SshOptions {
    pub fn new(host: impl Into<String>) -> Self {
        SshOptions {
            host: host.into(),
            port: 22,
            user: "root".into(),
            identity: None,
            config_identities: Vec::new(),
            known_hosts: None,
            accept_new_host_key: false,
            connect_timeout: Duration::from_secs(10),
            timeouts: Timeouts::default(),
            retry: Retry::default(),
        }
    }
}

pub struct Ssh {
    opts: SshOptions,
    session: RefCell<Option<Session>>,
}

/// Failures worth another try (network), as opposed to trust or auth failures.
enum ConnectError {
    Transient(Error),
    Fatal(Error),
}

impl ConnectError {
    fn into_error(self) -> Error {
        match self {
            ConnectError::Transient(e) | ConnectError::Fatal(e) => e,
        }
    }
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Transient(e) | ConnectError::Fatal(e) => e.fmt(f),
        }
    }
}

impl Ssh {
    pub fn new(opts: SshOptions) -> Self {
        Ssh {
            opts,
            session: RefCell::new(None),
        }
    }

    fn err(&self, message: impl Into<String>) -> Error {
        Error::Ssh {
            host: self.opts.host.clone(),
            message: message.into(),
        }
    }

    fn home() -> Option<PathBuf> {
        std::env::var_os("HOME").map(PathBuf::from)
    }

    fn known_hosts_path(&self) -> Result<PathBuf> {
        match &self.opts.known_hosts {
            Some(p) => Ok(p.clone()),
            None => Self::home()
                .map(|h| h.join(".ssh/known_hosts"))
                .ok_or_else(|| self.err("HOME is not set; give --known-hosts FILE")),
        }
    }

    /// The session, connecting (with retries) on first use.
    fn session(&self) -> Result<Session> {
        if let Some(s) = self.session.borrow().as_ref() {
            return Ok(s.clone());
        }
        let session = self
            .opts
            .retry
            .run_when(
                &format!("ssh {}", self.opts.host),
                |_| self.connect(),
                |e| matches!(e, ConnectError::Transient(_)),
            )
            .map_err(ConnectError::into_error)?;
        *self.session.borrow_mut() = Some(session.clone());
        Ok(session)
    }

    fn connect(&self) -> std::result::Result<Session, ConnectError> {
        use ConnectError::{Fatal, Transient};
        let o = &self.opts;
        let addrs: Vec<_> = (o.host.as_str(), o.port)
            .to_socket_addrs()
            .map_err(|e| Transient(self.err(format!("cannot resolve host: {e}"))))?
            .collect();
        let mut last = None;
        let mut tcp = None;
        for a in &addrs {
            match TcpStream::connect_timeout(a, o.connect_timeout) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let tcp = tcp.ok_or_else(|| {
            Transient(self.err(format!(
                "cannot connect to port {}: {}",
                o.port,
                last.map(|e| e.to_string()).unwrap_or_else(|| "no address".into())
            )))
        })?;
        let mut sess = Session::new().map_err(|e| Fatal(self.err(e.to_string())))?;
        sess.set_tcp_stream(tcp);
        sess.set_timeout(o.connect_timeout.as_millis() as u32);
        sess.handshake()
            .map_err(|e| Transient(self.err(format!("SSH handshake failed: {e}"))))?;
        self.verify_host_key(&sess).map_err(Fatal)?;
        self.authenticate(&sess).map_err(Fatal)?;
        // Each command sets its own bound (see `bound`); keepalives keep idle NAT state.
        sess.set_timeout(0);
        sess.set_keepalive(true, 30);
        Ok(sess)
    }

    fn host_label(&self) -> String {
        if self.opts.port == 22 {
            self.opts.host.clone()
        } else {
            format!("[{}]:{}", self.opts.host, self.opts.port)
        }
    }

    fn verify_host_key(&self, sess: &Session) -> Result<()> {
        let path = self.known_hosts_path()?;
        let (key, key_type) = sess
            .host_key()
            .ok_or_else(|| self.err("the server sent no host key"))?;
        let fingerprint = sess
            .host_key_hash(HashType::Sha256)
            .map(|h| format!("SHA256:{}", base64_nopad(h)))
            .unwrap_or_else(|| "unknown".into());
        let mut kh = sess.known_hosts().map_err(|e| self.err(e.to_string()))?;
        if path.exists() {
            kh.read_file(&path, KnownHostFileKind::OpenSSH)
                .map_err(|e| self.err(format!("cannot read {}: {e}", path.display())))?;
        }
        let label = self.host_label();
        match kh.check_port(&self.opts.host, self.opts.port, key) {
            CheckResult::Match => Ok(()),
            CheckResult::Mismatch => Err(Error::HostKey(format!(
                "host key for {label} has CHANGED (now {fingerprint}); refusing to connect. \
                 If the node was reinstalled, remove the old key with \
                 `ssh-keygen -R '{label}' -f {}` and check the new fingerprint on the node \
                 (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`)",
                path.display()
            ))),
            CheckResult::NotFound if self.opts.accept_new_host_key => {
                let format =
                    key_format(key_type).ok_or_else(|| self.err("unsupported host key type"))?;
                kh.add(&label, key, "added by pvedr", format)
                    .map_err(|e| self.err(e.to_string()))?;
                if let Some(dir) = path.parent() {
                    create_private_dir(dir)?;
                }
                kh.write_file(&path, KnownHostFileKind::OpenSSH)
                    .map_err(|e| self.err(format!("cannot write {}: {e}", path.display())))?;
                msg::say(format!(
                    "added host key {fingerprint} of {label} to {}",
                    path.display()
                ));
                Ok(())
            }
            CheckResult::NotFound => Err(Error::HostKey(format!(
                "host key for {label} is not known ({fingerprint}, not in {}). \
                 Check the fingerprint on the node (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`), \
                 then rerun with --accept-new-host-key, or connect once with `ssh`",
                path.display()
            ))),
            CheckResult::Failure => Err(self.err("host key check failed")),
        }
    }

    fn authenticate(&self, sess: &Session) -> Result<()> {
        let user = &self.opts.user;
        let mut tried = Vec::new();
        if let Some(id) = &self.opts.identity {
            if !id.exists() {
                return Err(Error::usage(format!(
                    "identity file {} does not exist",
                    id.display()
                )));
            }
            match sess.userauth_pubkey_file(user, None, id, None) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    return Err(self.err(format!(
                        "authentication as {user} with {} failed: {}",
                        id.display(),
                        e.message()
                    )));
                }
            }
        }
        for p in self.opts.config_identities.iter().filter(|p| p.exists()) {
            if try_key(sess, user, p) {
                return Ok(());
            }
            tried.push(p.display().to_string());
        }
        if std::env::var_os("SSH_AUTH_SOCK").is_some() {
            if sess.userauth_agent(user).is_ok() && sess.authenticated() {
                return Ok(());
            }
            tried.push("the SSH agent".to_string());
        }
        if let Some(home) = Self::home() {
            for name in ["id_ed25519", "id_rsa"] {
                let p = home.join(".ssh").join(name);
                if p.exists() {
                    if try_key(sess, user, &p) {
                        return Ok(());
                    }
                    tried.push(p.display().to_string());
                }
            }
        }
        Err(self.err(format!(
            "authentication as {user} failed (tried: {}); give --identity FILE or load the key into ssh-agent",
            if tried.is_empty() { "nothing".into() } else { tried.join(", ") }
        )))
    }

    /// Bounds every blocking wait of the next command by its timeout: a node that sends
    /// nothing for that long (a hung storage) ends the command instead of the tool hanging.
    fn bound(&self, sess: &Session, cmd: &RemoteCommand) {
        let ms = self.opts.timeouts.of(cmd).as_millis();
        sess.set_timeout(u32::try_from(ms).unwrap_or(u32::MAX));
        let _ = sess.keepalive_send();
    }

    fn channel(&self, sess: &Session, line: &str) -> std::result::Result<ssh2::Channel, Failure> {
        let mut ch = sess.channel_session().map_err(Failure::from)?;
        ch.exec(line).map_err(Failure::from)?;
        Ok(ch)
    }

    /// A channel running `cmd` under its bound (traced as `what`), and its command line.
    fn open(&self, cmd: &RemoteCommand, what: &str) -> Result<(String, ssh2::Channel)> {
        let line = cmd.line();
        super::trace(self.host(), &format!("{what}: {line}"));
        let sess = self.session()?;
        self.bound(&sess, cmd);
        let ch = self
            .channel(&sess, &line)
            .map_err(|f| self.failure(cmd, &line, f))?;
        Ok((line, ch))
    }

    /// Reads what is left of the channel: stdout up to `max_out` (the rest drained), stderr
    /// up to [`MAX_STDERR`], then the exit status. stderr stays small for the commands pvedr
    /// runs (the batch script files it away); libssh2 queues it while stdout is read.
    fn finish_channel(
        ch: ssh2::Channel,
        max_out: usize,
        bound: Duration,
    ) -> std::result::Result<CommandOutput, Failure> {
        Self::finish_from(ch, Output::default(), max_out, bound)
    }

    /// [`Ssh::finish_channel`] after `got`, what was read of the output before.
    fn finish_from(
        mut ch: ssh2::Channel,
        got: Output,
        max_out: usize,
        bound: Duration,
    ) -> std::result::Result<CommandOutput, Failure> {
        let Output {
            mut stdout,
            mut stderr,
        } = got;
        copy_bounded(&mut Patient::new(&mut ch, bound), &mut stdout, max_out)
            .map_err(Failure::from)?;
        copy_bounded(
            &mut Patient::new(ch.stderr(), bound),
            &mut stderr,
            MAX_STDERR,
        )
        .map_err(Failure::from)?;
        patiently(bound, || ch.wait_close()).map_err(Failure::from)?;
        let status = ch.exit_status().map_err(Failure::from)?;
        Ok(CommandOutput {
            status,
            stdout,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }

    fn exec_once(
        &self,
        sess: &Session,
        cmd: &RemoteCommand,
        line: &str,
    ) -> std::result::Result<CommandOutput, Failure> {
        let ch = self.channel(sess, line)?;
        Self::finish_channel(ch, MAX_OUTPUT, self.opts.timeouts.of(cmd))
    }

    /// A failure while a command ran: a timeout is final (trying again would wait as long
    /// again), a lost connection is worth another try for a read-only command.
    fn failed(&self, cmd: &RemoteCommand, line: &str, f: Failure) -> ConnectError {
        match f {
            Failure::TimedOut => ConnectError::Fatal(self.timed_out(cmd, line)),
            Failure::Lost(e) => ConnectError::Transient(self.lost(line, e, cmd.mutating)),
        }
    }

    fn failure(&self, cmd: &RemoteCommand, line: &str, f: Failure) -> Error {
        self.failed(cmd, line, f).into_error()
    }

    fn timed_out(&self, cmd: &RemoteCommand, line: &str) -> Error {
        // The channel is in an unknown state: the next command starts a new session.
        *self.session.borrow_mut() = None;
        self.err(format!(
            "no answer for {} while running `{line}`; gave up (--command-timeout){}",
            crate::time::format_duration(self.opts.timeouts.of(cmd).as_secs()),
            if cmd.mutating {
                "; the command may still be running on the node: check its task log"
            } else {
                ""
            }
        ))
    }

    fn lost(&self, line: &str, e: impl std::fmt::Display, mutating: bool) -> Error {
        *self.session.borrow_mut() = None;
        self.err(format!(
            "connection failed while running `{line}`: {e}{}",
            if mutating {
                " (a changing command is never retried; check the node's state)"
            } else {
                ""
            }
        ))
    }
}

fn ssh_msg(e: ssh2::Error) -> String {
    e.message().to_string()
}

/// Why a command did not complete.
enum Failure {
    /// Nothing came within the command's timeout.
    TimedOut,
    Lost(String),
}

/// libssh2's LIBSSH2_ERROR_TIMEOUT.
const LIBSSH2_ERROR_TIMEOUT: i32 = -9;

impl From<ssh2::Error> for Failure {
    fn from(e: ssh2::Error) -> Self {
        match e.code() {
            ssh2::ErrorCode::Session(LIBSSH2_ERROR_TIMEOUT) => Failure::TimedOut,
            _ => Failure::Lost(ssh_msg(e)),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::TimedOut => Failure::TimedOut,
            _ => Failure::Lost(e.to_string()),
        }
    }
}

/// Whether a blocking libssh2 call ended in its timeout.
fn is_timeout(e: &ssh2::Error) -> bool {
    matches!(e.code(), ssh2::ErrorCode::Session(LIBSSH2_ERROR_TIMEOUT))
}

/// Runs a blocking libssh2 call again while it ends in a timeout before `bound` has passed.
///
/// libssh2 ends a blocking wait with LIBSSH2_ERROR_TIMEOUT ("Timed out waiting on socket")
/// whenever one poll round sees no data, and with keepalives on (`set_keepalive(true, 30)`)
/// a round lasts until the next keepalive is due, not until the session timeout: a command
/// that printed nothing for about 30 s (a slow `pvesh`, a batch whose output is filed away
/// until its end) failed with "no answer for 5m30s" although it was still running. Called
/// again, libssh2 sends the keepalive and waits another round; only silence for the whole
/// bound is a timeout.
fn patiently<T>(
    bound: Duration,
    mut call: impl FnMut() -> std::result::Result<T, ssh2::Error>,
) -> std::result::Result<T, ssh2::Error> {
    let t0 = Instant::now();
    loop {
        let round = Instant::now();
        match call() {
            Err(e) if is_timeout(&e) && t0.elapsed() < bound => pause_after(round),
            r => return r,
        }
    }
}

/// A libssh2 call that timed out at once is not retried in a tight loop.
fn pause_after(round: Instant) {
    if round.elapsed() < Duration::from_millis(50) {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A channel reader with [`patiently`]'s rule: a read times out only after `bound` without
/// data.
struct Patient<R> {
    inner: R,
    bound: Duration,
}

impl<R: Read> Patient<R> {
    fn new(inner: R, bound: Duration) -> Self {
        Patient { inner, bound }
    }
}

impl<R: Read> Read for Patient<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let t0 = Instant::now();
        loop {
            let round = Instant::now();
            match self.inner.read(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut && t0.elapsed() < self.bound => {
                    pause_after(round);
                }
                r => return r,
            }
        }
    }
}

/// Copies `r` into `out` keeping at most `max` bytes (the rest is read and dropped).
fn copy_bounded(r: &mut dyn Read, out: &mut Vec<u8>, max: usize) -> std::io::Result<()> {
    let mut buf = [0u8; 32 * 1024];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        let room = max.saturating_sub(out.len());
        out.extend_from_slice(&buf[..n.min(room)]);
    }
}

/// What a command printed while its input was being sent.
#[derive(Default)]
struct Output {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// How sending a command's input ended.
#[derive(Debug, PartialEq, Eq)]
enum Sent {
    /// All of it: the command gets its EOF.
    All,
    /// The command ended before it read all of it (a restore or a decompressor that
    /// failed): its status says why, not the write.
    Ended,
}

/// How long a write waits for window space before [`send`] looks whether the command
/// has ended.
const SEND_ROUND: Duration = Duration::from_secs(2);

/// Bytes of a command's input read and written at a time. libssh2 sends one packet per
/// write, of at most 32,700 bytes: `std::io::copy`'s 8 KiB buffer sent 8 KiB packets, four
/// times the packets, MACs and system calls (measured: docs/benchmarks.md).
const STDIN_CHUNK: usize = 256 * 1024;

/// Copies `input` into the channel in [`STDIN_CHUNK`]s, with [`send`]'s rules.
fn copy_in(
    sess: &Session,
    input: &mut dyn Read,
    ch: &mut ssh2::Channel,
    bound: Duration,
    got: &mut Output,
) -> std::io::Result<Sent> {
    let mut buf = vec![0u8; STDIN_CHUNK];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(Sent::All),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if send(sess, ch, &buf[..n], bound, got)? == Sent::Ended {
            return Ok(Sent::Ended);
        }
    }
}

/// Writes `buf` into the channel. A command that stops reading its input leaves the write
/// waiting for window space that never comes (sshd sends no close while input is
/// pending): each wait that times out (a keepalive round, see [`patiently`]) looks whether
/// the command has ended, and only `bound` without progress is a timeout. A command
/// that is slow to read (a restore allocating its disks) is waited for so.
fn send(
    sess: &Session,
    ch: &mut ssh2::Channel,
    mut buf: &[u8],
    bound: Duration,
    got: &mut Output,
) -> std::io::Result<Sent> {
    let mut t0 = Instant::now();
    while !buf.is_empty() {
        let round = Instant::now();
        match ch.write(buf) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                buf = &buf[n..];
                t0 = Instant::now();
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                if ended(sess, ch, got) {
                    return Ok(Sent::Ended);
                }
                if e.kind() != std::io::ErrorKind::TimedOut || t0.elapsed() >= bound {
                    return Err(e);
                }
                pause_after(round);
            }
        }
    }
    Ok(Sent::All)
}

/// Whether the command has ended (sent its EOF). libssh2 reports EOF only once the output
/// queued before it is read: that output is read into `got` without waiting.
fn ended(sess: &Session, ch: &mut ssh2::Channel, got: &mut Output) -> bool {
    sess.set_blocking(false);
    let _ = copy_bounded(ch, &mut got.stdout, MAX_STDIN_REPLY);
    let _ = copy_bounded(&mut ch.stderr(), &mut got.stderr, MAX_STDERR);
    sess.set_blocking(true);
    ch.eof()
}

/// A directory for known_hosts, created as OpenSSH creates `~/.ssh`: readable by its owner
/// only (an existing one is left as it is).
fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))
}

fn try_key(sess: &Session, user: &str, p: &Path) -> bool {
    sess.userauth_pubkey_file(user, None, p, None).is_ok() && sess.authenticated()
}

fn key_format(t: HostKeyType) -> Option<KnownHostKeyFormat> {
    Some(match t {
        HostKeyType::Rsa => KnownHostKeyFormat::SshRsa,
        HostKeyType::Dss => KnownHostKeyFormat::SshDss,
        HostKeyType::Ecdsa256 => KnownHostKeyFormat::Ecdsa256,
        HostKeyType::Ecdsa384 => KnownHostKeyFormat::Ecdsa384,
        HostKeyType::Ecdsa521 => KnownHostKeyFormat::Ecdsa521,
        HostKeyType::Ed25519 => KnownHostKeyFormat::Ed25519,
        HostKeyType::Unknown => return None,
    })
}

/// Base64 without padding, as OpenSSH prints fingerprints.
fn base64_nopad(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

impl Transport for Ssh {
    fn host(&self) -> &str {
        &self.opts.host
    }

    fn timeouts(&self) -> Timeouts {
        self.opts.timeouts
    }

    fn exec_quiet(&self, cmd: &RemoteCommand) -> Result<CommandOutput> {
        if cmd.argv.iter().any(|a| a.contains('\0')) {
            return Err(Error::usage(format!(
                "a command argument contains a NUL byte: `{}`",
                cmd.line().escape_debug()
            )));
        }
        let line = cmd.line();
        let retry = if cmd.mutating {
            Retry::once()
        } else {
            self.opts.retry
        };
        // Connecting has its own retries (in `session`): only a connection lost while the
        // command ran is tried again here.
        retry
            .run_when(
                &format!("ssh {}", self.opts.host),
                |_| {
                    let sess = self.session().map_err(ConnectError::Fatal)?;
                    self.bound(&sess, cmd);
                    self.exec_once(&sess, cmd, &line)
                        .map_err(|f| self.failed(cmd, &line, f))
                },
                |e| matches!(e, ConnectError::Transient(_)),
            )
            .map_err(ConnectError::into_error)
    }

    fn exec_stream(&self, cmd: &RemoteCommand, sink: &mut dyn Write) -> Result<Streamed> {
        let (line, mut ch) = self.open(cmd, "stream")?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut bytes = 0u64;
        let bound = self.opts.timeouts.of(cmd);
        loop {
            let n = Patient::new(&mut ch, bound)
                .read(&mut buf)
                .map_err(|e| self.failure(cmd, &line, e.into()))?;
            if n == 0 {
                break;
            }
            if let Err(e) = sink.write_all(&buf[..n]) {
                // The reader gave up: stop the remote side too.
                let _ = ch.close();
                return Err(Error::io(
                    format!("{}: `{line}`: writing its output", self.opts.host),
                    e,
                ));
            }
            bytes = bytes.saturating_add(n as u64);
        }
        let out = Self::finish_channel(ch, 0, bound).map_err(|f| self.failure(cmd, &line, f))?;
        Ok(Streamed {
            status: out.status,
            stderr: out.stderr,
            bytes,
        })
    }

    fn exec_with_stdin(&self, cmd: &RemoteCommand, input: &mut dyn Read) -> Result<CommandOutput> {
        let (line, mut ch) = self.open(cmd, "with stdin")?;
        let sess = self.session()?;
        let bound = self.opts.timeouts.of(cmd);
        // The remote command reads its input before it answers (cat > FILE, pvesm import):
        // its stdout is read after the input is sent.
        let mut got = Output::default();
        // Short waits while sending: a command that ended is seen within a round.
        sess.set_timeout(u32::try_from(SEND_ROUND.min(bound).as_millis()).unwrap_or(u32::MAX));
        let sent = copy_in(&sess, input, &mut ch, bound, &mut got);
        self.bound(&sess, cmd);
        let sent = sent.map_err(|e| self.failure(cmd, &line, e.into()))?;
        if sent == Sent::All {
            ch.send_eof()
                .map_err(|e| self.failure(cmd, &line, e.into()))?;
        }
        Self::finish_from(ch, got, MAX_STDIN_REPLY, bound).map_err(|f| self.failure(cmd, &line, f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_base64() {
        assert_eq!(base64_nopad(b"abc"), "YWJj");
        assert_eq!(base64_nopad(b"ab"), "YWI");
        assert_eq!(base64_nopad(b"a"), "YQ");
    }
}
