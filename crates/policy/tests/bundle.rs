//! Bundles: directory and archive round trips, data placement, and hostile archives.

// Helpers outside #[test] functions unwrap too: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use blindledger_policy::{Bundle, BundleError, BundleLimits};
use common::{bundle, raw_tar_gz, write_tree};
use serde_json::json;

const POLICY: &str = "package app\n\nallow if input.ok\n";

#[test]
fn directory_round_trips_through_tar_gz() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(
        dir.path(),
        &[
            (
                ".manifest",
                r#"{"revision": "old", "roots": ["app", "risk"], "rego_version": 1}"#,
            ),
            ("app/policy.rego", POLICY),
            (
                "app/policy_test.rego",
                "package app_test\n\ntest_ok if true\n",
            ),
            ("data.json", r#"{"app": {"x": 1}}"#),
            ("risk/data.json", r#"{"tiers": {"acme/alice": "high"}}"#),
            ("app/notes.md", "not part of the bundle"),
            (".git/ignored.rego", "package ignored"),
        ],
    );
    let bundle = Bundle::from_dir("app", dir.path(), "r2").unwrap();
    assert_eq!(bundle.manifest.revision, "r2");
    assert_eq!(bundle.manifest.roots, ["app", "risk"]);
    let paths: Vec<&str> = bundle.files().map(|(p, _)| p).collect();
    assert_eq!(
        paths,
        [
            ".manifest",
            "app/policy.rego",
            "app/policy_test.rego",
            "data.json",
            "risk/data.json"
        ]
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(bundle.file(".manifest").unwrap()).unwrap();
    assert_eq!(
        manifest["rego_version"], 1,
        "unknown manifest fields are kept"
    );

    let bytes = bundle.to_tar_gz().unwrap();
    assert_eq!(
        bytes,
        bundle.to_tar_gz().unwrap(),
        "archives are deterministic"
    );
    let read = Bundle::from_tar_gz("app", &bytes, &BundleLimits::default()).unwrap();
    assert_eq!(read, bundle);
    assert_eq!(read.policies().count(), 2);
}

#[test]
fn data_files_are_placed_by_directory_and_merged() {
    let b = bundle(
        "b",
        &[
            ("data.json", r#"{"a": {"x": 1}}"#),
            ("a/data.json", r#"{"y": 2}"#),
            ("risk/limits/data.json", r#"{"medium": {"max_amount": 5}}"#),
        ],
    );
    assert_eq!(
        b.data().unwrap(),
        json!({"a": {"x": 1, "y": 2}, "risk": {"limits": {"medium": {"max_amount": 5}}}})
    );
}

#[test]
fn conflicting_or_malformed_data_is_rejected_naming_the_file() {
    let conflict = bundle(
        "b",
        &[
            ("data.json", r#"{"a": {"x": 1}}"#),
            ("a/data.json", r#"{"x": 2}"#),
        ],
    );
    let err = conflict.data().unwrap_err();
    assert!(matches!(err, BundleError::DataConflict { .. }), "{err}");
    assert!(err.to_string().contains("'a/x'"), "{err}");

    let not_object = bundle("b", &[("data.json", "[1]")]);
    assert!(matches!(
        not_object.data(),
        Err(BundleError::DataNotObject { .. })
    ));
    let broken = bundle("b", &[("x/data.json", "{")]);
    assert!(broken
        .data()
        .unwrap_err()
        .to_string()
        .contains("x/data.json"));
}

#[test]
fn archive_without_manifest_gets_opa_defaults() {
    let bytes = raw_tar_gz(&[(b"/app/policy.rego", b'0', POLICY.as_bytes())]);
    let b = Bundle::from_tar_gz("app", &bytes, &BundleLimits::default()).unwrap();
    assert_eq!(b.manifest.revision, "");
    assert_eq!(b.manifest.roots, [""]);
    assert_eq!(
        b.policies().collect::<Vec<_>>(),
        [("app/policy.rego", POLICY)]
    );
}

#[test]
fn archive_over_the_compressed_limit_is_rejected() {
    let bytes = bundle("b", &[("a.rego", POLICY)]).to_tar_gz().unwrap();
    let limits = BundleLimits {
        max_compressed_bytes: 10,
        ..BundleLimits::default()
    };
    let err = Bundle::from_tar_gz("b", &bytes, &limits).unwrap_err();
    assert!(
        matches!(err, BundleError::CompressedTooLarge { limit: 10, .. }),
        "{err}"
    );
}

#[test]
fn gzip_bomb_is_stopped_at_the_uncompressed_limit() {
    let zeros = vec![0u8; 16 << 20];
    let mut b = Bundle::new("bomb");
    b.insert_file("big.bin", zeros).unwrap();
    let bytes = b.to_tar_gz().unwrap();
    assert!(
        bytes.len() < 64 << 10,
        "16 MiB of zeros compresses to {} bytes",
        bytes.len()
    );
    let limits = BundleLimits {
        max_uncompressed_bytes: 1 << 20,
        ..BundleLimits::default()
    };
    let err = Bundle::from_tar_gz("bomb", &bytes, &limits).unwrap_err();
    assert!(
        matches!(err, BundleError::UncompressedTooLarge { .. }),
        "{err}"
    );

    // A file over the limit is refused from its header, before any of it is read.
    let small = raw_tar_gz(&[(b"a.bin", b'0', &[1u8; 4096])]);
    let limits = BundleLimits {
        max_uncompressed_bytes: 3000,
        ..BundleLimits::default()
    };
    let err = Bundle::from_tar_gz("bomb", &small, &limits).unwrap_err();
    assert!(
        matches!(err, BundleError::UncompressedTooLarge { .. }),
        "{err}"
    );
}

#[test]
fn too_many_files_are_rejected() {
    let files: Vec<(String, String)> = (0..5)
        .map(|i| (format!("p{i}.rego"), POLICY.to_string()))
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let bytes = bundle("b", &refs).to_tar_gz().unwrap();
    let limits = BundleLimits {
        max_files: 4,
        ..BundleLimits::default()
    };
    let err = Bundle::from_tar_gz("b", &bytes, &limits).unwrap_err();
    assert!(
        matches!(err, BundleError::TooManyFiles { limit: 4 }),
        "{err}"
    );
}

#[test]
fn unsafe_entry_paths_are_rejected() {
    for name in [
        &b"../evil.rego"[..],
        b"app/../../evil.rego",
        b"//etc/evil.rego",
        b"a\xffb.rego",
    ] {
        let bytes = raw_tar_gz(&[(name, b'0', POLICY.as_bytes())]);
        let err = Bundle::from_tar_gz("b", &bytes, &BundleLimits::default()).unwrap_err();
        assert!(matches!(err, BundleError::InvalidPath { .. }), "{err}");
    }
}

#[test]
fn duplicate_and_non_regular_entries_are_rejected() {
    let dup = raw_tar_gz(&[
        (b"a.rego", b'0', POLICY.as_bytes()),
        (b"/a.rego", b'0', POLICY.as_bytes()),
    ]);
    let err = Bundle::from_tar_gz("b", &dup, &BundleLimits::default()).unwrap_err();
    assert!(
        matches!(err, BundleError::DuplicatePath { ref path } if path == "a.rego"),
        "{err}"
    );

    let link = raw_tar_gz(&[(b"a.rego", b'2', b"")]);
    let err = Bundle::from_tar_gz("b", &link, &BundleLimits::default()).unwrap_err();
    assert!(matches!(err, BundleError::UnsupportedEntry { .. }), "{err}");
}

#[test]
fn corrupt_archives_and_binary_policies_are_rejected() {
    let err = Bundle::from_tar_gz("b", b"not gzip at all", &BundleLimits::default()).unwrap_err();
    assert!(matches!(err, BundleError::Archive(_)), "{err}");
    let binary = raw_tar_gz(&[(b"a.rego", b'0', b"package \xff")]);
    let err = Bundle::from_tar_gz("b", &binary, &BundleLimits::default()).unwrap_err();
    assert!(matches!(err, BundleError::NotUtf8 { .. }), "{err}");
}
