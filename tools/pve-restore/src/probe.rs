//! Probes of a restored guest: the guest agent, ping, TCP, SSH, HTTP (and the monitoring
//! stack's health endpoints), each with a timeout and retries.

use std::io::Read;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use pvedr::error::{Error, Result};
use pvedr::transport::{RemoteCommand, Transport};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Agent,
    Ping(Option<String>),
    Tcp(Option<String>, u16),
    Ssh(Option<String>),
    /// URL (may hold `{ip}`) and the expected status.
    Http(String, u16),
}

impl Probe {
    pub fn name(&self) -> String {
        match self {
            Probe::Agent => "agent".into(),
            Probe::Ping(h) => format!("ping:{}", h.as_deref().unwrap_or("{ip}")),
            Probe::Tcp(h, p) => format!("tcp:{}:{p}", h.as_deref().unwrap_or("{ip}")),
            Probe::Ssh(h) => format!("ssh:{}", h.as_deref().unwrap_or("{ip}")),
            Probe::Http(u, s) => format!("http:{u}={s}"),
        }
    }
}

/// A host name or address: never an option (`-f`), never a space or a line break.
fn host_ok(h: &str) -> Result<String> {
    if h.is_empty()
        || h.len() > 253
        || h.starts_with('-')
        || !h
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b".-:_[]".contains(&c))
    {
        return Err(Error::usage(format!(
            "invalid probe host '{}'",
            h.escape_debug()
        )));
    }
    Ok(h.to_string())
}

/// The URL without its scheme, for `http://` and `https://` only.
fn after_scheme(url: &str) -> Option<&str> {
    url.strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
}

/// An `http(s)://HOST[:PORT]/PATH`: visible ASCII only (no space, CR or LF to split the
/// request), no credentials, a valid host.
fn url_ok(url: &str) -> std::result::Result<(), String> {
    if url.len() > 2048 || !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the URL may hold only visible ASCII, no spaces or line breaks".into());
    }
    let rest = after_scheme(url).ok_or("only http:// and https:// URLs are supported")?;
    if rest.split('/').next().unwrap_or(rest).contains('@') {
        return Err("no credentials in a probe URL (they would be printed)".into());
    }
    let hostport = rest.split('/').next().unwrap_or(rest);
    let host = match hostport.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => hostport,
    };
    if host == "{ip}" {
        return Ok(());
    }
    host_ok(host).map(|_| ()).map_err(|e| e.to_string())
}

/// Parses one `--probe` value (some expand to several probes).
pub fn parse(spec: &str) -> Result<Vec<Probe>> {
    let (kind, rest) = spec.split_once(':').unwrap_or((spec, ""));
    let host = || -> Result<Option<String>> {
        if rest.is_empty() {
            Ok(None)
        } else {
            host_ok(rest).map(Some)
        }
    };
    Ok(match kind {
        "agent" if rest.is_empty() => vec![Probe::Agent],
        "ping" => vec![Probe::Ping(host()?)],
        "ssh" => vec![Probe::Ssh(host()?)],
        "tcp" => {
            let (h, p) = rest.rsplit_once(':').ok_or_else(|| {
                Error::usage(format!(
                    "--probe {spec}: expected tcp:HOST:PORT or tcp::PORT"
                ))
            })?;
            let port = p
                .parse()
                .map_err(|_| Error::usage(format!("--probe {spec}: bad port")))?;
            vec![Probe::Tcp(
                if h.is_empty() {
                    None
                } else {
                    Some(host_ok(h)?)
                },
                port,
            )]
        }
        "http" => {
            let (url, status) = match rest.rsplit_once('=') {
                Some((u, s)) if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() => {
                    (u, s.parse().map_err(|_| Error::usage("bad status"))?)
                }
                _ => (rest, 200),
            };
            url_ok(url)
                .map_err(|why| Error::usage(format!("--probe {}: {why}", spec.escape_debug())))?;
            vec![Probe::Http(url.into(), status)]
        }
        "monitoring" => {
            let h = if rest.is_empty() {
                "{ip}".to_string()
            } else {
                host_ok(rest)?
            };
            vec![
                Probe::Http(format!("http://{h}:9090/-/healthy"), 200),
                Probe::Http(format!("http://{h}:3000/api/health"), 200),
                Probe::Http(format!("http://{h}:9093/-/healthy"), 200),
            ]
        }
        _ => {
            return Err(Error::usage(format!(
                "unknown probe '{spec}': agent, ping:HOST, tcp:HOST:PORT, ssh:HOST, http:URL[=STATUS], monitoring[:HOST]"
            )));
        }
    })
}

/// The first IP address in a guest config (`ipconfig0: ip=…` for VMs, `netN: …,ip=…` for CTs).
pub fn config_ip(config: &str) -> Option<String> {
    for line in config.lines() {
        let (k, v) = line.split_once(':')?;
        if !(k.starts_with("ipconfig") || k.starts_with("net")) {
            continue;
        }
        for part in v.trim().split(',') {
            if let Some(ip) = part.strip_prefix("ip=")
                && ip != "dhcp"
                && ip != "manual"
            {
                return Some(ip.split('/').next().unwrap_or(ip).to_string());
            }
        }
    }
    None
}

pub struct ProbeTarget<'a> {
    pub transport: &'a dyn Transport,
    pub vmid: u64,
    pub lxc: bool,
    pub ip: Option<String>,
    pub timeout: Duration,
    /// The HTTP(S) client, with the TLS trust of `--ca` / `--fingerprint`.
    pub http: Option<&'a ureq::Agent>,
}

