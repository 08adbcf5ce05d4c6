//! The one HTTP(S) client: the Proxmox API transport and `pve-restore`'s `http:` probes.
//!
//! ureq on rustls (ring). TLS is verified against the system CAs, a CA file (`--ca`), or a
//! pinned SHA-256 certificate fingerprint (`--fingerprint`, what `pvenode cert info`
//! prints: Proxmox nodes ship certificates signed by their own cluster CA). There is no
//! "insecure" mode.

pub mod pin;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::error::{Error, Result};

pub use pin::Fingerprint;

/// How the server's certificate is trusted.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "TLS")]
pub struct TlsArgs {
    /// PEM file of the CA(s) that signed the server's certificate (a Proxmox cluster's
    /// `/etc/pve/pve-root-ca.pem`), instead of the system's CAs: a regular file of at most
    /// 1 MiB.
    #[arg(long, value_name = "FILE", env = "PVEDR_CA", hide_short_help = true)]
    pub ca: Option<PathBuf>,

    /// Trust exactly the certificate with this SHA-256 fingerprint (`pvenode cert info`;
    /// `AA:BB:…` or plain hex), whoever signed it. A different certificate is refused
    /// before any request is sent.
    #[arg(
        long,
        value_name = "SHA256",
        env = "PVEDR_FINGERPRINT",
        value_parser = Fingerprint::parse_arg,
        hide_short_help = true
    )]
    pub fingerprint: Option<Fingerprint>,
}

/// Bounds on one request.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub connect: Duration,
    /// Silence allowed while reading or writing.
    pub io: Duration,
}

/// A client: one connection pool per host (keep-alive), shareable between threads.
pub fn agent(tls: &TlsArgs, bounds: Bounds) -> Result<ureq::Agent> {
    let config = client_config(tls)?;
    Ok(ureq::AgentBuilder::new()
        .tls_config(Arc::new(config))
        .timeout_connect(bounds.connect)
        .timeout_read(bounds.io)
        .timeout_write(bounds.io)
        .max_idle_connections_per_host(8)
        .redirects(0)
        .user_agent(concat!("pvedr/", env!("CARGO_PKG_VERSION")))
        .build())
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(tls: &TlsArgs) -> Result<rustls::ClientConfig> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Other(format!("TLS: {e}")))?;
    if let Some(fp) = &tls.fingerprint {
        let verifier = pin::Pinned::new(fp.clone(), provider);
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth());
    }
    let roots = match &tls.ca {
        Some(path) => ca_file(path)?,
        None => system_roots()?,
    };
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// A CA file's size at most: a cluster's CA bundle is a few KiB.
const MAX_CA_FILE: u64 = 1024 * 1024;

/// The certificates of a PEM file; none at all is an error (a wrong file). Only a regular
/// file is read (`--ca /dev/zero` or a FIFO would never end).
fn ca_file(path: &Path) -> Result<RootCertStore> {
    let file_err = |message: String| Error::File {
        path: path.to_path_buf(),
        message,
    };
    let pem = crate::fs::read_small(path, MAX_CA_FILE)?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| file_err(format!("not a PEM certificate: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| file_err(format!("unusable CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(file_err("holds no PEM certificate".into()));
    }
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(Error::usage(
            "no system CA certificates found: give --ca FILE or --fingerprint SHA256",
        ));
    }
    Ok(roots)
}

/// An `https://HOST[:PORT]` base URL, checked: no credentials, no path, no query.
pub fn base_url(s: &str) -> Result<String> {
    if s.contains('@') {
        // A user and password: the URL is not echoed, whatever the password holds.
        return Err(Error::usage(
            "--api: the URL (not shown) holds a user or password: give only https://HOST[:PORT]; the API takes a token (--token, its secret in PVEDR_TOKEN_SECRET or --token-secret-file)",
        ));
    }
    let bad = |why: &str| Error::usage(format!("--api '{}': {why}", s.escape_debug()));
    let rest = s
        .strip_prefix("https://")
        .ok_or_else(|| bad("must start with https:// (the API is only spoken over TLS)"))?;
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains(['/', '?', '#']) {
        return Err(bad("give only https://HOST[:PORT]"));
    }
    let ok = authority.len() <= 300
        && authority
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b':' | b'[' | b']'));
    if !ok || authority.starts_with('-') {
        return Err(bad("invalid host"));
    }
    let with_port = if authority.ends_with(']') || !has_port(authority) {
        format!("{authority}:8006")
    } else {
        authority.to_string()
    };
    Ok(format!("https://{with_port}"))
}

/// `host:port` or `[v6]:port` (a bare IPv6 address has several colons and no port).
fn has_port(authority: &str) -> bool {
    match authority.rsplit_once(':') {
        Some((h, p)) => {
            !p.is_empty()
                && p.bytes().all(|c| c.is_ascii_digit())
                && (h.ends_with(']') || !h.contains(':'))
        }
        None => false,
    }
}

/// A transport failure (no HTTP answer) as an error that says where.
pub fn transport_error(url: &str, e: &ureq::Transport) -> Error {
    match certificate_error(e) {
        Some(c) => {
            let (why, hint) = match c {
                // pvedr's own (a pinned fingerprint): rustls shows it with Debug.
                rustls::CertificateError::Other(o) => (o.0.to_string(), ""),
                rustls::CertificateError::UnknownIssuer => (e.to_string(), UNKNOWN_ISSUER_HINT),
                _ => (e.to_string(), ""),
            };
            Error::HostKey(format!(
                "{url}: the server's TLS certificate is not trusted: {why}{hint}"
            ))
        }
        None => Error::Http {
            url: url.to_string(),
            message: e.to_string(),
        },
    }
}

/// What to do about a stock Proxmox node, whose certificate its own cluster CA signed.
const UNKNOWN_ISSUER_HINT: &str = ". A Proxmox node's certificate is signed by its cluster's \
     own CA: copy /etc/pve/pve-root-ca.pem from the node and pass --ca FILE, or pin the \
     certificate with --fingerprint SHA256 as `pvenode cert info` prints it";

/// The certificate rustls refused, found in the error's chain (ureq wraps it in an
/// `io::Error`, whose `source` skips the wrapped error itself).
fn certificate_error(e: &ureq::Transport) -> Option<&rustls::CertificateError> {
    let mut err: &(dyn std::error::Error + 'static) = std::error::Error::source(e)?;
    // A chain is a few links long; the bound only keeps a cycle from looping.
    for _ in 0..16 {
        if let Some(rustls::Error::InvalidCertificate(c)) = err.downcast_ref::<rustls::Error>() {
            return Some(c);
        }
        let next = match err.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|i| i as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
        err = next?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert_eq!(
            base_url("https://pve1").ok().as_deref(),
            Some("https://pve1:8006")
        );
        assert_eq!(
            base_url("https://10.0.0.1:443/").ok().as_deref(),
            Some("https://10.0.0.1:443")
        );
        assert_eq!(
            base_url("https://[::1]").ok().as_deref(),
            Some("https://[::1]:8006")
        );
        for bad in [
            "http://pve1:8006",
            "pve1:8006",
            "https://u:p@pve1",
            "https://pve1/api2/json",
            "https://pve 1",
            "https://",
            "https://-x",
        ] {
            assert!(base_url(bad).is_err(), "{bad}");
        }
    }
}
