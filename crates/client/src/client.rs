//! [`LedgerClient`]: one method per ledger RPC, with typed arguments and results.

use std::time::{Duration, SystemTime};

use blindledger_fhe::LedgerWidth;
use blindledger_proto::ledger::v1 as pb;
use blindledger_proto::prost_types::Timestamp;
use futures::{Stream, StreamExt};
use pb::ledger_service_client::LedgerServiceClient;
use tfhe::CompactPublicKey;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::error::bounded;
use crate::{is_finished, width_from_proto, ClientError};

/// Largest gRPC message sent or received: an aggregate's results are a few decompressed
/// ciphertexts of about 0.5 MB each.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// How long connecting to the ledger may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause before re-opening a job watch that ended while the job was still running.
const REWATCH_DELAY: Duration = Duration::from_millis(250);

/// A tenant's public material, as returned by `GetTenant`. The public key in it is what the
/// ledger says it is: [`TenantInfo::pin`] checks it against what the caller trusts before
/// anything can be encrypted with it.
pub struct TenantInfo {
    /// The tenant's name.
    pub tenant: String,
    /// Data-residency region of the tenant.
    pub region: String,
    /// Width of the tenant's amounts and balances.
    pub width: LedgerWidth,
    /// Identifies the tenant's key generation ([`blindledger_fhe::wire::key_id`]).
    pub key_id: String,
    /// Fingerprint of the public key the ledger returned
    /// ([`blindledger_fhe::wire::public_key_fingerprint`]).
    pub public_key_fingerprint: String,
    public_key: CompactPublicKey,
}

impl std::fmt::Debug for TenantInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantInfo")
            .field("tenant", &self.tenant)
            .field("region", &self.region)
            .field("width", &self.width)
            .field("key_id", &self.key_id)
            .field("public_key_fingerprint", &self.public_key_fingerprint)
            .finish_non_exhaustive()
    }
}

/// What a client trusts a tenant's public key by. A ledger, or anyone on the path to it,
/// could otherwise hand out its own key and read every amount encrypted to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPin {
    /// The serialized public key itself, as the tenant's key holder keeps it.
    PublicKey(Vec<u8>),
    /// The fingerprint of the public key, learned from the tenant out of band: how a third
    /// party that pays into a tenant's accounts pins it.
    Fingerprint(String),
}

impl KeyPin {
    /// The fingerprint this pin stands for (lowercase hex).
    pub fn fingerprint(&self) -> String {
        match self {
            Self::PublicKey(bytes) => blindledger_fhe::wire::public_key_fingerprint(bytes),
            Self::Fingerprint(fingerprint) => fingerprint.trim().to_ascii_lowercase(),
        }
    }
}

impl TenantInfo {
    /// Checks the public key the ledger returned against `pin`; only a key that matches can
    /// encrypt. Fails with [`ClientError::KeyMismatch`] otherwise.
    pub fn pin(self, pin: &KeyPin) -> Result<PinnedTenant, ClientError> {
        let expected = pin.fingerprint();
        if expected != self.public_key_fingerprint {
            return Err(ClientError::KeyMismatch {
                tenant: self.tenant,
                expected,
                found: self.public_key_fingerprint,
            });
        }
        Ok(PinnedTenant(self))
    }
}

/// A tenant whose public key matched the caller's pin: amounts can be encrypted to it.
#[derive(Debug)]
pub struct PinnedTenant(TenantInfo);

impl PinnedTenant {
    /// The tenant's public material.
    pub fn info(&self) -> &TenantInfo {
        &self.0
    }

    /// Encrypts an amount (in minor units) to this tenant, in the wire form that
    /// deposits, withdrawals and transfers take. Fails when it does not fit the width.
    pub fn encrypt(&self, amount: u64) -> Result<Vec<u8>, ClientError> {
        Ok(blindledger_fhe::wire::encrypt_amount(
            &self.0.public_key,
            self.0.width,
            amount,
        )?)
    }
}

/// Adds `authorization: Bearer <token>` to every request when a token is set.
#[derive(Clone, Default)]
pub struct BearerToken(Option<MetadataValue<Ascii>>);

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token itself.
        f.write_str(if self.0.is_some() {
            "BearerToken(set)"
        } else {
            "BearerToken(none)"
        })
    }
}

impl tonic::service::Interceptor for BearerToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        inject_trace_context(request.metadata_mut());
        Ok(request)
    }
}

