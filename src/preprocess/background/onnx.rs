//! rembg's U2-Net contract through ONNX Runtime.
//!
//! What rembg does with a photo (sessions/base.py, sessions/u2net.py, sessions/dis_general_use.py),
//! and so what [`prepare_input`], [`OnnxRemover::mask`] and [`mask_from_prediction`] do:
//!
//! 1. convert to RGB and resize to the model's square input, ignoring the aspect ratio, with
//!    PIL's Lanczos ([`super::resample`]);
//! 2. divide by the largest value of the resized image (not by 255; a black image divides by
//!    1e-6), subtract the mean and divide by the standard deviation per channel, in `f64`, then
//!    store as `f32` in NCHW order;
//! 3. run the model and take output 0, batch 0, channel 0 (U2-Net's fused, already-sigmoid map);
//! 4. min-max normalise it in `f32`, multiply by 255 and truncate to 8 bits (a constant map,
//!    whose range is 0, gives NaN in numpy and 0 here, as numpy's cast gives on x86);
//! 5. resize the 8-bit mask back to the photo's size with PIL's Lanczos.
//!
//! [`Contract::U2NET`] (u2net, u2netp, u2net_human_seg, silueta: 320x320, ImageNet mean/std),
//! [`Contract::ISNET`] (isnet-general-use: 1024x1024, mean 0.5, std 1), [`Contract::ISNET_ANIME`]
//! and [`Contract::IMAGENET_1024`] (bria-rmbg) are rembg's.
//!
//! The runtime is loaded at run time from a shared library ([`load_runtime`]); one model is
//! shared by all workers as a small pool of sessions ([`OnnxRemover`]).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use image::{GrayImage, RgbImage};
use ort::session::Session;
use ort::value::Tensor;

use super::BackgroundError;
use super::resample;

pub use crate::types::background::{KNOWN_MODELS, is_model_path};

/// How a model wants its input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Contract {
    /// Input width and height.
    pub size: (u32, u32),
    /// Per-channel mean (on the 0..1 scale).
    pub mean: [f64; 3],
    /// Per-channel standard deviation.
    pub std: [f64; 3],
}

impl Contract {
    /// u2net, u2netp, silueta: 320x320, ImageNet mean and std.
    pub const U2NET: Contract = Contract {
        size: (320, 320),
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    };
    /// isnet-general-use: 1024x1024, mean 0.5, std 1.
    pub const ISNET: Contract = Contract {
        size: (1024, 1024),
        mean: [0.5, 0.5, 0.5],
        std: [1.0, 1.0, 1.0],
    };

    /// isnet-anime: 1024x1024, ImageNet mean, std 1.
    pub const ISNET_ANIME: Contract = Contract {
        size: (1024, 1024),
        mean: [0.485, 0.456, 0.406],
        std: [1.0, 1.0, 1.0],
    };
    /// bria-rmbg: 1024x1024, ImageNet mean and std.
    pub const IMAGENET_1024: Contract = Contract {
        size: (1024, 1024),
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    };

    /// The contract of a model from its name or file stem: rembg's for a name of its table
    /// ([`super::models::MODELS`]); otherwise anything that starts with `isnet` is an IS-Net
    /// (rembg's `dis_custom`), everything else follows U2-Net's (`u2net_custom`).
    pub fn for_model(name: &str) -> Contract {
        if let Some(m) = super::models::info(name) {
            return m.contract;
        }
        if name.to_ascii_lowercase().starts_with("isnet") {
            Contract::ISNET
        } else {
            Contract::U2NET
        }
    }
}

/// The model input rembg builds from `img` (steps 1-2 of the module documentation): `3 * h * w`
/// values in NCHW order for the contract's `(w, h)`.
pub fn prepare_input(img: &RgbImage, c: &Contract) -> Vec<f32> {
    let (w, h) = c.size;
    let resized = resample::resize(img, w, h);
    let max = resized.as_raw().iter().copied().max().unwrap_or(0);
    let max = if max == 0 { 1e-6 } else { f64::from(max) };
    let plane = (w * h) as usize;
    let mut out = vec![0f32; 3 * plane];
    for (i, p) in resized.pixels().enumerate() {
        for ch in 0..3 {
            let v = (f64::from(p[ch]) / max - c.mean[ch]) / c.std[ch];
            out[ch * plane + i] = v as f32;
        }
    }
    out
}

