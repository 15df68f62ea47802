//! `paths.yaml` resolution. Every entry is a small map `{<name-key>: "<folder>", base: <entry or
//! string>}`; entries refer to each other with YAML aliases. `resolve(entry) =
//! resolve(entry.base) / entry.<name-key>`, ending at a plain string. Per-type folders insert the
//! type name right below the component folder, as the original does
//! (`out/<component>/preprocessed_images` -> `out/<component>/<type>/preprocessed_images`).
//! Relative paths stay relative, so they resolve against the working directory like the
//! original's.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use super::{ConfigError, check::closest, yaml};

/// Entries every `paths.yaml` must define, and that pixal knows.
const KNOWN_ENTRIES: [&str; 24] = [
    "out_path",
    "validate_out_path",
    "component_model_path",
    "component_validate_path",
    "model_path",
    "log_path",
    "validate_log_path",
    "preprocessed_images_path",
    "validate_preprocessed_images_path",
    "remove_background_path",
    "validate_remove_background_path",
    "aligned_images_path",
    "validate_aligned_images_path",
    "fig_path",
    "validate_fig_path",
    "aligned_metrics_path",
    "validate_aligned_metrics_path",
    "metadata_path",
    "general_figures_path",
    "general_preprocess_path",
    "general_remove_background_path",
    "general_aligned_images_path",
    "general_aligned_metrics_path",
    "validate_metadata_path",
];

/// Entries that must be present (the rest have defaults derived from these).
const REQUIRED: [&str; 2] = ["component_model_path", "component_validate_path"];

/// The resolved folder tree of a run. Methods take the image type (`Some(type)` in per-type
/// mode, `None` in one-hot mode, where outputs live at the component level).
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// `out/<component>`.
    model_root: PathBuf,
    /// `validate/<component_validate>`.
    validate_root: PathBuf,
    /// Every resolved entry, by name.
    entries: BTreeMap<String, PathBuf>,
}

/// Drops `.` components so `./out/` and `out` compare equal.
fn clean(p: &Path) -> PathBuf {
    p.components().filter(|c| *c != Component::CurDir).collect()
}

fn resolve_value(v: &Value, depth: usize) -> Result<PathBuf, String> {
    if depth > 64 {
        return Err("`base` chain is deeper than 64 levels".into());
    }
    match v {
        Value::String(s) => Ok(PathBuf::from(s)),
        Value::Null => Ok(PathBuf::new()),
        Value::Object(map) => {
            let base = map
                .get("base")
                .ok_or_else(|| format!("entry has no `base` (keys: {})", keys(map)))?;
            let names: Vec<(&String, &Value)> = map.iter().filter(|(k, _)| *k != "base").collect();
            if names.len() != 1 {
                return Err(format!(
                    "entry must have exactly one folder key beside `base`, found: {}",
                    keys(map)
                ));
            }
            let folder = names[0]
                .1
                .as_str()
                .ok_or_else(|| format!("`{}` must be a string folder name", names[0].0))?;
            Ok(resolve_value(base, depth + 1)?.join(folder))
        }
        other => Err(format!("expected a folder string or a map, found {other}")),
    }
}

fn keys(map: &serde_json::Map<String, Value>) -> String {
    map.keys().cloned().collect::<Vec<_>>().join(", ")
}

/// Which half of the output layout: the training photos' (`out/<component>/<type>/...`) or
/// the new photos' (`validate/<component>/<type>/...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Training images: `out/<component>/<type>/...`.
    Model,
    /// New images: `validate/<component>/<type>/...`.
    Validate,
}

/// The folders every image type has on both sides of the layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folder {
    /// `preprocessed_images`.
    PreprocessedImages,
    /// `preprocessed_images/background_removed`: remove_bg's cut-outs.
    BackgroundRemoved,
    /// `preprocessed_images/aligned_images`: align's output and `alignment.csv`.
    AlignedImages,
    /// `figures`.
    Figures,
    /// `figures/aligned_metrics`: align's diagnostics.
    AlignedMetrics,
    /// `metadata` (the original has no validate entry for it; pixal derives it).
    Metadata,
    /// `logs`.
    Logs,
}

impl Folder {
    /// The paths.yaml entry of this folder on `side`, and the original's relative folder, used
    /// when the file leaves the entry out.
    fn entry(self, side: Side) -> (&'static str, &'static str) {
        let (model, validate, rel) = match self {
            Folder::PreprocessedImages => (
                "preprocessed_images_path",
                "validate_preprocessed_images_path",
                "preprocessed_images",
            ),
            Folder::BackgroundRemoved => (
                "remove_background_path",
                "validate_remove_background_path",
                "preprocessed_images/background_removed",
            ),
            Folder::AlignedImages => (
                "aligned_images_path",
                "validate_aligned_images_path",
                "preprocessed_images/aligned_images",
            ),
            Folder::Figures => ("fig_path", "validate_fig_path", "figures"),
            Folder::AlignedMetrics => (
                "aligned_metrics_path",
                "validate_aligned_metrics_path",
                "figures/aligned_metrics",
            ),
            Folder::Metadata => ("metadata_path", "validate_metadata_path", "metadata"),
            Folder::Logs => ("log_path", "validate_log_path", "logs"),
        };
        match side {
            Side::Model => (model, rel),
            Side::Validate => (validate, rel),
        }
    }
}

