//! Keeps the gate's engine fresh from bundle files or an HTTP bundle server.
//!
//! Each bundle is activated on its own, as in OPA: a download that cannot be read, parsed or
//! verified leaves that bundle at its last good revision while the other bundles may still
//! move on. A new engine is built from every bundle's newest good revision and installed
//! only when it compiles and warms up; otherwise the previous engine stays.

mod source;
mod status;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use blindledger_policy::{
    Bundle, BundleLimits, BundleVerifier, Evaluator, PolicyEngine, PolicyError,
};
use blindledger_store::Db;
use sha2::{Digest, Sha256};

pub use source::BundleSource;
pub use status::BundleStatus;

use crate::error::GateError;
use crate::gate::{PolicyGate, Resource};
use crate::Principal;
use source::{Download, Fetcher, Poll};
use status::Statuses;

/// How long one bundle download may take before the poll counts as failed.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// One bundle the loader watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleConfig {
    /// The bundle's name, as reported in decision logs (e.g. `blindledger`, `risk`).
    pub name: String,
    /// Where it is read from. A missing file (or a 404 from the server) is not an error:
    /// the bundle is left out until it appears (the risk bundle may not exist yet), or keeps
    /// its last good revision if it was active.
    pub source: BundleSource,
}

/// A bundle that is part of the installed engine, with the digest of the archive it came
/// from and the server's ETag for it.
#[derive(Clone)]
struct ActiveBundle {
    sha256: String,
    etag: Option<String>,
    /// Whether its server said it holds long polls.
    long_polling: bool,
    bundle: Bundle,
}

/// What polling one bundle gave.
enum Fetched {
    /// No file or no bundle on the server: nothing to change.
    Missing,
    /// The same bytes as the active revision.
    Unchanged,
    /// A new, verified revision.
    New(Box<ActiveBundle>),
}

/// Reads, verifies and activates policy bundles for a [`PolicyGate`].
pub struct BundleLoader {
    gate: PolicyGate,
    bundles: Vec<BundleConfig>,
    verifier: BundleVerifier,
    /// Bundles verified with their own keys instead of `verifier`'s.
    own_verifiers: BTreeMap<String, BundleVerifier>,
    /// Bundles whose revisions carry a counter that must grow.
    monotonic: Vec<String>,
    /// Where the highest counter activated is kept across restarts: the database and the
    /// service's name there. None: in memory only.
    floor: Option<(Db, String)>,
    limits: BundleLimits,
    fetcher: Fetcher,
    /// The bundles of the installed engine; held across a whole reload so two reloads never
    /// interleave.
    active: tokio::sync::Mutex<BTreeMap<String, ActiveBundle>>,
    statuses: Statuses,
    /// How long a bundle server is asked to hold a poll; `None`: interval polling only.
    long_poll: Option<Duration>,
}

