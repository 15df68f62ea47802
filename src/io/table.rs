//! CSV tables of the stage contracts (`alignment.csv`, `scores.csv`), written and read with the
//! csv crate: fields are quoted only where needed (a comma, quote or line break in a file name),
//! so ordinary rows read as plain comma-separated text, as the original's files did.

use std::path::Path;

use super::IoError;

/// The CSV text of `header` and `rows` (each row one field per column), `\n`-terminated.
pub fn to_csv<I, R>(header: &[&str], rows: I) -> Result<Vec<u8>, IoError>
where
    I: IntoIterator<Item = R>,
    R: IntoIterator<Item = String>,
{
    let encode = |e: csv::Error| IoError::Encode {
        path: "<csv>".into(),
        reason: e.to_string(),
    };
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    w.write_record(header).map_err(encode)?;
    for row in rows {
        w.write_record(row).map_err(encode)?;
    }
    w.into_inner().map_err(|e| IoError::Encode {
        path: "<csv>".into(),
        reason: e.to_string(),
    })
}

/// The records of the CSV file `path` after its header row; every record must have at least
/// `min_fields` fields (an error names the file and the line otherwise).
pub fn read_csv(path: &Path, min_fields: usize) -> Result<Vec<csv::StringRecord>, IoError> {
    let bytes = std::fs::read(path).map_err(|source| IoError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(bytes.as_slice());
    let mut out = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| IoError::Metadata {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        if rec.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if rec.len() < min_fields {
            let line = rec.position().map_or(0, |p| p.line());
            return Err(IoError::Metadata {
                path: path.to_path_buf(),
                reason: format!(
                    "line {line}: {} field(s), expected at least {min_fields}",
                    rec.len()
                ),
            });
        }
        out.push(rec);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_fields_stay_plain_and_odd_ones_round_trip() {
        let rows = vec![
            vec!["a.png".to_string(), "1.5".to_string()],
            vec!["we,ird \"name\"\nx.png".to_string(), String::new()],
        ];
        let bytes = to_csv(&["file", "score"], rows.clone()).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with("file,score\na.png,1.5\n"), "{text}");
        assert!(text.contains("\"we,ird \"\"name\"\"\nx.png\","), "{text}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        std::fs::write(&p, &bytes).unwrap();
        let back: Vec<Vec<String>> = read_csv(&p, 2)
            .unwrap()
            .iter()
            .map(|r| r.iter().map(str::to_string).collect())
            .collect();
        assert_eq!(back, rows);
        let msg = read_csv(&p, 3).unwrap_err().to_string();
        assert!(
            msg.contains("t.csv") && msg.contains("expected at least 3"),
            "{msg}"
        );
    }
}
