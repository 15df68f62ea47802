//! Integration tests for `pixal::io::image`: loading every supported format, bit depth and
//! colour type with value checks, EXIF orientation, CMYK, bad and hostile files, listing
//! folders and atomic PNG saving. Every fixture is generated inside a temporary folder,
//! except the two real photos under `../shared/fixtures/real/` (skipped when absent, failed
//! when absent and `PIXAL_REQUIRE_FIXTURES` is set).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use image::{ImageBuffer, ImageEncoder, Luma, LumaA, Rgb, Rgba};
use pixal::io::IoError;
use pixal::io::image::{
    is_image_path, list_images, load_dynamic, load_rgb8, load_rgba8, save_png, save_png_gray16,
};

// ---------------------------------------------------------------------------------------------
// Fixture helpers
// ---------------------------------------------------------------------------------------------

/// 16-bit to 8-bit, the documented rule, written independently of the library.
fn r16(v: u16) -> u8 {
    ((u32::from(v) * 255 + 32767) / 65535) as u8
}

/// Samples used for 16-bit fixtures: edges, rounding boundaries, a few arbitrary values.
const V16: [u16; 8] = [0, 128, 129, 257, 32767, 32896, 40000, 65535];

fn write_file(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(bytes).unwrap();
}

fn jpeg_bytes_rgb(img: &image::RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    out
}

fn png_bytes<P>(img: &ImageBuffer<P, Vec<P::Subpixel>>, exif: Option<Vec<u8>>) -> Vec<u8>
where
    P: image::Pixel + image::PixelWithColorType,
    [P::Subpixel]: image::EncodableLayout,
{
    let mut out = Vec::new();
    let mut enc = image::codecs::png::PngEncoder::new(&mut out);
    if let Some(exif) = exif {
        enc.set_exif_metadata(exif).unwrap();
    }
    img.write_with_encoder(enc).unwrap();
    out
}

/// A minimal little-endian TIFF block holding one IFD entry: Orientation (0x0112) = `value`.
/// This is the payload of a JPEG APP1 "Exif\0\0" segment and of a PNG eXIf chunk.
fn exif_tiff(orientation: u16) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(b"II*\0");
    t.extend_from_slice(&8u32.to_le_bytes()); // IFD right after the header
    t.extend_from_slice(&1u16.to_le_bytes()); // one entry
    t.extend_from_slice(&0x0112u16.to_le_bytes()); // Orientation
    t.extend_from_slice(&3u16.to_le_bytes()); // SHORT
    t.extend_from_slice(&1u32.to_le_bytes()); // count 1
    t.extend_from_slice(&orientation.to_le_bytes());
    t.extend_from_slice(&[0, 0]); // value padding to 4 bytes
    t.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    t
}

/// Inserts an APP1 Exif segment holding `exif_tiff(orientation)` right after the SOI marker.
fn jpeg_with_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(&exif_tiff(orientation));
    let len = u16::try_from(payload.len() + 2).unwrap();
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// Options for a hand-made TIFF.
struct Tiff<'a> {
    width: u32,
    height: u32,
    bits: &'a [u16],
    photometric: u16,
    /// 1 = unsigned integer, 3 = IEEE float.
    sample_format: u16,
    orientation: Option<u16>,
    data: &'a [u8],
}

/// A minimal uncompressed little-endian single-strip TIFF, for what image's encoder cannot
/// write (CMYK, an orientation tag) or must not be asked to (absurd dimensions).
fn tiff_bytes(t: &Tiff) -> Vec<u8> {
    let spp = u16::try_from(t.bits.len()).unwrap();
    let short_array =
        |vals: &[u16]| -> Vec<u8> { vals.iter().flat_map(|v| v.to_le_bytes()).collect() };
    let mut entries: Vec<(u16, u16, u32, Vec<u8>)> = Vec::new(); // tag, type, count, value bytes
    let long = |v: u32| v.to_le_bytes().to_vec();
    let short = |v: u16| v.to_le_bytes().to_vec();
    entries.push((256, 4, 1, long(t.width)));
    entries.push((257, 4, 1, long(t.height)));
    entries.push((258, 3, u32::from(spp), short_array(t.bits)));
    entries.push((259, 3, 1, short(1)));
    entries.push((262, 3, 1, short(t.photometric)));
    entries.push((273, 4, 1, long(0))); // strip offset, patched below
    if let Some(o) = t.orientation {
        entries.push((274, 3, 1, short(o)));
    }
    entries.push((277, 3, 1, short(spp)));
    entries.push((278, 4, 1, long(t.height)));
    entries.push((279, 4, 1, long(u32::try_from(t.data.len()).unwrap())));
    entries.push((284, 3, 1, short(1)));
    entries.push((
        339,
        3,
        u32::from(spp),
        short_array(&vec![t.sample_format; spp as usize]),
    ));

    let ifd_len = 2 + 12 * entries.len() + 4;
    let mut extra = Vec::new(); // out-of-line values, after the IFD
    let extra_start = 8 + ifd_len;
    let mut ifd = Vec::new();
    ifd.extend_from_slice(&u16::try_from(entries.len()).unwrap().to_le_bytes());
    let mut strip_offset_pos = 0;
    for (tag, typ, count, value) in &entries {
        ifd.extend_from_slice(&tag.to_le_bytes());
        ifd.extend_from_slice(&typ.to_le_bytes());
        ifd.extend_from_slice(&count.to_le_bytes());
        if *tag == 273 {
            strip_offset_pos = 8 + ifd.len();
        }
        if value.len() <= 4 {
            let mut v = value.clone();
            v.resize(4, 0);
            ifd.extend_from_slice(&v);
        } else {
            let off = u32::try_from(extra_start + extra.len()).unwrap();
            ifd.extend_from_slice(&off.to_le_bytes());
            extra.extend_from_slice(value);
            if extra.len() % 2 == 1 {
                extra.push(0);
            }
        }
    }
    ifd.extend_from_slice(&0u32.to_le_bytes());
    let mut out = b"II*\0".to_vec();
    out.extend_from_slice(&8u32.to_le_bytes());
    out.extend_from_slice(&ifd);
    out.extend_from_slice(&extra);
    let data_off = u32::try_from(out.len()).unwrap();
    out[strip_offset_pos..strip_offset_pos + 4].copy_from_slice(&data_off.to_le_bytes());
    out.extend_from_slice(t.data);
    out
}

