//! TLS for the operator API: a rustls server configuration from a PEM certificate
//! chain and its private key (HTTP/1.1 only, TLS 1.2 and 1.3, the ring provider).

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The largest certificate or key file read.
const MAX_PEM_FILE: u64 = 1 << 20;

/// Why no TLS configuration could be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A file is not PEM, or holds nothing of what was asked.
    #[error("{path}: {what}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        what: String,
    },
    /// rustls refused the pair (a key that does not match the certificate, an
    /// unsupported key type).
    #[error("the certificate {cert} and the key {key} do not make a TLS server: {why}")]
    Rejected {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls's reason.
        why: String,
    },
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    let mut data = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_PEM_FILE + 1).read_to_end(&mut data))
        .map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    if data.len() as u64 > MAX_PEM_FILE {
        return Err(TlsError::Pem {
            path: path.to_path_buf(),
            what: format!("larger than {MAX_PEM_FILE} bytes: not a certificate or key"),
        });
    }
    Ok(data)
}

/// A TLS server configuration from `cert` (PEM: the server's certificate first, then
/// any intermediates) and `key` (PEM: its private key, PKCS#8, PKCS#1 or SEC1).
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let pem_error = |path: &Path, what: String| TlsError::Pem {
        path: path.to_path_buf(),
        what,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(cert)?)
        .collect::<Result<_, _>>()
        .map_err(|e| pem_error(cert, format!("not a PEM certificate file: {e}")))?;
    if chain.is_empty() {
        return Err(pem_error(
            cert,
            "no certificate in it (expected -----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    let private = PrivateKeyDer::from_pem_slice(&read(key)?).map_err(|e| {
        pem_error(
            key,
            format!("no private key in it (expected -----BEGIN PRIVATE KEY-----): {e}"),
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let rejected = |e: rustls::Error| TlsError::Rejected {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        why: e.to_string(),
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(rejected)?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(rejected)?;
    // The API speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
