//! OPA-format policy bundles: a set of files (`*.rego`, `data.json`, `.manifest`) and an
//! optional `.signatures.json`, carried as a gzipped tar.

mod archive;
mod data;
mod dir;
mod path;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::BundleError;

/// Name of the manifest file at the bundle root.
pub const MANIFEST_FILE: &str = ".manifest";
/// Name of the signatures file at the bundle root.
pub const SIGNATURES_FILE: &str = ".signatures.json";

/// A bundle's `.manifest`: its revision, the data roots it owns and free-form metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Revision label, reported in decision logs and status.
    #[serde(default)]
    pub revision: String,
    /// Path prefixes under `data` this bundle owns; `[""]` (the default) owns everything.
    #[serde(default = "default_roots", deserialize_with = "roots_or_default")]
    pub roots: Vec<String>,
    /// Free-form metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
}

impl Default for Manifest {
    fn default() -> Self {
        Self {
            revision: String::new(),
            roots: default_roots(),
            metadata: None,
        }
    }
}

fn default_roots() -> Vec<String> {
    vec![String::new()]
}

// OPA treats `"roots": null` like a missing key.
fn roots_or_default<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_else(default_roots))
}

/// Size limits applied while reading a bundle archive, so that a hostile archive (a gzip bomb,
/// millions of tiny files) is rejected before it is held in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BundleLimits {
    /// Largest accepted archive, compressed.
    pub max_compressed_bytes: u64,
    /// Most bytes the archive may expand to (tar headers included).
    pub max_uncompressed_bytes: u64,
    /// Most files the archive may hold.
    pub max_files: usize,
}

impl Default for BundleLimits {
    fn default() -> Self {
        Self {
            max_compressed_bytes: 8 << 20,
            max_uncompressed_bytes: 64 << 20,
            max_files: 1000,
        }
    }
}

/// The contents of `.signatures.json`: one compact JWS over the bundle's file digests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignaturesFile {
    /// The signature tokens; OPA (and this crate) accept exactly one.
    #[serde(default)]
    pub signatures: Vec<String>,
    /// Name of a custom verifier plugin; not supported here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
}

/// A policy bundle held in memory.
///
/// Files are kept as the exact bytes read, so that signatures stay verifiable and
/// [`Bundle::to_tar_gz`] reproduces them; `manifest` is the parsed view of the `.manifest`
/// file and is kept in step by [`Bundle::insert_file`]. Paths have no leading `/`.
#[derive(Clone, PartialEq)]
pub struct Bundle {
    /// Name the bundle is known by (its service-side name, as in OPA's config).
    pub name: String,
    /// Parsed `.manifest`, or the default when the bundle has none.
    pub manifest: Manifest,
    rego_version: Option<i64>,
    files: BTreeMap<String, Vec<u8>>,
    signatures: Option<SignaturesFile>,
}

impl fmt::Debug for Bundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // File contents are left out: they can be megabytes.
        f.debug_struct("Bundle")
            .field("name", &self.name)
            .field("manifest", &self.manifest)
            .field("files", &self.files.keys().collect::<Vec<_>>())
            .field("signed", &self.signatures.is_some())
            .finish()
    }
}

impl Bundle {
    /// Creates an empty, unsigned bundle with the default manifest.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            manifest: Manifest::default(),
            rego_version: None,
            files: BTreeMap::new(),
            signatures: None,
        }
    }

    /// Adds or replaces a file.
    ///
    /// The path is sanitised as for archive entries. `.manifest` updates [`Bundle::manifest`],
    /// `.signatures.json` sets the signatures, and `.rego` files must be UTF-8.
    pub fn insert_file(&mut self, path: &str, bytes: Vec<u8>) -> Result<(), BundleError> {
        let path = path::sanitize(path)?;
        if path == SIGNATURES_FILE {
            self.signatures = Some(parse_json(&path, &bytes)?);
            return Ok(());
        }
        if path == MANIFEST_FILE {
            self.set_manifest(&bytes)?;
        }
        if path.ends_with(".rego") && std::str::from_utf8(&bytes).is_err() {
            return Err(BundleError::NotUtf8 { path });
        }
        self.files.insert(path, bytes);
        Ok(())
    }

    /// Removes a file and says whether it was there; removing `.manifest` restores the
    /// default manifest, removing `.signatures.json` unsigns the bundle.
    pub fn remove_file(&mut self, path: &str) -> bool {
        let path = path.trim_start_matches('/');
        if path == SIGNATURES_FILE {
            return self.signatures.take().is_some();
        }
        if path == MANIFEST_FILE {
            self.manifest = Manifest::default();
            self.rego_version = None;
        }
        self.files.remove(path).is_some()
    }

    /// Returns one file's bytes.
    pub fn file(&self, path: &str) -> Option<&[u8]> {
        self.files
            .get(path.trim_start_matches('/'))
            .map(Vec::as_slice)
    }

    /// Iterates over all files but `.signatures.json`, sorted by path.
    pub fn files(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.files
            .iter()
            .map(|(path, bytes)| (path.as_str(), bytes.as_slice()))
    }

    /// Iterates over the Rego policies as `(path, source)`, sorted by path.
    pub fn policies(&self) -> impl Iterator<Item = (&str, &str)> {
        self.files()
            .filter(|(path, _)| path.ends_with(".rego"))
            .filter_map(|(path, bytes)| {
                // insert_file checked UTF-8, so nothing is dropped here.
                std::str::from_utf8(bytes).ok().map(|source| (path, source))
            })
    }

    /// Returns the parsed `.signatures.json`, if the bundle is signed.
    pub fn signatures(&self) -> Option<&SignaturesFile> {
        self.signatures.as_ref()
    }

    /// Sets or clears the signatures, as [`crate::sign_bundle`] does.
    pub fn set_signatures(&mut self, signatures: Option<SignaturesFile>) {
        self.signatures = signatures;
    }

    /// Whether the manifest asks for Rego v0 syntax (`"rego_version": 0`).
    pub(crate) fn is_rego_v0(&self) -> bool {
        self.rego_version == Some(0)
    }

    fn set_manifest(&mut self, bytes: &[u8]) -> Result<(), BundleError> {
        #[derive(Deserialize)]
        struct RegoVersion {
            rego_version: Option<i64>,
        }
        self.manifest = parse_json(MANIFEST_FILE, bytes)?;
        self.rego_version = parse_json::<RegoVersion>(MANIFEST_FILE, bytes)?.rego_version;
        Ok(())
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(path: &str, bytes: &[u8]) -> Result<T, BundleError> {
    serde_json::from_slice(bytes).map_err(|source| BundleError::InvalidJson {
        path: path.to_string(),
        source,
    })
}
