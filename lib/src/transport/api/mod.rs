//! The Proxmox REST API as a transport: the same commands as over SSH, sent as the API
//! calls they stand for ([`call`]), with an API token instead of a root key.
//!
//! `Authorization: PVEAPIToken=USER@REALM!TOKENID=SECRET` (pve-access-control
//! `src/PVE/AccessControl.pm`; the secret is never printed). Calls that start a worker answer
//! a UPID: the task is polled on its node (`/nodes/N/tasks/UPID/status`) until it stops, and
//! its log becomes the command's output, as the CLI would have printed it. pveproxy routes
//! `/nodes/N/…` to node N itself, so one entry point serves the whole cluster.

mod call;
mod task;

pub use call::AGENT_PING;

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{CommandOutput, MAX_OUTPUT, RemoteCommand, Streamed, Timeouts, Transport};
use crate::access::{self, Need, Privs};
use crate::error::{Error, Result};
use crate::http::{self, Bounds, TlsArgs};
use crate::retry::Retry;
use call::{Method, Render};

/// A token id: `USER@REALM!TOKENID`, split as pve-access-control splits it
/// (`src/PVE/AccessControl.pm` `$token_full_regex`, `split_tokenid`; `src/PVE/Auth/Plugin.pm`
/// `$user_regex` `[^\s:/]+`, `$realm_regex`, `verify_username`: `USER@REALM` is 3 to 64
/// characters; the token part has the realm's format). Neither the realm nor the token part
/// holds `@` or `!`, so the realm follows the last `@`: `user@example.com@pve!check`.
pub fn token_id(s: &str) -> Result<&str> {
    let ok = (|| {
        let (userid, id) = s.rsplit_once('!')?;
        let (user, realm) = userid.rsplit_once('@')?;
        // `[A-Za-z][A-Za-z0-9.\-_]+`
        let name = |t: &str| {
            t.len() >= 2
                && t.len() <= 64
                && t.starts_with(|c: char| c.is_ascii_alphabetic())
                && t.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'))
        };
        // `[^\s:/]+`, ASCII only: the id goes into an HTTP header.
        let user_ok = !user.is_empty()
            && user
                .bytes()
                .all(|c| c.is_ascii_graphic() && !matches!(c, b':' | b'/'));
        let len_ok = (3..=64).contains(&userid.len());
        (user_ok && len_ok && name(realm) && name(id)).then_some(())
    })();
    ok.map(|_| s).ok_or_else(|| {
        let expected = "expected USER@REALM!TOKENID (as `pveum user token add` names it)";
        // A pasted `ID=SECRET` must not be echoed.
        Error::usage(if s.contains('=') {
            format!(
                "--token: {expected}; the value holds a '=' and is not shown: the secret goes in PVEDR_TOKEN_SECRET or --token-secret-file, never on the command line"
            )
        } else {
            format!("--token '{}': {expected}", s.escape_debug())
        })
    })
}

/// A token secret: kept out of every message and `Debug` output.
#[derive(Clone)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(hidden)")
    }
}

impl Secret {
    /// From `PVEDR_TOKEN_SECRET`, else the first line of `file`.
    pub fn find(file: Option<&Path>) -> Result<Secret> {
        let raw = match (file, std::env::var("PVEDR_TOKEN_SECRET")) {
            (Some(p), _) => read_secret_file(p)?,
            (None, Ok(v)) if !v.is_empty() => v,
            (None, _) => {
                return Err(Error::usage(
                    "--api needs the token's secret: set PVEDR_TOKEN_SECRET or give --token-secret-file FILE",
                ));
            }
        };
        let s = raw.trim().to_string();
        if s.is_empty() || s.len() > 512 || !s.bytes().all(|c| c.is_ascii_graphic()) {
            return Err(Error::usage(
                "the token secret is empty, too long or holds spaces or control characters",
            ));
        }
        crate::redact::register(&s);
        Ok(Secret(s))
    }
}

/// The first line of a secret file: a regular file only (a FIFO would block the run), read
/// up to 4 KiB.
fn read_secret_file(p: &Path) -> Result<String> {
    let bytes = crate::fs::read_small(p, 4096)?;
    let text = String::from_utf8_lossy(&bytes);
    Ok(text.lines().next().unwrap_or_default().to_string())
}

