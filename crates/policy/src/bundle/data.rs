//! Assembling a bundle's data document from its `data.json` files.

use serde_json::{Map, Value};

use super::Bundle;
use crate::error::BundleError;

impl Bundle {
    /// Returns the bundle's data: every `data.json` placed by its directory
    /// (`risk/data.json` becomes `{"risk": {...}}`, a root `data.json` is the top level) and
    /// merged into one document.
    ///
    /// As in OPA, two files conflict when they set the same key and either value is not an
    /// object; YAML data files are rejected rather than silently ignored.
    pub fn data(&self) -> Result<Value, BundleError> {
        let mut root = Value::Object(Map::new());
        for (path, bytes) in self.files() {
            let (dir, base) = match path.rsplit_once('/') {
                Some((dir, base)) => (dir, base),
                None => ("", path),
            };
            match base {
                "data.json" => {}
                "data.yaml" | "data.yml" => {
                    return Err(BundleError::UnsupportedDataFormat {
                        path: path.to_string(),
                    })
                }
                _ => continue,
            }
            let value: Value =
                serde_json::from_slice(bytes).map_err(|source| BundleError::InvalidJson {
                    path: path.to_string(),
                    source,
                })?;
            let keys: Vec<&str> = dir.split('/').filter(|k| !k.is_empty()).collect();
            if keys.is_empty() && !value.is_object() {
                return Err(BundleError::DataNotObject {
                    path: path.to_string(),
                });
            }
            let tree = keys.iter().rev().fold(value, |inner, key| {
                Value::Object(Map::from_iter([((*key).to_string(), inner)]))
            });
            merge(&mut root, tree, &mut Vec::new()).map_err(|key| BundleError::DataConflict {
                path: path.to_string(),
                key,
            })?;
        }
        Ok(root)
    }
}

/// Merges object `src` into object `dst`, or returns the slash-separated key of a conflict.
fn merge(dst: &mut Value, src: Value, at: &mut Vec<String>) -> Result<(), String> {
    let (Value::Object(dst), Value::Object(src)) = (dst, src) else {
        return Err(at.join("/"));
    };
    for (key, value) in src {
        match dst.get_mut(&key) {
            None => {
                dst.insert(key, value);
            }
            Some(existing) => {
                at.push(key);
                merge(existing, value, at)?;
                at.pop();
            }
        }
    }
    Ok(())
}
