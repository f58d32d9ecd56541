//! Randomness, hex, and the discovery hash of the cluster CA (what
//! `kubeadm join --discovery-token-ca-cert-hash` pins, for an operator joining a node
//! by hand). slipway keeps no shared bootstrap token and no kubeadm certificate key:
//! joining nodes get their own credentials ([`crate::join`]).

use sha2::{Digest, Sha256};

use crate::PkiError;
use crate::inspect::CertInfo;

/// Fills `buf` from the operating system's CSPRNG.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<(), PkiError> {
    getrandom::fill(buf).map_err(|e| PkiError::Random {
        reason: e.to_string(),
    })
}

/// kubeadm's discovery hash of a CA certificate (`--discovery-token-ca-cert-hash`):
/// `sha256:` and the hex SHA-256 of its DER SubjectPublicKeyInfo. `Err` says why the
/// PEM cannot be read.
pub fn ca_cert_hash(ca_cert_pem: &str) -> Result<String, String> {
    let info = CertInfo::parse(ca_cert_pem)?;
    Ok(spki_hash(&info.spki_der))
}

/// `sha256:<hex>` of a DER SubjectPublicKeyInfo.
pub(crate) fn spki_hash(spki_der: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(spki_der)))
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_of_known_input() {
        // SHA-256 of the empty string.
        assert_eq!(
            spki_hash(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
