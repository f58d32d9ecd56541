//! `serve` gives up root once its sockets are bound: it hands the state directory to
//! an unprivileged user and becomes that user, for good (a later attempt to become
//! root again is checked to fail). Nothing `serve` does after binding needs root:
//! replies go out of sockets already bound, TFTP transfers use ephemeral ports, and a
//! reload reads the cluster file and the state directory.

use std::path::Path;

use anyhow::{Context, anyhow, bail};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::unistd::{Gid, Uid, User, getuid, setgid, setgroups, setuid};

/// The account `serve` becomes by default when started as root (if it exists).
pub const DEFAULT_USER: &str = "slipway";

/// Raises the soft limit on open files to the hard limit (every connection and
/// transfer is a descriptor). Returns the limit now in force.
pub fn raise_fd_limit() -> anyhow::Result<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).context("reading RLIMIT_NOFILE")?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).context("raising RLIMIT_NOFILE")?;
    }
    Ok(hard.max(soft))
}

/// Whom `serve` should become: `asked` (`--user`), else [`DEFAULT_USER`] when that
/// account exists; `None` to stay as it is (not root, `--user root`, or no account).
pub fn target(asked: Option<&str>) -> anyhow::Result<Option<User>> {
    if !getuid().is_root() {
        if let Some(name) = asked {
            bail!(
                "--user {name}: only root can change user (serve runs as uid {})",
                getuid()
            );
        }
        return Ok(None);
    }
    match asked {
        Some("root") => Ok(None),
        Some(name) => User::from_name(name)
            .with_context(|| format!("looking up user `{name}`"))?
            .map(Some)
            .ok_or_else(|| anyhow!("--user {name}: no such user (create it: useradd --system --home-dir /var/lib/slipway {name})")),
        None => Ok(User::from_name(DEFAULT_USER).ok().flatten()),
    }
}

/// Gives `state_dir` (and everything in it) to `user`, then becomes `user`: its
/// group only, no supplementary groups, and no way back to root.
pub fn drop_to(user: &User, state_dir: &Path) -> anyhow::Result<()> {
    chown_tree(state_dir, user.uid, user.gid)
        .with_context(|| format!("giving {} to {}", state_dir.display(), user.name))?;
    setgroups(&[user.gid]).context("setgroups")?;
    setgid(user.gid).context("setgid")?;
    setuid(user.uid).context("setuid")?;
    if setuid(Uid::from_raw(0)).is_ok() {
        bail!("still able to become root after dropping to {}", user.name);
    }
    Ok(())
}

fn chown_tree(path: &Path, uid: Uid, gid: Gid) -> std::io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid.as_raw()), Some(gid.as_raw()))?;
    if path.is_dir() && !path.is_symlink() {
        for entry in std::fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}
