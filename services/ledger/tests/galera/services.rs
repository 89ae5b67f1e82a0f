//! The controller's and the audit trail's storage under the same faults as the ledger.
//!
//! Both open the cluster through `blindledger_store::Db`, with every node listed, as the
//! ledger does. A steady stream of writes goes through each (a controller alert queued, an
//! audit event appended) and a read follows every write. A write that fails must fail as
//! *transient* (UNAVAILABLE / 503 at the service's edge): any other storage error during a
//! fault would reach a caller as a 500 and is a finding. At the end every acknowledged
//! write is stored exactly once and the audit chain verifies.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use blindledger_audit::{AuditLog, CheckpointKeys, EventKind, NewEvent, VerifyOptions};
use blindledger_controller::repo::{NewAlert, Repo};
use blindledger_store::StoreError;

/// How often the stream writes to each service's storage.
const PACE: Duration = Duration::from_millis(300);
/// How long one probe may take before it counts as unanswered.
const PROBE_DEADLINE: Duration = Duration::from_secs(5);

/// How one probe of a service's storage ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// Written and read back.
    Answered,
    /// Refused as transient (unavailable, or a race lost on every attempt).
    Unavailable,
    /// No answer within the deadline (a paused node).
    NoAnswer,
}

/// The controller's repository and the audit log, opened on the cluster.
#[derive(Clone)]
pub struct Services {
    pub repo: Repo,
    pub audit: AuditLog,
    tenant: String,
    next: Arc<AtomicU64>,
    /// Acknowledged writes: alert keys and audit subjects.
    alerts: Arc<Mutex<Vec<String>>>,
    events: Arc<Mutex<Vec<String>>>,
    /// Probes answered, refused, unanswered; per service.
    pub counts: Arc<Mutex<HashMap<(&'static str, &'static str), u64>>>,
}

impl Services {
    pub async fn open(url: &str) -> Self {
        let repo = Repo::connect(url, 4, false)
            .await
            .expect("controller storage opens");
        let audit = AuditLog::connect(url, 4, false)
            .await
            .expect("audit storage opens");
        Services {
            repo,
            audit,
            tenant: format!("galera-{}", uuid::Uuid::new_v4().simple()),
            next: Arc::default(),
            alerts: Arc::default(),
            events: Arc::default(),
            counts: Arc::default(),
        }
    }

    /// The nodes (1-based) the controller's and the audit trail's statements go to now.
    pub fn nodes(&self) -> (usize, usize) {
        (
            self.repo.db().current_index() + 1,
            self.audit.db().current_index() + 1,
        )
    }

    /// One write and read through the controller's storage.
    pub async fn probe_controller(&self) -> Probe {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let key = format!("{}:{n}", self.tenant);
        let alert = NewAlert {
            dedupe_key: key.clone(),
            payload: "{}".into(),
        };
        let now = blindledger_store::now_ms();
        let call = async {
            let queued = self.repo.enqueue_alert(&alert, now, now).await?;
            assert!(queued, "a fresh alert key is queued");
            self.alerts.lock().unwrap().push(key);
            self.repo.undelivered_alerts().await?;
            Ok::<(), StoreError>(())
        };
        self.outcome(
            "controller",
            tokio::time::timeout(PROBE_DEADLINE, call).await,
        )
    }

    /// One append and read through the audit trail's storage.
    pub async fn probe_audit(&self) -> Probe {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let subject = format!("{}/{n}", self.tenant);
        let event = NewEvent::new(
            EventKind::AdminCommand,
            blindledger_store::now_ms(),
            "galera-test",
            subject.clone(),
            serde_json::json!({"probe": n}),
        );
        let call = async {
            self.audit.append(event).await?;
            self.events.lock().unwrap().push(subject);
            self.audit.head().await?;
            Ok::<(), blindledger_audit::AuditError>(())
        };
        let outcome = match tokio::time::timeout(PROBE_DEADLINE, call).await {
            Ok(Err(blindledger_audit::AuditError::Store(e))) => Ok(Err(e)),
            Ok(Err(other)) => panic!("audit append failed with a non-storage error: {other}"),
            Ok(Ok(())) => Ok(Ok(())),
            Err(elapsed) => Err(elapsed),
        };
        self.outcome("audit", outcome)
    }

