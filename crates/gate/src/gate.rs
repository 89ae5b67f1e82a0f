//! The policy decision point: handlers ask it whether an authenticated caller may do
//! something, and every answer is recorded in the decision log before it is given.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use arc_swap::ArcSwapOption;
use blindledger_policy::{Decision, DecisionEvent, Obligations, PolicyEngine, PolicyError};
use serde_json::{Map, Value};
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

use crate::refusal::{Refusal, RefusalKind};
use crate::status::{Details, DECISION_ID_METADATA};

use crate::auth::Principal;
use crate::sink::DecisionSink;

/// Counter of decisions, labelled by `method` and `allowed`.
const DECISIONS: &str = "blindledger_policy_decisions_total";
/// Histogram of evaluation time, in seconds.
const EVAL_SECONDS: &str = "blindledger_policy_eval_seconds";

/// What a request touches, as far as the policy needs to know.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resource {
    /// The tenant the request acts on.
    pub tenant: Option<String>,
    /// The account the request acts on.
    pub account: Option<String>,
    /// The region the tenant's data is pinned to.
    pub region: Option<String>,
    /// The second account a request touches: a transfer's receiving account, in the same
    /// tenant.
    pub counterparty: Option<String>,
    /// The id of the tenant's registered keys, which the request's ciphertexts are under.
    pub key_id: Option<String>,
    /// Whether the request asks for encrypted results (a job's outputs), not only metadata.
    pub include_results: bool,
}

impl Resource {
    /// Why this resource cannot be decided on: a value longer than [`MAX_RESOURCE_BYTES`] or
    /// holding a control character. The reason quotes the value as an [`excerpt`].
    pub fn invalid(&self) -> Option<(&'static str, String)> {
        self.fields().into_iter().find_map(|(name, value)| {
            let value = value.as_deref()?;
            if value.len() > MAX_RESOURCE_BYTES {
                Some((
                    name,
                    format!(
                        "{name} {} is longer than {MAX_RESOURCE_BYTES} bytes",
                        excerpt(value)
                    ),
                ))
            } else if value.chars().any(char::is_control) {
                Some((
                    name,
                    format!("{name} {} holds a control character", excerpt(value)),
                ))
            } else {
                None
            }
        })
    }

    /// The same resource with every value as an [`excerpt`]: what a refusal logs.
    fn bounded(&self) -> Resource {
        let bound = |value: &Option<String>| value.as_deref().map(excerpt);
        Resource {
            tenant: bound(&self.tenant),
            account: bound(&self.account),
            region: bound(&self.region),
            counterparty: bound(&self.counterparty),
            key_id: bound(&self.key_id),
            include_results: self.include_results,
        }
    }

    fn fields(&self) -> [(&'static str, &Option<String>); 5] {
        [
            ("tenant", &self.tenant),
            ("account", &self.account),
            ("region", &self.region),
            ("counterparty", &self.counterparty),
            ("key_id", &self.key_id),
        ]
    }
}

/// Longest resource value the gate decides on or logs, in bytes. Services bound their own
/// names more tightly (the ledger's are at most 63 bytes); this bound holds for every one,
/// so that no request can write an unbounded value into the decision log.
pub const MAX_RESOURCE_BYTES: usize = 255;

/// Characters of untrusted text an [`excerpt`] keeps.
const EXCERPT_CHARS: usize = 32;

/// Untrusted text as it may appear in an answer, a log line or a decision-log row: quoted,
/// control characters and quotes escaped, at most 32 characters, and the full length in
/// bytes when it was cut. `"xxxx…" (100000 bytes)`.
pub fn excerpt(text: &str) -> String {
    let kept: String = text.chars().take(EXCERPT_CHARS).collect();
    let quoted = format!("\"{}\"", kept.escape_debug());
    if kept.len() == text.len() {
        quoted
    } else {
        format!("{quoted}… ({} bytes)", text.len())
    }
}

/// An allowed request: its decision id and the limits the handler must enforce.
#[derive(Debug, Clone)]
pub struct Authorized {
    /// The id under which the decision was logged.
    pub decision_id: String,
    /// Limits the policy attached to the permission.
    pub obligations: Obligations,
}

/// Decides requests with the current policy engine and logs every decision.
///
/// Cheap to clone: clones share the engine slot, so [`PolicyGate::install`] on one is seen
/// by all.
#[derive(Clone)]
pub struct PolicyGate {
    inner: Arc<Inner>,
}

struct Inner {
    engine: ArcSwapOption<PolicyEngine>,
    service_region: String,
    /// The `id` label of every decision event: this gate's instance (OPA labels events
    /// with its instance id the same way).
    instance_id: String,
    sink: Arc<dyn DecisionSink>,
    /// Methods that are never decided without a given bundle active: method → bundle.
    required: std::sync::RwLock<BTreeMap<String, String>>,
}

impl std::fmt::Debug for PolicyGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyGate")
            .field("service_region", &self.inner.service_region)
            .field("revisions", &self.revisions())
            .finish_non_exhaustive()
    }
}