impl Layout {
    /// Parses and resolves the text of a `paths.yaml` (`path` is used in messages).
    pub fn from_yaml(text: &str, path: &Path) -> Result<Layout, ConfigError> {
        let value = yaml::parse(text, path)?;
        let Value::Object(map) = value else {
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                line: None,
                key: "(top level)".into(),
                message: "must be a map of path entries".into(),
            });
        };
        let mut entries = BTreeMap::new();
        for (name, v) in &map {
            if !KNOWN_ENTRIES.contains(&name.as_str()) {
                return Err(ConfigError::UnknownKey {
                    path: path.to_path_buf(),
                    line: yaml::find_key_line(text, &[name]),
                    key: name.clone(),
                    suggestion: closest(name, &KNOWN_ENTRIES).map(str::to_string),
                });
            }
            let resolved = resolve_value(v, 0).map_err(|message| ConfigError::Invalid {
                path: path.to_path_buf(),
                line: yaml::find_key_line(text, &[name]),
                key: name.clone(),
                message,
            })?;
            entries.insert(name.clone(), clean(&resolved));
        }
        for req in REQUIRED {
            if !entries.contains_key(req) {
                return Err(ConfigError::Invalid {
                    path: path.to_path_buf(),
                    line: None,
                    key: req.into(),
                    message: "is missing; it names the component folder".into(),
                });
            }
        }
        let model_root = entries["component_model_path"].clone();
        let validate_root = entries["component_validate_path"].clone();
        Ok(Layout {
            model_root,
            validate_root,
            entries,
        })
    }

    /// A layout rooted at `out_dir/<component>` and `validate_dir/<component>`, with the
    /// original's folder names: what the demo and tests use.
    pub fn rooted(model_root: &Path, validate_root: &Path) -> Layout {
        Layout {
            model_root: clean(model_root),
            validate_root: clean(validate_root),
            entries: BTreeMap::new(),
        }
    }

    /// The same layout with the validate side moved to `root` (`validate --output DIR`): every
    /// validate entry below the old validate root moves with it; the model side is unchanged.
    pub fn with_validate_root(&self, root: &Path) -> Layout {
        let root = clean(root);
        let entries = self
            .entries
            .iter()
            .map(|(k, p)| {
                let moved = match p.strip_prefix(&self.validate_root) {
                    Ok(rel) if k.contains("validate") => root.join(rel),
                    _ => p.clone(),
                };
                (k.clone(), moved)
            })
            .collect();
        Layout {
            model_root: self.model_root.clone(),
            validate_root: root,
            entries,
        }
    }

    /// `out/<component>`.
    pub fn component_root(&self) -> &Path {
        &self.model_root
    }

    /// `validate/<component_validate>`.
    pub fn validate_component_root(&self) -> &Path {
        &self.validate_root
    }

    /// The folder `folder` of image type `ty` on `side` of the layout, as paths.yaml places it
    /// (the type folder inserted right below the component root).
    pub fn dir(&self, side: Side, folder: Folder, ty: Option<&str>) -> PathBuf {
        let (entry, default_rel) = folder.entry(side);
        let root = match side {
            Side::Model => &self.model_root,
            Side::Validate => &self.validate_root,
        };
        insert_type(root, self.entries.get(entry), default_rel, ty)
    }

    /// `out/<component>/<type>`: where the type's `out.npz` lives.
    pub fn type_root(&self, ty: Option<&str>) -> PathBuf {
        with_type(&self.model_root, ty)
    }

    /// `validate/<component>/<type>`.
    pub fn validate_type_root(&self, ty: Option<&str>) -> PathBuf {
        with_type(&self.validate_root, ty)
    }

    /// `.../model`: the trained model's folder (model side only).
    pub fn model(&self, ty: Option<&str>) -> PathBuf {
        insert_type(
            &self.model_root,
            self.entries.get("model_path"),
            "model",
            ty,
        )
    }
}

fn with_type(root: &Path, ty: Option<&str>) -> PathBuf {
    match ty {
        Some(t) => root.join(t),
        None => root.to_path_buf(),
    }
}

