//! Golden tests for definition validation.
//!
//! `tests/golden/invalid/<name>.json` is a definition with one kind of mistake (a few show
//! several at once); `<name>.err` beside it holds the errors it must produce, one per line,
//! exactly as `ValidationError`'s `Display` prints them. `tests/golden/valid/*.json` must
//! compile. Every definition is checked against the example plugins, as the reference
//! workflows are.
//!
//! To accept the current messages after a deliberate change, rewrite the `.err` files:
//!
//! ```text
//! BLESS=1 cargo test -p waystation-core --test golden
//! ```
//!
//! then review the diff of `tests/golden/` like any other change: it is what administrators
//! will read.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use waystation_core::Workflow;
use waystation_fixtures::{root, ExamplePlugins};

/// Fewer invalid definitions than this means some were lost, not that validation got simpler.
const MIN_INVALID_DEFINITIONS: usize = 15;

fn golden(kind: &str) -> PathBuf {
    root().join("tests").join("golden").join(kind)
}

/// The `*.json` files of `tests/golden/<kind>`, sorted so failures list in a stable order.
fn definitions(kind: &str) -> Vec<PathBuf> {
    let dir = golden(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn name_of(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// What validation says about `text`, one line per error; empty when it compiles.
fn validation_report(text: &str) -> Vec<String> {
    match Workflow::from_text(text, Some(&ExamplePlugins)) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

/// The lines of an `.err` file, compared exactly (`lines` only drops `\n` and `\r\n`).
fn lines_of(text: &str) -> Vec<String> {
    text.lines().map(str::to_owned).collect()
}

fn blessing() -> bool {
    std::env::var_os("BLESS").is_some_and(|v| !v.is_empty() && v != "0")
}

/// A line diff (longest common subsequence): `-` only expected, `+` only actual.
fn diff(expected: &[String], actual: &[String]) -> String {
    let (n, m) = (expected.len(), actual.len());
    let mut common = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            common[i][j] = if expected[i] == actual[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let mut out = String::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && expected[i] == actual[j] {
            let _ = writeln!(out, "    {}", expected[i]);
            i += 1;
            j += 1;
        } else if i < n && (j == m || common[i + 1][j] >= common[i][j + 1]) {
            let _ = writeln!(out, "  - {}", expected[i]);
            i += 1;
        } else {
            let _ = writeln!(out, "  + {}", actual[j]);
            j += 1;
        }
    }
    out
}

#[test]
fn every_invalid_definition_reports_exactly_its_expected_errors() {
    let files = definitions("invalid");
    assert!(
        files.len() >= MIN_INVALID_DEFINITIONS,
        "only {} invalid definitions in {}; expected at least {MIN_INVALID_DEFINITIONS}",
        files.len(),
        golden("invalid").display()
    );
    let bless = blessing();
    let mut failures = Vec::new();
    for path in &files {
        let actual = validation_report(&read(path));
        if actual.is_empty() {
            failures.push(format!(
                "{}: compiles, but it is meant to be invalid",
                name_of(path)
            ));
            continue;
        }
        let err_path = path.with_extension("err");
        if bless {
            let mut text = actual.join("\n");
            text.push('\n');
            std::fs::write(&err_path, text)
                .unwrap_or_else(|e| panic!("{}: {e}", err_path.display()));
            continue;
        }
        if !err_path.exists() {
            failures.push(format!(
                "{}: missing; it should hold:\n{}\n(run with BLESS=1 to write it)",
                name_of(&err_path),
                actual.join("\n")
            ));
            continue;
        }
        let expected = lines_of(&read(&err_path));
        if expected != actual {
            failures.push(format!(
                "{}: the errors differ (- expected, + actual):\n{}",
                name_of(&err_path),
                diff(&expected, &actual)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} invalid definitions did not report what their .err file says \
         (BLESS=1 rewrites the .err files):\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}

#[test]
fn every_expected_error_file_belongs_to_a_definition() {
    let dir = golden("invalid");
    let orphans: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "err"))
        .filter(|p| !p.with_extension("json").exists())
        .map(|p| name_of(&p))
        .collect();
    assert!(
        orphans.is_empty(),
        ".err files without a definition beside them: {orphans:?}"
    );
}

#[test]
fn every_valid_definition_compiles() {
    let files = definitions("valid");
    assert!(
        files.len() >= 3,
        "only {} valid definitions in {}",
        files.len(),
        golden("valid").display()
    );
    let failures: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let errors = validation_report(&read(path));
            (!errors.is_empty()).then(|| format!("{}:\n  {}", name_of(path), errors.join("\n  ")))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "valid definitions that do not compile:\n{}",
        failures.join("\n")
    );
}

/// The first ```json block of `schemas/README.md`.
fn readme_example() -> String {
    let path = root().join("schemas").join("README.md");
    let readme = read(&path);
    let start = readme
        .find("```json\n")
        .unwrap_or_else(|| panic!("{} has no ```json block", path.display()))
        + "```json\n".len();
    let len = readme[start..]
        .find("```")
        .unwrap_or_else(|| panic!("{}: the ```json block is not closed", path.display()));
    readme[start..start + len].to_owned()
}

#[test]
fn the_schema_readme_example_is_valid() {
    let example = readme_example();
    let errors = validation_report(&example);
    assert!(
        errors.is_empty(),
        "the example in schemas/README.md is invalid:\n  {}",
        errors.join("\n  ")
    );
    let workflow = Workflow::from_text(&example, Some(&ExamplePlugins)).expect("just validated");
    assert_eq!(workflow.id(), "refund-request");
    assert!(workflow.calls_plugins());
}

#[test]
fn the_golden_copy_of_the_readme_example_is_verbatim() {
    let path = golden("valid").join("schema-readme-example.json");
    assert_eq!(
        read(&path),
        readme_example(),
        "{} differs from the first ```json block of schemas/README.md; copy it again",
        name_of(&path)
    );
}

#[test]
fn the_diff_marks_missing_and_unexpected_lines() {
    let owned = |lines: &[&str]| lines.iter().map(|l| (*l).to_owned()).collect::<Vec<_>>();
    let text = diff(&owned(&["/a: x", "/b: y"]), &owned(&["/a: x", "/c: z"]));
    assert_eq!(text, "    /a: x\n  - /b: y\n  + /c: z\n");
}