/// Writes the current span's W3C trace context (`traceparent`) into a call's metadata, so
/// the ledger's spans join the caller's trace (nothing when the caller traces nothing).
fn inject_trace_context(metadata: &mut tonic::metadata::MetadataMap) {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    struct Injector<'a>(&'a mut tonic::metadata::MetadataMap);
    impl opentelemetry::propagation::Injector for Injector<'_> {
        fn set(&mut self, key: &str, value: String) {
            if let (Ok(key), Ok(value)) = (
                tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
                value.parse::<MetadataValue<Ascii>>(),
            ) {
                self.0.insert(key, value);
            }
        }
    }
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut Injector(metadata));
    });
}

/// TLS to the ledger: the CA its certificate chains to, and a client certificate with its
/// key (PEM) for a ledger that requires one.
#[derive(Clone)]
pub struct TlsSettings {
    /// CA certificates (PEM).
    pub ca: Vec<u8>,
    /// Client certificate chain and private key (PEM).
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The private key is never printed.
        f.debug_struct("TlsSettings")
            .field("client_certificate", &self.identity.is_some())
            .finish_non_exhaustive()
    }
}

/// The generated tonic client, with the bearer token attached.
pub type RawClient = LedgerServiceClient<InterceptedService<Channel, BearerToken>>;

/// A connection to a ledger. Cloning is cheap and shares the connection.
#[derive(Clone, Debug)]
pub struct LedgerClient {
    channel: Channel,
    inner: RawClient,
}

impl LedgerClient {
    /// Connects to a ledger at `endpoint` without TLS, e.g. `http://127.0.0.1:50051`:
    /// only a loopback address is accepted ([`ClientError::PlaintextRefused`] otherwise).
    pub async fn connect(endpoint: &str) -> Result<Self, ClientError> {
        Self::connect_with(endpoint, None).await
    }

    /// Connects to a ledger at `endpoint` (`https://…` with `tls`), trusting `tls.ca` for
    /// the server's certificate and presenting `tls.identity` when the ledger requires
    /// client certificates (mTLS). Without `tls`, only a loopback endpoint is accepted:
    /// tokens and key ids would cross the network in clear.
    pub async fn connect_with(
        endpoint: &str,
        tls: Option<TlsSettings>,
    ) -> Result<Self, ClientError> {
        if tls.is_none() && !is_loopback(endpoint) {
            return Err(ClientError::PlaintextRefused(bounded(endpoint)));
        }
        Self::open(endpoint, tls).await
    }

    /// Connects without TLS to any host: for a ledger behind a TLS-terminating proxy on
    /// the same host or network namespace, asked for explicitly.
    pub async fn connect_plaintext(endpoint: &str) -> Result<Self, ClientError> {
        Self::open(endpoint, None).await
    }

