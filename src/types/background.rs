//! The vocabulary of `preprocessing.remove_background`: how the cut-out is made, which method
//! segments, and which rembg models are known by name. The configuration validates these
//! settings and background removal (`preprocess::background`) acts on them.

use serde::Serialize;

/// How the RGBA cut-out is made from the photo and the mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cutout {
    /// rembg's default (`naive_cutout`): alpha = mask and the colours multiplied by mask/255,
    /// so the background is black and semi-transparent edge pixels darken. make_input reads
    /// only RGB, so this is the style whose background falls under `bg_threshold`.
    Premultiplied,
    /// rembg's `putalpha`: alpha = mask and the colours kept as they are (the background keeps
    /// its colour under alpha 0).
    PutAlpha,
}

/// Which segmentation method to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// ONNX when a model and the runtime library are found, else classical (with a warning).
    Auto,
    /// rembg's U2-Net family through ONNX Runtime; missing model or library is an error.
    Onnx,
    /// The model-free colour segmentation.
    Classical,
}

/// The rembg models pixal knows by name (rembg's table is
/// `preprocess::background::models::MODELS`; a test there keeps the two in step).
pub const KNOWN_MODELS: [&str; 7] = [
    "u2net",
    "u2netp",
    "u2net_human_seg",
    "silueta",
    "isnet-general-use",
    "isnet-anime",
    "bria-rmbg",
];

/// True when the `model` setting names a file rather than one of rembg's models.
pub fn is_model_path(model: &str) -> bool {
    model.contains('/') || model.contains('\\') || model.to_ascii_lowercase().ends_with(".onnx")
}
