//! `blindledger token`: access tokens for the ledger's gate.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use blindledger_gate::TokenIssuer;
use blindledger_ledger::dev::DEV_KID;
use blindledger_ledger::LedgerConfig;

/// `token` verbs.
#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Issues a signed token (by default with the key `blindledger dev` made) and prints it
    Issue {
        /// Subject: who the token speaks for
        #[arg(long)]
        sub: String,
        /// Role granted (repeatable): admin, treasury, teller, auditor
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
        /// Tenant granted (repeatable)
        #[arg(long = "tenant", value_name = "TENANT")]
        tenants: Vec<String>,
        /// Lifetime
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: Duration,
        /// Ed25519 private key (PKCS#8 PEM) [default: ./data/dev/token.key]
        #[arg(long, value_name = "PEM", default_value = "data/dev/token.key")]
        key: PathBuf,
        /// Key id the ledger knows the public key by
        #[arg(long, default_value = DEV_KID)]
        kid: String,
    },
}

/// Runs a `token` verb.
pub fn run(command: TokenCommand) -> anyhow::Result<()> {
    let TokenCommand::Issue {
        sub,
        roles,
        tenants,
        ttl,
        key,
        kid,
    } = command;
    let pem = std::fs::read_to_string(&key).with_context(|| {
        format!(
            "reading {} (run `blindledger dev` once, or pass --key)",
            key.display()
        )
    })?;
    let defaults = LedgerConfig::default();
    let issuer = TokenIssuer::new(&pem, &kid, &defaults.token_issuer, &defaults.token_audience)?;
    println!("{}", issuer.issue(&sub, &roles, &tenants, ttl)?);
    Ok(())
}
