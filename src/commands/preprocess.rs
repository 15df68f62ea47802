//! `pixal preprocess`: remove_bg -> align -> make_input, running the stages this version has.
//! Background removal is not built yet, so images pass through it unchanged (with a warning);
//! alignment, when the configuration asks for it, is refused rather than silently skipped.

use std::path::Path;

use super::{Summary, UsageError, make_input};
use crate::config::Config;

/// Runs the preprocessing chain on `input`.
pub fn run(cfg: &Config, input: Option<&Path>) -> anyhow::Result<Summary> {
    let Some(input) = input else {
        return Err(UsageError(
            "preprocess needs -i DIR: a component folder with one sub-folder of photos per image type"
                .into(),
        )
        .into());
    };
    if cfg.params.preprocessing.alignment.apply_alignment {
        return Err(UsageError(format!(
            "preprocessing.alignment.apply_alignment is true in {}, but alignment is not built yet in pixal {}; set it to False to preprocess without alignment",
            cfg.dir.join("parameters.yaml").display(),
            crate::VERSION
        ))
        .into());
    }
    let mut summary = Summary::new("preprocess");
    summary.warn(
        "background removal is not built yet: images go to make_input unchanged, so bg_threshold \
         sees the photo's own background",
    );
    summary.absorb(make_input::run(cfg, Some(input))?);
    Ok(summary)
}
