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
    /// Ed25519 public keys (PEM files) verifying bundle signatures, by key id.
    pub bundle_keys: &'a BTreeMap<String, PathBuf>,
    /// Refuse unsigned bundles.
    pub require_signed_bundles: bool,
    /// Signature scope bundles must carry, if any.
    pub bundle_scope: Option<&'a str>,
    /// How long bundle servers are asked to hold a poll (long polling); zero: off.
    pub long_poll: Duration,
}

impl PolicySettings<'_> {
    /// The gate, logging every decision to `sink`, and the loader that installs its engine.
    /// Nothing is loaded yet: until [`BundleLoader::reload`] succeeds every request is
    /// refused with `UNAVAILABLE`.
    pub fn build(
        &self,
        sink: Arc<dyn DecisionSink>,
    ) -> Result<(PolicyGate, Arc<BundleLoader>), GateError> {
        let gate = PolicyGate::new(self.region, sink);
        let verifier = BundleVerifier::new(
            read_key_files(self.bundle_keys)?,
            self.bundle_scope.map(str::to_owned),
            self.require_signed_bundles,
        )
        .map_err(|source| GateError::Bundle {
            bundle: "(verification keys)".to_owned(),
            source,
        })?;
        let mut bundles = Vec::new();
        match self.policy_bundle {
            Some(source) => bundles.push(bundle("blindledger", source)),
            None => tracing::warn!("no policy_bundle configured: every request is refused"),
        }
        if let Some(source) = self.risk_bundle {
            bundles.push(bundle("risk", source));
        }
        let loader = BundleLoader::new(gate.clone(), bundles, verifier, BundleLimits::default())?
            .with_long_polling(self.long_poll);
        Ok((gate, Arc::new(loader)))
    }
}

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
