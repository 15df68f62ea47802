use super::pixels::*;
use super::*;

#[test]
fn u16_to_u8_rounds_to_nearest() {
    for v in 0..=u16::MAX {
        let exact = f64::from(v) * 255.0 / 65535.0;
        let got = f64::from(u16_to_u8(v));
        assert!((got - exact).abs() <= 0.5 + 1e-9, "v={v}: {got} vs {exact}");
    }
    assert_eq!(u16_to_u8(0), 0);
    assert_eq!(u16_to_u8(257), 1);
    assert_eq!(u16_to_u8(128), 0); // 0.498 rounds down
    assert_eq!(u16_to_u8(129), 1); // 0.502 rounds up
    assert_eq!(u16_to_u8(65535), 255);
    // Same as image's own conversion (v + 128) / 257 for every value.
    for v in 0..=u16::MAX {
        assert_eq!(u32::from(u16_to_u8(v)), (u32::from(v) + 128) / 257);
    }
}

#[test]
fn f32_to_u8_clamps_and_rounds() {
    assert_eq!(f32_to_u8(0.0), 0);
    assert_eq!(f32_to_u8(1.0), 255);
    assert_eq!(f32_to_u8(0.5), 128);
    assert_eq!(f32_to_u8(-3.0), 0);
    assert_eq!(f32_to_u8(7.5), 255);
    assert_eq!(f32_to_u8(f32::NAN), 0);
    assert_eq!(f32_to_u8(f32::INFINITY), 255);
    assert_eq!(f32_to_u8(f32::NEG_INFINITY), 0);
}

#[test]
fn image_extensions_any_case() {
    for name in [
        "a.jpg",
        "a.JPG",
        "a.jpeg",
        "a.JpEg",
        "a.png",
        "a.PNG",
        "a.webp",
        "a.tif",
        "a.TIFF",
        "dir.d/b.tiff",
    ] {
        assert!(is_image_path(Path::new(name)), "{name}");
    }
    for name in [
        "a",
        "a.gif",
        "a.bmp",
        "a.jpg.txt",
        "png",
        ".png",
        "a.",
        "a.jp",
        "a.npz",
        "dir.png/x",
    ] {
        assert!(!is_image_path(Path::new(name)), "{name}");
    }
}

#[test]
fn jpeg_truncation_walk() {
    // SOI, APP0 (length 4, 2 payload bytes), SOS header (length 3), entropy data with a
    // stuffed zero and a restart marker, EOI.
    let full: Vec<u8> = vec![
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0xAA, 0xBB, 0xFF, 0xDA, 0x00, 0x03, 0x01, 0x12, 0xFF,
        0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, 0xD9,
    ];
    assert!(!jpeg_looks_truncated(&full));
    for cut in 2..full.len() {
        assert!(jpeg_looks_truncated(&full[..cut]), "cut at {cut}");
    }
    // Trailing data after EOI is fine.
    let mut trailer = full.clone();
    trailer.extend_from_slice(b"trailer \xFF\xD8 junk");
    assert!(!jpeg_looks_truncated(&trailer));
    // An EOI inside a segment (e.g. an EXIF thumbnail) does not count.
    let hidden: Vec<u8> = vec![0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x06, 0xFF, 0xD9, 0xFF, 0xD9];
    assert!(jpeg_looks_truncated(&hidden));
}

#[test]
fn webp_truncation() {
    let mut riff = b"RIFF\x0c\0\0\0WEBPVP8L".to_vec();
    riff.extend_from_slice(&[0, 0, 0, 0]);
    assert_eq!(riff.len(), 20);
    assert_eq!(webp_truncated_size(&riff), None);
    assert_eq!(webp_truncated_size(&riff[..19]), Some(20));
    assert_eq!(webp_truncated_size(b"RIFF"), None);
}

#[test]
fn conversions_gray_alpha_16bit() {
    let la16 =
        image::ImageBuffer::<image::LumaA<u16>, _>::from_raw(2, 1, vec![0u16, 65535, 32896, 257])
            .unwrap();
    let rgb = to_rgb8(DynamicImage::ImageLumaA16(la16.clone())).unwrap();
    assert_eq!(rgb.as_raw(), &vec![0, 0, 0, 128, 128, 128]);
    let rgba = to_rgba8(DynamicImage::ImageLumaA16(la16)).unwrap();
    assert_eq!(rgba.as_raw(), &vec![0, 0, 0, 255, 128, 128, 128, 1]);

    let rgb8 = image::RgbImage::from_raw(1, 1, vec![1, 2, 3]).unwrap();
    let rgba = to_rgba8(DynamicImage::ImageRgb8(rgb8)).unwrap();
    assert_eq!(rgba.as_raw(), &vec![1, 2, 3, 255]);

    let f = image::Rgb32FImage::from_raw(1, 1, vec![-0.5, 0.5, 2.0]).unwrap();
    let rgb = to_rgb8(DynamicImage::ImageRgb32F(f)).unwrap();
    assert_eq!(rgb.as_raw(), &vec![0, 128, 255]);
}
