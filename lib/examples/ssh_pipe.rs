//! The SSH data path alone, for `bench/pve-restore-stream.sh`: standard input fed to a
//! command on a node through pvedr's transport (`Transport::exec_with_stdin`, the call a
//! streamed restore makes), to compare with `ssh node CMD` piping the same bytes.
//!
//! `ssh_pipe [--max-read N] HOST PORT USER IDENTITY KNOWN_HOSTS CMD [ARG…]`; exits with
//! the command's status. `--max-read 8192` hands the transport at most 8 KiB per read, as
//! `std::io::copy` did before (the write size measured apart from the rest).

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use pvedr::transport::{RemoteCommand, Ssh, SshOptions, Transport};

fn main() -> ExitCode {
    match run() {
        Ok(status) => ExitCode::from(u8::try_from(status).unwrap_or(1)),
        Err(e) => {
            eprintln!("ssh_pipe: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<i32, String> {
    let mut a: Vec<String> = std::env::args().skip(1).collect();
    let mut max_read = usize::MAX;
    if a.first().is_some_and(|f| f == "--max-read") && a.len() > 1 {
        max_read = a[1]
            .parse()
            .map_err(|e| format!("--max-read {}: {e}", a[1]))?;
        a.drain(..2);
    }
    let [host, port, user, identity, known, cmd @ ..] = a.as_slice() else {
        return Err("usage: ssh_pipe HOST PORT USER IDENTITY KNOWN_HOSTS CMD [ARG…]".into());
    };
    if cmd.is_empty() {
        return Err("no command".into());
    }
    let mut o = SshOptions::new(host.as_str());
    o.port = port.parse().map_err(|e| format!("port {port}: {e}"))?;
    o.user = user.clone();
    o.identity = Some(PathBuf::from(identity));
    o.known_hosts = Some(PathBuf::from(known));
    let ssh = Ssh::new(o);
    let out = ssh
        .exec_with_stdin(
            &RemoteCommand::write(cmd.to_vec()),
            &mut Capped(std::io::stdin().lock(), max_read.max(1)),
        )
        .map_err(|e| e.to_string())?;
    eprint!("{}", out.stderr);
    Ok(out.status)
}

/// A reader that returns at most `.1` bytes per read.
struct Capped<R>(R, usize);

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.1);
        self.0.read(&mut buf[..n])
    }
}
