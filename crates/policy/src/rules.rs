//! Which rules the loaded modules declare.
//!
//! regorus keeps its AST private; its JSON form (the `ast` feature) is the supported way to
//! read rule names, which the test runner and the mask lookup need.

use serde_json::Value;

use crate::error::PolicyError;

/// A module's package and the names of its plain (non-function) rules.
#[derive(Debug)]
pub(crate) struct ModuleRules {
    /// Package path components, without `data`.
    pub(crate) package: Vec<String>,
    /// Names of rules whose head is a single name and takes no arguments.
    pub(crate) rules: Vec<String>,
}

/// Lists every loaded module's package and rule names, in load order.
pub(crate) fn module_rules(engine: &regorus::Engine) -> Result<Vec<ModuleRules>, PolicyError> {
    let failed = |message: String| PolicyError::Eval {
        path: "policy AST".to_string(),
        message,
    };
    let packages = engine
        .get_policy_package_components()
        .map_err(|e| failed(format!("{e:#}")))?;
    let ast = engine
        .get_ast_as_json()
        .map_err(|e| failed(format!("{e:#}")))?;
    let ast: Value = serde_json::from_str(&ast).map_err(|e| failed(e.to_string()))?;
    let modules = ast.as_array().map(Vec::as_slice).unwrap_or_default();
    if modules.len() != packages.len() {
        return Err(failed(
            "module count differs between AST and packages".to_string(),
        ));
    }
    Ok(packages
        .into_iter()
        .zip(modules)
        .map(|(package, module)| ModuleRules {
            package: package.components,
            rules: rule_names(&module["ast"]["rules"]),
        })
        .collect())
}

/// Whether a module of `package` declares a rule called `name`.
pub(crate) fn declares_rule(
    engine: &regorus::Engine,
    package: &[&str],
    name: &str,
) -> Result<bool, PolicyError> {
    Ok(module_rules(engine)?
        .iter()
        .any(|m| m.package.iter().eq(package.iter()) && m.rules.iter().any(|r| r == name)))
}

fn rule_names(rules: &Value) -> Vec<String> {
    let Some(rules) = rules.as_array() else {
        return Vec::new();
    };
    let mut names: Vec<String> = rules
        .iter()
        .filter_map(|rule| {
            let refr = match (rule.get("Spec"), rule.get("Default")) {
                (Some(spec), _) => {
                    let head = spec.get("head")?;
                    head.get("Compr").or_else(|| head.get("Set"))?.get("refr")?
                }
                (None, Some(default)) => default.get("refr")?,
                (None, None) => return None,
            };
            var_name(refr)
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The name of a `Var` expression, whichever way regorus serialises it.
fn var_name(expr: &Value) -> Option<String> {
    let var = expr.get("Var")?;
    let name = var.get("value").or_else(|| var.get(1))?;
    name.as_str().map(str::to_string)
}
