//! Getting started: `pixal init`, shell completions, man pages, help texts (an example and the
//! output location in every subcommand's long help, one meaning per short flag), the hint for a
//! missing configuration, and the component index page of a validation run.

use std::collections::BTreeMap;
mod common;

use clap::CommandFactory;
use image::{Rgb, RgbImage};

use common::run_pixal as pixal;

/// A 40x30 dark image with a coloured rectangle, shifted by `dx` pixels.
fn part(dx: u32) -> RgbImage {
    RgbImage::from_fn(40, 30, |x, y| {
        if (10 + dx..30 + dx).contains(&x) && (8..20).contains(&y) {
            Rgb([200, 60 + (x * 3) as u8, 40])
        } else {
            Rgb([0, 0, 0])
        }
    })
}

#[test]
fn init_writes_configs_named_after_the_photo_folder_that_pixal_then_uses() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("R0_Flex_F1");
    for ty in ["front", "back"] {
        std::fs::create_dir_all(photos.join(ty)).unwrap();
        // Five photos: the shipped quality gate's minimum.
        for i in 0..5 {
            part(i)
                .save(photos.join(ty).join(format!("p{i}.png")))
                .unwrap();
        }
    }
    let (code, _, err) = pixal(dir.path(), &["init", "R0_Flex_F1"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("2 part type(s): back (5 photos), front (5 photos)"),
        "{err}"
    );
    let params = std::fs::read_to_string(dir.path().join("configs/parameters.yaml")).unwrap();
    let paths = std::fs::read_to_string(dir.path().join("configs/paths.yaml")).unwrap();
    assert!(params.starts_with("# Written by `pixal init` for the component \"R0_Flex_F1\""));
    for key in [
        "preprocessing.alignment.apply_alignment",
        "preprocessing.preprocessor.channels",
        "model_training.model_type",
    ] {
        assert!(params.contains(&format!("#   {key}: ")), "{key} not listed");
    }
    assert_eq!(paths.matches("component: \"R0_Flex_F1\"").count(), 2);
    // The written configuration is the one pixal uses: outputs land under the component's name.
    let (code, _, err) = pixal(dir.path(), &["make_input", "-i", "R0_Flex_F1"]);
    assert_eq!(code, 0, "{err}");
    assert!(dir.path().join("out/R0_Flex_F1/front/out.npz").is_file());
    // A second init keeps the user's files unless --force.
    std::fs::write(
        dir.path().join("configs/paths.yaml"),
        paths.replace("R0_Flex_F1", "mine"),
    )
    .unwrap();
    let (code, _, err) = pixal(dir.path(), &["init", "R0_Flex_F1"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    let kept = std::fs::read_to_string(dir.path().join("configs/paths.yaml")).unwrap();
    assert!(kept.contains("\"mine\""));
    let (code, _, err) = pixal(
        dir.path(),
        &["--config", "lab", "init", "R0_Flex_F1/", "--force"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        std::fs::read_to_string(dir.path().join("lab/paths.yaml"))
            .unwrap()
            .contains("\"R0_Flex_F1\"")
    );
    // A folder that does not exist is a usage error.
    let (code, _, err) = pixal(dir.path(), &["init", "nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("nope: photo folder does not exist"), "{err}");
}

#[test]
fn a_missing_configuration_says_how_to_create_one_once() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = pixal(dir.path(), &["make_input", "-i", "x"]);
    assert_eq!(code, 2);
    assert!(err.contains("pixal init"), "{err}");
    assert_eq!(
        err.matches("not found").count(),
        1,
        "cause printed once: {err}"
    );
    std::fs::create_dir(dir.path().join("configs")).unwrap();
    let (code, _, err) = pixal(dir.path(), &["train"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("parameters.yaml not found") && err.contains("pixal init"),
        "{err}"
    );
}

#[test]
fn completions_for_each_shell() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, want) in [
        ("bash", "_pixal()"),
        ("zsh", "#compdef pixal"),
        ("fish", "complete -c pixal"),
    ] {
        let (code, out, err) = pixal(dir.path(), &["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(out.contains(want), "{shell}");
        for sub in ["remove_bg", "validate", "init"] {
            assert!(out.contains(sub), "{shell} completes {sub}");
        }
    }
    let (code, _, _) = pixal(dir.path(), &["completions", "tcsh"]);
    assert_eq!(code, 2);
}

#[test]
fn man_pages_from_the_command_line_definitions() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = pixal(dir.path(), &["manpage"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(".TH pixal 1"), "{out}");
    assert!(out.contains("validate") && out.contains("\\-\\-config"));
    let (code, _, err) = pixal(dir.path(), &["manpage", "-o", "man"]);
    assert_eq!(code, 0, "{err}");
    let subs: Vec<String> = pixal::cli::Cli::command()
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    assert!(dir.path().join("man/pixal.1").is_file());
    for s in &subs {
        let page = std::fs::read_to_string(dir.path().join(format!("man/pixal-{s}.1"))).unwrap();
        assert!(page.contains(&format!(".TH pixal-{s} 1")), "{s}");
        assert!(page.contains("Example"), "pixal-{s}.1 shows the example");
    }
    let validate = std::fs::read_to_string(dir.path().join("man/pixal-validate.1")).unwrap();
    assert!(validate.contains("truth"));
}

#[test]
fn every_subcommand_has_an_example_and_says_where_outputs_go() {
    let dir = tempfile::tempdir().unwrap();
    for sub in pixal::cli::Cli::command().get_subcommands() {
        let name = sub.get_name().to_string();
        let (code, out, _) = pixal(dir.path(), &[&name, "--help"]);
        assert_eq!(code, 0, "{name}");
        assert!(
            out.contains("Example:\n  pixal"),
            "{name} --help has no example:\n{out}"
        );
        assert!(
            out.contains("Outputs: "),
            "{name} --help does not say where outputs go"
        );
    }
    let (_, out, _) = pixal(dir.path(), &["train", "--help"]);
    assert!(
        out.contains("<type>/out.npz") && out.contains("not a folder of images"),
        "{out}"
    );
}

#[test]
fn each_short_flag_means_one_thing_everywhere() {
    let cmd = pixal::cli::Cli::command();
    let mut meaning: BTreeMap<char, (String, String)> = BTreeMap::new();
    let mut check = |owner: &str, c: &clap::Command| {
        for a in c.get_arguments() {
            if let Some(short) = a.get_short() {
                let long = a.get_long().unwrap_or_default().to_string();
                let seen = meaning
                    .entry(short)
                    .or_insert((long.clone(), owner.to_string()));
                assert_eq!(
                    seen.0, long,
                    "-{short} is --{} in {} but --{long} in {owner}",
                    seen.0, seen.1
                );
            }
        }
    };
    check("pixal", &cmd);
    for sub in cmd.get_subcommands() {
        check(sub.get_name(), sub);
    }
    assert_eq!(meaning[&'o'].0, "output");
    assert_eq!(meaning[&'m'].0, "only-mask");
    assert_eq!(meaning[&'i'].0, "input");
}