impl std::fmt::Debug for BundleLoader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BundleLoader")
            .field("bundles", &self.bundles)
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl BundleLoader {
    /// Creates a loader installing engines into `gate`; nothing is read until
    /// [`BundleLoader::reload`] or [`BundleLoader::run`]. Fails only when the HTTP client
    /// cannot be set up.
    pub fn new(
        gate: PolicyGate,
        bundles: Vec<BundleConfig>,
        verifier: BundleVerifier,
        limits: BundleLimits,
    ) -> Result<Self, GateError> {
        let statuses = Statuses::new(bundles.iter().map(|b| b.name.clone()));
        let fetcher = Fetcher::new(
            limits.max_compressed_bytes,
            DOWNLOAD_TIMEOUT,
            &crate::ClientTls::default(),
        )?;
        Ok(BundleLoader {
            gate,
            bundles,
            verifier,
            own_verifiers: BTreeMap::new(),
            monotonic: Vec::new(),
            floor: None,
            limits,
            fetcher,
            active: tokio::sync::Mutex::new(BTreeMap::new()),
            statuses,
            long_poll: None,
        })
    }

    /// Polls every bundle source, verifies the changed bundles, and builds, warms and
    /// installs a new engine when anything changed.
    ///
    /// Downloads answered `304 Not Modified`, and archives with the same SHA-256 as the
    /// active revision, are skipped. Every failure is
    /// recorded in the status of the bundle concerned, logged and counted; the first one is
    /// returned. Fails with [`GateError::NoBundles`] when no bundle is available at all.
    pub async fn reload(&self) -> Result<(), GateError> {
        let mut active = self.active.lock().await;
        let mut candidates = active.clone();
        let mut changed = Vec::new();
        let mut first_error = None;
        for config in &self.bundles {
            match self.fetch(config, active.get(&config.name)).await {
                // Nothing published, or the active revision: no error to report any more.
                Ok(Fetched::Missing | Fetched::Unchanged) => {
                    self.statuses.clear_error(&config.name)
                }
                Ok(Fetched::New(bundle)) => {
                    candidates.insert(config.name.clone(), *bundle);
                    changed.push(config.name.clone());
                }
                Err(error) => {
                    self.statuses.fail(&config.name, &error);
                    first_error.get_or_insert(error);
                }
            }
        }
        if !changed.is_empty() {
            match self.build(&candidates).await {
                Ok(engine) => {
                    if let Err(error) = self.raise_floors(&candidates, &changed).await {
                        if let GateError::RevisionFloor { bundle, .. } = &error {
                            self.statuses.fail(bundle, &error);
                        }
                        return Err(error);
                    }
                    match engine.evaluator() {
                        Evaluator::Vm => tracing::info!(
                            revisions = ?engine.revisions(),
                            "policy engine activated, deciding on regorus's compiled form"
                        ),
                        Evaluator::Interpreter { reason } => tracing::warn!(
                            revisions = ?engine.revisions(),
                            %reason,
                            "policy engine activated on the interpreter (slower)"
                        ),
                    }
                    self.gate.install(engine);
                    for (name, activated) in candidates.iter().filter(|(n, _)| changed.contains(n))
                    {
                        self.statuses
                            .activate(name, &activated.bundle.manifest.revision);
                    }
                    *active = candidates;
                }
                Err(error) => {
                    for name in blamed(&error, &changed) {
                        self.statuses.fail(&name, &error);
                    }
                    first_error.get_or_insert(error);
                }
            }
        }
        match first_error {
            Some(error) => Err(error),
            None if active.is_empty() => Err(GateError::NoBundles),
            None => Ok(()),
        }
    }

    /// Keeps the highest counter of each monotonic bundle activated by `service` in `db`
    /// (`gate_revision_floors`): after a restart, a revision below it is refused as stale,
    /// as it would have been before. A floor that cannot be read or raised keeps the
    /// bundle from being activated (the active engine stays).
    pub fn with_revision_floor(mut self, db: Db, service: &str) -> Self {
        self.floor = Some((db, service.to_owned()));
        self
    }

    /// Sends the token in `path` (`Authorization: Bearer`, as OPA's `credentials.bearer`)
    /// with every request to a bundle server: the controller serves bundles to holders of
    /// a token with the `bundle_reader` role only. The file is read before each request.
    pub fn with_bearer_token_file(mut self, path: std::path::PathBuf) -> Self {
        self.fetcher.token_file = Some(path);
        self
    }

    /// Connects to HTTPS bundle servers with `tls`: the CA their certificate must chain to,
    /// and the client certificate presented to a server that requires one (mTLS).
    pub fn with_client_tls(mut self, tls: &crate::ClientTls) -> Result<Self, GateError> {
        let token_file = self.fetcher.token_file.take();
        self.fetcher = Fetcher::new(self.limits.max_compressed_bytes, DOWNLOAD_TIMEOUT, tls)?;
        self.fetcher.token_file = token_file;
        Ok(self)
    }

    /// Asks bundle servers to hold each poll for up to `wait` and answer as soon as a new
    /// revision is out (OPA's long polling), so a change is active within a round trip
    /// instead of a polling interval. Servers that do not say they support it, and files,
    /// are still polled every interval.
    pub fn with_long_polling(mut self, wait: Duration) -> Self {
        self.long_poll = Some(wait).filter(|w| !w.is_zero());
        self
    }

    /// Verifies `bundle` with `verifier` only, instead of the loader's verifier: the risk
    /// bundle is signed by the controller's online key, which must not be able to sign the
    /// rules, and the rules' keys need not sign risk data.
    pub fn with_verifier(mut self, bundle: &str, verifier: BundleVerifier) -> Self {
        self.own_verifiers.insert(bundle.to_owned(), verifier);
        self
    }

    /// Requires `bundle`'s revisions to start with a counter (`<n>-…`, as the controller
    /// numbers risk revisions) greater than the active revision's: an older revision, however
    /// validly signed, is refused and the active one kept.
    pub fn with_monotonic_revisions(mut self, bundle: &str) -> Self {
        self.monotonic.push(bundle.to_owned());
        self
    }

    /// Calls [`BundleLoader::reload`] now and then every `interval`, or as soon as a long
    /// poll reports a new revision, until `shutdown` resolves. Failures are in
    /// [`BundleLoader::status`] and the logs.
    pub async fn run(
        self: Arc<Self>,
        interval: Duration,
        shutdown: impl Future<Output = ()> + Send,
    ) {
        let mut shutdown = std::pin::pin!(shutdown);
        // A zero period would make tokio spin; a millisecond is as good as "continuously".
        let interval = interval.max(Duration::from_millis(1));
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                // The failure is already logged, counted and in the bundle's status.
                _ = self.reload() => {}
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = self.next_poll(interval) => {}
            }
        }
    }

    /// Waits until the next reload is due: `interval`, or less when long polls are held.
    ///
    /// With every bundle long-pollable, the next reload follows the first poll that ends:
    /// a change at once, a wait run out (nothing changed, ask again). A poll that fails, or
    /// that a server ends early without a change, falls back to the interval, so a server
    /// that is down or does not really hold polls is not asked in a loop. With some bundles
    /// that cannot be long-polled (files, servers without support), the interval bounds
    /// the wait.
    async fn next_poll(&self, interval: Duration) {
        let (polls, all) = self.long_pollable().await;
        let Some(wait) = self.long_poll.filter(|_| !polls.is_empty()) else {
            return tokio::time::sleep(interval).await;
        };
        let started = tokio::time::Instant::now();
        let polls = polls.iter().map(|(url, etag)| {
            Box::pin(async move {
                match self.fetcher.wait_for_change(url, etag, wait).await {
                    Ok(Poll::Changed) => true,
                    Ok(Poll::Unchanged) => false,
                    Err(reason) => {
                        tracing::debug!(%url, %reason, "long poll failed");
                        false
                    }
                }
            })
        });
        let first = async {
            let (changed, _, _) = futures::future::select_all(polls).await;
            let held = started.elapsed() >= wait / 2;
            if !changed && !held {
                tokio::time::sleep_until(started + interval).await;
            }
        };
        if all {
            first.await;
        } else {
            tokio::select! {
                () = first => {}
                () = tokio::time::sleep(interval) => {}
            }
        }
    }

    /// The `(url, ETag)` of every active bundle whose server holds polls, and whether
    /// those are all the configured bundles.
    async fn long_pollable(&self) -> (Vec<(String, String)>, bool) {
        let active = self.active.lock().await;
        let polls: Vec<_> = self
            .bundles
            .iter()
            .filter_map(|config| {
                let BundleSource::Http(url) = &config.source else {
                    return None;
                };
                let bundle = active.get(&config.name).filter(|b| b.long_polling)?;
                Some((url.clone(), bundle.etag.clone()?))
            })
            .collect();
        let all = polls.len() == self.bundles.len();
        (polls, all)
    }

    /// Returns each configured bundle's status, in configuration order.
    pub fn status(&self) -> Vec<BundleStatus> {
        self.statuses.snapshot()
    }

    /// Polls one bundle source and, if it brings a new archive, parses and verifies it.
    async fn fetch(
        &self,
        config: &BundleConfig,
        active: Option<&ActiveBundle>,
    ) -> Result<Fetched, GateError> {
        let etag = active.and_then(|a| a.etag.as_deref());
        let (bytes, etag, long_polling) = match self
            .fetcher
            .fetch(&config.name, &config.source, etag)
            .await?
        {
            Download::Missing => return Ok(Fetched::Missing),
            Download::NotModified => return Ok(Fetched::Unchanged),
            Download::Bytes {
                body,
                etag,
                long_polling,
            } => (body, etag, long_polling),
        };
        let sha256 = hex::encode(Sha256::digest(&bytes));
        if active.is_some_and(|a| a.sha256 == sha256) {
            return Ok(Fetched::Unchanged);
        }
        let bundle_error = |source| GateError::Bundle {
            bundle: config.name.clone(),
            source,
        };
        let bundle =
            Bundle::from_tar_gz(&config.name, &bytes, &self.limits).map_err(bundle_error)?;
        self.own_verifiers
            .get(&config.name)
            .unwrap_or(&self.verifier)
            .verify(&bundle)
            .map_err(bundle_error)?;
        if self.monotonic.contains(&config.name) {
            let floor = self.floor(&config.name).await?;
            check_follows(&config.name, active.map(|a| &a.bundle), floor, &bundle)?;
        }
        Ok(Fetched::New(Box::new(ActiveBundle {
            sha256,
            etag,
            long_polling,
            bundle,
        })))
    }

    /// The stored floor of monotonic bundle `name`, if one is kept.
    async fn floor(&self, name: &str) -> Result<Option<u64>, GateError> {
        let Some((db, service)) = &self.floor else {
            return Ok(None);
        };
        db.revision_floor(service, name)
            .await
            .map_err(|e| floor_error(name, &e))
    }

    /// Raises the stored floor of every changed monotonic bundle to its new counter.
    async fn raise_floors(
        &self,
        candidates: &BTreeMap<String, ActiveBundle>,
        changed: &[String],
    ) -> Result<(), GateError> {
        let Some((db, service)) = &self.floor else {
            return Ok(());
        };
        for name in changed.iter().filter(|n| self.monotonic.contains(n)) {
            let Some(counter) = candidates
                .get(name)
                .and_then(|a| revision_counter(&a.bundle.manifest.revision))
            else {
                continue;
            };
            db.raise_revision_floor(service, name, counter)
                .await
                .map_err(|e| floor_error(name, &e))?;
        }
        Ok(())
    }

    /// Compiles and warms an engine over `bundles` off the async runtime.
    async fn build(
        &self,
        bundles: &BTreeMap<String, ActiveBundle>,
    ) -> Result<PolicyEngine, GateError> {
        let bundles: Vec<Bundle> = bundles.values().map(|a| a.bundle.clone()).collect();
        let warm_principal = Principal {
            subject: "bundle-loader".to_string(),
            roles: Vec::new(),
            tenants: Vec::new(),
            ..Principal::default()
        };
        let input = self.gate.input(
            &warm_principal,
            "/blindledger.warmup/Warmup",
            &Resource::default(),
        );
        let task = tokio::task::spawn_blocking(move || -> Result<PolicyEngine, PolicyError> {
            let engine = PolicyEngine::build(&bundles, &input)?;
            // A broken mask rule would refuse every request (no safe log entry), so it is
            // caught here, before the engine is installed.
            let decision = engine.decide(&input)?;
            let mut event = engine.decision_event(&input, Some(&decision));
            engine.mask(&mut event)?;
            Ok(engine)
        });
        match task.await {
            Ok(result) => result.map_err(GateError::Engine),
            Err(join) => Err(GateError::Internal(format!(
                "engine build task failed: {join}"
            ))),
        }
    }
}

