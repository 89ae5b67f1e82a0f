//! The `risk` bundle: data only, under the root `risk`, read by the shipped policy as
//! `data.risk.tiers["tenant/account"]` and `data.risk.limits[tier]`.
//!
//! `risk/data.json`:
//! ```json
//! {"tiers": {"acme/mallory": "high"},
//!  "limits": {"medium": {"max_amount": 100000, "window_limit": 500000, "window_seconds": 86400},
//!             "high": {...}},
//!  "scores": {"acme/mallory": 0.7312},
//!  "principals": {"mallory": {"tier": "high", "score": 0.7011}},
//!  "frozen": {"acme/alice": {"since": 1795000000000}},
//!  "revoked_keys": {"acme/3f1c…": {"since": 1795000000000}},
//!  "model_version": 7}
//! ```
//! Only entities above `low` are listed (the policy's default is `low`). `frozen` holds the
//! accounts compliance officers froze with signed commands, `revoked_keys` the tenant keys
//! (`tenant/key_id`) they revoked (the audit service records both; the controller publishes
//! them here, so the one data bundle the services already poll carries them). The revision is
//! `<counter>-<digest>`: a counter that grows with every revision, and the first 16 hex
//! digits of the SHA-256 of the tiers and limits, so a revision changes exactly when what
//! the policy enforces changes; scores alone never make a new revision.

use std::collections::BTreeMap;

use blindledger_policy::{sign_bundle, Bundle, BundleError, SigningKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::alerts::Alert;
use crate::bundles::{ServedBundle, POLICY_BUNDLE};
use crate::controller::Controller;
use crate::cycle::RiskBundleOutcome;
use crate::error::Result;
use crate::features::EntityKind;
use crate::repo::{EntityRiskRow, OfficerOrders};
use crate::tier::{RiskTier, TierLimits};

pub use crate::bundles::RISK_BUNDLE;

/// A principal's entry in the bundle.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PrincipalRisk {
    /// Its tier (informational: the shipped policy keys tiers by account).
    pub tier: RiskTier,
    /// Its latest score.
    pub score: f64,
}

/// The contents of `risk/data.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskData {
    /// Tier of every account above `low`, by `tenant/account`.
    pub tiers: BTreeMap<String, RiskTier>,
    /// Limits per tier.
    pub limits: BTreeMap<RiskTier, TierLimits>,
    /// Latest score of the accounts in `tiers`.
    pub scores: BTreeMap<String, f64>,
    /// Principals above `low`.
    pub principals: BTreeMap<String, PrincipalRisk>,
    /// Accounts frozen by an officer, by `tenant/account`: the policy denies their movements.
    #[serde(default)]
    pub frozen: BTreeMap<String, OfficerOrder>,
    /// Tenant keys revoked by an officer, by `tenant/key_id`: the policy denies computing
    /// under them.
    #[serde(default)]
    pub revoked_keys: BTreeMap<String, OfficerOrder>,
    /// Version of the account model that produced the scores (0: none yet).
    pub model_version: i64,
}

/// A frozen account's or revoked key's entry in the bundle. The officer and the reason
/// stay in the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfficerOrder {
    /// When it was ordered (Unix ms).
    pub since: i64,
}

impl RiskData {
    /// Builds the data from the entities above `low`.
    pub fn new(
        elevated: &[EntityRiskRow],
        limits: &BTreeMap<RiskTier, TierLimits>,
        model_version: i64,
    ) -> Self {
        let mut data = RiskData {
            tiers: BTreeMap::new(),
            limits: limits.clone(),
            scores: BTreeMap::new(),
            principals: BTreeMap::new(),
            frozen: BTreeMap::new(),
            revoked_keys: BTreeMap::new(),
            model_version,
        };
        for row in elevated.iter().filter(|r| r.tier > RiskTier::Low) {
            let score = (row.score * 10_000.0).round() / 10_000.0;
            match row.kind {
                EntityKind::Account => {
                    data.tiers.insert(row.entity.clone(), row.tier);
                    data.scores.insert(row.entity.clone(), score);
                }
                EntityKind::Principal => {
                    let entry = PrincipalRisk {
                        tier: row.tier,
                        score,
                    };
                    data.principals.insert(row.entity.clone(), entry);
                }
            }
        }
        data
    }

    /// Adds what officers ordered: frozen accounts and revoked keys.
    pub fn with_orders(mut self, orders: OfficerOrders) -> Self {
        let entries = |orders: Vec<(String, i64)>| {
            orders
                .into_iter()
                .map(|(key, since)| (key, OfficerOrder { since }))
                .collect()
        };
        self.frozen = entries(orders.frozen);
        self.revoked_keys = entries(orders.revoked_keys);
        self
    }

    /// The SHA-256 (hex) of what the policy enforces: tiers (accounts and principals),
    /// limits, frozen accounts and revoked keys. Maps are ordered, so equal contents give equal digests.
    pub fn enforced_digest(&self) -> String {
        let principals: BTreeMap<&String, RiskTier> =
            self.principals.iter().map(|(k, p)| (k, p.tier)).collect();
        let enforced = serde_json::json!({
            "tiers": self.tiers,
            "limits": self.limits,
            "principals": principals,
            "frozen": self.frozen.keys().collect::<Vec<_>>(),
            "revoked_keys": self.revoked_keys.keys().collect::<Vec<_>>(),
        });
        hex::encode(Sha256::digest(enforced.to_string().as_bytes()))
    }

    /// The revision label of this data as the `counter`-th revision.
    pub fn revision(&self, counter: i64) -> String {
        format!("{counter}-{}", &self.enforced_digest()[..16])
    }
}