impl PolicyGate {
    /// Creates a gate for a service in `service_region`, logging to `sink`. Until an engine
    /// is installed every request is refused with `UNAVAILABLE`.
    pub fn new(service_region: &str, sink: Arc<dyn DecisionSink>) -> Self {
        Self::with_instance_id(service_region, sink, &uuid::Uuid::new_v4().to_string())
    }

    /// As [`PolicyGate::new`], labelling events with `instance_id` (the service's configured
    /// instance id) rather than a random one.
    pub fn with_instance_id(
        service_region: &str,
        sink: Arc<dyn DecisionSink>,
        instance_id: &str,
    ) -> Self {
        let inner = Inner {
            engine: ArcSwapOption::empty(),
            service_region: service_region.to_string(),
            instance_id: instance_id.to_string(),
            sink,
            required: std::sync::RwLock::default(),
        };
        PolicyGate {
            inner: Arc::new(inner),
        }
    }

    /// Replaces the engine atomically: requests already deciding finish on the old one.
    pub fn install(&self, engine: PolicyEngine) {
        self.inner.engine.store(Some(Arc::new(engine)));
    }

    /// Refuses `methods` with `UNAVAILABLE` while the installed engine lacks `bundle`: a
    /// policy that reads freezes, revoked keys and limits from a data bundle must not decide
    /// as if there were none because the bundle is not there (yet, or any more).
    pub fn require_bundle(&self, bundle: &str, methods: &[&str]) {
        let mut required = self
            .inner
            .required
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for method in methods {
            required.insert((*method).to_owned(), bundle.to_owned());
        }
    }

    /// The bundle `method` needs that `engine` lacks, if any.
    fn missing_bundle(&self, engine: &PolicyEngine, method: &str) -> Option<String> {
        let required = self
            .inner
            .required
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let bundle = required.get(method)?;
        (!engine.revisions().contains_key(bundle)).then(|| bundle.clone())
    }

    /// Returns the installed engine's bundle revisions, or `None` before the first install.
    pub fn revisions(&self) -> Option<BTreeMap<String, String>> {
        self.inner
            .engine
            .load()
            .as_ref()
            .map(|engine| engine.revisions())
    }

    /// Decides whether `principal` may call `method` on `resource`.
    ///
    /// The engine is read once, so the decision and its log event always come from the same
    /// revisions even while a new engine is being installed. The event is masked and written
    /// to the sink before the answer is returned; when that fails the request is refused as
    /// [`RefusalKind::Unavailable`]. A denial is [`RefusalKind::Denied`] with the policy's
    /// reasons; an evaluation error or undefined decision is a denial too (fail closed).
    /// Both carry the decision id.
    #[tracing::instrument(name = "policy.authorize", skip_all, fields(method = %method))]
    pub async fn authorize(
        &self,
        principal: &Principal,
        method: &str,
        resource: Resource,
    ) -> Result<Authorized, Refusal> {
        if let Some((field, reason)) = resource.invalid() {
            return Err(self
                .refuse(principal, method, &resource, Some(field), &reason)
                .await);
        }
        let Some(engine) = self.inner.engine.load_full() else {
            count(method, false);
            return Err(no_policy());
        };
        if let Some(bundle) = self.missing_bundle(&engine, method) {
            let reason = format!("the {bundle} bundle is not active: refused until it is");
            let refusal = Refusal::new(RefusalKind::Unavailable, "BUNDLE_NOT_ACTIVE", &reason);
            return Err(self
                .log_refusal(&engine, principal, method, &resource, &reason, refusal)
                .await);
        }
        let input = self.input(principal, method, &resource);
        let started = Instant::now();
        // Evaluated inline: tens of microseconds, less than a hop to the blocking pool costs.
        let outcome = engine.decide(&input);
        let elapsed = started.elapsed();
        metrics::histogram!(EVAL_SECONDS).record(elapsed.as_secs_f64());

        let mut event = engine.decision_event(&input, outcome.as_ref().ok());
        // v7 ids sort by time, which keeps the audit table's index append-only.
        event.decision_id = uuid::Uuid::now_v7().to_string();
        event.requested_by = Some(principal.subject.clone());
        (event.trace_id, event.span_id) = blindledger_telemetry::traces::current_ids().unzip();
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        event
            .metrics
            .insert("timer_rego_query_eval_ns".to_string(), nanos);
        self.label(&mut event);
        if let Err(error) = &outcome {
            // OPA's top-level `error` of an evaluation that failed.
            event.error = Some(serde_json::json!({
                "code": "eval_error",
                "message": error.to_string(),
            }));
        }
        let decision_id = event.decision_id.clone();
        if let Err(refusal) = self.record(&engine, event).await {
            count(method, false);
            return Err(refusal);
        }
        let result = verdict(outcome, &decision_id);
        count(method, result.is_ok());
        result
    }

