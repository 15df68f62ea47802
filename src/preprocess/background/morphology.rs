//! Small image-processing helpers of background removal: binary masks ([`Bitmap`]) with
//! erosion/dilation by a disk, connected components and hole filling; gray opening for rembg's
//! post-processing; box sums for the classical method. (The Gaussian blurs both use are in
//! [`crate::preprocess::blur`].)
//!
//! Pixels outside the image never take part: an erosion does not eat into a part from the image
//! edge and a dilation does not grow from it (OpenCV's default border for morphology).

/// A binary mask: `data[y * width + x]` is 0 or 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitmap {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Row-major 0/1 values.
    pub data: Vec<u8>,
}

impl Bitmap {
    /// An all-zero mask.
    pub fn new(width: usize, height: usize) -> Bitmap {
        Bitmap {
            width,
            height,
            data: vec![0; width * height],
        }
    }

    /// A mask from a predicate on each pixel index.
    pub fn from_fn(width: usize, height: usize, f: impl Fn(usize) -> bool) -> Bitmap {
        Bitmap {
            width,
            height,
            data: (0..width * height).map(|i| u8::from(f(i))).collect(),
        }
    }

    /// Number of set pixels.
    pub fn count(&self) -> usize {
        self.data.iter().filter(|&&v| v != 0).count()
    }

    /// Pixel-wise `self AND NOT other` (same size).
    pub fn and_not(&self, other: &Bitmap) -> Bitmap {
        Bitmap {
            width: self.width,
            height: self.height,
            data: self
                .data
                .iter()
                .zip(&other.data)
                .map(|(&a, &b)| a & (1 - b.min(1)))
                .collect(),
        }
    }

    /// The bounding box of the set pixels as `(x0, y0, x1, y1)`, exclusive ends; `None` when
    /// empty.
    pub fn bbox(&self) -> Option<(usize, usize, usize, usize)> {
        let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
        for y in 0..self.height {
            let row = &self.data[y * self.width..(y + 1) * self.width];
            if let Some(first) = row.iter().position(|&v| v != 0) {
                let last = row.iter().rposition(|&v| v != 0).unwrap_or(first);
                x0 = x0.min(first);
                x1 = x1.max(last + 1);
                y0 = y0.min(y);
                y1 = y + 1;
            }
        }
        (x0 != usize::MAX).then_some((x0, y0, x1, y1))
    }
}

/// Half-widths of the rows of OpenCV's elliptic structuring element of size `2r+1`:
/// row `dy` spans `dx` in `-a..=a` with `a = round(sqrt(r² - dy²))` (a cross for r = 1).
fn disk_rows(r: usize) -> Vec<(isize, usize)> {
    let r = r as isize;
    (-r..=r)
        .map(|dy| {
            let a = (((r * r - dy * dy) as f64).sqrt()).round() as usize;
            (dy, a)
        })
        .collect()
}

/// Sliding minimum (erode) or maximum (dilate) over `x-a..=x+a` within each row, pixels
/// outside the row ignored. The row is padded with the neutral value and the window walked
/// offset by offset, so the inner loop is a plain element-wise min/max the compiler vectorises.
fn row_extreme(src: &[u8], w: usize, h: usize, a: usize, max: bool) -> Vec<u8> {
    if a == 0 {
        return src.to_vec();
    }
    let neutral = if max { 0u8 } else { 255u8 };
    let mut out = vec![0u8; src.len()];
    let mut padded = vec![neutral; w + 2 * a];
    for y in 0..h {
        padded[a..a + w].copy_from_slice(&src[y * w..(y + 1) * w]);
        let dst = &mut out[y * w..(y + 1) * w];
        dst.copy_from_slice(&padded[0..w]);
        for j in 1..=2 * a {
            let s = &padded[j..j + w];
            if max {
                dst.iter_mut().zip(s).for_each(|(d, &v)| *d = (*d).max(v));
            } else {
                dst.iter_mut().zip(s).for_each(|(d, &v)| *d = (*d).min(v));
            }
        }
    }
    out
}

