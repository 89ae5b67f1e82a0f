//! One TFHE key set per `target/` directory, generated once and cached on disk.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use anyhow::Context as _;
use blindledger_keyholder::TenantKeys;

/// Bumped whenever the key parameters (and so the cached files) change.
const KEYS_VERSION: &str = "v1";

/// The keys of this process, once loaded or generated.
static KEYS: OnceLock<TenantKeys> = OnceLock::new();
/// Held while loading or generating, so one process generates at most once.
static INIT: Mutex<()> = Mutex::new(());

/// Test keys: one [`TenantKeys`] set shared by every test of a `target/` directory.
///
/// Generating keys takes seconds and the keys are big, so the first test to ask generates them
/// and saves them in `<target>/test-keys/v1/` (written to a temporary directory and renamed
/// into place, so test binaries running in parallel never read half-written keys); every later
/// test, in this process or another, loads them. Within a process they are loaded once.
///
/// Never use these keys outside tests: the client key lies unprotected in `target/`.
#[derive(Debug, Clone, Copy)]
pub struct TestKeys;

impl TestKeys {
    /// Returns a copy of the test key set, loading it from `<target>/test-keys/v1/` or, the
    /// first time, generating and saving it there.
    pub fn load_or_generate() -> anyhow::Result<TenantKeys> {
        let keys = Self::shared()?;
        Ok(TenantKeys {
            client_key: keys.client_key.clone(),
            public_key: keys.public_key.clone(),
            server_key: keys.server_key.clone(),
        })
    }

    /// Like [`TestKeys::load_or_generate`], but borrows the process-wide copy instead of
    /// cloning it.
    pub fn shared() -> anyhow::Result<&'static TenantKeys> {
        if let Some(keys) = KEYS.get() {
            return Ok(keys);
        }
        // A panic while holding the lock leaves nothing half-done behind it: carry on.
        let _guard = INIT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(keys) = KEYS.get() {
            return Ok(keys);
        }
        let keys = load_or_generate_in(&Self::dir()?)?;
        Ok(KEYS.get_or_init(|| keys))
    }

    /// The directory holding the cached keys: `<target>/test-keys/v1/`, where `<target>` is
    /// `CARGO_TARGET_DIR` if set, else the workspace's `target/`.
    pub fn dir() -> anyhow::Result<PathBuf> {
        Ok(target_dir()?.join("test-keys").join(KEYS_VERSION))
    }
}

/// Loads the keys in `dir`, or generates them and moves them there atomically.
fn load_or_generate_in(dir: &Path) -> anyhow::Result<TenantKeys> {
    if TenantKeys::exists(dir) {
        return TenantKeys::load(dir).with_context(|| {
            format!(
                "loading test keys from {} (delete it to regenerate)",
                dir.display()
            )
        });
    }
    let parent = dir.parent().context("the key directory has a parent")?;
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    publish(TenantKeys::generate(), dir)
}

/// Saves `keys` into a temporary directory next to `dir` and renames it to `dir`; if another
/// process did so first, returns the keys it wrote instead.
fn publish(keys: TenantKeys, dir: &Path) -> anyhow::Result<TenantKeys> {
    let parent = dir.parent().context("the key directory has a parent")?;
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{KEYS_VERSION}.tmp-"))
        .tempdir_in(parent)
        .with_context(|| format!("creating a temporary directory in {}", parent.display()))?;
    keys.save(staging.path())
        .with_context(|| format!("saving test keys into {}", staging.path().display()))?;

    // Renaming a directory onto an empty one replaces it; onto a full one fails. Failing
    // because another process got there first is fine: its keys are as good as ours, and
    // every user of the directory must see the same keys. Dropping `staging` deletes what is
    // left of it (nothing, after a successful rename).
    match std::fs::rename(staging.path(), dir) {
        Ok(()) => Ok(keys),
        Err(rename_error) if TenantKeys::exists(dir) => TenantKeys::load(dir).with_context(|| {
            format!(
                "loading test keys from {} after losing the race to write them ({rename_error})",
                dir.display()
            )
        }),
        Err(rename_error) => Err(anyhow::Error::from(rename_error).context(format!(
            "moving test keys from {} to {} (delete the latter if it is incomplete)",
            staging.path().display(),
            dir.display()
        ))),
    }
}

