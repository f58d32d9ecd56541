//! Verification: OpenPGP detached signatures against trusted keys, and SHA-256 sums.

use std::io::Read;

use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey};
use pgp::types::KeyDetails;
use sha2::{Digest, Sha256};

/// Why a file does not verify.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The key file is not an armored OpenPGP keyring.
    #[error("not an OpenPGP public key: {0}")]
    BadKey(String),
    /// The signature file is not an OpenPGP signature.
    #[error("not an OpenPGP signature: {0}")]
    BadSignature(String),
    /// No trusted key made the signature (or it does not match the data).
    #[error(
        "signature does not verify: expected a signature by {expected}, the signature names {actual}"
    )]
    Mismatch {
        /// The trusted fingerprints.
        expected: String,
        /// The issuer the signature names (fingerprint or key id), and whether a
        /// trusted key with that id failed to verify it.
        actual: String,
    },
    /// Reading the data failed.
    #[error("reading: {0}")]
    Io(#[from] std::io::Error),
}

/// Public keys (a keyring may hold several) with the primary fingerprints trusted.
#[derive(Debug, Clone)]
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
}

/// Upper-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

impl Keyring {
    /// The keys in `armored`: one or more `PUBLIC KEY BLOCK`s (each with one or more
    /// keys, as `gpg --export --armor` writes them, or concatenated files).
    pub fn from_armored(armored: &str) -> Result<Keyring, VerifyError> {
        const BEGIN: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
        let blocks: Vec<String> = if armored.matches(BEGIN).count() > 1 {
            armored
                .split(BEGIN)
                .filter(|b| b.contains("-----END"))
                .map(|b| format!("{BEGIN}{b}"))
                .collect()
        } else {
            vec![armored.to_string()]
        };
        let mut keys = Vec::new();
        for block in &blocks {
            let (iter, _) = SignedPublicKey::from_reader_many(block.as_bytes())
                .map_err(|e| VerifyError::BadKey(e.to_string()))?;
            for key in iter {
                keys.push(key.map_err(|e| VerifyError::BadKey(e.to_string()))?);
            }
        }
        if keys.is_empty() {
            return Err(VerifyError::BadKey("no key in it".into()));
        }
        Ok(Keyring { keys })
    }

    /// Adds the keys of `other`.
    pub fn extend(&mut self, other: Keyring) {
        self.keys.extend(other.keys);
    }

    /// The primary-key fingerprints, upper-case hex.
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| hex(k.primary_key.fingerprint().as_bytes()))
            .collect()
    }

    /// Verifies the detached signature `sig` (binary or armored) over `data`: it must
    /// be made by the primary key or a subkey of a key whose primary fingerprint is in
    /// `trusted` (upper-case hex). Returns that fingerprint.
    pub fn verify(
        &self,
        trusted: &[String],
        sig: &[u8],
        mut data: impl Read,
    ) -> Result<String, VerifyError> {
        let (sig, _) = DetachedSignature::from_reader_single(sig)
            .map_err(|e| VerifyError::BadSignature(e.to_string()))?;
        let issuers: Vec<String> = sig
            .signature
            .issuer_fingerprint()
            .iter()
            .map(|f| hex(f.as_bytes()))
            .chain(
                sig.signature
                    .issuer_key_id()
                    .iter()
                    .map(|k| hex(k.as_ref())),
            )
            .collect();
        let expected = trusted.join(" or ");
        let names = |id: &str| {
            issuers
                .iter()
                .any(|i| id.ends_with(i.as_str()) || i.ends_with(id))
        };
        // The trusted key (or subkey) the signature names; the data is read once.
        for key in &self.keys {
            let primary = hex(key.primary_key.fingerprint().as_bytes());
            if !trusted.contains(&primary) {
                continue;
            }
            let result = if names(&primary) {
                Some(sig.signature.verify(&key.primary_key, &mut data))
            } else {
                key.public_subkeys
                    .iter()
                    .find(|s| names(&hex(s.key.fingerprint().as_bytes())))
                    .map(|s| sig.signature.verify(&s.key, &mut data))
            };
            match result {
                None => continue,
                Some(Ok(())) => return Ok(primary),
                Some(Err(e)) => {
                    return Err(VerifyError::Mismatch {
                        expected,
                        actual: format!(
                            "{} (a trusted key, but the data does not match: {e})",
                            issuers.join("/")
                        ),
                    });
                }
            }
        }
        Err(VerifyError::Mismatch {
            expected,
            actual: if issuers.is_empty() {
                "no issuer".into()
            } else {
                format!("{} (not a trusted key)", issuers.join("/"))
            },
        })
    }
}

/// The SHA-256 of everything `r` yields, lower-case hex.
pub fn sha256(mut r: impl Read) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()).to_ascii_lowercase())
}

/// The sum listed for `name` in a `SHA256SUMS` file (`<hex>  <name>` or `<hex> *<name>`
/// lines), lower-case.
pub fn sum_for(sums: &str, name: &str) -> Option<String> {
    sums.lines().find_map(|l| {
        let (sum, file) = l.split_once(char::is_whitespace)?;
        let file = file.trim_start().trim_start_matches('*');
        let file = file.rsplit('/').next().unwrap_or(file);
        (file == name && sum.len() == 64).then(|| sum.to_ascii_lowercase())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn sums_are_found() {
        let s = "aa  other\n0123456789012345678901234567890123456789012345678901234567890123 *kubernetes-v1.31.2-x86-64.raw\n";
        assert_eq!(
            super::sum_for(s, "kubernetes-v1.31.2-x86-64.raw").as_deref(),
            Some("0123456789012345678901234567890123456789012345678901234567890123")
        );
        assert_eq!(super::sum_for(s, "other"), None);
    }
}
