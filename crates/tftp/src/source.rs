//! Where served files come from: the [`Source`] trait and three small sources.
//!
//! - [`DirSource`]: files under a root directory, streamed from disk (`pread`, never
//!   loaded whole). Names never leave the root: `..` is refused before any lookup, and
//!   a name that resolves (through symlinks) outside the root is refused, both before
//!   opening and, on Linux, again on the opened file descriptor (`/proc/self/fd`), so
//!   a symlink swapped in between does not escape either.
//! - [`MapSource`]: in-memory files that slipway generates (`pxelinux.cfg/01-<mac>`,
//!   GRUB configs), replaceable while serving.
//! - [`Layered`]: asks its layers in order; the first that does not say "not found"
//!   answers. Generated files go on top of a directory:
//!
//! ```
//! use std::sync::Arc;
//! use slipway_tftp::source::{Layered, MapSource, Source};
//!
//! let generated = Arc::new(MapSource::new());
//! generated.insert("pxelinux.cfg/default", b"DEFAULT local\n".to_vec()).unwrap();
//! let root = std::env::temp_dir();
//! let source = Layered::new(vec![
//!     generated.clone() as Arc<dyn Source>,
//!     Arc::new(slipway_tftp::source::DirSource::new(&root).unwrap()),
//! ]);
//! let client = "192.0.2.10:2070".parse().unwrap();
//! assert!(source.open("pxelinux.cfg/default", client).is_ok());
//! ```

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::request::{Refusal, normalize_path};
use crate::transfer::ReadAt;
use crate::wire::ErrorCode;

/// An opened file: on disk, or bytes in memory.
#[derive(Debug, Clone)]
pub enum Content {
    /// A file on disk, read block by block.
    File {
        /// The open file.
        file: Arc<File>,
        /// Its size when opened (what `tsize` announces).
        size: u64,
    },
    /// Bytes in memory.
    Bytes(Arc<[u8]>),
}

impl Content {
    /// Wraps an open file, taking its current size.
    pub fn from_file(file: File) -> io::Result<Content> {
        let size = file.metadata()?.len();
        Ok(Content::File {
            file: Arc::new(file),
            size,
        })
    }

    /// Wraps bytes.
    pub fn bytes(bytes: impl Into<Arc<[u8]>>) -> Content {
        Content::Bytes(bytes.into())
    }
}

impl ReadAt for Content {
    fn size(&self) -> u64 {
        match self {
            Content::File { size, .. } => *size,
            Content::Bytes(bytes) => bytes.len() as u64,
        }
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Content::File { file, .. } => FileExt::read_at(&**file, buf, offset),
            Content::Bytes(bytes) => ReadAt::read_at(&bytes[..], offset, buf),
        }
    }
}

/// Why a source does not serve a name.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// No such file (ERROR 1). [`Layered`] then asks the next layer.
    #[error("not found")]
    NotFound,
    /// The file exists but is not served to this client, or leaves the root (ERROR 2).
    #[error("access denied")]
    AccessDenied,
    /// Any other failure (ERROR 0).
    #[error("I/O error: {0}")]
    Io(#[source] io::Error),
}

impl OpenError {
    /// The error code the client gets.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            OpenError::NotFound => ErrorCode::FileNotFound,
            OpenError::AccessDenied => ErrorCode::AccessViolation,
            OpenError::Io(_) => ErrorCode::NotDefined,
        }
    }

    /// The message the client gets (never the server's paths or OS errors).
    pub fn message(&self) -> &'static str {
        match self {
            OpenError::NotFound => "file not found",
            OpenError::AccessDenied => "access violation",
            OpenError::Io(_) => "cannot read file",
        }
    }

    fn from_io(error: io::Error) -> OpenError {
        match error.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => OpenError::NotFound,
            io::ErrorKind::PermissionDenied => OpenError::AccessDenied,
            _ => OpenError::Io(error),
        }
    }
}

