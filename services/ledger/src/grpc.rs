//! The gRPC adapter: each handler parses its request, calls the ledger and converts the
//! result. Statuses come only from `From<LedgerError> for Status`.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::sync::broadcast;
use tonic::{Request, Response, Status, Streaming};

use blindledger_fhe::LedgerWidth;
use blindledger_gate::{
    with_decision_id, Authorized, BundleLoader, CalledMethod, PolicyGate, Principal, Resource,
};
use blindledger_proto::ledger::v1 as pb;
use blindledger_proto::ledger::v1::ledger_service_server::LedgerService;
use blindledger_store::{JobRow, TenantRow};

use crate::convert;
use crate::error::LedgerError;
use crate::jobs::{JobKind, JobParams, JobRequest, PolicyLimits};
use crate::keys::KeyUpload;
use crate::ledger::{AccountLimits, Ledger, WatchPermit};
use crate::names::{validate_name, AccountRef};

/// Serves `blindledger.ledger.v1.LedgerService` over a [`Ledger`]. Every handler asks the
/// policy gate before it acts, with the caller the auth layer authenticated.
#[derive(Clone)]
pub struct LedgerGrpc {
    ledger: Arc<Ledger>,
    gate: PolicyGate,
    bundles: Arc<BundleLoader>,
}

impl std::fmt::Debug for LedgerGrpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerGrpc").finish_non_exhaustive()
    }
}

/// Who calls which method: what the auth layer established.
struct Caller {
    principal: Principal,
    method: String,
}

impl Caller {
    fn of<T>(request: &Request<T>) -> Result<Self, Status> {
        let principal = blindledger_gate::principal(request)?;
        let method = request
            .extensions()
            .get::<CalledMethod>()
            .map(|m| m.0.clone())
            .ok_or_else(|| Status::internal("request has no gRPC method"))?;
        Ok(Self { principal, method })
    }
}

/// A request the policy allowed, with the tenant row it was decided on (none for a tenant
/// that does not exist), so the handler does not read it again.
struct Allowed {
    decision: Authorized,
    tenant: Option<TenantRow>,
}

impl Allowed {
    /// The tenant the request named, or `NOT_FOUND` naming it.
    fn tenant(&self, name: &str) -> Result<&TenantRow, LedgerError> {
        self.tenant
            .as_ref()
            .ok_or_else(|| LedgerError::NotFound(format!("tenant {name}")))
    }
}

impl LedgerGrpc {
    /// Wraps the ledger behind the gate, which `bundles` keeps current.
    pub fn new(ledger: Arc<Ledger>, gate: PolicyGate, bundles: Arc<BundleLoader>) -> Self {
        Self {
            ledger,
            gate,
            bundles,
        }
    }

    /// Asks the policy about `caller` acting on `tenant`/`account` (and, for a transfer, the
    /// receiving `counterparty`). The tenant's region and key id come from storage; an
    /// unknown tenant has neither, and the handler reports it missing only after the policy
    /// allowed the call, so a denied caller learns nothing. A tenant that cannot be read
    /// fails the call: a storage error is never decided on as a missing tenant.
    async fn authorize(
        &self,
        caller: &Caller,
        tenant: &str,
        account: Option<&str>,
        counterparty: Option<&str>,
    ) -> Result<Allowed, Status> {
        self.authorize_with(caller, tenant, account, counterparty, false)
            .await
    }

    /// Authorizes a read of job `id`, with its encrypted results when `include_results`.
    /// A caller whose token does not name the job's tenant learns nothing about it: a denial
    /// is answered exactly as a job that does not exist (the decision is still logged).
    async fn authorize_job(
        &self,
        caller: &Caller,
        id: &str,
        include_results: bool,
    ) -> Result<(JobRow, Authorized), Status> {
        let row = self.ledger.job(id).await?;
        let decided = self
            .authorize_with(
                caller,
                &row.tenant,
                Some(&row.account_a),
                None,
                include_results,
            )
            .await;
        match decided {
            Ok(allowed) => Ok((row, allowed.decision)),
            Err(status)
                if status.code() == tonic::Code::PermissionDenied
                    && !caller.principal.tenants.contains(&row.tenant) =>
            {
                Err(LedgerError::NotFound(format!("job {id}")).into())
            }
            Err(status) => Err(status),
        }
    }