    fn outcome(
        &self,
        service: &'static str,
        result: Result<Result<(), StoreError>, tokio::time::error::Elapsed>,
    ) -> Probe {
        let probe = match result {
            Ok(Ok(())) => Probe::Answered,
            Ok(Err(e)) if e.is_transient() => Probe::Unavailable,
            Ok(Err(e)) => panic!(
                "{service} storage failed with a non-transient error during a fault \
                 (a caller would see 500): {e}: {:?}",
                std::error::Error::source(&e)
            ),
            Err(_) => Probe::NoAnswer,
        };
        let label = match probe {
            Probe::Answered => "answered",
            Probe::Unavailable => "unavailable",
            Probe::NoAnswer => "no answer",
        };
        *self
            .counts
            .lock()
            .unwrap()
            .entry((service, label))
            .or_default() += 1;
        probe
    }

    /// Whether both answer a probe now.
    pub async fn both_answer(&self) -> bool {
        let (controller, audit) = tokio::join!(self.probe_controller(), self.probe_audit());
        controller == Probe::Answered && audit == Probe::Answered
    }

    /// Probes both every [`PACE`] until stopped.
    pub fn stream(&self) -> Stream {
        let stop = Arc::new(AtomicBool::new(false));
        let services = self.clone();
        let flag = Arc::clone(&stop);
        let task = tokio::spawn(async move {
            while !flag.load(Ordering::Relaxed) {
                tokio::join!(services.probe_controller(), services.probe_audit());
                tokio::time::sleep(PACE).await;
            }
        });
        Stream { stop, task }
    }

    /// Every acknowledged alert and audit event is stored exactly once, and the chain
    /// verifies. Returns a summary line.
    pub async fn verify(&self) -> String {
        let alerts = self.alerts.lock().unwrap().clone();
        let stored_alerts = self.stored_counts(
            "SELECT dedupe_key, COUNT(*) FROM controller_alerts WHERE dedupe_key LIKE ? GROUP BY dedupe_key",
            format!("{}:%", self.tenant),
        )
        .await;
        for key in &alerts {
            assert_eq!(stored_alerts.get(key), Some(&1), "alert {key} stored once");
        }
        let events = self.events.lock().unwrap().clone();
        let stored_events = self
            .stored_counts(
                "SELECT subject, COUNT(*) FROM audit_events WHERE subject LIKE ? GROUP BY subject",
                format!("{}/%", self.tenant),
            )
            .await;
        for subject in &events {
            assert_eq!(
                stored_events.get(subject),
                Some(&1),
                "audit event {subject} appended once"
            );
        }
        let report = self
            .audit
            .verify(&CheckpointKeys::default(), &VerifyOptions::default())
            .await
            .expect("verification runs");
        assert!(
            report.ok,
            "the audit chain verifies: {:?}",
            report.first_problem
        );
        let counts = self.counts.lock().unwrap();
        let count = |service, label| counts.get(&(service, label)).copied().unwrap_or(0);
        format!(
            "controller: {} alerts acknowledged, each stored once ({} probes answered, {} \
             unavailable, {} unanswered); audit: {} events acknowledged, each appended once, \
             chain of {} rows verifies ({} answered, {} unavailable, {} unanswered)",
            alerts.len(),
            count("controller", "answered"),
            count("controller", "unavailable"),
            count("controller", "no answer"),
            events.len(),
            report.rows_checked,
            count("audit", "answered"),
            count("audit", "unavailable"),
            count("audit", "no answer"),
        )
    }

    async fn stored_counts(&self, query: &str, pattern: String) -> HashMap<String, i64> {
        let rows = sqlx::query(query)
            .bind(pattern)
            .fetch_all(self.repo.pool())
            .await
            .expect("stored rows readable");
        rows.iter()
            .map(|row| {
                let key = blindledger_store::sql::text(row, 0).unwrap();
                (key, sqlx::Row::get::<i64, _>(row, 1))
            })
            .collect()
    }
}

/// The running probe stream.
pub struct Stream {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Stream {
    /// Stops the stream; a panic in it (a non-transient error) fails the test here.
    pub async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Err(e) = self.task.await {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}
