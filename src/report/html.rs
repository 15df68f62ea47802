//! The HTML pages of a detection run. Per type, `report.html`: what was run (date, pixal
//! version, inputs, model), the thresholds and metrics, the run's warnings and errors, the
//! images worst first with their verdicts (wrong ones, against ground truth, in red) and overlay
//! thumbnails that open the full figure, the figures, and the configuration used. Per
//! component, `index.html`: one line per type linking its page. Self-contained files that link
//! the PNGs beside them.

use std::fmt::Write as _;

/// One row of the report table.
#[derive(Debug, Clone)]
pub struct ReportRow {
    /// Image name.
    pub name: String,
    /// Image type.
    pub type_name: String,
    /// Image score (max of the smoothed map).
    pub score: f64,
    /// Mean of the map.
    pub mean: f64,
    /// `anomalous` or `good`.
    pub verdict: String,
    /// Anomalous pixel share in percent.
    pub anomalous_percent: f64,
    /// Overlay PNG, relative to the report.
    pub overlay: Option<String>,
    /// Ground truth, when known: true = defective.
    pub truth: Option<bool>,
}

impl ReportRow {
    /// Whether the verdict contradicts the ground truth (a good part flagged, a defect missed).
    pub fn wrong(&self) -> bool {
        self.truth
            .is_some_and(|t| t != (self.verdict == "anomalous"))
    }
}

/// What was run: shown at the top of each page.
#[derive(Debug, Clone, Default)]
pub struct RunInfo {
    /// When (UTC).
    pub date: String,
    /// pixal's version.
    pub version: String,
    /// (name, value) lines: inputs, model, ground truth, ...
    pub inputs: Vec<(String, String)>,
    /// The run's warnings.
    pub warnings: Vec<String>,
    /// The run's errors (inputs that failed).
    pub errors: Vec<String>,
}

/// `t` as `YYYY-MM-DD HH:MM:SS UTC` (no time-zone database needed).
pub fn utc_timestamp(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // The log's ISO 8601 form (`YYYY-MM-DDTHH:MM:SSZ`), written for people.
    crate::logging::format_utc(i64::try_from(secs).unwrap_or(i64::MAX))
        .replace('T', " ")
        .replace('Z', " UTC")
}

const STYLE: &str = "body{font-family:sans-serif;margin:24px;color:#222;max-width:1500px} \
table{border-collapse:collapse;margin-bottom:12px} \
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:middle} \
th{background:#eee} .bad{background:#fdd;font-weight:bold} .good{background:#dfd} \
tr.wrong td{background:#ffd0d0} tr.wrong td.flag{color:#b00;font-weight:bold} \
.worst{outline:3px solid #d00} img.thumb{width:560px} .cap{font-size:15px;margin:2px 0 6px} \
pre{background:#f6f6f6;padding:8px;overflow:auto} .warn{color:#8a5a00} .err{color:#b00} \
.fig{display:inline-block;margin:6px;vertical-align:top} .fig img{width:460px} \
.answer{font-size:20px;padding:8px 12px;border-radius:6px;display:inline-block} \
.answer.bad{background:#fdd} .answer.good{background:#dfd}";