fn u16s_le(v: &[u16]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Asserts that `a` and `b` differ by at most `tol` in every channel.
fn close(a: &[u8], b: &[u8], tol: u8, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (x, y) in a.iter().zip(b) {
        assert!(
            x.abs_diff(*y) <= tol,
            "{what}: {a:?} vs {b:?} (tolerance {tol})"
        );
    }
}

/// Asserts the error names the file and contains every one of `words` (case-insensitive).
fn assert_err_mentions(err: &IoError, path: &Path, words: &[&str]) {
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "error does not name the file: {msg}"
    );
    for w in words {
        assert!(
            msg.to_lowercase().contains(&w.to_lowercase()),
            "error lacks {w:?}: {msg}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Extensions and folder listing
// ---------------------------------------------------------------------------------------------

#[test]
fn extensions() {
    assert!(is_image_path(Path::new("/x/y/Photo.JPG")));
    assert!(is_image_path(Path::new("a.tiff")));
    assert!(!is_image_path(Path::new("a.gif")));
    assert!(!is_image_path(Path::new("noext")));
}

#[test]
fn list_images_filters_and_sorts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for name in [
        "b.jpg",
        "a.PNG",
        "B.jpeg",
        "z.TIFF",
        "m.webp",
        "c.tif",
        ".hidden.png",
        "notes.txt",
        "noext",
        "x.gif",
        "._mac.jpg",
    ] {
        write_file(&d.join(name), b"x");
    }
    std::fs::create_dir(d.join("folder.png")).unwrap();
    std::fs::create_dir(d.join("sub")).unwrap();
    write_file(&d.join("sub").join("inner.png"), b"x");
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(d.join("b.jpg"), d.join("link.jpg")).unwrap();
        std::os::unix::fs::symlink(d.join("gone.jpg"), d.join("dangling.jpg")).unwrap();
    }
    let names: Vec<String> = list_images(d)
        .unwrap()
        .iter()
        .map(|p| {
            assert_eq!(p.parent(), Some(d));
            p.file_name().unwrap().to_string_lossy().into_owned()
        })
        .collect();
    let mut expected = vec!["B.jpeg", "a.PNG", "b.jpg", "c.tif", "m.webp", "z.TIFF"];
    if cfg!(unix) {
        expected.insert(4, "link.jpg");
    }
    assert_eq!(names, expected);
}

#[test]
fn list_images_missing_folder_is_listdir_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = list_images(&missing).unwrap_err();
    assert!(matches!(err, IoError::ListDir { .. }), "{err:?}");
    assert_err_mentions(&err, &missing, &["cannot list folder"]);

    // A file is not a folder either.
    let file = dir.path().join("f.png");
    write_file(&file, b"x");
    let err = list_images(&file).unwrap_err();
    assert!(matches!(err, IoError::ListDir { .. }), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// PNG, 8 and 16 bit, every colour type
// ---------------------------------------------------------------------------------------------

#[test]
fn png_8bit_all_colour_types() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    let l8 = ImageBuffer::<Luma<u8>, _>::from_raw(3, 1, vec![0u8, 77, 255]).unwrap();
    let p = d.join("l8.png");
    write_file(&p, &png_bytes(&l8, None));
    assert_eq!(
        load_rgb8(&p).unwrap().as_raw(),
        &vec![0, 0, 0, 77, 77, 77, 255, 255, 255]
    );
    assert_eq!(
        load_rgba8(&p).unwrap().as_raw(),
        &vec![0, 0, 0, 255, 77, 77, 77, 255, 255, 255, 255, 255]
    );

    let la8 = ImageBuffer::<LumaA<u8>, _>::from_raw(2, 1, vec![10u8, 0, 200, 128]).unwrap();
    let p = d.join("la8.png");
    write_file(&p, &png_bytes(&la8, None));
    // Alpha dropped, gray kept as stored (not composited on black or white).
    assert_eq!(
        load_rgb8(&p).unwrap().as_raw(),
        &vec![10, 10, 10, 200, 200, 200]
    );
    assert_eq!(
        load_rgba8(&p).unwrap().as_raw(),
        &vec![10, 10, 10, 0, 200, 200, 200, 128]
    );

    let rgb8 = ImageBuffer::<Rgb<u8>, _>::from_raw(2, 2, (1..=12).collect::<Vec<u8>>()).unwrap();
    let p = d.join("rgb8.png");
    write_file(&p, &png_bytes(&rgb8, None));
    let got = load_rgb8(&p).unwrap();
    assert_eq!(got.dimensions(), (2, 2));
    assert_eq!(got.as_raw(), rgb8.as_raw());
    let got = load_rgba8(&p).unwrap();
    assert_eq!(got.get_pixel(1, 1).0, [10, 11, 12, 255]);

    let rgba8 =
        ImageBuffer::<Rgba<u8>, _>::from_raw(2, 1, vec![1u8, 2, 3, 0, 250, 251, 252, 99]).unwrap();
    let p = d.join("rgba8.png");
    write_file(&p, &png_bytes(&rgba8, None));
    assert_eq!(
        load_rgb8(&p).unwrap().as_raw(),
        &vec![1, 2, 3, 250, 251, 252],
        "fully transparent pixel keeps its stored RGB"
    );
    assert_eq!(load_rgba8(&p).unwrap().as_raw(), rgba8.as_raw());
}

#[test]
fn png_16bit_all_colour_types() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let n = V16.len() as u32;

    let l16 = ImageBuffer::<Luma<u16>, _>::from_raw(n, 1, V16.to_vec()).unwrap();
    let p = d.join("l16.png");
    write_file(&p, &png_bytes(&l16, None));
    // load_dynamic keeps 16 bits.
    match load_dynamic(&p).unwrap() {
        image::DynamicImage::ImageLuma16(b) => assert_eq!(b.as_raw(), l16.as_raw()),
        other => panic!("expected Luma16, got {:?}", other.color()),
    }
    let expected: Vec<u8> = V16.iter().flat_map(|&v| [r16(v); 3]).collect();
    assert_eq!(load_rgb8(&p).unwrap().as_raw(), &expected);
    // The rounding boundaries: 128 -> 0, 129 -> 1, 32767 -> 127, 32896 -> 128.
    assert_eq!(
        &expected[..],
        &[
            0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 127, 127, 127, 128, 128, 128, 156, 156, 156, 255,
            255, 255
        ]
    );

    // Gray+alpha: pairs (value, alpha) from V16 and V16 reversed.
    let la: Vec<u16> = V16
        .iter()
        .zip(V16.iter().rev())
        .flat_map(|(&v, &a)| [v, a])
        .collect();
    let la16 = ImageBuffer::<LumaA<u16>, _>::from_raw(n, 1, la.clone()).unwrap();
    let p = d.join("la16.png");
    write_file(&p, &png_bytes(&la16, None));
    let rgba = load_rgba8(&p).unwrap();
    for (i, px) in rgba.pixels().enumerate() {
        let (v, a) = (la[2 * i], la[2 * i + 1]);
        assert_eq!(px.0, [r16(v), r16(v), r16(v), r16(a)]);
    }
    let rgb = load_rgb8(&p).unwrap();
    for (i, px) in rgb.pixels().enumerate() {
        assert_eq!(px.0, [r16(la[2 * i]); 3]);
    }

    // RGB and RGBA: every V16 value in every channel position.
    let rgb_raw: Vec<u16> = (0..n as usize * 3)
        .map(|i| V16[(i * 5) % V16.len()])
        .collect();
    let rgb16 = ImageBuffer::<Rgb<u16>, _>::from_raw(n, 1, rgb_raw.clone()).unwrap();
    let p = d.join("rgb16.png");
    write_file(&p, &png_bytes(&rgb16, None));
    let exp: Vec<u8> = rgb_raw.iter().map(|&v| r16(v)).collect();
    assert_eq!(load_rgb8(&p).unwrap().as_raw(), &exp);
    let rgba = load_rgba8(&p).unwrap();
    assert!(rgba.pixels().all(|px| px.0[3] == 255));

    let rgba_raw: Vec<u16> = (0..n as usize * 4)
        .map(|i| V16[(i * 3) % V16.len()])
        .collect();
    let rgba16 = ImageBuffer::<Rgba<u16>, _>::from_raw(n, 1, rgba_raw.clone()).unwrap();
    let p = d.join("rgba16.png");
    write_file(&p, &png_bytes(&rgba16, None));
    let exp: Vec<u8> = rgba_raw.iter().map(|&v| r16(v)).collect();
    assert_eq!(load_rgba8(&p).unwrap().as_raw(), &exp);
    let exp_rgb: Vec<u8> = rgba_raw
        .chunks(4)
        .flat_map(|c| [r16(c[0]), r16(c[1]), r16(c[2])])
        .collect();
    assert_eq!(load_rgb8(&p).unwrap().as_raw(), &exp_rgb);
}