pub struct ApiOptions {
    /// `https://HOST:PORT`, checked by [`http::base_url`].
    pub base: String,
    pub token: String,
    pub secret: Secret,
    pub tls: TlsArgs,
    pub connect_timeout: Duration,
    pub timeouts: Timeouts,
}

struct Shared {
    agent: ureq::Agent,
    base: String,
    host: String,
    /// The token's ID (never its secret), named when Proxmox refuses it.
    token: String,
    auth: String,
    timeouts: Timeouts,
    retry: Retry,
    local: OnceLock<std::result::Result<String, String>>,
    /// Privileges per exact path, each asked once.
    privs: Mutex<HashMap<String, Privs>>,
}

/// The API of a cluster, reached at one node; [`Transport::on_node`] aims node-local
/// commands at another node through the same connection.
pub struct Api {
    shared: Arc<Shared>,
    node: Option<String>,
    label: String,
}

/// An HTTP answer: status, reason phrase, JSON body.
struct Answer {
    status: u16,
    reason: String,
    body: Value,
}

impl Api {
    pub fn new(o: ApiOptions) -> Result<Api> {
        let agent = http::agent(
            &o.tls,
            Bounds {
                connect: o.connect_timeout,
                io: o.timeouts.read,
            },
        )?;
        let host = o.base.trim_start_matches("https://").to_string();
        let auth = format!("PVEAPIToken={}={}", o.token, o.secret.0);
        Ok(Api {
            label: format!("{host} (API)"),
            shared: Arc::new(Shared {
                agent,
                base: o.base,
                host,
                token: o.token.clone(),
                auth,
                timeouts: o.timeouts,
                retry: Retry::default(),
                local: OnceLock::new(),
                privs: Mutex::new(HashMap::new()),
            }),
            node: None,
        })
    }

    /// One request, its whole answer within `--command-timeout`; read-only ones are retried
    /// when the connection fails, within the same bound. (ureq's read timeout is dropped on a
    /// pooled connection, so each attempt gets the time left as its own deadline.)
    fn request(&self, method: Method, path: &str, params: &[(String, String)]) -> Result<Answer> {
        let s = &self.shared;
        let url = format!("{}/api2/json{path}", s.base);
        let deadline = Instant::now() + s.timeouts.read;
        let once = |_| self.request_once(method, &url, params, deadline);
        if method == Method::Get {
            let more = |e: &Error| {
                e.is_transient() && Instant::now() < deadline && !crate::interrupt::requested()
            };
            s.retry.run_when(&format!("GET {path}"), once, more)
        } else {
            once(1)
        }
    }

    /// The error of a request that ran out of time.
    fn timed_out(&self, url: &str) -> Error {
        Error::Http {
            url: url.into(),
            message: format!(
                "no whole answer within {}s (--command-timeout); gave up",
                self.shared.timeouts.read.as_secs()
            ),
        }
    }

