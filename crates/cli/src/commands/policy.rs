//! `blindledger policy`: tests, builds, signs and inspects OPA bundles of Rego policy.

use std::path::{Path, PathBuf};

use super::controller::ControllerApi;
use anyhow::Context as _;
use blindledger_ledger::dev::write_private;
use blindledger_policy::jose::Algorithm;
use blindledger_policy::{
    run_tests, sign_bundle, Bundle, BundleLimits, BundleVerifier, PolicyEngine, SigningKey,
};
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use crate::output;

/// `policy` verbs.
#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// Runs the `test_*` rules under a directory and reports coverage; fails when a test
    /// fails, when there are none, or below `--min-coverage`
    Test {
        /// Directory of `.rego` files (and `data.json` files placed by directory)
        dir: PathBuf,
        /// Lowest acceptable line coverage of the non-test files, in percent
        #[arg(long, value_name = "PERCENT", default_value_t = 0.0)]
        min_coverage: f64,
    },
    /// Builds an OPA bundle (tar.gz) from a directory, after checking that it compiles
    Build {
        /// Directory holding `.manifest`, `.rego` and `data.json` files
        dir: PathBuf,
        /// Output file
        #[arg(short = 'o', long = "out", value_name = "FILE")]
        output: PathBuf,
        /// Revision recorded in the manifest (e.g. a git commit)
        #[arg(long)]
        revision: String,
        /// Bundle name used in messages and decision logs
        #[arg(long, default_value = "blindledger")]
        name: String,
    },
    /// Signs a bundle in place (or into `--output`) as `opa build --signing-key` does
    Sign {
        /// Bundle file
        bundle: PathBuf,
        /// Private key, PEM: Ed25519 (`policy keygen`), RSA or ECDSA P-256/P-384/P-521, as
        /// PKCS#8, PKCS#1 or SEC1 (`openssl genpkey` writes PKCS#8); with `--alg HS*`, a file
        /// holding the shared secret (32 bytes or more)
        #[arg(long, value_name = "PEM")]
        key: PathBuf,
        /// Signature algorithm [default: the key's: RS256 for RSA as OPA, ES256/384/512 by
        /// curve, EdDSA]: RS256/384/512, PS256/384/512, ES256/384/512, EdDSA, HS256/384/512
        #[arg(long, value_name = "ALG", value_parser = parse_alg)]
        alg: Option<Algorithm>,
        /// Key id recorded in the signature; the ledger's `bundle_keys` maps it to the public key
        #[arg(long)]
        kid: String,
        /// Signature scope
        #[arg(long)]
        scope: Option<String>,
        /// Output file [default: the input]
        #[arg(short = 'o', long = "out", value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Prints a bundle's manifest, files and signature status
    Inspect {
        /// Bundle file
        bundle: PathBuf,
        /// Public key to verify the signature against: PEM (SPKI or PKCS#1) or a JWK
        #[arg(long, value_name = "PEM", requires = "kid")]
        key: Option<PathBuf>,
        /// Key id of `--key`
        #[arg(long)]
        kid: Option<String>,
    },
    /// Generates an Ed25519 signing key pair: FILE (private) and FILE.pub
    Keygen {
        /// Private key file to create
        file: PathBuf,
    },
    /// Shows the bundles the ledger enforces: active revision, last activation, last error
    Status,
    /// Pushes a signed bundle to the controller, which verifies it, runs its tests and
    /// replays recent decisions against it before activating it; prints the impact report
    Push {
        /// Signed bundle file
        bundle: PathBuf,
        /// Refuse activation when more than N replayed decisions would change
        #[arg(long, value_name = "N")]
        max_changed: Option<u64>,
        #[command(flatten)]
        controller: ControllerApi,
    },
    /// Lists the controller's bundle revisions, activations and pushes
    History {
        /// Bundle name: blindledger or risk
        #[arg(long, default_value = "blindledger")]
        bundle: String,
        #[command(flatten)]
        controller: ControllerApi,
    },
    /// Serves an earlier revision of the `blindledger` bundle again
    Rollback {
        /// The revision to restore
        revision: String,
        #[command(flatten)]
        controller: ControllerApi,
    },
}