#[test]
fn png_content_decides_not_extension() {
    let dir = tempfile::tempdir().unwrap();
    let rgb8 = ImageBuffer::<Rgb<u8>, _>::from_raw(1, 1, vec![9u8, 8, 7]).unwrap();
    let p = dir.path().join("really_a_png.JPG");
    write_file(&p, &png_bytes(&rgb8, None));
    assert_eq!(load_rgb8(&p).unwrap().as_raw(), &vec![9, 8, 7]);
}

// ---------------------------------------------------------------------------------------------
// JPEG, WebP, TIFF
// ---------------------------------------------------------------------------------------------

#[test]
fn jpeg_rgb_and_gray() {
    let dir = tempfile::tempdir().unwrap();
    let img = ImageBuffer::from_pixel(16, 16, Rgb([200u8, 40, 90]));
    let p = dir.path().join("flat.jpeg");
    write_file(&p, &jpeg_bytes_rgb(&img, 95));
    let got = load_rgb8(&p).unwrap();
    assert_eq!(got.dimensions(), (16, 16));
    for px in got.pixels() {
        close(&px.0, &[200, 40, 90], 4, "flat JPEG");
    }
    let got = load_rgba8(&p).unwrap();
    assert!(got.pixels().all(|px| px.0[3] == 255));

    let gray = ImageBuffer::from_pixel(16, 8, Luma([123u8]));
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 95)
        .write_image(gray.as_raw(), 16, 8, image::ExtendedColorType::L8)
        .unwrap();
    let p = dir.path().join("gray.jpg");
    write_file(&p, &bytes);
    let got = load_rgb8(&p).unwrap();
    assert_eq!(got.dimensions(), (16, 8));
    for px in got.pixels() {
        assert_eq!(px.0[0], px.0[1]);
        assert_eq!(px.0[1], px.0[2]);
        close(&px.0, &[123, 123, 123], 2, "gray JPEG");
    }
}

