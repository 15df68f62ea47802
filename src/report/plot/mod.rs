//! Plot functions: line charts, bar charts, histograms, scatter plots and images with a colour
//! bar. Every function takes the data and a path, draws into an RGB buffer with plotters, and
//! saves a PNG atomically. Empty or non-finite data gives a figure that says so, never a panic.
//!
//! By family: `frame` (what every figure shares: font, palette, axes, legend, ticks, saving),
//! `lines` (line charts, loss curve, scatter), `histograms` (bars and histograms) and `maps`
//! (confusion matrix, images with a colour bar); everything public is re-exported here.

mod frame;
mod histograms;
mod lines;
mod maps;

pub use frame::{
    Axes, Marker, PALETTE, SIZE, Series, format_tick, log_tick, render, save_figure_png, shorten,
};
pub use histograms::{
    ScoreHistograms, bar_chart, bin_counts, histogram, overlaid_histograms, panel_histograms,
    score_histograms,
};
pub use lines::{LossCurve, line_chart, line_chart_marked, loss_curve, scatter};
pub use maps::{confusion_matrix, image_with_colorbar};

#[cfg(test)]
mod tests {
    use super::frame::significant;
    use super::histograms::log_x_if_wide;
    use super::*;

    #[test]
    fn ticks_read_as_numbers_people_write() {
        assert_eq!(format_tick(10.0), "10");
        assert_eq!(format_tick(0.25), "0.25");
        assert_eq!(format_tick(0.0), "0");
        assert_eq!(format_tick(123456.0), "1.2e5");
        assert_eq!(log_tick(100000.0), "1e5");
        assert_eq!(log_tick(1000.0), "1000");
        assert_eq!(log_tick(0.001), "1e-3");
        let a = Axes::new("", "", "").integer_x();
        assert_eq!(a.x_tick(10.0), "10");
        assert_eq!(a.x_tick(2.5), "");
        let a = Axes::new("", "", "").x_names(vec!["a.png".into(), "b.png".into()]);
        assert_eq!(a.x_tick(1.0).trim_start(), "b.png");
        assert_eq!(a.x_tick(0.5), "");
        assert_eq!(shorten("abcdefghijklmnopqrstuvwxyz.png", 11), "abcde…z.png");
        assert_eq!(significant(3.16227), "3.2");
        assert_eq!(significant(316.227), "316");
        assert_eq!(significant(0.0316227), "0.032");
    }

    #[test]
    fn wide_scores_are_binned_on_log10_with_the_threshold() {
        let sets = vec![
            ("good".to_string(), vec![0.0, 1.0, 2.0]),
            ("bad".to_string(), vec![100.0, 400.0]),
        ];
        let (logged, thr, axes) = log_x_if_wide(&sets, Some(10.0), "t", "score", "n");
        assert!(axes.log10_x_values);
        assert_eq!(thr, Some((1.0, 10.0)));
        assert_eq!(logged[0].0, "good (1 ≤ 0 not shown)");
        assert_eq!(logged[0].1, vec![0.0, 2f64.log10()]);
        // Narrow ranges stay linear.
        let (same, thr, axes) = log_x_if_wide(&sets[..1], Some(1.5), "t", "score", "n");
        assert!(!axes.log10_x_values);
        assert_eq!(thr, Some((1.5, 1.5)));
        assert_eq!(same, sets[..1].to_vec());
    }

    #[test]
    fn bins_count_every_finite_value() {
        let (lo, hi, c) = bin_counts(&[0.0, 0.5, 1.0, f64::NAN, 0.26], 4);
        assert_eq!((lo, hi), (0.0, 1.0));
        assert_eq!(c, vec![1, 1, 1, 1]);
        let (_, _, c) = bin_counts(&[], 3);
        assert_eq!(c, vec![0, 0, 0]);
    }

