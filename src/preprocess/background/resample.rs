//! PIL's Lanczos resize, ported exactly, for 8-bit images.
//!
//! rembg resizes with `PIL.Image.resize(size, Image.LANCZOS)` twice (the photo to the model's
//! input size, the mask back to the photo's size); to give a user's model the very input rembg
//! gives it, pixal resizes the same way. PIL (`libImaging/Resample.c`):
//!
//! * the filter is `sinc(x) · sinc(x/3)` on `[-3, 3)`, stretched by the scale factor when
//!   shrinking (support `3 · max(scale, 1)`);
//! * for output pixel `i` the centre is `(i + 0.5) · scale`, the window runs from
//!   `trunc(centre - support + 0.5)` to `trunc(centre + support + 0.5)` clipped to the image,
//!   and tap `j` weighs `filter((j - centre + 0.5) / max(scale, 1))`; weights are normalised to
//!   sum to 1, then turned into 22-bit fixed point (rounded half away from zero);
//! * two passes, the first **rounded to 8 bits** (clamped) before the second; each sum starts
//!   at `1 << 21` (rounding) and is shifted right by 22. The horizontal pass runs first, on just
//!   the rows the vertical one reads, unless the height shrinks by more than twice as many
//!   pixels as the width (`h - nh > 2 (w - nw)`, Pillow 13's rule); then the vertical pass
//!   runs first. Older Pillow releases always ran the horizontal pass first: for such shapes
//!   (portrait photos going to 320x320, say) their output differs from this one by a level or
//!   two in some pixels. Landscape photos and the mask's way back are unaffected.
//!
//! The image crate's `Lanczos3` (`imageops::resize`) differs: it weighs taps in `f32`, runs the
//! vertical pass first and keeps it in `f32` (no intermediate rounding), and places its window
//! differently; on the test images its output differs from PIL's by up to a few levels (the test
//! `image_crate_lanczos_differs_from_pil` in tests/remove_bg.rs prints the numbers), which is
//! why pixal carries this port. This port equals PIL's output exactly on the fixtures.

/// Resizes an 8-bit image of `channels` interleaved channels from `w`x`h` to `nw`x`nh` with
/// PIL's Lanczos filter. Returns the new pixels (row-major, interleaved). A zero-sized input or
/// output gives an empty result.
pub fn resize_lanczos(
    src: &[u8],
    w: usize,
    h: usize,
    channels: usize,
    nw: usize,
    nh: usize,
) -> Vec<u8> {
    if w == 0 || h == 0 || nw == 0 || nh == 0 || channels == 0 || src.len() < w * h * channels {
        return Vec::new();
    }
    if (w, h) == (nw, nh) {
        // PIL returns a copy when the size does not change.
        return src[..w * h * channels].to_vec();
    }
    let horiz = Coeffs::new(w, nw);
    let vert = Coeffs::new(h, nh);
    // Pillow (13): when the height shrinks more than twice as much as the width, the vertical
    // pass runs first (less work for the horizontal one); otherwise the horizontal one does,
    // on just the rows the vertical pass will read.
    let (hd, wd) = (h as i64 - nh as i64, w as i64 - nw as i64);
    if hd > 0 && hd > wd * 2 {
        let stage = vertical_pass(src, w, channels, &vert, 0);
        return if w != nw {
            horizontal_pass(&stage, w, nh, channels, &horiz)
        } else {
            stage
        };
    }
    let y_first = vert.bounds[0].0;
    let y_last = vert
        .bounds
        .last()
        .map_or(h, |&(start, len)| start + len)
        .max(y_first);
    let rows = &src[y_first * w * channels..y_last * w * channels];
    let (stage, stage_w) = if w != nw {
        (
            horizontal_pass(rows, w, y_last - y_first, channels, &horiz),
            nw,
        )
    } else {
        (rows.to_vec(), w)
    };
    if h == nh {
        return stage;
    }
    vertical_pass(&stage, stage_w, channels, &vert, y_first)
}

/// Resamples every row of `src` (`w` wide, `rows` high) to the width of `c`. Sums are `i32`
/// as in PIL (they cannot overflow: the weights' absolute values add up to well under 2 × 2²²).
fn horizontal_pass(src: &[u8], w: usize, rows: usize, channels: usize, c: &Coeffs) -> Vec<u8> {
    let nw = c.bounds.len();
    let mut out = vec![0u8; nw * rows * channels];
    let half: i32 = 1 << (PRECISION_BITS - 1);
    for ty in 0..rows {
        let srow = &src[ty * w * channels..(ty + 1) * w * channels];
        let drow = &mut out[ty * nw * channels..(ty + 1) * nw * channels];
        for (xx, &(xmin, xlen)) in c.bounds.iter().enumerate() {
            let k = &c.k[xx * c.ksize..xx * c.ksize + xlen];
            let taps = &srow[xmin * channels..(xmin + xlen) * channels];
            if channels == 3 {
                let (mut s0, mut s1, mut s2) = (half, half, half);
                for (px, &kv) in taps.chunks_exact(3).zip(k) {
                    s0 += i32::from(px[0]) * kv;
                    s1 += i32::from(px[1]) * kv;
                    s2 += i32::from(px[2]) * kv;
                }
                drow[xx * 3] = clip8(s0);
                drow[xx * 3 + 1] = clip8(s1);
                drow[xx * 3 + 2] = clip8(s2);
            } else {
                for ch in 0..channels {
                    let mut ss = half;
                    for (x, &kv) in k.iter().enumerate() {
                        ss += i32::from(taps[x * channels + ch]) * kv;
                    }
                    drow[xx * channels + ch] = clip8(ss);
                }
            }
        }
    }
    out
}