    async fn authorize_with(
        &self,
        caller: &Caller,
        tenant: &str,
        account: Option<&str>,
        counterparty: Option<&str>,
        include_results: bool,
    ) -> Result<Allowed, Status> {
        let names = [
            ("tenant", Some(tenant)),
            ("account", account),
            ("counterparty", counterparty),
        ];
        for (what, name) in names {
            if let Some(Err(LedgerError::InvalidArgument(reason))) =
                name.map(|name| validate_name(what, name))
            {
                let resource = Resource {
                    tenant: Some(tenant.to_owned()),
                    account: account.map(str::to_owned),
                    counterparty: counterparty.map(str::to_owned),
                    ..Resource::default()
                };
                let (principal, method) = (&caller.principal, &caller.method);
                // The request field the name came in (a transfer names two accounts).
                let field = match (what, method.ends_with("/Transfer")) {
                    ("counterparty", _) => "to_account",
                    ("account", true) => "from_account",
                    (other, _) => other,
                };
                return Err(self
                    .gate
                    .refuse(principal, method, &resource, Some(field), &reason)
                    .await
                    .into());
            }
        }
        let row = match self.ledger.tenant_row(tenant).await {
            Ok(row) => Some(row),
            Err(LedgerError::NotFound(_)) => None,
            // Not knowing the tenant is not the fact "no such tenant": residency and revoked
            // keys would not be decided on. The request fails instead.
            Err(error) => return Err(error.into()),
        };
        let resource = Resource {
            tenant: Some(tenant.to_owned()),
            account: account.map(str::to_owned),
            region: row.as_ref().map(|r| r.region.clone()),
            counterparty: counterparty.map(str::to_owned),
            key_id: row.as_ref().map(|r| r.key_id.clone()),
            include_results,
        };
        let decision = self
            .gate
            .authorize(&caller.principal, &caller.method, resource)
            .await?;
        Ok(Allowed {
            decision,
            tenant: row,
        })
    }

    /// Authorizes and queues a deposit or a withdrawal on one account.
    async fn one_account_job(
        &self,
        caller: &Caller,
        kind: JobKind,
        tenant: &str,
        account: &str,
        amount: Vec<u8>,
        idempotency_key: String,
    ) -> Result<(pb::Job, Authorized), Status> {
        let allowed = self.authorize(caller, tenant, Some(account), None).await?;
        let request = movement(
            kind,
            (tenant, account),
            None,
            amount,
            idempotency_key,
            &allowed.decision,
        )?;
        Ok((self.submit(&allowed, request).await?, allowed.decision))
    }

    /// Queues a job the policy allowed, on the tenant row it was decided on.
    async fn submit(&self, allowed: &Allowed, request: JobRequest) -> Result<pb::Job, Status> {
        let tenant = allowed.tenant(&request.account.tenant)?;
        let row = self.ledger.submit(tenant, request).await?;
        Ok(convert::job(&row, None))
    }
}

/// The answer, tagged with the id of the decision that allowed it.
fn respond<T>(message: T, allowed: &Authorized) -> Result<Response<T>, Status> {
    Ok(with_decision_id(
        Response::new(message),
        &allowed.decision_id,
    ))
}

fn policy_limits(allowed: &Authorized) -> PolicyLimits {
    let o = &allowed.obligations;
    PolicyLimits {
        max_amount: o.max_amount,
        window_limit: o.window_limit,
        window_seconds: o.window_seconds,
    }
}

type JobStream = Pin<Box<dyn Stream<Item = Result<pb::WatchJobResponse, Status>> + Send>>;

fn width(value: i32) -> Result<LedgerWidth, LedgerError> {
    match pb::LedgerWidth::try_from(value) {
        Ok(pb::LedgerWidth::U32) => Ok(LedgerWidth::U32),
        Ok(pb::LedgerWidth::U64) | Ok(pb::LedgerWidth::Unspecified) => Ok(LedgerWidth::U64),
        Err(_) => Err(LedgerError::InvalidArgument(format!(
            "unknown ledger width {value}"
        ))),
    }
}

