//! One pixal run per output tree: a run takes an exclusive lock on `<tree>/.pixal.lock`
//! before it writes there, so a second run on the same tree refuses with a message naming the
//! run that holds it, instead of deleting or mixing that run's files. The lock is the operating
//! system's (`flock`), so it goes away with the process however it ends (even `kill -9`);
//! the file itself stays and only tells who held it last.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The lock file's name in a locked tree.
pub const LOCK_FILE: &str = ".pixal.lock";

/// Why a tree could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another run holds the lock.
    #[error(
        "{root}: another pixal run is writing here ({holder}); wait for it to finish, or give this run other output folders in paths.yaml (lock file {lock})"
    )]
    Busy {
        /// The tree.
        root: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// What the holder wrote into the lock file (pid, command line, start time).
        holder: String,
    },
    /// The lock file could not be created or locked.
    #[error("{path}: cannot take the run lock: {source}")]
    Io {
        /// The lock file or its folder.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A held tree lock; released when dropped or when the process ends.
#[derive(Debug)]
pub struct TreeLock {
    file: File,
    path: PathBuf,
}

impl TreeLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TreeLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// Takes the lock of the tree `root` (created when missing) without waiting.
pub fn lock_tree(root: &Path) -> Result<TreeLock, LockError> {
    std::fs::create_dir_all(root).map_err(|source| LockError::Io {
        path: root.to_path_buf(),
        source,
    })?;
    let path = root.join(LOCK_FILE);
    let io = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path)
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "unknown process".into());
            return Err(LockError::Busy {
                root: root.to_path_buf(),
                lock: path,
                holder,
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    let args: Vec<String> = std::env::args().collect();
    let who = format!(
        "pid {}, `{}`, started {}",
        std::process::id(),
        args.join(" "),
        crate::logging::utc_now()
    );
    // Best effort: the lock holds whether or not the note is written.
    let _ = file
        .set_len(0)
        .and_then(|()| file.write_all(who.as_bytes()));
    Ok(TreeLock { file, path })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_on_a_tree_is_refused_until_the_first_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("out/comp");
        let first = lock_tree(&root).unwrap();
        let e = lock_tree(&root).unwrap_err().to_string();
        assert!(e.contains("another pixal run is writing here"), "{e}");
        assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
        drop(first);
        assert!(lock_tree(&root).is_ok());
    }
}