/// Whether `revision` (as made by [`RiskData::revision`]) carries the same enforced data.
pub fn same_enforced_data(revision: &str, data: &RiskData) -> bool {
    revision
        .split_once('-')
        .is_some_and(|(_, digest)| data.enforced_digest().starts_with(digest))
}

/// Builds and signs the bundle of `data` as `revision`.
pub fn build(
    data: &RiskData,
    revision: &str,
    key: &SigningKey,
    kid: &str,
    scope: Option<&str>,
) -> Result<Bundle, BundleError> {
    let json_error = |source| BundleError::InvalidJson {
        path: "risk/data.json".to_string(),
        source,
    };
    let mut bundle = Bundle::new(RISK_BUNDLE);
    let manifest = serde_json::json!({"revision": revision, "roots": [RISK_BUNDLE]});
    bundle.insert_file(".manifest", manifest.to_string().into_bytes())?;
    let data = serde_json::to_vec_pretty(data).map_err(json_error)?;
    bundle.insert_file("risk/data.json", data)?;
    sign_bundle(&mut bundle, key, kid, scope)?;
    Ok(bundle)
}

impl Controller {
    /// Serves a new risk bundle when the tiers, limits or frozen accounts differ from the
    /// active one's (or none is active), after checking that it builds with the active
    /// policy, as services will. A bundle that does not build is not served, and raises an
    /// alert. `model_version` none keeps the active bundle's.
    pub(crate) async fn publish_risk(
        &self,
        model_version: Option<i64>,
    ) -> Result<RiskBundleOutcome> {
        let elevated = self
            .repo
            .risk_rows(None, RiskTier::Medium, u32::MAX)
            .await?;
        let orders = self.officer_orders().await?;
        let model_version = match model_version {
            Some(version) => version,
            None => self.active_model_version(),
        };
        let data =
            RiskData::new(&elevated, &self.config.tier_limits, model_version).with_orders(orders);
        if let Some(active) = self.bundles.get(RISK_BUNDLE) {
            if same_enforced_data(active.revision(), &data) {
                let revision = active.revision().to_string();
                return Ok(RiskBundleOutcome {
                    revision,
                    new: false,
                });
            }
        }
        let revision = data.revision(self.repo.bundle_count(RISK_BUNDLE).await? + 1);
        let scope = self.config.signing_scope.as_deref();
        let kid = &self.config.signing_kid;
        let bundle = build(&data, &revision, &self.signing_key, kid, scope)?;
        // Without a policy there is nothing to build with (services deny everything then).
        let policy = self.bundles.get(POLICY_BUNDLE).map(|p| p.bundle.clone());
        let check = match policy {
            Some(policy) => self
                .check_engine(vec![policy, bundle.clone()])
                .await
                .map(drop),
            None => Ok(()),
        };
        if let Err(error) = check {
            let alert = Alert::BundleRefused {
                bundle: RISK_BUNDLE.to_string(),
                revision: revision.clone(),
                reason: error.to_string(),
            };
            self.alerts.raise(&alert).await;
            return Err(error);
        }
        let archive = bundle.to_tar_gz()?;
        let served = ServedBundle::new(bundle, archive);
        self.activate(served, "risk", "activate", "controller")
            .await?;
        Ok(RiskBundleOutcome {
            revision,
            new: true,
        })
    }

    /// The model version in the active risk bundle (0 when none is active).
    fn active_model_version(&self) -> i64 {
        self.bundles
            .get(RISK_BUNDLE)
            .and_then(|served| served.bundle.data().ok())
            .and_then(|data| data[RISK_BUNDLE]["model_version"].as_i64())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: EntityKind, entity: &str, tier: RiskTier, score: f64) -> EntityRiskRow {
        EntityRiskRow {
            kind,
            entity: entity.into(),
            tier,
            score,
            model_version: 3,
            features: "{}".into(),
            top_features: "[]".into(),
            tier_since: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn revisions_change_with_tiers_not_scores() {
        let limits = TierLimits::defaults();
        let a = RiskData::new(
            &[row(EntityKind::Account, "t/a", RiskTier::High, 0.71)],
            &limits,
            3,
        );
        let b = RiskData::new(
            &[row(EntityKind::Account, "t/a", RiskTier::High, 0.74)],
            &limits,
            4,
        );
        let c = RiskData::new(
            &[row(EntityKind::Account, "t/a", RiskTier::Medium, 0.64)],
            &limits,
            4,
        );
        assert!(same_enforced_data(&a.revision(1), &b));
        assert!(!same_enforced_data(&a.revision(1), &c));
        let frozen = b.clone().with_orders(OfficerOrders {
            frozen: vec![("t/b".to_string(), 5)],
            revoked_keys: Vec::new(),
        });
        assert!(!same_enforced_data(&a.revision(1), &frozen));
        let revoked = b.clone().with_orders(OfficerOrders {
            frozen: Vec::new(),
            revoked_keys: vec![("t/k1".to_string(), 6)],
        });
        assert!(!same_enforced_data(&a.revision(1), &revoked));
        assert!(!same_enforced_data(&frozen.revision(2), &revoked));
        let key = SigningKey::generate();
        let bundle = build(&a, &a.revision(1), &key, "controller", None).unwrap();
        assert_eq!(bundle.manifest.roots, ["risk"]);
        let data = bundle.data().unwrap();
        assert_eq!(data["risk"]["tiers"]["t/a"], "high");
        assert_eq!(data["risk"]["limits"]["high"]["max_amount"], 10_000);
        let bundle = build(&frozen, &frozen.revision(2), &key, "controller", None).unwrap();
        assert_eq!(bundle.data().unwrap()["risk"]["frozen"]["t/b"]["since"], 5);
    }
}
