//! Image loading and saving.
//!
//! pixal reads `.jpg`, `.jpeg`, `.png`, `.webp`, `.tif` and `.tiff` files (any case). Loading
//! works like this:
//!
//! 1. The extension decides whether a path is an image at all ([`is_image_path`]); anything
//!    else is refused with [`IoError::UnsupportedExtension`] before the file is opened.
//! 2. The whole file is read into memory (the input is only ever opened for reading) and the
//!    format is decided by the **content** (magic bytes), not the extension, so a PNG that was
//!    saved as `x.jpg` still loads. Content that is no known image, or an image format pixal
//!    does not read (GIF, BMP, ...), is a [`IoError::Decode`] error.
//! 3. Decompression bombs are refused before any pixel buffer is allocated: at most
//!    [`MAX_DIMENSION`] pixels per side and [`MAX_DECODED_BYTES`] for the decoded buffer.
//! 4. Truncated files are refused. PNG, TIFF and most cut WebP files fail in their decoders;
//!    two cases need a check of our own because the decoder succeeds silently: a JPEG whose
//!    marker structure ends before the end-of-image marker (libjpeg, like PIL with
//!    `LOAD_TRUNCATED_IMAGES`, would pad the missing part of the picture), and a WebP file
//!    shorter than its RIFF header
//!    declares. A PNG that lacks only its final `IEND` chunk still has all its pixel data and
//!    loads.
//! 5. The EXIF orientation (JPEG APP1, PNG `eXIf`, WebP `EXIF`, TIFF tag 0x0112) is applied,
//!    as OpenCV's `imread` does by default, so the pixels come out upright.
//! 6. The pixels are converted to the requested 8-bit layout ([`load_rgb8`], [`load_rgba8`]).
//!
//! JPEGs are decoded by libjpeg-turbo's own decoder (mozjpeg's copy of it, compiled from
//! source with the crate), with its defaults, which is what `PIL.Image.open` and `cv2.imread`
//! use: the pixels equal theirs to the byte for baseline, progressive and arithmetic-coded
//! files, every chroma subsampling and gray (checked against PIL by tests/golden_jpeg.rs).
//! Other formats go through the `image` crate.
//!
//! Pixel formats:
//!
//! * 8- and 16-bit gray, gray+alpha, RGB and RGBA. 16-bit samples become 8-bit with rounding,
//!   `(v * 255 + 32767) / 65535`. Gray is replicated to R = G = B.
//! * Alpha: [`load_rgb8`] drops it and keeps the colour values exactly as stored (they are not
//!   premultiplied or composited on any background); [`load_rgba8`] keeps it and uses 255
//!   (opaque) for images without alpha.
//! * 32-bit float RGB/RGBA (float TIFF): converted, not refused. Each sample is clamped to
//!   `[0, 1]`, scaled by 255 and rounded; NaN becomes 0. Float gray TIFFs are refused by the
//!   TIFF decoder itself (as [`IoError::PixelFormat`] or [`IoError::Decode`]).
//! * CMYK JPEG: converted to RGB as PIL's `Image.open(...).convert("RGB")` does. The samples are
//!   read the way Adobe (Photoshop) writes them, inverted (stored 0 = full ink), as PIL and
//!   OpenCV both assume; YCCK JPEGs (Adobe transform 2) are converted too. Both are checked by
//!   the tests, against PIL to the byte.
//! * CMYK TIFF (8 and 16 bit, interleaved): the TIFF decoder converts to RGB with the TIFF
//!   convention (stored 255 = full ink), `R = (255 - C) * (255 - K) / 255`. Planar CMYK TIFFs
//!   are refused by the decoder.
//! * Anything else the decoders produce (there is nothing else in image 0.25 for these four
//!   formats, but its colour enum is open) is refused with [`IoError::PixelFormat`].
//!
//! Every error names the file. Nothing here panics on bad input; as a last line of defence,
//! a panic inside a third-party decoder is caught and reported as a [`IoError::Decode`].
//!
//! Saving ([`save_png`]) is atomic: the PNG is written to a temporary file next to the
//! destination and renamed over it (see [`super::atomic`]).

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::codecs::png::PngEncoder;
use image::error::UnsupportedErrorKind;
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits};

use super::{IoError, atomic};

mod pixels;

use pixels::{cmyk_inverted_to_rgb, to_rgb8, to_rgba8};

/// File extensions (lower case, without the dot) that pixal reads as images.
pub const IMAGE_EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "webp", "tif", "tiff"];