/// Gray (or binary) erosion/dilation by the structuring element whose row `dy` spans
/// `-a..=a` for each `(dy, a)` of `rows`.
fn morph_rows(src: &[u8], w: usize, h: usize, rows: &[(isize, usize)], max: bool) -> Vec<u8> {
    if w == 0 || h == 0 {
        return src.to_vec();
    }
    let mut widths: Vec<usize> = rows.iter().map(|&(_, a)| a).collect();
    widths.sort_unstable();
    widths.dedup();
    let passes: Vec<(usize, Vec<u8>)> = widths
        .iter()
        .map(|&a| (a, row_extreme(src, w, h, a, max)))
        .collect();
    let mut out = vec![if max { 0u8 } else { 255u8 }; src.len()];
    for &(dy, a) in rows {
        let Some((_, pass)) = passes.iter().find(|(pa, _)| *pa == a) else {
            continue;
        };
        for y in 0..h {
            let sy = y as isize + dy;
            if sy < 0 || sy >= h as isize {
                continue;
            }
            let srow = &pass[sy as usize * w..(sy as usize + 1) * w];
            let drow = &mut out[y * w..(y + 1) * w];
            if max {
                drow.iter_mut()
                    .zip(srow)
                    .for_each(|(d, &s)| *d = (*d).max(s));
            } else {
                drow.iter_mut()
                    .zip(srow)
                    .for_each(|(d, &s)| *d = (*d).min(s));
            }
        }
    }
    out
}

/// Gray (or binary) erosion/dilation by the elliptic element of radius `r`.
fn morph_u8(src: &[u8], w: usize, h: usize, r: usize, max: bool) -> Vec<u8> {
    if r == 0 {
        return src.to_vec();
    }
    morph_rows(src, w, h, &disk_rows(r), max)
}

/// Dilation of a binary mask by the `(2r+1)²` square (8-connected growth for r = 1).
pub fn dilate_square(m: &Bitmap, r: usize) -> Bitmap {
    let rows: Vec<(isize, usize)> = (-(r as isize)..=r as isize).map(|dy| (dy, r)).collect();
    Bitmap {
        width: m.width,
        height: m.height,
        data: morph_rows(&m.data, m.width, m.height, &rows, true),
    }
}

/// Erosion of a binary mask by a disk of radius `r` (OpenCV's elliptic element of size 2r+1).
pub fn erode(m: &Bitmap, r: usize) -> Bitmap {
    Bitmap {
        width: m.width,
        height: m.height,
        data: morph_u8(&m.data, m.width, m.height, r, false),
    }
}

/// Dilation of a binary mask by a disk of radius `r`.
pub fn dilate(m: &Bitmap, r: usize) -> Bitmap {
    Bitmap {
        width: m.width,
        height: m.height,
        data: morph_u8(&m.data, m.width, m.height, r, true),
    }
}

/// Opening (erosion then dilation): removes specks and spurs thinner than the disk.
pub fn open(m: &Bitmap, r: usize) -> Bitmap {
    dilate(&erode(m, r), r)
}

/// Closing (dilation then erosion): bridges gaps narrower than the disk.
pub fn close(m: &Bitmap, r: usize) -> Bitmap {
    erode(&dilate(m, r), r)
}

/// Gray opening with OpenCV's 3x3 elliptic element (a cross), as rembg's post-processing does.
pub fn open_gray_cross(src: &[u8], w: usize, h: usize) -> Vec<u8> {
    let eroded = morph_u8(src, w, h, 1, false);
    morph_u8(&eroded, w, h, 1, true)
}

