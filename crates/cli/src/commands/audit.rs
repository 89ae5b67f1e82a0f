//! `blindledger audit verify|export` and `blindledger admin ...`: the compliance officer's
//! verbs. They talk to the audit service's HTTP API with the officer's token; `audit verify`
//! can also check a database directly against the checkpoint keys, trusting no service.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use blindledger_audit::admin::{sign_command, Command, CommandPayload};
use blindledger_audit::{Archive, AuditLog, CheckpointKeys, PublishedCheckpoints, VerifyOptions};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};

use super::Context;

/// Where the audit service is.
#[derive(Debug, Clone, clap::Args)]
pub struct AuditApi {
    /// The audit service's base URL
    #[arg(
        long = "audit",
        env = "BLINDLEDGER_AUDIT",
        default_value = "http://127.0.0.1:8088"
    )]
    pub url: String,
}

/// `audit` verbs.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Proves no row of the audit trail was edited, deleted, inserted or reordered, and
    /// that the signed checkpoints are authentic; exits non-zero naming the first bad row
    Verify {
        /// Start after this checkpoint id (the rows it covers are trusted once its
        /// signature and head check out)
        #[arg(long = "from", value_name = "CHECKPOINT")]
        from_checkpoint: Option<i64>,
        /// Check this database directly instead of asking the audit service
        #[arg(long, value_name = "URL", requires = "checkpoint_keys")]
        database_url: Option<String>,
        /// With --database-url: the audit service's checkpoint public key, as KID=FILE
        /// (repeatable)
        #[arg(long = "checkpoint-key", value_name = "KID=FILE", value_parser = kid_file)]
        checkpoint_keys: Vec<(String, PathBuf)>,
        /// With --database-url: the directory the audit service publishes checkpoints to
        /// (`checkpoint_publish_dir`); the chain must match every checkpoint there, and each
        /// must still be in the database
        #[arg(long, value_name = "DIR", requires = "database_url")]
        published: Option<PathBuf>,
        /// With --published: report rows no published checkpoint covers after this long
        #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = humantime::parse_duration)]
        max_unpublished: std::time::Duration,
        /// With --database-url: the archive of the trail (`audit archive`), as an object
        /// store URL (file:///dir or s3://bucket/prefix): its segments are verified, and the
        /// database's rows after it, which may have been pruned up to it
        #[arg(long, value_name = "URL", requires = "database_url")]
        archive: Option<String>,
        #[command(flatten)]
        api: AuditApi,
    },
    /// Exports the rows after the archive's end, up to the latest checkpoint, as one
    /// verifiable segment (rows and the signed checkpoint) to object storage; with --prune,
    /// then deletes the archived rows from the database (an administrator's operation)
    Archive {
        /// The database, as a user that may read the trail (and delete from it, with --prune)
        #[arg(
            long,
            value_name = "URL",
            env = "BLINDLEDGER_ADMIN_DATABASE_URL",
            hide_env_values = true
        )]
        database_url: String,
        /// Where segments go: file:///dir, or s3://bucket/prefix (credentials from AWS_*)
        #[arg(long, value_name = "URL")]
        archive: String,
        /// The audit service's checkpoint public key, as KID=FILE (repeatable)
        #[arg(long = "checkpoint-key", value_name = "KID=FILE", value_parser = kid_file, required = true)]
        checkpoint_keys: Vec<(String, PathBuf)>,
        /// Delete the archived rows from the database once the archive verifies
        #[arg(long)]
        prune: bool,
    },
    /// Writes the audit events of a time range as CSV (no amounts: ciphertext sizes only)
    Export {
        /// First time included: RFC 3339 / `YYYY-MM-DDTHH:MM` (UTC) or Unix ms
        #[arg(long, value_name = "TIME")]
        from: Option<String>,
        /// First time excluded
        #[arg(long, value_name = "TIME")]
        to: Option<String>,
        /// Output file (`-`: standard output)
        #[arg(short = 'o', long = "out", value_name = "FILE")]
        output: PathBuf,
        #[command(flatten)]
        api: AuditApi,
    },
}

