//! Parts of the model-based fault test (`tests/model/`), kept apart from the rest of the
//! testkit:
//!
//! - [`NodeSshd`]: a real sshd for one simulated node that can be *severed* (the listener and
//!   every per-connection child killed at once, as a node that drops off the network) and
//!   *revived* on the same port, so the next command of a sequence reaches the node again.
//! - [`S3Gate`]: a TCP front in front of moto whose mode can be switched while a tool runs:
//!   pass, down (every connection closed at once, in-flight ones too), slow (each chunk
//!   delayed), cut (each connection closed after N request bytes). moto keeps its state in
//!   memory, so stopping it would lose the very versions the test counts; the gate gives
//!   the same failures without that.
//! - [`S3Probe`]: one long-lived boto3 process talking to moto directly (never through the
//!   gate), so observing S3 costs a line on a pipe instead of a Python start-up.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{SimNode, sim_dir};

const SSHD: &str = "/usr/sbin/sshd";

fn keygen(path: &Path) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "pvedr-model", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen runs");
    assert!(st.success(), "ssh-keygen failed");
}

/// Every process below `root` (children first collected, so none is reparented away
/// before it is found).
fn descendants(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // comm may hold spaces: the fields after the last ')'.
            let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
                continue;
            };
            let ppid = rest
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                children.entry(ppid).or_default().push(pid);
            }
        }
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