/// The run's facts, warnings and errors as HTML.
fn run_section(h: &mut String, run: &RunInfo) {
    h.push_str("<table>\n");
    let _ = writeln!(h, "<tr><th>run</th><td>{}</td></tr>", esc(&run.date));
    let _ = writeln!(h, "<tr><th>pixal</th><td>{}</td></tr>", esc(&run.version));
    for (k, v) in &run.inputs {
        let _ = writeln!(h, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
    }
    h.push_str("</table>\n");
    if run.errors.is_empty() && run.warnings.is_empty() {
        h.push_str("<p>No warnings or errors.</p>\n");
    }
    message_list(h, "err", "error(s)", &run.errors);
    message_list(h, "warn", "warning(s)", &run.warnings);
}

/// A heading with the count and a list of `messages` in CSS class `class`; nothing when there
/// are none.
fn message_list(h: &mut String, class: &str, what: &str, messages: &[String]) {
    if messages.is_empty() {
        return;
    }
    let _ = writeln!(
        h,
        "<h3 class=\"{class}\">{} {what}</h3>\n<ul>",
        messages.len()
    );
    for m in messages {
        let _ = writeln!(h, "<li class=\"{class}\">{}</li>", esc(m));
    }
    h.push_str("</ul>\n");
}

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Builds a type's page. `facts` are (name, value) lines (thresholds, metrics), `figures` PNG
/// paths relative to the report, `config` the YAML text used.
pub fn page(
    title: &str,
    run: &RunInfo,
    facts: &[(String, String)],
    rows: &[ReportRow],
    figures: &[String],
    config: &str,
) -> String {
    let mut sorted: Vec<&ReportRow> = rows.iter().collect();
    sorted.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\n<style>{STYLE}</style></head><body>\n<p><a href=\"../index.html\">&larr; all types</a></p>\n<h1>{t}</h1>\n",
        t = esc(title)
    );
    let anomalous = rows.iter().filter(|r| r.verdict == "anomalous").count();
    let cls = if anomalous > 0 { "bad" } else { "good" };
    let _ = write!(
        h,
        "<p class=\"answer {cls}\"><b>{anomalous}</b> of <b>{}</b> image(s) anomalous.",
        rows.len()
    );
    if let Some(w) = sorted.first() {
        let _ = write!(h, " Worst: <b>{}</b> (score {:.3}).", esc(&w.name), w.score);
    }
    h.push_str("</p>\n");
    let with_truth = rows.iter().any(|r| r.truth.is_some());
    if with_truth {
        let flagged = rows
            .iter()
            .filter(|r| r.wrong() && r.truth == Some(false))
            .count();
        let missed = rows
            .iter()
            .filter(|r| r.wrong() && r.truth == Some(true))
            .count();
        let _ = writeln!(
            h,
            "<p class=\"answer {}\">Against ground truth: <b>{}</b> wrong verdict(s): {flagged} good part(s) flagged, {missed} defect(s) missed.</p>",
            if flagged + missed > 0 { "bad" } else { "good" },
            flagged + missed
        );
    }
    h.push_str("<h2>Run</h2>\n");
    run_section(&mut h, run);
    h.push_str("<h2>Thresholds and metrics</h2>\n<table>\n");
    for (k, v) in facts {
        let _ = writeln!(h, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
    }
    h.push_str("</table>\n<h2>Images (worst first)</h2>\n<p>Click a thumbnail for the full figure. Cyan outline: score at or above the pixel threshold; green outline: the true defect.</p>\n<table>\n<tr><th>#</th><th>image</th><th>score</th><th>mean</th><th>anomalous pixels %</th><th>verdict</th>");
    if with_truth {
        h.push_str("<th>truth</th><th>check</th>");
    }
    h.push_str("<th>overlay</th></tr>\n");
    for (i, r) in sorted.iter().enumerate() {
        let cls = if r.verdict == "anomalous" {
            "bad"
        } else {
            "good"
        };
        let mut classes = Vec::new();
        if i == 0 {
            classes.push("worst");
        }
        if r.wrong() {
            classes.push("wrong");
        }
        let row_class = if classes.is_empty() {
            String::new()
        } else {
            format!(" class=\"{}\"", classes.join(" "))
        };
        let thumb = r
            .overlay
            .as_ref()
            .map(|o| {
                format!(
                    "<div class=\"cap\">{1} [{2}]</div><a href=\"{0}\" target=\"_blank\"><img class=\"thumb\" src=\"{0}\" alt=\"overlay of {1}\" loading=\"lazy\"></a>",
                    esc(o),
                    esc(&r.name),
                    esc(&r.type_name)
                )
            })
            .unwrap_or_default();
        let _ = write!(
            h,
            "<tr{row_class}><td>{}</td><td>{}</td><td>{:.4}</td><td>{:.4}</td><td>{:.3}</td><td class=\"{cls}\">{}</td>",
            i + 1,
            esc(&r.name),
            r.score,
            r.mean,
            r.anomalous_percent,
            esc(&r.verdict)
        );
        if with_truth {
            let truth = match r.truth {
                Some(true) => "defective",
                Some(false) => "good",
                None => "",
            };
            let check = match (r.wrong(), r.truth) {
                (true, Some(false)) => "WRONG: good part flagged",
                (true, _) => "WRONG: defect missed",
                (false, Some(_)) => "ok",
                (false, None) => "",
            };
            let _ = write!(h, "<td>{truth}</td><td class=\"flag\">{check}</td>");
        }
        let _ = writeln!(h, "<td>{thumb}</td></tr>");
    }
    h.push_str("</table>\n");
    if !figures.is_empty() {
        h.push_str("<h2>Figures</h2>\n");
        for f in figures {
            let _ = writeln!(
                h,
                "<div class=\"fig\"><a href=\"{0}\" target=\"_blank\"><img src=\"{0}\" alt=\"{0}\"></a><br>{0}</div>",
                esc(f)
            );
        }
    }
    let _ = write!(
        h,
        "<h2>Configuration used</h2>\n<pre>{}</pre>\n</body></html>\n",
        esc(config)
    );
    h
}

/// One line of the component index: a type and what its run found.
#[derive(Debug, Clone, Default)]
pub struct IndexEntry {
    /// The type (or "all types" for a one-hot model).
    pub type_name: String,
    /// Its report, relative to the index.
    pub report: String,
    /// When its summary was written (UTC).
    pub date: String,
    /// Images judged.
    pub images: usize,
    /// Images judged anomalous.
    pub anomalous: usize,
    /// Wrong verdicts against ground truth (None without ground truth).
    pub wrong: Option<usize>,
    /// Thresholds, as text.
    pub thresholds: String,
    /// Image AUROC etc., as text (empty without ground truth).
    pub metrics: String,
    /// The model used.
    pub model: String,
}

/// Builds the component's index page.
pub fn index_page(component: &str, run: &RunInfo, entries: &[IndexEntry]) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>pixal — {t}</title>\n<style>{STYLE}</style></head><body>\n<h1>pixal — {t}</h1>\n",
        t = esc(component)
    );
    let images: usize = entries.iter().map(|e| e.images).sum();
    let anomalous: usize = entries.iter().map(|e| e.anomalous).sum();
    let _ = writeln!(
        h,
        "<p class=\"answer {}\"><b>{anomalous}</b> of <b>{images}</b> image(s) anomalous, over {} type(s).</p>",
        if anomalous > 0 { "bad" } else { "good" },
        entries.len()
    );
    if entries.iter().any(|e| e.wrong.is_some()) {
        let wrong: usize = entries.iter().filter_map(|e| e.wrong).sum();
        let _ = writeln!(
            h,
            "<p class=\"answer {}\">Against ground truth: <b>{wrong}</b> wrong verdict(s).</p>",
            if wrong > 0 { "bad" } else { "good" }
        );
    }
    h.push_str("<h2>Types</h2>\n<table>\n<tr><th>type</th><th>images</th><th>anomalous</th><th>wrong verdicts</th><th>thresholds</th><th>metrics</th><th>model</th><th>run</th></tr>\n");
    for e in entries {
        let wrong_class = if e.wrong.is_some_and(|w| w > 0) {
            " class=\"wrong\""
        } else {
            ""
        };
        let _ = writeln!(
            h,
            "<tr{wrong_class}><td><a href=\"{}\">{}</a></td><td>{}</td><td class=\"{}\">{}</td><td class=\"flag\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&e.report),
            esc(&e.type_name),
            e.images,
            if e.anomalous > 0 { "bad" } else { "good" },
            e.anomalous,
            e.wrong
                .map_or("no ground truth".to_string(), |w| w.to_string()),
            esc(&e.thresholds),
            esc(&e.metrics),
            esc(&e.model),
            esc(&e.date)
        );
    }
    h.push_str("</table>\n<h2>Run</h2>\n");
    run_section(&mut h, run);
    h.push_str("</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_image_comes_first_and_text_is_escaped() {
        let row = |n: &str, s: f64, v: &str| ReportRow {
            name: n.into(),
            type_name: "t".into(),
            score: s,
            mean: 0.0,
            verdict: v.into(),
            anomalous_percent: 0.0,
            overlay: None,
            truth: None,
        };
        let p = page(
            "run <1>",
            &RunInfo::default(),
            &[("threshold".into(), "3.5".into())],
            &[row("a.png", 1.0, "good"), row("b&.png", 9.0, "anomalous")],
            &[],
            "k: v",
        );
        assert!(p.contains("run &lt;1&gt;"));
        let b = p.find("b&amp;.png").unwrap();
        let a = p.rfind("a.png").unwrap();
        assert!(b < a, "worst first");
        assert!(p.contains("Worst: <b>b&amp;.png</b>"));
        assert!(p.contains("<b>1</b> of <b>2</b>"));
        assert!(!p.contains("WRONG"), "no ground truth, no verdict check");
    }

    #[test]
    fn wrong_verdicts_stand_out_and_the_index_links_each_type() {
        let row = |n: &str, v: &str, t: bool| ReportRow {
            name: n.into(),
            type_name: "front".into(),
            score: if v == "anomalous" { 9.0 } else { 1.0 },
            mean: 0.0,
            verdict: v.into(),
            anomalous_percent: 0.0,
            overlay: Some(format!("figures/000_{n}_overlay.png")),
            truth: Some(t),
        };
        let rows = [
            row("good_flagged", "anomalous", false),
            row("missed", "good", true),
            row("found", "anomalous", true),
            row("fine", "good", false),
        ];
        let run = RunInfo {
            date: utc_timestamp(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000),
            ),
            version: "0.1.0".into(),
            inputs: vec![("photos".into(), "/data/new".into())],
            warnings: vec!["w <1>".into()],
            errors: vec![],
        };
        assert_eq!(run.date, "2023-11-14 22:13:20 UTC");
        let p = page("front", &run, &[], &rows, &[], "");
        assert_eq!(
            p.matches("<tr class=\"wrong\">").count() + p.matches("class=\"worst wrong\"").count(),
            2
        );
        assert!(p.contains("WRONG: good part flagged") && p.contains("WRONG: defect missed"));
        assert!(
            p.contains("<b>2</b> wrong verdict(s): 1 good part(s) flagged, 1 defect(s) missed")
        );
        assert!(p.contains("2023-11-14 22:13:20 UTC") && p.contains("/data/new"));
        assert!(p.contains("w &lt;1&gt;"));
        assert!(p.contains(
            "<a href=\"figures/000_missed_overlay.png\" target=\"_blank\"><img class=\"thumb\""
        ));
        let idx = index_page(
            "flex",
            &run,
            &[IndexEntry {
                type_name: "front".into(),
                report: "front/report.html".into(),
                images: 4,
                anomalous: 2,
                wrong: Some(2),
                ..IndexEntry::default()
            }],
        );
        assert!(idx.contains("<a href=\"front/report.html\">front</a>"));
        assert!(idx.contains("<b>2</b> wrong verdict(s)"));
    }
}
