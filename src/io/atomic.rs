//! Atomic file writes: data goes to a temporary file in the destination folder, which is then
//! renamed over the destination, so an interrupted run never leaves a half-written file that
//! looks complete.

use std::io::Write;
use std::path::Path;

use super::IoError;

/// Creates `dir` and its parents.
pub fn create_dir_all(dir: &Path) -> Result<(), IoError> {
    std::fs::create_dir_all(dir).map_err(|source| IoError::Write {
        path: dir.to_path_buf(),
        source,
    })
}

/// Writes a file atomically: `fill` writes the content into a temporary file next to `path`,
/// which is flushed and renamed to `path` only when `fill` succeeds. Parent folders are created.
pub fn write_with<F>(path: &Path, fill: F) -> Result<(), IoError>
where
    F: FnOnce(&mut std::io::BufWriter<&mut std::fs::File>) -> Result<(), String>,
{
    let wrap = |source: std::io::Error| IoError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(dir)
        .map_err(wrap)?;
    {
        let mut w = std::io::BufWriter::new(tmp.as_file_mut());
        fill(&mut w).map_err(|reason| IoError::Encode {
            path: path.to_path_buf(),
            reason,
        })?;
        w.flush().map_err(wrap)?;
    }
    tmp.as_file().sync_all().map_err(wrap)?;
    // tempfile creates files readable by the owner only; outputs are ordinary files, so give
    // them the permissions a plain create would (0666 less the umask).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = 0o666 & !current_umask();
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(wrap)?;
    }
    tmp.persist(path).map_err(|e| wrap(e.error))?;
    Ok(())
}

/// The process umask, read once (reading it means setting it, so it is restored at once and
/// cached; this happens before any worker thread writes files).
#[cfg(unix)]
pub(crate) fn current_umask() -> u32 {
    static UMASK: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *UMASK.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!(".pixal-umask-{}", std::process::id()));
        // Creating a directory with mode 0777 shows which bits the umask removes.

        match std::fs::create_dir(&dir) {
            Ok(()) => {
                use std::os::unix::fs::PermissionsExt;
                let m = std::fs::metadata(&dir)
                    .map(|m| m.permissions().mode() & 0o777)
                    .unwrap_or(0o755);
                let _ = std::fs::remove_dir(&dir);
                0o777 & !m
            }
            Err(_) => 0o022,
        }
    })
}

/// Writes `bytes` to `path` atomically.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), IoError> {
    write_with(path, |w| w.write_all(bytes).map_err(|e| e.to_string()))
}

/// The prefix of every temporary file or folder pixal creates beside its outputs.
pub const TEMP_PREFIX: &str = ".pixal-tmp-";

/// Creates an empty staging folder beside `dest` (same file system, so it can be renamed over
/// `dest`), named `.pixal-tmp-<what>-*` so a later run can recognise it as stale. It is deleted
/// when the returned handle drops, unless it is kept with `TempDir::keep`.
pub fn staging_dir(dest: &Path, what: &str) -> Result<tempfile::TempDir, IoError> {
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    create_dir_all(parent)?;
    let dir = tempfile::Builder::new()
        .prefix(&format!("{TEMP_PREFIX}{what}-"))
        .tempdir_in(parent)
        .map_err(|source| IoError::Write {
            path: parent.to_path_buf(),
            source,
        })?;
    // tempfile makes the folder private; outputs are ordinary folders (0777 less the umask).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = 0o777 & !current_umask();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).map_err(
            |source| IoError::Write {
                path: dir.path().to_path_buf(),
                source,
            },
        )?;
    }
    Ok(dir)
}

