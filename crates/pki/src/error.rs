//! The one error type of the crate.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why the PKI could not be loaded, made or changed. Every message names the file
/// concerned and says what to do about it.
#[derive(Debug)]
#[non_exhaustive]
pub enum PkiError {
    /// A file or directory could not be read, written, renamed or created.
    Io {
        /// What was being done ("read", "write", "create directory", ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A file or directory of the PKI can be read or entered by group or others.
    InsecurePermissions {
        /// The file or directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// Whether it is a directory (wants 0700) or a file (wants 0600).
        is_dir: bool,
    },
    /// Something in the PKI directory is a symbolic link, or neither a plain file nor a
    /// directory.
    NotPlainFile {
        /// The entry.
        path: PathBuf,
    },
    /// A certificate (or public key) exists without the private key that belongs to it.
    MissingKey {
        /// The certificate or public key that exists.
        cert: PathBuf,
        /// The private key that does not.
        key: PathBuf,
    },
    /// A CA private key exists without its certificate.
    MissingCert {
        /// The key that exists.
        key: PathBuf,
        /// The certificate that does not.
        cert: PathBuf,
    },
    /// A CA certificate and the key next to it belong to different key pairs.
    KeyMismatch {
        /// The certificate (or public key).
        cert: PathBuf,
        /// The private key.
        key: PathBuf,
    },
    /// A file of the PKI could not be understood.
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Generating a key or a certificate failed.
    Generate {
        /// What was being made.
        what: String,
        /// The underlying error.
        reason: String,
    },
    /// The operating system's random number generator failed.
    Random {
        /// The underlying error.
        reason: String,
    },
    /// A hostname that is not a node of the cluster was named.
    UnknownNode {
        /// The hostname.
        hostname: String,
    },
}

impl fmt::Display for PkiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PkiError::Io {
                action,
                path,
                source,
            } => write!(
                f,
                "cannot {action} {}: {source}; check that the state directory exists and \
                 belongs to the user running slipway",
                path.display()
            ),
            PkiError::InsecurePermissions { path, mode, is_dir } => {
                let want = if *is_dir { "700" } else { "600" };
                write!(
                    f,
                    "{} has mode {:03o}, open to group or others: the PKI must be private \
                     to its owner. Run `chmod {want} {}` (and rotate any key others may \
                     have read)",
                    path.display(),
                    mode & 0o777,
                    path.display()
                )
            }
            PkiError::NotPlainFile { path } => write!(
                f,
                "{} is a symbolic link or not a plain file: slipway only uses plain files \
                 and directories in its PKI directory; replace it with the file itself",
                path.display()
            ),
            PkiError::MissingKey { cert, key } => write!(
                f,
                "{} exists but its private key {} does not, so slipway cannot use it. \
                 Restore the key from a backup; or, to start over, move the certificate \
                 away too (everything it signed must then be rotated on every node)",
                cert.display(),
                key.display()
            ),
            PkiError::MissingCert { key, cert } => write!(
                f,
                "{} exists but its certificate {} does not. Restore the certificate from a \
                 backup; or, to start over, move the key away too (everything it signed \
                 must then be rotated on every node)",
                key.display(),
                cert.display()
            ),
            PkiError::KeyMismatch { cert, key } => write!(
                f,
                "{} and {} belong to different key pairs (an interrupted rotation, or a \
                 file copied from elsewhere). Restore the matching pair from a backup",
                cert.display(),
                key.display()
            ),
            PkiError::Invalid { path, reason } => write!(
                f,
                "{} is not usable: {reason}. Restore it from a backup, or remove it (with \
                 its certificate or key, if it has one) to have slipway make a new one",
                path.display()
            ),
            PkiError::Generate { what, reason } => write!(
                f,
                "cannot generate {what}: {reason}; check the names in the cluster file \
                 (kubernetes.extra_sans, hostnames, domain)"
            ),
            PkiError::Random { reason } => write!(
                f,
                "the system's random number generator failed: {reason}; nothing was \
                 written, run again once the system has entropy"
            ),
            PkiError::UnknownNode { hostname } => write!(
                f,
                "`{hostname}` is not a node of the cluster; name a hostname from the \
                 cluster file (`slipway check` lists them)"
            ),
        }
    }
}

impl std::error::Error for PkiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PkiError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
