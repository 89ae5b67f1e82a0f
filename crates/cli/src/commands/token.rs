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
        /// Service the token is for (repeatable): ledger, audit, controller, all, or a
        /// literal `aud`; a service refuses a token that does not name its audience
        #[arg(long = "audience", value_name = "SERVICE", default_value = "ledger")]
        audiences: Vec<String>,
    },
}

/// The `aud` values `--audience` names.
fn audiences(names: &[String]) -> Vec<&str> {
    use blindledger_gate::audiences::{ALL, AUDIT, CONTROLLER, LEDGER};
    let mut out: Vec<&str> = Vec::new();
    for name in names {
        let named: &[&str] = match name.as_str() {
            "ledger" => &[LEDGER],
            "audit" => &[AUDIT],
            "controller" => &[CONTROLLER],
            "all" => &ALL,
            other => &[other],
        };
        for aud in named {
            if !out.contains(aud) {
                out.push(aud);
            }
        }
    }
    out
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
        audiences: names,
    } = command;
    let pem = std::fs::read_to_string(&key).with_context(|| {
        format!(
            "reading {} (run `blindledger dev` once, or pass --key)",
            key.display()
        )
    })?;
    let defaults = LedgerConfig::default();
    let issuer = TokenIssuer::new(&pem, &kid, &defaults.token_issuer, &defaults.token_audience)?
        .for_audiences(&audiences(&names));
    let token = issuer.issue(&sub, &roles, &tenants, ttl)?;
    crate::output::emit(serde_json::json!({ "token": token }), || {
        println!("{token}")
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::audiences;

    #[test]
    fn audiences_name_services_or_literals() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(audiences(&names(&["ledger"])), ["blindledger-ledger"]);
        assert_eq!(
            audiences(&names(&["audit", "all", "custom"])),
            [
                "blindledger-audit",
                "blindledger-ledger",
                "blindledger-controller",
                "custom"
            ]
        );
    }
}
