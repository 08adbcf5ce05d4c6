//! What OpenSSH's client configuration (`~/.ssh/config`, or `--ssh-config FILE`) says about
//! a host: its real name, port, user and key files, read with the `ssh2-config` parser so
//! `--host pve1` reaches what `ssh pve1` reaches. Flags given on the command line win over
//! it. A Host that goes through a jump host (`ProxyJump`, `ProxyCommand`) is refused: pvedr
//! connects directly, and connecting elsewhere than the user meant is worse than an error.

use std::io::Read;
use std::path::{Path, PathBuf};

use ssh2_config::{HostParams, ParseRule, SshConfig};

use crate::error::{Error, Result};

/// A client configuration is a few KiB; a larger file is not one.
const MAX_CONFIG: u64 = 1024 * 1024;

/// Which configuration file to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// `~/.ssh/config` when it exists (no file is no configuration).
    Default,
    /// A file named with `--ssh-config`: it must be readable.
    File(PathBuf),
    /// `--ssh-config none`, as `ssh -F none`.
    None,
}

impl ConfigSource {
    pub fn from_flag(flag: Option<&Path>) -> ConfigSource {
        match flag {
            None => ConfigSource::Default,
            Some(p) if p == Path::new("none") => ConfigSource::None,
            Some(p) => ConfigSource::File(p.to_path_buf()),
        }
    }
}

/// What the configuration sets for one host (unset fields: pvedr's defaults).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostConfig {
    /// The real name to connect to (`HostName`), else the name given.
    pub host_name: String,
    pub port: Option<u16>,
    pub user: Option<String>,
    /// `IdentityFile`s in order, `~` and `%h %r %p %d %n %%` expanded (tried as OpenSSH
    /// does: those that exist).
    pub identity_files: Vec<PathBuf>,
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

/// What the command line sets, which wins over the file (and is what `%r`, `%p` expand to).
#[derive(Debug, Clone, Copy, Default)]
pub struct Overrides<'a> {
    pub user: Option<&'a str>,
    pub port: Option<u16>,
}

/// The configuration for `alias`: an unreadable or invalid file is a usage error.
pub fn resolve(source: &ConfigSource, alias: &str, flags: Overrides) -> Result<HostConfig> {
    let path = match source {
        ConfigSource::None => return Ok(plain(alias)),
        ConfigSource::File(p) => p.clone(),
        ConfigSource::Default => match home().map(|h| h.join(".ssh/config")) {
            Some(p) if p.exists() => p,
            _ => return Ok(plain(alias)),
        },
    };
    let config = read(&path)?;
    host_config(&path, &config.query(alias), alias, flags)
}

fn plain(alias: &str) -> HostConfig {
    HostConfig {
        host_name: alias.to_string(),
        ..HostConfig::default()
    }
}