/// Inserts the type folder right below the component root. An entry that the user pointed
/// outside the component root is used as it is (no insertion is possible there).
fn insert_type(
    root: &Path,
    entry: Option<&PathBuf>,
    default_rel: &str,
    ty: Option<&str>,
) -> PathBuf {
    let rel = match entry {
        Some(p) => match p.strip_prefix(root) {
            Ok(rel) => rel.to_path_buf(),
            Err(_) => return p.clone(),
        },
        None => PathBuf::from(default_rel),
    };
    with_type(root, ty).join(rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> String {
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/configs/paths.yaml"))
            .expect("configs/paths.yaml is part of the repository")
    }

    #[test]
    fn shipped_paths_resolve_to_the_documented_tree() {
        let l = Layout::from_yaml(&shipped(), Path::new("paths.yaml")).unwrap();
        let c = "out/Data_set_R0_Triplet_Data_F1_2ps_6var";
        let v = "validate/Data_set_R0_Triplet_Data_F1_d1_2ps_6var";
        let t = Some("F1_Front");
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(l.component_root(), p(c));
        assert_eq!(l.type_root(t), p(&format!("{c}/F1_Front")));
        assert_eq!(
            l.dir(Side::Model, Folder::BackgroundRemoved, t),
            p(&format!(
                "{c}/F1_Front/preprocessed_images/background_removed"
            ))
        );
        assert_eq!(
            l.dir(Side::Model, Folder::AlignedImages, t),
            p(&format!("{c}/F1_Front/preprocessed_images/aligned_images"))
        );
        assert_eq!(
            l.dir(Side::Model, Folder::PreprocessedImages, t),
            p(&format!("{c}/F1_Front/preprocessed_images"))
        );
        assert_eq!(
            l.dir(Side::Model, Folder::AlignedMetrics, t),
            p(&format!("{c}/F1_Front/figures/aligned_metrics"))
        );
        assert_eq!(
            l.dir(Side::Model, Folder::Figures, t),
            p(&format!("{c}/F1_Front/figures"))
        );
        assert_eq!(
            l.dir(Side::Model, Folder::Metadata, t),
            p(&format!("{c}/F1_Front/metadata"))
        );
        assert_eq!(
            l.dir(Side::Model, Folder::Logs, t),
            p(&format!("{c}/F1_Front/logs"))
        );
        assert_eq!(l.model(t), p(&format!("{c}/F1_Front/model")));
        assert_eq!(l.model(None), p(&format!("{c}/model")));
        assert_eq!(l.validate_type_root(t), p(&format!("{v}/F1_Front")));
        assert_eq!(
            l.dir(Side::Validate, Folder::BackgroundRemoved, t),
            p(&format!(
                "{v}/F1_Front/preprocessed_images/background_removed"
            ))
        );
        assert_eq!(
            l.dir(Side::Validate, Folder::AlignedImages, t),
            p(&format!("{v}/F1_Front/preprocessed_images/aligned_images"))
        );
        assert_eq!(
            l.dir(Side::Validate, Folder::AlignedMetrics, t),
            p(&format!("{v}/F1_Front/figures/aligned_metrics"))
        );
        assert_eq!(
            l.dir(Side::Validate, Folder::Figures, t),
            p(&format!("{v}/F1_Front/figures"))
        );
        assert_eq!(
            l.dir(Side::Validate, Folder::Logs, t),
            p(&format!("{v}/F1_Front/logs"))
        );
        assert_eq!(
            l.dir(Side::Validate, Folder::Metadata, t),
            p(&format!("{v}/F1_Front/metadata"))
        );
        assert_eq!(
            l.entries["general_aligned_metrics_path"],
            p("figures/aligned_metrics")
        );
    }

    #[test]
    fn original_paths_file_is_accepted_unchanged() {
        let Some((original, text)) = crate::config::original_config("paths.yaml") else {
            return;
        };
        let a = Layout::from_yaml(&text, &original).unwrap();
        let b = Layout::from_yaml(&shipped(), Path::new("paths.yaml")).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn recursive_base_and_string_base() {
        let text = "root: &r \"/data/\"\nx: &x\n  component: \"C\"\n  base: *r\ny:\n  model: m\n  base: *x\n";
        let v = yaml::parse(text, Path::new("p")).unwrap();
        assert_eq!(
            resolve_value(&v["y"], 0).unwrap(),
            PathBuf::from("/data/C/m")
        );
    }

    #[test]
    fn unknown_entry_is_named_with_line_and_suggestion() {
        let text = shipped().replace(
            "metadata_path: &metadata_path",
            "metdata_path: &metadata_path",
        );
        let err = Layout::from_yaml(&text, Path::new("paths.yaml")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("unknown key `metdata_path`"), "{msg}");
        assert!(msg.contains("did you mean `metadata_path`"), "{msg}");
        assert!(msg.starts_with("paths.yaml:"), "{msg}");
    }

    #[test]
    fn malformed_entry_is_an_error() {
        let text = "component_model_path:\n  component: C\ncomponent_validate_path:\n  component: V\n  base: \"v\"\n";
        let err = Layout::from_yaml(text, Path::new("paths.yaml")).unwrap_err();
        assert!(err.to_string().contains("component_model_path"), "{err}");
        assert!(err.to_string().contains("no `base`"), "{err}");
    }
}