/// `admin` verbs: officers' commands, signed locally with the officer's Ed25519 key.
#[derive(Debug, clap::Subcommand)]
pub enum AdminCommand {
    /// Freezes an account: the ledger's policy refuses every movement of money in or out
    Freeze(SignedArgs),
    /// Lifts a freeze
    Unfreeze(SignedArgs),
    /// Serves an earlier revision of a policy bundle again (TARGET: blindledger@REVISION)
    RollbackBundle(SignedArgs),
    /// Revokes a tenant's key (TARGET: TENANT/KEY_ID)
    RevokeKey(SignedArgs),
    /// Generates an officer key pair: OUT (private, owner-only) and OUT.pub (for the audit
    /// service's `officer_keys`)
    NewKey {
        /// Private key file to write
        #[arg(short = 'o', long = "out", value_name = "FILE")]
        output: PathBuf,
    },
}

/// What every signed command takes.
#[derive(Debug, clap::Args)]
pub struct SignedArgs {
    /// What the command acts on: TENANT/ACCOUNT, blindledger@REVISION or TENANT/KEY_ID
    target: String,
    /// The officer's Ed25519 private key (PKCS#8 PEM)
    #[arg(long, value_name = "FILE")]
    officer_key: PathBuf,
    /// The officer's key id, as configured in the audit service [default: the key file's
    /// name without its extension]
    #[arg(long, value_name = "KID")]
    kid: Option<String>,
    /// Why, for the audit trail
    #[arg(long, default_value = "")]
    reason: String,
    #[command(flatten)]
    api: AuditApi,
}

fn kid_file(value: &str) -> Result<(String, PathBuf), String> {
    match value.split_once('=') {
        Some((kid, file)) if !kid.is_empty() && !file.is_empty() => {
            Ok((kid.to_owned(), PathBuf::from(file)))
        }
        _ => Err(format!("expected KID=FILE, got {value:?}")),
    }
}

/// Runs an `audit` verb.
pub async fn audit(ctx: &Context, command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Verify {
            from_checkpoint,
            database_url: Some(url),
            checkpoint_keys,
            published,
            max_unpublished,
            archive,
            ..
        } => {
            let published = published.map(|dir| (dir, max_unpublished));
            let report = verify_locally(
                &url,
                &checkpoint_keys,
                from_checkpoint,
                published,
                archive.as_deref(),
            )
            .await?;
            print_verify(&report)
        }
        AuditCommand::Archive {
            database_url,
            archive,
            checkpoint_keys,
            prune,
        } => archive_trail(&database_url, &checkpoint_keys, &archive, prune).await,
        AuditCommand::Verify {
            from_checkpoint,
            api,
            ..
        } => {
            let mut query = Vec::new();
            query.extend(from_checkpoint.map(|id| ("from_checkpoint", id.to_string())));
            let response = send(ctx, &api, |http, base| {
                http.get(format!("{base}/api/audit/verify")).query(&query)
            })
            .await?;
            let report: Value = response
                .json()
                .await
                .context("reading the verification report")?;
            print_verify(&report)
        }
        AuditCommand::Export {
            from,
            to,
            output,
            api,
        } => {
            let mut query = Vec::new();
            query.extend(from.map(|t| ("from", t)));
            query.extend(to.map(|t| ("to", t)));
            let response = send(ctx, &api, |http, base| {
                http.get(format!("{base}/export.csv")).query(&query)
            })
            .await?;
            let rows = write_body(response, &output).await?;
            if output != Path::new("-") {
                let value = json!({ "rows": rows, "output": output.display().to_string() });
                crate::output::emit(value, || {
                    eprintln!("{rows} events written to {}", output.display())
                });
            }
            Ok(())
        }
    }
}

/// Runs an `admin` verb.
pub async fn admin(ctx: &Context, command: AdminCommand) -> anyhow::Result<()> {
    let (command, args) = match command {
        AdminCommand::Freeze(args) => (Command::Freeze, args),
        AdminCommand::Unfreeze(args) => (Command::Unfreeze, args),
        AdminCommand::RollbackBundle(args) => (Command::RollbackBundle, args),
        AdminCommand::RevokeKey(args) => (Command::RevokeTenantKey, args),
        AdminCommand::NewKey { output } => return new_key(&output),
    };
    let pem = std::fs::read_to_string(&args.officer_key)
        .with_context(|| format!("reading the officer key {}", args.officer_key.display()))?;
    let kid = match args.kid {
        Some(kid) => kid,
        None => default_kid(&args.officer_key)?,
    };
    let payload = CommandPayload::new(command, &args.target, &args.reason, &kid);
    let signed = sign_command(&payload, &pem)
        .with_context(|| format!("signing with {}", args.officer_key.display()))?;
    let response = send(ctx, &args.api, |http, base| {
        http.post(format!("{base}/api/admin/command")).json(&signed)
    })
    .await?;
    let accepted: Value = response.json().await.context("reading the answer")?;
    let value = json!({
        "command": command.as_str(),
        "target": args.target,
        "audit_seq": accepted["audit_seq"],
        "nonce": payload.nonce,
    });
    crate::output::emit(value, || {
        println!(
            "{} {} accepted (audit event {}, nonce {})",
            command.as_str(),
            args.target,
            accepted["audit_seq"],
            payload.nonce
        )
    });
    Ok(())
}

