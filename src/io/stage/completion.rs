//! Stage completion records: `stage_complete.json`, written into a stage's output folder after
//! everything else, and removed before a stage starts writing there. A later stage reads only
//! the files the record lists, and refuses a folder of pixal's output tree without a record (an
//! interrupted or never-finished run), naming what is missing, instead of silently working
//! from whatever a killed run left.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::io::{IoError, atomic};

/// The record's file name in a stage's output folder.
pub const RECORD_FILE: &str = "stage_complete.json";

/// What a finished stage wrote into one folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageRecord {
    /// `remove_bg` or `align`.
    pub stage: String,
    /// pixal's version.
    pub version: String,
    /// When the stage finished (UTC).
    pub finished: String,
    /// SHA-256 of the configuration files the stage ran with.
    pub config_hash: String,
    /// Input files this stage was given.
    pub inputs: usize,
    /// Photos at the start of the chain (remove_bg's inputs), carried through later stages so
    /// make_input can tell how many of a type's photos came through.
    pub photos: usize,
    /// The files written, by name, sorted.
    pub outputs: Vec<String>,
    /// The inputs that failed, by path.
    pub failed: Vec<String>,
}

/// Removes a folder's record before a stage writes there: until the new record is written,
/// the folder counts as incomplete.
pub fn start(dir: &Path) -> Result<(), IoError> {
    match std::fs::remove_file(dir.join(RECORD_FILE)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(IoError::Write {
            path: dir.join(RECORD_FILE),
            source,
        }),
    }
}

/// Writes a folder's record (atomically); call it after every other output of the folder.
pub fn finish(dir: &Path, record: &StageRecord) -> Result<(), IoError> {
    let path = dir.join(RECORD_FILE);
    let json = serde_json::to_vec_pretty(record).map_err(|e| IoError::Encode {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    atomic::write_bytes(&path, &json)
}

/// A folder's record, if it has one.
pub fn read(dir: &Path) -> Result<Option<StageRecord>, IoError> {
    let path = dir.join(RECORD_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(IoError::Read { path, source }),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| IoError::Metadata {
            path,
            reason: e.to_string(),
        })
}

/// Why a folder cannot be read as a finished stage's output.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Incomplete {
    /// A folder of pixal's tree without a record.
    #[error(
        "{dir}: the stage that writes this folder did not finish (no {RECORD_FILE}: it was interrupted, or the folder is from an older pixal); run it again (`pixal preprocess`, or remove_bg/align)"
    )]
    NoRecord {
        /// The folder.
        dir: PathBuf,
    },
    /// Files the record lists are gone.
    #[error(
        "{dir}: {missing} of the {listed} file(s) {stage} wrote here are missing (e.g. {example}); run {stage} again"
    )]
    Missing {
        /// The folder.
        dir: PathBuf,
        /// The stage.
        stage: String,
        /// How many are missing.
        missing: usize,
        /// How many the record lists.
        listed: usize,
        /// The first missing one.
        example: String,
    },
    /// The record cannot be read.
    #[error("{0}")]
    Unreadable(String),
}

/// The files of `dir` a later stage may read: those its record lists (all must exist), with
/// the record; without a record, every file of `listed` when `dir` is the user's folder, or an
/// error when `dir` lies in pixal's output tree (`in_pixal_tree`).
pub fn completed_files(
    dir: &Path,
    listed: Vec<PathBuf>,
    in_pixal_tree: bool,
) -> Result<(Vec<PathBuf>, Option<StageRecord>), Incomplete> {
    let record = read(dir).map_err(|e| Incomplete::Unreadable(e.to_string()))?;
    let Some(record) = record else {
        if in_pixal_tree {
            return Err(Incomplete::NoRecord {
                dir: dir.to_path_buf(),
            });
        }
        return Ok((listed, None));
    };
    let missing: Vec<&String> = record
        .outputs
        .iter()
        .filter(|n| !dir.join(n.as_str()).is_file())
        .collect();
    if let Some(first) = missing.first() {
        return Err(Incomplete::Missing {
            dir: dir.to_path_buf(),
            stage: record.stage.clone(),
            missing: missing.len(),
            listed: record.outputs.len(),
            example: (*first).clone(),
        });
    }
    let files = listed
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| record.outputs.iter().any(|o| o.as_str() == n))
        })
        .collect();
    Ok((files, Some(record)))
}

/// Whether `dir` lies below one of `roots` (pixal's output trees).
pub fn in_tree(dir: &Path, roots: &[&Path]) -> bool {
    let norm = |p: &Path| {
        p.canonicalize()
            .or_else(|_| std::path::absolute(p))
            .unwrap_or_else(|_| p.to_path_buf())
    };
    let d = norm(dir);
    roots.iter().any(|r| d.starts_with(norm(r)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(outputs: &[&str]) -> StageRecord {
        StageRecord {
            stage: "remove_bg".into(),
            version: "0".into(),
            finished: "now".into(),
            config_hash: "h".into(),
            inputs: 3,
            photos: 3,
            outputs: outputs.iter().map(|s| s.to_string()).collect(),
            failed: vec![],
        }
    }

    #[test]
    fn only_recorded_files_are_read_and_gaps_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for n in ["a.png", "b.png", "stale.png"] {
            std::fs::write(d.join(n), b"x").unwrap();
        }
        let listed = vec![d.join("a.png"), d.join("b.png"), d.join("stale.png")];
        // Inside pixal's tree, no record: incomplete.
        let e = completed_files(d, listed.clone(), true).unwrap_err();
        assert!(matches!(e, Incomplete::NoRecord { .. }), "{e}");
        // The user's own folder: every file.
        assert_eq!(
            completed_files(d, listed.clone(), false).unwrap().0.len(),
            3
        );
        finish(d, &record(&["a.png", "b.png"])).unwrap();
        let (files, rec) = completed_files(d, listed.clone(), true).unwrap();
        assert_eq!(files, vec![d.join("a.png"), d.join("b.png")]);
        assert_eq!(rec.unwrap().photos, 3);
        std::fs::remove_file(d.join("b.png")).unwrap();
        let e = completed_files(d, listed, true).unwrap_err().to_string();
        assert!(
            e.contains("1 of the 2 file(s) remove_bg wrote") && e.contains("b.png"),
            "{e}"
        );
        start(d).unwrap();
        assert!(read(d).unwrap().is_none());
    }
}
