//! The one-pass accumulation of rows into per-entity counts.

use std::collections::{HashMap, HashSet};

use super::{
    DecisionFacts, EntityFeatures, FeatureSet, FeatureWindow, JobFacts, MINUTE_MS, N_FEATURES,
};

/// Running counts of one entity.
#[derive(Default)]
struct Activity {
    active: bool,
    calls: u64,
    denied: u64,
    night: u64,
    minute: i64,
    minute_calls: u64,
    max_minute_calls: u64,
    transfers_out: u64,
    baseline_peers: HashSet<u32>,
    recent_peers: HashSet<u32>,
}

impl Activity {
    fn call(&mut self, at: i64, allowed: bool, night: bool) {
        self.active = true;
        self.calls += 1;
        self.denied += u64::from(!allowed);
        self.night += u64::from(night);
        let minute = at.div_euclid(MINUTE_MS);
        if self.calls == 1 || minute != self.minute {
            self.minute = minute;
            self.minute_calls = 0;
        }
        self.minute_calls += 1;
        self.max_minute_calls = self.max_minute_calls.max(self.minute_calls);
    }

    fn values(&self, minutes: f64) -> [f64; N_FEATURES] {
        let calls = self.calls as f64;
        let ratio = |n: u64| {
            if self.calls == 0 {
                0.0
            } else {
                n as f64 / calls
            }
        };
        let rate = calls / minutes;
        let burstiness = if self.calls == 0 {
            0.0
        } else {
            self.max_minute_calls as f64 / rate
        };
        let new_peers = self
            .recent_peers
            .iter()
            .filter(|peer| !self.baseline_peers.contains(peer))
            .count();
        [
            calls,
            rate,
            ratio(self.denied),
            ratio(self.night),
            self.recent_peers.len() as f64,
            new_peers as f64,
            burstiness,
            self.transfers_out as f64,
        ]
    }
}

/// The entities of one kind, interned by key.
#[derive(Default)]
struct EntityTable {
    index: HashMap<String, usize>,
    activity: Vec<Activity>,
}

impl EntityTable {
    fn get(&mut self, key: &str) -> &mut Activity {
        let next = self.activity.len();
        let at = match self.index.get(key) {
            Some(&at) => at,
            None => {
                self.index.insert(key.to_string(), next);
                self.activity.push(Activity::default());
                next
            }
        };
        &mut self.activity[at]
    }

    fn finish(self, minutes: f64) -> Vec<EntityFeatures> {
        let mut entities: Vec<EntityFeatures> = self
            .index
            .into_iter()
            .filter(|(_, at)| self.activity[*at].active)
            .map(|(key, at)| EntityFeatures {
                key,
                values: self.activity[at].values(minutes),
            })
            .collect();
        entities.sort_by(|a, b| a.key.cmp(&b.key));
        entities
    }
}

/// Accumulates rows into features; see the module docs.
pub struct FeatureExtractor {
    window: FeatureWindow,
    accounts: EntityTable,
    principals: EntityTable,
    peers: HashMap<String, u32>,
    key: String,
    decision_rows: u64,
    job_rows: u64,
    outside_attempts: std::collections::BTreeMap<String, u64>,
}

impl FeatureExtractor {
    /// Creates an extractor for `window`.
    pub fn new(window: FeatureWindow) -> Self {
        FeatureExtractor {
            window,
            accounts: EntityTable::default(),
            principals: EntityTable::default(),
            peers: HashMap::new(),
            key: String::new(),
            decision_rows: 0,
            job_rows: 0,
            outside_attempts: std::collections::BTreeMap::new(),
        }
    }

    /// Adds one decision; rows outside both windows are ignored.
    pub fn add_decision(&mut self, row: &DecisionFacts<'_>) {
        let window = self.window;
        if row.logged_at < window.baseline_start || row.logged_at >= window.end {
            return;
        }
        self.decision_rows += 1;
        let recent = row.logged_at >= window.start;
        let night = window.is_night(row.logged_at);
        let account = match (row.tenant, row.account) {
            (Some(tenant), Some(account)) => {
                write_key(&mut self.key, tenant, account);
                Some(intern(&mut self.peers, &self.key))
            }
            _ => None,
        };
        if recent && account.is_some() {
            if row.own_tenant {
                self.accounts
                    .get(&self.key)
                    .call(row.logged_at, row.allowed, night);
            } else {
                *self.outside_attempts.entry(self.key.clone()).or_default() += 1;
            }
        }
        let principal = self.principals.get(row.principal);
        if recent {
            principal.call(row.logged_at, row.allowed, night);
            let transfer = row.allowed && row.method.ends_with("/Transfer");
            principal.transfers_out += u64::from(transfer);
        }
        // A principal's counterparties are the accounts it acts on.
        if let Some(peer) = account {
            peers_of(principal, recent).insert(peer);
        }
    }

    /// Adds one job; only transfers carry counterparties. Rows outside both windows are
    /// ignored.
    pub fn add_job(&mut self, row: &JobFacts<'_>) {
        let window = self.window;
        if row.created_at < window.baseline_start || row.created_at >= window.end {
            return;
        }
        self.job_rows += 1;
        let (Some(account_b), "transfer") = (row.account_b, row.kind) else {
            return;
        };
        let recent = row.created_at >= window.start;
        write_key(&mut self.key, row.tenant, account_b);
        let peer = intern(&mut self.peers, &self.key);
        write_key(&mut self.key, row.tenant, row.account_a);
        let activity = self.accounts.get(&self.key);
        if recent {
            activity.active = true;
            activity.transfers_out += 1;
        }
        peers_of(activity, recent).insert(peer);
    }

    /// Returns the features of every entity active in the scored window.
    pub fn finish(self) -> FeatureSet {
        let minutes = self.window.minutes();
        FeatureSet {
            accounts: self.accounts.finish(minutes),
            principals: self.principals.finish(minutes),
            decision_rows: self.decision_rows,
            job_rows: self.job_rows,
            outside_attempts: self.outside_attempts,
        }
    }
}

/// Writes `tenant/account`, the key the policy reads, into `buf`.
fn write_key(buf: &mut String, tenant: &str, account: &str) {
    buf.clear();
    buf.push_str(tenant);
    buf.push('/');
    buf.push_str(account);
}

/// Returns the id of counterparty `key`, numbering new ones in order of appearance.
fn intern(peers: &mut HashMap<String, u32>, key: &str) -> u32 {
    if let Some(&id) = peers.get(key) {
        return id;
    }
    let id = u32::try_from(peers.len()).unwrap_or(u32::MAX);
    peers.insert(key.to_string(), id);
    id
}

fn peers_of(activity: &mut Activity, recent: bool) -> &mut HashSet<u32> {
    if recent {
        &mut activity.recent_peers
    } else {
        &mut activity.baseline_peers
    }
}