#[test]
fn webp_lossless_rgba() {
    let dir = tempfile::tempdir().unwrap();
    let raw: Vec<u8> = (0..4 * 5 * 3).map(|i| (i * 37 % 256) as u8).collect();
    let img = ImageBuffer::<Rgba<u8>, _>::from_raw(5, 3, raw).unwrap();
    let mut bytes = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut bytes)
        .write_image(img.as_raw(), 5, 3, image::ExtendedColorType::Rgba8)
        .unwrap();
    let p = dir.path().join("x.WebP");
    write_file(&p, &bytes);
    let got = load_rgba8(&p).unwrap();
    // Lossless WebP may rewrite the RGB of fully transparent pixels; compare the others.
    for (a, b) in got.pixels().zip(img.pixels()) {
        if b.0[3] == 0 {
            assert_eq!(a.0[3], 0);
        } else {
            assert_eq!(a.0, b.0);
        }
    }
    let rgb = load_rgb8(&p).unwrap();
    assert_eq!(rgb.dimensions(), (5, 3));
}

#[test]
fn tiff_8_and_16_bit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    let rgb8 =
        ImageBuffer::<Rgb<u8>, _>::from_raw(3, 2, (0..18).map(|i| i * 14).collect::<Vec<u8>>())
            .unwrap();
    let p = d.join("rgb8.tif");
    rgb8.save(&p).unwrap();
    assert_eq!(load_rgb8(&p).unwrap().as_raw(), rgb8.as_raw());

    let l16 = ImageBuffer::<Luma<u16>, _>::from_raw(V16.len() as u32, 1, V16.to_vec()).unwrap();
    let p = d.join("l16.TIFF");
    l16.save(&p).unwrap();
    let exp: Vec<u8> = V16.iter().flat_map(|&v| [r16(v); 3]).collect();
    assert_eq!(load_rgb8(&p).unwrap().as_raw(), &exp);

    let rgba_raw: Vec<u16> = (0..V16.len() * 4)
        .map(|i| V16[(i * 3) % V16.len()])
        .collect();
    let rgba16 =
        ImageBuffer::<Rgba<u16>, _>::from_raw(V16.len() as u32, 1, rgba_raw.clone()).unwrap();
    let p = d.join("rgba16.tiff");
    rgba16.save(&p).unwrap();
    let exp: Vec<u8> = rgba_raw.iter().map(|&v| r16(v)).collect();
    assert_eq!(load_rgba8(&p).unwrap().as_raw(), &exp);
}

#[test]
fn tiff_float_is_clamped() {
    let dir = tempfile::tempdir().unwrap();
    let raw = vec![-0.5f32, 0.25, 1.5, 0.0, 1.0, 0.5, f32::NAN, 0.999, 0.002];
    let img = ImageBuffer::<Rgb<f32>, _>::from_raw(3, 1, raw).unwrap();
    let p = dir.path().join("float.tif");
    image::DynamicImage::ImageRgb32F(img).save(&p).unwrap();
    assert_eq!(
        load_rgb8(&p).unwrap().as_raw(),
        &vec![0, 64, 255, 0, 255, 128, 0, 255, 1]
    );
    assert_eq!(
        load_rgba8(&p).unwrap().get_pixel(1, 0).0,
        [0, 255, 128, 255]
    );

    let rgba = ImageBuffer::<Rgba<f32>, _>::from_raw(1, 1, vec![0.2, 0.4, 0.6, 0.5]).unwrap();
    let p = dir.path().join("float_rgba.tif");
    image::DynamicImage::ImageRgba32F(rgba).save(&p).unwrap();
    assert_eq!(load_rgba8(&p).unwrap().as_raw(), &vec![51, 102, 153, 128]);
}

#[test]
fn tiff_cmyk_8_and_16_bit() {
    let dir = tempfile::tempdir().unwrap();
    // TIFF CMYK is not inverted: 255 = full ink.
    let cmyk: [[u8; 4]; 5] = [
        [255, 0, 0, 0], // cyan
        [0, 255, 0, 0], // magenta
        [0, 0, 0, 0],   // white (no ink)
        [0, 0, 0, 255], // black
        [0, 128, 0, 0], // half magenta
    ];
    let rgb_expected: [[u8; 3]; 5] = [
        [0, 255, 255],
        [255, 0, 255],
        [255, 255, 255],
        [0, 0, 0],
        [255, 127, 255],
    ];
    let data: Vec<u8> = cmyk.iter().flatten().copied().collect();
    let p = dir.path().join("cmyk8.tif");
    write_file(
        &p,
        &tiff_bytes(&Tiff {
            width: 5,
            height: 1,
            bits: &[8, 8, 8, 8],
            photometric: 5,
            sample_format: 1,
            orientation: None,
            data: &data,
        }),
    );
    let got = load_rgb8(&p).unwrap();
    for (px, exp) in got.pixels().zip(rgb_expected) {
        close(&px.0, &exp, 1, "CMYK TIFF 8-bit");
    }

    let data16: Vec<u16> = cmyk.iter().flatten().map(|&v| u16::from(v) * 257).collect();
    let p = dir.path().join("cmyk16.tif");
    write_file(
        &p,
        &tiff_bytes(&Tiff {
            width: 5,
            height: 1,
            bits: &[16, 16, 16, 16],
            photometric: 5,
            sample_format: 1,
            orientation: None,
            data: &u16s_le(&data16),
        }),
    );
    let got = load_rgba8(&p).unwrap();
    for (px, exp) in got.pixels().zip(rgb_expected) {
        close(&px.0[..3], &exp, 1, "CMYK TIFF 16-bit");
        assert_eq!(px.0[3], 255);
    }
}

