//! YAML helpers shared by both config files: parsing into a generic tree (anchors, aliases and
//! `<<` merge keys resolved by serde-saphyr) and finding the line of a key path in the text, so
//! errors can point at the line a user must edit.

use std::path::Path;

use serde_json::Value;

use super::ConfigError;

/// Parses YAML text into a generic tree.
pub(crate) fn parse(text: &str, path: &Path) -> Result<Value, ConfigError> {
    if text.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    serde_saphyr::from_str::<Value>(text).map_err(|e| ConfigError::Yaml {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Finds the 1-based line of a dotted key path in block-style YAML. Each key must appear below
/// its parent, more indented, before the parent's block ends. Returns `None` when the key cannot
/// be found this way (flow style, keys coming from a merge), which only costs the message its
/// line number.
pub(crate) fn find_key_line(text: &str, key_path: &[&str]) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut start = 0usize;
    let mut parent_indent: Option<usize> = None;
    let mut found = None;
    for key in key_path {
        let mut hit = None;
        for (i, line) in lines.iter().enumerate().skip(start) {
            let content = line.trim_start();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            let indent = line.len() - content.len();
            if let Some(p) = parent_indent
                && indent <= p
            {
                break;
            }
            if key_matches(content, key) {
                hit = Some((i, indent));
                break;
            }
        }
        let (i, indent) = hit?;
        found = Some(i + 1);
        start = i + 1;
        parent_indent = Some(indent);
    }
    found
}

fn key_matches(content: &str, key: &str) -> bool {
    let content = content.strip_prefix("- ").unwrap_or(content);
    for quoted in [key.to_string(), format!("\"{key}\""), format!("'{key}'")] {
        if let Some(rest) = content.strip_prefix(&quoted)
            && rest.trim_start().starts_with(':')
        {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_key_lines() {
        let text = "a: 1\nb:\n  # c: 0\n  c: 2\n  d:\n    c: 3\ne:\n  c: 4\n";
        assert_eq!(find_key_line(text, &["a"]), Some(1));
        assert_eq!(find_key_line(text, &["b", "c"]), Some(4));
        assert_eq!(find_key_line(text, &["b", "d", "c"]), Some(6));
        assert_eq!(find_key_line(text, &["e", "c"]), Some(8));
        assert_eq!(find_key_line(text, &["b", "x"]), None);
    }

    #[test]
    fn aliases_and_merge_keys_resolve() {
        let text = "base: &b\n  x: 1\n  y: 2\nother:\n  <<: *b\n  y: 3\nref: *b\n";
        let v = parse(text, Path::new("t.yaml")).unwrap();
        assert_eq!(v["other"]["x"], 1);
        assert_eq!(v["other"]["y"], 3);
        assert_eq!(v["ref"]["y"], 2);
    }
}
