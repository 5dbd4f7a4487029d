//! Opening a checked path beneath its root without a race: what the file tools checked is what
//! they open, or nothing.
//!
//! The tools resolve a path first (`canonicalize`: `..` and every symlink, absolute ones
//! included, so a link from one project to another inside the home root keeps working) and
//! check the result against the roots and Piface's private directories ([`super::fs::Roots`]).
//! Opening that checked name again would race with anyone who swaps a component for a symlink
//! in between. So the canonical path is opened *relative to its root's descriptor* with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)`: the kernel refuses
//! any `..`, absolute jump or symlink on the way, so a component swapped since the check makes
//! the open fail (`ELOOP`, `EXDEV`) instead of leading elsewhere. Kernels without `openat2`
//! (before 5.6, or a seccomp filter that hides it) get the same guarantee from a walk of
//! `openat(O_NOFOLLOW)` one component at a time: each step names one entry of a directory
//! already held, and none follows a link.
//!
//! Not `cap-std`: its sandbox follows symlinks that stay inside the root, so a swap could still
//! redirect a checked path into the private directories that lie inside the home root, and it
//! refuses every absolute symlink, which the check above resolves fine (see ARCHITECTURE.md).

use std::ffi::OsStr;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Component, Path};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// Opens `rel` beneath the directory `root` with `flags`, following no symlink at any
/// component. `rel` must be relative without `..` (a canonical path with its root stripped);
/// empty opens `root` itself.
pub fn open(root: &Path, rel: &Path, flags: OFlags) -> io::Result<OwnedFd> {
    // The root was canonicalized when the agent started; it is the user's own directory.
    let dir = rustix::fs::open(root, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
    open_at(&dir, rel, flags, Mode::empty())
}

/// Like [`open`], relative to an open directory; `mode` for `O_CREAT`.
pub fn open_at(dir: &OwnedFd, rel: &Path, flags: OFlags, mode: Mode) -> io::Result<OwnedFd> {
    let names = names(rel)?;
    let flags = flags | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    let target: &Path = if names.is_empty() { Path::new(".") } else { rel };
    let how = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    match rustix::fs::openat2(dir, target, flags, mode, how) {
        // No openat2 here (old kernel, or a seccomp profile that answers EPERM for it).
        Err(Errno::NOSYS | Errno::PERM) => walk(dir, &names, flags, mode),
        other => other.map_err(io::Error::from),
    }
}

/// The plain components of `rel`; an error for `..`, a root or a prefix.
fn names(rel: &Path) -> io::Result<Vec<&OsStr>> {
    let mut out = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a plain relative path")),
        }
    }
    Ok(out)
}

/// The fallback: one `openat` per component, none following a symlink (`O_NOFOLLOW` with
/// `O_DIRECTORY` fails on a link, and the last component is opened with `O_NOFOLLOW`).
fn walk(dir: &OwnedFd, names: &[&OsStr], flags: OFlags, mode: Mode) -> io::Result<OwnedFd> {
    let Some((last, parents)) = names.split_last() else {
        return Ok(rustix::fs::openat(dir, ".", flags, mode)?);
    };
    let mut held: Option<OwnedFd> = None;
    for name in parents {
        let base = held.as_ref().unwrap_or(dir);
        let step = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        held = Some(rustix::fs::openat(base, *name, step, Mode::empty())?);
    }
    Ok(rustix::fs::openat(held.as_ref().unwrap_or(dir), *last, flags, mode)?)
}

