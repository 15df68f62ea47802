//! Helpers shared by the integration tests: a temporary project folder holding a copy of the
//! shipped configuration, whose relative output paths (`./out/`, `./validate`) land inside it
//! when pixal runs there; and the real photos of `../shared/fixtures/real`, which tests skip
//! where they are absent unless `PIXAL_REQUIRE_FIXTURES` says they must be there (CI).

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// A temp folder with `configs/parameters.yaml` and `configs/paths.yaml` copied from the repo,
/// set up for the stage tests' tiny generated images: alignment off (a 40x30 rectangle has too
/// little texture to align; alignment has its own tests), the original's two channels, and
/// quality gates that accept a handful of images. [`shipped_project`] keeps the shipped file.
pub fn temp_project() -> tempfile::TempDir {
    let dir = shipped_project();
    edit_params(
        dir.path(),
        "apply_alignment: True",
        "apply_alignment: False",
    );
    edit_params(
        dir.path(),
        "channels: [\"LAB_L\", \"LAB_a\", \"LAB_b\"]",
        "channels: [\"LAB_a\", \"LAB_b\"]",
    );
    edit_params(
        dir.path(),
        "weights: [3.0, 3.0, 3.0]",
        "weights: [3.0, 3.0]",
    );
    dir
}

/// A temp folder with the shipped configuration, unchanged but for quality gates that accept a
/// handful of images.
pub fn shipped_project() -> tempfile::TempDir {
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
    // The tests use a handful of tiny images; the minimum image counts are tested on their own
    // (they set the shipped values back with `strict_gates`).
    edit_params(dir.path(), "min_images: 5", "min_images: 1");
    edit_params(
        dir.path(),
        "min_image_fraction: 0.5",
        "min_image_fraction: 0.0",
    );
    dir
}

/// Restores the shipped quality gates (5 images, half of the type) in a temp project.
pub fn strict_gates(project: &Path) {
    edit_params(project, "min_images: 1", "min_images: 5");
    edit_params(
        project,
        "min_image_fraction: 0.0",
        "min_image_fraction: 0.5",
    );
}

/// Replaces the first `from` in the project's parameters.yaml by `to`; `from` must be there,
/// unless the file already says `to` (a setting the shipped file already has).
pub fn edit_params(project: &Path, from: &str, to: &str) {
    let p = project.join("configs/parameters.yaml");
    let text = std::fs::read_to_string(&p).unwrap();
    if !text.contains(from) && text.contains(to) {
        return;
    }
    assert!(text.contains(from), "{from} not in parameters.yaml");
    std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
}

/// The folder of the real photos: the folder in `PIXAL_REAL_FIXTURES` (a copy elsewhere; a
/// missing folder there shows what CI would do when the shared fixtures are gone), else
/// `fixtures/real` of the shared folder: `$PIXAL_SHARED` (set by `.ci/run` where it finds one),
/// else `../shared` beside the crate.
pub fn real_fixtures_dir() -> PathBuf {
    match std::env::var_os("PIXAL_REAL_FIXTURES") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => match std::env::var_os("PIXAL_SHARED") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("fixtures/real"),
            _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/real"),
        },
    }
}

/// Whether missing fixtures fail the tests: `PIXAL_REQUIRE_FIXTURES` set to anything but empty
/// or `0`. `.ci/run` sets it to 1, so the README's claims that rest on the real photo (IoU,
/// sub-pixel alignment, PIL's pixels) cannot pass there by skipping.
pub fn fixtures_required() -> bool {
    std::env::var("PIXAL_REQUIRE_FIXTURES").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The real photo `name`, or `None` (with a note on stderr) when it is missing: the caller
/// skips its test. Where [`fixtures_required`], a missing photo fails the test instead, naming
/// the path.
pub fn real_fixture(name: &str) -> Option<PathBuf> {
    let p = real_fixtures_dir().join(name);
    if p.is_file() {
        return Some(p);
    }
    assert!(
        !fixtures_required(),
        "fixture {} is missing and PIXAL_REQUIRE_FIXTURES is set: put the shared fixtures beside \
         the crate (../shared/fixtures/real) or unset PIXAL_REQUIRE_FIXTURES to skip",
        p.display()
    );
    eprintln!("skipped: fixture {} not present", p.display());
    None
}

/// The pixal binary under test, never downloading a rembg model (method auto would fetch u2net
/// on first use).
pub fn pixal_command() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_pixal"));
    c.env("PIXAL_NO_DOWNLOAD", "1");
    c
}

/// Runs pixal in `dir` with `args`: (exit code, stdout, stderr); -1 when killed by a signal.
pub fn run_pixal(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = pixal_command()
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
