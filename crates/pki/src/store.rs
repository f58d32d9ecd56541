//! The files: `<state_dir>/pki/`, private to its owner, written atomically.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::PkiError;

/// Mode of every directory of the PKI.
pub(crate) const DIR_MODE: u32 = 0o700;
/// Mode of every file of the PKI.
pub(crate) const FILE_MODE: u32 = 0o600;

/// The PKI directory.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    dir: PathBuf,
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> PkiError + 'a {
    move |source| PkiError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

impl Store {
    /// Opens (creating it if needed) `<state_dir>/pki`, after checking that nothing in
    /// it is open to group or others or a symbolic link, and removing temporary
    /// files an interrupted write left.
    pub(crate) fn open(state_dir: &Path) -> Result<Store, PkiError> {
        let dir = state_dir.join("pki");
        DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(&dir)
            .map_err(io_err("create directory", &dir))?;
        let store = Store { dir };
        store.check_tree(&store.dir)?;
        Ok(store)
    }

    /// The PKI directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of `rel` (a `/`-separated path relative to the PKI directory).
    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    fn check_tree(&self, dir: &Path) -> Result<(), PkiError> {
        let meta = fs::symlink_metadata(dir).map_err(io_err("read", dir))?;
        check_entry(dir, &meta)?;
        for entry in fs::read_dir(dir).map_err(io_err("read directory", dir))? {
            let entry = entry.map_err(io_err("read directory", dir))?;
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).map_err(io_err("read", &path))?;
            if meta.is_file() && is_temp_name(&entry.file_name().to_string_lossy()) {
                fs::remove_file(&path).map_err(io_err("remove", &path))?;
                continue;
            }
            check_entry(&path, &meta)?;
            if meta.is_dir() {
                self.check_tree(&path)?;
            }
        }
        Ok(())
    }

    /// The contents of `rel`, or `None` if it does not exist.
    pub(crate) fn read(&self, rel: &str) -> Result<Option<String>, PkiError> {
        let path = self.path(rel);
        let meta = match fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        check_entry(&path, &meta)?;
        if meta.is_dir() {
            return Err(PkiError::NotPlainFile { path });
        }
        let bytes = fs::read(&path).map_err(io_err("read", &path))?;
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| PkiError::Invalid {
                path,
                reason: "not UTF-8 text".into(),
            })
    }

    /// Writes `contents` to `rel` atomically (a temporary file in the same
    /// directory, synced, then renamed over it), with mode 0600, creating missing
    /// directories with mode 0700. Returns the path written.
    pub(crate) fn write(&self, rel: &str, contents: &str) -> Result<PathBuf, PkiError> {
        let path = self.path(rel);
        let parent = path.parent().unwrap_or(&self.dir).to_path_buf();
        DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(&parent)
            .map_err(io_err("create directory", &parent))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = parent.join(format!(".{name}.tmp"));
        match fs::remove_file(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(io_err("remove", &tmp)(e));
            }
            _ => {}
        }
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&tmp)
            .map_err(io_err("create", &tmp))?;
        file.write_all(contents.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io_err("write", &tmp))?;
        drop(file);
        fs::rename(&tmp, &path).map_err(io_err("rename into place", &path))?;
        File::open(&parent)
            .and_then(|d| d.sync_all())
            .map_err(io_err("sync directory", &parent))?;
        Ok(path)
    }
}

impl Store {
    /// Removes `rel` if it exists.
    pub(crate) fn remove(&self, rel: &str) -> Result<(), PkiError> {
        let path = self.path(rel);
        match fs::remove_file(&path) {
            Ok(()) => {
                let parent = path.parent().unwrap_or(&self.dir);
                File::open(parent)
                    .and_then(|d| d.sync_all())
                    .map_err(io_err("sync directory", parent))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &path)(e)),
        }
    }
}

/// Temporary files of [`Store::write`]: `.<name>.tmp`.
fn is_temp_name(name: &str) -> bool {
    name.len() > 5 && name.starts_with('.') && name.ends_with(".tmp")
}

fn check_entry(path: &Path, meta: &fs::Metadata) -> Result<(), PkiError> {
    if !(meta.is_file() || meta.is_dir()) {
        return Err(PkiError::NotPlainFile {
            path: path.to_path_buf(),
        });
    }
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(PkiError::InsecurePermissions {
            path: path.to_path_buf(),
            mode,
            is_dir: meta.is_dir(),
        });
    }
    Ok(())
}
