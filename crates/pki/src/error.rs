//! The one error type of the crate.

use std::io;
use std::path::PathBuf;

/// Why the PKI could not be loaded, made or changed. Every message names the file
/// concerned and says what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// A file or directory could not be read, written, renamed or created.
    #[error(
        "cannot {action} {}: {source}; check that the state directory exists and \
         belongs to the user running slipway",
        .path.display()
    )]
    Io {
        /// What was being done ("read", "write", "create directory", ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A file or directory of the PKI can be read or entered by group or others.
    #[error(
        "{} has mode {:03o}, open to group or others: the PKI must be private \
         to its owner. Run `chmod {} {}` (and rotate any key others may \
         have read)",
        .path.display(),
        .mode & 0o777,
        private_mode(*.is_dir),
        .path.display()
    )]
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
    #[error(
        "{} is a symbolic link or not a plain file: slipway only uses plain files \
         and directories in its PKI directory; replace it with the file itself",
        .path.display()
    )]
    NotPlainFile {
        /// The entry.
        path: PathBuf,
    },
    /// A certificate (or public key) exists without the private key that belongs to it.
    #[error(
        "{} exists but its private key {} does not, so slipway cannot use it. \
         Restore the key from a backup; or, to start over, move the certificate \
         away too (everything it signed must then be rotated on every node)",
        .cert.display(),
        .key.display()
    )]
    MissingKey {
        /// The certificate or public key that exists.
        cert: PathBuf,
        /// The private key that does not.
        key: PathBuf,
    },
    /// A CA private key exists without its certificate.
    #[error(
        "{} exists but its certificate {} does not. Restore the certificate from a \
         backup; or, to start over, move the key away too (everything it signed \
         must then be rotated on every node)",
        .key.display(),
        .cert.display()
    )]
    MissingCert {
        /// The key that exists.
        key: PathBuf,
        /// The certificate that does not.
        cert: PathBuf,
    },
    /// A CA certificate and the key next to it belong to different key pairs.
    #[error(
        "{} and {} belong to different key pairs (an interrupted rotation, or a \
         file copied from elsewhere). Restore the matching pair from a backup",
        .cert.display(),
        .key.display()
    )]
    KeyMismatch {
        /// The certificate (or public key).
        cert: PathBuf,
        /// The private key.
        key: PathBuf,
    },
    /// A file of the PKI could not be understood.
    #[error(
        "{} is not usable: {reason}. Restore it from a backup, or remove it (with \
         its certificate or key, if it has one) to have slipway make a new one",
        .path.display()
    )]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Generating a key or a certificate failed.
    #[error(
        "cannot generate {what}: {reason}; check the names in the cluster file \
         (kubernetes.extra_sans, hostnames, domain)"
    )]
    Generate {
        /// What was being made.
        what: String,
        /// The underlying error.
        reason: String,
    },
    /// The operating system's random number generator failed.
    #[error(
        "the system's random number generator failed: {reason}; nothing was \
         written, run again once the system has entropy"
    )]
    Random {
        /// The underlying error.
        reason: String,
    },
    /// A hostname that is not a node of the cluster was named.
    #[error(
        "`{hostname}` is not a node of the cluster; name a hostname from the \
         cluster file (`slipway check` lists them)"
    )]
    UnknownNode {
        /// The hostname.
        hostname: String,
    },
}

/// The mode a PKI entry should have: 0700 for a directory, 0600 for a file.
fn private_mode(is_dir: bool) -> &'static str {
    if is_dir { "700" } else { "600" }
}
