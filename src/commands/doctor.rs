//! `pixal doctor`: what this pixal finds on this machine, and whether that is what the
//! configuration asks for.
//!
//! It reports the version and build (CUDA built in or not), the configuration it would use,
//! the ONNX Runtime library (and every place it looked), rembg's models in rembg's places (and
//! whether a missing one would be downloaded), and whether CUDA answers. The report goes to
//! stdout (as one JSON object with `--json`); the exit code is 1 when something the
//! configuration asks for is missing: an unreadable configuration, `method: onnx` without the
//! runtime or without a model it can find or download, `model_training.device: cuda` without a
//! usable GPU. `method: auto` only notes what it would fall back to.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::Summary;
use super::remove_bg::{self, download_base, download_forbidden, find_runtime, model_places};
use crate::config::Config;
use crate::config::resolved::TrainDevice;
use crate::model::device;
use crate::preprocess::background::{Method, models, onnx};

/// One line of the report: a label, what was found, and whether it is a problem.
struct Line {
    label: String,
    text: String,
    problem: bool,
}

/// Runs the checks; `config_dir` is `--config`, `json` is `--json`.
pub fn run(config_dir: &Path, json: bool) -> anyhow::Result<Summary> {
    let mut summary = Summary::new("doctor");
    let mut lines: Vec<Line> = Vec::new();
    let mut details = serde_json::Map::new();
    let add = |lines: &mut Vec<Line>, label: &str, text: String, problem: bool| {
        lines.push(Line {
            label: label.to_string(),
            text,
            problem,
        });
    };

    // Version and build.
    let version = env!("CARGO_PKG_VERSION");
    add(
        &mut lines,
        "pixal",
        format!(
            "{version} (CUDA {}; JPEG decoding by libjpeg-turbo, as PIL and OpenCV)",
            if device::CUDA_BUILT {
                "built in"
            } else {
                "not built in: cargo build --release --features cuda"
            }
        ),
        false,
    );
    details.insert("version".into(), json!(version));
    details.insert("cuda_built".into(), json!(device::CUDA_BUILT));

    // Configuration.
    let cfg = match Config::load(config_dir) {
        Ok(cfg) => {
            add(
                &mut lines,
                "config",
                format!(
                    "{} and {}",
                    absolute(&cfg.dir.join("parameters.yaml")).display(),
                    absolute(&cfg.dir.join("paths.yaml")).display()
                ),
                false,
            );
            details.insert(
                "config".into(),
                json!({ "dir": absolute(&cfg.dir), "ok": true, "hash": cfg.hash }),
            );
            Some(cfg)
        }
        Err(e) => {
            add(&mut lines, "config", format!("cannot be used: {e}"), true);
            details.insert(
                "config".into(),
                json!({ "dir": absolute(config_dir), "ok": false, "error": e.to_string() }),
            );
            None
        }
    };
    let rb = cfg
        .as_ref()
        .map(|c| &c.params.preprocessing.remove_background);
    if let Some(rb) = rb {
        let method = match rb.method {
            Method::Auto => "auto",
            Method::Onnx => "onnx",
            Method::Classical => "classical",
        };
        add(
            &mut lines,
            "remove_bg",
            format!("method {method}, model {}", rb.model),
            false,
        );
        details.insert(
            "remove_bg".into(),
            json!({ "method": method, "model": rb.model, "post_process_mask": rb.post_process_mask }),
        );
    }
    let needs_onnx = rb.is_some_and(|r| r.method == Method::Onnx);
    let wants_onnx = rb.is_some_and(|r| r.method != Method::Classical);

    // ONNX Runtime.
    let configured = rb.and_then(|r| r.onnxruntime.clone());
    // Where the library came from, in find_runtime's order (its error lists every place).
    let source = if configured.is_some() {
        "preprocessing.remove_background.onnxruntime"
    } else if std::env::var_os("ORT_DYLIB_PATH").is_some_and(|v| !v.is_empty()) {
        "ORT_DYLIB_PATH"
    } else {
        "the onnxruntime Python package (onnxruntime not set in the config, ORT_DYLIB_PATH unset)"
    };
    let mut runtime_loads = false;
    let runtime = match find_runtime(configured.as_deref()) {
        Ok(lib) => match onnx::load_runtime(&lib) {
            Ok(loaded) => {
                runtime_loads = true;
                add(
                    &mut lines,
                    "onnxruntime",
                    format!("{} (loads; from {source})", loaded.display()),
                    false,
                );
                json!({ "found": true, "path": loaded, "loads": true, "from": source })
            }
            Err(e) => {
                add(&mut lines, "onnxruntime", e.to_string(), needs_onnx);
                json!({ "found": true, "path": lib, "loads": false, "error": e.to_string() })
            }
        },
        Err(why) => {
            add(&mut lines, "onnxruntime", why.clone(), needs_onnx);
            json!({ "found": false, "error": why })
        }
    };
    details.insert("onnxruntime".into(), runtime);

    // Models.
    let forbidden = cfg.as_ref().and_then(download_forbidden);
    let base = cfg
        .as_ref()
        .map(download_base)
        .unwrap_or_else(|| models::RELEASE_URL.to_string());
    match &forbidden {
        Some(why) => add(&mut lines, "downloads", format!("off: {why}"), false),
        None => add(
            &mut lines,
            "downloads",
            format!("on first use, from {base}"),
            false,
        ),
    }
    details.insert(
        "downloads".into(),
        json!({ "allowed": forbidden.is_none(), "why_not": forbidden, "base_url": base }),
    );
    let configured_model = rb.map(|r| r.model.clone());
    let mut model_rows = Vec::new();
    if let Some(m) = configured_model
        .as_deref()
        .filter(|m| onnx::is_model_path(m))
    {
        let ok = Path::new(m).is_file();
        add(
            &mut lines,
            "model (configured file)",
            format!("{m}: {}", if ok { "found" } else { "missing" }),
            !ok && needs_onnx,
        );
        model_rows.push(json!({ "name": m, "configured": true, "found": ok, "looked": [m] }));
    }
    for info in &models::MODELS {
        let is_configured = configured_model.as_deref() == Some(info.name);
        let label = if is_configured {
            format!("model {} (configured)", info.name)
        } else {
            format!("model {}", info.name)
        };
        match model_places(info.name) {
            Ok(places) => {
                let looked: Vec<PathBuf> = places.candidates.clone();
                let found = places.existing().map(Path::to_path_buf);
                let text = match &found {
                    Some(p) => format!("{}", p.display()),
                    None => format!(
                        "not found (looked at {}){}",
                        looked
                            .iter()
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                        if is_configured && wants_onnx && forbidden.is_none() {
                            format!("; will be downloaded into {}", places.model_dir.display())
                        } else {
                            String::new()
                        }
                    ),
                };
                let problem = is_configured && needs_onnx && found.is_none() && forbidden.is_some();
                add(&mut lines, &label, text, problem);
                model_rows.push(json!({
                    "name": info.name,
                    "configured": is_configured,
                    "found": found,
                    "looked": looked,
                    "download_dir": places.model_dir,
                    "url": info.url(&base),
                }));
            }
            Err(why) => {
                add(&mut lines, &label, why.clone(), is_configured && needs_onnx);
                model_rows
                    .push(json!({ "name": info.name, "configured": is_configured, "error": why }));
            }
        }
    }
    details.insert("models".into(), Value::Array(model_rows));
    if let Some(rb) = rb
        && rb.method == Method::Auto
    {
        let runtime_ok = runtime_loads;
        // The configured model is usable when found, or when it would be downloaded.
        let model_ok = match cfg.as_ref().map(remove_bg::locate_model) {
            Some(Ok(_)) => true,
            Some(Err(m)) => m.downloadable.is_some() && forbidden.is_none(),
            None => false,
        };
        let why_not = match (runtime_ok, model_ok) {
            (true, true) => None,
            (false, _) => Some("no usable ONNX Runtime library"),
            (true, false) => Some("its model is missing and cannot be downloaded"),
        };
        if let Some(w) = why_not {
            add(
                &mut lines,
                "remove_bg",
                format!("auto will use the classical method ({w})"),
                false,
            );
        }
    }

    // CUDA (training).
    let requested = cfg.as_ref().map(|c| c.params.model_training.device);
    let cuda = if device::CUDA_BUILT {
        match device::probe_cuda() {
            Ok(()) => {
                add(&mut lines, "cuda", "device 0 answers".into(), false);
                json!({ "built": true, "answers": true })
            }
            Err(e) => {
                add(
                    &mut lines,
                    "cuda",
                    format!("does not answer: {e}"),
                    requested == Some(TrainDevice::Cuda),
                );
                json!({ "built": true, "answers": false, "error": e })
            }
        }
    } else {
        add(
            &mut lines,
            "cuda",
            format!(
                "not built in{}",
                if device::driver_library_present() {
                    " (a CUDA driver is installed: build with --features cuda to use it)"
                } else {
                    ""
                }
            ),
            requested == Some(TrainDevice::Cuda),
        );
        json!({ "built": false, "answers": false, "driver_library": device::driver_library_present() })
    };
    details.insert("cuda".into(), cuda);
    if let Some(d) = requested {
        let d = match d {
            TrainDevice::Auto => "auto",
            TrainDevice::Cpu => "cpu",
            TrainDevice::Cuda => "cuda",
        };
        add(&mut lines, "training device", d.to_string(), false);
        details.insert("training_device".into(), json!(d));
    }

    for l in &lines {
        if l.problem {
            summary.fail(
                config_dir,
                format!(
                    "doctor: {}: {} (the configuration needs it)",
                    l.label, l.text
                ),
            );
        }
    }
    if !json {
        let width = lines.iter().map(|l| l.label.len()).max().unwrap_or(0);
        for l in &lines {
            let mark = if l.problem { "MISSING " } else { "" };
            println!("{:width$}  {mark}{}", l.label, l.text);
        }
    }
    summary.details = Some(Value::Object(details));
    Ok(summary)
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}