    async fn open(endpoint: &str, tls: Option<TlsSettings>) -> Result<Self, ClientError> {
        let mut endpoint =
            Endpoint::from_shared(endpoint.to_owned())?.connect_timeout(CONNECT_TIMEOUT);
        if let Some(tls) = tls {
            let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(tls.ca));
            if let Some((cert, key)) = tls.identity {
                config = config.identity(Identity::from_pem(cert, key));
            }
            endpoint = endpoint.tls_config(config)?;
        }
        Ok(Self::from_channel(endpoint.connect().await?))
    }

    /// Wraps an existing channel, with the message-size limits raised to
    /// [`MAX_MESSAGE_BYTES`].
    pub fn from_channel(channel: Channel) -> Self {
        Self::build(channel, BearerToken::default())
    }

    fn build(channel: Channel, token: BearerToken) -> Self {
        let inner = LedgerServiceClient::with_interceptor(channel.clone(), token)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        Self { channel, inner }
    }

    /// The same connection, sending `token` (a JWT) as the bearer credential of every call.
    pub fn with_token(&self, token: &str) -> Result<Self, ClientError> {
        let value = format!("Bearer {}", token.trim())
            .parse::<MetadataValue<Ascii>>()
            .map_err(|_| ClientError::InvalidToken)?;
        Ok(Self::build(self.channel.clone(), BearerToken(Some(value))))
    }

    /// Returns the generated tonic client sharing this connection, for requests this
    /// wrapper does not model (e.g. deliberately malformed ones in tests).
    pub fn raw(&self) -> RawClient {
        self.inner.clone()
    }

    /// Fetches a tenant's public material and checks that its public key decodes under the
    /// ledger's parameters. Whether it is the tenant's key is [`TenantInfo::pin`]'s to say.
    pub async fn tenant(&self, tenant: &str) -> Result<TenantInfo, ClientError> {
        let request = pb::GetTenantRequest {
            tenant: tenant.to_owned(),
        };
        let response = self.raw().get_tenant(request).await?.into_inner();
        Ok(TenantInfo {
            width: width_from_proto(response.width)?,
            public_key: blindledger_fhe::wire::decode_public_key(&response.public_key)?,
            public_key_fingerprint: blindledger_fhe::wire::public_key_fingerprint(
                &response.public_key,
            ),
            tenant: response.tenant,
            region: response.region,
            key_id: response.key_id,
        })
    }

    /// Fetches a tenant and checks its public key against `pin`: the tenant an amount can
    /// be encrypted to.
    pub async fn pinned_tenant(
        &self,
        tenant: &str,
        pin: &KeyPin,
    ) -> Result<PinnedTenant, ClientError> {
        self.tenant(tenant).await?.pin(pin)
    }

    /// Opens an account with an encrypted zero balance and optional transfer limits.
    pub async fn open_account(
        &self,
        tenant: &str,
        account: &str,
        limits: Option<pb::TransferLimits>,
    ) -> Result<pb::Account, ClientError> {
        let request = pb::OpenAccountRequest {
            tenant: tenant.to_owned(),
            account: account.to_owned(),
            limits,
        };
        let response = self.raw().open_account(request).await?.into_inner();
        response
            .account
            .ok_or_else(|| missing("OpenAccountResponse.account"))
    }

    /// Queues a deposit of an encrypted amount; returns the queued job.
    pub async fn deposit(
        &self,
        tenant: &str,
        account: &str,
        amount_wire: Vec<u8>,
        idempotency_key: &str,
    ) -> Result<pb::Job, ClientError> {
        let request = pb::DepositRequest {
            tenant: tenant.to_owned(),
            account: account.to_owned(),
            amount: amount_wire,
            idempotency_key: idempotency_key.to_owned(),
        };
        let response = self.raw().deposit(request).await?.into_inner();
        response.job.ok_or_else(|| missing("DepositResponse.job"))
    }

    /// Queues a withdrawal of an encrypted amount; returns the queued job.
    pub async fn withdraw(
        &self,
        tenant: &str,
        account: &str,
        amount_wire: Vec<u8>,
        idempotency_key: &str,
    ) -> Result<pb::Job, ClientError> {
        let request = pb::WithdrawRequest {
            tenant: tenant.to_owned(),
            account: account.to_owned(),
            amount: amount_wire,
            idempotency_key: idempotency_key.to_owned(),
        };
        let response = self.raw().withdraw(request).await?.into_inner();
        response.job.ok_or_else(|| missing("WithdrawResponse.job"))
    }

    /// Queues a confidential transfer of an encrypted amount between two accounts of a
    /// tenant; returns the queued job.
    pub async fn transfer(
        &self,
        tenant: &str,
        from: &str,
        to: &str,
        amount_wire: Vec<u8>,
        idempotency_key: &str,
    ) -> Result<pb::Job, ClientError> {
        let request = pb::TransferRequest {
            tenant: tenant.to_owned(),
            from_account: from.to_owned(),
            to_account: to.to_owned(),
            amount: amount_wire,
            idempotency_key: idempotency_key.to_owned(),
        };
        let response = self.raw().transfer(request).await?.into_inner();
        response.job.ok_or_else(|| missing("TransferResponse.job"))
    }

    /// Queues an aggregate over the account's transfers committed in `[from, to)`,
    /// counting those that moved more than `threshold`; returns the queued job.
    pub async fn aggregate(
        &self,
        tenant: &str,
        account: &str,
        from: SystemTime,
        to: SystemTime,
        threshold: u64,
        idempotency_key: &str,
    ) -> Result<pb::Job, ClientError> {
        let request = pb::AggregateRequest {
            tenant: tenant.to_owned(),
            account: account.to_owned(),
            from: Some(Timestamp::from(from)),
            to: Some(Timestamp::from(to)),
            threshold,
            idempotency_key: idempotency_key.to_owned(),
        };
        let response = self.raw().aggregate(request).await?.into_inner();
        response.job.ok_or_else(|| missing("AggregateResponse.job"))
    }

    /// Fetches an account's encrypted balance: the ledger width, the serialized
    /// ciphertext (decryptable with the tenant's client key) and the balance version.
    pub async fn balance(
        &self,
        tenant: &str,
        account: &str,
    ) -> Result<(LedgerWidth, Vec<u8>, u64), ClientError> {
        let request = pb::GetBalanceRequest {
            tenant: tenant.to_owned(),
            account: account.to_owned(),
        };
        let response = self.raw().get_balance(request).await?.into_inner();
        Ok((
            width_from_proto(response.width)?,
            response.balance,
            response.version,
        ))
    }

    /// Fetches a job; with `include_results`, a committed job carries its encrypted
    /// results (the ledger decompresses them, about 0.3 s per value).
    pub async fn job(&self, id: &str, include_results: bool) -> Result<pb::Job, ClientError> {
        let request = pb::GetJobRequest {
            id: id.to_owned(),
            include_results,
        };
        let response = self.raw().get_job(request).await?.into_inner();
        response.job.ok_or_else(|| missing("GetJobResponse.job"))
    }

    /// Streams a job's state transitions until it is committed or failed. The jobs
    /// streamed carry no results; fetch them with [`LedgerClient::job`].
    pub async fn watch_job(
        &self,
        id: &str,
    ) -> Result<impl Stream<Item = Result<pb::Job, ClientError>> + Send + 'static, ClientError>
    {
        let request = pb::WatchJobRequest { id: id.to_owned() };
        let stream = self.raw().watch_job(request).await?.into_inner();
        Ok(stream.map(|item| match item {
            Ok(response) => response.job.ok_or_else(|| missing("WatchJobResponse.job")),
            Err(status) => Err(ClientError::from(status)),
        }))
    }

    /// Waits until a job is committed or failed, then returns it with its encrypted
    /// results. Re-opens the watch if the ledger ends it early (e.g. on restart).
    pub async fn wait_job(&self, id: &str) -> Result<pb::Job, ClientError> {
        self.wait_finished(id).await?;
        self.job(id, true).await
    }

    /// Waits until a job is committed or failed and returns its final state, without
    /// results (the ledger decompresses results for each read, so this is cheaper).
    pub async fn wait_finished(&self, id: &str) -> Result<pb::Job, ClientError> {
        loop {
            let mut updates = std::pin::pin!(self.watch_job(id).await?);
            while let Some(job) = updates.next().await {
                let job = job?;
                if is_finished(&job) {
                    return Ok(job);
                }
            }
            // The stream ended without a final state: check, then watch again.
            let job = self.job(id, false).await?;
            if is_finished(&job) {
                return Ok(job);
            }
            tokio::time::sleep(REWATCH_DELAY).await;
        }
    }

    /// The policy bundles the ledger enforces: revisions, activation times, last errors.
    pub async fn policy_status(&self) -> Result<Vec<pb::PolicyBundleStatus>, ClientError> {
        let request = pb::GetPolicyStatusRequest {};
        Ok(self
            .raw()
            .get_policy_status(request)
            .await?
            .into_inner()
            .bundles)
    }

    /// Lists one page of transfer metadata (never amounts) touching an account, newest
    /// first. `page_size` 0 means the ledger's default (50); pass the previous response's
    /// `next_page_token` to continue.
    pub async fn list_transfers(
        &self,
        tenant: &str,
        account: &str,
        page_size: u32,
        page_token: Option<&str>,
    ) -> Result<pb::ListTransfersResponse, ClientError> {
        let request = pb::ListTransfersRequest {
            tenant: tenant.to_owned(),
            account: account.to_owned(),
            page_size,
            page_token: page_token.unwrap_or_default().to_owned(),
        };
        Ok(self.raw().list_transfers(request).await?.into_inner())
    }
}

