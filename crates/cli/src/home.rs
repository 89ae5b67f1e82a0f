//! The CLI's home directory: tenant keys under `<home>/keys/<tenant>/`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use blindledger_client::KeyPin;
use blindledger_fhe::LedgerWidth;
use blindledger_keyholder::TenantKeys;
use serde::{Deserialize, Serialize};

/// File, next to the keys, recording which registration they belong to.
const RECORD_FILE: &str = "tenant.toml";
/// The public key's file among a tenant's keys.
const PUBLIC_KEY_FILE: &str = "public.key";
/// Public-key fingerprints pinned for tenants whose keys this home does not hold.
const PINS_FILE: &str = "pins.toml";

/// Where the CLI keeps its files.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

/// What the ledger said when a tenant's keys were registered. Holds no key material.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyRecord {
    /// The tenant.
    pub tenant: String,
    /// The tenant's region.
    pub region: String,
    /// The ledger width.
    pub width: LedgerWidth,
    /// The key id the ledger returned (it names the server key and the public key).
    pub key_id: String,
}

/// A tenant's keys loaded from the home directory.
pub struct LocalKeys {
    /// The keys.
    pub keys: TenantKeys,
    /// The registration record, absent for keys copied in from elsewhere.
    pub record: Option<KeyRecord>,
}

impl Home {
    /// Uses `root` when given, else the platform data directory + `blindledger`.
    pub fn resolve(root: Option<&Path>) -> anyhow::Result<Self> {
        let root = match root {
            Some(root) => root.to_path_buf(),
            None => dirs::data_dir()
                .context("cannot find a data directory for this user; pass --home or set BLINDLEDGER_HOME")?
                .join("blindledger"),
        };
        Ok(Self { root })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The access token file the CLI sends when no `--token` is given.
    pub fn token_path(&self) -> PathBuf {
        self.root.join("token")
    }

    /// Reads the access token saved in the home directory, if any.
    pub fn token(&self) -> anyhow::Result<Option<String>> {
        match std::fs::read_to_string(self.token_path()) {
            Ok(token) => Ok(Some(token.trim().to_owned())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => {
                Err(anyhow::Error::new(err)
                    .context(format!("reading {}", self.token_path().display())))
            }
        }
    }

    /// The directory holding a tenant's keys.
    pub fn keys_dir(&self, tenant: &str) -> PathBuf {
        self.root.join("keys").join(tenant)
    }

    /// Loads a tenant's keys, or `None` when this home holds none for it.
    pub async fn load_keys(&self, tenant: &str) -> anyhow::Result<Option<LocalKeys>> {
        let dir = self.keys_dir(tenant);
        if !TenantKeys::exists(&dir) {
            return Ok(None);
        }
        // Loading checks the server key's parameters: tens of MiB of CPU work.
        let loaded = tokio::task::spawn_blocking(move || {
            let keys = TenantKeys::load(&dir)
                .with_context(|| format!("reading the keys in {}", dir.display()))?;
            anyhow::Ok(LocalKeys {
                keys,
                record: read_record(&dir)?,
            })
        })
        .await
        .context("key loading task failed")??;
        Ok(Some(loaded))
    }

    /// What amounts to `tenant` are encrypted to: the public key this home holds for it, else
    /// the fingerprint pinned with `blindledger keys pin`. Never whatever the ledger says.
    pub fn key_pin(&self, tenant: &str) -> anyhow::Result<KeyPin> {
        let held = self.keys_dir(tenant).join(PUBLIC_KEY_FILE);
        if held.is_file() {
            let bytes =
                std::fs::read(&held).with_context(|| format!("reading {}", held.display()))?;
            return Ok(KeyPin::PublicKey(bytes));
        }
        match self.pins()?.remove(tenant) {
            Some(fingerprint) => Ok(KeyPin::Fingerprint(fingerprint)),
            None => anyhow::bail!(
                "no public key or pinned fingerprint for tenant '{tenant}' in {}: ask the \
                 tenant for its fingerprint (`blindledger keys show {tenant}` on the key \
                 holder's machine), then run `blindledger keys pin {tenant} <fingerprint>`",
                self.root.display()
            ),
        }
    }

    /// The fingerprints pinned in this home, by tenant.
    pub fn pins(&self) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
        let path = self.root.join(PINS_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Default::default()),
            Err(err) => Err(anyhow::Error::new(err).context(format!("reading {}", path.display()))),
        }
    }

    /// Pins `fingerprint` as the public key of `tenant`, replacing an earlier pin.
    pub fn pin(&self, tenant: &str, fingerprint: &str) -> anyhow::Result<()> {
        let mut pins = self.pins()?;
        pins.insert(tenant.to_owned(), fingerprint.to_owned());
        std::fs::create_dir_all(&self.root)
            .with_context(|| format!("creating {}", self.root.display()))?;
        let path = self.root.join(PINS_FILE);
        let text = toml::to_string(&pins).context("encoding the pins")?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    }

    /// Loads a tenant's keys, failing with a message saying where they were expected.
    pub async fn require_keys(&self, tenant: &str) -> anyhow::Result<LocalKeys> {
        match self.load_keys(tenant).await? {
            Some(keys) => Ok(keys),
            None => anyhow::bail!(
                "no keys for tenant '{tenant}' in {}: only the key holder can decrypt",
                self.keys_dir(tenant).display()
            ),
        }
    }
}

/// Reads the registration record in `dir`, if any.
pub fn read_record(dir: &Path) -> anyhow::Result<Option<KeyRecord>> {
    let path = dir.join(RECORD_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let record = toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok(Some(record))
}

/// Writes the registration record into `dir`.
pub fn write_record(dir: &Path, record: &KeyRecord) -> anyhow::Result<()> {
    let path = dir.join(RECORD_FILE);
    let text = toml::to_string(record).context("encoding the key record")?;
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

impl LocalKeys {
    /// Fails when these keys are not the ones the ledger holds for the tenant: decrypting
    /// with another generation's key would print garbage instead of amounts.
    pub fn check_matches(&self, tenant: &str, ledger_key_id: &str) -> anyhow::Result<()> {
        match &self.record {
            Some(record) if record.key_id != ledger_key_id => anyhow::bail!(
                "the local keys of tenant '{tenant}' (key id {}) are not the ones the ledger holds (key id {ledger_key_id})",
                record.key_id
            ),
            _ => Ok(()),
        }
    }
}
