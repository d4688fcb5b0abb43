//! The shape of the code (issue 28): no import loop between modules of any crate.
//! A module reaching into another one is an edge between the two siblings under
//! their nearest common parent (`exec::pool::snapshot` using `exec::scenario` is an
//! edge `exec::pool` → `exec::scenario`); a child using its parent's items is not an
//! edge. Paths are read from `crate::` and `super::` references in product code:
//! every item under `#[cfg(test)]` (an inline module, a function, a module in a file
//! of its own) and `tests.rs` files are left out. Not seen: an item reached through a
//! re-export (the edge goes to the module that re-exports it), and `super::` inside
//! an inline module (read as the file's).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs")
            && p.file_name().is_some_and(|n| n != "tests.rs")
        {
            out.push(p);
        }
    }
}

/// `src/exec/pool/mod.rs` → `exec::pool`; `src/lib.rs` → the crate root.
fn module_of(src: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(src).unwrap_or(file).with_extension("");
    let mut parts: Module = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts
        .last()
        .is_some_and(|l| l == "mod" || l == "lib" || l == "main")
    {
        parts.pop();
    }
    parts
}

/// The text without the items under `#[cfg(test)]` and without line comments; the
/// names of the modules so declared in files of their own (`#[cfg(test)] mod fake;`).
/// An item ends at its line ending in `;`, or at the line closing its body: `}` at
/// the attribute's indentation, as rustfmt (which CI runs) writes it, so that braces
/// and `//` inside strings cannot shift the end.
fn product_code(text: &str) -> (String, Vec<String>) {
    let lines: Vec<&str> = text.lines().collect();
    let (mut kept, mut test_files, mut i) = (Vec::new(), Vec::new(), 0);
    while i < lines.len() {
        let line = lines[i];
        if line.trim() != "#[cfg(test)]" {
            kept.push(line.split("//").next().unwrap_or_default());
            i += 1;
            continue;
        }
        let indent = &line[..line.len() - line.trim_start().len()];
        let closing = format!("{indent}}}");
        i += 1;
        // Further attributes of the same item.
        while i < lines.len() && lines[i].trim_start().starts_with("#[") {
            i += 1;
        }
        while i < lines.len() {
            let t = lines[i].trim_end();
            i += 1;
            if t.ends_with(';') {
                let decl = t.trim().trim_end_matches(';');
                let name = decl.rsplit("mod ").next().filter(|_| decl.contains("mod "));
                test_files.extend(name.map(|n| n.trim().to_owned()));
                break;
            }
            if t.ends_with('}') && t.contains('{') {
                break;
            }
            if t.ends_with('{') {
                while i < lines.len() && lines[i].trim_end() != closing {
                    i += 1;
                }
                i += 1;
                break;
            }
        }
    }
    (kept.join("\n"), test_files)
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every path a reference in `code` names, as written: `crate::a::b`, `super::c`,
/// and each item of a group (`crate::a::{b, c::d}` names `a::b` and `a::c::d`).
fn references(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < code.len() {
        let at_start = i == 0 || !is_ident(bytes[i - 1] as char);
        let rest = &code[i..];
        if at_start && (rest.starts_with("crate::") || rest.starts_with("super::")) {
            let (path, used) = path_at(rest);
            i += used.max(1);
            if let Some(group) = rest[used..].strip_prefix("::{") {
                expand(&path, &group[..group_end(group)], &mut out);
            }
            out.push(path);
        } else {
            i += rest.chars().next().map_or(1, char::len_utf8);
        }
    }
    out
}

/// The paths the items of a `{...}` group after `prefix` name, nested groups too.
fn expand(prefix: &[String], group: &str, out: &mut Vec<Vec<String>>) {
    for item in split_top(group) {
        let item = item.trim();
        let (tail, used) = path_at(item);
        let mut full = prefix.to_vec();
        full.extend(tail);
        if let Some(inner) = item[used..].strip_prefix("::{") {
            expand(&full, &inner[..group_end(inner)], out);
        }
        out.push(full);
    }
}

/// The `::`-separated identifiers at the start of `text`, and the bytes they take.
fn path_at(text: &str) -> (Vec<String>, usize) {
    let mut parts = Vec::new();
    let mut used = 0;
    loop {
        let ident: String = text[used..].chars().take_while(|&c| is_ident(c)).collect();
        if ident.is_empty() {
            break;
        }
        used += ident.len();
        parts.push(ident);
        if text[used..].starts_with("::") && text[used + 2..].starts_with(is_ident) {
            used += 2;
        } else {
            break;
        }
    }
    (parts, used)
}

fn group_end(group: &str) -> usize {
    let mut depth = 0;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return i,
            '}' => depth -= 1,
            _ => {}
        }
    }
    group.len()
}