/// Runs a `policy` verb.
pub fn run(command: PolicyCommand) -> anyhow::Result<()> {
    match command {
        PolicyCommand::Test { dir, min_coverage } => test(&dir, min_coverage),
        PolicyCommand::Build {
            dir,
            output,
            revision,
            name,
        } => build(&dir, &output, &revision, &name),
        PolicyCommand::Sign {
            bundle,
            key,
            alg,
            kid,
            scope,
            output,
        } => sign(
            &bundle,
            &key,
            alg,
            &kid,
            scope.as_deref(),
            output.as_deref(),
        ),
        PolicyCommand::Inspect { bundle, key, kid } => inspect(&bundle, key.as_deref(), kid),
        PolicyCommand::Keygen { file } => {
            let public = keygen(&file)?;
            let value = json!({ "private_key": file.display().to_string(), "public_key": public.display().to_string() });
            output::emit(value, || {
                println!(
                    "private key: {}\npublic key: {}",
                    file.display(),
                    public.display()
                )
            });
            Ok(())
        }
        PolicyCommand::Status
        | PolicyCommand::Push { .. }
        | PolicyCommand::History { .. }
        | PolicyCommand::Rollback { .. } => {
            anyhow::bail!("this verb talks to a service: use `remote`")
        }
    }
}

/// `policy push|history|rollback`: asks the controller.
pub async fn remote(ctx: &super::Context, command: PolicyCommand) -> anyhow::Result<()> {
    let token = match &ctx.token {
        Some(token) => Some(token.clone()),
        None => ctx.home()?.token()?,
    };
    let token = token.as_deref();
    let answer = match command {
        PolicyCommand::Push {
            bundle,
            max_changed,
            controller,
        } => {
            let bytes =
                std::fs::read(&bundle).with_context(|| format!("reading {}", bundle.display()))?;
            controller
                .call(token, |http, base| {
                    let mut request = http.post(format!("{base}/v1/policy/push")).body(bytes);
                    if let Some(n) = max_changed {
                        request = request.query(&[("max_changed", n)]);
                    }
                    request
                })
                .await?
        }
        PolicyCommand::History { bundle, controller } => {
            controller
                .call(token, |http, base| {
                    http.get(format!("{base}/v1/policy/history"))
                        .query(&[("bundle", bundle.as_str())])
                })
                .await?
        }
        PolicyCommand::Rollback {
            revision,
            controller,
        } => {
            controller
                .call(token, |http, base| {
                    http.post(format!("{base}/v1/policy/rollback/{revision}"))
                })
                .await?
        }
        PolicyCommand::Status => return status(ctx).await,
        _ => anyhow::bail!("not a controller verb"),
    };
    output::emit(answer.clone(), || print_answer(&answer));
    Ok(())
}

/// The controller's answer in lines: a push report, a history or a rollback.
fn print_answer(answer: &Value) {
    let text = |v: &Value| v.as_str().unwrap_or("-").to_string();
    if answer.get("outcome").is_some() {
        println!(
            "revision {}: {}",
            text(&answer["revision"]),
            text(&answer["outcome"])
        );
        if let Some(message) = answer["message"].as_str() {
            println!("  {message}");
        }
        if let Some(tests) = answer.get("tests").filter(|t| !t.is_null()) {
            let failed = tests["failed"].as_array().map_or(0, Vec::len);
            println!(
                "  tests: {} passed, {failed} failed; coverage {:.1}%",
                tests["passed"],
                tests["coverage_percent"].as_f64().unwrap_or_default()
            );
        }
        if let Some(impact) = answer.get("impact").filter(|i| !i.is_null()) {
            println!(
                "  impact: {} of the last {} logged decisions change ({} allow to deny, {} deny to allow)",
                impact["changed"], impact["replayed"], impact["allow_to_deny"], impact["deny_to_allow"]
            );
        }
        if let Some(active) = answer["active_revision"].as_str() {
            println!("  active revision: {active}");
        }
    } else if let Some(revisions) = answer["revisions"].as_array() {
        println!(
            "bundle {}, active revision {}",
            text(&answer["bundle"]),
            text(&answer["active"])
        );
        for revision in revisions {
            let at = revision["created_at"]
                .as_i64()
                .and_then(|ms| u64::try_from(ms).ok())
                .map(|ms| {
                    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
                    humantime::format_rfc3339_seconds(t).to_string()
                })
                .unwrap_or_else(|| "-".into());
            println!(
                "{} {:<24} {:<8} by {:<16} {at}",
                if revision["active"].as_bool() == Some(true) {
                    "*"
                } else {
                    " "
                },
                text(&revision["revision"]),
                text(&revision["origin"]),
                text(&revision["created_by"]),
            );
        }
    } else {
        println!(
            "{}: now revision {} (was {})",
            text(&answer["bundle"]),
            text(&answer["revision"]),
            text(&answer["previous"])
        );
    }
}

