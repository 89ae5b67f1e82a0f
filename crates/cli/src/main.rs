//! `blindledger`: the BlindLedger command line. Encrypts amounts locally, lets the
//! ledger compute on ciphertexts, and decrypts results with keys that never leave this
//! machine. `blindledger dev` also runs a ledger in-process for local development.

mod account_ref;
mod amount;
mod commands;
mod decrypt;
mod exit;
mod home;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{CommandFactory, Parser, Subcommand};

use commands::account::AccountCommand;
use commands::aggregate::AggregateArgs;
use commands::audit::{AdminCommand, AuditCommand};
use commands::balance::BalanceArgs;
use commands::controller::ControllerArgs;
use commands::db::DbCommand;
use commands::dev::DevArgs;
use commands::jobs::JobCommand;
use commands::keys::KeysCommand;
use commands::money::{MoneyArgs, Movement, TransferArgs};
use commands::policy::PolicyCommand;
use commands::risk::RiskCommand;
use commands::token::TokenCommand;
use commands::transfers::TransfersArgs;
use commands::{Context, TlsFiles};

/// Confidential ledger on encrypted amounts (TFHE).
#[derive(Debug, Parser)]
#[command(name = "blindledger", version, after_long_help = exit::EXIT_CODES_HELP)]
struct Cli {
    /// How results are printed: text for people, json for scripts (one JSON document per
    /// result on stdout, JSON lines for streams; errors as a JSON object on stderr). Verbs
    /// that write a file name it with -o/--out.
    #[arg(
        long = "output",
        id = "format",
        global = true,
        env = "BLINDLEDGER_OUTPUT",
        value_enum,
        default_value_t = output::Format::Text
    )]
    output: output::Format,
    /// The ledger's gRPC endpoint.
    #[arg(
        long,
        global = true,
        env = "BLINDLEDGER_ENDPOINT",
        default_value = "http://127.0.0.1:50051"
    )]
    endpoint: String,
    /// Directory holding tenant keys [default: <user data dir>/blindledger].
    #[arg(long, global = true, env = "BLINDLEDGER_HOME", value_name = "DIR")]
    home: Option<PathBuf>,
    /// Access token (JWT) sent to the ledger [default: the token file in the home directory,
    /// which `blindledger dev` writes].
    #[arg(
        long,
        global = true,
        env = "BLINDLEDGER_TOKEN",
        value_name = "JWT",
        hide_env_values = true
    )]
    token: Option<String>,
    /// Allows plaintext http to a ledger on another host (plaintext is otherwise only
    /// accepted on loopback): for a TLS-terminating proxy beside the ledger.
    #[arg(long, global = true, env = "BLINDLEDGER_ALLOW_PLAINTEXT")]
    allow_plaintext: bool,
    /// CA certificate (PEM) the services' TLS certificates chain to: connect to the
    /// ledger over TLS (the endpoint then starts with https://), and trust only this CA
    /// for the controller's and the audit service's https:// URLs.
    #[arg(long, global = true, env = "BLINDLEDGER_TLS_CA", value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for services that require one (mTLS); with --tls-key.
    #[arg(
        long,
        global = true,
        env = "BLINDLEDGER_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(
        long,
        global = true,
        env = "BLINDLEDGER_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// The verbs.
#[derive(Debug, Subcommand)]
enum Command {
    /// Runs a ledger in-process on SQLite until Ctrl-C or SIGTERM.
    Dev(DevArgs),
    /// Runs the controller: risk scores, the risk bundle, the bundle server, alerts.
    Controller(ControllerArgs),
    /// Manages tenant keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manages accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Deposits an amount into an account.
    Deposit(MoneyArgs),
    /// Withdraws an amount from an account, if covered.
    Withdraw(MoneyArgs),
    /// Moves an amount between two accounts of a tenant, if covered and within limits.
    Transfer(TransferArgs),
    /// Prints an account's balance, decrypted locally.
    Balance(BalanceArgs),
    /// Inspects jobs.
    #[command(subcommand)]
    Job(JobCommand),
    /// Sums an account's transfers over a period and counts those above a threshold.
    Aggregate(AggregateArgs),
    /// Lists an account's transfers (metadata only).
    Transfers(TransfersArgs),
    /// Tests, builds, signs and inspects policy bundles.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Issues access tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Evaluates the risk engine's anomaly detector.
    #[command(subcommand)]
    Risk(RiskCommand),
    /// Verifies and exports the audit trail (the audit service's API).
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Officers' signed commands: freeze, unfreeze, roll back a bundle, revoke a key.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Migrates the database; prints each service's least-privilege MariaDB grants.
    #[command(subcommand)]
    Db(DbCommand),
    /// Prints a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Writes the manual pages (roff), one per command, into a directory.
    Man {
        /// Directory to write `blindledger.1`, `blindledger-deposit.1`... into.
        #[arg(long, value_name = "DIR", default_value = ".")]
        dir: PathBuf,
    },
}