// ---------------------------------------------------------------------------------------------
// CMYK JPEG
// ---------------------------------------------------------------------------------------------

fn cmyk_jpeg(cmyk: [u8; 4], color: jpeg_encoder::ColorType) -> Vec<u8> {
    let (w, h) = (24u16, 16u16);
    let data: Vec<u8> = (0..usize::from(w) * usize::from(h))
        .flat_map(|_| cmyk)
        .collect();
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 95)
        .encode(&data, w, h, color)
        .unwrap();
    out
}

#[test]
fn cmyk_jpeg_converts_to_rgb() {
    let dir = tempfile::tempdir().unwrap();
    // jpeg-encoder takes ink amounts (255 = full ink) and stores them inverted, Adobe style,
    // with an Adobe APP14 marker (transform 0 for CMYK, 2 for YCCK).
    let cases: [([u8; 4], [u8; 3]); 6] = [
        ([255, 0, 0, 0], [0, 255, 255]),   // cyan
        ([0, 255, 0, 0], [255, 0, 255]),   // magenta
        ([0, 0, 255, 0], [255, 255, 0]),   // yellow
        ([0, 0, 0, 0], [255, 255, 255]),   // paper white
        ([0, 0, 0, 255], [0, 0, 0]),       // black
        ([0, 0, 0, 128], [127, 127, 127]), // 50 % black
    ];
    for (kind, color) in [
        ("cmyk", jpeg_encoder::ColorType::Cmyk),
        ("ycck", jpeg_encoder::ColorType::CmykAsYcck),
    ] {
        for (i, (cmyk, rgb)) in cases.iter().enumerate() {
            let p = dir.path().join(format!("{kind}_{i}.jpg"));
            let bytes = cmyk_jpeg(*cmyk, color);
            assert!(
                bytes.windows(5).any(|w| w == b"Adobe"),
                "jpeg-encoder wrote no Adobe marker"
            );
            write_file(&p, &bytes);
            let got = load_rgb8(&p).unwrap();
            assert_eq!(got.dimensions(), (24, 16));
            for px in got.pixels() {
                close(&px.0, rgb, 10, &format!("{kind} JPEG, CMYK {cmyk:?}"));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// EXIF orientation
// ---------------------------------------------------------------------------------------------

/// 64x32 image with four flat quadrants: TL red, TR green, BL blue, BR white.
fn quadrants() -> image::RgbImage {
    ImageBuffer::from_fn(64, 32, |x, y| match (x < 32, y < 16) {
        (true, true) => Rgb([255, 0, 0]),
        (false, true) => Rgb([0, 255, 0]),
        (true, false) => Rgb([0, 0, 255]),
        (false, false) => Rgb([255, 255, 255]),
    })
}

const RED: [u8; 3] = [255, 0, 0];
const GREEN: [u8; 3] = [0, 255, 0];
const BLUE: [u8; 3] = [0, 0, 255];
const WHITE: [u8; 3] = [255, 255, 255];

/// Checks the four corners (4 px inside, clear of JPEG ringing at the quadrant edges).
fn check_corners(
    img: &image::RgbImage,
    tl: [u8; 3],
    tr: [u8; 3],
    bl: [u8; 3],
    br: [u8; 3],
    tol: u8,
    what: &str,
) {
    let (w, h) = img.dimensions();
    close(
        &img.get_pixel(4, 4).0,
        &tl,
        tol,
        &format!("{what} top-left"),
    );
    close(
        &img.get_pixel(w - 5, 4).0,
        &tr,
        tol,
        &format!("{what} top-right"),
    );
    close(
        &img.get_pixel(4, h - 5).0,
        &bl,
        tol,
        &format!("{what} bottom-left"),
    );
    close(
        &img.get_pixel(w - 5, h - 5).0,
        &br,
        tol,
        &format!("{what} bottom-right"),
    );
}

#[test]
fn exif_orientation_jpeg() {
    let dir = tempfile::tempdir().unwrap();
    let plain = jpeg_bytes_rgb(&quadrants(), 95);

    // Without the tag: as stored.
    let p = dir.path().join("plain.jpg");
    write_file(&p, &plain);
    let img = load_rgb8(&p).unwrap();
    assert_eq!(img.dimensions(), (64, 32));
    check_corners(&img, RED, GREEN, BLUE, WHITE, 12, "no EXIF");

    // Orientation 6: the camera was turned, the viewer must rotate 90° clockwise.
    // The stored bottom-left (blue) becomes the top-left, the stored top-left (red) the
    // top-right.
    let p = dir.path().join("rot6.jpg");
    write_file(&p, &jpeg_with_orientation(&plain, 6));
    let img = load_rgb8(&p).unwrap();
    assert_eq!(img.dimensions(), (32, 64), "width and height swapped");
    check_corners(&img, BLUE, RED, WHITE, GREEN, 12, "orientation 6");
    // Same through load_rgba8.
    let rgba = load_rgba8(&p).unwrap();
    assert_eq!(rgba.dimensions(), (32, 64));
    close(
        &rgba.get_pixel(27, 4).0,
        &[255, 0, 0, 255],
        12,
        "orientation 6 RGBA top-right",
    );

    // Orientation 3: rotate 180°.
    let p = dir.path().join("rot3.jpg");
    write_file(&p, &jpeg_with_orientation(&plain, 3));
    let img = load_rgb8(&p).unwrap();
    assert_eq!(img.dimensions(), (64, 32));
    check_corners(&img, WHITE, BLUE, GREEN, RED, 12, "orientation 3");

    // Orientation 8: rotate 90° counter-clockwise.
    let p = dir.path().join("rot8.jpg");
    write_file(&p, &jpeg_with_orientation(&plain, 8));
    let img = load_rgb8(&p).unwrap();
    assert_eq!(img.dimensions(), (32, 64));
    check_corners(&img, GREEN, WHITE, RED, BLUE, 12, "orientation 8");
}

#[test]
fn exif_orientation_png_and_tiff() {
    let dir = tempfile::tempdir().unwrap();
    let q = quadrants();

    let p = dir.path().join("rot6.png");
    write_file(&p, &png_bytes(&q, Some(exif_tiff(6))));
    let img = load_rgb8(&p).unwrap();
    assert_eq!(img.dimensions(), (32, 64));
    check_corners(&img, BLUE, RED, WHITE, GREEN, 0, "PNG eXIf orientation 6");

    let p = dir.path().join("rot6.tif");
    write_file(
        &p,
        &tiff_bytes(&Tiff {
            width: 64,
            height: 32,
            bits: &[8, 8, 8],
            photometric: 2,
            sample_format: 1,
            orientation: Some(6),
            data: q.as_raw(),
        }),
    );
    let img = load_rgb8(&p).unwrap();
    assert_eq!(img.dimensions(), (32, 64));
    check_corners(&img, BLUE, RED, WHITE, GREEN, 0, "TIFF orientation 6");
}

// ---------------------------------------------------------------------------------------------
// Bad files: errors that name the file, never panics
// ---------------------------------------------------------------------------------------------

#[test]
fn missing_file_is_read_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("missing.jpg");
    for err in [load_rgb8(&p).unwrap_err(), load_rgba8(&p).unwrap_err()] {
        assert!(matches!(err, IoError::Read { .. }), "{err:?}");
        assert_err_mentions(&err, &p, &["cannot read"]);
    }
    // A folder with an image name.
    let p = dir.path().join("folder.png");
    std::fs::create_dir(&p).unwrap();
    let err = load_rgb8(&p).unwrap_err();
    assert!(matches!(err, IoError::Read { .. }), "{err:?}");
    assert_err_mentions(&err, &p, &["folder"]);
}

#[test]
fn unsupported_extension() {
    let dir = tempfile::tempdir().unwrap();
    // A perfectly good PNG, but not named like an image: refused before opening.
    let rgb8 = ImageBuffer::<Rgb<u8>, _>::from_raw(1, 1, vec![1u8, 2, 3]).unwrap();
    for name in ["x.gif", "x.txt", "x"] {
        let p = dir.path().join(name);
        write_file(&p, &png_bytes(&rgb8, None));
        let err = load_rgb8(&p).unwrap_err();
        assert!(
            matches!(err, IoError::UnsupportedExtension { .. }),
            "{err:?}"
        );
        assert_err_mentions(&err, &p, &["not a supported image type"]);
    }
    // Missing file with a bad extension: still the extension error (nothing is opened).
    let p = dir.path().join("nothing.bmp");
    assert!(matches!(
        load_rgba8(&p).unwrap_err(),
        IoError::UnsupportedExtension { .. }
    ));
}

#[test]
fn text_empty_and_foreign_files_are_decode_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
        (
            "text.jpg",
            b"hello, I am not a JPEG\n".to_vec(),
            &["not a jpeg, png, webp or tiff"],
        ),
        ("empty.jpg", Vec::new(), &["empty file"]),
        ("empty.png", Vec::new(), &["empty file"]),
        ("empty.tif", Vec::new(), &["empty file"]),
        (
            "gif.png",
            b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec(),
            &["gif", "does not read"],
        ),
        ("one_byte.webp", vec![0x52], &["not a jpeg"]),
    ];
    for (name, bytes, words) in cases {
        let p = d.join(name);
        write_file(&p, &bytes);
        let err = load_rgb8(&p).unwrap_err();
        assert!(matches!(err, IoError::Decode { .. }), "{name}: {err:?}");
        assert_err_mentions(&err, &p, words);
        println!("{name}: {err}");
    }
}

#[test]
fn truncated_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Busy content, so half of the file is really half of the pixels.
    let img = ImageBuffer::from_fn(96, 64, |x, y| {
        Rgb([(x * 7 + y) as u8, (y * 5) as u8, (x ^ y) as u8])
    });
    let rgba = ImageBuffer::from_fn(96, 64, |x, y| {
        Rgba([(x * 7 + y) as u8, (y * 5) as u8, (x ^ y) as u8, 200])
    });
    let jpeg = jpeg_bytes_rgb(&img, 90);
    let png = png_bytes(&img, None);
    let mut webp = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut webp)
        .write_image(rgba.as_raw(), 96, 64, image::ExtendedColorType::Rgba8)
        .unwrap();
    let tiff_path = d.join("full.tif");
    img.save(&tiff_path).unwrap();
    let tiff = std::fs::read(&tiff_path).unwrap();

    // What the JPEG decoder alone does with a cut file (informative, not asserted).
    let half_jpeg = &jpeg[..jpeg.len() / 2];
    println!(
        "image::load_from_memory on a half JPEG without pixal's check: {}",
        match image::load_from_memory(half_jpeg) {
            Ok(_) => "Ok (decoded silently, rest of the image padded)".to_string(),
            Err(e) => format!("Err({e})"),
        }
    );

    // Half of each file; for JPEG and WebP also all but the last byte; for PNG, a cut inside
    // the last IDAT chunk (the final 12 bytes are the IEND chunk).
    let cases = [
        ("cut.jpg", &jpeg, vec![jpeg.len() / 2, jpeg.len() - 1]),
        ("cut.png", &png, vec![png.len() / 2, png.len() - 20]),
        ("cut.webp", &webp, vec![webp.len() / 2, webp.len() - 1]),
        ("cut.tif", &tiff, vec![tiff.len() / 2]),
    ];
    for (name, bytes, cuts) in cases {
        for cut in cuts {
            let p = d.join(name);
            write_file(&p, &bytes[..cut]);
            let err = match load_rgb8(&p) {
                Ok(_) => panic!("{name} cut to {cut}/{} bytes loaded", bytes.len()),
                Err(e) => e,
            };
            assert!(matches!(err, IoError::Decode { .. }), "{name}: {err:?}");
            assert_err_mentions(&err, &p, &["cannot decode"]);
            println!("{name} cut to {cut}/{}: {err}", bytes.len());
        }
    }
    // A PNG missing only (part of) its IEND trailer has all its pixel data: it loads, intact.
    let p = d.join("no_iend.png");
    write_file(&p, &png[..png.len() - 1]);
    assert_eq!(load_rgb8(&p).unwrap().as_raw(), img.as_raw());

    // The JPEG one says exactly what is wrong.
    let p = d.join("cut.jpg");
    write_file(&p, &jpeg[..jpeg.len() / 2]);
    let err = load_rgb8(&p).unwrap_err();
    assert_err_mentions(&err, &p, &["truncated JPEG (no end-of-image marker)"]);

    // A JPEG with bytes appended after its end (camera trailers) still loads.
    let mut trailer = jpeg.clone();
    trailer.extend_from_slice(b"\0\0MAKERTRAILER\xFF\xD8\xFF");
    let p = d.join("trailer.jpg");
    write_file(&p, &trailer);
    assert_eq!(load_rgb8(&p).unwrap().dimensions(), (96, 64));
}

