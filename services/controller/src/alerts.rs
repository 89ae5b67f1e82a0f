//! Alerts: tier escalations and refused bundles, posted as Slack-compatible
//! incoming-webhook JSON (`{"text": ..., "blocks": [...]}`).
//!
//! Raising an alert only writes it to the outbox table (deduplicated by key over a period);
//! [`AlertDelivery`] posts it from a background task and retries failures with exponential
//! backoff, so a slow or absent receiver never holds up a cycle or a push, and alerts
//! queued while it was away are delivered when it returns, in order. Alerts never carry an
//! amount: only names, tiers, scores and metadata features.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use blindledger_store::now_ms;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::config::ControllerConfig;
use crate::features::EntityKind;
use crate::metrics;
use crate::model::TopFeature;
use crate::repo::{NewAlert, Repo};
use crate::tier::RiskTier;

/// Alerts posted per outbox read.
const BATCH: u32 = 20;
/// Longest wait between outbox reads when nothing is due.
const IDLE_POLL: Duration = Duration::from_secs(30);

/// Something to tell the on-call channel.
#[derive(Debug, Clone, PartialEq)]
pub enum Alert {
    /// An entity moved to a higher tier.
    TierEscalation {
        /// Account or principal.
        kind: EntityKind,
        /// Its key.
        entity: String,
        /// Tier before.
        from: RiskTier,
        /// Tier after.
        to: RiskTier,
        /// The score that moved it.
        score: f64,
        /// Features that drove the score.
        top_features: Vec<TopFeature>,
    },
    /// A bundle revision could not be activated.
    BundleRefused {
        /// Bundle name.
        bundle: String,
        /// Its revision.
        revision: String,
        /// Why, in words.
        reason: String,
    },
}

impl Alert {
    /// The key under which repeats are suppressed: per entity and tier, per bundle and
    /// revision.
    pub fn dedupe_key(&self) -> String {
        match self {
            Alert::TierEscalation {
                kind, entity, to, ..
            } => format!("tier:{}:{entity}:{to}", kind.as_str()),
            Alert::BundleRefused {
                bundle, revision, ..
            } => format!("bundle:{bundle}:{revision}"),
        }
    }

    /// The incoming-webhook body.
    pub fn payload(&self) -> Value {
        let text = match self {
            Alert::TierEscalation {
                kind,
                entity,
                from,
                to,
                score,
                top_features,
            } => {
                let drivers: Vec<String> = top_features
                    .iter()
                    .map(|f| format!("{} {:.2} (z {:+.1})", f.name, f.value, f.z))
                    .collect();
                format!(
                    "Risk tier of {} {entity} raised from {from} to {to} (score {score:.3}). \
                     Drivers: {}.",
                    kind.as_str(),
                    if drivers.is_empty() {
                        "none".to_string()
                    } else {
                        drivers.join(", ")
                    }
                )
            }
            Alert::BundleRefused {
                bundle,
                revision,
                reason,
            } => format!("Bundle {bundle} revision {revision} was not activated: {reason}"),
        };
        json!({
            "text": text,
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
        })
    }

    fn kind(&self) -> &'static str {
        match self {
            Alert::TierEscalation { .. } => "tier_escalation",
            Alert::BundleRefused { .. } => "bundle_refused",
        }
    }
}

/// Writes alerts to the outbox; cheap to clone.
#[derive(Debug, Clone)]
pub struct AlertOutbox {
    repo: Repo,
    wake: Arc<Notify>,
    dedupe_ms: i64,
    enabled: bool,
}

impl AlertOutbox {
    /// An outbox over `repo`; disabled (alerts are dropped) when no webhook is configured.
    pub fn new(repo: Repo, config: &ControllerConfig) -> Self {
        AlertOutbox {
            repo,
            wake: Arc::new(Notify::new()),
            dedupe_ms: i64::try_from(config.alert_dedupe_ms).unwrap_or(i64::MAX),
            enabled: config.alert_webhook_url.is_some(),
        }
    }

    /// Queues `alert` unless the same key was queued within the dedupe period; says whether
    /// it was queued. Never fails: an outbox error is logged and the alert is dropped, so
    /// alerting cannot break the operation that raised it.
    pub async fn raise(&self, alert: &Alert) -> bool {
        if !self.enabled {
            return false;
        }
        let now = now_ms();
        let new = NewAlert {
            dedupe_key: alert.dedupe_key(),
            payload: alert.payload().to_string(),
        };
        match self
            .repo
            .enqueue_alert(&new, now, now.saturating_sub(self.dedupe_ms))
            .await
        {
            Ok(true) => {
                metrics::alert_queued(alert.kind());
                tracing::info!(key = %new.dedupe_key, "alert queued");
                self.wake.notify_one();
                true
            }
            Ok(false) => false,
            Err(error) => {
                tracing::error!(key = %new.dedupe_key, %error, "alert could not be queued");
                false
            }
        }
    }
}

