//! Parts of the model-based fault test (`tests/model/`), kept apart from the rest of the
//! testkit (the sshd it severs and revives is the testkit's [`crate::Sshd`]):
//!
//! - [`S3Gate`]: a TCP front in front of moto whose mode can be switched while a tool runs:
//!   pass, down (every connection closed at once, in-flight ones too), slow (each chunk
//!   delayed), cut (each connection closed after N request bytes). moto keeps its state in
//!   memory, so stopping it would lose the very versions the test counts; the gate gives
//!   the same failures without that.
//! - [`S3Probe`]: one long-lived boto3 process talking to moto directly (never through the
//!   gate), so observing S3 costs a line on a pipe instead of a Python start-up.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;

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
