//! `pixal demo`: generates a small synthetic component (two types of flex-like parts, good
//! images for training and a few defective ones with ground-truth masks for validation), writes
//! a configuration for it, and runs the pipeline stages this version has on it.

use std::path::Path;

use anyhow::Context;

use super::{Summary, make_input};
use crate::cli::DemoArgs;
use crate::config::Config;

/// Generates the demo dataset under `args.output` and preprocesses it.
pub fn run(args: &DemoArgs) -> anyhow::Result<Summary> {
    let root = &args.output;
    crate::io::atomic::create_dir_all(root)?;
    let root = root
        .canonicalize()
        .with_context(|| format!("{}: cannot resolve the demo folder", root.display()))?;
    log::info!(
        "demo: generating a synthetic component in {}",
        root.display()
    );
    let spec = crate::demo::DemoSpec {
        good_per_type: args.images.max(2),
        seed: args.seed,
        ..crate::demo::DemoSpec::default()
    };
    let data = crate::demo::generate(&root.join("data"), &spec)?;
    let config_dir = root.join("configs");
    write_configs(&config_dir, &root)?;
    let cfg = Config::load(&config_dir)?;
    let mut summary = Summary::new("demo");
    summary.absorb(make_input::run(&cfg, Some(&data.train))?);
    log::info!(
        "demo: training images in {}, validation images with ground-truth masks in {}",
        data.train.display(),
        data.validate.display()
    );
    log::info!(
        "demo: ML input written under {} (training and detection are not built yet in pixal {})",
        cfg.layout.component_root().display(),
        crate::VERSION
    );
    Ok(summary)
}

/// The shipped configuration, with the output folders moved inside the demo folder.
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
