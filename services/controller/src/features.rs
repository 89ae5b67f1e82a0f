//! Feature extraction: per account and per principal, from decision-log and job metadata
//! over a window ending now, compared with a baseline window before it.
//!
//! Only metadata is read (who, which method, allowed or not, when, which accounts): the
//! controller holds no key and never sees an amount. Rows are fed one at a time, in one pass,
//! with constant work per row; memory grows with the number of entities and of distinct
//! counterparties, not with the number of rows.

use serde::{Deserialize, Serialize};

use crate::config::ControllerConfig;

mod extract;

pub use extract::FeatureExtractor;

/// Version of the feature definitions below, recorded with every trained model.
pub const FEATURE_VERSION: u32 = 1;
/// The features of one entity, in column order.
pub const FEATURE_NAMES: [&str; 8] = [
    "calls",
    "calls_per_minute",
    "denial_ratio",
    "night_fraction",
    "distinct_counterparties",
    "new_counterparties",
    "burstiness",
    "transfers_out",
];
/// Number of features per entity.
pub const N_FEATURES: usize = FEATURE_NAMES.len();

pub(crate) const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;

/// What is scored: accounts (`tenant/account`, the key the policy reads) or principals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntityKind {
    /// An account, keyed `tenant/account`.
    Account,
    /// An authenticated caller, keyed by its subject.
    Principal,
}

impl EntityKind {
    /// Both kinds.
    pub const ALL: [EntityKind; 2] = [EntityKind::Account, EntityKind::Principal];

    /// The kind's name in the database and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Account => "account",
            EntityKind::Principal => "principal",
        }
    }
}

/// The time ranges of one extraction: `[baseline_start, start)` and `[start, end)`, in Unix
/// milliseconds, and which hours (UTC) count as night.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureWindow {
    /// Start of the baseline window.
    pub baseline_start: i64,
    /// Start of the scored window (end of the baseline).
    pub start: i64,
    /// End of the scored window, exclusive.
    pub end: i64,
    /// First night hour.
    pub night_start_hour: u32,
    /// Hour night ends.
    pub night_end_hour: u32,
}

impl FeatureWindow {
    /// The windows of `config` ending at `now_ms`.
    pub fn ending_at(now_ms: i64, config: &ControllerConfig) -> Self {
        let window = i64::try_from(config.window_ms).unwrap_or(i64::MAX / 4);
        let baseline = i64::try_from(config.baseline_ms).unwrap_or(i64::MAX / 4);
        let start = now_ms.saturating_sub(window);
        FeatureWindow {
            baseline_start: start.saturating_sub(baseline),
            start,
            end: now_ms,
            night_start_hour: config.night_start_hour,
            night_end_hour: config.night_end_hour,
        }
    }

    pub(crate) fn minutes(&self) -> f64 {
        ((self.end - self.start) as f64 / MINUTE_MS as f64).max(1.0)
    }

    pub(crate) fn is_night(&self, at_ms: i64) -> bool {
        let hour = u32::try_from(at_ms.div_euclid(HOUR_MS).rem_euclid(24)).unwrap_or(0);
        let (start, end) = (self.night_start_hour, self.night_end_hour);
        if start <= end {
            (start..end).contains(&hour)
        } else {
            hour >= start || hour < end
        }
    }
}

/// One decision-log row, reduced to what features use.
#[derive(Debug, Clone, Copy)]
pub struct DecisionFacts<'a> {
    /// When it was logged (Unix ms).
    pub logged_at: i64,
    /// The authenticated caller.
    pub principal: &'a str,
    /// The full gRPC method.
    pub method: &'a str,
    /// Whether the policy allowed it.
    pub allowed: bool,
    /// `input.resource.tenant`, when present.
    pub tenant: Option<&'a str>,
    /// `input.resource.account`, when present.
    pub account: Option<&'a str>,
    /// Whether the caller's tenant claims name `tenant`: the account's own tenant acted.
    /// Only such calls describe the account; others are attempts on it, counted apart.
    pub own_tenant: bool,
}

/// One job row, reduced to its metadata.
#[derive(Debug, Clone, Copy)]
pub struct JobFacts<'a> {
    /// When it was submitted (Unix ms).
    pub created_at: i64,
    /// Its tenant.
    pub tenant: &'a str,
    /// `transfer`, `deposit`, `withdraw`, `aggregate`...
    pub kind: &'a str,
    /// The account it acts on (a transfer's source).
    pub account_a: &'a str,
    /// A transfer's destination.
    pub account_b: Option<&'a str>,
}

/// The features of one entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityFeatures {
    /// `tenant/account` or the principal.
    pub key: String,
    /// Values in the order of [`FEATURE_NAMES`].
    pub values: [f64; N_FEATURES],
}

/// The features of every entity active in the scored window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeatureSet {
    /// Accounts, sorted by key.
    pub accounts: Vec<EntityFeatures>,
    /// Principals, sorted by key.
    pub principals: Vec<EntityFeatures>,
    /// Decision rows read (both windows).
    pub decision_rows: u64,
    /// Job rows read (both windows).
    pub job_rows: u64,
    /// Calls on each account (`tenant/account`) in the scored window by callers outside its
    /// tenant, all of them denied or not: a signal about the callers, never a feature of the
    /// account, so that no one can raise another tenant's tier by calling on its accounts.
    pub outside_attempts: std::collections::BTreeMap<String, u64>,
}

impl FeatureSet {
    /// The entities of one kind.
    pub fn of(&self, kind: EntityKind) -> &[EntityFeatures] {
        match kind {
            EntityKind::Account => &self.accounts,
            EntityKind::Principal => &self.principals,
        }
    }
}

#[cfg(test)]
mod tests;
