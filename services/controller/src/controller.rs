//! The controller's domain core, shared by the HTTP API, the scheduled cycle and tests:
//! its keys, storage, served bundles and alert outbox. The operations live beside it:
//! `cycle` (risk), `push` (CI bundles), `history` (revisions and rollback).

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use blindledger_audit::admin::OfficerKeys;
use blindledger_gate::read_key_files;
use blindledger_policy::{Bundle, BundleVerifier, PolicyEngine, SigningKey};
use blindledger_store::now_ms;

use crate::alerts::AlertOutbox;
use crate::bundles::{build_engine, ActiveBundles, ServedBundle, POLICY_BUNDLE, RISK_BUNDLE};
use crate::config::ControllerConfig;
use crate::error::{ControllerError, Result};
use crate::metrics;
use crate::repo::{ActivationRow, BundleRow, Repo};

/// The controller: see the module docs.
pub struct Controller {
    pub(crate) config: ControllerConfig,
    pub(crate) repo: Repo,
    pub(crate) signing_key: SigningKey,
    pub(crate) ci_verifier: BundleVerifier,
    /// Verify officers' stored orders before they are published or carried out.
    pub(crate) officers: OfficerKeys,
    pub(crate) bundles: ActiveBundles,
    pub(crate) alerts: AlertOutbox,
    /// Serialises cycles, pushes and rollbacks: each reads the active bundles and then
    /// replaces one of them.
    pub(crate) lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("signing_kid", &self.config.signing_kid)
            .finish_non_exhaustive()
    }
}

impl Controller {
    /// Loads the keys named in `config`, and the active bundles from `repo`; serves the
    /// configured initial policy when no policy was ever activated.
    pub async fn new(
        config: ControllerConfig,
        repo: Repo,
        alerts: AlertOutbox,
    ) -> anyhow::Result<Self> {
        let key_path = config
            .signing_key
            .as_deref()
            .context("no signing_key configured: the controller signs the risk bundle")?;
        let pem = read(key_path)?;
        let signing_key = SigningKey::from_pem(&pem).context("reading the signing key")?;
        let ci_keys = read_key_files(&config.ci_keys)?;
        let ci_verifier = BundleVerifier::new(ci_keys, config.ci_scope.clone(), true)
            .context("loading the CI keys")?;
        let officers = OfficerKeys::from_pems(&read_key_files(&config.officer_keys)?)
            .context("loading the officer keys")?;
        if officers.is_empty() {
            tracing::warn!("no officer_keys configured: no freeze, revocation or rollback ordered by an officer is carried out");
        }
        let controller = Controller {
            config,
            repo,
            signing_key,
            ci_verifier,
            officers,
            bundles: ActiveBundles::default(),
            alerts,
            lock: tokio::sync::Mutex::new(()),
        };
        for name in [POLICY_BUNDLE, RISK_BUNDLE] {
            controller.load_active(name).await?;
        }
        if controller.bundles.get(POLICY_BUNDLE).is_none() {
            controller.activate_initial_policy().await?;
        }
        Ok(controller)
    }

    /// The storage, for tools and tests.
    pub fn repo(&self) -> &Repo {
        &self.repo
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &ControllerConfig {
        &self.config
    }

    /// The active revision of bundle `name` (`blindledger` or `risk`), as served.
    pub fn bundle(&self, name: &str) -> Option<Arc<ServedBundle>> {
        self.bundles.get(name)
    }

    /// The bundles being served, for the bundle server's long polls.
    pub(crate) fn served(&self) -> &ActiveBundles {
        &self.bundles
    }

    /// How many bundle long polls are held open now, waiting for a new revision.
    pub fn long_polls_held(&self) -> usize {
        self.bundles.held_polls()
    }

    /// The public key (SPKI PEM) services verify the risk bundle with.
    pub fn public_key_pem(&self) -> anyhow::Result<String> {
        Ok(self.signing_key.public_key_pem()?)
    }

    /// The alert outbox.
    pub fn alerts(&self) -> &AlertOutbox {
        &self.alerts
    }

    async fn load_active(&self, name: &str) -> anyhow::Result<()> {
        let Some(revision) = self.repo.active_revision(name).await? else {
            return Ok(());
        };
        let row =
            self.repo.bundle(name, &revision).await?.with_context(|| {
                format!("active bundle {name} revision {revision} is not stored")
            })?;
        let served = ServedBundle::from_archive(name, row.archive)
            .with_context(|| format!("reading stored bundle {name} revision {revision}"))?;
        metrics::bundle_active(name, &revision);
        self.bundles.set(served);
        Ok(())
    }

    async fn activate_initial_policy(&self) -> anyhow::Result<()> {
        let Some(path) = &self.config.initial_policy_bundle else {
            return Ok(());
        };
        let archive = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let served = ServedBundle::from_archive(POLICY_BUNDLE, archive)
            .with_context(|| format!("reading {}", path.display()))?;
        self.ci_verifier
            .verify(&served.bundle)
            .with_context(|| format!("verifying {} with the CI keys", path.display()))?;
        self.activate(served, "initial", "activate", "controller")
            .await?;
        Ok(())
    }

    /// Stores `served` (if new) with its activation, then serves it.
    pub(crate) async fn activate(
        &self,
        served: ServedBundle,
        origin: &str,
        action: &str,
        actor: &str,
    ) -> Result<ActivationRow> {
        let now = now_ms();
        let name = served.bundle.name.clone();
        let revision = served.revision().to_string();
        let row = BundleRow {
            name: name.clone(),
            revision: revision.clone(),
            sha256: served.sha256.clone(),
            archive: served.archive.to_vec(),
            origin: origin.to_string(),
            created_by: actor.to_string(),
            created_at: now,
        };
        let activation = ActivationRow {
            name: name.clone(),
            revision: revision.clone(),
            action: action.to_string(),
            actor: actor.to_string(),
            activated_at: now,
        };
        self.repo.activate_bundle(&row, &activation).await?;
        self.bundles.set(served);
        metrics::bundle_active(&name, &revision);
        tracing::info!(bundle = %name, %revision, action, actor, "bundle activated");
        Ok(activation)
    }

    /// Builds an engine over `bundles` off the async runtime, as services will.
    pub(crate) async fn check_engine(&self, bundles: Vec<Bundle>) -> Result<PolicyEngine> {
        let engine = tokio::task::spawn_blocking(move || build_engine(&bundles))
            .await
            .map_err(|e| ControllerError::Internal(anyhow::anyhow!("engine build task: {e}")))?;
        engine.map_err(|e| ControllerError::Conflict(format!("bundles do not build: {e}")))
    }
}

/// Reads a PEM file.
fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}