/// Puts the finished folder `staged` in place of `dest` as a whole and deletes what `dest` held
/// before, so readers see either the old folder or the new one, never a mix of their files. On
/// Linux the two folders are exchanged in one `renameat2(RENAME_EXCHANGE)`; elsewhere (or on a
/// file system without it) the old folder is first renamed aside, leaving a moment where
/// `dest` is absent, which readers report as "no model" rather than using a mix.
pub fn replace_dir(staged: &Path, dest: &Path) -> Result<(), IoError> {
    let wrap = |source: std::io::Error| IoError::Write {
        path: dest.to_path_buf(),
        source,
    };
    if !dest.exists() {
        return std::fs::rename(staged, dest).map_err(wrap);
    }
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        let a = std::ffi::CString::new(staged.as_os_str().as_bytes());
        let b = std::ffi::CString::new(dest.as_os_str().as_bytes());
        if let (Ok(a), Ok(b)) = (a, b) {
            // SAFETY: both arguments are valid NUL-terminated paths that live across the call.
            let rc = unsafe {
                libc::renameat2(
                    libc::AT_FDCWD,
                    a.as_ptr(),
                    libc::AT_FDCWD,
                    b.as_ptr(),
                    libc::RENAME_EXCHANGE,
                )
            };
            if rc == 0 {
                // `staged` now holds the old folder.
                return std::fs::remove_dir_all(staged).map_err(wrap);
            }
        }
    }
    let aside = staging_dir(dest, "old")?.keep();
    std::fs::remove_dir(&aside).map_err(wrap)?;
    std::fs::rename(dest, &aside).map_err(wrap)?;
    std::fs::rename(staged, dest).map_err(wrap)?;
    std::fs::remove_dir_all(&aside).map_err(wrap)
}

/// Deletes the `.pixal-tmp-*` files and folders an interrupted pixal run left below `root`
/// (every level). Only call it while holding the tree's lock ([`crate::io::lock`]), so no other
/// pixal run is writing there. Returns what was removed.
pub fn remove_stale_temps(root: &Path) -> Vec<std::path::PathBuf> {
    let mut removed = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let path = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if e.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                let r = if ft.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                if r.is_ok() {
                    removed.push(path);
                }
            } else if ft.is_dir() {
                // Never follows symbolic links (file_type does not), so only pixal's own tree
                // is walked.
                stack.push(path);
            }
        }
    }
    removed.sort();
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_write_leaves_no_file_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("sub").join("out.txt");
        let err = write_with(&target, |w| {
            w.write_all(b"partial").map_err(|e| e.to_string())?;
            Err("boom".to_string())
        });
        assert!(err.is_err());
        assert!(!target.exists());
        let left: Vec<_> = std::fs::read_dir(dir.path().join("sub")).unwrap().collect();
        assert!(left.is_empty(), "temp file left behind: {left:?}");
    }

    #[cfg(unix)]
    #[test]
    fn outputs_are_readable_by_others_under_the_usual_umask() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("p.txt");
        write_bytes(&target, b"x").unwrap();
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o666 & !current_umask());
        assert!(mode & 0o600 == 0o600);
    }

    #[test]
    fn write_replaces_content() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.txt");
        write_bytes(&target, b"one").unwrap();
        write_bytes(&target, b"two").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"two");
    }
}

#[cfg(test)]
mod dir_tests {
    use super::*;

    #[test]
    fn replace_dir_swaps_whole_folders_and_drops_the_old_files() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("model");
        std::fs::create_dir_all(&dest).unwrap();
        std::fs::write(dest.join("old_only.mpk"), b"old").unwrap();
        std::fs::write(dest.join("model_config.json"), b"old").unwrap();
        let staged = staging_dir(&dest, "model").unwrap().keep();
        std::fs::write(staged.join("model_config.json"), b"new").unwrap();
        replace_dir(&staged, &dest).unwrap();
        assert_eq!(
            std::fs::read(dest.join("model_config.json")).unwrap(),
            b"new"
        );
        assert!(!dest.join("old_only.mpk").exists());
        let left: Vec<_> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("model")]);
        // Into a place where nothing was.
        let staged = staging_dir(&dest, "model").unwrap().keep();
        let fresh = root.path().join("fresh");
        replace_dir(&staged, &fresh).unwrap();
        assert!(fresh.is_dir());
    }

    #[test]
    fn stale_temps_are_removed_at_every_level_and_nothing_else() {
        let root = tempfile::tempdir().unwrap();
        let deep = root.path().join("a/b");
        std::fs::create_dir_all(deep.join(".pixal-tmp-model-x")).unwrap();
        std::fs::write(deep.join(".pixal-tmp-model-x/w.mpk"), b"1").unwrap();
        std::fs::write(deep.join(".pixal-tmp-abc"), b"2").unwrap();
        std::fs::write(deep.join("out.npz"), b"3").unwrap();
        std::fs::write(root.path().join(".pixal-tmp-q"), b"4").unwrap();
        let removed = remove_stale_temps(root.path());
        assert_eq!(removed.len(), 3, "{removed:?}");
        assert!(deep.join("out.npz").is_file());
        assert!(!deep.join(".pixal-tmp-abc").exists());
        assert!(!deep.join(".pixal-tmp-model-x").exists());
    }
}