/// The 8-bit mask at the model's resolution from its first output map (`pw * ph` values of
/// channel 0): min-max normalised in `f32`, times 255, truncated (step 4).
pub fn mask_at_model_size(pred: &[f32], pw: u32, ph: u32) -> GrayImage {
    let mut mi = f32::INFINITY;
    let mut ma = f32::NEG_INFINITY;
    for &v in pred {
        mi = mi.min(v);
        ma = ma.max(v);
    }
    let range = ma - mi;
    // `as u8` truncates and saturates, and turns NaN into 0: numpy's astype(uint8) on the
    // values in [0, 255] that min-max gives, and its x86 result for 0/0.
    let data: Vec<u8> = pred
        .iter()
        .map(|&v| (((v - mi) / range) * 255.0f32) as u8)
        .collect();
    GrayImage::from_raw(pw, ph, data).unwrap_or_else(|| GrayImage::new(pw, ph))
}

/// Steps 4-5: the model's first output map (channel 0, `pw * ph` values) to a mask of the
/// photo's size `(width, height)`.
pub fn mask_from_prediction(pred: &[f32], pw: u32, ph: u32, width: u32, height: u32) -> GrayImage {
    let small = mask_at_model_size(pred, pw, ph);
    resample::resize(&small, width, height)
}

/// The ONNX Runtime environment, created once per process from the first library loaded.
static RUNTIME: Mutex<Option<(PathBuf, ort::environment::Environment)>> = Mutex::new(None);

/// Loads ONNX Runtime from the shared library at `lib` (once per process: later calls return
/// the environment already made; a different path is then ignored and its path returned
/// beside it so the caller can say so). Returns the path of the library actually in use.
pub fn load_runtime(lib: &Path) -> Result<PathBuf, BackgroundError> {
    let mut slot = RUNTIME.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((path, _)) = slot.as_ref() {
        return Ok(path.clone());
    }
    let err = |reason: String| BackgroundError::Runtime {
        path: lib.to_path_buf(),
        reason,
    };
    if !lib.is_file() {
        return Err(err("no such file".into()));
    }
    // ort resolves relative paths against the executable's folder; make it absolute first.
    let abs = std::path::absolute(lib).unwrap_or_else(|_| lib.to_path_buf());
    let builder = ort::init_from(&abs).map_err(|e| err(e.to_string()))?;
    let env = builder
        .with_name("pixal")
        .with_telemetry(false)
        .build()
        .map_err(|e| err(e.to_string()))?;
    *slot = Some((abs.clone(), env));
    Ok(abs)
}

/// A loaded rembg-style model: a small pool of ONNX Runtime sessions of one model file, shared
/// by the workers of a batch (a session runs one image at a time; each worker uses the session
/// of its index modulo the pool size).
pub struct OnnxRemover {
    sessions: Vec<Mutex<Session>>,
    input_name: String,
    contract: Contract,
    model: PathBuf,
}

impl std::fmt::Debug for OnnxRemover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxRemover")
            .field("model", &self.model)
            .field("sessions", &self.sessions.len())
            .field("contract", &self.contract)
            .finish()
    }
}

impl OnnxRemover {
    /// Opens `model` in `pool` sessions of `intra_threads` threads each ([`load_runtime`] must
    /// have succeeded first). The input size is the model's own when it declares a fixed one,
    /// else the contract's.
    pub fn load(
        model: &Path,
        contract: Contract,
        pool: usize,
        intra_threads: usize,
    ) -> Result<OnnxRemover, BackgroundError> {
        let env = {
            let slot = RUNTIME.lock().unwrap_or_else(|p| p.into_inner());
            match slot.as_ref() {
                Some((_, env)) => env.clone(),
                None => {
                    return Err(BackgroundError::Runtime {
                        path: PathBuf::new(),
                        reason: "ONNX Runtime was not loaded before the model".into(),
                    });
                }
            }
        };
        let merr = |reason: String| BackgroundError::Model {
            path: model.to_path_buf(),
            reason,
        };
        if !model.is_file() {
            return Err(merr("no such file".into()));
        }
        let mut sessions = Vec::new();
        for _ in 0..pool.max(1) {
            let session = Session::builder(&env)
                .map_err(|e| merr(e.to_string()))?
                .with_intra_threads(intra_threads.max(1))
                .map_err(|e| merr(e.to_string()))?
                // The workers resize and encode images while a session runs; ONNX Runtime's
                // idle threads must sleep rather than spin on the cores they need.
                .with_intra_op_spinning(false)
                .map_err(|e| merr(e.to_string()))?
                .commit_from_file(model)
                .map_err(|e| merr(e.to_string()))?;
            sessions.push(Mutex::new(session));
        }
        let ierr = |reason: String| BackgroundError::Interface {
            path: model.to_path_buf(),
            reason,
        };
        let (input_name, contract) = {
            let s = sessions[0].lock().unwrap_or_else(|p| p.into_inner());
            if s.inputs().len() != 1 {
                return Err(ierr(format!(
                    "it has {} inputs; a rembg model has one image input",
                    s.inputs().len()
                )));
            }
            if s.outputs().is_empty() {
                return Err(ierr("it has no output".into()));
            }
            let input = &s.inputs()[0];
            let mut contract = contract;
            if let Some(shape) = input.dtype().tensor_shape() {
                if shape.len() != 4 || (shape[1] != 3 && shape[1] > 0) {
                    return Err(ierr(format!(
                        "its input `{}` has shape {:?}; expected [1, 3, H, W]",
                        input.name(),
                        &shape[..]
                    )));
                }
                if shape[2] > 0 && shape[3] > 0 {
                    contract.size = (shape[3] as u32, shape[2] as u32);
                }
            }
            (input.name().to_string(), contract)
        };
        Ok(OnnxRemover {
            sessions,
            input_name,
            contract,
            model: model.to_path_buf(),
        })
    }