/// The key id a key file stands for: its name without the extension.
fn default_kid(path: &Path) -> anyhow::Result<String> {
    path.file_stem()
        .and_then(|stem| stem.to_str())
        .filter(|stem| !stem.is_empty())
        .map(str::to_owned)
        .with_context(|| format!("cannot derive a key id from {}: pass --kid", path.display()))
}

fn new_key(output: &Path) -> anyhow::Result<()> {
    super::policy::keygen(output)?;
    let kid = default_kid(output)?;
    crate::output::emit(json!({ "kid": kid }), || {
        println!("key id {kid} (add the public key to the audit service's officer_keys under it)")
    });
    Ok(())
}

/// Sends a request with the officer's token; a non-2xx answer is an error naming the
/// service's reason.
async fn send(
    ctx: &Context,
    api: &AuditApi,
    request: impl FnOnce(&reqwest::Client, &str) -> reqwest::RequestBuilder,
) -> anyhow::Result<reqwest::Response> {
    let token = match &ctx.token {
        Some(token) => Some(token.clone()),
        None => ctx.home()?.token()?,
    };
    let response = super::send_http("audit service", &api.url, token.as_deref(), request).await?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let decision_id = super::decision_id_header(response.headers());
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let reason = body["error"].as_str().unwrap_or("no reason given");
    let message = match body["rejection"].as_str() {
        Some(rejection) => format!("{rejection}: {reason}"),
        None => reason.to_string(),
    };
    Err(crate::exit::HttpRefusal {
        service: "audit service",
        status: status.as_u16(),
        message,
        decision_id,
    }
    .into())
}

/// Streams a response body to `output` (`-`: stdout); returns the lines after the header.
/// Plain blocking writes: the CLI does nothing else meanwhile.
async fn write_body(response: reqwest::Response, output: &Path) -> anyhow::Result<u64> {
    use std::io::Write;
    let mut sink: Box<dyn Write> = if output == Path::new("-") {
        Box::new(std::io::stdout().lock())
    } else {
        let file = std::fs::File::create(output)
            .with_context(|| format!("creating {}", output.display()))?;
        Box::new(std::io::BufWriter::new(file))
    };
    let mut lines = 0u64;
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.context("reading the export")?;
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        sink.write_all(&chunk)
            .with_context(|| format!("writing {}", output.display()))?;
    }
    sink.flush()
        .with_context(|| format!("writing {}", output.display()))?;
    Ok(lines.saturating_sub(1))
}

async fn verify_locally(
    url: &str,
    keys: &[(String, PathBuf)],
    from_checkpoint: Option<i64>,
    published: Option<(PathBuf, std::time::Duration)>,
    archive: Option<&str>,
) -> anyhow::Result<Value> {
    let keys = checkpoint_keys(keys)?;
    let archived_through = match archive {
        Some(url) => {
            let report = open_archive(url)?
                .verify(&keys)
                .await
                .context("verifying the archive")?;
            if !crate::output::json() {
                eprintln!(
                    "archive: {} segments, rows 1 to {} verified",
                    report.segments, report.rows
                );
            }
            report.through
        }
        None => None,
    };
    let log = AuditLog::connect(url, 2, false)
        .await
        .with_context(|| format!("connecting to {}", blindledger_telemetry::redact_url(url)))?;
    let (external_checkpoints, max_unpublished_ms) = match published {
        Some((dir, max_age)) => {
            anyhow::ensure!(
                dir.is_dir(),
                "no published checkpoints at {}",
                dir.display()
            );
            let published = PublishedCheckpoints::local(&dir)
                .with_context(|| format!("opening {}", dir.display()))?;
            let checkpoints = published
                .list()
                .await
                .with_context(|| format!("reading the checkpoints in {}", dir.display()))?;
            let max_ms = i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
            (checkpoints, Some(max_ms))
        }
        None => (Vec::new(), None),
    };
    let options = VerifyOptions {
        from_checkpoint,
        external_checkpoints,
        max_unpublished_ms,
        archived_through,
    };
    let report = log.verify(&keys, &options).await.context("verifying")?;
    log.close().await;
    Ok(serde_json::to_value(report)?)
}

