//! `pixal preprocess`: remove_bg -> align -> make_input, running the stages this version has.
//! Background removal writes each type's cut-outs to its `background_removed` folder and
//! make_input reads those folders, or, with `apply_alignment`, the aligned folders that
//! [`super::align`] writes from them (see [`make_input_sources`]).

use std::path::{Path, PathBuf};

use super::remove_bg;
use super::{Summary, UsageError, discover_types, make_input};
use crate::config::Config;
use crate::config::paths::Side;

/// Runs the preprocessing chain on `input`.
pub fn run(cfg: &Config, input: Option<&Path>) -> anyhow::Result<Summary> {
    let Some(input) = input else {
        return Err(UsageError(
            "preprocess needs -i DIR: a component folder with one sub-folder of photos per image type"
                .into(),
        )
        .into());
    };
    let types = discover_types(input)?;
    let mut summary = Summary::new("preprocess");
    let (removed, folders) = remove_bg::run_types(cfg, &types, Side::Model, false)?;
    summary.absorb(removed);
    let sources = make_input_sources(cfg, folders, &mut summary)?;
    if sources.is_empty() {
        summary.warn("preprocess: no photo came through background removal; make_input skipped");
        return Ok(summary);
    }
    let mut made = Summary::new("make_input");
    make_input::run_types(cfg, &sources, &mut made)?;
    // Photos were counted by remove_bg; make_input's count would count them twice.
    made.processed = 0;
    summary.absorb(made);
    Ok(summary)
}

/// The per-type folders make_input reads, given the background-removed folders (type name,
/// folder): with `apply_alignment`, each type's cut-outs are aligned into
/// `layout.dir(Side::Model, Folder::AlignedImages, Some(type))` and those folders are returned; otherwise the cut-outs go
/// to make_input as they are.
pub fn make_input_sources(
    cfg: &Config,
    background_removed: Vec<(String, PathBuf)>,
    summary: &mut Summary,
) -> anyhow::Result<Vec<(String, PathBuf)>> {
    if !cfg.params.preprocessing.alignment.apply_alignment {
        return Ok(background_removed);
    }
    let mut aligned = Summary::new("align");
    let folders = super::align::align_types(cfg, &background_removed, &mut aligned)?;
    // Photos were counted by remove_bg; align's count would count them twice.
    aligned.processed = 0;
    summary.absorb(aligned);
    Ok(folders)
}
