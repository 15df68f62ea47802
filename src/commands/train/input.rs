//! The training input: make_input's `out.npz` and its `preprocessing.yaml`, read and checked
//! into the [`TrainingData`] a fit takes.

use std::path::Path;

use crate::config::Parameters;
use crate::io::metadata::{PreprocessingMetadata, read_yaml};
use crate::model::{ModelError, TrainingData};

/// Reads `npz` and make_input's metadata `meta_path` (channel names and weights, source file
/// names, one-hot type names; without it the configuration's channels and weights are used)
/// and checks them: enough images, channels that match, labels in one-hot mode, finite values
/// and something to scale by. `name` names the data in progress and messages.
pub(super) fn read(
    params: &Parameters,
    npz: &Path,
    meta_path: Option<&Path>,
    name: String,
) -> Result<TrainingData, ModelError> {
    let input = crate::io::npz::read_input(npz)?;
    let bad = |reason: String| ModelError::Input {
        path: npz.to_path_buf(),
        reason,
    };
    let (n, p, c) = input.data.dim();
    if n == 0 || p == 0 || c == 0 {
        return Err(bad(format!(
            "the data is empty ({n} images x {p} pixels x {c} channels)"
        )));
    }
    params
        .quality_gates
        .check("training input", n, n)
        .map_err(bad)?;
    let meta: Option<PreprocessingMetadata> = match meta_path {
        Some(m) => {
            let meta: PreprocessingMetadata = read_yaml(m)?;
            meta.verify_npz(npz, m)?;
            Some(meta)
        }
        None => None,
    };
    let pp = &params.preprocessing.preprocessor;
    let (channels, weights): (Vec<String>, Vec<f32>) = match &meta {
        Some(m) => (
            m.preprocessor
                .channels
                .iter()
                .map(|ch| ch.name().to_string())
                .collect(),
            m.preprocessor.weights.iter().map(|&w| w as f32).collect(),
        ),
        None => (
            pp.channels.iter().map(|ch| ch.name().to_string()).collect(),
            pp.weights.clone(),
        ),
    };
    if channels.len() != c || weights.len() != c {
        return Err(bad(format!(
            "the data has {c} channel(s) but {} lists {} channel(s) ({}) and {} weight(s); pass the make_input metadata of this file or fix preprocessing.preprocessor",
            meta_path.map_or("parameters.yaml".to_string(), |m| m.display().to_string()),
            channels.len(),
            channels.join(", "),
            weights.len()
        )));
    }
    let files: Vec<String> = match &meta {
        Some(m) if m.files.len() == n => m.files.clone(),
        _ => (0..n).map(|i| format!("row {i}")).collect(),
    };
    let one_hot = params.model_training.one_hot_encoding;
    let (labels, label_types) = if one_hot {
        let Some(l) = input.labels.clone() else {
            return Err(bad(
                "one_hot_encoding is on but the file has no `labels` array; run make_input with one_hot_encoding: True".into(),
            ));
        };
        let t = l.ncols();
        let types = match &meta {
            Some(m) if m.types.len() == t => m.types.clone(),
            _ => (0..t).map(|i| format!("type_{i}")).collect(),
        };
        (Some(l), types)
    } else {
        (None, Vec::new())
    };
    let data_max = crate::model::data::data_max(input.data.view()).ok_or_else(|| {
        bad("the data has no positive value or a value that is not finite; nothing to scale by (X / max(X))".into())
    })?;
    if let Some((i, _)) = input
        .data
        .outer_iter()
        .enumerate()
        .find(|(_, r)| r.iter().any(|v| !v.is_finite()))
    {
        return Err(bad(format!(
            "image {} ({}) holds a value that is not a finite number (NaN or infinite); run make_input again",
            i,
            files.get(i).map_or("?", String::as_str)
        )));
    }
    let part_mask = match &input.part {
        Some(part) => part.mask.to_vec(),
        None => vec![1.0; p],
    };
    Ok(TrainingData {
        name,
        source: npz.to_path_buf(),
        data: input.data,
        labels,
        pooled: input.shape,
        part_mask,
        channels,
        weights,
        files,
        label_types,
        data_max,
    })
}