/// Largest accepted width and height, in pixels. Larger images are refused as possible
/// decompression bombs (a tiny file can claim a gigantic size).
pub const MAX_DIMENSION: u32 = 20_000;

/// Largest accepted decoded pixel buffer, in bytes (1 GiB): e.g. 8-bit RGB up to about
/// 18900 x 18900 pixels, 16-bit RGBA up to about 11500 x 11500. Checked before decoding,
/// because not every decoder (the JPEG one, notably) enforces image's own allocation limit.
pub const MAX_DECODED_BYTES: u64 = 1 << 30;

/// Largest accepted input file, in bytes. The file is read into memory whole, so an
/// accidental multi-gigabyte file must be refused before that; an image file larger than its
/// decoded pixels would be pointless, so the decoded-buffer limit serves here too.
pub const MAX_FILE_BYTES: u64 = MAX_DECODED_BYTES;

/// Loads an image file (see the module documentation for the steps), with its EXIF orientation
/// applied and its native pixel format and bit depth kept.
///
/// This is the common loader behind [`load_rgb8`] and [`load_rgba8`]; use it directly only
/// when the bit depth matters.
pub fn load_dynamic(path: &Path) -> Result<DynamicImage, IoError> {
    if !is_image_path(path) {
        return Err(IoError::UnsupportedExtension {
            path: path.to_path_buf(),
        });
    }
    let bytes = read_limited(path)?;
    // A panic inside a third-party decoder on a hostile or corrupt file must not take down a
    // batch run: it becomes an error naming the file instead.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decode_bytes(path, &bytes))) {
        Ok(result) => result,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(decode_err(
                path,
                format!("the image decoder crashed on this file ({what})"),
            ))
        }
    }
}

/// Loads an image as 8-bit RGB, EXIF orientation applied.
///
/// 16-bit and float samples are converted to 8 bits (see the module documentation), gray is
/// replicated to RGB, and alpha is dropped with the colour values kept as stored.
pub fn load_rgb8(path: &Path) -> Result<image::RgbImage, IoError> {
    let img = load_dynamic(path)?;
    to_rgb8(img).map_err(|reason| IoError::PixelFormat {
        path: path.to_path_buf(),
        reason,
    })
}

/// Loads an image as 8-bit RGBA, EXIF orientation applied.
///
/// Like [`load_rgb8`], but the alpha channel is kept (converted to 8 bits like the colours);
/// images without alpha get an opaque alpha of 255.
pub fn load_rgba8(path: &Path) -> Result<image::RgbaImage, IoError> {
    let img = load_dynamic(path)?;
    to_rgba8(img).map_err(|reason| IoError::PixelFormat {
        path: path.to_path_buf(),
        reason,
    })
}

/// True when the path ends in an image extension pixal reads: `.jpg`, `.jpeg`, `.png`,
/// `.webp`, `.tif` or `.tiff`, in any letter case. Only the name is looked at; the file need
/// not exist.
pub fn is_image_path(path: &Path) -> bool {
    path.extension()
        .and_then(|ext| ext.to_str())
        .is_some_and(|ext| {
            IMAGE_EXTENSIONS
                .iter()
                .any(|known| ext.eq_ignore_ascii_case(known))
        })
}

/// Lists the image files directly inside `dir` (no recursion), sorted by file name in byte
/// order, so runs are reproducible whatever order the file system returns.
///
/// Only regular files with an image extension ([`is_image_path`]) are listed; symbolic links
/// count when they point to a regular file. Hidden files (name starting with `.`) are skipped:
/// they are editor and OS debris (`._photo.jpg` from macOS, pixal's own `.pixal-tmp-*`
/// temporary files), not inputs.
///
/// # Errors
///
/// [`IoError::ListDir`] naming `dir` when it cannot be read (missing, not a folder, no
/// permission) or an entry cannot be read.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>, IoError> {
    let list_err = |source: std::io::Error| IoError::ListDir {
        path: dir.to_path_buf(),
        source,
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(list_err)? {
        let entry = entry.map_err(list_err)?;
        let name = entry.file_name();
        if name.as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let path = entry.path();
        if !is_image_path(&path) {
            continue;
        }
        // `metadata` follows symbolic links; a dangling link is not an input, so skip it
        // rather than fail the whole listing.
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => found.push(path),
            _ => {}
        }
    }
    found.sort_by(|a, b| {
        let name = |p: &PathBuf| p.file_name().map(|n| n.as_encoded_bytes().to_vec());
        name(a).cmp(&name(b))
    });
    Ok(found)
}