/// Something that serves files by name.
///
/// `path` is already normalized (see [`crate::request::normalize_path`]): relative,
/// `/`-separated, without `.`, `..` or empty components. `client` is the requester's
/// address, for sources that answer per machine. `open` may block (disk); the tokio
/// driver calls it on a blocking thread.
pub trait Source: Send + Sync {
    /// Opens `path` for `client`.
    fn open(&self, path: &str, client: SocketAddr) -> Result<Content, OpenError>;
}

/// Files under a root directory (see the module docs for the protections).
#[derive(Debug, Clone)]
pub struct DirSource {
    root: PathBuf,
}

impl DirSource {
    /// Serves the files under `root`, which must be a directory.
    pub fn new(root: impl AsRef<Path>) -> io::Result<DirSource> {
        let root = root.as_ref();
        let canonical = root
            .canonicalize()
            .map_err(|e| io::Error::new(e.kind(), format!("TFTP root {}: {e}", root.display())))?;
        if !canonical.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("TFTP root {} is not a directory", root.display()),
            ));
        }
        Ok(DirSource { root: canonical })
    }

    /// The root, canonical (symlinks resolved).
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Source for DirSource {
    fn open(&self, path: &str, _client: SocketAddr) -> Result<Content, OpenError> {
        // Normalized already; normalized again so the check never depends on the caller.
        let relative = normalize_path(path).map_err(|_| OpenError::AccessDenied)?;
        let canonical = self
            .root
            .join(relative)
            .canonicalize()
            .map_err(OpenError::from_io)?;
        if !canonical.starts_with(&self.root) {
            return Err(OpenError::AccessDenied);
        }
        let file = File::open(&canonical).map_err(OpenError::from_io)?;
        // The file actually opened must be under the root too (a symlink may have been
        // swapped in after canonicalize). Linux names it in /proc/self/fd.
        if let Ok(opened) = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
            && !opened.starts_with(&self.root)
        {
            return Err(OpenError::AccessDenied);
        }
        let metadata = file.metadata().map_err(OpenError::from_io)?;
        if metadata.is_dir() {
            return Err(OpenError::NotFound);
        }
        if !metadata.is_file() {
            // Devices, FIFOs, sockets: never.
            return Err(OpenError::AccessDenied);
        }
        Ok(Content::File {
            file: Arc::new(file),
            size: metadata.len(),
        })
    }
}

/// In-memory files, by normalized name; insert and remove them while serving.
#[derive(Debug, Default)]
pub struct MapSource {
    files: RwLock<HashMap<String, Arc<[u8]>>>,
}

impl MapSource {
    /// An empty map.
    pub fn new() -> MapSource {
        MapSource::default()
    }

    /// Serves `bytes` as `path` (normalized: `/a/b` and `a/b` are one name), replacing
    /// any previous file of that name. Refuses a name no client could ask for.
    pub fn insert(&self, path: &str, bytes: impl Into<Arc<[u8]>>) -> Result<(), Refusal> {
        let path = normalize_path(path)?;
        self.files
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(path, bytes.into());
        Ok(())
    }

    /// Stops serving `path`; true if it was served.
    pub fn remove(&self, path: &str) -> bool {
        let Ok(path) = normalize_path(path) else {
            return false;
        };
        self.files
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&path)
            .is_some()
    }

    /// How many files are served.
    pub fn len(&self) -> usize {
        self.files
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }

    /// Whether no file is served.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Source for MapSource {
    fn open(&self, path: &str, _client: SocketAddr) -> Result<Content, OpenError> {
        self.files
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(path)
            .map(|bytes| Content::Bytes(bytes.clone()))
            .ok_or(OpenError::NotFound)
    }
}

/// Sources asked in order: the first answer other than [`OpenError::NotFound`] wins.
#[derive(Clone)]
pub struct Layered {
    layers: Vec<Arc<dyn Source>>,
}