/// Posts queued alerts to the webhook, retrying with exponential backoff.
pub struct AlertDelivery {
    repo: Repo,
    http: reqwest::Client,
    url: String,
    wake: Arc<Notify>,
    backoff_initial_ms: i64,
    backoff_max_ms: i64,
}

impl std::fmt::Debug for AlertDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL of an incoming webhook is a credential: never printed.
        f.debug_struct("AlertDelivery").finish_non_exhaustive()
    }
}

impl AlertDelivery {
    /// The delivery task of `outbox`, or `None` when no webhook is configured.
    pub fn new(outbox: &AlertOutbox, config: &ControllerConfig) -> anyhow::Result<Option<Self>> {
        let Some(url) = config.alert_webhook_url.as_ref() else {
            return Ok(None);
        };
        let url = url.expose_secret().to_string();
        // TLS through rustls with ring, as the bundle loader sets it up.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(concat!(
                "blindledger-controller/",
                env!("CARGO_PKG_VERSION")
            ))
            .timeout(Duration::from_millis(config.alert_timeout_ms.max(1)))
            .build()?;
        let ms = |v: u64| i64::try_from(v).unwrap_or(i64::MAX).max(1);
        Ok(Some(AlertDelivery {
            repo: outbox.repo.clone(),
            http,
            url,
            wake: outbox.wake.clone(),
            backoff_initial_ms: ms(config.alert_backoff_initial_ms),
            backoff_max_ms: ms(config.alert_backoff_max_ms),
        }))
    }

    /// Delivers alerts until `shutdown` resolves: whenever one is queued, and when a retry
    /// falls due.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let wait = match self.deliver_due().await {
                Ok(wait) => wait,
                Err(error) => {
                    tracing::warn!(%error, "alert outbox unavailable");
                    Duration::from_millis(self.backoff_initial_ms.unsigned_abs())
                }
            };
            tokio::select! {
                () = &mut shutdown => break,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Posts the alerts due now, stopping at the first failure (the receiver is likely
    /// down, and later alerts would only wait on the same timeout); returns how long to
    /// wait before trying again.
    async fn deliver_due(&self) -> Result<Duration, blindledger_store::StoreError> {
        let mut retry_in = None;
        for alert in self.repo.due_alerts(now_ms(), BATCH).await? {
            match self.post(&alert.payload).await {
                Ok(()) => {
                    metrics::alert_delivery(true);
                    self.repo.alert_delivered(alert.seq, now_ms()).await?;
                    tracing::info!(key = %alert.dedupe_key, "alert delivered");
                }
                Err(error) => {
                    metrics::alert_delivery(false);
                    let delay = self.backoff(alert.attempts);
                    let next = now_ms().saturating_add(delay);
                    self.repo.alert_failed(alert.seq, next, &error).await?;
                    tracing::warn!(key = %alert.dedupe_key, attempts = alert.attempts + 1,
                        retry_in_ms = delay, %error, "alert delivery failed");
                    retry_in = Some(delay);
                    break;
                }
            }
        }
        metrics::alert_outbox(self.repo.undelivered_alerts().await?);
        let due_in = match (retry_in, self.repo.next_alert_due().await?) {
            (Some(delay), _) => delay,
            (None, Some(due)) => due.saturating_sub(now_ms()),
            (None, None) => i64::MAX,
        };
        let due_in = Duration::from_millis(due_in.max(0).unsigned_abs());
        Ok(due_in.min(IDLE_POLL))
    }

    fn backoff(&self, attempts: i64) -> i64 {
        let exponent = u32::try_from(attempts.clamp(0, 30)).unwrap_or(30);
        self.backoff_initial_ms
            .saturating_mul(1_i64 << exponent)
            .min(self.backoff_max_ms)
    }

    async fn post(&self, payload: &str) -> Result<(), String> {
        let response = self
            .http
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(payload.to_string())
            .send()
            .await
            // Without the URL: reqwest puts it in its messages, and it is a credential.
            .map_err(|e| e.without_url().to_string())?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("webhook answered {status}"))
        }
    }
}
