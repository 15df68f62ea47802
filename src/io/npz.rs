//! The ML input file: `out.npz` with `data` float32 (N, P, C), `shape` int64 (pooled H, W) and,
//! in one-hot mode, `labels` float32 (N, types). numpy's `np.load` reads it.

use std::fs::File;
use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2, Array3};
use ndarray_npy::{NpzReader, NpzWriter};

use super::{IoError, atomic};

/// The contents of an ML input file.
#[derive(Debug, Clone, PartialEq)]
pub struct InputData {
    /// (N images, P pooled pixels, C channels).
    pub data: Array3<f32>,
    /// Pooled (height, width); height * width = P.
    pub shape: (usize, usize),
    /// One-hot type labels (N, types), in one-hot mode.
    pub labels: Option<Array2<f32>>,
    /// The training photos' part mask and photometric reference (arrays `part_mask` and
    /// `reference`), when make_input computed them.
    pub part: Option<PartReference>,
}

/// What make_input learnt about the part from the training photos, on the pooled grid; the
/// validation file carries the training one, so detection scores the same pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct PartReference {
    /// 1.0 where the pooled pixel belongs to the part, else 0.0; (P,).
    pub mask: Array1<f32>,
    /// The per-pixel median of the training rows that every photo's channels were fitted to
    /// (P, C); absent when photometric normalisation is off.
    pub reference: Option<Array2<f32>>,
}