/// Saves an image as PNG, atomically (temporary file in the destination folder, then rename),
/// creating the parent folders.
///
/// Works for every pixel type image's PNG encoder takes: 8- and 16-bit gray, gray+alpha, RGB
/// and RGBA (16-bit samples are written big-endian as PNG requires; the encoder handles that).
///
/// # Errors
///
/// [`IoError::Write`] when the file or its folder cannot be written, [`IoError::Encode`] when
/// the encoder refuses the image. On error the destination is left as it was.
pub fn save_png<P, C>(img: &image::ImageBuffer<P, C>, path: &Path) -> Result<(), IoError>
where
    P: image::Pixel + image::PixelWithColorType,
    [P::Subpixel]: image::EncodableLayout,
    C: std::ops::Deref<Target = [P::Subpixel]>,
{
    atomic::write_with(path, |w| {
        img.write_with_encoder(PngEncoder::new(w))
            .map_err(|e| e.to_string())
    })
}

/// Saves a 16-bit gray image as PNG, atomically. Same as [`save_png`] (which covers 16 bits
/// already); kept as a named entry point for 16-bit outputs such as depth-like maps.
pub fn save_png_gray16(
    img: &image::ImageBuffer<image::Luma<u16>, Vec<u16>>,
    path: &Path,
) -> Result<(), IoError> {
    save_png(img, path)
}

// ---------------------------------------------------------------------------------------------
// Loading internals
// ---------------------------------------------------------------------------------------------

fn decode_err(path: &Path, reason: impl Into<String>) -> IoError {
    IoError::Decode {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Reads the whole file, refusing empty and oversized files with a clear reason.
fn read_limited(path: &Path) -> Result<Vec<u8>, IoError> {
    let read_err = |source: std::io::Error| IoError::Read {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if meta.is_dir() {
        return Err(read_err(std::io::Error::new(
            std::io::ErrorKind::IsADirectory,
            "is a folder, not a file",
        )));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(decode_err(
            path,
            format!(
                "file is {} bytes, more than the {MAX_FILE_BYTES}-byte limit",
                meta.len()
            ),
        ));
    }
    let bytes = std::fs::read(path).map_err(read_err)?;
    if bytes.is_empty() {
        return Err(decode_err(path, "empty file (0 bytes)"));
    }
    Ok(bytes)
}

/// Decodes the file content; `path` only names the file in errors.
fn decode_bytes(path: &Path, bytes: &[u8]) -> Result<DynamicImage, IoError> {
    let format = match image::guess_format(bytes) {
        Ok(f @ (ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP | ImageFormat::Tiff)) => f,
        Ok(other) => {
            return Err(decode_err(
                path,
                format!(
                    "the content is a {other:?} image, which pixal does not read \
                     (JPEG, PNG, WebP and TIFF only)"
                ),
            ));
        }
        Err(_) => {
            return Err(decode_err(
                path,
                "the content is not a JPEG, PNG, WebP or TIFF image \
                 (its first bytes match no image signature)",
            ));
        }
    };
    if format == ImageFormat::Jpeg && jpeg_looks_truncated(bytes) {
        return Err(decode_err(path, "truncated JPEG (no end-of-image marker)"));
    }
    if format == ImageFormat::WebP
        && let Some(declared) = webp_truncated_size(bytes)
    {
        return Err(decode_err(
            path,
            format!(
                "truncated WebP (file is {} bytes, its RIFF header declares {declared})",
                bytes.len()
            ),
        ));
    }

    if format == ImageFormat::Jpeg {
        return decode_jpeg(path, bytes);
    }

    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    // Dimensions are checked by hand below for a clearer message; the allocation limit is
    // passed on because the PNG and TIFF decoders size their internal buffers with it.
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    reader.limits(limits);
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| image_err(path, format, e))?;

    let (width, height) = decoder.dimensions();
    check_size(
        path,
        width,
        height,
        decoder.total_bytes(),
        &format!("{:?}", decoder.color_type()),
    )?;

    // A broken EXIF block should not make an otherwise good photo unreadable: warn, load it
    // as stored.
    let orientation = match decoder.orientation() {
        Ok(o) => o,
        Err(e) => {
            log::warn!(
                "{}: cannot read the EXIF orientation ({e}); loading without rotation",
                path.display()
            );
            image::metadata::Orientation::NoTransforms
        }
    };
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| image_err(path, format, e))?;
    img.apply_orientation(orientation);
    Ok(img)
}

/// Refuses empty images and possible decompression bombs (too many pixels per side, or a decoded
/// buffer of `needed` bytes over [`MAX_DECODED_BYTES`]) before any pixel buffer is allocated.
/// `kind` names the pixel layout in the message.
fn check_size(
    path: &Path,
    width: u32,
    height: u32,
    needed: u64,
    kind: &str,
) -> Result<(), IoError> {
    if width > MAX_DIMENSION || height > MAX_DIMENSION {
        return Err(decode_err(
            path,
            format!(
                "image is {width}x{height} pixels, larger than the \
                 {MAX_DIMENSION}x{MAX_DIMENSION} limit (refused as a possible decompression bomb)"
            ),
        ));
    }
    if width == 0 || height == 0 {
        return Err(decode_err(
            path,
            format!("image is {width}x{height} pixels (empty)"),
        ));
    }
    if needed > MAX_DECODED_BYTES {
        return Err(decode_err(
            path,
            format!(
                "decoding this {width}x{height} {kind} image needs {needed} bytes, more than the \
                 {MAX_DECODED_BYTES}-byte limit (refused as a possible decompression bomb)"
            ),
        ));
    }
    Ok(())
}

/// Decodes a JPEG with libjpeg-turbo's decoder (the copy mozjpeg vendors, built from source),
/// with libjpeg-turbo's defaults: accurate integer IDCT (`JDCT_ISLOW`), fancy (triangular)
/// chroma upsampling, its fixed-point YCbCr to RGB tables. That is what `PIL.Image.open` and
/// `cv2.imread` run, so the pixels are theirs to the byte (tests/golden_jpeg.rs checks it).
///
/// * Gray JPEGs come out as 8-bit gray, colour ones as 8-bit RGB.
/// * CMYK and YCCK JPEGs are decoded to CMYK by libjpeg and turned into RGB as PIL does: the
///   samples are taken as stored inverted (Adobe's convention, which PIL assumes for every CMYK
///   JPEG), and `R = (255 - K) - round(C * (255 - K) / 255)` with PIL's rounding.
/// * The EXIF orientation comes from the first `Exif` APP1 segment; a missing or unreadable one
///   means upright.
///
/// libjpeg reports fatal errors by unwinding (mozjpeg's error manager, without the panic
/// hook); they are caught here and become a [`IoError::Decode`] naming the file.
fn decode_jpeg(path: &Path, bytes: &[u8]) -> Result<DynamicImage, IoError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        decode_jpeg_inner(path, bytes)
    })) {
        Ok(result) => result,
        Err(payload) => {
            let what = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_else(|| "unknown libjpeg error".to_string());
            let what = what.trim_start_matches("libjpeg fatal error: ");
            Err(decode_err(
                path,
                format!("corrupt or unsupported JPEG: {what}"),
            ))
        }
    }
}

