//! `pixal init [DIR]`: writes a configuration folder for a component — the shipped
//! `parameters.yaml` and `paths.yaml` with the component name taken from the photo folder, each
//! opened by a comment that lists the keys a lab usually changes — so a new user does not have
//! to find, copy and edit the files by hand. `pixal completions` and `pixal manpage` live here
//! too: like `init`, they set pixal up rather than run a stage, and need no configuration.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{Summary, UsageError, discover_types};
use crate::cli::{CompletionsArgs, InitArgs, ManpageArgs};

/// The shipped parameters, the template `pixal init` starts from.
const PARAMETERS: &str = include_str!("../../configs/parameters.yaml");
/// The shipped paths, the template `pixal init` starts from.
const PATHS: &str = include_str!("../../configs/paths.yaml");
/// The two component entries of the shipped paths.yaml that `init` renames.
const SHIPPED_COMPONENTS: [&str; 2] = [
    "Data_set_R0_Triplet_Data_F1_2ps_6var",
    "Data_set_R0_Triplet_Data_F1_d1_2ps_6var",
];

/// The keys of parameters.yaml labs usually change, each with why; written as the file's opening
/// comment. Every path must exist in the shipped file (a unit test checks it).
pub const USUALLY_CHANGED: [(&str, &str); 10] = [
    (
        "preprocessing.remove_background.method",
        "onnx (rembg's U2-Net; needs u2net.onnx in ~/.u2net) or classical (no model; plain lit backgrounds)",
    ),
    (
        "preprocessing.alignment.apply_alignment",
        "True when the part is not photographed in exactly the same place every time",
    ),
    (
        "preprocessing.alignment.MAX_MSE_THRESHOLD",
        "raise it (e.g. 400) when the lighting changes between photos, or alignments are refused",
    ),
    (
        "preprocessing.preprocessor.channels",
        "what the model sees; add LAB_L for scratches and missing material (lightness), with one weight per channel",
    ),
    (
        "preprocessing.preprocessor.pool_size",
        "larger = coarser maps, faster training",
    ),
    (
        "model_training.model_type",
        "autoencoder, or pixel_stats (seconds to train; a strong baseline for well-aligned parts)",
    ),
    (
        "model_training.autoencoder_architecture",
        "[32] trains fast and scored as well as the original's [512, 256, 128, 64] on the benchmark",
    ),
    (
        "model_training.n_epochs",
        "upper bound; early stopping (patience) usually ends sooner",
    ),
    (
        "detection.threshold",
        "auto (calibrated on held-out good photos) or loss_cut (plotting.loss_cut)",
    ),
    (
        "plotting",
        "which figures detect draws (plot_anomaly_heatmap: the overlays in the report)",
    ),
];

/// The opening comment of the written parameters.yaml.
fn parameters_header(component: &str) -> String {
    let mut s = format!(
        "# Written by `pixal init` for the component \"{component}\" (pixal {}).\n\
# Keys a lab usually changes (the rest can stay as they are):\n",
        crate::VERSION
    );
    for (key, why) in USUALLY_CHANGED {
        s.push_str(&format!("#   {key}: {why}\n"));
    }
    s.push_str(
        "# Every key is explained beside it below; an unknown key is an error naming its line.\n\n",
    );
    s
}

/// The opening comment of the written paths.yaml.
fn paths_header(component: &str) -> String {
    format!(
        "# Written by `pixal init` (pixal {}). The only keys a lab changes are the two component\n\
# names: component_model_path.component (training outputs: out/{component}/) and\n\
# component_validate_path.component (validation outputs: validate/{component}/). Relative\n\
# paths are relative to the folder pixal runs in.\n\n",
        crate::VERSION
    )
}

/// The two configuration files for `component`: (parameters.yaml, paths.yaml) text.
pub fn config_texts(component: &str) -> anyhow::Result<(String, String)> {
    // A YAML double-quoted scalar (JSON string syntax is valid YAML), so any folder name works.
    let quoted = serde_json::Value::String(component.to_string()).to_string();
    let mut paths = PATHS.to_string();
    for shipped in SHIPPED_COMPONENTS {
        let from = format!("component: \"{shipped}\"");
        if !paths.contains(&from) {
            anyhow::bail!("internal: the shipped paths.yaml no longer contains `{from}`");
        }
        paths = paths.replacen(&from, &format!("component: {quoted}"), 1);
    }
    Ok((
        format!("{}{PARAMETERS}", parameters_header(component)),
        format!("{}{paths}", paths_header(component)),
    ))
}

/// The component name of a photo folder: its own name (of the absolute path, so `.` works).
pub fn component_name(dir: &Path) -> anyhow::Result<String> {
    let abs = dir
        .canonicalize()
        .with_context(|| format!("{}: cannot resolve the folder", dir.display()))?;
    abs.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            UsageError(format!(
                "{}: cannot take a component name from this folder; pass the photo folder (pixal init path/to/component)",
                abs.display()
            ))
            .into()
        })
}

