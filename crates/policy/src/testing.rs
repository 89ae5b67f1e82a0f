//! `blindledger policy test`: runs a policy tree's `test_*` rules with coverage, like
//! `opa test --coverage --fail-on-empty`.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::bundle::Bundle;
use crate::engine::to_rego;
use crate::error::PolicyError;
use crate::rules;

/// The outcome of one test rule.
#[derive(Debug, Clone, PartialEq)]
pub struct TestResult {
    /// The test's package, dotted, without `data`.
    pub package: String,
    /// The rule name (`test_...`).
    pub name: String,
    /// Whether the rule evaluated to `true`.
    pub passed: bool,
    /// The evaluation error, when there was one (a plain failure has none).
    pub error: Option<String>,
    /// How long evaluation took.
    pub duration: Duration,
}

/// Line coverage of one policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCoverage {
    /// The file, relative to the tested directory.
    pub path: String,
    /// Lines evaluated by some test.
    pub covered: Vec<u32>,
    /// Lines of rules that no test reached.
    pub not_covered: Vec<u32>,
}

/// Line coverage of the policies under test.
#[derive(Debug, Clone, PartialEq)]
pub struct Coverage {
    /// Per policy file; `_test.rego` files are left out, since they cover themselves.
    pub files: Vec<FileCoverage>,
    /// Covered lines as a percentage of covered plus not-covered lines over `files`.
    pub percent: f64,
}

/// The results of a test run.
#[derive(Debug, Clone, PartialEq)]
pub struct TestReport {
    /// One result per test rule, sorted by package and name.
    pub results: Vec<TestResult>,
    /// Line coverage of the non-test policies.
    pub coverage: Coverage,
}

impl TestReport {
    /// Whether every test passed.
    pub fn all_passed(&self) -> bool {
        self.results.iter().all(|r| r.passed)
    }
}

/// Runs every `test_*` rule under `dir` (`todo_*` rules are skipped, as in OPA).
///
/// Loads every `.rego` file and every `data.json` (placed by its directory) below `dir`,
/// evaluates each test rule on its own, and collects line coverage. A test passes when its
/// rule evaluates to `true`. Finding no test at all is an error ("no tests found"), so an
/// empty or mistyped directory cannot pass.
pub fn run_tests(dir: &Path) -> Result<TestReport, PolicyError> {
    let tree = Bundle::from_dir("tests", dir, "")?;
    let mut engine = regorus::Engine::new();
    engine.set_enable_coverage(true);
    for (path, source) in tree.policies() {
        engine
            .add_policy(path.to_string(), source.to_string())
            .map_err(|e| PolicyError::Compile {
                file: path.to_string(),
                message: format!("{e:#}"),
            })?;
    }
    engine
        .add_data(to_rego(&tree.data()?)?)
        .map_err(|e| PolicyError::Data {
            bundle: dir.display().to_string(),
            message: format!("{e:#}"),
        })?;
    let mut tests: Vec<(Vec<String>, String)> = rules::module_rules(&engine)?
        .into_iter()
        .flat_map(|m| {
            let package = m.package;
            m.rules
                .into_iter()
                .filter(|r| r.starts_with("test_"))
                .map(move |r| (package.clone(), r))
        })
        .collect();
    tests.sort();
    tests.dedup();
    if tests.is_empty() {
        return Err(PolicyError::NoTests {
            dir: dir.to_path_buf(),
        });
    }
    let results = tests
        .into_iter()
        .map(|(package, name)| run_one(&mut engine, &package, name));
    let results = results.collect();
    Ok(TestReport {
        results,
        coverage: coverage(&engine, &tree)?,
    })
}

fn run_one(engine: &mut regorus::Engine, package: &[String], name: String) -> TestResult {
    let path = rule_path(package, &name);
    let started = Instant::now();
    let outcome = engine.eval_rule(path);
    let duration = started.elapsed();
    let (passed, error) = match outcome {
        Ok(value) => (value == regorus::Value::Bool(true), None),
        Err(e) => (false, Some(format!("{e:#}"))),
    };
    TestResult {
        package: package.join("."),
        name,
        passed,
        error,
        duration,
    }
}

/// `data.a.b.name`, with bracket notation for components that are not identifiers.
fn rule_path(package: &[String], name: &str) -> String {
    let mut path = "data".to_string();
    for component in package.iter().map(String::as_str).chain([name]) {
        let ident = component
            .chars()
            .enumerate()
            .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
        if ident && !component.is_empty() {
            path.push('.');
            path.push_str(component);
        } else {
            path.push_str(&format!("[{}]", serde_json::Value::from(component)));
        }
    }
    path
}

fn coverage(engine: &regorus::Engine, tree: &Bundle) -> Result<Coverage, PolicyError> {
    let report = engine
        .get_coverage_report()
        .map_err(|e| PolicyError::Eval {
            path: "coverage report".to_string(),
            message: format!("{e:#}"),
        })?;
    let mut files: Vec<FileCoverage> = report
        .files
        .into_iter()
        .filter(|f| !f.path.ends_with("_test.rego"))
        .map(|f| FileCoverage {
            path: f.path,
            covered: f.covered.into_iter().collect(),
            not_covered: f.not_covered.into_iter().collect(),
        })
        .collect();
    // regorus reports only files in which something was evaluated; a file no test reached
    // would vanish and inflate the percentage. Such files count as wholly uncovered: every
    // line that is not blank, a comment, or the package or an import.
    for (path, source) in tree
        .policies()
        .filter(|(path, _)| !path.ends_with("_test.rego"))
    {
        if !files.iter().any(|f| f.path == path) {
            let not_covered = code_lines(source);
            files.push(FileCoverage {
                path: path.to_string(),
                covered: Vec::new(),
                not_covered,
            });
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let covered: usize = files.iter().map(|f| f.covered.len()).sum();
    let total = covered + files.iter().map(|f| f.not_covered.len()).sum::<usize>();
    // Nothing to cover counts as fully covered, as in `opa test --coverage`.
    let percent = if total == 0 {
        100.0
    } else {
        covered as f64 * 100.0 / total as f64
    };
    Ok(Coverage { files, percent })
}

/// Numbers (from 1) of the lines of `source` that hold rule code.
fn code_lines(source: &str) -> Vec<u32> {
    source
        .lines()
        .zip(1u32..)
        .filter(|(line, _)| {
            let line = line.trim();
            !(line.is_empty()
                || line.starts_with('#')
                || line.starts_with("package ")
                || line.starts_with("import "))
        })
        .map(|(_, number)| number)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{code_lines, rule_path};

    #[test]
    fn code_lines_skip_blanks_comments_package_and_imports() {
        let source = "# doc\npackage a\n\nimport rego.v1\nallow if {\n\tinput.x\n}\n";
        assert_eq!(code_lines(source), [5, 6, 7]);
    }

    #[test]
    fn rule_paths_quote_non_identifiers() {
        let package = vec!["a".to_string(), "b-c".to_string()];
        assert_eq!(rule_path(&package, "test_x"), r#"data.a["b-c"].test_x"#);
    }
}
