//! A separable Gaussian blur of float maps, shared by the alignment gate (smoothing away noise
//! and focus differences before comparing an aligned photo with the reference) and detection
//! (smoothing score maps).

use rayon::prelude::*;

/// A separable Gaussian blur of a (h, w) map with edge clamping; sigma 0 copies.
pub fn gaussian_blur(map: &[f32], (h, w): (usize, usize), sigma: f32) -> Vec<f32> {
    if sigma <= 0.0 || h * w == 0 || map.len() != h * w {
        return map.to_vec();
    }
    let r = (3.0 * sigma).ceil() as i64;
    let k: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let ks: f32 = k.iter().sum();
    let k: Vec<f32> = k.iter().map(|v| v / ks).collect();
    let mut tmp = vec![0f32; h * w];
    tmp.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
        let src = &map[y * w..(y + 1) * w];
        for (x, o) in row.iter_mut().enumerate() {
            let mut acc = 0.0;
            for (j, kv) in k.iter().enumerate() {
                let xx = (x as i64 + j as i64 - r).clamp(0, w as i64 - 1) as usize;
                acc += kv * src[xx];
            }
            *o = acc;
        }
    });
    let mut out = vec![0f32; h * w];
    out.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
        for (j, kv) in k.iter().enumerate() {
            let yy = (y as i64 + j as i64 - r).clamp(0, h as i64 - 1) as usize;
            let src = &tmp[yy * w..(yy + 1) * w];
            for (o, &v) in row.iter_mut().zip(src) {
                *o += kv * v;
            }
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blur_preserves_constants_and_mass_in_the_middle() {
        let m = vec![3.0f32; 25];
        assert!(
            gaussian_blur(&m, (5, 5), 1.0)
                .iter()
                .all(|v| (v - 3.0).abs() < 1e-5)
        );
        let mut d = vec![0f32; 81];
        d[40] = 1.0;
        let b = gaussian_blur(&d, (9, 9), 0.8);
        assert!((b.iter().sum::<f32>() - 1.0).abs() < 1e-4);
        assert!(b[40] < 1.0 && b[40] > b[41] && (b[41] - b[39]).abs() < 1e-7);
    }
}
