//! Metadata files: YAML records written beside every stage's outputs (what was done, with which
//! settings, on which files, by which version), read back by later stages. The records
//! themselves are defined in [`super::stage`]; this is how they are written and read.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{IoError, atomic};

// make_input's record is a stage contract, defined with the others in `io::stage`; the stages
// that read and write it name it from here too.
pub use super::stage::preprocessing::{PreprocessingMetadata, RowSource};

/// Writes any serialisable record as YAML, atomically.
pub fn write_yaml<T: Serialize>(path: &Path, value: &T) -> Result<(), IoError> {
    let text = serde_saphyr::to_string(value).map_err(|e| IoError::Encode {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    atomic::write_bytes(path, text.as_bytes())
}

/// Reads a YAML record.
pub fn read_yaml<T: DeserializeOwned>(path: &Path) -> Result<T, IoError> {
    let text = std::fs::read_to_string(path).map_err(|source| IoError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_saphyr::from_str(&text).map_err(|e| IoError::Metadata {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}