fn limits(limits: Option<pb::TransferLimits>) -> AccountLimits {
    let l = limits.unwrap_or_default();
    AccountLimits {
        max_amount: (l.max_amount > 0).then_some(l.max_amount),
        window: (l.window_limit > 0).then_some((
            l.window_limit,
            if l.window_seconds == 0 {
                86_400
            } else {
                l.window_seconds
            },
        )),
    }
}

fn movement(
    kind: JobKind,
    (tenant, account): (&str, &str),
    to: Option<String>,
    amount: Vec<u8>,
    key: String,
    allowed: &Authorized,
) -> Result<JobRequest, LedgerError> {
    Ok(JobRequest {
        kind,
        account: AccountRef::new(tenant, account)?,
        counterparty: to,
        amount: Some(amount),
        params: JobParams::default(),
        policy_limits: policy_limits(allowed),
        idempotency_key: key,
    })
}

#[tonic::async_trait]
impl LedgerService for LedgerGrpc {
    #[tracing::instrument(skip_all)]
    async fn register_tenant_keys(
        &self,
        request: Request<Streaming<pb::RegisterTenantKeysRequest>>,
    ) -> Result<Response<pb::RegisterTenantKeysResponse>, Status> {
        let caller = Caller::of(&request)?;
        let mut stream = request.into_inner();
        let header = match stream.message().await?.and_then(|m| m.part) {
            Some(pb::register_tenant_keys_request::Part::Header(h)) => h,
            _ => {
                return Err(LedgerError::InvalidArgument(
                    "the first message must be the header".into(),
                )
                .into())
            }
        };
        // Decided on the header, before the server key is read; the region is the one
        // being registered.
        let resource = Resource {
            tenant: Some(header.tenant.clone()),
            region: Some(header.region.clone()),
            ..Resource::default()
        };
        let checked = validate_name("tenant", &header.tenant)
            .map_err(|e| ("header.tenant", e))
            .and_then(|()| {
                validate_name("region", &header.region).map_err(|e| ("header.region", e))
            });
        if let Err((field, LedgerError::InvalidArgument(reason))) = checked {
            let (principal, method) = (&caller.principal, &caller.method);
            return Err(self
                .gate
                .refuse(principal, method, &resource, Some(field), &reason)
                .await
                .into());
        }
        let allowed = self
            .gate
            .authorize(&caller.principal, &caller.method, resource)
            .await?;
        let upload = KeyUpload {
            width: width(header.width)?,
            tenant: header.tenant,
            region: header.region,
            public_key: header.public_key,
            server_key_size: header.server_key_size,
            server_key_sha256: header.server_key_sha256,
        };
        let chunks = stream.map(|message| match message.map(|m| m.part) {
            Ok(Some(pb::register_tenant_keys_request::Part::ServerKeyChunk(chunk))) => Ok(chunk),
            Ok(_) => Err(LedgerError::InvalidArgument(
                "only server key chunks may follow the header".into(),
            )),
            Err(status) => Err(LedgerError::InvalidArgument(format!(
                "upload interrupted: {}",
                status.message()
            ))),
        });
        let tenant = upload.tenant.clone();
        let key_id = self.ledger.register_keys(upload, chunks).await?;
        respond(pb::RegisterTenantKeysResponse { tenant, key_id }, &allowed)
    }

    #[tracing::instrument(skip_all)]
    async fn get_tenant(
        &self,
        request: Request<pb::GetTenantRequest>,
    ) -> Result<Response<pb::GetTenantResponse>, Status> {
        let caller = Caller::of(&request)?;
        let tenant = request.into_inner().tenant;
        let allowed = self.authorize(&caller, &tenant, None, None).await?;
        let row = allowed.tenant(&tenant)?;
        let width = convert::width(Ledger::width(row)?);
        let message = pb::GetTenantResponse {
            tenant: row.name.clone(),
            region: row.region.clone(),
            width: width.into(),
            public_key: row.public_key.clone(),
            key_id: row.key_id.clone(),
        };
        respond(message, &allowed.decision)
    }