    /// The contract in use (input size from the model when it declares one).
    pub fn contract(&self) -> Contract {
        self.contract
    }

    /// Number of sessions in the pool.
    pub fn pool_size(&self) -> usize {
        self.sessions.len()
    }

    /// The mask of `img` (rembg's `predict`): 8-bit, the photo's size.
    pub fn mask(&self, img: &RgbImage) -> Result<GrayImage, BackgroundError> {
        let (w, h) = self.contract.size;
        let input = prepare_input(img, &self.contract);
        let tensor = Tensor::from_array(([1usize, 3, h as usize, w as usize], input))
            .map_err(|e| BackgroundError::Inference(e.to_string()))?;
        let worker = rayon::current_thread_index().unwrap_or(0);
        let slot = &self.sessions[worker % self.sessions.len()];
        let mut session = slot.lock().unwrap_or_else(|p| p.into_inner());
        let outputs = session
            .run(ort::inputs![self.input_name.as_str() => tensor])
            .map_err(|e| BackgroundError::Inference(e.to_string()))?;
        if outputs.len() == 0 {
            return Err(BackgroundError::Inference(
                "the model gave no output".into(),
            ));
        }
        let (shape, data) = outputs[0]
            .try_extract_tensor::<f32>()
            .map_err(|e| BackgroundError::Inference(format!("output 0: {e}")))?;
        let dims: Vec<i64> = shape.to_vec();
        if dims.len() != 4 || dims[0] < 1 || dims[1] < 1 {
            return Err(BackgroundError::Interface {
                path: self.model.clone(),
                reason: format!("its output 0 has shape {dims:?}; expected [1, C, H, W]"),
            });
        }
        let (ph, pw) = (dims[2] as usize, dims[3] as usize);
        let plane = pw * ph;
        if data.len() < plane {
            return Err(BackgroundError::Inference(format!(
                "output 0 holds {} values for shape {dims:?}",
                data.len()
            )));
        }
        // Batch 0, channel 0 is the first plane in NCHW order.
        let pred = data[..plane].to_vec();
        drop(outputs);
        drop(session);
        Ok(mask_from_prediction(
            &pred,
            pw as u32,
            ph as u32,
            img.width(),
            img.height(),
        ))
    }
}

/// The model file for `model` (a known name or a path): a path is used as it is (`~/` expanded
/// by the caller); a name is looked for in `candidates` (its files, in order: rembg's places,
/// [`super::models::rembg_places`]). Returns the file, or every place looked at.
pub fn find_model(model: &str, candidates: &[PathBuf]) -> Result<PathBuf, Vec<PathBuf>> {
    if is_model_path(model) {
        let p = PathBuf::from(model);
        return if p.is_file() { Ok(p) } else { Err(vec![p]) };
    }
    match candidates.iter().find(|p| p.is_file()) {
        Some(p) => Ok(p.clone()),
        None => Err(candidates.to_vec()),
    }
}

