//! Trusting one certificate by its SHA-256 fingerprint (of the DER, as `pvenode cert info`
//! and `openssl x509 -fingerprint -sha256` print it). The handshake signature is still
//! verified, so only the holder of that certificate's key gets through.

use std::fmt;
use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::SignatureScheme;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};

#[derive(Clone, PartialEq, Eq)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// `AA:BB:…` (any case) or 64 hex digits.
    pub fn parse(s: &str) -> Option<Fingerprint> {
        let hex: String = s.trim().chars().filter(|&c| c != ':').collect();
        if hex.len() != 64 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Fingerprint(out))
    }

    pub fn parse_arg(s: &str) -> Result<Fingerprint, String> {
        Fingerprint::parse(s)
            .ok_or_else(|| "a SHA-256 fingerprint: 32 bytes as hex, AA:BB:… or plain".to_string())
    }

    pub fn of(der: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(der).into())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|b| format!("{b:02X}")).collect();
        f.write_str(&parts.join(":"))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[derive(Debug)]
pub struct Pinned {
    want: Fingerprint,
    provider: Arc<CryptoProvider>,
}

/// The server's certificate is not the pinned one.
#[derive(Debug)]
struct PinMismatch {
    got: Fingerprint,
    want: Fingerprint,
}

impl fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the server's certificate has fingerprint {}, not the pinned {}",
            self.got, self.want
        )
    }
}

impl std::error::Error for PinMismatch {}

impl Pinned {
    pub fn new(want: Fingerprint, provider: Arc<CryptoProvider>) -> Pinned {
        Pinned { want, provider }
    }
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = Fingerprint::of(end_entity.as_ref());
        if got == self.want {
            Ok(ServerCertVerified::assertion())
        } else {
            // A certificate error (typed, so callers need not read the text), with both
            // fingerprints in its message.
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Other(rustls::OtherError(Arc::new(PinMismatch {
                    got,
                    want: self.want.clone(),
                }))),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_as_printed() {
        let colons = (0..32)
            .map(|i| format!("{i:02x}"))
            .collect::<Vec<_>>()
            .join(":");
        let fp = Fingerprint::parse(&colons).expect("colons");
        assert_eq!(
            Fingerprint::parse(&colons.replace(':', "")),
            Some(fp.clone())
        );
        assert_eq!(fp.to_string(), colons.to_uppercase());
        assert!(Fingerprint::parse("AB:CD").is_none());
        assert!(Fingerprint::parse(&"zz".repeat(32)).is_none());
    }
}