    #[tracing::instrument(skip_all)]
    async fn open_account(
        &self,
        request: Request<pb::OpenAccountRequest>,
    ) -> Result<Response<pb::OpenAccountResponse>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let allowed = self
            .authorize(&caller, &r.tenant, Some(&r.account), None)
            .await?;
        let row = self
            .ledger
            .open_account(&AccountRef::new(&r.tenant, &r.account)?, limits(r.limits))
            .await?;
        let account = Some(convert::account(&row));
        respond(pb::OpenAccountResponse { account }, &allowed.decision)
    }

    #[tracing::instrument(skip_all)]
    async fn deposit(
        &self,
        request: Request<pb::DepositRequest>,
    ) -> Result<Response<pb::DepositResponse>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let (job, allowed) = self
            .one_account_job(
                &caller,
                JobKind::Deposit,
                &r.tenant,
                &r.account,
                r.amount,
                r.idempotency_key,
            )
            .await?;
        respond(pb::DepositResponse { job: Some(job) }, &allowed)
    }

    #[tracing::instrument(skip_all)]
    async fn withdraw(
        &self,
        request: Request<pb::WithdrawRequest>,
    ) -> Result<Response<pb::WithdrawResponse>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let (job, allowed) = self
            .one_account_job(
                &caller,
                JobKind::Withdraw,
                &r.tenant,
                &r.account,
                r.amount,
                r.idempotency_key,
            )
            .await?;
        respond(pb::WithdrawResponse { job: Some(job) }, &allowed)
    }

    #[tracing::instrument(skip_all)]
    async fn transfer(
        &self,
        request: Request<pb::TransferRequest>,
    ) -> Result<Response<pb::TransferResponse>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let allowed = self
            .authorize(
                &caller,
                &r.tenant,
                Some(&r.from_account),
                Some(&r.to_account),
            )
            .await?;
        AccountRef::new(&r.tenant, &r.to_account)?;
        let request = movement(
            JobKind::Transfer,
            (&r.tenant, &r.from_account),
            Some(r.to_account),
            r.amount,
            r.idempotency_key,
            &allowed.decision,
        )?;
        let job = Some(self.submit(&allowed, request).await?);
        respond(pb::TransferResponse { job }, &allowed.decision)
    }

    #[tracing::instrument(skip_all)]
    async fn get_balance(
        &self,
        request: Request<pb::GetBalanceRequest>,
    ) -> Result<Response<pb::GetBalanceResponse>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let allowed = self
            .authorize(&caller, &r.tenant, Some(&r.account), None)
            .await?;
        let (width, balance, version) = self
            .ledger
            .balance(&AccountRef::new(&r.tenant, &r.account)?)
            .await?;
        let message = pb::GetBalanceResponse {
            tenant: r.tenant,
            account: r.account,
            width: convert::width(width).into(),
            balance,
            version,
        };
        respond(message, &allowed.decision)
    }

    #[tracing::instrument(skip_all)]
    async fn aggregate(
        &self,
        request: Request<pb::AggregateRequest>,
    ) -> Result<Response<pb::AggregateResponse>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let allowed = self
            .authorize(&caller, &r.tenant, Some(&r.account), None)
            .await?;
        let from_ms = r.from.as_ref().map(convert::millis).unwrap_or(0);
        let to_ms = r.to.as_ref().map(convert::millis).unwrap_or(i64::MAX);
        if from_ms >= to_ms {
            return Err(
                LedgerError::InvalidArgument("the period must end after it starts".into()).into(),
            );
        }
        let request = JobRequest {
            kind: JobKind::Aggregate,
            account: AccountRef::new(&r.tenant, &r.account)?,
            counterparty: None,
            amount: None,
            params: JobParams {
                from_ms: Some(from_ms),
                to_ms: Some(to_ms),
                threshold: Some(r.threshold),
                ..JobParams::default()
            },
            policy_limits: PolicyLimits::default(),
            idempotency_key: r.idempotency_key,
        };
        let job = Some(self.submit(&allowed, request).await?);
        respond(pb::AggregateResponse { job }, &allowed.decision)
    }

    #[tracing::instrument(skip_all)]
    async fn get_job(
        &self,
        request: Request<pb::GetJobRequest>,
    ) -> Result<Response<pb::GetJobResponse>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let (row, allowed) = self
            .authorize_job(&caller, &r.id, r.include_results)
            .await?;
        let results = match r.include_results {
            true => self.ledger.job_results(&row).await?,
            false => None,
        };
        let job = Some(convert::job(&row, results));
        respond(pb::GetJobResponse { job }, &allowed)
    }

    type WatchJobStream = JobStream;

    #[tracing::instrument(skip_all)]
    async fn watch_job(
        &self,
        request: Request<pb::WatchJobRequest>,
    ) -> Result<Response<Self::WatchJobStream>, Status> {
        let caller = Caller::of(&request)?;
        let id = request.into_inner().id;
        let (first, allowed) = self.authorize_job(&caller, &id, false).await?;
        let permit = self.ledger.watch_permit(&first.tenant)?;
        respond(watch(self.ledger.clone(), first, permit), &allowed)
    }

    #[tracing::instrument(skip_all)]
    async fn get_policy_status(
        &self,
        request: Request<pb::GetPolicyStatusRequest>,
    ) -> Result<Response<pb::GetPolicyStatusResponse>, Status> {
        let caller = Caller::of(&request)?;
        let allowed = self
            .gate
            .authorize(&caller.principal, &caller.method, Resource::default())
            .await?;
        let bundles = self
            .bundles
            .status()
            .into_iter()
            .map(|b| pb::PolicyBundleStatus {
                name: b.name,
                active_revision: b.active_revision.unwrap_or_default(),
                last_successful_activation: b.last_successful_activation.map(convert::system_time),
                last_error: b.last_error.unwrap_or_default(),
            })
            .collect();
        respond(pb::GetPolicyStatusResponse { bundles }, &allowed)
    }

    #[tracing::instrument(skip_all)]
    async fn list_transfers(
        &self,
        request: Request<pb::ListTransfersRequest>,
    ) -> Result<Response<pb::ListTransfersResponse>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let allowed = self
            .authorize(&caller, &r.tenant, Some(&r.account), None)
            .await?;
        let before = match r.page_token.as_str() {
            "" => None,
            token => Some(
                token
                    .parse::<i64>()
                    .map_err(|_| LedgerError::InvalidArgument("invalid page_token".into()))?,
            ),
        };
        let limit = if r.page_size == 0 { 50 } else { r.page_size };
        let rows = self
            .ledger
            .list_transfers(&AccountRef::new(&r.tenant, &r.account)?, before, limit)
            .await?;
        let next_page_token = match rows.last() {
            Some(last) if rows.len() as u32 == limit.min(500) => last.seq.to_string(),
            _ => String::new(),
        };
        let message = pb::ListTransfersResponse {
            transfers: rows.iter().map(convert::transfer).collect(),
            next_page_token,
        };
        respond(message, &allowed.decision)
    }
}