/// The ONNX Runtime library in `dir_or_file`: the file itself, or in a folder
/// `libonnxruntime.so` (`.dylib`, `onnxruntime.dll`) or a versioned `libonnxruntime.so.1.x.y`
/// (the newest when several). `None` when there is none.
pub fn find_runtime_library(dir_or_file: &Path) -> Option<PathBuf> {
    if dir_or_file.is_file() {
        return Some(dir_or_file.to_path_buf());
    }
    let rd = std::fs::read_dir(dir_or_file).ok()?;
    let plain = format!(
        "{}onnxruntime{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let mut found: Vec<(Vec<u32>, PathBuf)> = Vec::new();
    for e in rd.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().into_owned();
        let version = if name == plain {
            Some(vec![u32::MAX])
        } else if let Some(rest) = name.strip_prefix(&format!("{plain}.")) {
            // libonnxruntime.so.1.32.0
            Some(rest.split('.').map(|p| p.parse().unwrap_or(0)).collect())
        } else {
            // libonnxruntime.1.32.0.dylib (macOS)
            name.strip_prefix("libonnxruntime.")
                .and_then(|r| r.strip_suffix(".dylib"))
                .map(|rest| rest.split('.').map(|p| p.parse().unwrap_or(0)).collect())
        };
        if let Some(v) = version
            && e.path().is_file()
        {
            found.push((v, e.path()));
        }
    }
    found.sort();
    found.pop().map(|(_, p)| p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contracts_by_name() {
        assert_eq!(Contract::for_model("u2net"), Contract::U2NET);
        assert_eq!(Contract::for_model("silueta"), Contract::U2NET);
        assert_eq!(Contract::for_model("isnet-general-use"), Contract::ISNET);
        assert_eq!(Contract::for_model("ISNet-custom"), Contract::ISNET);
        assert_eq!(Contract::for_model("isnet-anime"), Contract::ISNET_ANIME);
        assert_eq!(Contract::for_model("bria-rmbg"), Contract::IMAGENET_1024);
        assert_eq!(Contract::for_model("u2net_human_seg"), Contract::U2NET);
        for m in KNOWN_MODELS {
            assert!(
                crate::preprocess::background::models::info(m).is_some(),
                "{m}"
            );
        }
    }

    #[test]
    fn min_max_truncates_like_numpy() {
        let pred = [0.0f32, 0.5, 1.0, 0.25, 0.999];
        let m = mask_at_model_size(&pred, 5, 1);
        assert_eq!(m.as_raw(), &vec![0, 127, 255, 63, 254]);
        let flat = mask_at_model_size(&[0.3; 4], 2, 2);
        assert!(flat.as_raw().iter().all(|&v| v == 0));
    }

    #[test]
    fn input_of_a_black_image_is_minus_mean_over_std() {
        let img = RgbImage::new(10, 7);
        let c = Contract {
            size: (4, 4),
            ..Contract::U2NET
        };
        let t = prepare_input(&img, &c);
        assert_eq!(t.len(), 48);
        assert!((t[0] - (-0.485 / 0.229) as f32).abs() < 1e-7);
        assert!((t[47] - (-0.406 / 0.225) as f32).abs() < 1e-7);
    }

    #[test]
    fn model_lookup_reports_every_place() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        let b = d.path().join("b");
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(b.join("u2netp.onnx"), b"x").unwrap();
        let files = vec![a.join("u2netp.onnx"), b.join("u2netp.onnx")];
        assert_eq!(find_model("u2netp", &files).unwrap(), b.join("u2netp.onnx"));
        let missing = vec![a.join("u2net.onnx"), b.join("u2net.onnx")];
        let err = find_model("u2net", &missing).unwrap_err();
        assert_eq!(err, missing);
        let p = b.join("u2netp.onnx").display().to_string();
        assert!(find_model(&p, &[]).is_ok());
        assert!(is_model_path("models/x.onnx") && is_model_path("x.ONNX"));
        assert!(!is_model_path("u2net"));
    }

    #[test]
    fn runtime_library_lookup_prefers_newest() {
        let d = tempfile::tempdir().unwrap();
        for n in [
            "libonnxruntime.so.1.9.0",
            "libonnxruntime.so.1.32.0",
            "libonnxruntime_providers_shared.so",
        ] {
            std::fs::write(d.path().join(n), b"x").unwrap();
        }
        if cfg!(target_os = "linux") {
            assert_eq!(
                find_runtime_library(d.path()).unwrap(),
                d.path().join("libonnxruntime.so.1.32.0")
            );
        }
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(find_runtime_library(empty.path()), None);
    }

    #[test]
    fn bad_runtime_library_is_an_error_not_a_panic() {
        let d = tempfile::tempdir().unwrap();
        let missing = d.path().join("nope.so");
        let e = load_runtime(&missing).unwrap_err();
        assert!(e.to_string().contains("nope.so"), "{e}");
    }
}
