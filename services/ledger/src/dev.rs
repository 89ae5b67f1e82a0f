//! Development credentials: what `blindledger dev` and the tests provision so that a ledger
//! runs with its real gate (signed tokens, a signed policy bundle) and no manual set-up.
//! Production configuration has none of this: its keys and bundles come from outside.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;

use blindledger_gate::{BundleSource, TokenIssuer};
use blindledger_policy::{sign_bundle, Bundle, SigningKey};

use crate::config::LedgerConfig;

/// Key id of development tokens and bundle signatures.
pub const DEV_KID: &str = "dev";

/// Keys and a signed policy bundle under one directory.
pub struct DevCredentials {
    dir: PathBuf,
    issuer: TokenIssuer,
    bundle_key: SigningKey,
}

impl std::fmt::Debug for DevCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevCredentials")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl DevCredentials {
    /// Creates (or reuses) a token key pair and a bundle signing key pair in `dir`, and
    /// builds and signs the policy in `policies` as `dir/policy.tar.gz`, revision `revision`.
    pub fn provision(dir: &Path, policies: &Path, revision: &str) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let token_key = key_pair(dir, "token")?;
        let bundle_key = key_pair(dir, "bundle")?;
        let mut bundle = Bundle::from_dir("blindledger", policies, revision)
            .with_context(|| format!("reading the policy in {}", policies.display()))?;
        sign_bundle(&mut bundle, &bundle_key, DEV_KID, None).context("signing the policy")?;
        write_private(&dir.join("policy.tar.gz"), &bundle.to_tar_gz()?)?;
        let defaults = LedgerConfig::default();
        let issuer = TokenIssuer::new(
            token_key.to_pem()?.expose_secret(),
            DEV_KID,
            &defaults.token_issuer,
            &defaults.token_audience,
        )?
        // Development tokens are for every service of the stack; `token issue` names one.
        .for_audiences(&blindledger_gate::audiences::ALL);
        Ok(Self {
            dir: dir.to_path_buf(),
            issuer,
            bundle_key,
        })
    }

    /// Points `config` at these keys and this bundle.
    pub fn configure(&self, config: &mut LedgerConfig) {
        config.policy_bundle = Some(BundleSource::File(self.dir.join("policy.tar.gz")));
        config.bundle_keys = [(DEV_KID.to_owned(), self.dir.join("bundle.pub"))].into();
        config.token_keys = [(DEV_KID.to_owned(), self.dir.join("token.pub"))].into();
        config.require_signed_bundles = true;
    }

    /// Signs `bundle` with the development bundle key and returns its archive.
    pub fn signed(&self, mut bundle: Bundle) -> anyhow::Result<Vec<u8>> {
        sign_bundle(&mut bundle, &self.bundle_key, DEV_KID, None).context("signing the bundle")?;
        Ok(bundle.to_tar_gz()?)
    }

    /// Issues a token for `subject` with `roles` on `tenants` (empty: none).
    pub fn token(
        &self,
        subject: &str,
        roles: &[&str],
        tenants: &[&str],
        ttl: Duration,
    ) -> anyhow::Result<String> {
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        let tenants: Vec<String> = tenants.iter().map(|t| t.to_string()).collect();
        Ok(self.issuer.issue(subject, &roles, &tenants, ttl)?)
    }
}

/// Loads `dir/<name>.key`, or generates it with its `dir/<name>.pub` (Ed25519: PKCS#8 and
/// SPKI PEM, the format every BlindLedger key file takes).
pub fn key_pair(dir: &Path, name: &str) -> anyhow::Result<SigningKey> {
    let private = dir.join(format!("{name}.key"));
    if private.exists() {
        let pem = std::fs::read_to_string(&private)
            .with_context(|| format!("reading {}", private.display()))?;
        return Ok(SigningKey::from_pem(&pem)?);
    }
    let key = SigningKey::generate();
    write_private(&private, key.to_pem()?.expose_secret().as_bytes())?;
    std::fs::write(dir.join(format!("{name}.pub")), key.public_key_pem()?)
        .with_context(|| format!("writing {name}.pub"))?;
    Ok(key)
}

/// Writes a file readable by its owner only (keys, tokens).
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))
}
