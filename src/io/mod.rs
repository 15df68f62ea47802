//! Everything that touches files: image loading (EXIF orientation, 8/16-bit, gray, alpha, CMYK),
//! listing input folders, atomic writes (temp file + rename), `.npz` and YAML metadata, and the
//! typed files one stage writes for the next ([`stage`]). It names no configuration or stage
//! type: the stage files are typed with [`crate::types`].

pub mod atomic;
pub mod image;
pub mod lock;
pub mod metadata;
pub mod npz;
pub mod stage;
pub mod table;

use std::path::PathBuf;

/// Errors from reading and writing files. Every variant names the file it is about.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// The file could not be read from disk.
    #[error("{path}: cannot read file: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file's extension is not one pixal reads as an image.
    #[error(
        "{path}: not a supported image type (expected .jpg, .jpeg, .png, .webp, .tif or .tiff)"
    )]
    UnsupportedExtension {
        /// The file.
        path: PathBuf,
    },
    /// The file could not be decoded as an image (truncated, corrupt, not an image at all).
    #[error("{path}: cannot decode image: {reason}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// What the decoder said.
        reason: String,
    },
    /// The image decoded, but its pixel format is one pixal refuses.
    #[error("{path}: unsupported pixel format: {reason}")]
    PixelFormat {
        /// The file.
        path: PathBuf,
        /// Which format and why it is refused.
        reason: String,
    },
    /// A folder could not be listed.
    #[error("{path}: cannot list folder: {source}")]
    ListDir {
        /// The folder.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file or folder could not be written.
    #[error("{path}: cannot write: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// An image or array could not be encoded.
    #[error("{path}: cannot encode: {reason}")]
    Encode {
        /// The file.
        path: PathBuf,
        /// What the encoder said.
        reason: String,
    },
    /// A `.npz` file could not be read or has unexpected contents.
    #[error("{path}: bad npz: {reason}")]
    Npz {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A metadata file could not be parsed.
    #[error("{path}: bad metadata: {reason}")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl IoError {
    /// The file or folder the error is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            IoError::Read { path, .. }
            | IoError::UnsupportedExtension { path }
            | IoError::Decode { path, .. }
            | IoError::PixelFormat { path, .. }
            | IoError::ListDir { path, .. }
            | IoError::Write { path, .. }
            | IoError::Encode { path, .. }
            | IoError::Npz { path, .. }
            | IoError::Metadata { path, .. } => path,
        }
    }
}

/// SHA-256 of `bytes`, as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    digest.iter().fold(String::with_capacity(64), |mut s, b| {
        use std::fmt::Write as _;
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// SHA-256 of a file's content, as lowercase hex.
pub fn sha256_file(path: &std::path::Path) -> Result<String, IoError> {
    use sha2::Digest;
    use std::io::Read;
    let read = |source| IoError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(read)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(read)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize()
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            use std::fmt::Write as _;
            let _ = write!(s, "{b:02x}");
            s
        }))
}

/// The names of the sub-folders of `root`, sorted, without hidden ones (a leading `.`); empty
/// when `root` cannot be listed. How the stages find the image types in a folder.
pub fn subfolder_names(root: &std::path::Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut names: Vec<String> = rd
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names
}

/// Every file below `root` (sub-folders included, unreadable folders skipped), sorted.
pub fn files_under(root: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subfolder_names_are_sorted_visible_folders_only() {
        let d = tempfile::tempdir().unwrap();
        for name in ["b_type", "a_type", ".hidden"] {
            std::fs::create_dir(d.path().join(name)).unwrap();
        }
        std::fs::write(d.path().join("c_file.jpg"), b"x").unwrap();
        assert_eq!(subfolder_names(d.path()), vec!["a_type", "b_type"]);
        assert!(subfolder_names(&d.path().join("missing")).is_empty());
    }
}
