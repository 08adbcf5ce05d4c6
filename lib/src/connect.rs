//! The connection flags every node-facing tool shares, and the transport they build.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::cli::{NoChangeArgs, values};
use crate::error::{Error, Result};
use crate::http::{self, TlsArgs};
use crate::listing::{self, Extras, Gathered, SelectArgs};
use crate::terraform::tfvars;
use crate::transport::api::{self, Secret};
use crate::transport::ssh_config::{self, ConfigSource};
use crate::transport::{Api, ApiOptions, Local, Ssh, SshOptions, Timeouts, Transport};
use crate::validate;

#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Connection")]
pub struct ConnectArgs {
    /// Proxmox VE node to reach over SSH (name or IP). Without --host (and without --dir),
    /// the Proxmox commands run on this machine.
    #[arg(long, short = 'H', value_name = "HOST", env = "PVEDR_HOST")]
    pub host: Option<String>,

    /// Use the Proxmox VE REST API at this URL instead of SSH. With an API token (--token);
    /// `https://HOST[:PORT]`, port 8006 by default. TLS is verified: system CAs, --ca, or
    /// --fingerprint.
    #[arg(long, value_name = "URL", env = "PVEDR_API", conflicts_with_all = ["host", "tfvars"])]
    pub api: Option<String>,

    /// The API token, `USER@REALM!TOKENID` (the realm follows the last `@`:
    /// `ops@example.com@pve!check`). Its secret is read from PVEDR_TOKEN_SECRET or
    /// --token-secret-file, never from the command line, and never printed.
    #[arg(long, value_name = "TOKEN", env = "PVEDR_TOKEN")]
    pub token: Option<String>,

    /// File whose first line is the API token's secret (e.g. a systemd credential): a
    /// regular file of at most 4 KiB.
    #[arg(
        long,
        value_name = "FILE",
        env = "PVEDR_TOKEN_SECRET_FILE",
        hide_short_help = true
    )]
    pub token_secret_file: Option<PathBuf>,

    /// SSH port. Default: the SSH config's Port for the host, else 22.
    #[arg(
        long,
        value_name = "PORT",
        help_heading = "SSH",
        hide_short_help = true
    )]
    pub port: Option<u16>,

    /// SSH user. Default: the SSH config's User for the host, else root.
    #[arg(
        long,
        value_name = "USER",
        help_heading = "SSH",
        hide_short_help = true
    )]
    pub user: Option<String>,

    /// Private key file. Default: the SSH config's IdentityFile for the host, then the SSH
    /// agent, then ~/.ssh/id_ed25519, ~/.ssh/id_rsa.
    #[arg(
        long,
        short = 'i',
        value_name = "FILE",
        help_heading = "SSH",
        hide_short_help = true
    )]
    pub identity: Option<PathBuf>,

    /// OpenSSH client configuration read for --host (Host patterns, HostName, Port, User,
    /// IdentityFile; a Host with ProxyJump or ProxyCommand is refused). Flags win over it.
    /// `none` reads none. Default: ~/.ssh/config when it exists.
    #[arg(
        long,
        value_name = "FILE",
        env = "PVEDR_SSH_CONFIG",
        help_heading = "SSH",
        hide_short_help = true
    )]
    pub ssh_config: Option<PathBuf>,

    /// known_hosts file the node's host key is checked against (default ~/.ssh/known_hosts).
    #[arg(
        long,
        value_name = "FILE",
        default_value = "~/.ssh/known_hosts",
        hide_default_value = true,
        help_heading = "SSH",
        hide_short_help = true
    )]
    pub known_hosts: Option<PathBuf>,

    /// Trust and record the host key of a node not yet in known_hosts. A changed key is
    /// never accepted.
    #[arg(long, help_heading = "SSH", hide_short_help = true)]
    pub accept_new_host_key: bool,

    /// Give up connecting after this long (30s, 1m, …).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = values::bound, hide_short_help = true)]
    pub connect_timeout: Duration,

    /// Give up on a read-only node command (a listing, a config) that sends nothing for this
    /// long: a hung storage is then reported, not waited on forever. Commands that change
    /// the node (restores, backups, deletions) may run up to 24h. Over --api each request's
    /// whole answer, retries included, must come within it; a task is followed up to 24h
    /// (Ctrl-C ends the wait), and one left running is named with the command that stops it.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = values::bound, hide_short_help = true)]
    pub command_timeout: Duration,

    /// Read the host (and node) from a Terraform tfvars file.
    #[arg(long, value_name = "FILE", hide_short_help = true)]
    pub tfvars: Option<PathBuf>,

    /// tfvars variable holding the host. Default: the first set of pve_host, proxmox_host,
    /// pm_api_url, proxmox_endpoint, virtual_environment_endpoint, proxmox_api_url (URLs are
    /// reduced to their host).
    #[arg(long, value_name = "NAME", requires = "tfvars", hide_short_help = true)]
    pub tfvars_host_var: Option<String>,

    /// tfvars variable holding the node name. Default: the first set of pve_node,
    /// proxmox_node, target_node, node_name.
    #[arg(long, value_name = "NAME", requires = "tfvars", hide_short_help = true)]
    pub tfvars_node_var: Option<String>,

    /// How the API's certificate is trusted (its own heading, "TLS").
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// What a listing of backups is read with: pve-ls-backups's flags, which backup-check
/// takes to gather the same records itself.
#[derive(Args, Debug, Clone, Default)]
pub struct ListingArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,

    /// `--dry-run`, `--yes`: accepted (the vocabulary of every tool), ignored here.
    #[command(flatten)]
    pub no_change: NoChangeArgs,

    #[command(flatten)]
    pub select: SelectArgs,
}

