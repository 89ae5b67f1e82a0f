//! `blindledger keys new | show | pin`: generates a tenant's keys locally and registers
//! them; shows the public-key fingerprint others pin; pins another tenant's fingerprint.
//!
//! New keys are written to a staging directory and only replace `<home>/keys/<tenant>`
//! once the ledger accepted them, so a failed upload never costs the client key that
//! decrypts existing balances.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use blindledger_fhe::LedgerWidth;
use blindledger_keyholder::TenantKeys;
use indicatif::{ProgressBar, ProgressStyle};

use super::Context;
use crate::account_ref::validate_tenant;
use crate::home::{read_record, write_record, KeyRecord};
use blindledger_client::KeyPin;
use serde_json::json;

use crate::output;

/// `blindledger keys ...` verbs.
#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Generates a tenant's keys, saves them locally and registers them with the ledger.
    New(NewArgs),
    /// Shows the key id and public-key fingerprint of the keys this home holds for a
    /// tenant: give the fingerprint to whoever encrypts amounts to the tenant.
    Show(ShowArgs),
    /// Pins the public-key fingerprint of a tenant whose keys this home does not hold:
    /// deposits and transfers to it are then encrypted only to a key with this fingerprint.
    Pin(PinArgs),
}

/// Arguments of `blindledger keys show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// Tenant name.
    #[arg(value_parser = parse_tenant)]
    tenant: String,
}

/// Arguments of `blindledger keys pin`.
#[derive(Debug, clap::Args)]
pub struct PinArgs {
    /// Tenant name.
    #[arg(value_parser = parse_tenant)]
    tenant: String,
    /// The tenant's public-key fingerprint (64 hex digits), from `blindledger keys show`.
    #[arg(value_parser = parse_fingerprint)]
    fingerprint: String,
}

/// Arguments of `blindledger keys new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// Tenant name: lowercase letters, digits, '-' and '_'.
    #[arg(long, value_parser = parse_tenant)]
    tenant: String,
    /// Data-residency region of the tenant.
    #[arg(long, default_value = "local")]
    region: String,
    /// Width of amounts and balances in bits: 64, or 32 (faster, amounts below 42,949,672.96).
    #[arg(long, default_value = "64", value_parser = parse_width)]
    width: LedgerWidth,
    /// Replaces existing local keys (the old ones are kept in a `.replaced-*` directory).
    #[arg(long)]
    force: bool,
}

/// Runs `blindledger keys ...`.
pub async fn run(ctx: &Context, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::New(args) => new(ctx, args).await,
        KeysCommand::Show(args) => show(ctx, &args.tenant),
        KeysCommand::Pin(args) => {
            ctx.home()?.pin(&args.tenant, &args.fingerprint)?;
            output::emit(
                json!({ "tenant": args.tenant, "pinned_fingerprint": args.fingerprint }),
                || {
                    println!(
                        "pinned tenant {} to public key {}",
                        args.tenant, args.fingerprint
                    )
                },
            );
            Ok(())
        }
    }
}

fn show(ctx: &Context, tenant: &str) -> anyhow::Result<()> {
    let home = ctx.home()?;
    let dir = home.keys_dir(tenant);
    match home.key_pin(tenant)? {
        KeyPin::PublicKey(bytes) => {
            let key_id = read_record(&dir)?.map(|record| record.key_id);
            let fingerprint = blindledger_fhe::wire::public_key_fingerprint(&bytes);
            let value = json!({
                "tenant": tenant,
                "keys_dir": dir.display().to_string(),
                "key_id": key_id,
                "fingerprint": fingerprint,
            });
            output::emit(value, || {
                println!("tenant {tenant}: keys in {}", dir.display());
                if let Some(key_id) = &key_id {
                    println!("key id:                 {key_id}");
                }
                println!("public key fingerprint: {fingerprint}");
            });
        }
        KeyPin::Fingerprint(fingerprint) => {
            let value = json!({ "tenant": tenant, "keys_dir": null, "fingerprint": fingerprint });
            output::emit(value, || {
                println!(
                    "tenant {tenant}: no keys here, pinned public key fingerprint: {fingerprint}"
                )
            });
        }
    }
    Ok(())
}

fn parse_fingerprint(value: &str) -> Result<String, String> {
    let value = value.trim().to_ascii_lowercase();
    if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(value)
    } else {
        Err("a fingerprint is 64 hex digits (SHA-256), as `blindledger keys show` prints".into())
    }
}

