//! The HTML summary page of a detection run: images sorted worst first with their scores,
//! verdicts and overlay thumbnails, the thresholds, the metrics when ground truth was given, the
//! figures, and the configuration used. One self-contained file that links the PNGs beside it.

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

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Builds the page. `facts` are (name, value) lines shown at the top (thresholds, metrics),
/// `figures` PNG paths relative to the report, `config` the YAML text used.
pub fn page(
    title: &str,
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
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\n<style>\
body{{font-family:sans-serif;margin:24px;color:#222}} table{{border-collapse:collapse}} \
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:middle}} \
th{{background:#eee}} .bad{{background:#fdd;font-weight:bold}} .good{{background:#dfd}} \
.worst{{outline:3px solid #d00}} img.thumb{{width:320px}} pre{{background:#f6f6f6;padding:8px;overflow:auto}} \
.fig{{display:inline-block;margin:6px}} .fig img{{width:460px}}</style></head><body>\n<h1>{t}</h1>\n",
        t = esc(title)
    );
    let anomalous = rows.iter().filter(|r| r.verdict == "anomalous").count();
    let _ = writeln!(
        h,
        "<p><b>{anomalous}</b> of <b>{}</b> image(s) anomalous.",
        rows.len()
    );
    if let Some(w) = sorted.first() {
        let _ = writeln!(
            h,
            " Worst: <b>{}</b> (score {:.3}).</p>",
            esc(&w.name),
            w.score
        );
    }
    h.push_str("<table>\n");
    for (k, v) in facts {
        let _ = writeln!(h, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
    }
    h.push_str("</table>\n<h2>Images (worst first)</h2>\n<table>\n<tr><th>#</th><th>image</th><th>type</th><th>score</th><th>mean</th><th>anomalous pixels %</th><th>verdict</th><th>truth</th><th>overlay</th></tr>\n");
    for (i, r) in sorted.iter().enumerate() {
        let cls = if r.verdict == "anomalous" {
            "bad"
        } else {
            "good"
        };
        let worst = if i == 0 { " class=\"worst\"" } else { "" };
        let truth = match r.truth {
            Some(true) => "defective",
            Some(false) => "good",
            None => "",
        };
        let thumb = r
            .overlay
            .as_ref()
            .map(|o| {
                format!(
                    "<a href=\"{0}\"><img class=\"thumb\" src=\"{0}\" alt=\"overlay\"></a>",
                    esc(o)
                )
            })
            .unwrap_or_default();
        let _ = writeln!(
            h,
            "<tr{worst}><td>{}</td><td>{}</td><td>{}</td><td>{:.4}</td><td>{:.4}</td><td>{:.3}</td><td class=\"{cls}\">{}</td><td>{truth}</td><td>{thumb}</td></tr>",
            i + 1,
            esc(&r.name),
            esc(&r.type_name),
            r.score,
            r.mean,
            r.anomalous_percent,
            esc(&r.verdict)
        );
    }
    h.push_str("</table>\n");
    if !figures.is_empty() {
        h.push_str("<h2>Figures</h2>\n");
        for f in figures {
            let _ = writeln!(
                h,
                "<div class=\"fig\"><a href=\"{0}\"><img src=\"{0}\" alt=\"{0}\"></a><br>{0}</div>",
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
    }
}