/// A transport and what the connection flags said about the node.
pub struct Connection {
    pub transport: Box<dyn Transport>,
    /// Node name from the tfvars file, if any.
    pub tfvars_node: Option<String>,
    /// The SSH port connected to (22 when not over SSH): with the transport's host it names
    /// the node for local locks.
    pub port: u16,
}

impl Connection {
    /// The listing asked of the node reached; a tfvars node is the one listed when `sel`
    /// names none.
    pub fn gather(&self, sel: &SelectArgs, extras: Extras) -> Result<Gathered> {
        listing::gather_remote(
            self.transport.as_ref(),
            sel,
            extras,
            self.tfvars_node.as_deref(),
        )
    }
}

impl ConnectArgs {
    /// Whether a node was named (--host, --tfvars or --api), rather than this machine.
    pub fn names_a_node(&self) -> bool {
        self.host.is_some() || self.tfvars.is_some() || self.api.is_some()
    }

    /// The bounds from `--connect-timeout` and `--command-timeout`, checked whether or not
    /// a host is given.
    fn durations(&self) -> (Duration, Timeouts) {
        let timeouts = Timeouts {
            read: self.command_timeout,
            ..Timeouts::default()
        };
        (self.connect_timeout, timeouts)
    }

    pub fn connect(&self) -> Result<Connection> {
        let (connect_timeout, timeouts) = self.durations();
        if let Some(url) = &self.api {
            return self.connect_api(url, connect_timeout, timeouts);
        }
        if self.token.is_some() || self.token_secret_file.is_some() {
            return Err(Error::usage(
                "--token and --token-secret-file go with --api URL",
            ));
        }
        let mut host = self.host.clone();
        let mut tfvars_node = None;
        if let Some(path) = &self.tfvars {
            let t = tfvars::read(
                path,
                self.tfvars_host_var.as_deref(),
                self.tfvars_node_var.as_deref(),
            )?;
            if host.is_none() {
                host = t.host;
                if host.is_none() {
                    return Err(Error::usage(format!(
                        "{}: no host variable found (tried {}); name it with --tfvars-host-var",
                        path.display(),
                        tfvars::DEFAULT_HOST_VARS.join(", ")
                    )));
                }
            }
            if let Some(n) = &t.node {
                validate::node(n)?;
            }
            tfvars_node = t.node;
        }
        let (transport, port): (Box<dyn Transport>, u16) = match host {
            None => (Box::new(Local { timeouts }), 22),
            Some(h) => {
                let mut o = self.ssh_options(&h)?;
                o.connect_timeout = connect_timeout;
                o.timeouts = timeouts;
                let port = o.port;
                (Box::new(Ssh::new(o)), port)
            }
        };
        Ok(Connection {
            transport,
            tfvars_node,
            port,
        })
    }

    /// How to reach `host`: the flags, else the SSH config's values for it, else defaults.
    /// The host key is checked under the real HostName and Port.
    fn ssh_options(&self, host: &str) -> Result<SshOptions> {
        validate_host(host)?;
        let source =
            ConfigSource::from_flag(self.ssh_config.as_deref().map(expand_home).as_deref());
        let flags = ssh_config::Overrides {
            user: self.user.as_deref(),
            port: self.port,
        };
        let c = ssh_config::resolve(&source, host, flags)?;
        validate_host(&c.host_name)?;
        let mut o = SshOptions::new(c.host_name);
        o.port = self.port.or(c.port).unwrap_or(22);
        o.user = self
            .user
            .clone()
            .or(c.user)
            .unwrap_or_else(|| "root".into());
        validate_user(&o.user)?;
        o.identity = self.identity.clone();
        o.config_identities = c.identity_files;
        o.known_hosts = self.known_hosts.as_ref().map(|p| expand_home(p));
        o.accept_new_host_key = self.accept_new_host_key;
        Ok(o)
    }
}

impl ConnectArgs {
    fn connect_api(&self, url: &str, connect: Duration, timeouts: Timeouts) -> Result<Connection> {
        let base = http::base_url(url)?;
        let token = self
            .token
            .as_deref()
            .ok_or_else(|| Error::usage("--api needs --token USER@REALM!TOKENID"))?;
        let token = api::token_id(token)?.to_string();
        let secret = Secret::find(self.token_secret_file.as_deref())?;
        let transport = Api::new(ApiOptions {
            base,
            token,
            secret,
            tls: self.tls.clone(),
            connect_timeout: connect,
            timeouts,
        })?;
        Ok(Connection {
            transport: Box::new(transport),
            tfvars_node: None,
            port: 22,
        })
    }
}

fn expand_home(p: &std::path::Path) -> PathBuf {
    match (p.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => p.to_path_buf(),
    }
}

/// A login name: printable, no spaces (it reaches messages and the server, never a shell).
fn validate_user(u: &str) -> Result<()> {
    let ok = !u.is_empty()
        && u.len() <= 64
        && !u.starts_with('-')
        && u.bytes().all(|c| c.is_ascii_graphic() && c != b'@');
    validate::require(ok, "SSH user", u, "")
}

/// A host name or IP address: no spaces, no shell or option characters.
fn validate_host(h: &str) -> Result<()> {
    let ok = !h.is_empty()
        && h.len() <= 253
        && !h.starts_with('-')
        && h.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b':' | b'_'));
    validate::require(ok, "host", h, "")
}
