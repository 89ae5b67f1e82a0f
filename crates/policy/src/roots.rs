//! Bundle roots: which part of `data` each bundle owns, with OPA's rules for overlap and
//! containment (path-segment-wise; the root `""` owns everything).

use serde_json::Value;

use crate::bundle::Bundle;
use crate::error::PolicyError;

/// Returns the roots with leading and trailing `/` removed, as OPA normalises them.
pub(crate) fn normalized(roots: &[String]) -> Vec<String> {
    roots
        .iter()
        .map(|root| root.trim_matches('/').to_string())
        .collect()
}

/// Whether `root` contains `path`: `""` contains everything, otherwise `root`'s segments
/// must be a prefix of `path`'s.
fn root_contains(root: &str, path: &str) -> bool {
    if root.is_empty() {
        return true;
    }
    let root: Vec<&str> = root.split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    root.len() <= path.len() && root.iter().zip(&path).all(|(r, p)| r == p)
}

/// Whether any of `roots` contains `path`.
pub(crate) fn any_contains(roots: &[String], path: &str) -> bool {
    roots.iter().any(|root| root_contains(root, path))
}

fn overlap(a: &str, b: &str) -> bool {
    root_contains(a, b) || root_contains(b, a)
}

/// Fails when two roots overlap, within one bundle or across bundles.
pub(crate) fn check_no_overlap(bundles: &[Bundle]) -> Result<(), PolicyError> {
    let owned: Vec<(&str, String)> = bundles
        .iter()
        .flat_map(|b| {
            normalized(&b.manifest.roots)
                .into_iter()
                .map(|r| (b.name.as_str(), r))
        })
        .collect();
    for (i, (bundle_a, root_a)) in owned.iter().enumerate() {
        for (bundle_b, root_b) in &owned[i + 1..] {
            if overlap(root_a, root_b) {
                return Err(PolicyError::OverlappingRoots {
                    bundle_a: bundle_a.to_string(),
                    root_a: root_a.clone(),
                    bundle_b: bundle_b.to_string(),
                    root_b: root_b.clone(),
                });
            }
        }
    }
    Ok(())
}

/// Fails when `data` holds a value outside `roots`. Objects on the way down to a root (such
/// as `{"a": {}}` above root `a/b`) are allowed, as in OPA.
pub(crate) fn check_data(bundle: &str, roots: &[String], data: &Value) -> Result<(), PolicyError> {
    fn walk(roots: &[String], path: &str, node: &Value) -> Result<(), String> {
        if any_contains(roots, path) {
            return Ok(());
        }
        let Value::Object(members) = node else {
            return Err(path.to_string());
        };
        if !roots
            .iter()
            .any(|root| path.is_empty() || root_contains(path, root))
        {
            return Err(path.to_string());
        }
        for (key, child) in members {
            let child_path = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}/{key}")
            };
            walk(roots, &child_path, child)?;
        }
        Ok(())
    }
    walk(roots, "", data).map_err(|path| PolicyError::DataOutsideRoots {
        bundle: bundle.to_string(),
        path,
        roots: roots.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containment_is_segment_wise() {
        assert!(root_contains("", "anything/at/all"));
        assert!(root_contains("blindledger", "blindledger/authz"));
        assert!(!root_contains("blind", "blindledger"));
        assert!(!root_contains("blindledger/authz", "blindledger"));
        assert!(overlap("blindledger", "blindledger/authz"));
        assert!(overlap("", "risk"));
        assert!(!overlap("risk", "blindledger"));
    }

    #[test]
    fn data_must_stay_under_roots() {
        let roots = vec!["risk".to_string(), "a/b".to_string()];
        let ok = serde_json::json!({"risk": {"tiers": {}}, "a": {"b": 1}});
        assert!(check_data("x", &roots, &ok).is_ok());
        let bad = serde_json::json!({"a": {"c": 1}});
        assert!(check_data("x", &roots, &bad).is_err());
        let top = serde_json::json!({"other": 1});
        assert!(check_data("x", &roots, &top).is_err());
    }
}
