//! Errors that point at a key of one configuration file: the invalid-value and range checks
//! every section of `parameters.yaml` uses, the closest known word for a typo, and serde's
//! errors turned into unknown-key or invalid-value errors with the key's line.

use std::path::Path;

use super::{ConfigError, yaml};

/// Builds errors that point at a key of one file.
pub(super) struct Ctx<'a> {
    /// The file.
    pub(super) path: &'a Path,
    /// Its text, where keys' lines are looked up.
    pub(super) text: &'a str,
}

impl Ctx<'_> {
    /// An invalid-value error at `key` (dotted), with the key's line when it is found.
    pub(super) fn invalid(&self, key: &str, message: impl Into<String>) -> ConfigError {
        let parts: Vec<&str> = key.split('.').collect();
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            line: yaml::find_key_line(self.text, &parts),
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// `v` as a count of at least `min`.
    pub(super) fn count(&self, key: &str, v: i64, min: i64) -> Result<usize, ConfigError> {
        if v < min {
            return Err(self.invalid(key, format!("must be at least {min}, found {v}")));
        }
        usize::try_from(v).map_err(|_| self.invalid(key, format!("{v} is too large")))
    }

    /// `v` when it is a finite number > 0.
    pub(super) fn positive(&self, key: &str, v: f64) -> Result<f64, ConfigError> {
        if !(v.is_finite() && v > 0.0) {
            return Err(self.invalid(key, format!("must be a number > 0, found {v}")));
        }
        Ok(v)
    }

    /// `v` when it is a finite number >= 0.
    pub(super) fn non_negative(&self, key: &str, v: f64) -> Result<f64, ConfigError> {
        if !(v.is_finite() && v >= 0.0) {
            return Err(self.invalid(key, format!("must be a number >= 0, found {v}")));
        }
        Ok(v)
    }

    /// The option named by `v` (trimmed, case-insensitive); the error lists the options and
    /// the closest one.
    pub(super) fn choice<T: Copy>(
        &self,
        key: &str,
        v: &str,
        options: &[(&str, T)],
    ) -> Result<T, ConfigError> {
        let norm = v.trim().to_ascii_lowercase();
        if let Some((_, t)) = options.iter().find(|(name, _)| *name == norm) {
            return Ok(*t);
        }
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        let hint = closest(&norm, &names)
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        Err(self.invalid(
            key,
            format!(
                "unknown value `{v}`{hint}; expected one of: {}",
                names.join(", ")
            ),
        ))
    }
}

/// The closest of `candidates` to `word`, when it is close enough to be a plausible typo.
pub(crate) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| {
            (
                strsim::jaro_winkler(&word.to_lowercase(), &c.to_lowercase()),
                *c,
            )
        })
        .filter(|(score, _)| *score >= 0.75)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Turns a serde error at a key path into an unknown-key or invalid-value error.
pub(crate) fn deser_error(
    e: serde_path_to_error::Error<serde_json::Error>,
    text: &str,
    path: &Path,
) -> ConfigError {
    let mut parts: Vec<String> = e
        .path()
        .iter()
        .filter_map(|seg| match seg {
            serde_path_to_error::Segment::Map { key } => Some(key.clone()),
            serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
            _ => None,
        })
        .collect();
    let msg = e.inner().to_string();
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        let field = rest.split('`').next().unwrap_or_default().to_string();
        // serde lists the expected fields in backticks after the word "expected".
        let expected: Vec<&str> = msg
            .split_once("expected")
            .map(|(_, tail)| tail.split('`').skip(1).step_by(2).collect())
            .unwrap_or_default();
        if parts.last() != Some(&field) {
            parts.push(field.clone());
        }
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        return ConfigError::UnknownKey {
            path: path.to_path_buf(),
            line: yaml::find_key_line(text, &refs),
            key: parts.join("."),
            suggestion: closest(&field, &expected).map(str::to_string),
        };
    }
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    let line = (1..=refs.len())
        .rev()
        .find_map(|n| yaml::find_key_line(text, &refs[..n]));
    ConfigError::Invalid {
        path: path.to_path_buf(),
        line,
        key: parts.join("."),
        message: msg,
    }
}