/// Resamples every column of `src` (`w` wide, holding source rows from `y_first` on) to the
/// height of `c`. Whole rows are accumulated tap by tap, which the compiler vectorises.
fn vertical_pass(src: &[u8], w: usize, channels: usize, c: &Coeffs, y_first: usize) -> Vec<u8> {
    let nh = c.bounds.len();
    let stride = w * channels;
    let mut out = vec![0u8; stride * nh];
    let mut acc = vec![0i32; stride];
    for (yy, &(ymin, ylen)) in c.bounds.iter().enumerate() {
        let k = &c.k[yy * c.ksize..yy * c.ksize + ylen];
        let base = ymin - y_first;
        acc.fill(1 << (PRECISION_BITS - 1));
        for (y, &kv) in k.iter().enumerate() {
            let srow = &src[(base + y) * stride..(base + y + 1) * stride];
            acc.iter_mut()
                .zip(srow)
                .for_each(|(a, &v)| *a += i32::from(v) * kv);
        }
        for (d, &a) in out[yy * stride..(yy + 1) * stride].iter_mut().zip(&acc) {
            *d = clip8(a);
        }
    }
    out
}

/// Resizes an 8-bit image of any channel count (RGB photo, gray mask) with [`resize_lanczos`].
pub fn resize<P>(
    img: &image::ImageBuffer<P, Vec<u8>>,
    nw: u32,
    nh: u32,
) -> image::ImageBuffer<P, Vec<u8>>
where
    P: image::Pixel<Subpixel = u8>,
{
    let data = resize_lanczos(
        img.as_raw(),
        img.width() as usize,
        img.height() as usize,
        usize::from(P::CHANNEL_COUNT),
        nw as usize,
        nh as usize,
    );
    image::ImageBuffer::from_raw(nw, nh, data).unwrap_or_else(|| image::ImageBuffer::new(nw, nh))
}

/// PIL's fixed-point precision for 8-bit resampling: `32 - 8 - 2`.
const PRECISION_BITS: u32 = 22;

fn clip8(ss: i32) -> u8 {
    if ss >= (1i32 << PRECISION_BITS << 8) {
        255
    } else if ss <= 0 {
        0
    } else {
        (ss >> PRECISION_BITS) as u8
    }
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        let x = x * std::f64::consts::PI;
        x.sin() / x
    }
}

fn lanczos(x: f64) -> f64 {
    if (-3.0..3.0).contains(&x) {
        sinc(x) * sinc(x / 3.0)
    } else {
        0.0
    }
}

/// One axis' taps: per output pixel the first source index and the tap count, and `ksize`
/// fixed-point weights (the unused tail zero).
struct Coeffs {
    ksize: usize,
    bounds: Vec<(usize, usize)>,
    k: Vec<i32>,
}

impl Coeffs {
    /// PIL's `precompute_coeffs` + `normalize_coeffs_8bpc` for the whole input range.
    fn new(in_size: usize, out_size: usize) -> Coeffs {
        let scale = in_size as f64 / out_size as f64;
        let filterscale = scale.max(1.0);
        let support = 3.0 * filterscale;
        let ksize = support.ceil() as usize * 2 + 1;
        let mut bounds = Vec::with_capacity(out_size);
        let mut k = vec![0i32; out_size * ksize];
        let mut w = vec![0f64; ksize];
        for xx in 0..out_size {
            let center = (xx as f64 + 0.5) * scale;
            let ss = 1.0 / filterscale;
            // C's (int) cast truncates toward zero, as `as` does.
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let len = xmax.saturating_sub(xmin).min(ksize);
            let mut ww = 0.0;
            for (x, wv) in w.iter_mut().enumerate().take(len) {
                let v = lanczos((x as f64 + xmin as f64 - center + 0.5) * ss);
                *wv = v;
                ww += v;
            }
            for x in 0..len {
                let v = if ww != 0.0 { w[x] / ww } else { w[x] };
                let f = v * f64::from(1u32 << PRECISION_BITS);
                k[xx * ksize + x] = if v < 0.0 {
                    (-0.5 + f) as i32
                } else {
                    (0.5 + f) as i32
                };
            }
            bounds.push((xmin, len));
        }
        Coeffs { ksize, bounds, k }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_images_stay_constant() {
        for (w, h, nw, nh) in [(7, 5, 20, 11), (40, 30, 9, 4), (1, 1, 3, 3), (5, 5, 5, 2)] {
            let src = vec![173u8; w * h * 3];
            let out = resize_lanczos(&src, w, h, 3, nw, nh);
            assert_eq!(out.len(), nw * nh * 3);
            assert!(out.iter().all(|&v| v == 173), "{w}x{h}->{nw}x{nh}");
        }
    }

    #[test]
    fn same_size_is_a_copy_and_empty_is_empty() {
        let src: Vec<u8> = (0..12).collect();
        assert_eq!(resize_lanczos(&src, 2, 2, 3, 2, 2), src);
        assert!(resize_lanczos(&src, 0, 2, 3, 2, 2).is_empty());
        assert!(resize_lanczos(&src, 2, 2, 3, 0, 2).is_empty());
    }

    #[test]
    fn weights_sum_to_one_in_fixed_point() {
        for (i, o) in [(1920, 320), (97, 320), (320, 1080), (3, 1)] {
            let c = Coeffs::new(i, o);
            for (xx, &(_, len)) in c.bounds.iter().enumerate() {
                let s: i64 = c.k[xx * c.ksize..xx * c.ksize + len]
                    .iter()
                    .map(|&v| i64::from(v))
                    .sum();
                assert!(
                    (s - (1 << 22)).abs() <= len as i64,
                    "{i}->{o} pixel {xx}: {s}"
                );
            }
        }
    }
}