    #[test]
    fn figures_are_written_even_for_degenerate_data() {
        let tmp = tempfile::tempdir().unwrap();
        // PIXAL_PLOT_DIR keeps the figures for a person to look at.
        let keep = std::env::var_os("PIXAL_PLOT_DIR").map(std::path::PathBuf::from);
        let dir = keep.as_deref().unwrap_or(tmp.path());
        let a = Axes::new("Loss", "epoch", "loss");
        line_chart(
            &dir.join("l.png"),
            &a,
            &[Series {
                name: "train".into(),
                points: vec![(1.0, 0.5), (2.0, 0.25)],
            }],
        )
        .unwrap();
        line_chart(&dir.join("e.png"), &a.clone().log_y(), &[]).unwrap();
        histogram(
            &dir.join("h.png"),
            &a,
            &[1.0; 10],
            20,
            &[Marker {
                x: 1.0,
                label: "cut".into(),
            }],
        )
        .unwrap();
        histogram(&dir.join("hl.png"), &a.clone().log_y(), &[], 20, &[]).unwrap();
        bar_chart(
            &dir.join("b.png"),
            &a,
            &["a".into(), "b".into()],
            &[1.0, f64::NAN],
        )
        .unwrap();
        scatter(
            &dir.join("s.png"),
            &a,
            &[(0.1, 0.2), (0.3, 0.3)],
            true,
            1000,
        )
        .unwrap();
        let img = image::RgbImage::from_fn(30, 20, |x, _| {
            image::Rgb(super::super::colormap::viridis(x as f32 / 29.0))
        });
        image_with_colorbar(
            &dir.join("c.png"),
            "map",
            &img,
            super::super::colormap::viridis,
            (0.0, 2.5),
            "error",
        )
        .unwrap();
        let sets = vec![
            ("true".to_string(), vec![0.1, 0.2, 0.2, 0.5]),
            ("predicted".to_string(), vec![0.15, 0.2, 0.4]),
        ];
        overlaid_histograms(&dir.join("o.png"), &a.clone().log_y(), &sets, 20).unwrap();
        panel_histograms(
            &dir.join("p.png"),
            "per channel",
            &Axes::new("", "error", "pixels").log_y(),
            &sets,
            20,
        )
        .unwrap();
        confusion_matrix(&dir.join("m.png"), "confusion", [[8, 1], [2, 5]]).unwrap();
        loss_curve(
            &dir.join("lc.png"),
            &LossCurve {
                type_name: "front".into(),
                model_name: "testModel".into(),
                train: vec![1.0, 0.5, 0.3, 0.35, 0.4],
                validation: vec![1.1, 0.6, 0.2, 0.3, 0.5],
                best_epoch: 3,
                stopped_early: true,
            },
        )
        .unwrap();
        score_histograms(
            &dir.join("sh.png"),
            &ScoreHistograms {
                title: "front".into(),
                pixel_label: "score".into(),
                pixel: vec![
                    (
                        "normal".into(),
                        (0..500).map(|i| f64::from(i) / 100.0).collect(),
                    ),
                    ("defect".into(), vec![40.0, 60.0, 80.0]),
                ],
                pixel_threshold: Some(4.5),
                image_label: "image score".into(),
                image: vec![
                    ("good".into(), vec![2.0, 3.0]),
                    ("defective".into(), vec![50.0]),
                ],
                image_threshold: Some(4.0),
            },
        )
        .unwrap();
        // The marker lines are drawn in their colours: best epoch black, early stop red.
        let lc = image::open(dir.join("lc.png")).unwrap().to_rgb8();
        assert!(lc.pixels().any(|p| p.0 == [0, 0, 0]));
        assert!(lc.pixels().any(|p| p.0 == [214, 39, 40]));
        for f in [
            "l", "e", "h", "hl", "b", "s", "c", "o", "p", "m", "lc", "sh",
        ] {
            let img = image::open(dir.join(format!("{f}.png"))).unwrap().to_rgb8();
            // Something other than white was drawn.
            assert!(
                img.pixels().any(|p| p.0 != [255, 255, 255]),
                "{f}.png is blank"
            );
        }
    }
}