    /// Refuses a request the service could not decide on because its input is invalid
    /// (`reason`, which must itself be bounded: quote input with [`excerpt`]): logs it as a
    /// denied decision, with every resource value as an excerpt, and answers
    /// [`RefusalKind::InvalidArgument`] with the decision id. Services call it for input they check
    /// before the policy (names, identifiers), so that refused requests are in the decision
    /// log like denied ones, and no refusal writes or echoes unbounded input.
    pub async fn refuse(
        &self,
        principal: &Principal,
        method: &str,
        resource: &Resource,
        field: Option<&str>,
        reason: &str,
    ) -> Refusal {
        let Some(engine) = self.inner.engine.load_full() else {
            count(method, false);
            return no_policy();
        };
        let mut refusal = Refusal::new(RefusalKind::InvalidArgument, "INVALID_REQUEST", reason);
        if let Some(field) = field {
            refusal = refusal.with_field(field, reason);
        }
        let reason = format!("invalid request: {reason}");
        self.log_refusal(&engine, principal, method, resource, &reason, refusal)
            .await
    }

    /// Logs a request refused before the policy decided as a denied decision (resource
    /// values as excerpts, `reason` as its error) and returns `refusal` with the decision id.
    async fn log_refusal(
        &self,
        engine: &PolicyEngine,
        principal: &Principal,
        method: &str,
        resource: &Resource,
        reason: &str,
        refusal: Refusal,
    ) -> Refusal {
        count(method, false);
        let input = self.input(principal, method, &resource.bounded());
        let mut event = engine.decision_event(&input, None);
        event.decision_id = uuid::Uuid::now_v7().to_string();
        event.requested_by = Some(principal.subject.clone());
        (event.trace_id, event.span_id) = blindledger_telemetry::traces::current_ids().unzip();
        self.label(&mut event);
        event.error = Some(serde_json::json!({
            "code": "request_refused",
            "message": reason,
        }));
        let decision_id = event.decision_id.clone();
        if let Err(unlogged) = self.record(engine, event).await {
            return unlogged;
        }
        refusal.with_decision_id(&decision_id)
    }

    /// The labels of every event: `id` and `version` as OPA writes them, and the region.
    fn label(&self, event: &mut DecisionEvent) {
        event
            .labels
            .insert("id".to_string(), self.inner.instance_id.clone());
        event
            .labels
            .insert("version".to_string(), env!("CARGO_PKG_VERSION").to_string());
        event.labels.insert(
            "service_region".to_string(),
            self.inner.service_region.clone(),
        );
    }

    /// Masks `event` and writes it; any failure means the decision cannot be given.
    async fn record(&self, engine: &PolicyEngine, mut event: DecisionEvent) -> Result<(), Refusal> {
        let unavailable = || {
            Refusal::new(
                RefusalKind::Unavailable,
                "DECISION_LOG_UNAVAILABLE",
                "decision log unavailable",
            )
        };
        // Writing an event the mask failed on could leak what the mask exists to hide.
        if let Err(error) = engine.mask(&mut event) {
            tracing::warn!(decision_id = %event.decision_id, %error, "decision log mask failed");
            return Err(unavailable());
        }
        if let Err(error) = self.inner.sink.record(&event).await {
            tracing::warn!(decision_id = %event.decision_id, %error, "decision log write failed");
            return Err(unavailable());
        }
        Ok(())
    }

