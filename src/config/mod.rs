//! Configuration: the original's `parameters.yaml` and `paths.yaml`, read into structs that
//! mirror the YAML ([`raw`]), checked against the set of known keys (an unknown key is an error
//! naming the file, the line and the closest known key), then validated once into typed values
//! ([`resolved`]) and a folder [`paths::Layout`]. Only the resolved forms leave this module.

mod check;
mod inert;
pub mod paths;
pub mod raw;
mod resolve;
pub mod resolved;
mod yaml;

use std::path::{Path, PathBuf};

pub use paths::Layout;
pub use resolved::Parameters;

/// Errors in configuration files. Every variant names the file; key errors also the key path
/// and, where it can be found, the line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read config file: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid YAML.
    #[error("{path}: invalid YAML: {message}")]
    Yaml {
        /// The file.
        path: PathBuf,
        /// What the parser said, with its location.
        message: String,
    },
    /// A key that no version of PIXAL knows.
    #[error("{}: unknown key `{key}`{}", at(path, *line), suggest(suggestion))]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// 1-based line of the key, when found.
        line: Option<usize>,
        /// Dotted key path.
        key: String,
        /// The closest known key at the same level.
        suggestion: Option<String>,
    },
    /// A value of the wrong type or out of range.
    #[error("{}: `{key}`: {message}", at(path, *line))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the key, when found.
        line: Option<usize>,
        /// Dotted key path.
        key: String,
        /// What is wrong and what is expected.
        message: String,
    },
}

fn at(path: &Path, line: Option<usize>) -> String {
    match line {
        Some(l) => format!("{}:{l}", path.display()),
        None => path.display().to_string(),
    }
}

fn suggest(s: &Option<String>) -> String {
    match s {
        Some(s) => format!(" (did you mean `{s}`?)"),
        None => String::new(),
    }
}

/// The whole resolved configuration of a run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The folder the two files were read from.
    pub dir: PathBuf,
    /// The validated `parameters.yaml`.
    pub params: Parameters,
    /// The folder tree from `paths.yaml`.
    pub layout: Layout,
    /// SHA-256 (hex) of the two files' bytes, recorded in metadata so outputs can be traced to
    /// the exact configuration that made them.
    pub hash: String,
}

impl Config {
    /// Reads `parameters.yaml` and `paths.yaml` from `dir`.
    pub fn load(dir: &Path) -> Result<Config, ConfigError> {
        let params_path = dir.join("parameters.yaml");
        let paths_path = dir.join("paths.yaml");
        let params_text = read(&params_path)?;
        let paths_text = read(&paths_path)?;
        let params = Parameters::from_yaml(&params_text, &params_path)?;
        let layout = Layout::from_yaml(&paths_text, &paths_path)?;
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(params_text.as_bytes());
        h.update(paths_text.as_bytes());
        let hash = h
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        Ok(Config {
            dir: dir.to_path_buf(),
            params,
            layout,
            hash,
        })
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The original's configuration file `name` from `reference/original_configs` of the shared
/// folder (`$PIXAL_SHARED`, else `../shared` beside the crate), for
/// the tests that check it is accepted unchanged: `None` (the test skips, with a note) when it
/// is absent, unless `PIXAL_REQUIRE_FIXTURES` is set (to anything but empty or `0`, as `.ci/run`
/// does), where a missing file fails the test naming the path.
#[cfg(test)]
pub(crate) fn original_config(name: &str) -> Option<(PathBuf, String)> {
    let shared = match std::env::var_os("PIXAL_SHARED") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"),
    };
    let path = shared.join("reference/original_configs").join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => Some((path, text)),
        Err(e) => {
            let required =
                std::env::var("PIXAL_REQUIRE_FIXTURES").is_ok_and(|v| !v.is_empty() && v != "0");
            assert!(
                !required,
                "{}: {e}, and PIXAL_REQUIRE_FIXTURES is set",
                path.display()
            );
            eprintln!("skipped: {} not readable: {e}", path.display());
            None
        }
    }
}
