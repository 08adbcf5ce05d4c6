//! Local child processes: in their own process group (a Ctrl-C at the terminal reaches the
//! tool, which decides, not the Proxmox command half-way through its work), output read
//! concurrently and bounded, killed with their group when the caller's timeout passes.

use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

/// Standard output kept of a child that is fed input (its reply, not a stream).
const MAX_REPLY: usize = 16 * 1024 * 1024;

/// What a finished child left.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// The exit status; killed by a signal: 128 + the signal, as a shell reports it.
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

#[derive(Debug)]
pub enum Finished {
    Exited(Output),
    /// Killed after the timeout.
    TimedOut,
}

/// Why a child was stopped, how, and what it printed until then.
#[derive(Debug)]
pub struct Stopped {
    /// The tool was interrupted (else the timeout passed).
    pub interrupted: bool,
    /// The signal that ended it: SIGINT when it stopped by itself within the grace.
    pub by: &'static str,
    pub output: Output,
}

/// Keeps the first `max` bytes of a stream and drains the rest, so a child never blocks on
/// a full pipe and never grows our memory past the bound.
fn read_bounded(mut r: impl Read + Send + 'static, max: usize) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 64 * 1024];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = max.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
            }
        }
        kept
    })
}

fn status_of(s: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(9))
}