    /// Builds the policy input; absent resource fields are left out rather than `null`.
    pub(crate) fn input(&self, principal: &Principal, method: &str, resource: &Resource) -> Value {
        let mut resource_fields = Map::new();
        for (key, value) in resource.fields() {
            if let Some(value) = value {
                resource_fields.insert(key.to_string(), Value::from(value.as_str()));
            }
        }
        if resource.include_results {
            resource_fields.insert("include_results".to_string(), Value::Bool(true));
        }
        let time = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        let mut input = serde_json::json!({
            "principal": principal.subject,
            "roles": principal.roles,
            "tenant_claims": principal.tenants,
            "method": method,
            "resource": resource_fields,
            "context": {"service_region": self.inner.service_region, "time": time},
        });
        if let Some(peer) = &principal.peer {
            input["peer"] = Value::from(peer.as_str());
        }
        input
    }
}

/// Turns the engine's outcome into the handler's answer.
fn verdict(
    outcome: Result<Decision, PolicyError>,
    decision_id: &str,
) -> Result<Authorized, Refusal> {
    let (reason, message) = match outcome {
        Ok(decision) if decision.allow => {
            let decision_id = decision_id.to_string();
            return Ok(Authorized {
                decision_id,
                obligations: decision.obligations,
            });
        }
        Ok(decision) if decision.reasons.is_empty() => ("POLICY_DENIED", "denied".to_string()),
        Ok(decision) => (
            "POLICY_DENIED",
            format!("denied: {}", decision.reasons.join("; ")),
        ),
        // The cause is in the decision log; the caller only learns that it failed.
        Err(_) => (
            "POLICY_EVALUATION_FAILED",
            "denied: policy evaluation failed".to_string(),
        ),
    };
    Err(Refusal::new(RefusalKind::Denied, reason, message).with_decision_id(decision_id))
}

/// `UNAVAILABLE` before any policy bundle is active.
fn no_policy() -> Refusal {
    Refusal::new(
        RefusalKind::Unavailable,
        "POLICY_NOT_LOADED",
        "no policy loaded",
    )
}

fn count(method: &str, allowed: bool) {
    let allowed = if allowed { "true" } else { "false" };
    metrics::counter!(DECISIONS, "method" => method.to_string(), "allowed" => allowed).increment(1);
}

/// Returns the caller that [`AuthLayer`](crate::AuthLayer) authenticated, or
/// `UNAUTHENTICATED` when the request did not pass through it.
pub fn principal<T>(request: &tonic::Request<T>) -> Result<Principal, Status> {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| {
            Details::reason("TOKEN_MISSING").status(Code::Unauthenticated, "missing bearer token")
        })
}

/// Adds `x-decision-id` to a response's metadata, so callers can cite the decision.
pub fn with_decision_id<T>(
    mut response: tonic::Response<T>,
    decision_id: &str,
) -> tonic::Response<T> {
    if let Ok(value) = MetadataValue::try_from(decision_id) {
        response.metadata_mut().insert(DECISION_ID_METADATA, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_excerpt_is_bounded_and_escaped() {
        assert_eq!(excerpt("alice"), "\"alice\"");
        assert_eq!(excerpt("a\u{7}b\""), "\"a\\u{7}b\\\"\"");
        let long = excerpt(&"x".repeat(100_000));
        assert!(long.len() < 64, "{long}");
        assert!(long.ends_with("… (100000 bytes)"), "{long}");
    }

    #[test]
    fn a_resource_value_too_long_or_with_a_control_character_is_invalid() {
        let ok = Resource {
            tenant: Some("acme".into()),
            account: Some("x".repeat(MAX_RESOURCE_BYTES)),
            ..Resource::default()
        };
        assert_eq!(ok.invalid(), None);
        let long = Resource {
            account: Some("x".repeat(MAX_RESOURCE_BYTES + 1)),
            ..ok.clone()
        };
        let (field, reason) = long.invalid().unwrap();
        assert_eq!(field, "account");
        assert!(
            reason.starts_with("account ") && reason.len() < 128,
            "{reason}"
        );
        let control = Resource {
            counterparty: Some("bob\n".into()),
            ..ok
        };
        let (field, reason) = control.invalid().unwrap();
        assert_eq!(field, "counterparty");
        assert!(reason.contains("control character"));
    }
}
