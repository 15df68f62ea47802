//! Helpers shared by the integration tests: a temporary project folder holding a copy of the
//! shipped configuration, whose relative output paths (`./out/`, `./validate`) land inside it
//! when pixal runs there.

#![allow(dead_code)]

use std::path::Path;

/// A temp folder with `configs/parameters.yaml` and `configs/paths.yaml` copied from the repo.
pub fn temp_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("configs");
    std::fs::create_dir_all(&cfg).unwrap();
    for f in ["parameters.yaml", "paths.yaml"] {
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("configs")
                .join(f),
            cfg.join(f),
        )
        .unwrap();
    }
    dir
}

/// Replaces the first `from` in the project's parameters.yaml by `to` (which must be there).
pub fn edit_params(project: &Path, from: &str, to: &str) {
    let p = project.join("configs/parameters.yaml");
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(text.contains(from), "{from} not in parameters.yaml");
    std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
}
