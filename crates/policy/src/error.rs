//! Errors of bundle handling and policy evaluation.
//!
//! Messages name the problem and the file; they never include key material, and they
//! include file contents only as digests.

use std::path::PathBuf;

/// Why a bundle could not be read, written, signed or verified.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// A file or directory could not be read from disk.
    #[error("reading {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The gzip or tar stream is corrupt.
    #[error("bundle archive is corrupt: {0}")]
    Archive(std::io::Error),
    /// The compressed archive is larger than allowed.
    #[error("bundle archive is {size} bytes compressed, over the limit of {limit}")]
    CompressedTooLarge {
        /// Size of the archive.
        size: u64,
        /// The configured limit.
        limit: u64,
    },
    /// Decompressing the archive produced more bytes than allowed (possibly a gzip bomb).
    #[error("bundle archive expands past the limit of {limit} bytes uncompressed")]
    UncompressedTooLarge {
        /// The configured limit.
        limit: u64,
    },
    /// The archive holds more files than allowed.
    #[error("bundle holds more than {limit} files")]
    TooManyFiles {
        /// The configured limit.
        limit: usize,
    },
    /// An entry's path is unsafe or malformed.
    #[error("bundle entry '{path}' rejected: {reason}")]
    InvalidPath {
        /// The path as found (lossily decoded when not UTF-8).
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two entries have the same path.
    #[error("bundle entry '{path}' appears more than once")]
    DuplicatePath {
        /// The repeated path.
        path: String,
    },
    /// An entry is a link, device or other non-regular file.
    #[error("bundle entry '{path}' is a {kind}, only regular files are allowed")]
    UnsupportedEntry {
        /// The entry's path.
        path: String,
        /// The kind of entry found.
        kind: String,
    },
    /// A policy file is not valid UTF-8.
    #[error("policy file '{path}' is not valid UTF-8")]
    NotUtf8 {
        /// The policy file.
        path: String,
    },
    /// A JSON file (`.manifest`, `data.json`, `.signatures.json`) does not parse.
    #[error("{path}: invalid JSON: {source}")]
    InvalidJson {
        /// The file.
        path: String,
        /// The parse error.
        source: serde_json::Error,
    },
    /// A data file is in a format this crate does not read.
    #[error("{path}: only data.json files are supported as bundle data")]
    UnsupportedDataFormat {
        /// The data file.
        path: String,
    },
    /// A root-level `data.json` is not a JSON object.
    #[error("{path}: a root data.json must hold a JSON object")]
    DataNotObject {
        /// The data file.
        path: String,
    },
    /// Two data files write different values to the same place.
    #[error("{path}: data conflicts with another data file at '{key}'")]
    DataConflict {
        /// The data file merged last.
        path: String,
        /// Where the conflict is, slash-separated.
        key: String,
    },
    /// A key could not be parsed or encoded.
    #[error("invalid {what}: {reason}")]
    Key {
        /// Which key, e.g. "signing key" or "verification key 'ci'".
        what: String,
        /// Why it was rejected.
        reason: String,
    },
    /// Producing the signature token failed.
    #[error("signing bundle: {0}")]
    Signing(String),
    /// The bundle has no `.signatures.json` but a signature is required.
    #[error("bundle is not signed (no .signatures.json) but a signature is required")]
    Unsigned,
    /// The bundle is signed but no verification keys are configured.
    #[error("bundle is signed but verification keys not configured")]
    KeysNotConfigured,
    /// `.signatures.json` is malformed or uses a feature not supported here.
    #[error(".signatures.json: {0}")]
    SignaturesFile(String),
    /// The signature token is not a well-formed compact JWS.
    #[error(".signatures.json: malformed JWT: {0}")]
    MalformedJwt(String),
    /// The token's algorithm is unknown, or not one its key may be used with.
    #[error(".signatures.json: signature algorithm '{alg}' rejected: {reason}")]
    UnsupportedAlgorithm {
        /// The `alg` header as found (truncated).
        alg: String,
        /// Why: unknown, or which key type it was tried with.
        reason: String,
    },
    /// Neither the JWT header `kid` nor the payload `keyid` names a key.
    #[error(".signatures.json: verification key ID is empty (no 'kid' header)")]
    MissingKeyId,
    /// The token names a key that is not configured.
    #[error(".signatures.json: unknown verification key '{kid}'")]
    UnknownKeyId {
        /// The key id from the token.
        kid: String,
    },
    /// The token's signature does not verify with the named key.
    #[error(".signatures.json: JWT signature does not verify with key '{kid}'")]
    BadSignature {
        /// The key id used.
        kid: String,
    },
    /// The token's scope differs from the configured scope.
    #[error(".signatures.json: scope mismatch (expected {expected:?}, found {found:?})")]
    ScopeMismatch {
        /// The configured scope ("" when none).
        expected: String,
        /// The token's scope ("" when none).
        found: String,
    },
    /// A bundle file is not listed in the signature.
    #[error("file '{path}' not included in bundle signature")]
    FileNotSigned {
        /// The unsigned file.
        path: String,
    },
    /// The signature lists files the bundle does not have.
    #[error("file(s) {} specified in bundle signature but not found in the bundle", .paths.join(", "))]
    SignedFileMissing {
        /// The missing files.
        paths: Vec<String>,
    },
    /// A file's digest differs from the one in the signature.
    #[error("file '{path}': digest mismatch with bundle signature")]
    DigestMismatch {
        /// The tampered file.
        path: String,
    },
    /// A file is hashed with an algorithm other than SHA-256.
    #[error("file '{path}': unsupported hashing algorithm '{algorithm}' (only SHA-256)")]
    UnsupportedHash {
        /// The file.
        path: String,
        /// The algorithm named in the signature.
        algorithm: String,
    },
}

