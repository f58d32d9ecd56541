//! The cluster's shared secrets besides keys: the bootstrap token, the kubeadm
//! certificate key, and the discovery hash of the CA that joining nodes pin.

use sha2::{Digest, Sha256};

use crate::PkiError;
use crate::inspect::CertInfo;

const TOKEN_ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// Fills `buf` from the operating system's CSPRNG.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<(), PkiError> {
    getrandom::fill(buf).map_err(|e| PkiError::Random {
        reason: e.to_string(),
    })
}

/// A new kubeadm bootstrap token `[a-z0-9]{6}.[a-z0-9]{16}`, from the operating
/// system's CSPRNG, each character uniform over the 36 (by rejection sampling).
pub fn new_bootstrap_token() -> Result<String, PkiError> {
    let mut chars = Vec::with_capacity(22);
    let mut buf = [0u8; 32];
    while chars.len() < 22 {
        fill_random(&mut buf)?;
        // 252 = 7 * 36: bytes above it would favour the first letters.
        for &b in buf.iter().filter(|&&b| b < 252) {
            if chars.len() < 22 {
                chars.push(char::from(TOKEN_ALPHABET[usize::from(b % 36)]));
            }
        }
    }
    let (id, secret) = chars.split_at(6);
    Ok(format!(
        "{}.{}",
        id.iter().collect::<String>(),
        secret.iter().collect::<String>()
    ))
}

/// Whether `token` has the form of a bootstrap token.
pub fn is_bootstrap_token(token: &str) -> bool {
    let ok = |part: &str, len: usize| {
        part.len() == len
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    matches!(token.split_once('.'), Some((id, secret)) if ok(id, 6) && ok(secret, 16))
}

/// A new kubeadm certificate key (`--certificate-key`): 32 random bytes, as 64
/// lowercase hex digits.
pub fn new_certificate_key() -> Result<String, PkiError> {
    let mut key = [0u8; 32];
    fill_random(&mut key)?;
    Ok(hex(&key))
}

/// Whether `key` has the form of a certificate key.
pub fn is_certificate_key(key: &str) -> bool {
    key.len() == 64 && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
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

    type R = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn tokens_have_kubeadms_form_and_differ() -> R {
        let a = new_bootstrap_token()?;
        let b = new_bootstrap_token()?;
        assert!(is_bootstrap_token(&a), "{a}");
        assert_ne!(a, b);
        for bad in [
            "abcdef.0123456789abcdeF",
            "abcde.0123456789abcdef0",
            "abcdef0123456789abcdef",
            "",
        ] {
            assert!(!is_bootstrap_token(bad), "{bad}");
        }
        Ok(())
    }

    #[test]
    fn token_characters_cover_the_whole_alphabet() -> R {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            seen.extend(new_bootstrap_token()?.chars().filter(|c| *c != '.'));
        }
        assert_eq!(seen.len(), 36, "{seen:?}");
        Ok(())
    }

    #[test]
    fn certificate_keys_are_64_hex_digits() -> R {
        let k = new_certificate_key()?;
        assert!(is_certificate_key(&k), "{k}");
        assert_ne!(k, new_certificate_key()?);
        assert!(
            !is_certificate_key(&k.to_uppercase()) || !k.bytes().any(|b| b.is_ascii_alphabetic())
        );
        Ok(())
    }

    #[test]
    fn hash_of_known_input() {
        // SHA-256 of the empty string.
        assert_eq!(
            spki_hash(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
