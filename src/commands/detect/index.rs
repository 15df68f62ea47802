//! `index.html` of a validate component folder: one line per type that has a `summary.json`
//! (this run's and earlier runs'), linking each type's report.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::commands::Summary;
use crate::report::html::{IndexEntry, RunInfo, index_page, utc_timestamp};

/// Writes `index.html` in a validate component folder: one line per type whose `summary.json`
/// it finds (linking that type's `report.html`), and this run's warnings and errors. A failure
/// to write it is a warning: the per-type reports are the results.
pub fn write_index(root: &Path, truth: Option<&Path>, summary: &mut Summary) {
    match index_entries(root) {
        Ok(entries) if !entries.is_empty() => {
            let component = root
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let run = RunInfo {
                date: utc_timestamp(std::time::SystemTime::now()),
                version: crate::VERSION.to_string(),
                inputs: vec![
                    ("validate folder".into(), root.display().to_string()),
                    (
                        "ground truth".into(),
                        truth.map_or("none given (pass --truth DIR)".into(), |t| {
                            t.display().to_string()
                        }),
                    ),
                ],
                warnings: summary.warnings.clone(),
                errors: summary.failed.iter().map(|f| f.error.clone()).collect(),
            };
            let path = root.join("index.html");
            match crate::io::atomic::write_bytes(
                &path,
                index_page(&component, &run, &entries).as_bytes(),
            ) {
                Ok(()) => {
                    summary.output(&path);
                    log::info!("report: {}", path.display());
                }
                Err(e) => summary.warn(format!("{}: index not written: {e}", path.display())),
            }
        }
        Ok(_) => {}
        Err(e) => summary.warn(format!(
            "{}: index not written: {}",
            root.display(),
            crate::commands::error_text(&e)
        )),
    }
}

/// The index lines of the types under `root` (and of `root` itself, for a one-hot model) that
/// have a `summary.json`, read back from it so the index covers earlier runs' types too.
fn index_entries(root: &Path) -> anyhow::Result<Vec<IndexEntry>> {
    let mut dirs = vec![root.to_path_buf()];
    if let Ok(rd) = std::fs::read_dir(root) {
        let mut sub: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        sub.sort();
        dirs.extend(sub);
    }
    let mut out = Vec::new();
    for d in dirs {
        let file = d.join("summary.json");
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{}: not valid JSON", file.display()))?;
        let images = v["images"].as_array().cloned().unwrap_or_default();
        let anomalous = images
            .iter()
            .filter(|i| i["verdict"] == "anomalous")
            .count();
        let with_truth = images.iter().any(|i| i["truth"].is_boolean());
        let wrong = with_truth.then(|| {
            images
                .iter()
                .filter(|i| {
                    i["truth"]
                        .as_bool()
                        .is_some_and(|t| t != (i["verdict"] == "anomalous"))
                })
                .count()
        });
        let num =
            |x: &serde_json::Value| x.as_f64().map_or("n/a".to_string(), |f| format!("{f:.4}"));
        let t = &v["thresholds"];
        let m = &v["metrics"];
        let metrics = if m.is_object() {
            format!(
                "image AUROC {}, pixel AUROC {}, AUPRO {}",
                num(&m["image_auroc"]),
                num(&m["pixel_auroc"]),
                num(&m["aupro_0_3"])
            )
        } else {
            String::new()
        };
        let date = std::fs::metadata(&file)
            .and_then(|m| m.modified())
            .map(utc_timestamp)
            .unwrap_or_default();
        out.push(IndexEntry {
            type_name: v["type_name"].as_str().unwrap_or("all types").to_string(),
            report: super::outputs::pathdiff(&d.join("report.html"), root),
            date,
            images: images.len(),
            anomalous,
            wrong,
            thresholds: format!("pixel {}, image {}", num(&t["pixel"]), num(&t["image"])),
            metrics,
            model: format!(
                "{} ({})",
                v["model"].as_str().unwrap_or(""),
                v["model_kind"].as_str().unwrap_or("")
            ),
        });
    }
    Ok(out)
}
