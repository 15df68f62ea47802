use super::*;
use image::Rgb;

/// A back-lit-stage-like photo: dark surround, a pink disc, a green part with a dark-pink
/// margin on it, and noise.
fn stage(w: u32, h: u32) -> RgbImage {
    let mut img = RgbImage::new(w, h);
    let (cx, cy, r) = (w as f32 / 2.0, h as f32 / 2.0, h as f32 * 0.6);
    let mut seed = 12345u32;
    for (x, y, p) in img.enumerate_pixels_mut() {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let n = ((seed >> 16) % 9) as i32 - 4;
        let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt();
        let mut c = if d < r { [250, 120, 105] } else { [3, 3, 3] };
        let inx = x > w / 4 && x < 3 * w / 4;
        let iny = y > h / 3 && y < 2 * h / 3;
        if inx && iny {
            c = [150, 180, 30];
        } else if (x + 3 > w / 4 && x < 3 * w / 4 + 3) && (y + 3 > h / 3 && y < 2 * h / 3 + 3) {
            c = [150, 55, 30];
        }
        *p = Rgb(c.map(|v: i32| (v + n).clamp(0, 255) as u8));
    }
    img
}

#[test]
fn finds_the_part_with_its_margin() {
    let img = stage(240, 160);
    let (mask, rep) = segment(&img).unwrap();
    assert_eq!(mask.dimensions(), (240, 160));
    assert!(rep.prototypes.len() >= 2, "{rep:?}");
    // Inside the part: opaque. Far outside: transparent.
    assert_eq!(mask.get_pixel(120, 80)[0], 255);
    assert_eq!(mask.get_pixel(5, 5)[0], 0);
    assert_eq!(mask.get_pixel(120, 20)[0], 0);
    // The dark-pink margin (3 px wide) is part of the part: the 50 % line lies about 2 px
    // inside the margin's outer edge, so the pixel just inside the green is well above 127.
    assert!(mask.get_pixel(120, 160 / 3 + 1)[0] > 127);
    let area = mask.pixels().filter(|p| p[0] > 127).count() as f64;
    let expected = (120.0 + 6.0 - 4.0) * (160.0 / 3.0 + 6.0 - 4.0);
    assert!((area / expected - 1.0).abs() < 0.1, "{area} vs {expected}");
}

#[test]
fn plain_image_has_no_foreground() {
    let img = RgbImage::from_pixel(64, 48, Rgb([200, 120, 110]));
    assert!(matches!(segment(&img), Err(BackgroundError::NoForeground)));
    let tiny = RgbImage::new(5, 40);
    assert!(matches!(
        segment(&tiny),
        Err(BackgroundError::TooSmall { .. })
    ));
}

#[test]
fn lab_of_white_and_black() {
    let w = lab_from_linear(1.0, 1.0, 1.0);
    assert!((w[0] - 100.0).abs() < 0.01 && w[1].abs() < 0.05 && w[2].abs() < 0.05);
    let b = lab_from_linear(0.0, 0.0, 0.0);
    assert!(b[0].abs() < 1e-4);
}

#[test]
fn mixtures_of_background_colours_are_background() {
    let protos = [[0.0, 0.0, 0.0], [60.0, 50.0, 30.0]];
    let mid = [30.0, 25.0, 15.0];
    assert!(distance_to_background(&mid, &protos, &[true, true]) < 1e-4);
    assert!(distance_to_background(&mid, &protos, &[false, true]) > 40.0);
}

#[test]
fn otsu_splits_two_modes() {
    let mut v = vec![2.0f32; 900];
    v.extend(vec![50.0f32; 100]);
    let t = otsu(&v);
    assert!(t > 2.0 && t < 50.0, "{t}");
}
