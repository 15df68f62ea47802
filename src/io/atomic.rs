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
        .prefix(".pixal-tmp-")
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
fn current_umask() -> u32 {
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