    fn request_once(
        &self,
        method: Method,
        url: &str,
        params: &[(String, String)],
        deadline: Instant,
    ) -> Result<Answer> {
        let s = &self.shared;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(self.timed_out(url));
        }
        let mut req = s
            .agent
            .request(method.as_str(), url)
            .timeout(left)
            .set("Authorization", &s.auth)
            .set("Accept", "application/json");
        let res = match method {
            Method::Get | Method::Delete => {
                for (k, v) in params {
                    req = req.query(k, v);
                }
                req.call()
            }
            Method::Post | Method::Put => {
                let form: Vec<(&str, &str)> = params
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                req.send_form(&form)
            }
        };
        let resp = match res {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(ureq::Error::Transport(_)) if Instant::now() >= deadline => {
                return Err(self.timed_out(url));
            }
            Err(ureq::Error::Transport(t)) => return Err(http::transport_error(url, &t)),
        };
        let status = resp.status();
        // A server or proxy may echo the Authorization header back.
        let reason = crate::redact::text(resp.status_text());
        if status == 401 {
            // pve-http-server answers every failed token check so: nothing would work.
            return Err(Error::TokenRefused {
                host: s.host.clone(),
                token: s.token.clone(),
                reason: crate::msg::printable(reason.trim_end()),
            });
        }
        let mut body = Vec::new();
        let read = resp
            .into_reader()
            .take(MAX_OUTPUT as u64 + 1)
            .read_to_end(&mut body);
        match read {
            // A refusal's status line says it all; its body is a courtesy.
            Err(_) if status >= 400 => body.clear(),
            Err(_) if Instant::now() >= deadline => return Err(self.timed_out(url)),
            Err(e) => {
                return Err(Error::Http {
                    url: url.into(),
                    message: format!("reading the answer: {e}"),
                });
            }
            Ok(_) => {}
        }
        if body.len() > MAX_OUTPUT {
            return Err(Error::Http {
                url: url.into(),
                message: format!("answer larger than {MAX_OUTPUT} bytes"),
            });
        }
        let body = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) if status >= 400 => Value::Null,
            Err(e) => {
                return Err(Error::Http {
                    url: url.into(),
                    message: format!("the answer is not JSON: {e}"),
                });
            }
        };
        Ok(Answer {
            status,
            reason,
            body,
        })
    }

    /// `data` of a successful GET, else [`Error::Api`].
    fn get_data(&self, path: &str, params: &[(String, String)]) -> Result<Value> {
        let a = self.request(Method::Get, path, params)?;
        if a.status >= 400 {
            return Err(Error::Api {
                host: self.shared.host.clone(),
                method: "GET".into(),
                path: path.into(),
                status: a.status,
                message: a.reason,
            });
        }
        Ok(a.body.get("data").cloned().unwrap_or(Value::Null))
    }

    /// The node the entry point is (`local: 1` in `/cluster/status`).
    fn local_node(&self) -> Result<String> {
        let r = self.shared.local.get_or_init(|| {
            let data = self
                .get_data("/cluster/status", &[])
                .map_err(|e| e.to_string())?;
            data.as_array()
                .into_iter()
                .flatten()
                .find(|e| {
                    e.get("type").and_then(Value::as_str) == Some("node")
                        && e.as_object()
                            .and_then(|m| crate::pvesh::bool_of(m, "local"))
                            == Some(true)
                })
                .and_then(|e| e.get("name")?.as_str())
                .filter(|n| crate::validate::node(n).is_ok())
                .map(str::to_string)
                .ok_or_else(|| "/cluster/status names no local node".to_string())
        });
        r.clone().map_err(Error::Other)
    }

    /// The token's privileges on `path`, as Proxmox works them out
    /// (`GET /access/permissions?path=PATH`), asked once per path.
    fn privileges(&self, path: &str) -> Result<Privs> {
        let cached = |m: &HashMap<String, Privs>| m.get(path).cloned();
        if let Some(p) = cached(&self.lock_privs()) {
            return Ok(p);
        }
        let params = [("path".to_string(), path.to_string())];
        let answer = self.get_data("/access/permissions", &params)?;
        let p = Privs::from_answer(&answer, path);
        self.lock_privs().insert(path.to_string(), p.clone());
        Ok(p)
    }

    fn lock_privs(&self) -> std::sync::MutexGuard<'_, HashMap<String, Privs>> {
        match self.shared.privs.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// The needs of `needs` the token does not meet, each asked on its own path.
    fn unmet(&self, needs: &[Need]) -> Result<Vec<Need>> {
        let mut out = Vec::new();
        for n in needs {
            let p = self.privileges(&n.path)?;
            if !n.any_of.iter().any(|x| p.has(x)) {
                out.push(n.clone());
            }
        }
        Ok(out)
    }

    /// A refusal as the CLI would have printed it, with the missing privileges when
    /// Proxmox did not name them.
    fn refused(&self, c: &call::Call, a: &Answer) -> CommandOutput {
        let mut stderr = format!("{} {}", a.status, a.reason);
        if let Some(Value::Object(errors)) = a.body.get("errors") {
            for (k, v) in errors {
                let v = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                stderr.push_str(&crate::redact::text(&format!("\n{k}: {v}")));
            }
        }
        if a.status == 403 && !c.needs.is_empty() {
            match self.unmet(&c.needs) {
                Ok(missing) => {
                    if !missing.is_empty() {
                        stderr.push_str(&format!(
                            " (the token lacks {})",
                            access::describe(&missing)
                        ));
                    }
                }
                Err(e) => stderr.push_str(&format!(" (its privileges could not be read: {e})")),
            }
        }
        CommandOutput {
            status: 255,
            stdout: Vec::new(),
            stderr,
        }
    }

    fn node_for(&self, cmd: &RemoteCommand) -> Result<String> {
        match (&self.node, cmd.argv.first().map(String::as_str)) {
            (_, Some("pvesh")) => Ok(String::new()),
            (Some(n), _) => Ok(n.clone()),
            (None, _) => self.local_node(),
        }
    }
}

