//! `blindledger-audit`: the audit service as its own process, for production.
//!
//! Configuration: `--config FILE` (TOML) and `BLINDLEDGER_AUDIT_*` environment variables.
//! Prints `metrics <addr>` (when configured), then `listening <addr>` on stdout once the
//! ports are bound, for supervisors and tests.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    blindledger_service::main::<blindledger_audit_service::Application>().await
}
