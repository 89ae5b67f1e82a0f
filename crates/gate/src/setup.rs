//! What every gated service builds from its configuration: key files read, a gate whose
//! decision log is durable, and the loader that keeps its policy current.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use blindledger_policy::{BundleLimits, BundleVerifier};

use crate::error::GateError;
use crate::gate::PolicyGate;
use crate::loader::{BundleConfig, BundleLoader, BundleSource};
use crate::sink::DecisionSink;

/// Where a service's policy comes from and how its bundles are checked: the same keys in
/// every service's configuration.
#[derive(Debug, Clone, Copy)]
pub struct PolicySettings<'a> {
    /// The region the service runs in (data residency).
    pub region: &'a str,
    /// The `blindledger` rules bundle: a file or a bundle server URL.
    pub policy_bundle: Option<&'a BundleSource>,
    /// The controller's `risk` data bundle.
    pub risk_bundle: Option<&'a BundleSource>,
    /// Ed25519 public keys (PEM files) verifying bundle signatures, by key id: the rules
    /// bundle's, and the risk bundle's too unless `risk_bundle_keys` is set.
    pub bundle_keys: &'a BTreeMap<String, PathBuf>,
    /// Keys verifying the risk bundle only (the controller's): when set, they cannot sign
    /// the rules and `bundle_keys` cannot sign risk data. No key may be in both.
    pub risk_bundle_keys: &'a BTreeMap<String, PathBuf>,
    /// Methods refused with `UNAVAILABLE` while a configured risk bundle is not active
    /// (the service's money movements): freezes, revoked keys and limits live in it.
    pub risk_required_for: &'a [&'a str],
    /// Refuse unsigned bundles.
    pub require_signed_bundles: bool,
    /// Signature scope bundles must carry, if any.
    pub bundle_scope: Option<&'a str>,
    /// How long bundle servers are asked to hold a poll (long polling); zero: off.
    pub long_poll: Duration,
    /// A file holding the bearer token sent to bundle servers (the controller requires
    /// one with the `bundle_reader` role).
    pub bundle_token_file: Option<&'a std::path::Path>,
    /// TLS of the connections to bundle servers (CA, client certificate for mTLS).
    pub bundle_tls: Option<&'a crate::ClientTls>,
    /// Where the risk bundle's highest activated revision is kept across restarts, and the
    /// service's name there; none: in memory only.
    pub revision_floor: Option<(&'a blindledger_store::Db, &'a str)>,
    /// Where decision logs are shipped besides the durable sink (OPA's decision-log service
    /// API, or a JSON-lines file); none: not shipped.
    pub decision_log: Option<&'a crate::ShipTarget>,
    /// The instance id decision events are labelled with (`labels.id`); none: random.
    pub instance_id: Option<&'a str>,
}