/// Reads `KID=FILE` checkpoint public keys.
fn checkpoint_keys(keys: &[(String, PathBuf)]) -> anyhow::Result<CheckpointKeys> {
    let pems: BTreeMap<String, String> = keys
        .iter()
        .map(|(kid, path)| {
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("reading checkpoint key {kid} from {}", path.display()))?;
            Ok((kid.clone(), pem))
        })
        .collect::<anyhow::Result<_>>()?;
    CheckpointKeys::from_pems(&pems).context("loading the checkpoint keys")
}

fn open_archive(url: &str) -> anyhow::Result<Archive> {
    let store = blindledger_store::open_object_store(url).context("opening the archive")?;
    Ok(Archive::new(store))
}

/// `audit archive`: one more segment, up to the latest checkpoint; then, with `prune`, the
/// archived rows leave the database.
async fn archive_trail(
    url: &str,
    keys: &[(String, PathBuf)],
    archive_url: &str,
    prune: bool,
) -> anyhow::Result<()> {
    let keys = checkpoint_keys(keys)?;
    let archive = open_archive(archive_url)?;
    let log = AuditLog::connect(url, 2, false)
        .await
        .with_context(|| format!("connecting to {}", blindledger_telemetry::redact_url(url)))?;
    let result = async {
        let latest = log
            .latest_checkpoint()
            .await?
            .context("no checkpoint yet: the audit service signs them (checkpoint_key)")?;
        let segment = archive
            .append(&log, &latest, &keys)
            .await
            .context("archiving")?;
        let pruned = if prune {
            Some(
                log.prune_archived(&archive, &keys)
                    .await
                    .context("pruning")?,
            )
        } else {
            None
        };
        anyhow::Ok((segment, pruned))
    }
    .await;
    log.close().await;
    let (segment, pruned) = result?;
    let value = json!({ "segment": segment, "rows_pruned": pruned });
    crate::output::emit(value, || {
        match &segment {
            Some(s) => println!(
                "archived rows {} to {} as {} ({} bytes)",
                s.first_seq, s.last_seq, s.object, s.bytes
            ),
            None => println!("the archive already reaches the latest checkpoint"),
        }
        if let Some(rows) = pruned {
            println!("{rows} archived rows deleted from the database");
        }
    });
    Ok(())
}

/// What the CLI reads of a verification report (the library's `VerifyReport`, as JSON).
#[derive(Debug, Deserialize)]
struct Verification {
    ok: bool,
    rows_checked: i64,
    head_size: i64,
    checkpoints_checked: usize,
    problems: Vec<Problem>,
    elapsed_ms: u64,
}

/// One finding: where, and what in words.
#[derive(Debug, Deserialize)]
struct Problem {
    position: i64,
    message: String,
}

/// Prints a verification report (the report itself under `--output json`); an error when
/// anything is wrong.
fn print_verify(value: &Value) -> anyhow::Result<()> {
    let report: Verification =
        serde_json::from_value(value.clone()).context("reading the verification report")?;
    crate::output::emit(value.clone(), || {
        for finding in &report.problems {
            println!("row {}: {}", finding.position, finding.message);
        }
        let rate = if report.elapsed_ms > 0 {
            report.rows_checked as f64 * 1000.0 / report.elapsed_ms as f64
        } else {
            f64::INFINITY
        };
        println!(
            "{} rows checked of {}, {} checkpoints, {} ms ({rate:.0} rows/s)",
            report.rows_checked, report.head_size, report.checkpoints_checked, report.elapsed_ms
        );
        if report.ok && report.problems.is_empty() {
            println!("audit trail intact");
        }
    });
    match report.problems.first() {
        None if report.ok => Ok(()),
        Some(first) => anyhow::bail!(
            "audit trail NOT intact: row {}: {}",
            first.position,
            first.message
        ),
        None => anyhow::bail!("audit trail NOT intact"),
    }
}