/// sshd for one simulated node, on a port kept across [`NodeSshd::sever`] and
/// [`NodeSshd::revive`].
///
/// `HOME` is the server's own directory: bash, started by sshd, reads `~/.bashrc` even for
/// `bash -c`, and a test machine's root `.bashrc` may set up pyenv, whose `pyenv rehash`
/// takes a lock shared by every session on the machine (one killed by a cut leaves it
/// behind, and the next sessions wait on it for up to a minute) and whose shims put a
/// bash wrapper in front of every simulated command.
pub struct NodeSshd {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl NodeSshd {
    pub fn start(sim: &SimNode) -> NodeSshd {
        assert!(Path::new(SSHD).exists(), "{SSHD} is missing");
        let dir = tempfile::Builder::new()
            .prefix("pvedr-model-sshd")
            .tempdir()
            .unwrap();
        let d = dir.path().to_path_buf();
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
        let mut s = NodeSshd {
            dir,
            port: 0,
            child: None,
        };
        for _ in 0..5 {
            s.port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            if s.spawn() {
                let host_pub = std::fs::read_to_string(d.join("host_key.pub")).unwrap();
                let key: Vec<&str> = host_pub.split_whitespace().take(2).collect();
                std::fs::write(
                    s.known_hosts(),
                    format!("[127.0.0.1]:{} {}\n", s.port, key.join(" ")),
                )
                .unwrap();
                return s;
            }
        }
        panic!("sshd did not start: {}", s.log());
    }

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
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = child.try_wait() {
                return false;
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

    /// Kills the listener and every process below it (per-connection sshd, the session's
    /// shell, the simulated command): every open connection drops, nothing more runs.
    pub fn sever(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let mut pids = descendants(child.id());
        pids.push(child.id());
        let _ = Command::new("kill")
            .arg("-KILL")
            .args(pids.iter().map(u32::to_string))
            .stderr(Stdio::null())
            .status();
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

    pub fn is_up(&self) -> bool {
        self.child.is_some()
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

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
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
            "--connect-timeout".into(),
            "5s".into(),
        ]
    }
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

impl Drop for NodeSshd {
    fn drop(&mut self) {
        self.sever();
    }
}

/// What the gate does to connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateMode {
    /// Relay everything.
    Pass,
    /// Close every connection at once (new ones on accept, open ones at their next chunk).
    Down,
    /// Delay every relayed chunk by this many milliseconds.
    Slow(u64),
    /// Close each connection after it carried this many request bytes.
    Cut(u64),
}

/// A TCP front for moto whose failures can be switched on while a tool runs.
pub struct S3Gate {
    port: u16,
    mode: Arc<AtomicU8>,
    param: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

const PASS: u8 = 0;
const DOWN: u8 = 1;
const SLOW: u8 = 2;
const CUT: u8 = 3;

impl S3Gate {
    pub fn start(upstream: u16) -> S3Gate {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let mode = Arc::new(AtomicU8::new(PASS));
        let param = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, p, s) = (Arc::clone(&mode), Arc::clone(&param), Arc::clone(&stop));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                if m.load(Ordering::SeqCst) == DOWN {
                    let _ = conn.shutdown(Shutdown::Both);
                    continue;
                }
                let (m, p) = (Arc::clone(&m), Arc::clone(&p));
                std::thread::spawn(move || relay(conn, upstream, &m, &p));
            }
        });
        S3Gate {
            port,
            mode,
            param,
            stop,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn set(&self, mode: GateMode) {
        let (m, p) = match mode {
            GateMode::Pass => (PASS, 0),
            GateMode::Down => (DOWN, 0),
            GateMode::Slow(ms) => (SLOW, ms),
            GateMode::Cut(n) => (CUT, n),
        };
        self.param.store(p, Ordering::SeqCst);
        self.mode.store(m, Ordering::SeqCst);
    }
}

impl Drop for S3Gate {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn relay(conn: TcpStream, upstream: u16, mode: &Arc<AtomicU8>, param: &Arc<AtomicU64>) {
    let Ok(up) = TcpStream::connect(("127.0.0.1", upstream)) else {
        let _ = conn.shutdown(Shutdown::Both);
        return;
    };
    let (Ok(c2), Ok(u2)) = (conn.try_clone(), up.try_clone()) else {
        return;
    };
    let (m2, p2) = (Arc::clone(mode), Arc::clone(param));
    let t = std::thread::spawn(move || pipe(c2, u2, &m2, &p2, true));
    pipe(up, conn, mode, param, false);
    let _ = t.join();
}

/// Copies `from` into `to` chunk by chunk, applying the gate's mode to each chunk; the
/// request direction (`counts`) is the one a cut counts.
fn pipe(mut from: TcpStream, mut to: TcpStream, mode: &AtomicU8, param: &AtomicU64, counts: bool) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut carried: u64 = 0;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let m = mode.load(Ordering::SeqCst);
        let p = param.load(Ordering::SeqCst);
        if m == DOWN {
            break;
        }
        if m == SLOW {
            std::thread::sleep(Duration::from_millis(p));
        }
        let mut n = n;
        if m == CUT && counts {
            if carried >= p {
                break;
            }
            n = n.min(usize::try_from(p - carried).unwrap_or(n));
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        carried += n as u64;
        if m == CUT && counts && carried >= p {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

const PROBE: &str = r#"
import sys, json, boto3
from botocore.config import Config
s3 = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='test',
                  aws_secret_access_key='testtest', region_name='us-east-1',
                  config=Config(retries={'max_attempts': 2}))

def versions(b, prefix):
    out, markers = [], []
    for page in s3.get_paginator('list_object_versions').paginate(Bucket=b, Prefix=prefix):
        for v in page.get('Versions', []):
            out.append({'key': v['Key'], 'id': v['VersionId'], 'size': v['Size'],
                        'latest': v['IsLatest'], 'etag': v['ETag']})
        for v in page.get('DeleteMarkers', []):
            markers.append({'key': v['Key'], 'id': v['VersionId'], 'latest': v['IsLatest']})
    return out, markers

def uploads(b, prefix):
    r = s3.list_multipart_uploads(Bucket=b, Prefix=prefix)
    return [u['Key'] for u in r.get('Uploads', [])]

for line in sys.stdin:
    req = json.loads(line)
    op, b = req['op'], req.get('bucket')
    try:
        if op == 'mkbucket':
            s3.create_bucket(Bucket=b)
            if req.get('versioned'):
                s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={'Status': 'Enabled'})
            res = None
        elif op == 'put':
            res = s3.put_object(Bucket=b, Key=req['key'], Body=req['body'].encode())['VersionId']
        elif op == 'get':
            kw = {'VersionId': req['version']} if req.get('version') else {}
            res = s3.get_object(Bucket=b, Key=req['key'], **kw)['Body'].read().decode('utf-8', 'replace')
        elif op == 'observe':
            v, m = versions(b, req.get('prefix', ''))
            res = {'versions': v, 'markers': m, 'uploads': uploads(b, req.get('prefix', ''))}
        elif op == 'wipe':
            prefix = req.get('prefix', '')
            v, m = versions(b, prefix)
            for x in v + m:
                s3.delete_object(Bucket=b, Key=x['key'], VersionId=x['id'])
            r = s3.list_multipart_uploads(Bucket=b, Prefix=prefix)
            for u in r.get('Uploads', []):
                s3.abort_multipart_upload(Bucket=b, Key=u['Key'], UploadId=u['UploadId'])
            if req.get('bucket_too'):
                s3.delete_bucket(Bucket=b)
            res = None
        else:
            raise ValueError('unknown op ' + op)
        out = {'ok': True, 'result': res}
    except Exception as e:
        out = {'ok': False, 'error': '%s: %s' % (type(e).__name__, e)}
    print(json.dumps(out), flush=True)
"#;

/// One boto3 process on moto's own port; requests and answers are JSON lines.
pub struct S3Probe {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl S3Probe {
    pub fn start(endpoint: &str) -> S3Probe {
        let py = crate::s3::venv_bin("python", "PVEDR_VENV_PYTHON");
        let mut child = Command::new(py)
            .arg("-u")
            .arg("-c")
            .arg(PROBE)
            .arg(endpoint)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python runs");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        S3Probe {
            child,
            stdin,
            stdout,
        }
    }

    /// Sends one request; `Err` with boto's words when S3 refused it.
    pub fn call(&mut self, req: &Value) -> Result<Value, String> {
        writeln!(self.stdin, "{req}").map_err(|e| e.to_string())?;
        self.stdin.flush().map_err(|e| e.to_string())?;
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let v: Value = serde_json::from_str(&line).map_err(|e| format!("{e}: {line:?}"))?;
        if v["ok"] == true {
            Ok(v["result"].clone())
        } else {
            Err(v["error"].as_str().unwrap_or("?").to_string())
        }
    }

    /// Like [`S3Probe::call`], for set-up steps that must work.
    pub fn must(&mut self, req: &Value) -> Value {
        self.call(req)
            .unwrap_or_else(|e| panic!("S3 probe {req}: {e}"))
    }
}

impl Drop for S3Probe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
