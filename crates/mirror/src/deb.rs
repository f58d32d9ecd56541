//! Taking files out of a Debian package (`.deb`): an `ar` archive whose `data.tar`
//! (plain, `.xz` or `.gz`) holds the package's files. Only what slipway needs (regular
//! files by path), every size bounded: a package is input from the network.

use std::io::{Read, Write};

/// The largest `data.tar` slipway unpacks (decompressed).
pub const MAX_DATA_TAR: u64 = 256 << 20;

/// The largest member slipway takes out.
pub const MAX_MEMBER: u64 = 64 << 20;

/// Why a package could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DebError {
    /// Not an `ar` archive, or a header is damaged.
    #[error("not a Debian package: {0}")]
    NotDeb(String),
    /// No `data.tar` in it, or one compressed in a way slipway does not read.
    #[error("{0}")]
    Data(String),
    /// A wanted file is not in the package.
    #[error("the package has no {0}")]
    Missing(String),
    /// A file or the archive is larger than slipway takes.
    #[error("{0} is larger than {1} bytes")]
    TooLarge(String, u64),
}

/// The `data.tar*` member of the `ar` archive `deb`: its name and bytes.
fn data_member(deb: &[u8]) -> Result<(&str, &[u8]), DebError> {
    let mut rest = deb
        .strip_prefix(b"!<arch>\n")
        .ok_or_else(|| DebError::NotDeb("no `!<arch>` magic".into()))?;
    while !rest.is_empty() {
        if rest.len() < 60 {
            return Err(DebError::NotDeb("a truncated member header".into()));
        }
        let (header, body) = rest.split_at(60);
        if &header[58..60] != b"`\n" {
            return Err(DebError::NotDeb("a damaged member header".into()));
        }
        let name = std::str::from_utf8(&header[..16])
            .map_err(|_| DebError::NotDeb("a member name is not text".into()))?
            .trim_end()
            .trim_end_matches('/');
        let size: usize = std::str::from_utf8(&header[48..58])
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| DebError::NotDeb(format!("member `{name}` has no size")))?;
        if size > body.len() {
            return Err(DebError::NotDeb(format!("member `{name}` is truncated")));
        }
        if name.starts_with("data.tar") {
            return Ok((name, &body[..size]));
        }
        // Members are padded to an even length.
        let next = (size + (size & 1)).min(body.len());
        rest = &body[next..];
    }
    Err(DebError::Data("the package has no data.tar".into()))
}

/// A writer that refuses to grow beyond a bound.
struct Bounded {
    buf: Vec<u8>,
    max: u64,
}

impl Write for Bounded {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() as u64 + data.len() as u64 > self.max {
            return Err(std::io::Error::other("too large"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The decompressed `data.tar` of `deb`.
fn data_tar(deb: &[u8]) -> Result<Vec<u8>, DebError> {
    let (name, bytes) = data_member(deb)?;
    let too_large = || DebError::TooLarge(name.to_string(), MAX_DATA_TAR);
    let mut out = Bounded {
        buf: Vec::new(),
        max: MAX_DATA_TAR,
    };
    match name {
        "data.tar" => out.write_all(bytes).map_err(|_| too_large())?,
        "data.tar.xz" => lzma_rs::xz_decompress(&mut std::io::BufReader::new(bytes), &mut out)
            .map_err(|e| {
                if out.buf.len() as u64 >= MAX_DATA_TAR / 2 {
                    too_large()
                } else {
                    DebError::Data(format!("{name}: {e}"))
                }
            })?,
        "data.tar.gz" => {
            let mut gz = flate2::read::GzDecoder::new(bytes).take(MAX_DATA_TAR + 1);
            gz.read_to_end(&mut out.buf)
                .map_err(|e| DebError::Data(format!("{name}: {e}")))?;
            if out.buf.len() as u64 > MAX_DATA_TAR {
                return Err(too_large());
            }
        }
        other => {
            return Err(DebError::Data(format!(
                "{other}: slipway reads a data.tar plain, .xz or .gz"
            )));
        }
    }
    Ok(out.buf)
}

/// The path `target` of a symbolic link at `link` points to, within the package
/// (`/boot/ipxe.efi` or `../x`), normalised; `None` when it leaves the package.
fn link_target(link: &str, target: &str) -> Option<String> {
    let mut parts: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        let mut p: Vec<&str> = link.split('/').collect();
        p.pop();
        p
    };
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

/// The entries of a tar: each path (without `./`) with its link target, if a link.
fn index(tar: &[u8]) -> Result<Vec<(String, Option<String>)>, DebError> {
    let mut archive = tar::Archive::new(tar);
    let entries = archive
        .entries()
        .map_err(|e| DebError::Data(format!("data.tar: {e}")))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| DebError::Data(format!("data.tar: {e}")))?;
        let path = entry
            .path()
            .map_err(|e| DebError::Data(format!("data.tar: {e}")))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        let link = if entry.header().entry_type().is_symlink() {
            entry
                .link_name()
                .ok()
                .flatten()
                .map(|t| t.to_string_lossy().into_owned())
        } else {
            None
        };
        out.push((path, link));
    }
    Ok(out)
}

/// The regular files `wanted` (paths in the package, `usr/lib/ipxe/ipxe.efi`) out of
/// the package `deb`, in the order asked; a symbolic link inside the package is
/// followed (Debian's `usr/lib/ipxe/ipxe.efi` points to `/boot/ipxe.efi`). A missing
/// file is an error.
pub fn members(deb: &[u8], wanted: &[&str]) -> Result<Vec<Vec<u8>>, DebError> {
    let tar = data_tar(deb)?;
    let links: std::collections::HashMap<String, String> = index(&tar)?
        .into_iter()
        .filter_map(|(p, l)| Some((p.clone(), link_target(&p, &l?)?)))
        .collect();
    // Each wanted path resolved through at most a few links.
    let resolved: Vec<String> = wanted
        .iter()
        .map(|w| {
            let mut p = w.to_string();
            for _ in 0..8 {
                match links.get(&p) {
                    Some(t) => p = t.clone(),
                    None => break,
                }
            }
            p
        })
        .collect();
    let mut found: Vec<Option<Vec<u8>>> = vec![None; wanted.len()];
    let mut archive = tar::Archive::new(tar.as_slice());
    let entries = archive
        .entries()
        .map_err(|e| DebError::Data(format!("data.tar: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| DebError::Data(format!("data.tar: {e}")))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry
            .path()
            .map_err(|e| DebError::Data(format!("data.tar: {e}")))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        let hits: Vec<usize> = (0..wanted.len()).filter(|i| resolved[*i] == path).collect();
        if hits.is_empty() {
            continue;
        }
        if entry.size() > MAX_MEMBER {
            return Err(DebError::TooLarge(path, MAX_MEMBER));
        }
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| DebError::Data(format!("{path}: {e}")))?;
        for i in hits {
            found[i] = Some(bytes.clone());
        }
    }
    found
        .into_iter()
        .zip(wanted)
        .map(|(f, w)| f.ok_or_else(|| DebError::Missing(w.to_string())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `ar` archive of `(name, bytes)` members, as `dpkg-deb` writes one.
    fn ar(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = b"!<arch>\n".to_vec();
        for (name, bytes) in members {
            out.extend(
                format!(
                    "{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
                    0,
                    0,
                    0,
                    100644,
                    bytes.len()
                )
                .as_bytes(),
            );
            out.extend(*bytes);
            if bytes.len() % 2 == 1 {
                out.push(b'\n');
            }
        }
        out
    }

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, bytes) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, path, *bytes).expect("append");
        }
        b.into_inner().expect("tar")
    }

