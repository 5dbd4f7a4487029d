//! Piface's own files are private: directories 0700, files 0600, whatever the umask.
//!
//! The data directory holds the login token, the cluster CA's key, the state and the speech
//! cache; nobody else on the machine has any business reading them.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::Context;

/// Creates `path` (and missing parents) as 0700 and makes an existing one 0700.
pub fn dir(path: &Path) -> anyhow::Result<()> {
    piface_link::tls::private_dir(path)
}

/// Makes an existing file 0600.
pub fn file(path: &Path) -> anyhow::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("making {} private", path.display()))
}

/// Makes everything under `root` private: directories 0700, regular files 0600. Links are
/// left alone (not followed), so a link inside cannot widen this to files elsewhere.
pub fn tighten(root: &Path) -> anyhow::Result<()> {
    dir(root)?;
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let path = entry.path();
            let (want, is_dir) = if kind.is_dir() {
                (0o700, true)
            } else if kind.is_file() {
                (0o600, false)
            } else {
                continue;
            };
            let mode = entry.metadata()?.permissions().mode() & 0o7777;
            if mode != want {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(want))
                    .with_context(|| format!("making {} private", path.display()))?;
            }
            if is_dir {
                stack.push(path);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tighten_fixes_modes_and_does_not_follow_links() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, "x").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
        let data = root.path().join("data");
        std::fs::create_dir_all(data.join("sub")).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(data.join("sub/state"), "x").unwrap();
        std::fs::set_permissions(data.join("sub/state"), std::fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::symlink(&victim, data.join("link")).unwrap();
        tighten(&data).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("sub")), 0o700);
        assert_eq!(mode(&data.join("sub/state")), 0o600);
        assert_eq!(mode(&victim), 0o644, "the link's target is not touched");
    }
}
