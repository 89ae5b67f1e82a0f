//! Writes seed inputs for the fuzz targets under `seeds/<target>/`: real ciphertexts and
//! keys, the shipped policies as a signed bundle, tokens and admin commands signed with
//! the fixed test keys of `blindledger_fuzz`.
//!
//! ```text
//! cargo run --release --example seeds [-- --server-key]
//! ```
//!
//! `--server-key` also generates a compressed server key (slow) and keeps its first bytes.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use blindledger_audit::admin::{sign_command, Command, CommandPayload};
use blindledger_fhe::{tfhe_config, wire, LedgerWidth};
use blindledger_fuzz::{
    bundle_signing_key, officer_key_pem, token_issuer, wrong_token_issuer, ADMIN_NOW_MS,
    BUNDLE_KID, BUNDLE_NAME, JWT_KID, OFFICER_KID,
};
use blindledger_policy::{sign_bundle, Bundle};

/// Bytes kept of a compressed server key (its header and first sub-keys).
const SERVER_KEY_PREFIX: usize = 64 * 1024;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let seeds = root.join("seeds");
    let server_key = std::env::args().any(|arg| arg == "--server-key");
    fhe_wire(&seeds.join("fhe_wire"), server_key)?;
    policy_bundle(&seeds.join("policy_bundle"), &root.join("../policies"))?;
    jwt(&seeds.join("jwt"))?;
    admin_command(&seeds.join("admin_command"))?;
    Ok(())
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path: PathBuf = dir.join(name);
    std::fs::write(&path, bytes)?;
    println!("{} ({} bytes)", path.display(), bytes.len());
    Ok(())
}

/// `selector || object`, as the `fhe_wire` target reads it.
fn selected(selector: u8, object: &[u8]) -> Vec<u8> {
    [&[selector][..], object].concat()
}

fn fhe_wire(dir: &Path, with_server_key: bool) -> Result<(), Box<dyn std::error::Error>> {
    let client_key = tfhe::ClientKey::generate(tfhe_config());
    let public_key = tfhe::CompactPublicKey::new(&client_key);
    let amount_u32 = wire::encrypt_amount(&public_key, LedgerWidth::U32, 1_234)?;
    let amount_u64 = wire::encrypt_amount(&public_key, LedgerWidth::U64, 5_000_000_000)?;
    write(dir, "amount-u32", &selected(0, &amount_u32))?;
    write(dir, "amount-u64", &selected(1, &amount_u64))?;
    write(dir, "amount-u64-as-u32", &selected(0, &amount_u64))?;
    write(
        dir,
        "public-key",
        &selected(2, &wire::encode_public_key(&public_key)),
    )?;
    write(dir, "amount-as-public-key", &selected(2, &amount_u32))?;
    if with_server_key {
        let key = tfhe::CompressedServerKey::new(&client_key);
        let bytes = wire::encode_compressed_server_key(&key);
        let prefix = &bytes[..bytes.len().min(SERVER_KEY_PREFIX)];
        write(dir, "server-key-prefix", &selected(3, prefix))?;
    }
    write(
        dir,
        "public-key-as-server-key",
        &selected(3, &wire::encode_public_key(&public_key)),
    )?;
    Ok(())
}

fn policy_bundle(dir: &Path, policies: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let key = bundle_signing_key();
    // The shipped policies, signed as the release pipeline signs them.
    let mut shipped = Bundle::from_dir(BUNDLE_NAME, policies, "fuzz-seed")?;
    sign_bundle(&mut shipped, &key, BUNDLE_KID, None)?;
    write_bundle(dir, "shipped-signed", &shipped)?;
    // With data documents at the root and in a directory, signed.
    let mut with_data = Bundle::new(BUNDLE_NAME);
    with_data.insert_file(
        ".manifest",
        br#"{"revision":"r1","roots":["blindledger"],"rego_version":1}"#.to_vec(),
    )?;
    with_data.insert_file(
        "data.json",
        br#"{"blindledger":{"limits":{"max_amount":5000}}}"#.to_vec(),
    )?;
    with_data.insert_file(
        "blindledger/risk/data.json",
        br#"{"tiers":["low","high"],"threshold":0.7}"#.to_vec(),
    )?;
    with_data.insert_file(
        "blindledger/authz/authz.rego",
        b"package blindledger.authz\n\ndefault decision := {\"allow\": false}\n".to_vec(),
    )?;
    sign_bundle(&mut with_data, &key, BUNDLE_KID, Some("blindledger"))?;
    write_bundle(dir, "data-signed-scoped", &with_data)?;
    // Unsigned.
    let mut unsigned = with_data.clone();
    unsigned.set_signatures(None);
    write_bundle(dir, "data-unsigned", &unsigned)?;
    Ok(())
}

/// The bundle in both forms the `policy_bundle` target reads: `.tar.gz`, and plain tar.
fn write_bundle(dir: &Path, name: &str, bundle: &Bundle) -> Result<(), Box<dyn std::error::Error>> {
    let archive = bundle.to_tar_gz()?;
    write(dir, &format!("{name}.tar.gz"), &selected(0, &archive))?;
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(archive.as_slice()).read_to_end(&mut tar)?;
    write(dir, &format!("{name}.tar"), &selected(1, &tar))?;
    Ok(())
}

fn jwt(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let century = Duration::from_secs(100 * 365 * 24 * 3600);
    let roles = vec!["operator".to_string(), "auditor".to_string()];
    let tenants = vec!["acme".to_string()];
    let valid = token_issuer().issue("alice", &roles, &tenants, century)?;
    write(dir, "valid", valid.as_bytes())?;
    let wrong_key = wrong_token_issuer().issue("mallory", &roles, &tenants, century)?;
    write(dir, "wrong-key", wrong_key.as_bytes())?;
    let (_, claims_and_signature) = valid.split_once('.').ok_or("a JWT has three parts")?;
    for (name, header) in [
        ("alg-none", format!(r#"{{"alg":"none","kid":"{JWT_KID}"}}"#)),
        (
            "alg-hs256",
            format!(r#"{{"typ":"JWT","alg":"HS256","kid":"{JWT_KID}"}}"#),
        ),
        ("no-kid", r#"{"alg":"EdDSA"}"#.to_string()),
        (
            "unknown-kid",
            r#"{"alg":"EdDSA","kid":"other"}"#.to_string(),
        ),
    ] {
        let token = format!("{}.{claims_and_signature}", URL_SAFE_NO_PAD.encode(header));
        write(dir, name, token.as_bytes())?;
    }
    Ok(())
}

fn admin_command(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let key = officer_key_pem();
    for (command, target) in [
        (Command::Freeze, "acme/alice"),
        (Command::Unfreeze, "acme/alice"),
        (Command::RollbackBundle, "blindledger@r7"),
        (Command::RevokeTenantKey, "acme/0123abcd"),
    ] {
        let payload = CommandPayload {
            command,
            target: target.to_string(),
            reason: "fuzz seed".to_string(),
            nonce: format!("nonce-{}", command.as_str()),
            issued_at: ADMIN_NOW_MS,
            kid: OFFICER_KID.to_string(),
        };
        let signed = sign_command(&payload, &key)?;
        let body = serde_json::to_vec(&signed)?;
        write(
            dir,
            &format!("body-{}", command.as_str()),
            &selected(0, &body),
        )?;
        write(
            dir,
            &format!("payload-{}", command.as_str()),
            &selected(1, signed.payload.as_bytes()),
        )?;
    }
    Ok(())
}