/// The probe's host, else the IP from the restored guest's config, checked like a flag:
/// a config is what the archive says, not what the admin typed.
fn resolve(host: &Option<String>, t: &ProbeTarget) -> std::result::Result<String, String> {
    let h = host
        .clone()
        .or_else(|| t.ip.clone())
        .ok_or_else(|| "no host given and no IP in the guest's config".to_string())?;
    host_ok(&h).map_err(|e| e.to_string())
}

fn connect(host: &str, port: u16, timeout: Duration) -> std::result::Result<TcpStream, String> {
    let addr = (host.trim_matches(['[', ']']), port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("no address for {host}"))?;
    let s =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("{host}:{port}: {e}"))?;
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.set_write_timeout(Some(timeout));
    Ok(s)
}

/// Why a probe cannot check this guest at all, to be said in the record rather than
/// failed: a container has no guest agent, and over the API there is no `pct exec`.
pub fn cannot_check(p: &Probe, t: &ProbeTarget) -> Option<&'static str> {
    (*p == Probe::Agent && t.lxc && !t.transport.has_shell()).then_some(
        "not checked: a container has no guest agent and `pct exec` has no API method; check it over the network (--probe ping:HOST, tcp:HOST:PORT, ssh:HOST) or over SSH (--host)",
    )
}

/// One attempt.
pub fn run_once(p: &Probe, t: &ProbeTarget) -> std::result::Result<String, String> {
    match p {
        Probe::Agent => {
            let argv: Vec<String> = if t.lxc {
                vec![
                    "pct".into(),
                    "exec".into(),
                    t.vmid.to_string(),
                    "--".into(),
                    "true".into(),
                ]
            } else {
                vec![
                    "qm".into(),
                    "guest".into(),
                    "cmd".into(),
                    t.vmid.to_string(),
                    "ping".into(),
                ]
            };
            let out = t
                .transport
                .exec(&RemoteCommand::read(argv))
                .map_err(|e| e.to_string())?;
            if out.success() {
                Ok(if t.lxc {
                    "pct exec works".into()
                } else {
                    "guest agent answers".into()
                })
            } else {
                Err(out.stderr.trim().to_string())
            }
        }
        Probe::Ping(h) => {
            let host = resolve(h, t)?;
            let out = std::process::Command::new("ping")
                .args([
                    "-c",
                    "1",
                    "-W",
                    &t.timeout.as_secs().max(1).to_string(),
                    "--",
                    &host,
                ])
                .output()
                .map_err(|e| format!("cannot run ping: {e}"))?;
            if out.status.success() {
                Ok(format!("{host} answers"))
            } else {
                Err(format!("{host} does not answer"))
            }
        }
        Probe::Tcp(h, port) => {
            let host = resolve(h, t)?;
            connect(&host, *port, t.timeout).map(|_| format!("{host}:{port} accepts connections"))
        }
        Probe::Ssh(h) => {
            let host = resolve(h, t)?;
            let mut s = connect(&host, 22, t.timeout)?;
            let mut buf = [0u8; 64];
            let n = s.read(&mut buf).map_err(|e| format!("{host}:22: {e}"))?;
            let banner = String::from_utf8_lossy(&buf[..n]);
            if banner.starts_with("SSH-") {
                Ok(banner.trim().to_string())
            } else {
                Err(format!("{host}:22 is not SSH"))
            }
        }
        Probe::Http(url, want) => {
            let url = match &t.ip {
                Some(ip) => url.replace("{ip}", &host_ok(ip).map_err(|e| e.to_string())?),
                None if url.contains("{ip}") => return Err("no IP in the guest's config".into()),
                None => url.clone(),
            };
            let agent = t.http.ok_or("no HTTP client (TLS settings unusable)")?;
            let status = match agent.get(&url).timeout(t.timeout).call() {
                Ok(r) => r.status(),
                Err(ureq::Error::Status(code, _)) => code,
                Err(ureq::Error::Transport(e)) => return Err(format!("{url}: {e}")),
            };
            if status == *want {
                Ok(format!("{url} answered {status}"))
            } else {
                Err(format!("{url} answered {status}, expected {want}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(parse("agent").ok(), Some(vec![Probe::Agent]));
        assert_eq!(
            parse("tcp:10.0.0.5:22").ok(),
            Some(vec![Probe::Tcp(Some("10.0.0.5".into()), 22)])
        );
        assert_eq!(parse("tcp::443").ok(), Some(vec![Probe::Tcp(None, 443)]));
        assert_eq!(
            parse("http:http://10.0.0.5:9090/-/healthy=200").ok(),
            Some(vec![Probe::Http(
                "http://10.0.0.5:9090/-/healthy".into(),
                200
            )])
        );
        assert_eq!(parse("monitoring:10.0.0.30").map(|v| v.len()).ok(), Some(3));
        assert!(parse("tcp:a b:22").is_err());
        assert!(parse("http:https://x").is_ok());
        assert!(parse("http:ftp://x").is_err());
        assert!(parse("http:https://user:pw@x/").is_err());
        // Options and request splitting never get through.
        for bad in [
            "ping:-f",
            "ssh:--help",
            "tcp:-x:22",
            "http:http://h/ HTTP/1.0\r\nX: y",
            "http:http://h/a\nb",
            "http:http://-h:80/",
            "monitoring:-1",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse("http:http://[::1]:9090/-/healthy").is_ok());
        assert!(parse("telnet:x").is_err());
    }

    #[test]
    fn ips_from_config() {
        assert_eq!(
            config_ip("agent: 1\nipconfig0: ip=10.0.0.5/24,gw=10.0.0.1\n").as_deref(),
            Some("10.0.0.5")
        );
        assert_eq!(
            config_ip("net0: name=eth0,bridge=vmbr0,ip=192.168.1.9/24,type=veth\n").as_deref(),
            Some("192.168.1.9")
        );
        assert_eq!(config_ip("net0: name=eth0,ip=dhcp\n"), None);
    }
}