fn decode_jpeg_inner(path: &Path, bytes: &[u8]) -> Result<DynamicImage, IoError> {
    use mozjpeg::{ColorSpace, Decompress, Marker};
    let io_err =
        |e: std::io::Error| decode_err(path, format!("JPEG data ends early or is corrupt: {e}"));
    let dec = Decompress::with_markers(&[Marker::APP(1)])
        .from_mem(bytes)
        .map_err(io_err)?;
    let (w, h) = dec.size();
    let (width, height) = (
        u32::try_from(w).unwrap_or(u32::MAX),
        u32::try_from(h).unwrap_or(u32::MAX),
    );
    let colour = dec.color_space();
    let (channels, kind) = match colour {
        ColorSpace::JCS_GRAYSCALE => (1u64, "gray"),
        ColorSpace::JCS_CMYK | ColorSpace::JCS_YCCK => (4, "CMYK"),
        _ => (3, "colour"),
    };
    check_size(
        path,
        width,
        height,
        u64::from(width) * u64::from(height) * channels,
        kind,
    )?;
    let orientation = dec
        .markers()
        .filter(|m| m.marker == Marker::APP(1))
        .find_map(|m| m.data.strip_prefix(b"Exif\0\0"))
        .and_then(image::metadata::Orientation::from_exif_chunk)
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let short = || {
        decode_err(
            path,
            "JPEG decoder returned fewer pixels than the image has",
        )
    };
    let mut img = match colour {
        ColorSpace::JCS_GRAYSCALE => {
            let mut started = dec.grayscale().map_err(io_err)?;
            let px: Vec<u8> = started.read_scanlines().map_err(io_err)?;
            started.finish().map_err(io_err)?;
            DynamicImage::ImageLuma8(
                image::GrayImage::from_raw(width, height, px).ok_or_else(short)?,
            )
        }
        ColorSpace::JCS_CMYK | ColorSpace::JCS_YCCK => {
            let mut started = dec.to_colorspace(ColorSpace::JCS_CMYK).map_err(io_err)?;
            let px: Vec<u8> = started.read_scanlines().map_err(io_err)?;
            started.finish().map_err(io_err)?;
            let rgb = cmyk_inverted_to_rgb(&px);
            DynamicImage::ImageRgb8(
                image::RgbImage::from_raw(width, height, rgb).ok_or_else(short)?,
            )
        }
        _ => {
            let mut started = dec.rgb().map_err(io_err)?;
            let px: Vec<u8> = started.read_scanlines().map_err(io_err)?;
            started.finish().map_err(io_err)?;
            DynamicImage::ImageRgb8(image::RgbImage::from_raw(width, height, px).ok_or_else(short)?)
        }
    };
    img.apply_orientation(orientation);
    Ok(img)
}

