//! Writes and reads the safetensors format (an 8-byte little-endian header length, a JSON
//! header naming each tensor's dtype, shape and byte range, then the raw little-endian data),
//! so Python users can load pixal's weights with `safetensors.numpy.load_file` and no pixal,
//! and names the autoencoder's tensors for it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

use super::autoencoder::Autoencoder;
use crate::io::{IoError, atomic};

/// One named float32 tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    /// Tensor name (e.g. `encoder.0.weight`).
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub values: Vec<f32>,
}

/// The network's tensors with their names, for the safetensors export.
pub fn named_tensors<B: burn::prelude::Backend>(model: &Autoencoder<B>) -> Vec<NamedTensor> {
    let mut out = Vec::new();
    let mut push = |name: String, l: &burn::nn::Linear<B>| {
        let w = l.weight.val();
        out.push(NamedTensor {
            name: format!("{name}.weight"),
            shape: w.dims().to_vec(),
            values: w
                .into_data()
                .convert::<f32>()
                .to_vec::<f32>()
                .unwrap_or_default(),
        });
        if let Some(b) = &l.bias {
            let b = b.val();
            out.push(NamedTensor {
                name: format!("{name}.bias"),
                shape: b.dims().to_vec(),
                values: b
                    .into_data()
                    .convert::<f32>()
                    .to_vec::<f32>()
                    .unwrap_or_default(),
            });
        }
    };
    for (i, l) in model.encoder.iter().enumerate() {
        push(format!("encoder.{i}"), l);
    }
    push("latent".into(), &model.latent);
    if let Some(l) = &model.label {
        push("label".into(), l);
    }
    for (i, l) in model.decoder.iter().enumerate() {
        push(format!("decoder.{i}"), l);
    }
    push("output".into(), &model.output);
    out
}

/// Writes `tensors` (and string `metadata`) to `path` atomically.
pub fn write_safetensors(
    path: &Path,
    tensors: &[NamedTensor],
    metadata: &BTreeMap<String, String>,
) -> Result<(), IoError> {
    let mut header = serde_json::Map::new();
    if !metadata.is_empty() {
        header.insert("__metadata__".into(), json!(metadata));
    }
    let mut offset = 0usize;
    for t in tensors {
        let bytes = t.values.len() * 4;
        header.insert(
            t.name.clone(),
            json!({"dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + bytes]}),
        );
        offset += bytes;
    }
    let mut text = Value::Object(header).to_string().into_bytes();
    // The data section starts 8-byte aligned, as the reference implementation writes it.
    while !(text.len() + 8).is_multiple_of(8) {
        text.push(b' ');
    }
    atomic::write_with(path, |w| {
        let io = |e: std::io::Error| e.to_string();
        w.write_all(&(text.len() as u64).to_le_bytes())
            .map_err(io)?;
        w.write_all(&text).map_err(io)?;
        let mut buf = Vec::with_capacity(1 << 20);
        for t in tensors {
            for chunk in t.values.chunks(1 << 18) {
                buf.clear();
                for v in chunk {
                    buf.extend_from_slice(&v.to_le_bytes());
                }
                w.write_all(&buf).map_err(io)?;
            }
        }
        Ok(())
    })
}

/// Reads every float32 tensor of a safetensors file, in header order of their offsets.
pub fn read_safetensors(path: &Path) -> Result<Vec<NamedTensor>, IoError> {
    let bad = |reason: String| IoError::Metadata {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|source| IoError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if bytes.len() < 8 {
        return Err(bad("too short for a safetensors file".into()));
    }
    let mut len8 = [0u8; 8];
    len8.copy_from_slice(&bytes[..8]);
    let n = u64::from_le_bytes(len8) as usize;
    let header_end = 8usize
        .checked_add(n)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| bad("header length past the end of the file".into()))?;
    let header: serde_json::Map<String, Value> = serde_json::from_slice(&bytes[8..header_end])
        .map_err(|e| bad(format!("bad safetensors header: {e}")))?;
    let data = &bytes[header_end..];
    let mut out = Vec::new();
    for (name, info) in &header {
        if name == "__metadata__" {
            continue;
        }
        if info["dtype"] != "F32" {
            return Err(bad(format!(
                "tensor `{name}` is {} (only F32 is read)",
                info["dtype"]
            )));
        }
        let shape: Vec<usize> = serde_json::from_value(info["shape"].clone())
            .map_err(|e| bad(format!("tensor `{name}`: shape: {e}")))?;
        let offs: [usize; 2] = serde_json::from_value(info["data_offsets"].clone())
            .map_err(|e| bad(format!("tensor `{name}`: data_offsets: {e}")))?;
        let count: usize = shape.iter().product();
        if offs[1] < offs[0] || offs[1] > data.len() || offs[1] - offs[0] != count * 4 {
            return Err(bad(format!(
                "tensor `{name}`: byte range does not match its shape"
            )));
        }
        let values = data[offs[0]..offs[1]]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        out.push((
            offs[0],
            NamedTensor {
                name: name.clone(),
                shape,
                values,
            },
        ));
    }
    out.sort_by_key(|(o, _)| *o);
    Ok(out.into_iter().map(|(_, t)| t).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_layout() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.safetensors");
        let ts = vec![
            NamedTensor {
                name: "b".into(),
                shape: vec![2, 3],
                values: (0..6).map(|v| v as f32).collect(),
            },
            NamedTensor {
                name: "a".into(),
                shape: vec![1],
                values: vec![-1.5],
            },
        ];
        let mut meta = BTreeMap::new();
        meta.insert("format".to_string(), "pixal".to_string());
        write_safetensors(&p, &ts, &meta).unwrap();
        assert_eq!(read_safetensors(&p).unwrap(), ts);
        let bytes = std::fs::read(&p).unwrap();
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert_eq!((8 + n) % 8, 0);
        assert_eq!(bytes.len(), 8 + n + 7 * 4);
        std::fs::write(&p, b"xx").unwrap();
        assert!(read_safetensors(&p).is_err());
    }
}