impl Layered {
    /// Layers, the first asked first.
    pub fn new(layers: Vec<Arc<dyn Source>>) -> Layered {
        Layered { layers }
    }
}

impl fmt::Debug for Layered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Layered")
            .field("layers", &self.layers.len())
            .finish()
    }
}

impl Source for Layered {
    fn open(&self, path: &str, client: SocketAddr) -> Result<Content, OpenError> {
        for layer in &self.layers {
            match layer.open(path, client) {
                Err(OpenError::NotFound) => continue,
                answer => return answer,
            }
        }
        Err(OpenError::NotFound)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    fn client() -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 10], 2070))
    }

    fn read_all(content: &Content) -> Vec<u8> {
        let mut out = vec![0; content.size() as usize];
        let n = ReadAt::read_at(content, 0, &mut out).unwrap();
        out.truncate(n);
        out
    }

    #[test]
    fn dir_source_serves_files_and_refuses_escapes() {
        let outside = TempDir::new("outside");
        std::fs::write(outside.path().join("secret"), b"secret").unwrap();
        let root = TempDir::new("root");
        std::fs::create_dir(root.path().join("sub")).unwrap();
        std::fs::write(root.path().join("sub/file"), b"hello").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), root.path().join("escape"))
            .unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("escape-dir")).unwrap();
        std::os::unix::fs::symlink("sub/file", root.path().join("inside-link")).unwrap();

        let source = DirSource::new(root.path()).unwrap();
        assert_eq!(
            read_all(&source.open("sub/file", client()).unwrap()),
            b"hello"
        );
        assert_eq!(
            read_all(&source.open("inside-link", client()).unwrap()),
            b"hello"
        );
        assert!(matches!(
            source.open("escape", client()),
            Err(OpenError::AccessDenied)
        ));
        assert!(matches!(
            source.open("escape-dir/secret", client()),
            Err(OpenError::AccessDenied)
        ));
        assert!(matches!(
            source.open("../outside/secret", client()),
            Err(OpenError::AccessDenied)
        ));
        assert!(matches!(
            source.open("missing", client()),
            Err(OpenError::NotFound)
        ));
        assert!(matches!(
            source.open("sub", client()),
            Err(OpenError::NotFound)
        ));
        assert!(matches!(
            source.open("sub/file/x", client()),
            Err(OpenError::NotFound)
        ));
        assert!(matches!(
            source.open("/dev/null", client()),
            Err(OpenError::NotFound)
        ));
        assert!(DirSource::new(root.path().join("sub/file")).is_err());
    }

    #[test]
    fn map_and_layers() {
        let root = TempDir::new("layers");
        std::fs::write(root.path().join("both"), b"disk").unwrap();
        std::fs::write(root.path().join("disk-only"), b"disk").unwrap();
        let map = Arc::new(MapSource::new());
        map.insert("/both", b"memory".to_vec()).unwrap();
        map.insert("gen\\erated", b"gen".to_vec()).unwrap();
        assert_eq!(map.insert("../x", b"".to_vec()), Err(Refusal::Traversal));
        assert_eq!(map.len(), 2);
        let layered = Layered::new(vec![
            map.clone() as Arc<dyn Source>,
            Arc::new(DirSource::new(root.path()).unwrap()),
        ]);
        assert_eq!(
            read_all(&layered.open("both", client()).unwrap()),
            b"memory"
        );
        assert_eq!(
            read_all(&layered.open("disk-only", client()).unwrap()),
            b"disk"
        );
        assert_eq!(
            read_all(&layered.open("gen/erated", client()).unwrap()),
            b"gen"
        );
        assert!(map.remove("both"));
        assert_eq!(read_all(&layered.open("both", client()).unwrap()), b"disk");
        assert!(matches!(
            layered.open("nothing", client()),
            Err(OpenError::NotFound)
        ));
    }
}