/// The usual name of one of the formats pixal reads, for messages.
fn format_name(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Jpeg => "JPEG",
        ImageFormat::Png => "PNG",
        ImageFormat::WebP => "WebP",
        ImageFormat::Tiff => "TIFF",
        _ => "image",
    }
}

/// Turns an `image` error into an [`IoError`] naming the file.
fn image_err(path: &Path, format: ImageFormat, err: ImageError) -> IoError {
    let format = format_name(format);
    match err {
        ImageError::Unsupported(ref e) => match e.kind() {
            UnsupportedErrorKind::Color(color) | UnsupportedErrorKind::ColorLayout(color) => {
                IoError::PixelFormat {
                    path: path.to_path_buf(),
                    reason: format!("{format} with colour type {color:?} is not supported"),
                }
            }
            _ => decode_err(path, format!("unsupported {format} feature: {err}")),
        },
        ImageError::Limits(e) => decode_err(
            path,
            format!(
                "image exceeds the decoding limits ({e}; refused as a possible decompression bomb)"
            ),
        ),
        // The data comes from memory, so an I/O error means the decoder ran off the end.
        ImageError::IoError(e) => decode_err(
            path,
            format!("{format} data ends early or is corrupt (truncated file?): {e}"),
        ),
        // image's own message already names the format ("Format error decoding PNG: ...").
        other => decode_err(path, other.to_string()),
    }
}

/// True when `data` (which starts with the JPEG SOI marker) ends before its end-of-image
/// marker (`FF D9`).
///
/// Walks the marker segments by their lengths, so an `FF D9` inside an embedded EXIF thumbnail
/// does not count, and data appended after the real end of the image (camera trailers, motion
/// photos) is ignored. Inside entropy-coded data, `FF 00` (stuffed byte) and `FF D0..D7`
/// (restart markers) are skipped; any other `FF xx` is the next marker. A malformed segment
/// length is not called truncation: the decoder gets to report it.
fn jpeg_looks_truncated(data: &[u8]) -> bool {
    let mut i = 2; // past SOI
    while let Some(&byte) = data.get(i) {
        if byte != 0xFF {
            // Entropy-coded data (or junk between segments): scan on to the next 0xFF.
            match data[i..].iter().position(|&b| b == 0xFF) {
                Some(offset) => i += offset,
                None => return true,
            }
            continue;
        }
        let Some(&marker) = data.get(i + 1) else {
            return true;
        };
        match marker {
            0xD9 => return false,
            // Fill byte before a marker.
            0xFF => i += 1,
            // Stuffed zero, restart markers, TEM, a stray SOI: no length field.
            0x00 | 0x01 | 0xD0..=0xD8 => i += 2,
            _ => {
                let (Some(&hi), Some(&lo)) = (data.get(i + 2), data.get(i + 3)) else {
                    return true;
                };
                let len = usize::from(u16::from_be_bytes([hi, lo]));
                if len < 2 {
                    return false;
                }
                i += 2 + len;
            }
        }
    }
    true
}

/// For a WebP file shorter than its RIFF header says, the declared size; `None` when the
/// file is complete (or too short to have a size field, which the decoder reports).
///
/// The WebP decoder reads chunks on demand and can decode an image whose last bytes are
/// missing without complaint; libwebp (what OpenCV uses) refuses such a file, and so do we.
fn webp_truncated_size(data: &[u8]) -> Option<u64> {
    let size = data.get(4..8)?;
    let declared = u64::from(u32::from_le_bytes([size[0], size[1], size[2], size[3]])) + 8;
    (declared > data.len() as u64).then_some(declared)
}

// ---------------------------------------------------------------------------------------------
// Pixel conversions
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests;