impl PolicySettings<'_> {
    /// The gate, logging every decision to `sink`, and the loader that installs its engine.
    /// Nothing is loaded yet: until [`BundleLoader::reload`] succeeds every request is
    /// refused with `UNAVAILABLE`.
    pub fn build(
        &self,
        sink: Arc<dyn DecisionSink>,
    ) -> Result<(PolicyGate, Arc<BundleLoader>), GateError> {
        let sink: Arc<dyn DecisionSink> = match self.decision_log {
            Some(target) => Arc::new(
                crate::ShippingSink::new(sink, target.clone(), crate::ShipLimits::default())
                    .map_err(GateError::Internal)?,
            ),
            None => sink,
        };
        let instance_id = match self.instance_id {
            Some(id) => id.to_string(),
            None => uuid::Uuid::new_v4().to_string(),
        };
        let gate = PolicyGate::with_instance_id(self.region, sink, &instance_id);
        let rule_keys = read_key_files(self.bundle_keys)?;
        let risk_keys = read_key_files(self.risk_bundle_keys)?;
        if let Some(kid) = risk_keys
            .iter()
            .find(|(_, pem)| rule_keys.values().any(|rule| rule.trim() == pem.trim()))
            .map(|(kid, _)| kid)
        {
            return Err(GateError::SharedBundleKey(kid.clone()));
        }
        let verifier = |keys| {
            BundleVerifier::new(
                keys,
                self.bundle_scope.map(str::to_owned),
                self.require_signed_bundles,
            )
            .map_err(|source| GateError::Bundle {
                bundle: "(verification keys)".to_owned(),
                source,
            })
        };
        let rules_verifier = verifier(rule_keys)?;
        let mut bundles = Vec::new();
        match self.policy_bundle {
            Some(source) => bundles.push(bundle("blindledger", source)),
            None => tracing::warn!("no policy_bundle configured: every request is refused"),
        }
        if let Some(source) = self.risk_bundle {
            bundles.push(bundle(RISK_BUNDLE, source));
        }
        let mut loader = BundleLoader::new(
            gate.clone(),
            bundles,
            rules_verifier,
            BundleLimits::default(),
        )?
        .with_long_polling(self.long_poll);
        if let Some(path) = self.bundle_token_file {
            loader = loader.with_bearer_token_file(path.to_path_buf());
        }
        if let Some(tls) = self.bundle_tls.filter(|tls| !tls.is_empty()) {
            loader = loader.with_client_tls(tls)?;
        }
        if self.risk_bundle.is_some() {
            loader = loader.with_monotonic_revisions(RISK_BUNDLE);
            if let Some((db, service)) = &self.revision_floor {
                loader = loader.with_revision_floor((*db).clone(), service);
            }
            if risk_keys.is_empty() {
                tracing::warn!(
                    "no risk_bundle_keys configured: the keys in bundle_keys verify both the \
                     rules and the risk data, so the controller's key could sign rules"
                );
            } else {
                loader = loader.with_verifier(RISK_BUNDLE, verifier(risk_keys)?);
            }
            gate.require_bundle(RISK_BUNDLE, self.risk_required_for);
        }
        Ok((gate, Arc::new(loader)))
    }
}

/// The controller's data bundle: tiers, limits, freezes and revoked keys.
const RISK_BUNDLE: &str = "risk";

fn bundle(name: &str, source: &BundleSource) -> BundleConfig {
    BundleConfig {
        name: name.to_owned(),
        source: source.clone(),
    }
}

/// Reads the PEM files of a `key id → path` map, as every service configures its keys.
pub fn read_key_files(
    keys: &BTreeMap<String, PathBuf>,
) -> Result<BTreeMap<String, String>, GateError> {
    keys.iter()
        .map(|(kid, path)| match std::fs::read_to_string(path) {
            Ok(pem) => Ok((kid.clone(), pem)),
            Err(source) => Err(GateError::KeyFile {
                kid: kid.clone(),
                path: path.clone(),
                source,
            }),
        })
        .collect()
}

/// How a service verifies access tokens, as its configuration says.
#[derive(Debug, Clone, Copy)]
pub struct TokenSettings<'a> {
    /// Public keys (PEM or JWK files) by key id.
    pub keys: &'a BTreeMap<String, PathBuf>,
    /// An identity provider's JWKS URL, whose keys are trusted too.
    pub jwks_url: Option<&'a str>,
    /// Required `iss`.
    pub issuer: &'a str,
    /// Required `aud` (one of).
    pub audience: &'a str,
    /// The claim (or dotted path) roles are read from.
    pub roles_claim: &'a str,
    /// The claim (or dotted path) tenants are read from.
    pub tenants_claim: &'a str,
}

impl TokenSettings<'_> {
    /// The verifier; `what` says in the error which service refuses to start without keys.
    /// With a JWKS URL, its keys are fetched in the background (needs a Tokio runtime).
    pub fn verifier(&self, what: &str) -> anyhow::Result<crate::TokenVerifier> {
        use anyhow::Context as _;
        anyhow::ensure!(
            !self.keys.is_empty() || self.jwks_url.is_some(),
            "neither token_keys nor token_jwks_url configured: {what}"
        );
        let keys = read_key_files(self.keys)?;
        let mut verifier = crate::TokenVerifier::new(&keys, self.issuer, self.audience)
            .context("loading token keys")?
            .with_claims(crate::auth::ClaimNames {
                roles: self.roles_claim.to_string(),
                tenants: self.tenants_claim.to_string(),
            });
        if let Some(url) = self.jwks_url {
            let jwks = crate::auth::Jwks::new(url, crate::auth::jwks::JwksTiming::default())
                .context("token_jwks_url")?;
            verifier = verifier.with_jwks(jwks);
        }
        Ok(verifier)
    }
}
