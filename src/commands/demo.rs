//! `pixal demo`: generates a component (photos of a real flex under two backlights, by
//! [`crate::demo::realistic`]: good photos for training, good and defective ones with
//! ground-truth masks for validation; `--generate-only` stops there), writes
//! the shipped configuration with only its folders moved into the demo folder, and runs the
//! whole pipeline on it: preprocess -> train -> validate with metrics. It prints how many
//! verdicts were right, the AUROCs it reached and where the report is.

use std::path::Path;

use anyhow::Context;

use super::{Summary, preprocess, train, validate};
use crate::cli::DemoArgs;
use crate::config::Config;

/// Generates the demo dataset under `args.output` and runs the pipeline on it.
pub fn run(args: &DemoArgs) -> anyhow::Result<Summary> {
    let root = &args.output;
    crate::io::atomic::create_dir_all(root)?;
    let root = root
        .canonicalize()
        .with_context(|| format!("{}: cannot resolve the demo folder", root.display()))?;
    let data_dir = root.join("data");
    let (data, types) = if args.synthetic {
        log::info!(
            "demo: generating a synthetic cartoon component in {}",
            data_dir.display()
        );
        let spec = crate::demo::DemoSpec {
            good_per_type: args.train.unwrap_or(20).max(4),
            seed: args.seed,
            ..crate::demo::DemoSpec::default()
        };
        let data = crate::demo::generate(&data_dir, &spec)?;
        (data, crate::demo::TYPES.map(String::from).to_vec())
    } else {
        let spec = realistic_spec(args);
        log::info!(
            "demo: generating photos of a real flex ({}x{}, {} training + {} good + {} defective per type, defect contrast {}) in {}",
            spec.width,
            spec.height,
            spec.train_per_type,
            spec.good_validate_per_type,
            spec.defective_per_type,
            spec.contrast,
            data_dir.display()
        );
        let t = std::time::Instant::now();
        let data = crate::demo::realistic::generate(&data_dir, &spec)?;
        log::info!("demo: generated in {:.1} s", t.elapsed().as_secs_f64());
        (
            data,
            spec.types.iter().map(|b| b.name.to_string()).collect(),
        )
    };
    if args.generate_only {
        let mut summary = Summary::new("demo");
        for d in [&data.train, &data.validate, &data.truth] {
            summary.output(d);
        }
        return Ok(summary);
    }
    let config_dir = root.join("configs");
    write_configs(&config_dir, &root)?;
    let cfg = Config::load(&config_dir)?;
    let mut summary = Summary::new("demo");
    let t0 = std::time::Instant::now();
    summary.absorb(preprocess::run(&cfg, Some(&data.train))?);
    summary.absorb(train::run(&cfg, None)?);
    summary.absorb(validate::run(
        &cfg,
        Some(&data.validate),
        None,
        Some(&data.truth),
    )?);
    log::info!("demo: pipeline took {:.1} s", t0.elapsed().as_secs_f64());
    for ty in &types {
        let dir = cfg.layout.validate_type_root(Some(ty.as_str()));
        let Ok(text) = std::fs::read_to_string(dir.join("summary.json")) else {
            summary.warn(format!("demo: no detection summary for {ty}"));
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let m = &v["metrics"];
        let f = |k: &str| {
            m[k].as_f64()
                .map_or("n/a".to_string(), |x| format!("{x:.3}"))
        };
        let (mut flagged, mut defective, mut passed, mut good) = (0, 0, 0, 0);
        for im in v["images"].as_array().map_or(&[][..], Vec::as_slice) {
            let anomalous = im["verdict"] == "anomalous";
            match im["truth"].as_bool() {
                Some(true) => {
                    defective += 1;
                    flagged += usize::from(anomalous);
                }
                Some(false) => {
                    good += 1;
                    passed += usize::from(!anomalous);
                }
                None => {}
            }
        }
        log::info!(
            "demo {ty}: {} of {} verdicts right: {flagged} of {defective} defective photos flagged, {passed} of {good} good photos passed",
            flagged + passed,
            defective + good
        );
        log::info!(
            "demo {ty}: image AUROC {}, pixel AUROC {}, AUPRO(0.3) {}, pixel F1-max {}",
            f("image_auroc"),
            f("pixel_auroc"),
            f("aupro_0_3"),
            f("pixel_f1_max")
        );
        log::info!("demo {ty}: report {}", dir.join("report.html").display());
    }
    Ok(summary)
}

/// The realistic generator's spec from the command line: `--subtle` sets contrast 0.35 unless
/// `--contrast` is given; 20 training photos per type unless `--train` is.
fn realistic_spec(args: &DemoArgs) -> crate::demo::realistic::RealisticSpec {
    let contrast = if args.subtle { 0.35 } else { 1.0 };
    crate::demo::realistic::RealisticSpec {
        width: args.size.0,
        height: args.size.1,
        train_per_type: args.train.unwrap_or(20),
        good_validate_per_type: args.good,
        defective_per_type: args.defective,
        contrast: args.contrast.unwrap_or(contrast),
        seed: args.seed,
        ..crate::demo::realistic::RealisticSpec::default()
    }
}

/// The shipped configuration, unchanged, with paths.yaml's output folders moved inside the demo
/// folder and its component names set: the demo shows what a lab gets out of the box.
fn write_configs(dir: &Path, root: &Path) -> anyhow::Result<()> {
    let params = include_str!("../../configs/parameters.yaml");
    let paths = include_str!("../../configs/paths.yaml")
        .replace(
            "out_path: &out_path \"./out/\"",
            &format!("out_path: &out_path {}", quoted(&root.join("out"))),
        )
        .replace(
            "validate_out_path: &validate_out_path \"./validate\"",
            &format!(
                "validate_out_path: &validate_out_path {}",
                quoted(&root.join("validate"))
            ),
        )
        .replace("Data_set_R0_Triplet_Data_F1_2ps_6var", "demo_flex")
        .replace(
            "Data_set_R0_Triplet_Data_F1_d1_2ps_6var",
            "demo_flex_validate",
        );
    crate::io::atomic::write_bytes(&dir.join("parameters.yaml"), params.as_bytes())?;
    crate::io::atomic::write_bytes(&dir.join("paths.yaml"), paths.as_bytes())?;
    Ok(())
}

/// A path as a YAML double-quoted scalar (JSON string syntax is valid YAML).
fn quoted(p: &Path) -> String {
    serde_json::Value::String(p.display().to_string()).to_string()
}