/// The error for a response lacking a required field.
fn missing(field: &str) -> ClientError {
    ClientError::Protocol(format!("{field} is missing"))
}

/// Whether `endpoint` names this host: `localhost`, or an IPv4 or IPv6 loopback address.
fn is_loopback(endpoint: &str) -> bool {
    let Ok(uri) = endpoint.parse::<tonic::codegen::http::Uri>() else {
        return false;
    };
    match uri.host() {
        Some(host) if host.eq_ignore_ascii_case("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_host_counts_as_loopback() {
        for local in [
            "http://127.0.0.1:50051",
            "http://127.8.9.1:1",
            "http://localhost:50051",
            "http://LOCALHOST",
            "http://[::1]:50051",
        ] {
            assert!(is_loopback(local), "{local}");
        }
        for remote in [
            "http://10.0.0.7:50051",
            "http://ledger.example:50051",
            "http://localhost.example:50051",
            "http://[2001:db8::1]:50051",
            "http://127.0.0.1.example",
            "not a uri",
        ] {
            assert!(!is_loopback(remote), "{remote}");
        }
    }

    #[tokio::test]
    async fn plaintext_to_another_host_is_refused_before_connecting() {
        // Nothing listens there, and nothing is tried: the refusal comes first.
        let err = LedgerClient::connect("http://192.0.2.1:50051")
            .await
            .expect_err("plaintext to a remote host");
        assert!(matches!(err, ClientError::PlaintextRefused(_)), "{err}");
        assert!(err.to_string().contains("192.0.2.1"), "{err}");
    }
}
