//! No module of a crate imports, directly or through others, a module that imports it back.
//!
//! A cycle between modules makes each one impossible to read, test or move without the
//! other (issue 20). This walks every crate under `engine/`, the test fixtures and support
//! crates and the Rust plugins, takes a module's dependencies from the paths it names (in
//! `use` lines, in code and in doc links; test items excluded) and fails naming each group
//! of modules that import each other. A path counts as an edge when it names another module
//! of the crate: `crate::a::b`, `super::item` (the parent, unless that is the crate root,
//! which `crate::item` does not count either), `self::child::x` and a bare `child::x`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module's path inside its crate (`["validate", "structure"]`; empty for the root).
type Module = Vec<String>;

struct Crate {
    name: String,
    /// Each module with its file (`x/mod.rs` and `x.rs` are both module `x`).
    modules: BTreeMap<Module, PathBuf>,
}

/// The crates checked: `(name, source directory)` for each crate under `engine/`, the test
/// fixtures and support crates and each plugin's Rust crate.
fn crate_dirs(root: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for (parent, src) in [("engine", "src"), ("plugins", "rust/src")] {
        let mut dirs: Vec<_> = std::fs::read_dir(root.join(parent))
            .unwrap_or_else(|e| panic!("{parent}/ is readable: {e}"))
            .map(|e| e.unwrap().path())
            .collect();
        dirs.sort();
        for dir in dirs {
            if dir.join(src).is_dir() {
                let name = dir.file_name().unwrap().to_string_lossy();
                out.push((format!("{parent}/{name}"), dir.join(src)));
            }
        }
    }
    out.push(("tests/fixtures".into(), root.join("tests/fixtures/src")));
    out.push(("tests".into(), root.join("tests/support")));
    out
}

fn crates(root: &Path) -> Vec<Crate> {
    crate_dirs(root)
        .into_iter()
        .map(|(name, src)| {
            let mut modules = BTreeMap::new();
            collect(&src, &src, &mut modules);
            Crate { name, modules }
        })
        .collect()
}

fn collect(src: &Path, dir: &Path, modules: &mut BTreeMap<Module, PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(src, &path, modules);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(src).unwrap().with_extension("");
            let mut module: Module = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(
                module.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                module.pop();
            }
            modules.insert(module, path);
        }
    }
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_'
}

/// Every path starting at `at`, with `{a, b::c}` groups expanded:
/// `crate::validate::{structure, ValidationError}` is two paths. Segments are lowercase
/// identifiers; a path ends at the first segment that is not (a type, a macro, `*`).
/// Returns where the path's text ends (after a group's `}`).
fn paths_at(text: &[u8], mut at: usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    let mut path = prefix;
    loop {
        if text.get(at) == Some(&b'{') {
            at += 1;
            loop {
                while text.get(at).is_some_and(|c| c.is_ascii_whitespace()) {
                    at += 1;
                }
                paths_at(text, at, path.clone(), out);
                // Skip to this item's end: the next `,` or `}` at this depth.
                let mut depth = 0;
                while let Some(&c) = text.get(at) {
                    match c {
                        b'{' => depth += 1,
                        b'}' if depth == 0 => break,
                        b'}' => depth -= 1,
                        b',' if depth == 0 => break,
                        _ => {}
                    }
                    at += 1;
                }
                match text.get(at) {
                    Some(b',') => at += 1,
                    Some(_) => return at + 1,
                    None => return at,
                }
            }
        }
        let start = at;
        while text.get(at).copied().is_some_and(is_ident) {
            at += 1;
        }
        if at == start || !text[start].is_ascii_lowercase() && text[start] != b'_' {
            break;
        }
        path.push(String::from_utf8_lossy(&text[start..at]).into_owned());
        if text.get(at..at + 2) == Some(b"::") {
            at += 2;
        } else {
            break;
        }
    }
    if !path.is_empty() {
        out.push(path);
    }
    at
}

/// Every path in `text` that has at least two segments (`a::b`, `a::{b, c}`, `a::*`), each
/// taken once: a path starts at a lowercase identifier that follows no identifier and no
/// `::`. A turbofish (`collect::<T>`) is not a path.
fn references(text: &str) -> Vec<Vec<String>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let starts = (bytes[at].is_ascii_lowercase() || bytes[at] == b'_')
            && (at == 0 || !is_ident(bytes[at - 1]) && bytes[at - 1] != b':');
        if !starts {
            at += 1;
            continue;
        }
        let mut end = at;
        while bytes.get(end).copied().is_some_and(is_ident) {
            end += 1;
        }
        let is_path = bytes.get(end..end + 2) == Some(b"::") && bytes.get(end + 2) != Some(&b'<');
        at = if is_path {
            paths_at(bytes, at, Vec::new(), &mut out)
        } else {
            end
        };
    }
    out
}