/// The counter of a monotonic bundle's revision (`<n>-<digest>`).
fn revision_counter(revision: &str) -> Option<u64> {
    revision.split('-').next()?.parse().ok()
}

fn floor_error(bundle: &str, error: &blindledger_store::StoreError) -> GateError {
    GateError::RevisionFloor {
        bundle: bundle.to_owned(),
        reason: error.to_string(),
    }
}

/// Refuses a revision of a monotonic bundle whose counter does not exceed the active one's,
/// or is below `floor` (the highest this service activated before it restarted).
fn check_follows(
    name: &str,
    active: Option<&Bundle>,
    floor: Option<u64>,
    offered: &Bundle,
) -> Result<(), GateError> {
    let counter = revision_counter;
    let offered_revision = &offered.manifest.revision;
    let stale = |active: &str| GateError::StaleRevision {
        bundle: name.to_owned(),
        active: active.to_owned(),
        offered: crate::gate::excerpt(offered_revision),
    };
    let Some(next) = counter(offered_revision) else {
        return Err(stale(active.map_or("(none)", |a| &a.manifest.revision)));
    };
    if let Some(floor) = floor.filter(|floor| next < *floor) {
        return Err(stale(&format!("{floor} (activated before a restart)")));
    }
    match active {
        Some(active) if counter(&active.manifest.revision).is_some_and(|n| next <= n) => {
            Err(stale(&active.manifest.revision))
        }
        _ => Ok(()),
    }
}

/// The bundles a failed build is charged to: the one the error names if it changed in this
/// reload, otherwise every bundle that changed.
fn blamed(error: &GateError, changed: &[String]) -> Vec<String> {
    let named = match error {
        GateError::Engine(PolicyError::Compile { file, .. }) => file.split('/').next(),
        GateError::Engine(
            PolicyError::PackageOutsideRoots { bundle, .. }
            | PolicyError::DataOutsideRoots { bundle, .. }
            | PolicyError::Data { bundle, .. },
        ) => Some(bundle.as_str()),
        _ => None,
    };
    match named {
        Some(name) if changed.iter().any(|c| c == name) => vec![name.to_string()],
        _ => changed.to_vec(),
    }
}
