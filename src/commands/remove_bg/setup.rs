//! What the ONNX method needs, found or fetched: the model file (a path, or a rembg name looked
//! up in rembg's places and downloaded on first use as rembg does) and the ONNX Runtime library
//! (configured, `$ORT_DYLIB_PATH`, or the `onnxruntime` Python package); each says where it
//! looked when it finds nothing.

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::preprocess::background::models::{self, RembgPlaces};
use crate::preprocess::background::onnx::{self, Contract, OnnxRemover};

/// rembg's places for the model `name`, from this process's environment.
pub fn model_places(name: &str) -> Result<RembgPlaces, String> {
    models::rembg_places(name, |k| std::env::var_os(k))
}

/// Why downloading models is forbidden, or `None` when it is allowed: the config's
/// `preprocessing.remove_background.download: False`, or `PIXAL_NO_DOWNLOAD` set to anything
/// but `0` or nothing.
pub fn download_forbidden(cfg: &Config) -> Option<String> {
    if let Some(v) = std::env::var_os("PIXAL_NO_DOWNLOAD")
        && !v.is_empty()
        && v != "0"
    {
        return Some(format!(
            "PIXAL_NO_DOWNLOAD={} forbids downloads",
            v.to_string_lossy()
        ));
    }
    if !cfg.params.preprocessing.remove_background.download {
        return Some(format!(
            "preprocessing.remove_background.download is False in {}",
            cfg.dir.join("parameters.yaml").display()
        ));
    }
    None
}

/// The base address models are downloaded from: `$PIXAL_MODEL_URL`, else the config's
/// `download_url`, else rembg's release.
pub fn download_base(cfg: &Config) -> String {
    std::env::var("PIXAL_MODEL_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .or_else(|| {
            cfg.params
                .preprocessing
                .remove_background
                .download_url
                .clone()
        })
        .unwrap_or_else(|| models::RELEASE_URL.to_string())
}

/// A model the config names that is not where rembg keeps it.
pub struct MissingModel {
    /// What is missing and every place looked at.
    pub message: String,
    /// The table entry and rembg's folder for it, when it could be downloaded there.
    pub downloadable: Option<(&'static models::ModelInfo, PathBuf)>,
}

/// The model file the config asks for, without downloading: a path, or a rembg name found in
/// rembg's places.
pub fn locate_model(cfg: &Config) -> Result<PathBuf, MissingModel> {
    let rb = &cfg.params.preprocessing.remove_background;
    if onnx::is_model_path(&rb.model) {
        return onnx::find_model(&rb.model, &[]).map_err(|_| MissingModel {
            message: format!("the model file {} does not exist", rb.model),
            downloadable: None,
        });
    }
    let places = model_places(&rb.model).map_err(|message| MissingModel {
        message,
        downloadable: None,
    })?;
    if let Some(found) = places.existing() {
        return Ok(found.to_path_buf());
    }
    let list = places
        .candidates
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let message = format!(
        "no `{}` model was found (looked for {list}: rembg's places, from {})",
        rb.model, places.decided_by
    );
    Err(MissingModel {
        message,
        downloadable: models::info(&rb.model).map(|i| (i, places.model_dir.clone())),
    })
}

/// The model file the config asks for ([`locate_model`]), downloaded into rembg's folder first
/// when it is missing and downloads are allowed; `before_download` runs first and can refuse
/// (no point fetching 170 MB without a runtime to run it). The error says what is missing,
/// every place looked at, and why nothing was downloaded.
pub fn obtain_model(
    cfg: &Config,
    before_download: impl FnOnce() -> Result<(), String>,
) -> Result<PathBuf, String> {
    let missing = match locate_model(cfg) {
        Ok(p) => return Ok(p),
        Err(m) => m,
    };
    let MissingModel {
        message,
        downloadable,
    } = missing;
    let rb = &cfg.params.preprocessing.remove_background;
    let Some((info, dir)) = downloadable else {
        return Err(if onnx::is_model_path(&rb.model) {
            message
        } else {
            format!(
                "{message}; copy {}.onnx there or set preprocessing.remove_background.model to the path of a .onnx file",
                rb.model
            )
        });
    };
    if let Some(why) = download_forbidden(cfg) {
        return Err(format!(
            "{message}, and {why} (pixal downloads nothing then): run `rembg d {}` or copy {} into {}",
            info.name,
            info.file_name(),
            dir.display()
        ));
    }
    before_download()?;
    let base = download_base(cfg);
    log::info!(
        "remove_bg: downloading rembg's `{}` model from {} into {}",
        info.name,
        info.url(&base),
        dir.display()
    );
    let bar = crate::logging::progress(0, &format!("download {}", info.name));
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg:24!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec:>12} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    let got = models::download(info, &base, &dir, &mut |done, total| {
        if let Some(t) = total {
            bar.set_length(t);
        }
        bar.set_position(done);
    });
    bar.finish_and_clear();
    match got {
        Ok(path) => {
            log::info!("remove_bg: installed {}", path.display());
            Ok(path)
        }
        Err(e) => Err(format!("{message}, and the download failed: {e}")),
    }
}

