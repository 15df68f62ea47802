//! Pixel-format conversions of decoded images to the 8-bit layouts pixal works in: 16-bit and
//! float samples, gray and gray+alpha, and CMYK JPEG samples as PIL converts them (see the
//! parent module's documentation for the rules).

use image::DynamicImage;

/// PIL's CMYK JPEG to RGB: the stored samples are inverted (`CMYK;I`, 0 = full ink), then
/// PIL's `cmyk2rgb`, `R = nk - MULDIV255(C, nk)` with `nk = 255 - K`, for each channel.
pub(super) fn cmyk_inverted_to_rgb(stored: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(stored.len() / 4 * 3);
    for px in stored.chunks_exact(4) {
        // Stored inverted: ink = 255 - stored, so nk = 255 - ink(K) = stored K.
        let nk = px[3];
        for &c in &px[..3] {
            out.push(nk - div255(255 - c, nk));
        }
    }
    out
}

/// PIL's `MULDIV255`: `a * b / 255` rounded, `((t >> 8) + t) >> 8` with `t = a * b + 128`.
pub(super) fn div255(a: u8, b: u8) -> u8 {
    let t = u32::from(a) * u32::from(b) + 128;
    // At most 255 for 8-bit inputs.
    (((t >> 8) + t) >> 8) as u8
}

/// 16-bit sample to 8 bits, rounded to nearest: `(v * 255 + 32767) / 65535`.
pub(super) fn u16_to_u8(v: u16) -> u8 {
    // The quotient is at most 255, so the narrowing cannot fail; `unwrap_or` keeps it
    // panic-free all the same.
    u8::try_from((u32::from(v) * 255 + 32_767) / 65_535).unwrap_or(u8::MAX)
}

/// Float sample (nominally 0..1) to 8 bits: clamped to `[0, 1]`, scaled, rounded; NaN → 0.
pub(super) fn f32_to_u8(v: f32) -> u8 {
    if v.is_nan() {
        return 0;
    }
    // In range 0..=255 after the clamp, so the cast is exact.
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// Builds an 8-bit image with `OUT` channels (3: RGB, 4: RGBA) from interleaved samples with
/// `channels` channels (1: gray, 2: gray+alpha, 3: RGB, 4: RGBA), converting each sample
/// with `cv`. Gray is replicated; alpha is dropped (`OUT` = 3) or kept, 255 when absent.
pub(super) fn convert<S: Copy, const OUT: usize>(
    width: u32,
    height: u32,
    samples: &[S],
    channels: usize,
    cv: impl Fn(S) -> u8,
) -> Result<Vec<u8>, String> {
    let pixels = samples.len() / channels.max(1);
    let mut out = Vec::with_capacity(pixels * OUT);
    for px in samples.chunks_exact(channels.max(1)) {
        let (rgb, alpha) = match *px {
            [l] => {
                let l = cv(l);
                ([l, l, l], 255)
            }
            [l, a] => {
                let l = cv(l);
                ([l, l, l], cv(a))
            }
            [r, g, b] => ([cv(r), cv(g), cv(b)], 255),
            [r, g, b, a] => ([cv(r), cv(g), cv(b)], cv(a)),
            _ => return Err(format!("{channels} channels per pixel is not supported")),
        };
        out.extend_from_slice(&rgb);
        if OUT == 4 {
            out.push(alpha);
        }
    }
    let expected = u64::from(width) * u64::from(height) * OUT as u64;
    if out.len() as u64 != expected {
        return Err(format!(
            "pixel buffer has {} samples, expected {expected} for {width}x{height}",
            out.len()
        ));
    }
    Ok(out)
}

/// Converts any decoded image to 8-bit RGB (see the module documentation for the rules).
pub(super) fn to_rgb8(img: DynamicImage) -> Result<image::RgbImage, String> {
    let (w, h) = (img.width(), img.height());
    let raw = match img {
        // Already in the target format (every colour JPEG): no copy.
        DynamicImage::ImageRgb8(buf) => return Ok(buf),
        DynamicImage::ImageLuma8(buf) => convert::<_, 3>(w, h, buf.as_raw(), 1, |v| v),
        DynamicImage::ImageLumaA8(buf) => convert::<_, 3>(w, h, buf.as_raw(), 2, |v| v),
        DynamicImage::ImageRgba8(buf) => convert::<_, 3>(w, h, buf.as_raw(), 4, |v| v),
        DynamicImage::ImageLuma16(buf) => convert::<_, 3>(w, h, buf.as_raw(), 1, u16_to_u8),
        DynamicImage::ImageLumaA16(buf) => convert::<_, 3>(w, h, buf.as_raw(), 2, u16_to_u8),
        DynamicImage::ImageRgb16(buf) => convert::<_, 3>(w, h, buf.as_raw(), 3, u16_to_u8),
        DynamicImage::ImageRgba16(buf) => convert::<_, 3>(w, h, buf.as_raw(), 4, u16_to_u8),
        DynamicImage::ImageRgb32F(buf) => convert::<_, 3>(w, h, buf.as_raw(), 3, f32_to_u8),
        DynamicImage::ImageRgba32F(buf) => convert::<_, 3>(w, h, buf.as_raw(), 4, f32_to_u8),
        other => return Err(format!("colour type {:?} is not supported", other.color())),
    }?;
    image::RgbImage::from_raw(w, h, raw)
        .ok_or_else(|| format!("pixel buffer does not fit {w}x{h} RGB"))
}

/// Converts any decoded image to 8-bit RGBA (see the module documentation for the rules).
pub(super) fn to_rgba8(img: DynamicImage) -> Result<image::RgbaImage, String> {
    let (w, h) = (img.width(), img.height());
    let raw = match img {
        DynamicImage::ImageRgba8(buf) => return Ok(buf),
        DynamicImage::ImageLuma8(buf) => convert::<_, 4>(w, h, buf.as_raw(), 1, |v| v),
        DynamicImage::ImageLumaA8(buf) => convert::<_, 4>(w, h, buf.as_raw(), 2, |v| v),
        DynamicImage::ImageRgb8(buf) => convert::<_, 4>(w, h, buf.as_raw(), 3, |v| v),
        DynamicImage::ImageLuma16(buf) => convert::<_, 4>(w, h, buf.as_raw(), 1, u16_to_u8),
        DynamicImage::ImageLumaA16(buf) => convert::<_, 4>(w, h, buf.as_raw(), 2, u16_to_u8),
        DynamicImage::ImageRgb16(buf) => convert::<_, 4>(w, h, buf.as_raw(), 3, u16_to_u8),
        DynamicImage::ImageRgba16(buf) => convert::<_, 4>(w, h, buf.as_raw(), 4, u16_to_u8),
        DynamicImage::ImageRgb32F(buf) => convert::<_, 4>(w, h, buf.as_raw(), 3, f32_to_u8),
        DynamicImage::ImageRgba32F(buf) => convert::<_, 4>(w, h, buf.as_raw(), 4, f32_to_u8),
        other => return Err(format!("colour type {:?} is not supported", other.color())),
    }?;
    image::RgbaImage::from_raw(w, h, raw)
        .ok_or_else(|| format!("pixel buffer does not fit {w}x{h} RGBA"))
}
