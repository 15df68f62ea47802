//! The spatial channels' 3x3 filters (OpenCV's Sobel, `Laplacian(ksize = 1)` and the box
//! deviation) on the 8-bit L plane, in exact integers, row by row with `BORDER_REFLECT_101`.

use crate::preprocess::blur::reflect101;

/// The 3x3 filter responses at one pixel, in integer 8-bit L units (all exact).
#[derive(Clone, Copy, Default)]
pub(super) struct Spatial {
    /// gx² + gy² of OpenCV's 3x3 Sobel.
    pub(super) grad2: i32,
    /// OpenCV's `Laplacian(ksize = 1)`: kernel [0 1 0; 1 −4 1; 0 1 0].
    pub(super) laplacian: i32,
    /// 9·ΣL² − (ΣL)² over the 3x3 box = (9·255)²·(box3(LAB_L²) − box3(LAB_L)²).
    pub(super) dev2: i32,
}

/// Reusable buffers for filtering one image row of the L plane.
#[derive(Default)]
pub(super) struct RowFilter {
    /// The rows above, at and below, widened to i32 and padded by one reflected column on each
    /// side, so the inner loop needs no border logic.
    padded: [Vec<i32>; 3],
    /// The responses of the row's pixels.
    pub(super) out: Vec<Spatial>,
}

impl RowFilter {
    /// Filters row `y` of the `w x h` plane into `self.out`.
    pub(super) fn run(&mut self, plane: &[u8], w: usize, h: usize, y: usize) {
        let yi = y as isize;
        for (buf, yy) in self.padded.iter_mut().zip([yi - 1, yi, yi + 1]) {
            let ry = reflect101(yy, h);
            let row = plane.get(ry * w..ry * w + w).unwrap_or(&[]);
            let at = |x: isize| row.get(reflect101(x, w)).map_or(0, |&v| i32::from(v));
            buf.clear();
            buf.push(at(-1));
            buf.extend(row.iter().map(|&v| i32::from(v)));
            buf.push(at(w as isize));
        }
        let [up, mid, down] = &self.padded;
        self.out.clear();
        let blocks = up.windows(3).zip(mid.windows(3)).zip(down.windows(3));
        self.out.extend(blocks.map(|((u, m), d)| {
            let gx = (u[2] - u[0]) + 2 * (m[2] - m[0]) + (d[2] - d[0]);
            let gy = (d[0] - u[0]) + 2 * (d[1] - u[1]) + (d[2] - u[2]);
            let s1 = u[0] + u[1] + u[2] + m[0] + m[1] + m[2] + d[0] + d[1] + d[2];
            let s2 = u[0] * u[0]
                + u[1] * u[1]
                + u[2] * u[2]
                + m[0] * m[0]
                + m[1] * m[1]
                + m[2] * m[2]
                + d[0] * d[0]
                + d[1] * d[1]
                + d[2] * d[2];
            Spatial {
                grad2: gx * gx + gy * gy,
                laplacian: u[1] + d[1] + m[0] + m[2] - 4 * m[1],
                // Cauchy–Schwarz makes this ≥ 0; the max only guards the invariant.
                dev2: (9 * s2 - s1 * s1).max(0),
            }
        }));
    }
}
