//! TLS for Redfish: a rustls client configuration for each [`Tls`] policy, the
//! pinned-leaf and accept-anything certificate verifiers, and the ureq connector
//! that wraps ureq's TCP transport in that configuration.

use std::fmt;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, OtherError,
    RootCertStore, SignatureScheme, StreamOwned,
};
use sha2::{Digest, Sha256};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, Transport,
    TransportAdapter,
};

use super::Tls;
use crate::{Error, Result};

/// The largest CA file read.
const MAX_CA_FILE: u64 = 4 << 20;

/// Parses a SHA-256 certificate fingerprint: 64 hex digits, with or without
/// colons (or spaces) between the bytes, optionally prefixed by `sha256:` or by
/// `sha256 Fingerprint=` as `openssl x509 -noout -fingerprint -sha256` prints it.
///
/// ```
/// let fp = slipway_bmc::redfish::parse_fingerprint(
///     "sha256:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff",
/// ).unwrap();
/// assert_eq!(fp[10], 0xaa);
/// ```
pub fn parse_fingerprint(s: &str) -> std::result::Result<[u8; 32], String> {
    let mut t = s.trim();
    for prefix in ["sha256 fingerprint=", "sha256:", "sha256="] {
        if t.len() >= prefix.len()
            && t.is_char_boundary(prefix.len())
            && t[..prefix.len()].eq_ignore_ascii_case(prefix)
        {
            t = t[prefix.len()..].trim_start();
            break;
        }
    }
    let digits: Vec<u8> = t
        .bytes()
        .filter(|b| !matches!(b, b':' | b' ' | b'-'))
        .collect();
    if let Some(bad) = digits.iter().find(|b| !b.is_ascii_hexdigit()) {
        return Err(format!(
            "not a SHA-256 fingerprint: unexpected character {:?}",
            char::from(*bad)
        ));
    }
    if digits.len() != 64 {
        return Err(format!(
            "not a SHA-256 fingerprint: expected 32 bytes (64 hex digits), got {} hex digits",
            digits.len()
        ));
    }
    let mut out = [0u8; 32];
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        let hex = std::str::from_utf8(pair).map_err(|e| e.to_string())?;
        out[i] = u8::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// Formats a fingerprint as `sha256:AB:CD:...`, the form [`parse_fingerprint`] reads.
pub fn format_fingerprint(fp: &[u8; 32]) -> String {
    let hex: Vec<String> = fp.iter().map(|b| format!("{b:02X}")).collect();
    format!("sha256:{}", hex.join(":"))
}

/// The SHA-256 fingerprint of a DER certificate, as [`Tls::Fingerprint`] pins it.
pub fn certificate_fingerprint(der: &[u8]) -> [u8; 32] {
    Sha256::digest(der).into()
}

/// The rustls configuration for a policy.
pub(crate) fn client_config(tls: &Tls) -> Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(format!("TLS setup: {e}")))?;
    let algs = provider.signature_verification_algorithms;
    let verifier: Arc<dyn ServerCertVerifier> = match tls {
        Tls::SystemRoots => {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = RootCertStore::empty();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                let why: Vec<String> = found.errors.iter().map(|e| e.to_string()).collect();
                return Err(Error::Tls(format!(
                    "no usable system root certificates{}{}",
                    if why.is_empty() { "" } else { ": " },
                    why.join("; ")
                )));
            }
            webpki_verifier(roots, provider)?
        }
        Tls::CaFile(path) => webpki_verifier(read_ca_file(path)?, provider)?,
        Tls::Fingerprint(sha256) => Arc::new(PinnedLeaf {
            sha256: *sha256,
            algs,
        }),
        Tls::Insecure => Arc::new(AcceptAnything { algs }),
    };
    Ok(Arc::new(
        builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth(),
    ))
}

fn webpki_verifier(
    roots: RootCertStore,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>> {
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| Error::Tls(format!("TLS setup: {e}")))?;
    Ok(verifier)
}

/// The certificates of a PEM (or single DER) CA file.
fn read_ca_file(path: &Path) -> Result<RootCertStore> {
    let shown = path.display();
    let data = (|| {
        let mut data = Vec::new();
        std::fs::File::open(path)?
            .take(MAX_CA_FILE + 1)
            .read_to_end(&mut data)?;
        Ok::<_, std::io::Error>(data)
    })()
    .map_err(|e| Error::Tls(format!("CA file {shown}: {e}")))?;
    if data.len() as u64 > MAX_CA_FILE {
        return Err(Error::Tls(format!(
            "CA file {shown}: larger than {MAX_CA_FILE} bytes"
        )));
    }
    let certs: Vec<CertificateDer<'static>> = if data.starts_with(&[0x30]) {
        vec![CertificateDer::from(data)]
    } else {
        CertificateDer::pem_slice_iter(&data)
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::Tls(format!("CA file {shown}: {e}")))?
    };
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(Error::Tls(format!(
            "CA file {shown}: no usable certificate ({ignored} unparsable)"
        )));
    }
    Ok(roots)
}

/// Accepts exactly one leaf certificate, named by its SHA-256, whatever its
/// issuer, names or dates; the handshake signatures are still checked against it.
#[derive(Debug)]
struct PinnedLeaf {
    sha256: [u8; 32],
    algs: WebPkiSupportedAlgorithms,
}