impl Command {
    /// The verb's name, for its span.
    fn verb(&self) -> &'static str {
        match self {
            Command::Dev(_) => "dev",
            Command::Controller(_) => "controller",
            Command::Keys(_) => "keys",
            Command::Account(_) => "account",
            Command::Deposit(_) => "deposit",
            Command::Withdraw(_) => "withdraw",
            Command::Transfer(_) => "transfer",
            Command::Balance(_) => "balance",
            Command::Job(_) => "job",
            Command::Aggregate(_) => "aggregate",
            Command::Transfers(_) => "transfers",
            Command::Policy(_) => "policy",
            Command::Token(_) => "token",
            Command::Risk(_) => "risk",
            Command::Audit(_) => "audit",
            Command::Admin(_) => "admin",
            Command::Db(_) => "db",
            Command::Completions { .. } => "completions",
            Command::Man { .. } => "man",
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The long-running verbs install their own logging; every other verb exports its span
    // (and the ledger calls under it) when OTEL_EXPORTER_OTLP_ENDPOINT is set.
    if !matches!(cli.command, Command::Dev(_) | Command::Controller(_)) {
        blindledger_telemetry::init_trace_export("blindledger-cli");
    }
    let span = tracing::info_span!("cli.command", verb = cli.command.verb());
    output::set_format(cli.output);
    let result = tracing::Instrument::instrument(run(cli), span).await;
    blindledger_telemetry::shutdown_tracing();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => exit::report(&err, &report(&err)),
    }
}

/// Joins an error's cause chain on one line. Transport errors repeat some causes (tonic
/// wraps hyper's error in one with the same message), so consecutive repeats are dropped.
fn report(err: &anyhow::Error) -> String {
    let mut messages: Vec<String> = Vec::new();
    for cause in err.chain() {
        let message = cause.to_string();
        if messages.last() != Some(&message) {
            messages.push(message);
        }
    }
    messages.join(": ")
}

/// Dispatches a parsed command line.
async fn run(cli: Cli) -> anyhow::Result<()> {
    let ctx = Context {
        endpoint: cli.endpoint,
        home: cli.home,
        token: cli.token,
        allow_plaintext: cli.allow_plaintext,
        tls: TlsFiles {
            ca: cli.tls_ca,
            cert: cli.tls_cert,
            key: cli.tls_key,
        },
    };
    commands::set_http_tls(ctx.tls.clone());
    match cli.command {
        Command::Dev(args) => commands::dev::run(&ctx, args).await,
        Command::Controller(args) => commands::controller::run(args).await,
        Command::Keys(command) => commands::keys::run(&ctx, command).await,
        Command::Account(command) => commands::account::run(&ctx, command).await,
        Command::Deposit(args) => commands::money::movement(&ctx, Movement::Deposit, args).await,
        Command::Withdraw(args) => commands::money::movement(&ctx, Movement::Withdraw, args).await,
        Command::Transfer(args) => commands::money::transfer(&ctx, args).await,
        Command::Balance(args) => commands::balance::run(&ctx, args).await,
        Command::Job(command) => commands::jobs::run(&ctx, command).await,
        Command::Aggregate(args) => commands::aggregate::run(&ctx, args).await,
        Command::Transfers(args) => commands::transfers::run(&ctx, args).await,
        Command::Policy(
            command @ (PolicyCommand::Status
            | PolicyCommand::Push { .. }
            | PolicyCommand::History { .. }
            | PolicyCommand::Rollback { .. }),
        ) => commands::policy::remote(&ctx, command).await,
        Command::Policy(command) => commands::policy::run(command),
        Command::Token(command) => commands::token::run(command),
        Command::Risk(command @ RiskCommand::Scores { .. }) => {
            commands::risk::scores(&ctx, command).await
        }
        Command::Risk(command) => commands::risk::run(command),
        Command::Audit(command) => commands::audit::audit(&ctx, command).await,
        Command::Admin(command) => commands::audit::admin(&ctx, command).await,
        Command::Db(command) => commands::db::run(command).await,
        Command::Completions { shell } => {
            // Into memory first: clap_complete panics when its writer fails (a closed pipe).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "blindledger", &mut script);
            use std::io::Write as _;
            let mut stdout = std::io::stdout().lock();
            match stdout.write_all(&script).and_then(|()| stdout.flush()) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                written => written.context("writing the completion script"),
            }
        }
        Command::Man { dir } => write_man_pages(&dir),
    }
}

