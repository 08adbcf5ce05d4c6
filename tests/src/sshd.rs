//! A real OpenSSH server on 127.0.0.1 running the simulator.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{SimNode, sim_dir};

const SSHD: &str = "/usr/sbin/sshd";

pub struct Sshd {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
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
            // bash started by sshd reads ~/.bashrc even for `bash -c`: a test machine's
            // root .bashrc (pyenv) must not wrap every simulated command or share its locks.
            d.display()
        );
        std::fs::write(d.join("authorized_keys"), format!("{env} {client_pub}")).unwrap();
        let _ = std::fs::create_dir_all("/run/sshd");
        // A port can be taken between probing and binding: try a few.
        for _ in 0..5 {
            let port = free_port();
            let config = format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\n\
                 PidFile {d}/sshd.pid\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nPermitUserEnvironment yes\n\
                 MaxStartups 100\nMaxSessions 100\nLogLevel ERROR\n",
                d = d.display()
            );
            std::fs::write(d.join("sshd_config"), config).unwrap();
            let mut child = Command::new(SSHD)
                .arg("-D")
                .arg("-f")
                .arg(d.join("sshd_config"))
                .arg("-E")
                .arg(d.join("sshd.log"))
                .stdin(Stdio::null())
                .spawn()
                .expect("sshd starts");
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // lost the port race: try another
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    let s = Sshd { dir, port, child };
                    s.write_known_hosts();
                    return s;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "sshd did not start: {}",
            std::fs::read_to_string(d.join("sshd.log")).unwrap_or_default()
        );
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

    /// Cuts the server and every live session at once, as a network that drops: SIGKILL to
    /// the master sshd and to every sshd process below it (the per-connection children), so
    /// the client's open connection is reset too, not only new ones refused (stopping the
    /// master alone would leave each session running to its end). The commands the sessions
    /// run are left alone, as on a real node: killing the login shell in the middle of its
    /// start-up files can leave their locks behind (a pyenv rehash lock did, making every
    /// later login wait 60 s).
    pub fn cut(&mut self) {
        let master = self.child.id();
        let mut tree = vec![master];
        // Children before parents are found by repeated scans of /proc (a few levels deep).
        let mut i = 0;
        while i < tree.len() {
            let parent = tree[i];
            for pid in children_of(parent) {
                if !tree.contains(&pid) {
                    tree.push(pid);
                }
            }
            i += 1;
        }
        for pid in tree.iter().filter(|p| is_sshd(**p)) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.wait();
    }

    /// Stops the server (to test a connection cut).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The processes whose parent is `pid` (from /proc/*/stat).
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let name = e.ok()?.file_name().into_string().ok()?;
        let child: u32 = name.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).ok()?;
        // The command name is in parentheses and may hold spaces: read after the last ')'.
        let rest = &stat[stat.rfind(')')? + 1..];
        let ppid: u32 = rest.split_whitespace().nth(1)?.parse().ok()?;
        (ppid == pid).then_some(child)
    })
    .collect()
}

/// Whether `pid` is an sshd process (`sshd`, `sshd-session`, `sshd-auth`).
fn is_sshd(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.starts_with("sshd"))
}