/// `policy status`: asks the ledger.
pub async fn status(ctx: &super::Context) -> anyhow::Result<()> {
    let bundles = ctx
        .connect()
        .await?
        .policy_status()
        .await
        .context("fetching the policy status")?;
    let activated_at = |bundle: &blindledger_client::proto::ledger::v1::PolicyBundleStatus| {
        bundle
            .last_successful_activation
            .and_then(|t| std::time::SystemTime::try_from(t).ok())
            .map(|t| humantime::format_rfc3339_seconds(t).to_string())
    };
    if output::json() {
        let items: Vec<Value> = bundles
            .iter()
            .map(|bundle| {
                json!({
                    "name": bundle.name,
                    "active_revision": (!bundle.active_revision.is_empty()).then_some(&bundle.active_revision),
                    "activated_at": activated_at(bundle),
                    "last_error": (!bundle.last_error.is_empty()).then_some(&bundle.last_error),
                })
            })
            .collect();
        output::emit(json!({ "bundles": items }), || {});
        return Ok(());
    }
    if bundles.is_empty() {
        println!("no bundles configured");
    }
    for bundle in bundles {
        let revision = match bundle.active_revision.as_str() {
            "" => "(none active)",
            r => r,
        };
        let activated = bundle
            .last_successful_activation
            .and_then(|t| std::time::SystemTime::try_from(t).ok())
            .map(|t| humantime::format_rfc3339_seconds(t).to_string())
            .unwrap_or_else(|| "never".into());
        println!(
            "{}: revision {revision}, activated {activated}",
            bundle.name
        );
        if !bundle.last_error.is_empty() {
            println!("  last error: {}", bundle.last_error);
        }
    }
    Ok(())
}

fn test(dir: &Path, min_coverage: f64) -> anyhow::Result<()> {
    let report = run_tests(dir).with_context(|| format!("testing {}", dir.display()))?;
    let failed = report.results.iter().filter(|r| !r.passed).count();
    if output::json() {
        let results: Vec<Value> = report
            .results
            .iter()
            .map(|r| {
                json!({
                    "package": r.package,
                    "name": r.name,
                    "passed": r.passed,
                    "duration_ms": r.duration.as_secs_f64() * 1000.0,
                    "error": r.error,
                })
            })
            .collect();
        let files: Vec<Value> = report
            .coverage
            .files
            .iter()
            .map(|f| json!({ "path": f.path, "covered": f.covered, "not_covered": f.not_covered }))
            .collect();
        output::emit(
            json!({
                "tests": results,
                "failed": failed,
                "coverage": { "percent": report.coverage.percent, "files": files },
            }),
            || {},
        );
    }
    for result in report.results.iter().filter(|_| !output::json()) {
        let verdict = if result.passed { "PASS" } else { "FAIL" };
        println!(
            "{verdict}  {}.{}  ({:?})",
            result.package, result.name, result.duration
        );
        if let Some(error) = &result.error {
            println!("      {error}");
        }
    }
    for file in report.coverage.files.iter().filter(|_| !output::json()) {
        println!(
            "coverage  {}  {} covered, {} not covered{}",
            file.path,
            file.covered.len(),
            file.not_covered.len(),
            lines(&file.not_covered)
        );
    }
    if !output::json() {
        println!(
            "{} tests, {failed} failed; coverage {:.1}%",
            report.results.len(),
            report.coverage.percent
        );
    }
    anyhow::ensure!(
        failed == 0,
        "{failed} of {} policy tests failed",
        report.results.len()
    );
    anyhow::ensure!(
        report.coverage.percent >= min_coverage,
        "coverage {:.1}% is below the required {min_coverage:.1}%",
        report.coverage.percent
    );
    Ok(())
}

fn lines(not_covered: &[u32]) -> String {
    if not_covered.is_empty() {
        return String::new();
    }
    let list: Vec<String> = not_covered.iter().map(u32::to_string).collect();
    format!(" (lines {})", list.join(", "))
}