/// Streams a job's states until it is terminal. State changes made in this process wake
/// the stream at once; changes made by another instance are seen within a poll period.
/// The task ends when the job is terminal or the client goes away, giving back `permit`.
fn watch(ledger: Arc<Ledger>, first: JobRow, permit: WatchPermit) -> JobStream {
    // Changes are announced on `job_events` (this instance's workers and the change feed);
    // the job is read again when one names it, and at most this long after the last read in
    // case an announcement was lost (a lagging receiver re-reads at once).
    const REREAD: Duration = Duration::from_secs(30);
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let mut events = ledger.job_events();
    tokio::spawn(async move {
        let _permit = permit;
        let (mut row, mut last_sent) = (first, None);
        loop {
            if last_sent != Some(row.state) {
                let message = pb::WatchJobResponse {
                    job: Some(convert::job(&row, None)),
                };
                if tx.send(Ok(message)).await.is_err() {
                    return;
                }
                last_sent = Some(row.state);
            }
            if row.state.is_terminal() {
                return;
            }
            // A client that went away gives its place back at once, not at the job's end.
            tokio::select! {
                () = tx.closed() => return,
                () = ledger.shutting_down() => return,
                _ = tokio::time::timeout(REREAD, wait_for(&mut events, &row.id)) => {}
            }
            row = match ledger.job(&row.id).await {
                Ok(row) => row,
                Err(err) => {
                    let _ = tx.send(Err(Status::from(err))).await;
                    return;
                }
            };
        }
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

async fn wait_for(events: &mut broadcast::Receiver<String>, id: &str) {
    loop {
        match events.recv().await {
            Ok(changed) if changed == id => return,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_) | broadcast::error::RecvError::Closed) => {
                return
            }
        }
    }
}
