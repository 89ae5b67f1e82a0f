//! Building a bundle from a directory, as `opa build` does.

use std::fs;
use std::path::Path;

use super::{Bundle, Manifest, MANIFEST_FILE};
use crate::error::BundleError;

impl Bundle {
    /// Builds a bundle from the `*.rego` and `data.json` files under `dir` (recursively,
    /// skipping hidden directories; `_test.rego` files are kept, as `opa build` keeps them).
    ///
    /// The manifest is `dir/.manifest` when present, else the default (roots `[""]`); either
    /// way its revision is set to `revision`, other fields kept.
    pub fn from_dir(name: &str, dir: &Path, revision: &str) -> Result<Bundle, BundleError> {
        let mut bundle = Bundle::new(name);
        let mut found = Vec::new();
        collect(dir, "", &mut found)?;
        for (path, bytes) in found {
            bundle.insert_file(&path, bytes)?;
        }
        let manifest_path = dir.join(MANIFEST_FILE);
        let manifest = if manifest_path.is_file() {
            let bytes = read(&manifest_path)?;
            with_revision(&bytes, revision)?
        } else {
            let manifest = Manifest {
                revision: revision.to_string(),
                ..Manifest::default()
            };
            serde_json::to_vec(&manifest).map_err(invalid_manifest)?
        };
        bundle.insert_file(MANIFEST_FILE, manifest)?;
        Ok(bundle)
    }
}

/// Returns the manifest JSON with `revision` replaced, keeping unknown fields such as
/// `rego_version` that a typed round trip would drop.
fn with_revision(bytes: &[u8], revision: &str) -> Result<Vec<u8>, BundleError> {
    let mut value: serde_json::Value = serde_json::from_slice(bytes).map_err(invalid_manifest)?;
    let Some(object) = value.as_object_mut() else {
        let source = serde::de::Error::custom("the manifest is not a JSON object");
        return Err(invalid_manifest(source));
    };
    object.insert("revision".to_string(), revision.into());
    serde_json::to_vec(&value).map_err(invalid_manifest)
}

fn invalid_manifest(source: serde_json::Error) -> BundleError {
    BundleError::InvalidJson {
        path: MANIFEST_FILE.to_string(),
        source,
    }
}

/// Appends `(bundle path, bytes)` for every bundle file under `dir`, in sorted order.
fn collect(
    dir: &Path,
    prefix: &str,
    found: &mut Vec<(String, Vec<u8>)>,
) -> Result<(), BundleError> {
    let io_err = |source| BundleError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries = fs::read_dir(dir)
        .map_err(io_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(io_err)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let file_name = entry.file_name();
        let Some(name) = file_name.to_str() else {
            let path = entry.path().to_string_lossy().into_owned();
            return Err(BundleError::InvalidPath {
                path,
                reason: "path is not UTF-8",
            });
        };
        let path = format!("{prefix}{name}");
        let file_type = entry.file_type().map_err(io_err)?;
        if file_type.is_dir() {
            if !name.starts_with('.') {
                collect(&entry.path(), &format!("{path}/"), found)?;
            }
        } else if file_type.is_symlink() {
            // Following links could pull files from outside the policy tree into a bundle.
            let kind = "symlink".to_string();
            return Err(BundleError::UnsupportedEntry { path, kind });
        } else if name.ends_with(".rego") || name == "data.json" {
            found.push((path, read(&entry.path())?));
        }
    }
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>, BundleError> {
    fs::read(path).map_err(|source| BundleError::Io {
        path: path.to_path_buf(),
        source,
    })
}