/// The error a [`PinnedLeaf`] gives for another certificate.
#[derive(Debug, thiserror::Error)]
#[error(
    "certificate fingerprint mismatch: the BMC presented {}, the pinned fingerprint is {}",
    format_fingerprint(.got),
    format_fingerprint(.expected)
)]
struct PinMismatch {
    expected: [u8; 32],
    got: [u8; 32],
}

impl ServerCertVerifier for PinnedLeaf {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let got = certificate_fingerprint(end_entity.as_ref());
        if got == self.sha256 {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                OtherError(Arc::new(PinMismatch {
                    expected: self.sha256,
                    got,
                })),
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// [`Tls::Insecure`]: accepts any certificate and any handshake signature.
#[derive(Debug)]
struct AcceptAnything {
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// A TLS failure, carried through ureq as `ureq::Error::Other` and turned into
/// [`Error::Tls`] by the HTTP layer.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct TlsFailure(pub(crate) String);

/// A readable account of a rustls failure.
fn describe(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(CertificateError::Other(other)) => other.to_string(),
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "certificate not trusted: unknown issuer (self-signed, or signed by a CA that is \
             not trusted here); give its CA file or pin its SHA-256 fingerprint"
                .to_string()
        }
        rustls::Error::InvalidCertificate(c) => format!("certificate not accepted: {c}"),
        other => other.to_string(),
    }
}

/// Wraps the chained (TCP) transport in TLS with a fixed rustls configuration.
#[derive(Clone)]
pub(crate) struct TlsConnector {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
}

impl TlsConnector {
    /// A connector for `host` (a DNS name or an IP address).
    pub(crate) fn new(config: Arc<ClientConfig>, host: &str) -> Result<Self> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let server_name = ServerName::try_from(bare.to_string()).map_err(|_| {
            Error::Tls(format!("{host:?} is neither a host name nor an IP address"))
        })?;
        Ok(TlsConnector {
            config,
            server_name,
        })
    }
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl<In: Transport> Connector<In> for TlsConnector {
    type Out = Either<In, TlsTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> std::result::Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else {
            return Ok(None);
        };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let mut conn = ClientConnection::new(self.config.clone(), self.server_name.clone())
            .map_err(|e| ureq::Error::Other(Box::new(TlsFailure(describe(&e)))))?;
        let mut sock = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        sock.set_timeout(details.timeout);
        while conn.is_handshaking() {
            if let Err(e) = conn.complete_io(&mut sock) {
                return Err(
                    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                        Some(tls) => ureq::Error::Other(Box::new(TlsFailure(describe(tls)))),
                        None => ureq::Error::from(e),
                    },
                );
            }
        }
        let buffers = LazyBuffers::new(
            details.config.input_buffer_size(),
            details.config.output_buffer_size(),
        );
        Ok(Some(Either::B(TlsTransport {
            buffers,
            stream: StreamOwned { conn, sock },
        })))
    }
}

/// A TLS connection as a ureq transport.
pub(crate) struct TlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsTransport").finish_non_exhaustive()
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(
        &mut self,
        amount: usize,
        timeout: NextTimeout,
    ) -> std::result::Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> std::result::Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const HEX: &str = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";

    #[test]
    fn fingerprints_parse_in_common_spellings() {
        let want = parse_fingerprint(HEX).expect("plain hex");
        assert_eq!(want[0], 0x00);
        assert_eq!(want[31], 0xff);
        let colons = format_fingerprint(&want);
        assert!(colons.starts_with("sha256:00:11:"));
        assert_eq!(parse_fingerprint(&colons), Ok(want));
        assert_eq!(
            parse_fingerprint(&colons["sha256:".len()..].to_lowercase()),
            Ok(want)
        );
        assert_eq!(
            parse_fingerprint(&format!(
                "sha256 Fingerprint={}",
                &colons["sha256:".len()..]
            )),
            Ok(want)
        );
        assert_eq!(parse_fingerprint(&format!("SHA256:{HEX}")), Ok(want));
    }

    #[test]
    fn bad_fingerprints_say_why() {
        assert!(
            parse_fingerprint("abcd")
                .unwrap_err()
                .contains("got 4 hex digits")
        );
        assert!(
            parse_fingerprint(&format!("{HEX}00"))
                .unwrap_err()
                .contains("66 hex digits")
        );
        assert!(
            parse_fingerprint(&HEX.replace('a', "g"))
                .unwrap_err()
                .contains("'g'")
        );
        assert!(parse_fingerprint("").is_err());
        assert!(parse_fingerprint("sha256:é").is_err());
    }

    #[test]
    fn missing_ca_file_is_a_tls_error() {
        let err = client_config(&Tls::CaFile("/nonexistent/ca.pem".into())).unwrap_err();
        assert!(matches!(err, Error::Tls(ref m) if m.contains("/nonexistent/ca.pem")));
    }

    #[test]
    fn every_policy_builds() {
        client_config(&Tls::Insecure).expect("insecure");
        client_config(&Tls::Fingerprint([7; 32])).expect("fingerprint");
    }
}