/// `CARGO_TARGET_DIR` (relative to the workspace root if relative), else `<workspace>/target`.
fn target_dir() -> anyhow::Result<PathBuf> {
    let workspace = workspace_root()?;
    match std::env::var_os("CARGO_TARGET_DIR").filter(|dir| !dir.is_empty()) {
        Some(dir) => Ok(workspace.join(dir)),
        None => Ok(workspace.join("target")),
    }
}

/// The nearest ancestor of this crate whose `Cargo.toml` declares a `[workspace]`.
fn workspace_root() -> anyhow::Result<PathBuf> {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in manifest_dir.ancestors() {
        let manifest = dir.join("Cargo.toml");
        if let Ok(text) = std::fs::read_to_string(&manifest) {
            if text.lines().any(|line| line.trim() == "[workspace]") {
                return Ok(dir.to_owned());
            }
        }
    }
    anyhow::bail!("no workspace Cargo.toml above {}", manifest_dir.display())
}

#[cfg(test)]
mod tests {
    use super::*;
    use blindledger_fhe::wire::encrypt_amount;
    use blindledger_fhe::LedgerWidth;
    use std::time::Instant;

    #[test]
    fn target_dir_is_the_workspace_target() -> anyhow::Result<()> {
        let root = workspace_root()?;
        assert!(
            root.join("crates/test-support/Cargo.toml").is_file(),
            "{}",
            root.display()
        );
        let dir = TestKeys::dir()?;
        assert!(dir.ends_with("test-keys/v1"), "{}", dir.display());
        Ok(())
    }

    fn clone_keys(keys: &TenantKeys) -> TenantKeys {
        TenantKeys {
            client_key: keys.client_key.clone(),
            public_key: keys.public_key.clone(),
            server_key: keys.server_key.clone(),
        }
    }

    #[test]
    fn complete_keys_are_loaded_not_regenerated() -> anyhow::Result<()> {
        let keys = TestKeys::shared()?;
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join("test-keys").join(KEYS_VERSION);
        keys.save(&dir)?;
        let started = Instant::now();
        let loaded = load_or_generate_in(&dir)?;
        eprintln!("loading cached keys from disk took {:?}", started.elapsed());
        assert!(!encrypt_amount(&loaded.public_key, LedgerWidth::U64, 7)?.is_empty());
        Ok(())
    }

    #[test]
    fn publishing_onto_existing_keys_keeps_the_winners() -> anyhow::Result<()> {
        let keys = TestKeys::shared()?;
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join(KEYS_VERSION);
        keys.save(&dir)?;
        std::fs::write(dir.join("winner"), b"")?;

        let published = publish(clone_keys(keys), &dir)?;
        assert!(
            dir.join("winner").is_file(),
            "the winner's directory was replaced"
        );
        assert!(!encrypt_amount(&published.public_key, LedgerWidth::U64, 7)?.is_empty());
        let leftovers: Vec<_> = std::fs::read_dir(tmp.path())?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        assert_eq!(leftovers, [std::ffi::OsString::from(KEYS_VERSION)]);

        // Onto an empty directory (or none), the rename wins.
        let fresh = tmp.path().join("fresh");
        std::fs::create_dir(&fresh)?;
        publish(clone_keys(keys), &fresh)?;
        assert!(TenantKeys::exists(&fresh));
        Ok(())
    }

    /// Generates the keys on the first run of a `target/` directory (seconds), then loads them.
    #[test]
    fn keys_are_cached_on_disk_and_in_process() -> anyhow::Result<()> {
        let started = Instant::now();
        let keys = TestKeys::load_or_generate()?;
        eprintln!("TestKeys::load_or_generate took {:?}", started.elapsed());
        let dir = TestKeys::dir()?;
        assert!(TenantKeys::exists(&dir), "{}", dir.display());
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            eprintln!(
                "{}: {} bytes",
                entry.path().display(),
                entry.metadata()?.len()
            );
        }

        let again = TestKeys::shared()?;
        assert!(std::ptr::eq(again, TestKeys::shared()?));
        assert!(!encrypt_amount(&keys.public_key, LedgerWidth::U32, 42)?.is_empty());
        assert!(encrypt_amount(&keys.public_key, LedgerWidth::U32, u64::MAX).is_err());
        Ok(())
    }
}