    #[test]
    fn files_come_out_of_a_gzip_data_tar_in_the_order_asked() {
        let tar = tar_of(&[("./usr/lib/ipxe/a", b"AAA"), ("./usr/lib/ipxe/b", b"B")]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).expect("gz");
        let gz = gz.finish().expect("gz");
        let deb = ar(&[
            ("debian-binary", b"2.0\n"),
            ("control.tar.gz", b"x"),
            ("data.tar.gz", &gz),
        ]);
        let got = members(&deb, &["usr/lib/ipxe/b", "usr/lib/ipxe/a"]).expect("members");
        assert_eq!(got, vec![b"B".to_vec(), b"AAA".to_vec()]);
    }

    #[test]
    fn links_inside_the_package_are_followed_and_links_out_of_it_are_not() {
        assert_eq!(
            link_target("usr/lib/ipxe/ipxe.efi", "/boot/ipxe.efi").as_deref(),
            Some("boot/ipxe.efi")
        );
        assert_eq!(
            link_target("usr/lib/ipxe/a", "../b/c").as_deref(),
            Some("usr/lib/b/c")
        );
        assert_eq!(link_target("a", "../../etc/passwd"), None);
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(4);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "./boot/ipxe.efi", &b"MZ.."[..])
            .expect("file");
        let mut l = tar::Header::new_gnu();
        l.set_entry_type(tar::EntryType::Symlink);
        l.set_size(0);
        b.append_link(&mut l, "./usr/lib/ipxe/ipxe.efi", "/boot/ipxe.efi")
            .expect("link");
        let tar = b.into_inner().expect("tar");
        let deb = ar(&[("debian-binary", b"2.0\n"), ("data.tar", &tar)]);
        assert_eq!(
            members(&deb, &["usr/lib/ipxe/ipxe.efi"]),
            Ok(vec![b"MZ..".to_vec()])
        );
    }

    #[test]
    fn a_missing_file_and_damaged_archives_are_errors_not_panics() {
        let tar = tar_of(&[("usr/lib/ipxe/a", b"A")]);
        let deb = ar(&[("debian-binary", b"2.0\n"), ("data.tar", &tar)]);
        assert_eq!(
            members(&deb, &["usr/lib/ipxe/zz"]),
            Err(DebError::Missing("usr/lib/ipxe/zz".into()))
        );
        assert!(matches!(
            members(b"PK\x03\x04", &["a"]),
            Err(DebError::NotDeb(_))
        ));
        // Every truncation of a valid package is refused cleanly.
        for cut in 0..deb.len() {
            let _ = members(&deb[..cut], &["usr/lib/ipxe/a"]);
        }
        let zst = ar(&[("debian-binary", b"2.0\n"), ("data.tar.zst", b"....")]);
        assert!(matches!(members(&zst, &["a"]), Err(DebError::Data(m)) if m.contains("zst")));
    }
}
