//! The module graph, checked: every `crate::` reference in a top-level module's code
//! (its tests aside) points to a module of a lower layer, so dependencies point one way
//! and there is no circle. A new module must be given its layer here; an edge that goes
//! up or sideways fails with the file that makes it.

use std::collections::BTreeMap;
use std::path::Path;

/// Each top-level module and its layer: a module may use only modules of lower layers.
const LAYERS: &[(&str, u32)] = &[
    ("domain", 1),
    ("secrets", 0),
    ("shutdown", 0),
    ("store", 2),
    ("dkim", 2),
    ("bounce", 2),
    ("delivery", 2),
    ("verp", 2),
    ("report", 2),
    ("config", 3),
    ("operators", 3),
    ("apikey", 3),
    ("audit", 3),
    ("compose", 4),
    ("dns", 4),
    ("logging", 4),
    ("webhooks", 4),
    ("checks", 5),
    ("queue", 5),
    ("services", 9),
    ("retention", 6),
    ("flow", 7),
    ("timeline", 7),
    ("metrics", 7),
    ("intake", 8),
    ("inbound", 10),
    ("web", 10),
    ("control", 10),
    ("app", 11),
    ("cli", 12),
];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The names `text` reaches as `crate::NAME`, outside its `#[cfg(test)]` part.
fn crate_references(text: &str) -> Vec<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    code.match_indices("crate::")
        .map(|(at, _)| {
            code[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

#[test]
fn every_module_depends_only_on_lower_layers() {
    let layers: BTreeMap<&str, u32> = LAYERS.iter().copied().collect();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    let mut edges = 0;
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let Some(&from) = layers.get(top.as_str()) else {
            wrong.push(format!("{top} ({}) has no layer in LAYERS", rel.display()));
            continue;
        };
        for to in crate_references(&std::fs::read_to_string(file).unwrap()) {
            if to == top {
                continue;
            }
            edges += 1;
            match layers.get(to.as_str()) {
                Some(&l) if l < from => {}
                Some(&l) => wrong.push(format!(
                    "{} uses crate::{to} (layer {l}) from {top} (layer {from})",
                    rel.display()
                )),
                None => wrong.push(format!("{} uses unknown crate::{to}", rel.display())),
            }
        }
    }
    println!(
        "{} files, {edges} cross-module references, {} wrong",
        files.len(),
        wrong.len()
    );
    assert!(
        edges > 100,
        "the scan found too few references to mean anything"
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