/// Writes `input` to `path` atomically.
pub fn write_input(path: &Path, input: &InputData) -> Result<(), IoError> {
    let shape = Array1::from(vec![input.shape.0 as i64, input.shape.1 as i64]);
    atomic::write_with(path, |w| {
        let mut npz = NpzWriter::new(w);
        npz.add_array("data", &input.data)
            .map_err(|e| e.to_string())?;
        npz.add_array("shape", &shape).map_err(|e| e.to_string())?;
        if let Some(labels) = &input.labels {
            npz.add_array("labels", labels).map_err(|e| e.to_string())?;
        }
        if let Some(part) = &input.part {
            npz.add_array("part_mask", &part.mask)
                .map_err(|e| e.to_string())?;
            if let Some(r) = &part.reference {
                npz.add_array("reference", r).map_err(|e| e.to_string())?;
            }
        }
        npz.finish().map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// The most bytes one array may declare: 64 GiB, far above any real input.
pub const MAX_ARRAY_BYTES: u64 = 64 << 30;

/// Deflate cannot expand data more than about 1032 times, so an entry that claims more is
/// lying about its size.
const MAX_DEFLATE_RATIO: u64 = 1100;

/// The (shape, item size, header length) an `.npy` header declares, from the file's first
/// bytes; `None` when it is not an `.npy` header.
fn npy_header(head: &[u8]) -> Option<(Vec<u64>, u64, usize)> {
    if head.len() < 10 || &head[..6] != b"\x93NUMPY" {
        return None;
    }
    let (len, start) = match head[6] {
        1 => (usize::from(u16::from_le_bytes([head[8], head[9]])), 10),
        _ => {
            let b = head.get(8..12)?;
            (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize, 12)
        }
    };
    let text = std::str::from_utf8(head.get(start..start + len)?).ok()?;
    let descr = text.split("'descr'").nth(1)?;
    let descr = descr.split('\'').nth(1)?;
    let item: u64 = descr
        .trim_start_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .ok()?;
    let shape = text.split("'shape'").nth(1)?;
    let shape = shape.split('(').nth(1)?.split(')').next()?;
    let dims: Option<Vec<u64>> = shape
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.trim_end_matches('L').parse().ok())
        .collect();
    Some((dims?, item, start + len))
}

/// Checks that the array an `.npy` file (or npz entry) declares fits in the `available` bytes
/// it holds and under [`MAX_ARRAY_BYTES`], so a hostile or damaged header cannot make the
/// reader allocate terabytes.
fn check_declared(head: &[u8], available: u64, what: &str, path: &Path) -> Result<(), IoError> {
    let bad = |reason: String| IoError::Npz {
        path: path.to_path_buf(),
        reason,
    };
    let Some((dims, item, header)) = npy_header(head) else {
        // Not an .npy header pixal understands; the reader will say what is wrong.
        return Ok(());
    };
    let declared = dims
        .iter()
        .try_fold(item, |acc, &d| acc.checked_mul(d))
        .unwrap_or(u64::MAX);
    let holds = available.saturating_sub(header as u64);
    if declared > holds || declared > MAX_ARRAY_BYTES {
        return Err(bad(format!(
            "{what} declares shape {dims:?} ({declared} bytes) but holds {holds} bytes (limit {MAX_ARRAY_BYTES}); the file is damaged or not made by pixal/numpy"
        )));
    }
    Ok(())
}

/// Checks the declared size of an `.npy` file's array against its bytes.
pub fn check_npy_size(bytes: &[u8], path: &Path) -> Result<(), IoError> {
    check_declared(bytes, bytes.len() as u64, "the array", path)
}

/// Checks every array of an npz file: the size its header declares must fit in the entry,
/// and the entry must fit in what the file could decompress to.
fn check_npz_sizes(path: &Path) -> Result<(), IoError> {
    use std::io::Read;
    let bad = |reason: String| IoError::Npz {
        path: path.to_path_buf(),
        reason,
    };
    let file = File::open(path).map_err(|source| IoError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let file_len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut zip = zip::ZipArchive::new(file).map_err(|e| bad(e.to_string()))?;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| bad(e.to_string()))?;
        let name = entry.name().to_string();
        let size = entry.size();
        if size > file_len.saturating_mul(MAX_DEFLATE_RATIO) {
            return Err(bad(format!(
                "entry {name} claims {size} bytes, more than a {file_len}-byte file can hold"
            )));
        }
        let mut head = Vec::with_capacity(4096);
        (&mut entry)
            .take(4096)
            .read_to_end(&mut head)
            .map_err(|e| bad(format!("entry {name}: {e}")))?;
        check_declared(&head, size, &format!("array {name}"), path)?;
    }
    Ok(())
}

/// Opens an npz file whose arrays' declared sizes were checked first, with its entry names.
fn open_npz(path: &Path) -> Result<(NpzReader<File>, Vec<String>), IoError> {
    let bad = |reason: String| IoError::Npz {
        path: path.to_path_buf(),
        reason,
    };
    check_npz_sizes(path)?;
    let file = File::open(path).map_err(|source| IoError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut npz = NpzReader::new(file).map_err(|e| bad(e.to_string()))?;
    let names = npz.names().map_err(|e| bad(e.to_string()))?;
    Ok((npz, names))
}

/// Reads an ML input file and checks that its arrays agree with each other.
pub fn read_input(path: &Path) -> Result<InputData, IoError> {
    let bad = |reason: String| IoError::Npz {
        path: path.to_path_buf(),
        reason,
    };
    let (mut npz, names) = open_npz(path)?;
    let has = |n: &str| names.iter().any(|x| x == n || x == &format!("{n}.npy"));
    let data: Array3<f32> = npz
        .by_name("data")
        .map_err(|e| bad(format!("array `data` (float32, 3-D): {e}")))?;
    let shape: Array1<i64> = npz
        .by_name("shape")
        .map_err(|e| bad(format!("array `shape` (int64, 1-D): {e}")))?;
    if shape.len() != 2 || shape.iter().any(|&v| v < 0) {
        return Err(bad(format!(
            "`shape` must hold two non-negative sizes, found {shape}"
        )));
    }
    let hw = (shape[0] as usize, shape[1] as usize);
    if hw.0 * hw.1 != data.dim().1 {
        return Err(bad(format!(
            "`shape` {}x{} does not match the {} pixels per image in `data`",
            hw.0,
            hw.1,
            data.dim().1
        )));
    }
    let labels = if has("labels") {
        let l: Array2<f32> = npz
            .by_name("labels")
            .map_err(|e| bad(format!("array `labels` (float32, 2-D): {e}")))?;
        if l.dim().0 != data.dim().0 {
            return Err(bad(format!(
                "`labels` has {} rows but `data` has {} images",
                l.dim().0,
                data.dim().0
            )));
        }
        Some(l)
    } else {
        None
    };
    let part = read_part(path)?;
    if let Some(part) = &part {
        let (p, c) = (data.dim().1, data.dim().2);
        if part.mask.len() != p {
            return Err(bad(format!(
                "`part_mask` has {} pixels but `data` has {p} per image",
                part.mask.len()
            )));
        }
        if let Some(r) = &part.reference
            && r.dim() != (p, c)
        {
            return Err(bad(format!(
                "`reference` is {}x{} but `data` has {p} pixels x {c} channels per image",
                r.nrows(),
                r.ncols()
            )));
        }
    }
    Ok(InputData {
        data,
        shape: hw,
        labels,
        part,
    })
}

/// Reads only the part mask and reference of an ML input file (without its `data`), checked
/// against each other; `None` when the file has none (made by an older pixal).
pub fn read_part(path: &Path) -> Result<Option<PartReference>, IoError> {
    let bad = |reason: String| IoError::Npz {
        path: path.to_path_buf(),
        reason,
    };
    let (mut npz, names) = open_npz(path)?;
    let has = |n: &str| names.iter().any(|x| x == n || x == &format!("{n}.npy"));
    if !has("part_mask") {
        return Ok(None);
    }
    let mask: Array1<f32> = npz
        .by_name("part_mask")
        .map_err(|e| bad(format!("array `part_mask` (float32, 1-D): {e}")))?;
    let reference = if has("reference") {
        let r: Array2<f32> = npz
            .by_name("reference")
            .map_err(|e| bad(format!("array `reference` (float32, 2-D): {e}")))?;
        if r.nrows() != mask.len() {
            return Err(bad(format!(
                "`reference` has {} pixels but `part_mask` {}",
                r.nrows(),
                mask.len()
            )));
        }
        Some(r)
    } else {
        None
    };
    Ok(Some(PartReference { mask, reference }))
}

/// The npz path of a component's type: `<type_root>/<file_name>`.
pub fn input_path(type_root: &Path, file_name: &str) -> PathBuf {
    type_root.join(file_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_and_without_labels() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.npz");
        let data = Array3::from_shape_fn((3, 6, 2), |(n, p, c)| (n * 100 + p * 10 + c) as f32);
        let mut input = InputData {
            data,
            shape: (2, 3),
            labels: None,
            part: None,
        };
        write_input(&p, &input).unwrap();
        assert_eq!(read_input(&p).unwrap(), input);
        input.labels = Some(Array2::from_shape_fn((3, 2), |(n, t)| {
            f32::from(u8::from(n % 2 == t))
        }));
        write_input(&p, &input).unwrap();
        assert_eq!(read_input(&p).unwrap(), input);
        // The part mask and reference travel with the data, and alone.
        input.part = Some(PartReference {
            mask: Array1::from(vec![1.0, 0.0, 1.0, 1.0, 0.0, 1.0]),
            reference: Some(Array2::from_shape_fn((6, 2), |(p, c)| (p + c) as f32)),
        });
        write_input(&p, &input).unwrap();
        assert_eq!(read_input(&p).unwrap(), input);
        assert_eq!(read_part(&p).unwrap(), input.part);
        // A mask of the wrong size is refused by name.
        input.part = Some(PartReference {
            mask: Array1::from(vec![1.0; 5]),
            reference: None,
        });
        write_input(&p, &input).unwrap();
        let e = read_input(&p).unwrap_err().to_string();
        assert!(e.contains("part_mask"), "{e}");
    }

    /// An `.npy` file: float32, the declared `shape`, and `payload` bytes of data.
    fn npy(shape: &str, payload: usize) -> Vec<u8> {
        let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend((header.len() as u16).to_le_bytes());
        out.extend(header.as_bytes());
        out.extend(vec![0u8; payload]);
        out
    }

    #[test]
    fn huge_declared_shape_is_refused_before_allocating() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.npz");
        // A well-formed zip whose `data` header declares 4 TB but holds 48 bytes, as a damaged
        // or hostile file would (reading it used to abort the process allocating 4 TB).
        let mut zip = zip::ZipWriter::new(File::create(&p).unwrap());
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        zip.start_file("data.npy", opts).unwrap();
        zip.write_all(&npy("(100000, 100000, 100)", 48)).unwrap();
        zip.start_file("shape.npy", opts).unwrap();
        zip.write_all(&npy("(2,)", 16)).unwrap();
        zip.finish().unwrap();
        let e = read_input(&p).unwrap_err().to_string();
        assert!(e.contains("declares shape [100000, 100000, 100]"), "{e}");
        assert!(e.contains("out.npz") && e.contains("array data.npy"), "{e}");
        // A plain .npy with the same kind of lie.
        let bytes = npy("(100000, 100000)", 16);
        let e = check_npy_size(&bytes, Path::new("x.npy"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("40000000000 bytes"), "{e}");
        // An honest one passes.
        assert!(check_npy_size(&npy("(2, 2)", 16), Path::new("ok.npy")).is_ok());
    }

    #[test]
    fn inconsistent_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.npz");
        let input = InputData {
            data: Array3::zeros((1, 6, 1)),
            shape: (2, 2),
            labels: None,
            part: None,
        };
        write_input(&p, &input).unwrap();
        let e = read_input(&p).unwrap_err().to_string();
        assert!(e.contains("does not match"), "{e}");
        std::fs::write(&p, b"not a zip").unwrap();
        assert!(read_input(&p).unwrap_err().to_string().contains("out.npz"));
    }
}