/// Where `path`, named in `this`, points: its absolute form and the shortest module it may
/// name. `crate::` paths never name the root; `super::` (any number) starts at the parent,
/// which counts unless it is the root; `self::` and bare paths start at `this` and name
/// only its children (a bare `serde::x` names a child only if one is called `serde`).
fn resolve(this: &Module, path: &[String]) -> (Vec<String>, usize) {
    match path[0].as_str() {
        "crate" => (path[1..].to_vec(), 1),
        "super" => {
            let up = path.iter().take_while(|s| *s == "super").count();
            let base = &this[..this.len().saturating_sub(up)];
            let full = base.iter().chain(&path[up..]).cloned().collect();
            (full, base.len().max(1))
        }
        "self" => (
            this.iter().chain(&path[1..]).cloned().collect(),
            this.len() + 1,
        ),
        _ => (this.iter().chain(path).cloned().collect(), this.len() + 1),
    }
}

/// The longest prefix of `path`, at least `shortest` segments long, that names a module
/// other than `this`.
fn target(
    modules: &BTreeMap<Module, PathBuf>,
    path: &[String],
    this: &Module,
    shortest: usize,
) -> Option<Module> {
    (shortest.max(1)..=path.len())
        .rev()
        .map(|k| path[..k].to_vec())
        .find(|m| modules.contains_key(m) && m != this)
}

/// The end of the item that starts at `at`: after its first `;` or its `{ ... }` block,
/// whichever comes first. Braces in string and character literals are skipped.
fn item_end(text: &[u8], mut at: usize) -> usize {
    let mut depth = 0usize;
    while let Some(&c) = text.get(at) {
        match c {
            b'"' => {
                at += 1;
                while let Some(&c) = text.get(at) {
                    match c {
                        b'\\' => at += 1,
                        b'"' => break,
                        _ => {}
                    }
                    at += 1;
                }
            }
            b'\'' if text.get(at + 2) == Some(&b'\'') => at += 2,
            b';' if depth == 0 => return at + 1,
            b'{' => depth += 1,
            b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return at + 1;
                }
            }
            _ => {}
        }
        at += 1;
    }
    at
}

