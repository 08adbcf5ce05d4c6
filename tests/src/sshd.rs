//! A real OpenSSH server on 127.0.0.1 running the simulator.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{SimNode, sim_dir};

const SSHD: &str = "/usr/sbin/sshd";

/// One sshd for one simulated node. It can be *cut* (sshd and its sessions killed, the
/// commands left running: a network that drops), *severed* (the listener and every process
/// below it killed: a node that drops off the network) and *revived* on the same port with
/// the same host key, so the next command of a sequence reaches the node again.
///
/// `HOME` is the server's own directory: bash, started by sshd, reads `~/.bashrc` even for
/// `bash -c`, and a test machine's root `.bashrc` may set up pyenv, whose `pyenv rehash`
/// takes a lock shared by every session on the machine and whose shims put a bash wrapper
/// in front of every simulated command.
pub struct Sshd {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

fn keygen(path: &Path) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "pvedr-test", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen runs (install openssh-client)");
    assert!(st.success(), "ssh-keygen failed");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Sshd {
    /// Starts sshd for this simulated cluster; commands run as the node `sim.node()`.
    pub fn start(sim: &SimNode) -> Sshd {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: install openssh-server (.ci/run does)"
        );
        let dir = tempfile::Builder::new()
            .prefix("pvedr-sshd")
            .tempdir()
            .unwrap();
        let d = dir.path();
        keygen(&d.join("host_key"));
        keygen(&d.join("client_key"));
        let client_pub = std::fs::read_to_string(d.join("client_key.pub")).unwrap();
        let env = format!(
            "environment=\"PATH={}:/usr/bin:/bin\",environment=\"PVESIM_ROOT={}\",environment=\"PVESIM_NODE={}\",environment=\"TZ={}\",environment=\"HOME={}\"",
            sim_dir().join("bin").display(),
            sim.root().display(),
            sim.node(),
            sim.tz(),
            d.display()
        );
        std::fs::write(d.join("authorized_keys"), format!("{env} {client_pub}")).unwrap();
        let _ = std::fs::create_dir_all("/run/sshd");
        let mut s = Sshd {
            dir,
            port: 0,
            child: None,
        };
        // A port can be taken between probing and binding: try a few.
        for _ in 0..5 {
            s.port = free_port();
            if s.spawn() {
                s.write_known_hosts();
                return s;
            }
        }
        panic!("sshd did not start: {}", s.log());
    }