/// Labels of the 8-connected components of the set pixels (0 = unset, components numbered
/// from 1) and each component's area (`areas[label - 1]`).
pub fn components(m: &Bitmap) -> (Vec<u32>, Vec<usize>) {
    let (w, h) = (m.width, m.height);
    let mut labels = vec![0u32; w * h];
    let mut areas = Vec::new();
    let mut stack = Vec::new();
    for start in 0..w * h {
        if m.data[start] == 0 || labels[start] != 0 {
            continue;
        }
        let label = areas.len() as u32 + 1;
        let mut area = 0usize;
        labels[start] = label;
        stack.push(start);
        while let Some(i) = stack.pop() {
            area += 1;
            let (x, y) = ((i % w) as isize, (i / w) as isize);
            for dy in -1..=1isize {
                for dx in -1..=1isize {
                    let (nx, ny) = (x + dx, y + dy);
                    if nx < 0 || ny < 0 || nx >= w as isize || ny >= h as isize {
                        continue;
                    }
                    let j = ny as usize * w + nx as usize;
                    if m.data[j] != 0 && labels[j] == 0 {
                        labels[j] = label;
                        stack.push(j);
                    }
                }
            }
        }
        areas.push(area);
    }
    (labels, areas)
}

/// Keeps the components whose area is at least `min_share` of the largest one (and at least
/// `min_area` pixels); clears the rest.
pub fn keep_large_components(m: &Bitmap, min_share: f64, min_area: usize) -> Bitmap {
    let (labels, areas) = components(m);
    let largest = areas.iter().copied().max().unwrap_or(0);
    let keep: Vec<bool> = areas
        .iter()
        .map(|&a| a >= min_area && a as f64 >= min_share * largest as f64)
        .collect();
    Bitmap {
        width: m.width,
        height: m.height,
        data: labels
            .iter()
            .map(|&l| u8::from(l != 0 && keep[l as usize - 1]))
            .collect(),
    }
}

/// Fills the holes of a mask: every unset pixel that cannot reach the image border through
/// unset pixels (4-connected) becomes set.
pub fn fill_holes(m: &Bitmap) -> Bitmap {
    let (w, h) = (m.width, m.height);
    let mut outside = vec![false; w * h];
    let mut stack = Vec::new();
    let seed = |i: usize, outside: &mut Vec<bool>, stack: &mut Vec<usize>| {
        if m.data[i] == 0 && !outside[i] {
            outside[i] = true;
            stack.push(i);
        }
    };
    for x in 0..w {
        seed(x, &mut outside, &mut stack);
        if h > 0 {
            seed((h - 1) * w + x, &mut outside, &mut stack);
        }
    }
    for y in 0..h {
        seed(y * w, &mut outside, &mut stack);
        if w > 0 {
            seed(y * w + w - 1, &mut outside, &mut stack);
        }
    }
    while let Some(i) = stack.pop() {
        let (x, y) = (i % w, i / w);
        let mut visit = |j: usize| {
            if m.data[j] == 0 && !outside[j] {
                outside[j] = true;
                stack.push(j);
            }
        };
        if x > 0 {
            visit(i - 1);
        }
        if x + 1 < w {
            visit(i + 1);
        }
        if y > 0 {
            visit(i - w);
        }
        if y + 1 < h {
            visit(i + w);
        }
    }
    Bitmap {
        width: w,
        height: h,
        data: outside.iter().map(|&o| u8::from(!o)).collect(),
    }
}