fn split_top(group: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&group[start..]);
    parts
}

/// The module `path` (written in `from`) resolves to: its longest prefix that is a
/// module of the crate.
fn resolve(from: &Module, path: &[String], modules: &BTreeSet<Module>) -> Option<Module> {
    let (mut base, mut rest) = match path.first().map(String::as_str) {
        Some("crate") => (Vec::new(), &path[1..]),
        Some("super") => (from[..from.len().saturating_sub(1)].to_vec(), &path[1..]),
        _ => return None,
    };
    while rest.first().is_some_and(|s| s == "super") {
        base.pop();
        rest = &rest[1..];
    }
    let mut full = base;
    full.extend(rest.iter().cloned());
    while !full.is_empty() && !modules.contains(&full) {
        full.pop();
    }
    (!full.is_empty()).then_some(full)
}

/// The cycles of `edges` (strongly connected components of more than one module).
fn cycles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct Tarjan<'a> {
        edges: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<Module, usize>,
        low: BTreeMap<Module, usize>,
        stack: Vec<Module>,
        on: BTreeSet<Module>,
        found: Vec<Vec<Module>>,
    }
    impl Tarjan<'_> {
        fn visit(&mut self, v: &Module) {
            let n = self.index.len();
            self.index.insert(v.clone(), n);
            self.low.insert(v.clone(), n);
            self.stack.push(v.clone());
            self.on.insert(v.clone());
            for w in self.edges.get(v).into_iter().flatten() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low[v].min(lw);
                    self.low.insert(v.clone(), lv);
                } else if self.on.contains(w) {
                    let lv = self.low[v].min(self.index[w]);
                    self.low.insert(v.clone(), lv);
                }
            }
            if self.low[v] == self.index[v] {
                let mut part = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on.remove(&w);
                    let done = &w == v;
                    part.push(w);
                    if done {
                        break;
                    }
                }
                if part.len() > 1 {
                    self.found.push(part);
                }
            }
        }
    }
    let mut t = Tarjan {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !t.index.contains_key(v) {
            t.visit(v);
        }
    }
    t.found
}

/// The import loops of the crate whose sources are in `src`, each with one reference
/// per edge that makes it.
fn loops(src: &Path) -> Vec<String> {
    let mut all = Vec::new();
    files(src, &mut all);
    let mut code = BTreeMap::new();
    let mut test_only: BTreeSet<Module> = BTreeSet::new();
    for file in &all {
        let from = module_of(src, file);
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{e}"));
        let (product, test_files) = product_code(&text);
        for name in test_files {
            let mut m = from.clone();
            m.push(name);
            test_only.insert(m);
        }
        code.insert(file.clone(), (from, product));
    }
    // A module only tests compile is left out, with everything under it.
    code.retain(|_, (m, _)| !test_only.iter().any(|t| m.starts_with(t)));
    let modules: BTreeSet<Module> = code.values().map(|(m, _)| m.clone()).collect();
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    let mut why: BTreeMap<(Module, Module), String> = BTreeMap::new();
    for (file, (from, product)) in &code {
        let from = from.clone();
        for path in references(product) {
            let Some(to) = resolve(&from, &path, &modules) else {
                continue;
            };
            let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            if common >= from.len() || common >= to.len() {
                // The module itself, one of its children, or one of its parents.
                continue;
            }
            let (a, b) = (from[..=common].to_vec(), to[..=common].to_vec());
            why.entry((a.clone(), b.clone()))
                .or_insert_with(|| format!("{} uses {}", file.display(), path.join("::")));
            edges.entry(a).or_default().insert(b);
        }
    }
    cycles(&edges)
        .into_iter()
        .map(|c| {
            let members: BTreeSet<&Module> = c.iter().collect();
            let names: Vec<String> = c.iter().map(|m| m.join("::")).collect();
            let shown: Vec<&String> = why
                .iter()
                .filter(|((a, b), _)| members.contains(a) && members.contains(b))
                .map(|(_, w)| w)
                .collect();
            format!("{{{}}}: {shown:#?}", names.join(", "))
        })
        .collect()
}