/// Patches the frame size in a baseline JPEG's SOF0 segment.
fn patch_jpeg_size(jpeg: &[u8], width: u16, height: u16) -> Vec<u8> {
    let mut out = jpeg.to_vec();
    let pos = out
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("no SOF0 marker");
    // FF C0, length (2), precision (1), height (2), width (2)
    out[pos + 5..pos + 7].copy_from_slice(&height.to_be_bytes());
    out[pos + 7..pos + 9].copy_from_slice(&width.to_be_bytes());
    out
}

#[test]
fn decompression_bombs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let small = jpeg_bytes_rgb(&ImageBuffer::from_pixel(16, 16, Rgb([1u8, 2, 3])), 90);

    // Too wide.
    let p = d.join("wide.jpg");
    write_file(&p, &patch_jpeg_size(&small, 30_000, 16));
    let err = load_rgb8(&p).unwrap_err();
    assert!(matches!(err, IoError::Decode { .. }), "{err:?}");
    assert_err_mentions(&err, &p, &["30000x16", "20000x20000", "decompression bomb"]);

    // Within the side limit, over the 1 GiB buffer limit (19000^2 * 3 bytes).
    let p = d.join("big.jpg");
    write_file(&p, &patch_jpeg_size(&small, 19_000, 19_000));
    let err = load_rgb8(&p).unwrap_err();
    assert!(matches!(err, IoError::Decode { .. }), "{err:?}");
    assert_err_mentions(&err, &p, &["19000x19000", "bytes", "decompression bomb"]);

    // A TIFF claiming 19000x19000 RGB with a few bytes of data.
    let p = d.join("big.tif");
    write_file(
        &p,
        &tiff_bytes(&Tiff {
            width: 19_000,
            height: 19_000,
            bits: &[8, 8, 8],
            photometric: 2,
            sample_format: 1,
            orientation: None,
            data: &[0; 30],
        }),
    );
    let err = load_rgb8(&p).unwrap_err();
    assert!(matches!(err, IoError::Decode { .. }), "{err:?}");
    assert_err_mentions(&err, &p, &["decompression bomb"]);

    // A TIFF claiming 100000 x 1.
    let p = d.join("wide.tif");
    write_file(
        &p,
        &tiff_bytes(&Tiff {
            width: 100_000,
            height: 1,
            bits: &[8],
            photometric: 1,
            sample_format: 1,
            orientation: None,
            data: &[0; 30],
        }),
    );
    let err = load_rgb8(&p).unwrap_err();
    assert_err_mentions(&err, &p, &["100000x1", "limit"]);
}

