//! Sanitising of bundle paths.

use crate::error::BundleError;

/// Returns `raw` as a bundle-relative path, or rejects it.
///
/// A single leading `/` or `./` is dropped: `opa build` writes entries as `/path` and
/// `tar -C dir .` as `./path`, both meaning the bundle root. Bundles are never extracted to
/// disk, but paths are still held to what a safe extraction would need: no `..`, no `.`, no
/// empty segment (so no `//` and no absolute path after the one allowed `/`), no backslash
/// and no NUL.
pub(crate) fn sanitize(raw: &str) -> Result<String, BundleError> {
    let invalid = |reason| BundleError::InvalidPath {
        path: raw.to_string(),
        reason,
    };
    let path = raw
        .strip_prefix('/')
        .or_else(|| raw.strip_prefix("./"))
        .unwrap_or(raw);
    if path.is_empty() {
        return Err(invalid("empty path"));
    }
    if path.contains('\\') {
        return Err(invalid("backslash in path"));
    }
    if path.contains('\0') {
        return Err(invalid("NUL byte in path"));
    }
    for segment in path.split('/') {
        match segment {
            "" => return Err(invalid("absolute path or empty path segment")),
            ".." => return Err(invalid("parent directory ('..') in path")),
            "." => return Err(invalid("'.' segment in path")),
            _ => {}
        }
    }
    Ok(path.to_string())
}

/// Like [`sanitize`] for raw archive bytes, which must be UTF-8.
pub(crate) fn sanitize_bytes(raw: &[u8]) -> Result<String, BundleError> {
    match std::str::from_utf8(raw) {
        Ok(path) => sanitize(path),
        Err(_) => Err(BundleError::InvalidPath {
            path: String::from_utf8_lossy(raw).into_owned(),
            reason: "path is not UTF-8",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::{sanitize, sanitize_bytes};

    #[test]
    fn accepts_relative_and_root_prefixed_paths() {
        assert_eq!(sanitize("a/b.rego").unwrap(), "a/b.rego");
        assert_eq!(sanitize("/a/data.json").unwrap(), "a/data.json");
        assert_eq!(sanitize("./.manifest").unwrap(), ".manifest");
    }

    #[test]
    fn rejects_traversal_absolute_and_odd_paths() {
        for bad in [
            "../x.rego",
            "a/../../x",
            "//etc/passwd",
            "a//b",
            "a/./b",
            "",
            "/",
            "a\\b",
        ] {
            assert!(sanitize(bad).is_err(), "{bad:?} accepted");
        }
        assert!(sanitize_bytes(b"a/\xff.rego").is_err());
    }
}