async fn new(ctx: &Context, args: NewArgs) -> anyhow::Result<()> {
    let dir = ctx.home()?.keys_dir(&args.tenant);
    if TenantKeys::exists(&dir) && !args.force {
        anyhow::bail!(
            "keys for tenant '{}' already exist in {}; pass --force to replace them",
            args.tenant,
            dir.display()
        );
    }
    // Connect first: no point spending seconds of CPU if the ledger is unreachable.
    let client = ctx.connect().await?;
    let staging = sibling(&dir, "pending");
    let (keys, server_key) = generate(staging.clone()).await?;
    let bar = upload_bar(server_key.len() as u64);
    let public_key = blindledger_fhe::wire::encode_public_key(&keys.public_key);
    let fingerprint = blindledger_fhe::wire::public_key_fingerprint(&public_key);
    let key_id = client
        .register_key_bytes(
            &args.tenant,
            &args.region,
            args.width,
            public_key,
            &server_key,
            |sent, total| {
                bar.set_length(total);
                bar.set_position(sent);
            },
        )
        .await;
    bar.finish_and_clear();
    let key_id = key_id.with_context(|| {
        format!(
            "registering the keys (the unregistered keys are in {})",
            staging.display()
        )
    })?;
    let record = KeyRecord {
        tenant: args.tenant.clone(),
        region: args.region,
        width: args.width,
        key_id,
    };
    write_record(&staging, &record)?;
    activate(&staging, &dir)?;
    let value = json!({
        "tenant": args.tenant,
        "width": args.width.to_string(),
        "key_id": record.key_id,
        "fingerprint": fingerprint,
        "keys_dir": dir.display().to_string(),
    });
    output::emit(value, || {
        println!(
            "registered tenant {} ({} ledger, key id {})",
            args.tenant, args.width, record.key_id
        );
        println!(
            "public key fingerprint {fingerprint} (whoever encrypts amounts to this tenant pins it)"
        );
        println!("keys saved in {}", dir.display());
    });
    Ok(())
}

/// Generates keys into `staging` behind a spinner. Returns them with the serialized
/// server key, which is what gets uploaded.
async fn generate(staging: PathBuf) -> anyhow::Result<(TenantKeys, Vec<u8>)> {
    let spinner = if output::json() {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner().with_message("generating keys (this takes a while)")
    };
    spinner.enable_steady_tick(Duration::from_millis(100));
    let result = tokio::task::spawn_blocking(move || {
        let keys = TenantKeys::generate();
        prepare_dir(&staging)?;
        keys.save(&staging)
            .with_context(|| format!("saving keys in {}", staging.display()))?;
        let server_key = blindledger_fhe::wire::encode_compressed_server_key(&keys.server_key);
        anyhow::Ok((keys, server_key))
    })
    .await
    .context("key generation task failed");
    spinner.finish_and_clear();
    result?
}

/// Creates an empty directory readable only by its owner: it will hold a client key.
fn prepare_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("removing stale {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting {}", dir.display()))?;
    }
    Ok(())
}

/// Moves registered keys from `staging` to `dir`, keeping any previous keys aside:
/// balances encrypted under them can only be read with them.
fn activate(staging: &Path, dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let aside = sibling(dir, &format!("replaced-{secs}"));
        std::fs::rename(dir, &aside)
            .with_context(|| format!("moving old keys to {}", aside.display()))?;
        // On stderr: a note beside the result, not the result.
        eprintln!("previous keys moved to {}", aside.display());
    }
    std::fs::rename(staging, dir).with_context(|| format!("moving keys to {}", dir.display()))
}

/// `<dir>.<suffix>`, next to `dir`.
fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{suffix}"));
    dir.with_file_name(name)
}

/// A byte progress bar for the upload.
fn upload_bar(total: u64) -> ProgressBar {
    let style = ProgressStyle::with_template(
        "uploading server key {bar:40.cyan/blue} {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::new(total).with_style(style)
}

/// Parses `--tenant`, checking the name before seconds of key generation.
fn parse_tenant(text: &str) -> Result<String, String> {
    validate_tenant(text)?;
    Ok(text.to_owned())
}

/// Parses `--width`: 32 or 64.
fn parse_width(text: &str) -> Result<LedgerWidth, String> {
    text.parse::<u32>()
        .ok()
        .and_then(LedgerWidth::from_bits)
        .ok_or_else(|| format!("'{text}' is not a ledger width: use 64 or 32"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_widths() {
        assert_eq!(parse_width("64"), Ok(LedgerWidth::U64));
        assert_eq!(parse_width("32"), Ok(LedgerWidth::U32));
        assert!(parse_width("16").is_err());
        assert!(parse_width("u64").is_err());
    }

    #[test]
    fn siblings_sit_next_to_the_directory() {
        let dir = Path::new("/home/x/keys/acme");
        assert_eq!(
            sibling(dir, "pending"),
            Path::new("/home/x/keys/acme.pending")
        );
    }
}