/// Why a policy engine could not be built or could not decide.
///
/// Every variant returned by [`crate::PolicyEngine::decide`] means "deny": the engine fails
/// closed.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A bundle could not be read or is malformed.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// Two bundles given to one engine share a name.
    #[error("bundle name '{name}' is used twice")]
    DuplicateBundle {
        /// The repeated name.
        name: String,
    },
    /// Two roots overlap, so two bundles (or one bundle twice) would own the same data.
    #[error(
        "bundle roots overlap: '{root_a}' (bundle {bundle_a}) and '{root_b}' (bundle {bundle_b})"
    )]
    OverlappingRoots {
        /// Bundle owning the first root.
        bundle_a: String,
        /// The first root.
        root_a: String,
        /// Bundle owning the second root.
        bundle_b: String,
        /// The second root.
        root_b: String,
    },
    /// A policy's package lies outside its bundle's roots.
    #[error("bundle {bundle}: roots {roots:?} do not permit package '{package}' in '{file}'")]
    PackageOutsideRoots {
        /// The bundle.
        bundle: String,
        /// The policy file.
        file: String,
        /// The package, dotted.
        package: String,
        /// The bundle's roots.
        roots: Vec<String>,
    },
    /// Bundle data lies outside its bundle's roots.
    #[error("bundle {bundle}: roots {roots:?} do not permit data at '/{path}'")]
    DataOutsideRoots {
        /// The bundle.
        bundle: String,
        /// Where the data is, slash-separated.
        path: String,
        /// The bundle's roots.
        roots: Vec<String>,
    },
    /// A policy does not parse or compile.
    #[error("policy '{file}' does not compile: {message}")]
    Compile {
        /// The policy file, prefixed with its bundle name.
        file: String,
        /// The compiler's message.
        message: String,
    },
    /// Bundle data could not be loaded into the engine.
    #[error("bundle {bundle}: data rejected: {message}")]
    Data {
        /// The bundle.
        bundle: String,
        /// Why.
        message: String,
    },
    /// Input or result could not be converted between JSON and Rego values.
    #[error("converting {what}: {message}")]
    Conversion {
        /// What was being converted.
        what: &'static str,
        /// Why it failed.
        message: String,
    },
    /// Evaluation failed.
    #[error("evaluating {path}: {message}")]
    Eval {
        /// The rule being evaluated.
        path: String,
        /// The evaluator's message.
        message: String,
    },
    /// The decision rule is undefined for this input.
    #[error("{path} is undefined")]
    UndefinedDecision {
        /// The rule path.
        path: String,
    },
    /// The decision has the wrong shape.
    #[error("malformed decision: {0}")]
    MalformedDecision(String),
    /// The mask rule returned something that is not a mask.
    #[error("malformed system.log.mask result: {0}")]
    Mask(String),
    /// A test directory could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A test run found no `test_*` rules.
    #[error("no tests found in {}", .dir.display())]
    NoTests {
        /// The directory searched.
        dir: PathBuf,
    },
}