/// Box sums of a float image over the `(2r+1)²` window around each pixel, the window cut at
/// the image border (pixels outside count as absent, not as zeros with weight).
pub fn box_sum(src: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    // Running sums in f64 so long rows do not drift.
    let mut tmp = vec![0f32; w * h];
    for y in 0..h {
        let row = &src[y * w..(y + 1) * w];
        let mut acc = 0f64;
        // Prime the window [0, r].
        for &v in row.iter().take(r.min(w.saturating_sub(1)) + 1) {
            acc += f64::from(v);
        }
        for x in 0..w {
            tmp[y * w + x] = acc as f32;
            let add = x + r + 1;
            if add < w {
                acc += f64::from(row[add]);
            }
            if x >= r {
                acc -= f64::from(row[x - r]);
            }
        }
    }
    // Vertical pass row by row (cache-friendly): one running sum per column.
    let mut out = vec![0f32; w * h];
    let mut acc = vec![0f64; w];
    for y in 0..=r.min(h.saturating_sub(1)) {
        for (a, &v) in acc.iter_mut().zip(&tmp[y * w..(y + 1) * w]) {
            *a += f64::from(v);
        }
    }
    for y in 0..h {
        for (o, &a) in out[y * w..(y + 1) * w].iter_mut().zip(&acc) {
            *o = a as f32;
        }
        let add = y + r + 1;
        if add < h {
            for (a, &v) in acc.iter_mut().zip(&tmp[add * w..(add + 1) * w]) {
                *a += f64::from(v);
            }
        }
        if y >= r {
            for (a, &v) in acc.iter_mut().zip(&tmp[(y - r) * w..(y - r + 1) * w]) {
                *a -= f64::from(v);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bm(rows: &[&str]) -> Bitmap {
        let h = rows.len();
        let w = rows[0].len();
        Bitmap {
            width: w,
            height: h,
            data: rows
                .iter()
                .flat_map(|r| r.bytes().map(|b| u8::from(b == b'#')))
                .collect(),
        }
    }

    fn show(m: &Bitmap) -> Vec<String> {
        m.data
            .chunks(m.width)
            .map(|r| r.iter().map(|&v| if v != 0 { '#' } else { '.' }).collect())
            .collect()
    }

    #[test]
    fn disk_rows_match_opencv_ellipse() {
        assert_eq!(disk_rows(1), vec![(-1, 0), (0, 1), (1, 0)]);
        let r2: Vec<usize> = disk_rows(2).iter().map(|r| r.1).collect();
        assert_eq!(r2, vec![0, 2, 2, 2, 0]);
        let r3: Vec<usize> = disk_rows(3).iter().map(|r| r.1).collect();
        assert_eq!(r3, vec![0, 2, 3, 3, 3, 2, 0]);
    }

    #[test]
    fn erode_dilate_cross() {
        let m = bm(&[".....", ".###.", ".###.", ".###.", "....."]);
        assert_eq!(
            show(&erode(&m, 1)),
            vec![".....", ".....", "..#..", ".....", "....."]
        );
        let d = dilate(&bm(&[".....", ".....", "..#..", ".....", "....."]), 1);
        assert_eq!(show(&d), vec![".....", "..#..", ".###.", "..#..", "....."]);
    }

    #[test]
    fn border_is_neutral() {
        let m = bm(&["###", "###", "###"]);
        assert_eq!(erode(&m, 1), m, "erosion does not eat from the image edge");
        let e = bm(&["...", "...", "..."]);
        assert_eq!(dilate(&e, 2), e);
    }

    #[test]
    fn components_and_holes() {
        let m = bm(&["##...", "##..#", ".....", "###..", "#.#.."]);
        let (labels, areas) = components(&m);
        assert_eq!(areas, vec![4, 1, 5]);
        assert_eq!(labels[4 * 5 + 2], 3);
        let kept = keep_large_components(&m, 0.5, 1);
        assert_eq!(kept.count(), 9);
        let ring = bm(&[".....", ".###.", ".#.#.", ".###.", "....."]);
        let filled = fill_holes(&ring);
        assert_eq!(filled.count(), 9);
        // A gap to the border is not a hole.
        let open_ring = bm(&[".....", ".###.", ".#...", ".###.", "....."]);
        assert_eq!(fill_holes(&open_ring), open_ring);
    }

    #[test]
    fn box_sum_counts_window_inside_image() {
        let ones = vec![1f32; 5 * 4];
        let s = box_sum(&ones, 5, 4, 1);
        assert_eq!(s[0], 4.0);
        assert_eq!(s[5 + 1], 9.0);
        assert_eq!(s[3 * 5 + 4], 4.0);
        let big = box_sum(&ones, 5, 4, 10);
        assert!(big.iter().all(|&v| v == 20.0));
    }

    #[test]
    fn bbox_of_mask() {
        let m = bm(&[".....", "..#..", ".##..", "....."]);
        assert_eq!(m.bbox(), Some((1, 1, 3, 3)));
        assert_eq!(Bitmap::new(3, 3).bbox(), None);
    }
}