/// Opens the directory `rel` beneath `root`, creating each missing component (mode 0777 less the
/// umask), and following no symlink: a component that is a link fails with `ELOOP`.
pub fn create_dirs(root: &Path, rel: &Path) -> io::Result<OwnedFd> {
    let mut held = rustix::fs::open(root, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
    for name in names(rel)? {
        match rustix::fs::mkdirat(&held, name, Mode::from_raw_mode(0o777)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        let step = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        held = rustix::fs::openat(&held, name, step, Mode::empty())?;
    }
    Ok(held)
}

/// Copies the entry `name` of the directory `from` to the entry `name` of `to`, as `cp -a`
/// would but following no symlink on either side: a directory is copied entry by entry, a
/// regular file byte for byte (with its permission bits), a symlink as the same link (its
/// target is neither read nor checked); sockets, fifos and devices are skipped. A symlink
/// already at a destination is replaced, never written through. Returns the entries copied.
pub fn copy_entry(from: &OwnedFd, to: &OwnedFd, name: &OsStr) -> io::Result<u64> {
    use rustix::fs::{AtFlags, FileType};
    let st = rustix::fs::statat(from, name, AtFlags::SYMLINK_NOFOLLOW)?;
    let mode = Mode::from_raw_mode(st.st_mode & 0o7777);
    let unlink_link = |to: &OwnedFd| -> io::Result<()> {
        match rustix::fs::statat(to, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(d) if FileType::from_raw_mode(d.st_mode) == FileType::Symlink => {
                Ok(rustix::fs::unlinkat(to, name, AtFlags::empty())?)
            }
            _ => Ok(()),
        }
    };
    match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => {
            unlink_link(to)?;
            match rustix::fs::mkdirat(to, name, mode) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(e.into()),
            }
            let dir = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let src = rustix::fs::openat(from, name, dir, Mode::empty())?;
            let dst = rustix::fs::openat(to, name, dir, Mode::empty())?;
            let mut copied = 1;
            for entry in rustix::fs::Dir::read_from(&src)? {
                let entry = entry?;
                let child = entry.file_name().to_bytes();
                if child != b"." && child != b".." {
                    copied += copy_entry(&src, &dst, std::os::unix::ffi::OsStrExt::from_bytes(child))?;
                }
            }
            Ok(copied)
        }
        FileType::RegularFile => {
            unlink_link(to)?;
            let src =
                rustix::fs::openat(from, name, OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())?;
            let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let dst = rustix::fs::openat(to, name, flags, mode)?;
            std::io::copy(&mut std::fs::File::from(src), &mut std::fs::File::from(dst))?;
            Ok(1)
        }
        FileType::Symlink => {
            let target = rustix::fs::readlinkat(from, name, Vec::new())?;
            unlink_link(to)?;
            rustix::fs::symlinkat(target.as_c_str(), to, name)?;
            Ok(1)
        }
        _ => Ok(0),
    }
}

/// Whether an open failed because the path changed into something it may not follow (a
/// symlink or a jump out of the root appeared after the check).
pub fn is_swap(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(code) if code == Errno::LOOP.raw_os_error() || code == Errno::XDEV.raw_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::symlink;

    fn read(fd: OwnedFd) -> String {
        let mut s = String::new();
        std::fs::File::from(fd).read_to_string(&mut s).unwrap();
        s
    }

    #[test]
    fn opens_plain_paths_and_refuses_every_link_and_dot_dot() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/f.txt"), "inside").unwrap();
        std::fs::write(tmp.path().join("secret"), "outside").unwrap();
        symlink(tmp.path().join("secret"), root.join("a/abs-link")).unwrap();
        symlink("b", root.join("a/rel-link")).unwrap();

        assert_eq!(read(open(&root, Path::new("a/b/f.txt"), OFlags::RDONLY).unwrap()), "inside");
        assert!(open(&root, Path::new(""), OFlags::RDONLY | OFlags::DIRECTORY).is_ok(), "the root itself");
        let e = open(&root, Path::new("a/abs-link"), OFlags::RDONLY).unwrap_err();
        assert!(is_swap(&e), "{e}");
        let e = open(&root, Path::new("a/rel-link/f.txt"), OFlags::RDONLY).unwrap_err();
        assert!(is_swap(&e), "even a link that stays inside: {e}");
        assert!(open(&root, Path::new("../secret"), OFlags::RDONLY).is_err());
        assert!(open(&root, Path::new("/etc/passwd"), OFlags::RDONLY).is_err());
    }

    #[test]
    fn the_fallback_walk_refuses_links_too() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/f.txt"), "inside").unwrap();
        std::fs::write(tmp.path().join("secret"), "outside").unwrap();
        symlink(tmp.path(), root.join("a/out")).unwrap();
        symlink(tmp.path().join("secret"), root.join("a/b/last")).unwrap();
        let dir = rustix::fs::open(&root, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let names = |p: &'static str| names(Path::new(p)).unwrap();
        assert_eq!(read(walk(&dir, &names("a/b/f.txt"), flags, Mode::empty()).unwrap()), "inside");
        assert!(walk(&dir, &names("a/out/secret"), flags, Mode::empty()).is_err(), "a link in the middle");
        assert!(walk(&dir, &names("a/b/last"), flags, Mode::empty()).is_err(), "a link at the end");
    }
}