// ---------------------------------------------------------------------------------------------
// Inputs are never modified
// ---------------------------------------------------------------------------------------------

#[test]
fn loading_never_modifies_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let q = quadrants();
    let mut files: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    let mut add = |name: &str, bytes: Vec<u8>| {
        let p = d.join(name);
        write_file(&p, &bytes);
        files.push((p, bytes));
    };
    let plain = jpeg_bytes_rgb(&q, 90);
    add("a.jpg", plain.clone());
    add("rot.jpg", jpeg_with_orientation(&plain, 6));
    add("cut.jpg", plain[..plain.len() / 2].to_vec());
    add("a.png", png_bytes(&q, Some(exif_tiff(6))));
    add(
        "l16.png",
        png_bytes(
            &ImageBuffer::<Luma<u16>, _>::from_raw(8, 1, V16.to_vec()).unwrap(),
            None,
        ),
    );
    add(
        "cmyk.jpg",
        cmyk_jpeg([255, 0, 0, 0], jpeg_encoder::ColorType::Cmyk),
    );
    add(
        "cmyk.tif",
        tiff_bytes(&Tiff {
            width: 1,
            height: 1,
            bits: &[8, 8, 8, 8],
            photometric: 5,
            sample_format: 1,
            orientation: Some(6),
            data: &[1, 2, 3, 4],
        }),
    );
    add("text.jpg", b"not an image".to_vec());
    add("empty.png", Vec::new());
    let real = common::real_fixture("flex_f1_front_raw.jpg");

    for (p, _) in &files {
        let _ = load_rgb8(p);
        let _ = load_rgba8(p);
        let _ = load_dynamic(p);
    }
    for (p, bytes) in &files {
        assert_eq!(&std::fs::read(p).unwrap(), bytes, "{} changed", p.display());
    }
    // Nothing else appeared in the folder (no temp or sidecar files).
    assert_eq!(std::fs::read_dir(d).unwrap().count(), files.len());

    if let Some(real) = real {
        let before = std::fs::read(&real).unwrap();
        let modified = std::fs::metadata(&real).unwrap().modified().unwrap();
        load_rgb8(&real).unwrap();
        assert_eq!(std::fs::read(&real).unwrap(), before);
        assert_eq!(
            std::fs::metadata(&real).unwrap().modified().unwrap(),
            modified
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Saving
// ---------------------------------------------------------------------------------------------

#[test]
fn save_png_round_trips_and_is_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    let rgb = quadrants();
    let p = d.join("deep").join("er").join("rgb.png");
    save_png(&rgb, &p).unwrap();
    assert_eq!(load_rgb8(&p).unwrap().as_raw(), rgb.as_raw());

    let rgba = ImageBuffer::from_fn(7, 5, |x, y| Rgba([x as u8, y as u8, 200, (x * 30) as u8]));
    let p = d.join("rgba.png");
    save_png(&rgba, &p).unwrap();
    assert_eq!(load_rgba8(&p).unwrap().as_raw(), rgba.as_raw());

    let mask = ImageBuffer::from_fn(9, 4, |x, _| Luma([if x % 2 == 0 { 255u8 } else { 0 }]));
    let p = d.join("mask.png");
    save_png(&mask, &p).unwrap();
    match load_dynamic(&p).unwrap() {
        image::DynamicImage::ImageLuma8(b) => assert_eq!(b.as_raw(), mask.as_raw()),
        other => panic!("expected Luma8, got {:?}", other.color()),
    }

    // 16 bits survive exactly, through both entry points.
    let g16 = ImageBuffer::<Luma<u16>, _>::from_raw(8, 1, V16.to_vec()).unwrap();
    for (name, res) in [
        ("g16a.png", save_png(&g16, &d.join("g16a.png"))),
        ("g16b.png", save_png_gray16(&g16, &d.join("g16b.png"))),
    ] {
        res.unwrap();
        match load_dynamic(&d.join(name)).unwrap() {
            image::DynamicImage::ImageLuma16(b) => assert_eq!(b.as_raw(), g16.as_raw()),
            other => panic!("expected Luma16, got {:?}", other.color()),
        }
    }
    let rgb16 = ImageBuffer::<Rgb<u16>, _>::from_raw(2, 1, vec![0u16, 1, 65535, 300, 40000, 12345])
        .unwrap();
    let p = d.join("rgb16.png");
    save_png(&rgb16, &p).unwrap();
    match load_dynamic(&p).unwrap() {
        image::DynamicImage::ImageRgb16(b) => assert_eq!(b.as_raw(), rgb16.as_raw()),
        other => panic!("expected Rgb16, got {:?}", other.color()),
    }

    // Overwrite replaces the content; no temporary files are left behind.
    save_png(&mask, &d.join("rgba.png")).unwrap();
    assert_eq!(load_rgb8(&d.join("rgba.png")).unwrap().dimensions(), (9, 4));
    let leftovers: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn save_png_to_unwritable_place_is_write_error() {
    let dir = tempfile::tempdir().unwrap();
    // The "parent folder" is a file, so it cannot be created.
    let blocker = dir.path().join("blocker");
    write_file(&blocker, b"x");
    let p = blocker.join("out.png");
    let err = save_png(&quadrants(), &p).unwrap_err();
    assert!(matches!(err, IoError::Write { .. }), "{err:?}");
    assert!(err.to_string().contains("blocker"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Real photos
// ---------------------------------------------------------------------------------------------

#[test]
fn real_jpeg_photo() {
    let Some(p) = common::real_fixture("flex_f1_front_raw.jpg") else {
        return;
    };
    let img = load_rgb8(&p).unwrap();
    assert_eq!(img.dimensions(), (1920, 1080));
    // Not a blank decode: the photo has real contrast.
    let (min, max) = img
        .as_raw()
        .iter()
        .fold((255u8, 0u8), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    assert!(max - min > 100, "suspiciously flat photo: {min}..{max}");
    let rgba = load_rgba8(&p).unwrap();
    assert_eq!(rgba.dimensions(), (1920, 1080));
    assert!(rgba.pixels().all(|px| px.0[3] == 255));
    assert_eq!(
        rgba.pixels()
            .map(|px| [px.0[0], px.0[1], px.0[2]])
            .collect::<Vec<_>>(),
        img.pixels().map(|px| px.0).collect::<Vec<_>>()
    );

    let mut times = Vec::new();
    for _ in 0..5 {
        let t = std::time::Instant::now();
        let img = load_rgb8(&p).unwrap();
        times.push(t.elapsed());
        assert_eq!(img.dimensions(), (1920, 1080));
    }
    times.sort();
    println!(
        "load_rgb8 {}: min {:?}, median {:?} (over 5 loads)",
        p.display(),
        times[0],
        times[2]
    );
}

#[test]
fn real_rembg_png_has_alpha() {
    let Some(p) = common::real_fixture("flex_f1_front_rembg.png") else {
        return;
    };
    let img = load_rgba8(&p).unwrap();
    assert_eq!(img.dimensions(), (1920, 1080));
    let has = |a: u8| img.pixels().any(|px| px.0[3] == a);
    assert!(has(0), "no fully transparent pixel");
    assert!(has(255), "no fully opaque pixel");
    let rgb = load_rgb8(&p).unwrap();
    assert_eq!(rgb.dimensions(), (1920, 1080));
}
