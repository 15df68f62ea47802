//! The crate's layers import one way (README, "Code layout"):
//!
//! ```text
//! commands -> (detect, model, report) -> preprocess -> (config, io) -> types
//! ```
//!
//! This test reads the sources and fails, naming the file, the line and the rule, when a module
//! imports from a layer above it. Comments are ignored (a doc link may point anywhere).

use std::path::{Path, PathBuf};

/// The crate's top-level modules, from `src/lib.rs`.
fn top_modules() -> Vec<String> {
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).unwrap();
    lib.lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';').trim().to_string())
        .collect()
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file below `dir`, or `dir` itself when it is a file.
fn sources(dir: &Path) -> Vec<PathBuf> {
    if dir.is_file() {
        return vec![dir.to_path_buf()];
    }
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The top-level modules `text` names through `crate::`, with their 1-based lines: `crate::x`
/// and every name of a `crate::{x, y::z}` group (which may span lines). Comments are dropped
/// first.
fn crate_imports(text: &str) -> Vec<(usize, String)> {
    let code: Vec<&str> = text
        .lines()
        .map(|l| l.find("//").map_or(l, |i| &l[..i]))
        .collect();
    let joined = code.join("\n");
    let line_of = |offset: usize| joined[..offset].matches('\n').count() + 1;
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = joined[from..].find("crate::") {
        let at = from + i;
        from = at + "crate::".len();
        // `pixal_crate::` or `mycrate::` are other paths.
        if joined[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
        {
            continue;
        }
        let rest = &joined[from..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            // Top-level names of the group: the first segment of each comma-separated path
            // (nested braces belong to a name already taken).
            let mut depth = 0;
            let mut start = true;
            for (k, c) in group[..end].char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && (c.is_alphanumeric() || c == '_') => {
                        let name: String = group[k..]
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        out.push((line_of(from + 1 + k), name));
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.push((line_of(at), name));
        }
    }
    out
}

/// Each rule: the sources it covers and the top-level modules they must not import.
fn rules() -> Vec<(&'static str, Vec<String>, &'static str)> {
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let everything_but_types: Vec<String> =
        top_modules().into_iter().filter(|m| m != "types").collect();
    let above_config = strings(&[
        "preprocess",
        "detect",
        "model",
        "report",
        "commands",
        "demo",
        "cli",
    ]);
    let mut above_io = above_config.clone();
    // The stage files are typed with `types`, never with the configuration's structs.
    above_io.push("config".into());
    let above_preprocess = strings(&[
        "config", "detect", "model", "report", "commands", "demo", "cli",
    ]);
    let commands_only = strings(&["commands", "cli"]);
    vec![
        (
            "src/types",
            everything_but_types,
            "types is the bottom layer: it imports nothing of pixal",
        ),
        (
            "src/config",
            above_config,
            "config reads settings into types; the stages depend on it, not the reverse",
        ),
        (
            "src/io",
            above_io,
            "io (files and stage contracts) sits below the stages and beside config",
        ),
        (
            "src/preprocess",
            above_preprocess,
            "preprocess is pure: plain settings in (built by commands), no stage above it",
        ),
        (
            "src/detect",
            commands_only.clone(),
            "detect is a core; only commands knows folders and runs",
        ),
        (
            "src/model",
            commands_only.clone(),
            "model is a core; only commands knows folders and runs",
        ),
        (
            "src/report",
            commands_only,
            "report draws data; only commands knows folders and runs",
        ),
    ]
}

#[test]
fn layers_import_one_way() {
    let mut broken = Vec::new();
    for (dir, forbidden, why) in rules() {
        for file in sources(&root().join(dir)) {
            let text = std::fs::read_to_string(&file).unwrap();
            for (line, name) in crate_imports(&text) {
                if forbidden.contains(&name) {
                    let rel = file.strip_prefix(root()).unwrap_or(&file);
                    broken.push(format!(
                        "{}:{line}: imports crate::{name} ({why})",
                        rel.display()
                    ));
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "imports against the layering:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_scanner_sees_paths_groups_and_skips_comments() {
    let text = "use crate::types::Channel;\n\
                // use crate::commands::x;\n\
                /// [`crate::detect`]\n\
                use crate::{\n    io::IoError,\n    preprocess::{crop, align::X},\n};\n\
                let v = crate::model::f(); // crate::report\n\
                use mycrate::demo;\n";
    let found = crate_imports(text);
    assert_eq!(
        found,
        vec![
            (1, "types".to_string()),
            (5, "io".to_string()),
            (6, "preprocess".to_string()),
            (8, "model".to_string()),
        ]
    );
    // Every rule names real modules, so a renamed module cannot silently pass.
    let modules = top_modules();
    for (dir, forbidden, _) in rules() {
        assert!(root().join(dir).exists(), "{dir}");
        for m in forbidden {
            assert!(modules.contains(&m), "{dir}: no module {m}");
        }
    }
}