/// `text` without its `#[cfg(test)]` items (a test module, a test-only import or helper):
/// they may use anything of their parent. The code after them still counts.
fn without_test_items(text: &str) -> String {
    const MARK: &str = "#[cfg(test)]";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(found) = rest.find(MARK) {
        out.push_str(&rest[..found]);
        let end = item_end(rest.as_bytes(), found + MARK.len());
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn edges(krate: &Crate) -> BTreeMap<Module, BTreeSet<Module>> {
    let mut edges = BTreeMap::new();
    for (module, file) in &krate.modules {
        let text = without_test_items(&std::fs::read_to_string(file).unwrap());
        let to = references(&text)
            .iter()
            .filter_map(|path| {
                let (full, shortest) = resolve(module, path);
                target(&krate.modules, &full, module, shortest)
            })
            .collect();
        edges.insert(module.clone(), to);
    }
    edges
}

/// Groups of two or more modules that reach each other (strongly connected components).
fn cycles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<BTreeSet<Module>> {
    let reach = |from: &Module| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.clone()];
        while let Some(m) = stack.pop() {
            for next in &edges[&m] {
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<&Module, BTreeSet<Module>> =
        edges.keys().map(|m| (m, reach(m))).collect();
    let mut groups: Vec<BTreeSet<Module>> = Vec::new();
    for m in edges.keys() {
        if groups.iter().any(|g| g.contains(m)) {
            continue;
        }
        let group: BTreeSet<Module> = reachable[m]
            .iter()
            .filter(|other| *other != m && reachable[*other].contains(m))
            .cloned()
            .chain([m.clone()])
            .collect();
        if group.len() > 1 {
            groups.push(group);
        }
    }
    groups
}

fn name(module: &Module) -> String {
    if module.is_empty() {
        "lib".to_owned()
    } else {
        module.join("::")
    }
}

/// Cycles known and not yet broken: none. A cycle listed here passes while it exists (the
/// test fails once it is gone, so the line goes with it); a new one fails at once.
const KNOWN: &[&str] = &[];

#[test]
fn no_module_of_a_crate_imports_a_module_that_imports_it_back() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut found = Vec::new();
    let mut groups = BTreeSet::new();
    for krate in crates(&root) {
        assert!(
            !krate.modules.is_empty(),
            "no modules found in {}",
            krate.name
        );
        let edges = edges(&krate);
        for group in cycles(&edges) {
            let names: Vec<String> = group.iter().map(name).collect();
            let line = format!("{}: {{{}}}", krate.name, names.join(", "));
            groups.insert(line.clone());
            if KNOWN.contains(&line.as_str()) {
                continue;
            }
            found.push(line);
            for from in &group {
                for to in edges[from].intersection(&group) {
                    found.push(format!("    {} -> {}", name(from), name(to)));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "module import cycles (break each by moving what both sides need into a module of \
         its own):\n{}",
        found.join("\n")
    );
    let gone: Vec<&str> = KNOWN
        .iter()
        .copied()
        .filter(|k| !groups.contains(*k))
        .collect();
    assert!(
        gone.is_empty(),
        "known cycles no longer found (delete them from KNOWN):\n{}",
        gone.join("\n")
    );
}

#[test]
fn the_check_sees_a_cycle_through_a_group_import_and_one_through_super() {
    let edges = edges_of(
        "fixture",
        &[
            ("lib.rs", "mod a; mod b; mod c;"),
            ("a.rs", "use crate::{b::{Thing, other}, c};"),
            (
                "b/mod.rs",
                "//! Doc.\nuse super::a::run;\n#[cfg(test)]\nmod tests { use crate::c; }",
            ),
            ("c.rs", "fn f() { crate::d::g(); }"),
        ],
    );
    assert_eq!(
        edges[&module("a")],
        BTreeSet::from([module("b"), module("c")])
    );
    assert_eq!(
        edges[&module("b")],
        BTreeSet::from([module("a")]),
        "the test module's import is not counted"
    );
    assert!(edges[&module("c")].is_empty(), "no module d");
    assert_eq!(
        cycles(&edges),
        vec![BTreeSet::from([module("a"), module("b")])]
    );
}

fn module(s: &str) -> Module {
    s.split("::")
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The edges of a crate made of `files` (`(path under src, text)`), written to a scratch
/// directory named `case`.
fn edges_of(case: &str, files: &[(&str, &str)]) -> BTreeMap<Module, BTreeSet<Module>> {
    let dir = std::env::temp_dir().join(format!("module-cycles-{}-{case}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for (file, text) in files {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
    }
    let mut modules = BTreeMap::new();
    collect(&dir, &dir, &mut modules);
    let edges = edges(&Crate {
        name: case.into(),
        modules,
    });
    std::fs::remove_dir_all(&dir).unwrap();
    edges
}

#[test]
fn references_expand_groups_and_skip_turbofish_and_method_calls() {
    let paths =
        |text: &str| -> Vec<String> { references(text).iter().map(|p| p.join("::")).collect() };
    assert_eq!(
        paths("use crate::{b::{Thing, other}, c}; x.collect::<Vec<_>>(); std::mem::take(v)"),
        ["crate::b", "crate::b::other", "crate::c", "std::mem::take"]
    );
    assert_eq!(
        paths("use child::*; self::a::b(); super::super::x"),
        ["child", "self::a::b", "super::super::x"]
    );
}

#[test]
fn test_items_are_skipped_and_the_code_after_them_counts() {
    let text = "use a::x;\n#[cfg(test)]\nmod tests { fn f() { let s = \"}\"; let c = '{'; } }\n\
                use b::y;\n#[cfg(test)]\nuse c::z;\nfn g() {}";
    assert_eq!(
        without_test_items(text),
        "use a::x;\n\nuse b::y;\n\nfn g() {}"
    );
}

#[test]
fn a_parent_naming_its_child_by_a_bare_or_self_path_is_an_edge() {
    let edges = edges_of(
        "children",
        &[
            ("lib.rs", "mod a;"),
            (
                "a/mod.rs",
                "mod child; mod other;\nuse child::x;\nfn f() { self::other::g(); serde::h(); }",
            ),
            ("a/child.rs", ""),
            ("a/other.rs", ""),
        ],
    );
    assert_eq!(
        edges[&module("a")],
        BTreeSet::from([module("a::child"), module("a::other")])
    );
}

#[test]
fn a_child_naming_its_parent_through_super_is_an_edge_unless_the_parent_is_the_root() {
    let edges = edges_of(
        "parents",
        &[
            ("lib.rs", "mod a; mod b;"),
            ("a/mod.rs", "mod child;"),
            ("a/child.rs", "use super::helper;"),
            ("b.rs", "use super::helper;"),
        ],
    );
    assert_eq!(edges[&module("a::child")], BTreeSet::from([module("a")]));
    assert!(edges[&module("b")].is_empty(), "the root is not counted");
}

#[test]
fn a_parent_using_its_child_which_uses_the_parent_is_a_cycle() {
    let edges = edges_of(
        "loop",
        &[
            ("lib.rs", "mod a;"),
            (
                "a/mod.rs",
                "mod child;\npub use child::Thing;\nfn helper() {}",
            ),
            ("a/child.rs", "use super::helper;\npub struct Thing;"),
        ],
    );
    assert_eq!(
        cycles(&edges),
        vec![BTreeSet::from([module("a"), module("a::child")])]
    );
}