    /// Starts the listener on `self.port`; false when it could not (the port is taken).
    fn spawn(&mut self) -> bool {
        let d = self.dir.path();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\n\
             PidFile {d}/sshd.pid\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nPermitUserEnvironment yes\n\
             MaxStartups 100\nMaxSessions 100\nLogLevel ERROR\n",
            port = self.port,
            d = d.display()
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        let Ok(mut child) = Command::new(SSHD)
            .arg("-D")
            .arg("-f")
            .arg(d.join("sshd_config"))
            .arg("-E")
            .arg(d.join("sshd.log"))
            .stdin(Stdio::null())
            .spawn()
        else {
            return false;
        };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = child.try_wait() {
                return false; // lost the port race
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                self.child = Some(child);
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    fn write_known_hosts(&self) {
        let host_pub = std::fs::read_to_string(self.dir.path().join("host_key.pub")).unwrap();
        let key: Vec<&str> = host_pub.split_whitespace().take(2).collect();
        let mut f = std::fs::File::create(self.known_hosts()).unwrap();
        writeln!(f, "[127.0.0.1]:{} {}", self.port, key.join(" ")).unwrap();
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client_key")
    }

    pub fn known_hosts(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }

    /// Replaces the known key by another one: the server now looks like a changed host.
    pub fn forge_known_host_key(&self) {
        let other = self.dir.path().join("other_key");
        let _ = std::fs::remove_file(&other);
        let _ = std::fs::remove_file(other.with_extension("pub"));
        keygen(&other);
        let other_pub = std::fs::read_to_string(self.dir.path().join("other_key.pub")).unwrap();
        let key: Vec<&str> = other_pub.split_whitespace().take(2).collect();
        std::fs::write(
            self.known_hosts(),
            format!("[127.0.0.1]:{} {}\n", self.port, key.join(" ")),
        )
        .unwrap();
    }

    /// Empties known_hosts: the server is unknown.
    pub fn forget_known_host(&self) {
        std::fs::write(self.known_hosts(), "").unwrap();
    }

    /// The pvedr tools' SSH flags for this server.
    pub fn args(&self) -> Vec<String> {
        vec![
            "--host".into(),
            "127.0.0.1".into(),
            "--port".into(),
            self.port.to_string(),
            "--identity".into(),
            self.client_key().display().to_string(),
            "--known-hosts".into(),
            self.known_hosts().display().to_string(),
        ]
    }

    /// A command for one of the workspace's tools, pointed at this server by [`Sshd::args`].
    pub fn bin(&self, tool: &str) -> assert_cmd::Command {
        let mut cmd = crate::bin(tool);
        cmd.args(self.args());
        cmd
    }

    /// Runs a command through the OpenSSH client (to check the harness itself).
    pub fn ssh(&self, command: &str) -> std::process::Output {
        Command::new("ssh")
            .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                self.known_hosts().display()
            ))
            .arg("-i")
            .arg(self.client_key())
            .args(["-p", &self.port.to_string(), "root@127.0.0.1", command])
            .output()
            .expect("ssh runs")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    pub fn is_up(&self) -> bool {
        self.child.is_some()
    }

    /// Cuts the server and every live session at once, as a network that drops: SIGKILL to
    /// the master sshd and to every sshd process below it (the per-connection children), so
    /// the client's open connection is reset too, not only new ones refused (stopping the
    /// master alone would leave each session running to its end). The commands the sessions
    /// run are left alone, as on a real node: killing the login shell in the middle of its
    /// start-up files can leave their locks behind.
    pub fn cut(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let mut tree = descendants(child.id());
        tree.push(child.id());
        let sshds: Vec<String> = tree
            .iter()
            .filter(|p| is_sshd(**p))
            .map(u32::to_string)
            .collect();
        kill(&sshds);
        let _ = child.wait();
    }

    /// Kills the listener and every process below it (per-connection sshd, the session's
    /// shell, the simulated command): every open connection drops, nothing more runs.
    pub fn sever(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let mut pids = descendants(child.id());
        pids.push(child.id());
        kill(&pids.iter().map(u32::to_string).collect::<Vec<_>>());
        let _ = child.wait();
        // The killed sessions' processes are reaped by init; wait until none is left.
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5)
            && pids
                .iter()
                .any(|p| Path::new(&format!("/proc/{p}/stat")).exists() && !zombie(*p))
        {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A new listener on the same port (the host key and known_hosts stay).
    pub fn revive(&mut self) {
        if self.child.is_some() {
            return;
        }
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            if self.spawn() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "sshd did not come back on port {}: {}",
            self.port,
            self.log()
        );
    }

    /// Stops the listener (to test a connection refused); open sessions run to their end.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn kill(pids: &[String]) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg("-KILL")
        .args(pids)
        .stderr(Stdio::null())
        .status();
}

/// Every process below `root`, from one scan of /proc (children collected before any is
/// reparented away).
fn descendants(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (pid, ppid) in processes() {
        children.entry(ppid).or_default().push(pid);
    }
    let mut out = Vec::new();
    let mut todo = vec![root];
    let mut seen = HashSet::new();
    while let Some(p) = todo.pop() {
        for &c in children.get(&p).map(Vec::as_slice).unwrap_or(&[]) {
            if seen.insert(c) {
                out.push(c);
                todo.push(c);
            }
        }
    }
    out
}

/// (pid, parent pid) of every process, from /proc/*/stat.
fn processes() -> Vec<(u32, u32)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name is in parentheses and may hold spaces: read after the last ')'.
        let rest = &stat[stat.rfind(')')? + 1..];
        let ppid: u32 = rest.split_whitespace().nth(1)?.parse().ok()?;
        Some((pid, ppid))
    })
    .collect()
}

fn zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().next().map(|st| st == "Z"))
        })
        .unwrap_or(true)
}

/// Whether `pid` is an sshd process (`sshd`, `sshd-session`, `sshd-auth`).
fn is_sshd(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.starts_with("sshd"))
}