fn build(dir: &Path, output: &Path, revision: &str, name: &str) -> anyhow::Result<()> {
    let bundle = Bundle::from_dir(name, dir, revision)
        .with_context(|| format!("reading {}", dir.display()))?;
    // Compile it now rather than in every service that would load it.
    let probe = serde_json::json!({"principal": "policy-build", "roles": [], "method": "/"});
    PolicyEngine::build(std::slice::from_ref(&bundle), &probe).context("compiling the policy")?;
    write(output, &bundle)?;
    let files = bundle.files().count();
    let value =
        json!({ "bundle": output.display().to_string(), "revision": revision, "files": files });
    output::emit(value, || {
        println!(
            "built {} (revision {revision}, {files} files)",
            output.display()
        )
    });
    Ok(())
}

fn read_bundle(path: &Path) -> anyhow::Result<Bundle> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Bundle::from_tar_gz(&name, &bytes, &BundleLimits::default())
        .with_context(|| format!("reading bundle {}", path.display()))
}

fn write(path: &Path, bundle: &Bundle) -> anyhow::Result<()> {
    std::fs::write(path, bundle.to_tar_gz()?).with_context(|| format!("writing {}", path.display()))
}

fn parse_alg(text: &str) -> Result<Algorithm, String> {
    text.parse()
        .map_err(|e: blindledger_policy::jose::JoseError| e.to_string())
}

fn sign(
    path: &Path,
    key: &Path,
    alg: Option<Algorithm>,
    kid: &str,
    scope: Option<&str>,
    output: Option<&Path>,
) -> anyhow::Result<()> {
    let mut bundle = read_bundle(path)?;
    let bytes = std::fs::read(key).with_context(|| format!("reading {}", key.display()))?;
    let key = match alg {
        Some(alg @ (Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)) => {
            SigningKey::hmac(bytes, alg)
        }
        alg => SigningKey::from_pem_with(&String::from_utf8_lossy(&bytes), alg),
    }
    .context("reading the signing key")?;
    sign_bundle(&mut bundle, &key, kid, scope)?;
    let output = output.unwrap_or(path);
    write(output, &bundle)?;
    let alg = key.algorithm();
    let value = json!({ "bundle": output.display().to_string(), "kid": kid, "alg": alg.as_str() });
    output::emit(value, || {
        println!("signed {} with key {kid} ({alg})", output.display())
    });
    Ok(())
}

fn inspect(path: &Path, key: Option<&Path>, kid: Option<String>) -> anyhow::Result<()> {
    let bundle = read_bundle(path)?;
    let signed = bundle.signatures().is_some();
    let verification = match (key, kid) {
        (Some(key), Some(kid)) => {
            let pem = std::fs::read_to_string(key)
                .with_context(|| format!("reading {}", key.display()))?;
            let verifier = BundleVerifier::new([(kid, pem)].into(), None, true)?;
            Some(verifier.verify(&bundle).map_err(|err| err.to_string()))
        }
        _ => None,
    };
    let files: Vec<Value> = bundle
        .files()
        .map(|(name, bytes)| json!({ "name": name, "bytes": bytes.len() }))
        .collect();
    let value = json!({
        "revision": bundle.manifest.revision,
        "roots": bundle.manifest.roots,
        "files": files,
        "signed": signed,
        "verification": verification.as_ref().map(|v| match v {
            Ok(()) => json!({ "valid": true }),
            Err(err) => json!({ "valid": false, "error": err }),
        }),
    });
    output::emit(value, || {
        println!("revision: {}", bundle.manifest.revision);
        println!("roots: {}", bundle.manifest.roots.join(", "));
        println!("files:");
        for (name, bytes) in bundle.files() {
            println!("  {name}  {} bytes", bytes.len());
        }
        println!("signature: {}", if signed { "present" } else { "none" });
        match &verification {
            Some(Ok(())) => println!("verification: valid"),
            Some(Err(err)) => println!("verification: INVALID: {err}"),
            None => {}
        }
    });
    if let Some(Err(_)) = verification {
        anyhow::bail!("the bundle's signature does not verify");
    }
    Ok(())
}

/// Generates an Ed25519 key pair: `file` (PKCS#8, owner-only) and `file.pub` (SPKI);
/// returns the public key's path.
pub fn keygen(file: &Path) -> anyhow::Result<PathBuf> {
    anyhow::ensure!(
        !file.exists(),
        "{} exists; not overwriting it",
        file.display()
    );
    let key = SigningKey::generate();
    write_private(file, key.to_pem()?.expose_secret().as_bytes())?;
    let public = PathBuf::from(format!("{}.pub", file.display()));
    std::fs::write(&public, key.public_key_pem()?)
        .with_context(|| format!("writing {}", public.display()))?;
    Ok(public)
}