/// Writes one roff page per command and subcommand (`blindledger-policy-sign.1`...).
fn write_man_pages(dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let command = Cli::command();
    clap_mangen::generate_to(command, dir)
        .with_context(|| format!("writing manual pages to {}", dir.display()))?;
    let pages = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "1"))
        .count();
    output::emit(
        serde_json::json!({ "dir": dir.display().to_string(), "pages": pages }),
        || println!("{pages} manual pages in {}", dir.display()),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_drop_repeated_causes() {
        let err = anyhow::anyhow!("refused")
            .context("tcp connect")
            .context("tcp connect")
            .context("connecting");
        assert_eq!(report(&err), "connecting: tcp connect: refused");
    }

    #[test]
    fn command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_documented_verbs() {
        let ok = [
            "blindledger dev --data-dir ./data --listen 127.0.0.1:50051",
            "blindledger keys new --tenant acme --region local --width 32 --force",
            "blindledger account open acme/alice --max-amount 500.00 --window-limit 1000.00 --window 24h",
            "blindledger deposit acme/alice 100.00 --wait --idempotency-key k1",
            "blindledger withdraw acme/alice 10.00",
            "blindledger transfer acme/alice acme/bob 25.50 --wait",
            "blindledger balance acme/alice",
            "blindledger job get 0190",
            "blindledger job watch 0190",
            "blindledger aggregate acme/alice --from 2026-11-01T00:00:00Z --to 2026-12-01T00:00:00Z --threshold 10.00 --wait",
            "blindledger transfers acme/alice --limit 50",
            "blindledger policy test policies/",
            "blindledger policy build policies/ -o bundle.tar.gz --revision abc123",
            "blindledger policy sign bundle.tar.gz --key ci-signing.pem --kid ci",
            "blindledger policy sign bundle.tar.gz --key ci-rsa.pem --kid ci --alg PS256",
            "blindledger policy inspect bundle.tar.gz",
            "blindledger token issue --sub alice --role teller --tenant acme",
            "blindledger audit verify",
            "blindledger audit verify --from 3",
            "blindledger audit verify --database-url sqlite://data/ledger.db --checkpoint-key audit-1=audit.pub",
            "blindledger audit export --from 2026-11-01T00:00 --to 2026-12-01T00:00 -o report.csv",
            "blindledger admin freeze acme/alice --officer-key officer.pem --reason review",
            "blindledger admin unfreeze acme/alice --officer-key officer.pem --kid officer",
            "blindledger admin rollback-bundle blindledger@abc123 --officer-key officer.pem",
            "blindledger admin new-key -o officer.pem",
            "blindledger db migrate --database-url mysql://root@db:3306/blindledger",
            "blindledger db grants",
            "blindledger db grants --service ledger --database blindledger --user 'ledger'@'%'",
            "blindledger db grants --service audit --user audit@10.0.0.%",
        ];
        for line in ok {
            let parsed = Cli::try_parse_from(line.split_whitespace());
            assert!(parsed.is_ok(), "{line}: {:?}", parsed.err());
        }
    }

    #[test]
    fn rejects_bad_user_input_without_panicking() {
        let bad = [
            "blindledger deposit alice 100.00",
            "blindledger deposit acme/alice -5",
            "blindledger deposit acme/alice 1.234",
            "blindledger keys new --tenant ../etc",
            "blindledger keys new --tenant acme --width 16",
            "blindledger account open acme/alice --window 24h",
            "blindledger transfers acme/alice --limit 0",
            "blindledger aggregate acme/alice --from yesterday",
            "blindledger admin freeze acme/alice",
            "blindledger audit verify --database-url sqlite://x",
            "blindledger audit verify --database-url sqlite://x --checkpoint-key nokid",
            "blindledger audit export --from 2026-11-01",
            "blindledger db grants --service bank",
            "blindledger policy sign b.tar.gz --key k.pem --kid ci --alg none",
            "blindledger db grants --user ledger",
            "blindledger db grants --service ledger --user 'ledger'@'%';DROP",
        ];
        for line in bad {
            assert!(
                Cli::try_parse_from(line.split_whitespace()).is_err(),
                "{line}"
            );
        }
        assert!(Cli::try_parse_from(["blindledger", "deposit", "acme/alice", ""]).is_err());
    }
}