#[test]
fn no_module_of_any_crate_imports_one_that_imports_it_back() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut found = Vec::new();
    let mut seen = 0;
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&crates)
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
        .map(|e| e.path().join("src"))
        .filter(|src| src.is_dir())
        .collect();
    dirs.sort();
    for src in dirs {
        seen += 1;
        for l in loops(&src) {
            found.push(format!("{}: {l}", src.display()));
        }
    }
    assert!(
        seen >= 4,
        "the workspace's crates were not found under {}",
        crates.display()
    );
    assert!(found.is_empty(), "import loops:\n{}", found.join("\n"));
}

/// A temporary crate with `files` (path, text) under its `src`.
fn fixture(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for (path, text) in files {
        let p = dir.path().join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(p, text).unwrap_or_else(|e| panic!("{e}"));
    }
    dir
}

#[test]
fn a_loop_through_a_child_module_is_one_between_its_parent_and_the_other() {
    // `a::inner` using `b` makes `a` -> `b`; `b` using `a` closes the loop. A child
    // using its parent (`super::A`) is no edge, nor a comment.
    let dir = fixture(&[
        ("lib.rs", "mod a;\nmod b;\n"),
        ("a/mod.rs", "mod inner;\npub struct A;\n"),
        (
            "a/inner.rs",
            "use super::A;\nuse crate::b::B; // crate::c\n",
        ),
        ("b.rs", "use crate::a::A;\npub struct B;\n"),
    ]);
    let found = loops(dir.path());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("{a, b}") || found[0].starts_with("{b, a}"),
        "{found:?}"
    );
}

#[test]
fn a_loop_is_found_through_a_nested_group() {
    // Only the nested group's item names `a::inner` from its sibling `a::x`.
    let dir = fixture(&[
        ("lib.rs", "mod a;\n"),
        ("a/mod.rs", "mod inner;\nmod x;\n"),
        ("a/inner.rs", "use super::x::X;\npub struct I;\n"),
        ("a/x.rs", "use crate::{a::{inner::I}};\npub struct X;\n"),
    ]);
    let found = loops(dir.path());
    assert_eq!(found.len(), 1, "{found:?}");
}

#[test]
fn test_code_is_no_edge_and_what_follows_it_is_read() {
    let b = "#[cfg(test)]\nfn t() {\n    let _ = \"{ http://x\";\n    let _ = crate::a::A;\n}\n\nuse crate::a::A;\n";
    let loop_after_test_fn = fixture(&[
        ("lib.rs", "mod a;\nmod b;\n"),
        ("a.rs", "use crate::b::B;\npub struct A;\n"),
        ("b.rs", b),
    ]);
    // The `use` after a test function (whose string holds a brace) is product code.
    assert_eq!(loops(loop_after_test_fn.path()).len(), 1);
    let test_only = fixture(&[
        ("lib.rs", "mod a;\nmod b;\n"),
        ("a.rs", "use crate::b::B;\npub struct A;\n"),
        (
            "b.rs",
            "pub struct B;\n\n#[cfg(test)]\nmod t {\n    use crate::a;\n}\n\n#[cfg(test)]\npub(crate) mod f;\n",
        ),
        ("b/f.rs", "use crate::a::A;\n"),
    ]);
    // A test module inline, or in a file of its own, is no edge.
    assert!(
        loops(test_only.path()).is_empty(),
        "{:?}",
        loops(test_only.path())
    );
}