/// Kills the child's whole process group (it leads one: `process_group(0)`).
pub fn kill_group(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Waits for `child` until `deadline`; `None` when it was killed at the deadline.
fn wait_until(child: &mut Child, deadline: Instant) -> io::Result<Option<i32>> {
    loop {
        if let Some(s) = child.try_wait()? {
            return Ok(Some(status_of(s)));
        }
        if Instant::now() >= deadline {
            kill_group(child);
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `cmd` (stdin empty) with a timeout; stdout and stderr kept up to `max_output` each.
pub fn run(mut cmd: Command, timeout: Duration, max_output: usize) -> io::Result<Finished> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn()?;
    let out = read_bounded(take(child.stdout.take())?, max_output);
    let err = read_bounded(take(child.stderr.take())?, max_output);
    let deadline = Instant::now() + timeout;
    let status = wait_until(&mut child, deadline)?;
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    Ok(match status {
        None => Finished::TimedOut,
        Some(status) => Finished::Exited(Output {
            status,
            stdout,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }),
    })
}

/// Sends `sig` to the group `child` leads, then waits up to `grace` for the leader to end.
fn signal_and_wait(child: &mut Child, sig: Signal, grace: Duration) -> io::Result<Option<i32>> {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), sig);
    }
    let end = Instant::now() + grace;
    loop {
        if let Some(s) = child.try_wait()? {
            return Ok(Some(status_of(s)));
        }
        if Instant::now() >= end {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// SIGINT (a graceful stop), SIGTERM after `grace`, SIGKILL after `grace` more; what is
/// left of the group after its leader ended is killed too. Returns the signal that did it.
fn stop_group(child: &mut Child, grace: Duration) -> io::Result<(&'static str, i32)> {
    let mut ended = None;
    for (sig, name) in [(Signal::SIGINT, "SIGINT"), (Signal::SIGTERM, "SIGTERM")] {
        if let Some(status) = signal_and_wait(child, sig, grace)? {
            ended = Some((name, status));
            break;
        }
    }
    let (by, status) = match ended {
        Some(e) => e,
        None => {
            kill_group(child);
            ("SIGKILL", 128 + 9)
        }
    };
    // Children of the leader that outlived it (a shell's background job ignores SIGINT).
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
    }
    Ok((by, status))
}

/// Runs `cmd` (stdin empty) like [`run`], but a child that must stop is asked to: at the
/// timeout or when the tool is interrupted ([`crate::interrupt::requested`]), SIGINT to its
/// group, then SIGTERM and SIGKILL, each after `grace`. `Ok(Err(_))`: it was stopped.
pub fn run_stoppable(
    mut cmd: Command,
    timeout: Duration,
    max_output: usize,
    grace: Duration,
) -> io::Result<Result<Output, Stopped>> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn()?;
    let _known = crate::interrupt::track_group(child.id());
    let out = read_bounded(take(child.stdout.take())?, max_output);
    let err = read_bounded(take(child.stderr.take())?, max_output);
    let deadline = Instant::now() + timeout;
    let ended = loop {
        if let Some(s) = child.try_wait()? {
            break Ok(status_of(s));
        }
        let interrupted = crate::interrupt::requested();
        if interrupted || Instant::now() >= deadline {
            break Err((interrupted, stop_group(&mut child, grace)?));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let output = |status| Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned(),
    };
    Ok(match ended {
        Ok(status) => Ok(output(status)),
        Err((interrupted, (by, status))) => Err(Stopped {
            interrupted,
            by,
            output: output(status),
        }),
    })
}

/// Runs `cmd` with its stdout copied into `sink` as it comes and `input` (if any) fed to its
/// stdin; stderr kept up to `max_stderr`. Returns the status, stderr and the bytes copied.
pub fn run_streaming(
    mut cmd: Command,
    input: Option<&mut dyn Read>,
    sink: &mut dyn Write,
    max_stderr: usize,
) -> io::Result<(Output, u64)> {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0);
    let mut child = cmd.spawn()?;
    let err = read_bounded(take(child.stderr.take())?, max_stderr);
    let copied = match input {
        Some(input) => {
            // Output is collected by a thread while this one feeds the input.
            let out = read_bounded(take(child.stdout.take())?, MAX_REPLY);
            let mut stdin = take(child.stdin.take())?;
            let fed = io::copy(input, &mut stdin);
            drop(stdin);
            let kept = out.join().unwrap_or_default();
            sink.write_all(&kept)?;
            if let Err(e) = fed {
                kill_group(&mut child);
                return Err(e);
            }
            kept.len() as u64
        }
        None => {
            let mut stdout = take(child.stdout.take())?;
            match io::copy(&mut stdout, sink) {
                Ok(n) => n,
                Err(e) => {
                    kill_group(&mut child);
                    return Err(e);
                }
            }
        }
    };
    let status = status_of(child.wait()?);
    let stderr = err.join().unwrap_or_default();
    Ok((
        Output {
            status,
            stdout: Vec::new(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        },
        copied,
    ))
}

fn take<T>(p: Option<T>) -> io::Result<T> {
    p.ok_or_else(|| io::Error::other("child pipe missing"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hung_child_is_killed_at_the_timeout() {
        let mut c = Command::new("sh");
        c.args(["-c", "sleep 30"]);
        let t0 = Instant::now();
        let r = run(c, Duration::from_millis(200), 1024).expect("run");
        assert!(matches!(r, Finished::TimedOut));
        assert!(t0.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_stubborn_child_is_stopped_with_sigterm_then_sigkill() {
        let ms = Duration::from_millis;
        // Ignores SIGINT, leaves on SIGTERM.
        let script = "trap '' INT; trap 'exit 7' TERM; while :; do sleep 0.05; done";
        let s = stopped(script, ms(300), ms(300));
        assert_eq!(
            (s.interrupted, s.by, s.output.status),
            (false, "SIGTERM", 7)
        );
        // Ignores both: killed.
        let s = stopped(
            "trap '' INT TERM; while :; do sleep 0.05; done",
            ms(100),
            ms(200),
        );
        assert_eq!(s.by, "SIGKILL");
        // Leaves on SIGINT, printing what it did.
        let script = "trap 'echo released; exit 1' INT; while :; do sleep 0.05; done";
        let s = stopped(script, ms(100), Duration::from_secs(5));
        assert_eq!(
            (s.by, s.output.stdout.as_slice()),
            ("SIGINT", &b"released\n"[..])
        );
    }

    /// `sh -c script`, which never ends by itself, stopped at `timeout`.
    fn stopped(script: &str, timeout: Duration, grace: Duration) -> Stopped {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        let r = run_stoppable(c, timeout, 1024, grace);
        let Ok(Err(s)) = r else {
            panic!("not stopped: {r:?}")
        };
        s
    }

    #[test]
    fn output_is_bounded() {
        let mut c = Command::new("sh");
        c.args(["-c", "head -c 100000 /dev/zero; echo err >&2; exit 3"]);
        let Finished::Exited(o) = run(c, Duration::from_secs(10), 1000).expect("run") else {
            panic!("timed out")
        };
        assert_eq!(
            (o.status, o.stdout.len(), o.stderr.trim()),
            (3, 1000, "err")
        );
    }

    #[test]
    fn streams_in_and_out() {
        let mut c = Command::new("sh");
        c.args(["-c", "wc -c"]);
        let mut input: &[u8] = &[7u8; 300_000];
        let mut sink = Vec::new();
        let (o, _) = run_streaming(c, Some(&mut input), &mut sink, 1024).expect("run");
        assert_eq!(o.status, 0);
        assert_eq!(String::from_utf8_lossy(&sink).trim(), "300000");
    }
}
