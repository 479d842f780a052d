//! No module of a crate imports, directly or through others, a module that imports it back.
//!
//! A cycle between modules makes each one impossible to read, test or move without the
//! other (issue 20). This walks every crate under `engine/`, takes a module's dependencies
//! from its `crate::` and `super::` paths (in `use` lines, in code and in doc links; test
//! modules excluded), and fails naming each group of modules that import each other. The
//! same rule as `/work/shared/tools/module-cycles.py`, so both tell the same story.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module's path inside its crate (`["validate", "structure"]`; empty for the root).
type Module = Vec<String>;

struct Crate {
    name: String,
    /// Each module with its file (`x/mod.rs` and `x.rs` are both module `x`).
    modules: BTreeMap<Module, PathBuf>,
}

fn crates(root: &Path) -> Vec<Crate> {
    let mut out = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(root.join("engine"))
        .expect("engine/ is readable")
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for dir in names {
        let src = dir.join("src");
        if !src.is_dir() {
            continue;
        }
        let mut modules = BTreeMap::new();
        collect(&src, &src, &mut modules);
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        out.push(Crate { name, modules });
    }
    out
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

/// Every path starting at `at` (just after `crate::` or `super::`), with `{a, b::c}` groups
/// expanded: `validate::{structure, ValidationError}` is two paths. Segments are lowercase
/// identifiers; a path ends at the first segment that is not (a type, a macro, `*`).
fn paths_at(text: &[u8], mut at: usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
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
                    _ => return,
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
}

/// The paths after each `anchor` (`crate::` or `super::`) at a word boundary in `text`.
fn references(text: &str, anchor: &str) -> Vec<Vec<String>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(found) = text[from..].find(anchor) {
        let at = from + found;
        from = at + anchor.len();
        if at > 0 && is_ident(bytes[at - 1]) {
            continue;
        }
        paths_at(bytes, from, Vec::new(), &mut out);
    }
    out
}

/// The longest prefix of `path` that names a module other than `this`.
fn target(
    modules: &BTreeMap<Module, PathBuf>,
    path: &[String],
    this: &Module,
    floor: usize,
) -> Option<Module> {
    (floor + 1..=path.len())
        .rev()
        .map(|k| path[..k].to_vec())
        .find(|m| modules.contains_key(m) && m != this)
}

fn edges(krate: &Crate) -> BTreeMap<Module, BTreeSet<Module>> {
    let mut edges = BTreeMap::new();
    for (module, file) in &krate.modules {
        let text = std::fs::read_to_string(file).unwrap();
        // Test modules may use anything of their parent; they sit at the end of a file.
        let text = text.split("#[cfg(test)]").next().unwrap_or("");
        let mut to = BTreeSet::new();
        for path in references(text, "crate::") {
            to.extend(target(&krate.modules, &path, module, 0));
        }
        // `super` is the parent module, for `x/y.rs` and `x/y/mod.rs` alike.
        let base: Module = module[..module.len().saturating_sub(1)].to_vec();
        for path in references(text, "super::") {
            let full: Vec<String> = base.iter().cloned().chain(path).collect();
            to.extend(target(&krate.modules, &full, module, base.len()));
        }
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

#[test]
fn no_module_of_a_crate_imports_a_module_that_imports_it_back() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut found = Vec::new();
    for krate in crates(&root) {
        assert!(
            !krate.modules.is_empty(),
            "no modules found in engine/{}",
            krate.name
        );
        for group in cycles(&edges(&krate)) {
            let names: Vec<String> = group.iter().map(name).collect();
            found.push(format!("{}: {{{}}}", krate.name, names.join(", ")));
        }
    }
    assert!(
        found.is_empty(),
        "module import cycles (break each by moving what both sides need into a module of \
         its own):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_sees_a_cycle_through_a_group_import_and_one_through_super() {
    let mut modules = BTreeMap::new();
    let dir = tempdir();
    let files = [
        ("lib.rs", "mod a; mod b; mod c;"),
        ("a.rs", "use crate::{b::{Thing, other}, c};"),
        (
            "b/mod.rs",
            "//! Doc.\nuse super::a::run;\n#[cfg(test)]\nmod tests { use crate::c; }",
        ),
        ("c.rs", "fn f() { crate::d::g(); }"),
    ];
    for (file, text) in files {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
    }
    collect(&dir, &dir, &mut modules);
    let krate = Crate {
        name: "fixture".into(),
        modules,
    };
    let edges = edges(&krate);
    let module = |s: &str| -> Module {
        s.split("::")
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect()
    };
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
    std::fs::remove_dir_all(&dir).unwrap();
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("module-cycles-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