/// Finds the model and the runtime library and opens the model; the error says what is missing
/// and where pixal looked.
pub(super) fn load_onnx(
    cfg: &Config,
    images: usize,
    workers: usize,
) -> Result<OnnxRemover, String> {
    let rb = &cfg.params.preprocessing.remove_background;
    // The runtime is looked for before a download (without it the download would be wasted),
    // but a missing model is reported first when it cannot be downloaded anyway.
    let model = obtain_model(cfg, || find_runtime(rb.onnxruntime.as_deref()).map(|_| ()))?;
    let lib = find_runtime(rb.onnxruntime.as_deref())?;
    let loaded = onnx::load_runtime(&lib).map_err(|e| e.to_string())?;
    if loaded != std::path::absolute(&lib).unwrap_or(lib.clone()) {
        log::warn!(
            "ONNX Runtime is already loaded from {} in this process; {} is not used",
            loaded.display(),
            lib.display()
        );
    }
    let threads = rayon::current_num_threads();
    // A session per four cores at most (each runs its own intra-op threads), never more than
    // the workers or the photos: U2-Net holds ~170 MB per session.
    let sessions = workers.min(threads / 4).min(images).max(1);
    let intra = (threads / sessions).max(1);
    let stem = model
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = if onnx::is_model_path(&rb.model) {
        stem.as_str()
    } else {
        rb.model.as_str()
    };
    let remover = OnnxRemover::load(&model, Contract::for_model(name), sessions, intra)
        .map_err(|e| e.to_string())?;
    let c = remover.contract();
    log::info!(
        "remove_bg: ONNX model {} ({}x{} input, mean {:?}, std {:?}) on ONNX Runtime {}, {} session(s) x {} thread(s)",
        model.display(),
        c.size.0,
        c.size.1,
        c.mean,
        c.std,
        loaded.display(),
        remover.pool_size(),
        intra
    );
    Ok(remover)
}

/// The ONNX Runtime library: the configured file or folder, else `$ORT_DYLIB_PATH`, else the
/// onnxruntime Python package's `capi/` folder. The error lists every place looked at.
pub fn find_runtime(configured: Option<&Path>) -> Result<PathBuf, String> {
    const HINT: &str = "install it with `python3 -m pip install onnxruntime` (setup.sh does), or point ORT_DYLIB_PATH or preprocessing.remove_background.onnxruntime at libonnxruntime";
    if let Some(p) = configured {
        return onnx::find_runtime_library(p).ok_or_else(|| {
            format!(
                "preprocessing.remove_background.onnxruntime is {}, which is not the ONNX Runtime library nor a folder holding it",
                p.display()
            )
        });
    }
    let mut looked = vec!["preprocessing.remove_background.onnxruntime (not set)".to_string()];
    match std::env::var_os("ORT_DYLIB_PATH").filter(|v| !v.is_empty()) {
        Some(p) => {
            let p = PathBuf::from(p);
            if let Some(lib) = onnx::find_runtime_library(&p) {
                return Ok(lib);
            }
            looked.push(format!("ORT_DYLIB_PATH={} (no library there)", p.display()));
        }
        None => looked.push("ORT_DYLIB_PATH (not set)".into()),
    }
    match python_onnxruntime_dir() {
        Ok(dir) => {
            let capi = dir.join("capi");
            if let Some(lib) = onnx::find_runtime_library(&capi) {
                return Ok(lib);
            }
            looked.push(format!(
                "the onnxruntime Python package ({}: no library there)",
                capi.display()
            ));
        }
        Err(why) => looked.push(format!("the onnxruntime Python package ({why})")),
    }
    Err(format!(
        "the ONNX Runtime library was not found (looked at: {}); {HINT}",
        looked.join("; ")
    ))
}

/// The folder of the `onnxruntime` Python package, asked of `python3`.
fn python_onnxruntime_dir() -> Result<PathBuf, String> {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import onnxruntime, os; print(os.path.dirname(onnxruntime.__file__))",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or("python3 failed").trim();
        return Err(format!("python3: {last}"));
    }
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if dir.is_empty() {
        return Err("python3 printed no folder".into());
    }
    Ok(PathBuf::from(dir))
}