/// What cannot go over the API.
fn needs_shell(host: &str, what: &str) -> Error {
    Error::Refused(format!(
        "{host}: `{what}` has no Proxmox API form: it needs a shell on the node (--host over SSH, or --dir)"
    ))
}

fn render(r: Render, data: &Value) -> Vec<u8> {
    let text = match r {
        Render::Json => format!("{data}\n"),
        Render::Text => data.as_str().map(str::to_string).unwrap_or_default(),
        Render::Field(f) => match data.get(f) {
            Some(Value::String(s)) => format!("{s}\n"),
            Some(v) => format!("{v}\n"),
            None => String::new(),
        },
    };
    text.into_bytes()
}

impl Transport for Api {
    fn host(&self) -> &str {
        &self.label
    }

    fn timeouts(&self) -> Timeouts {
        self.shared.timeouts
    }

    fn has_shell(&self) -> bool {
        false
    }

    fn exec_quiet(&self, cmd: &RemoteCommand) -> Result<CommandOutput> {
        let node = self.node_for(cmd)?;
        let c = call::translate(&cmd.argv, &node).map_err(|e| needs_shell(self.host(), &e.0))?;
        let a = self.request(c.method, &c.path, &c.params)?;
        if a.status >= 400 {
            return Ok(self.refused(&c, &a));
        }
        let data = a.body.get("data").cloned().unwrap_or(Value::Null);
        match data.as_str().filter(|d| d.starts_with("UPID:")) {
            Some(upid) if c.method != Method::Get => {
                task::wait(self, upid, self.shared.timeouts.of(cmd))
            }
            _ => Ok(CommandOutput {
                status: 0,
                stdout: render(c.render, &data),
                stderr: String::new(),
            }),
        }
    }

    fn exec_stream(&self, cmd: &RemoteCommand, _sink: &mut dyn std::io::Write) -> Result<Streamed> {
        Err(needs_shell(self.host(), &cmd.line()))
    }

    fn exec_with_stdin(&self, cmd: &RemoteCommand, _input: &mut dyn Read) -> Result<CommandOutput> {
        Err(needs_shell(self.host(), &cmd.line()))
    }

    /// In parallel over the pooled connections, as many at a time as a batch over SSH.
    fn exec_batch(&self, cmds: &[RemoteCommand]) -> Result<Vec<CommandOutput>> {
        let mut out = Vec::with_capacity(cmds.len());
        for chunk in cmds.chunks(8) {
            let results: Vec<Result<CommandOutput>> = std::thread::scope(|s| {
                let handles: Vec<_> = chunk.iter().map(|c| s.spawn(|| self.exec(c))).collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err(Error::Other("a request thread failed".into())))
                    })
                    .collect()
            });
            for r in results {
                out.push(r?);
            }
        }
        Ok(out)
    }

    fn on_node(&self, node: &str) -> Option<Box<dyn Transport + '_>> {
        Some(Box::new(Api {
            shared: self.shared.clone(),
            node: Some(node.to_string()),
            label: format!("{node} (API via {})", self.shared.host),
        }))
    }

    fn is_root(&self) -> bool {
        false
    }

    fn missing(&self, needs: &[Need]) -> Result<Vec<Need>> {
        self.unmet(needs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_ids() {
        assert!(token_id("root@pam!pvedr").is_ok());
        assert!(token_id("backup@pve!check-1").is_ok());
        assert!(token_id("ops@example.com@pve!check").is_ok());
        for bad in [
            "root@pam",
            "root!x",
            "@pam!x",
            "a b@pam!x",
            "root@pam!x=y",
            "root@pam!-x",
            "root@pam!x",
            "root@p!xy",
            "a/b@pam!xy",
            "root@pam@!xy",
        ] {
            assert!(token_id(bad).is_err(), "{bad}");
        }
        let e = token_id("root@pam!xy=0123-secret")
            .err()
            .map(|e| e.to_string());
        assert!(!e.unwrap_or_default().contains("0123"));
    }

    #[test]
    fn secrets_are_not_printed() {
        let s = Secret("0123-secret".into());
        assert!(!format!("{s:?}").contains("0123"));
    }
}
