//! The simulator's HTTPS front (`tests/sim/pvesim-api`): Proxmox's REST API of the entry
//! node on a loopback port, with a certificate made here by the `openssl` CLI as Proxmox
//! makes a node's: signed by the cluster's own CA.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use crate::{SimNode, sim_dir};

pub struct ApiFront {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    root: PathBuf,
}

fn openssl(args: &[&str]) {
    crate::stdout_of(
        Command::new("openssl").args(args),
        &format!("openssl {args:?}"),
    );
}

/// A cluster CA and a node certificate it signs, made as pve-cluster `src/PVE/Cluster/Setup.pm`
/// makes them (`gen_pveca_cert`: a CA whose subject carries a unique name, so no system CA
/// matches it; `gen_pve_ssl_cert`: a `CA:FALSE` server leaf for `127.0.0.1` and `localhost`).
/// Returns the node's certificate and key.
fn node_certificate(d: &Path) -> (PathBuf, PathBuf) {
    let dir = d.to_str().expect("a UTF-8 temporary directory");
    let f = |name: &str| format!("{dir}/{name}");
    let unique = d.file_name().unwrap_or_default().to_string_lossy();
    let ca_subj = format!("/CN=Proxmox Virtual Environment/OU={unique}/O=PVE Cluster Manager CA/");
    let (ca, ca_key) = (f("pve-root-ca.pem"), f("pve-root-ca.key"));
    let (crt, key, csr) = (f("pve-ssl.pem"), f("pve-ssl.key"), f("pve-ssl.csr"));
    #[rustfmt::skip]
    openssl(&[
        "req", "-batch", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout", &ca_key, "-out", &ca, "-subj", &ca_subj,
    ]);
    #[rustfmt::skip]
    openssl(&[
        "req", "-batch", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr,
        "-subj", "/OU=PVE Cluster Node/O=Proxmox Virtual Environment/CN=localhost",
        "-addext", "basicConstraints=CA:FALSE",
        "-addext", "extendedKeyUsage=serverAuth",
        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
    ]);
    #[rustfmt::skip]
    openssl(&[
        "x509", "-req", "-in", &csr, "-days", "2", "-out", &crt,
        "-CAkey", &ca_key, "-CA", &ca, "-CAcreateserial", "-copy_extensions", "copyall",
    ]);
    (PathBuf::from(crt), PathBuf::from(key))
}

impl ApiFront {
    /// Starts `pvesim-api` for `sim`, entry node = [`SimNode::node`].
    pub fn start(sim: &SimNode) -> ApiFront {
        ApiFront::start_with(sim, &[])
    }

    /// As [`ApiFront::start`], with extra environment for the server, e.g.
    /// `PVESIM_API_TASK_DELAY` (seconds a worker stays `running` first) or
    /// `PVESIM_API_AUTH_DELAY` (Proxmox delays a 401 by 3 s; default 3).
    pub fn start_with(sim: &SimNode, env: &[(&str, &str)]) -> ApiFront {
        let dir = tempfile::Builder::new()
            .prefix("pvesim-api")
            .tempdir()
            .unwrap();
        let (cert, key) = node_certificate(dir.path());
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let mut cmd = Command::new("python3");
        cmd.arg(sim_dir().join("pvesim-api"))
            .arg("--root")
            .arg(sim.root())
            .args(["--node", sim.node()])
            .arg("--cert")
            .arg(&cert)
            .arg("--key")
            .arg(&key)
            .env("TZ", sim.tz())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("pvesim-api starts");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let port = line
            .strip_prefix("listening ")
            .and_then(|p| p.trim().parse::<u16>().ok());
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            let err = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
            panic!("pvesim-api did not start: {line:?} {err}");
        };
        ApiFront {
            child,
            port,
            dir,
            root: sim.root().to_path_buf(),
        }
    }

    /// `https://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster CA's certificate (PEM, Proxmox's `/etc/pve/pve-root-ca.pem`), to pass as
    /// `--ca`.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join("pve-root-ca.pem")
    }

    /// The tools' flags for this front with `token`, trusting its CA (`--ca`).
    pub fn args(&self, token: &str) -> Vec<String> {
        let ca = self.ca_path().display().to_string();
        ["--api", &self.url(), "--token", token, "--ca", &ca]
            .map(String::from)
            .to_vec()
    }

    /// As [`ApiFront::args`], pinning the certificate by `--fingerprint` instead of the CA.
    pub fn pinned_args(&self, token: &str) -> Vec<String> {
        let fp = self.fingerprint();
        ["--api", &self.url(), "--token", token, "--fingerprint", &fp]
            .map(String::from)
            .to_vec()
    }

    /// A command for one of the workspace's tools on this front: [`ApiFront::args`] and the
    /// token's secret in `PVEDR_TOKEN_SECRET`.
    pub fn bin(&self, tool: &str, token: &str, secret: &str) -> assert_cmd::Command {
        let mut cmd = crate::bin(tool);
        cmd.args(self.args(token)).env("PVEDR_TOKEN_SECRET", secret);
        cmd
    }

    /// The node's certificate the server presents (Proxmox's `pve-ssl.pem`).
    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("pve-ssl.pem")
    }

    /// SHA-256 of the certificate's DER, upper-case hex with colons, as `pvenode cert info`
    /// prints it (`AB:CD:…`).
    pub fn fingerprint(&self) -> String {
        let out = Command::new("openssl")
            .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
            .arg(self.cert_path())
            .output()
            .expect("openssl runs");
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        text.trim()
            .rsplit('=')
            .next()
            .unwrap_or_default()
            .to_uppercase()
    }

    /// Adds an API token `USER@REALM!NAME` with `secret` and its ACL entries
    /// (`[{"path": "/", "roles": ["PVEAuditor"], "privs": [...], "propagate": true}]`) to the
    /// simulation's `tokens.json`. A token of `root@pam` given `null` as ACL is a token without
    /// privilege separation (everything root may do).
    pub fn add_token(&self, tokenid: &str, secret: &str, acl: Value) {
        add_token(&self.root, tokenid, secret, acl);
    }

    /// The server's stderr so far (for a failing test's message).
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

pub(crate) fn add_token(root: &Path, tokenid: &str, secret: &str, acl: Value) {
    let p = root.join("tokens.json");
    let mut tokens = std::fs::read_to_string(&p)
        .ok()
        .and_then(|t| serde_json::from_str::<Vec<Value>>(&t).ok())
        .unwrap_or_default();
    tokens.retain(|t| t["tokenid"] != tokenid);
    let entry = if acl.is_null() {
        json!({"tokenid": tokenid, "secret": secret, "privsep": 0, "acl": []})
    } else {
        json!({"tokenid": tokenid, "secret": secret, "acl": acl})
    };
    tokens.push(entry);
    std::fs::write(&p, serde_json::to_vec_pretty(&tokens).unwrap()).unwrap();
}

impl Drop for ApiFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
