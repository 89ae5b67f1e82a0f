//! `blindledger policy`: tests, builds, signs and inspects OPA bundles of Rego policy.

use std::path::{Path, PathBuf};

use super::controller::{print_json, ControllerApi};
use anyhow::Context as _;
use blindledger_ledger::dev::write_private;
use blindledger_policy::{
    run_tests, sign_bundle, Bundle, BundleLimits, BundleVerifier, PolicyEngine, SigningKey,
};
use secrecy::ExposeSecret;

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
        #[arg(short, long, value_name = "FILE")]
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
        /// Ed25519 private key, PKCS#8 PEM (`policy keygen` or `openssl genpkey -algorithm ed25519`)
        #[arg(long, value_name = "PEM")]
        key: PathBuf,
        /// Key id recorded in the signature; the ledger's `bundle_keys` maps it to the public key
        #[arg(long)]
        kid: String,
        /// Signature scope
        #[arg(long)]
        scope: Option<String>,
        /// Output file [default: the input]
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Prints a bundle's manifest, files and signature status
    Inspect {
        /// Bundle file
        bundle: PathBuf,
        /// Public key (SPKI PEM) to verify the signature against
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
            kid,
            scope,
            output,
        } => sign(&bundle, &key, &kid, scope.as_deref(), output.as_deref()),
        PolicyCommand::Inspect { bundle, key, kid } => inspect(&bundle, key.as_deref(), kid),
        PolicyCommand::Keygen { file } => keygen(&file),
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
    print_json(&answer)
}

/// `policy status`: asks the ledger.
pub async fn status(ctx: &super::Context) -> anyhow::Result<()> {
    let bundles = ctx
        .connect()
        .await?
        .policy_status()
        .await
        .context("fetching the policy status")?;
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
    for result in &report.results {
        let verdict = if result.passed { "PASS" } else { "FAIL" };
        println!(
            "{verdict}  {}.{}  ({:?})",
            result.package, result.name, result.duration
        );
        if let Some(error) = &result.error {
            println!("      {error}");
        }
    }
    for file in &report.coverage.files {
        println!(
            "coverage  {}  {} covered, {} not covered{}",
            file.path,
            file.covered.len(),
            file.not_covered.len(),
            lines(&file.not_covered)
        );
    }
    let failed = report.results.iter().filter(|r| !r.passed).count();
    println!(
        "{} tests, {failed} failed; coverage {:.1}%",
        report.results.len(),
        report.coverage.percent
    );
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
    println!(
        "built {} (revision {revision}, {} files)",
        output.display(),
        bundle.files().count()
    );
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

fn sign(
    path: &Path,
    key: &Path,
    kid: &str,
    scope: Option<&str>,
    output: Option<&Path>,
) -> anyhow::Result<()> {
    let mut bundle = read_bundle(path)?;
    let pem = std::fs::read_to_string(key).with_context(|| format!("reading {}", key.display()))?;
    let key = SigningKey::from_pem(&pem).context("reading the signing key")?;
    sign_bundle(&mut bundle, &key, kid, scope)?;
    let output = output.unwrap_or(path);
    write(output, &bundle)?;
    println!("signed {} with key {kid}", output.display());
    Ok(())
}

fn inspect(path: &Path, key: Option<&Path>, kid: Option<String>) -> anyhow::Result<()> {
    let bundle = read_bundle(path)?;
    println!("revision: {}", bundle.manifest.revision);
    println!("roots: {}", bundle.manifest.roots.join(", "));
    println!("files:");
    for (name, bytes) in bundle.files() {
        println!("  {name}  {} bytes", bytes.len());
    }
    let signed = bundle.signatures().is_some();
    println!("signature: {}", if signed { "present" } else { "none" });
    if let (Some(key), Some(kid)) = (key, kid) {
        let pem =
            std::fs::read_to_string(key).with_context(|| format!("reading {}", key.display()))?;
        let verifier = BundleVerifier::new([(kid, pem)].into(), None, true)?;
        match verifier.verify(&bundle) {
            Ok(()) => println!("verification: valid"),
            Err(err) => {
                println!("verification: INVALID: {err}");
                anyhow::bail!("the bundle's signature does not verify");
            }
        }
    }
    Ok(())
}

/// Generates an Ed25519 key pair: `file` (PKCS#8, owner-only) and `file.pub` (SPKI).
pub fn keygen(file: &Path) -> anyhow::Result<()> {
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
    println!(
        "private key: {}\npublic key: {}",
        file.display(),
        public.display()
    );
    Ok(())
}
