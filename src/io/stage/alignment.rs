//! `alignment.csv`, align's record of what it did, one row per aligned image (the reference
//! included, aligned to itself): the reference used, the match and quality scores, the
//! photo -> reference homography and the source file. validate reads it back for the training
//! references and for the homographies that take anomaly maps back to the photo.

use std::path::Path;

use crate::io::{IoError, atomic, table};

/// One row of `alignment.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct AlignmentRow {
    /// The aligned image's file name (in the aligned folder).
    pub image: String,
    /// The reference it was aligned to (a file name in the training aligned folder).
    pub reference: String,
    /// RANSAC inliers (0 for the reference itself).
    pub inliers: usize,
    /// Inliers over good matches (0 for the reference itself).
    pub inlier_ratio: f64,
    /// SSIM against the reference.
    pub ssim: f64,
    /// Gray MSE against the reference.
    pub mse: f64,
    /// Photo -> reference frame homography, row-major.
    pub homography: [f64; 9],
    /// The image that was aligned (its path as given).
    pub source: String,
}

/// The header of `alignment.csv`.
pub const ALIGNMENT_CSV_HEADER: &str =
    "image,reference,inliers,inlier_ratio,ssim,mse,h00,h01,h02,h10,h11,h12,h20,h21,h22,source";

/// Writes `alignment.csv` atomically.
pub fn write_alignment_csv(path: &Path, rows: &[AlignmentRow]) -> Result<(), IoError> {
    let header: Vec<&str> = ALIGNMENT_CSV_HEADER.split(',').collect();
    let records = rows.iter().map(|r| {
        let mut f = vec![
            r.image.clone(),
            r.reference.clone(),
            r.inliers.to_string(),
            format!("{:.6}", r.inlier_ratio),
            format!("{:.6}", r.ssim),
            format!("{:.4}", r.mse),
        ];
        f.extend(r.homography.iter().map(|v| format!("{v}")));
        f.push(r.source.clone());
        f
    });
    let bytes = table::to_csv(&header, records)?;
    atomic::write_bytes(path, &bytes)
}

/// Reads an `alignment.csv` written by [`write_alignment_csv`]; a row whose numbers do not
/// parse is an error naming the file and the line.
pub fn read_alignment_csv(path: &Path) -> Result<Vec<AlignmentRow>, IoError> {
    let records = table::read_csv(path, 16)?;
    let mut rows = Vec::with_capacity(records.len());
    for rec in &records {
        let line = rec.position().map_or(0, |p| p.line());
        let bad = || IoError::Metadata {
            path: path.to_path_buf(),
            reason: format!("line {line}: malformed alignment row"),
        };
        let field = |k: usize| rec.get(k).unwrap_or_default();
        let num = |k: usize| field(k).trim().parse::<f64>().map_err(|_| bad());
        let mut h = [0.0; 9];
        for (k, v) in h.iter_mut().enumerate() {
            *v = num(6 + k)?;
        }
        rows.push(AlignmentRow {
            image: field(0).to_string(),
            reference: field(1).to_string(),
            inliers: field(2).trim().parse().map_err(|_| bad())?,
            inlier_ratio: num(3)?,
            ssim: num(4)?,
            mse: num(5)?,
            homography: h,
            source: field(15).to_string(),
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_csv_round_trips() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("alignment.csv");
        let rows = vec![
            AlignmentRow {
                image: "a_aligned.png".into(),
                reference: "a_aligned.png".into(),
                inliers: 0,
                inlier_ratio: 0.0,
                ssim: 1.0,
                mse: 0.0,
                homography: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
                source: "in/t/a.png".into(),
            },
            AlignmentRow {
                image: "b, \"2\"_aligned.png".into(),
                reference: "a_aligned.png".into(),
                inliers: 321,
                inlier_ratio: 0.875,
                ssim: 0.912345,
                mse: 12.5,
                homography: [1.01, -0.02, 3.5, 0.02, 0.99, -4.25, 1e-6, -2e-7, 1.0],
                source: "in/t/b.png".into(),
            },
        ];
        write_alignment_csv(&p, &rows).unwrap();
        let back = read_alignment_csv(&p).unwrap();
        assert_eq!(back, rows);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.starts_with(ALIGNMENT_CSV_HEADER));
    }

    #[test]
    fn a_malformed_row_names_the_file_and_line() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("alignment.csv");
        let mut text = format!("{ALIGNMENT_CSV_HEADER}\n");
        text.push_str("a.png,a.png,0,0,1,0,1,0,0,0,1,0,0,0,1,a.png\n");
        text.push_str("b.png,a.png,many,0,1,0,1,0,0,0,1,0,0,0,1,b.png\n");
        std::fs::write(&p, text).unwrap();
        let msg = read_alignment_csv(&p).unwrap_err().to_string();
        assert!(
            msg.contains("alignment.csv") && msg.contains("line 3: malformed alignment row"),
            "{msg}"
        );
    }
}