fn read(path: &Path) -> Result<SshConfig> {
    let bad = |what: String| Error::usage(format!("SSH config {}: {what}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    let mut text = Vec::new();
    file.take(MAX_CONFIG + 1)
        .read_to_end(&mut text)
        .map_err(|e| bad(format!("cannot read it: {e}")))?;
    if text.len() as u64 > MAX_CONFIG {
        return Err(bad(format!("larger than {MAX_CONFIG} bytes")));
    }
    let mut parser = SshConfig::default();
    if let Some(h) = home() {
        parser = parser.home_dir(h);
    }
    // OpenSSH adds keywords with each release and the parser's list lags: a keyword it does
    // not know is skipped, as are those it knows but does not model. Bad values still fail.
    parser
        .parse(
            &mut text.as_slice(),
            ParseRule::ALLOW_UNKNOWN_FIELDS | ParseRule::ALLOW_UNSUPPORTED_FIELDS,
        )
        .map_err(|e| bad(e.to_string()))
}

fn host_config(path: &Path, p: &HostParams, alias: &str, flags: Overrides) -> Result<HostConfig> {
    refuse_proxies(path, p, alias)?;
    let host_name = match &p.host_name {
        Some(h) => {
            expand(h, &Tokens::host_only(alias)).map_err(|e| invalid(path, "HostName", e))?
        }
        None => alias.to_string(),
    };
    let port = p.port.filter(|&port| port != 0);
    let user = p.user.clone();
    let tokens = Tokens {
        alias,
        host: &host_name,
        login: Some((
            flags.user.or(user.as_deref()).unwrap_or("root"),
            flags.port.or(port).unwrap_or(22),
        )),
    };
    let identity_files = p
        .identity_file
        .iter()
        .flatten()
        .map(|f| {
            expand(&f.to_string_lossy(), &tokens)
                .map(PathBuf::from)
                .map_err(|e| invalid(path, "IdentityFile", e))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(HostConfig {
        host_name,
        port,
        user,
        identity_files,
    })
}

fn invalid(path: &Path, keyword: &str, why: String) -> Error {
    Error::usage(format!("SSH config {}: {keyword}: {why}", path.display()))
}

/// A jump host is not followed (see the module doc): say so instead of connecting directly.
fn refuse_proxies(path: &Path, p: &HostParams, alias: &str) -> Result<()> {
    let jump = p
        .proxy_jump
        .as_ref()
        .filter(|j| !j.iter().all(|h| h.eq_ignore_ascii_case("none")))
        .map(|j| ("ProxyJump", j.join(",")));
    let command = p
        .unsupported_fields
        .iter()
        .find(|(k, v)| k.eq_ignore_ascii_case("proxycommand") && !is_none(v))
        .map(|(_, v)| ("ProxyCommand", v.join(" ")));
    match jump.or(command) {
        None => Ok(()),
        Some((keyword, value)) => Err(Error::usage(format!(
            "SSH config {}: Host {alias} goes through {keyword} {value}, which pvedr does not \
             follow (it connects directly). Forward a port instead (`ssh -N -L 2222:NODE:22 \
             JUMP`, then --host localhost --port 2222), run pvedr on the jump host, or \
             give --ssh-config none",
            path.display(),
            value = crate::msg::printable(&value),
        ))),
    }
}

fn is_none(v: &[String]) -> bool {
    v.len() == 1 && v[0].eq_ignore_ascii_case("none")
}

/// The values OpenSSH's `%` tokens stand for (ssh_config(5) TOKENS), those pvedr knows.
struct Tokens<'a> {
    alias: &'a str,
    host: &'a str,
    /// User and port, once known (IdentityFile); HostName takes only `%h` and `%%`.
    login: Option<(&'a str, u16)>,
}

impl<'a> Tokens<'a> {
    fn host_only(alias: &'a str) -> Self {
        Tokens {
            alias,
            host: alias,
            login: None,
        }
    }
}

/// Expands `%h %n %r %p %d %%`; any other token is an error, not a wrong path.
fn expand(s: &str, t: &Tokens) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match (chars.next(), t.login) {
            (Some('%'), _) => out.push('%'),
            (Some('h'), _) => out.push_str(t.host),
            (Some('n'), Some(_)) => out.push_str(t.alias),
            (Some('r'), Some((user, _))) => out.push_str(user),
            (Some('p'), Some((_, port))) => out.push_str(&port.to_string()),
            (Some('d'), Some(_)) => {
                let h = home().ok_or("%d needs HOME")?;
                out.push_str(&h.to_string_lossy());
            }
            (Some(x), _) => return Err(format!("the token %{x} is not supported here by pvedr")),
            (None, _) => return Err("a lone % at the end".into()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, alias: &str) -> Result<HostConfig> {
        let c = SshConfig::default()
            .home_dir("/home/u")
            .parse(
                &mut text.as_bytes(),
                ParseRule::ALLOW_UNKNOWN_FIELDS | ParseRule::ALLOW_UNSUPPORTED_FIELDS,
            )
            .map_err(|e| Error::usage(e.to_string()))?;
        host_config(
            Path::new("cfg"),
            &c.query(alias),
            alias,
            Overrides::default(),
        )
    }

    #[test]
    fn patterns_tokens_and_first_value_wins() {
        let c = parse(
            "Host pve-*\n HostName %h.lab\n User ops\n IdentityFile ~/.ssh/%r@%h:%p\n\
             Host *\n Port 2222\n User other\n",
            "pve-1",
        )
        .expect("parses");
        assert_eq!(c.host_name, "pve-1.lab");
        assert_eq!(c.user.as_deref(), Some("ops"));
        assert_eq!(c.port, Some(2222));
        assert_eq!(
            c.identity_files,
            vec![PathBuf::from("/home/u/.ssh/ops@pve-1.lab:2222")]
        );
    }

    #[test]
    fn tokens_expand_to_what_the_flags_set() {
        let c = SshConfig::default()
            .home_dir("/home/u")
            .parse(
                &mut "Host a\n User cfg\n IdentityFile ~/%r-%p\n".as_bytes(),
                ParseRule::STRICT,
            )
            .expect("parses");
        let flags = Overrides {
            user: Some("flag"),
            port: Some(2200),
        };
        let h = host_config(Path::new("cfg"), &c.query("a"), "a", flags).expect("config");
        assert_eq!(h.identity_files, vec![PathBuf::from("/home/u/flag-2200")]);
        let e = parse("Host a\n HostName %r.lab\n", "a")
            .unwrap_err()
            .to_string();
        assert!(e.contains("%r"), "{e}");
    }

    #[test]
    fn jump_hosts_and_unknown_tokens_are_refused() {
        let e = parse("Host a\n ProxyJump j\n", "a")
            .unwrap_err()
            .to_string();
        assert!(e.contains("ProxyJump j"), "{e}");
        let e = parse("Host a\n ProxyCommand nc %h %p\n", "a")
            .unwrap_err()
            .to_string();
        assert!(e.contains("ProxyCommand"), "{e}");
        assert!(parse("Host a\n ProxyJump none\n", "a").is_ok());
        let e = parse("Host a\n IdentityFile ~/%C\n", "a")
            .unwrap_err()
            .to_string();
        assert!(e.contains("%C"), "{e}");
        assert!(parse("Host a\n Port x\n", "a").is_err());
    }
}