/// Runs `pixal init`: writes `config_dir`/parameters.yaml and paths.yaml for the photos in
/// `args.dir`.
pub fn run(args: &InitArgs, config_dir: &Path) -> anyhow::Result<Summary> {
    if !args.dir.is_dir() {
        return Err(UsageError(format!(
            "{}: photo folder does not exist (or is not a folder); pass the folder with one sub-folder of photos per part type",
            args.dir.display()
        ))
        .into());
    }
    let component = component_name(&args.dir)?;
    let mut summary = Summary::new("init");
    // Say which part types the folder holds, so a stray folder is noticed now, not after training.
    match discover_types(&args.dir) {
        Ok(types) => {
            let names: Vec<String> = types
                .iter()
                .map(|(n, d)| {
                    let count = crate::io::image::list_images(d).map_or(0, |v| v.len());
                    format!("{n} ({count} photos)")
                })
                .collect();
            log::info!(
                "init: component \"{component}\", {} part type(s): {}",
                names.len(),
                names.join(", ")
            );
        }
        Err(e) => summary.warn(format!(
            "init: {}; the configuration is written anyway (copy the photos there before `pixal preprocess`)",
                super::error_text(&e)
        )),
    }
    let targets: [PathBuf; 2] = [
        config_dir.join("parameters.yaml"),
        config_dir.join("paths.yaml"),
    ];
    if !args.force
        && let Some(existing) = targets.iter().find(|p| p.exists())
    {
        return Err(UsageError(format!(
            "{}: already exists; pixal init keeps it (pass --force to overwrite, or --config DIR to write elsewhere)",
            existing.display()
        ))
        .into());
    }
    let (params, paths) = config_texts(&component)?;
    crate::io::atomic::create_dir_all(config_dir)?;
    for (path, text) in targets.iter().zip([params, paths]) {
        crate::io::atomic::write_bytes(path, text.as_bytes())?;
        summary.output(path);
    }
    // The written files must load: never hand a user a configuration pixal itself refuses.
    super::load_config(config_dir)?;
    summary.processed = 1;
    log::info!(
        "init: wrote {} — next: pixal preprocess -i {}",
        config_dir.display(),
        args.dir.display()
    );
    Ok(summary)
}

/// Prints the completion script for `args.shell` on stdout.
pub fn completions(args: &CompletionsArgs) -> anyhow::Result<Summary> {
    let mut cmd = <crate::cli::Cli as clap::CommandFactory>::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut cmd, "pixal", &mut out);
    out.flush().context("writing the completion script")?;
    Ok(Summary::new("completions"))
}

/// The man pages: `pixal.1` and one `pixal-<subcommand>.1` per subcommand, as (file name, roff).
pub fn man_pages() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let cmd = <crate::cli::Cli as clap::CommandFactory>::command();
    let mut pages = Vec::new();
    let mut main = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut main)
        .context("rendering the man page")?;
    pages.push(("pixal.1".to_string(), main));
    for sub in cmd.get_subcommands() {
        let name = format!("pixal-{}", sub.get_name());
        let mut buf = Vec::new();
        clap_mangen::Man::new(sub.clone().name(name.clone()))
            .render(&mut buf)
            .with_context(|| format!("rendering the man page {name}"))?;
        pages.push((format!("{name}.1"), buf));
    }
    Ok(pages)
}

/// Writes the man pages: pixal(1) on stdout, or every page into `args.output`.
pub fn manpage(args: &ManpageArgs) -> anyhow::Result<Summary> {
    let mut summary = Summary::new("manpage");
    let pages = man_pages()?;
    match &args.output {
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&pages[0].1)
                .and_then(|()| out.flush())
                .context("writing the man page")?;
        }
        Some(dir) => {
            crate::io::atomic::create_dir_all(dir)?;
            for (name, text) in &pages {
                let path = dir.join(name);
                crate::io::atomic::write_bytes(&path, text)?;
                summary.output(&path);
            }
        }
    }
    summary.processed = pages.len();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usually_changed_keys_exist_in_the_shipped_parameters() {
        for (key, _) in USUALLY_CHANGED {
            let last = key.rsplit('.').next().unwrap_or(key);
            assert!(
                PARAMETERS
                    .lines()
                    .any(|l| l.trim_start().starts_with(&format!("{last}:"))),
                "{key} is not in configs/parameters.yaml"
            );
        }
    }

    #[test]
    fn the_component_name_replaces_both_shipped_ones() {
        let (params, paths) = config_texts("my \"flex\" F1").unwrap();
        assert!(params.starts_with("# Written by `pixal init`"));
        assert!(params.contains("#   model_training.model_type:"));
        assert_eq!(
            paths.matches("component: \"my \\\"flex\\\" F1\"").count(),
            2
        );
        for shipped in SHIPPED_COMPONENTS {
            assert!(!paths.contains(shipped));
        }
    }

    #[test]
    fn one_man_page_per_subcommand() {
        let pages = man_pages().unwrap();
        let main = String::from_utf8(pages[0].1.clone()).unwrap();
        assert!(
            main.starts_with(".ie"),
            "roff: {}",
            &main[..40.min(main.len())]
        );
        assert!(main.contains(".TH pixal 1"));
        for sub in ["preprocess", "validate", "init", "completions"] {
            assert!(main.contains(sub), "pixal.1 does not mention {sub}");
        }
        let names: Vec<&str> = pages.iter().map(|p| p.0.as_str()).collect();
        assert!(names.contains(&"pixal-validate.1") && names.contains(&"pixal-init.1"));
        let validate = String::from_utf8(
            pages
                .iter()
                .find(|p| p.0 == "pixal-validate.1")
                .unwrap()
                .1
                .clone(),
        )
        .unwrap();
        assert!(
            validate.contains("truth"),
            "the validate page lists --truth"
        );
    }
}
