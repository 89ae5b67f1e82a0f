//! Reading and writing bundles as gzipped tar archives.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;

use super::{path, Bundle, BundleLimits, SIGNATURES_FILE};
use crate::error::BundleError;

impl Bundle {
    /// Reads a bundle from a `.tar.gz` archive, as served by a bundle server.
    ///
    /// Limits are enforced while decompressing, so a gzip bomb fails once it has produced
    /// `max_uncompressed_bytes`, not after. Entry paths are sanitised (see the crate docs),
    /// duplicates and non-regular entries (links, devices) are rejected, and directories are
    /// skipped. A missing `.manifest` is tolerated as in OPA: revision `""`, roots `[""]`.
    pub fn from_tar_gz(
        name: &str,
        bytes: &[u8],
        limits: &BundleLimits,
    ) -> Result<Bundle, BundleError> {
        let size = bytes.len() as u64;
        if size > limits.max_compressed_bytes {
            let limit = limits.max_compressed_bytes;
            return Err(BundleError::CompressedTooLarge { size, limit });
        }
        let reader = LimitedReader {
            inner: MultiGzDecoder::new(bytes),
            remaining: limits.max_uncompressed_bytes,
            exceeded: false,
        };
        let mut archive = tar::Archive::new(reader);
        let result = read_entries(name, &mut archive, limits);
        // The tar reader reports a tripped limit as a generic I/O error; name it properly.
        if archive.into_inner().exceeded {
            return Err(BundleError::UncompressedTooLarge {
                limit: limits.max_uncompressed_bytes,
            });
        }
        result
    }

    /// Writes the bundle as a `.tar.gz`, `.signatures.json` included when signed.
    ///
    /// The output is deterministic: entries sorted by path, mtime 0, mode 0644, owner 0, so
    /// the same bundle always yields the same bytes (and the same ETag).
    pub fn to_tar_gz(&self) -> Result<Vec<u8>, BundleError> {
        let signatures = match self.signatures() {
            Some(signatures) => Some(serde_json::to_vec_pretty(signatures).map_err(|source| {
                BundleError::InvalidJson {
                    path: SIGNATURES_FILE.to_string(),
                    source,
                }
            })?),
            None => None,
        };
        let mut entries: BTreeMap<&str, &[u8]> = self.files().collect();
        if let Some(signatures) = &signatures {
            entries.insert(SIGNATURES_FILE, signatures);
        }
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
        for (path, bytes) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_uid(0);
            header.set_gid(0);
            builder
                .append_data(&mut header, path, bytes)
                .map_err(BundleError::Archive)?;
        }
        let encoder = builder.into_inner().map_err(BundleError::Archive)?;
        encoder.finish().map_err(BundleError::Archive)
    }
}

fn read_entries<R: Read>(
    name: &str,
    archive: &mut tar::Archive<R>,
    limits: &BundleLimits,
) -> Result<Bundle, BundleError> {
    let mut bundle = Bundle::new(name);
    let mut seen = BTreeSet::new();
    for entry in archive.entries().map_err(BundleError::Archive)? {
        let mut entry = entry.map_err(BundleError::Archive)?;
        let kind = entry.header().entry_type();
        if kind.is_dir() || kind.is_pax_global_extensions() {
            continue;
        }
        let path = path::sanitize_bytes(&entry.path_bytes())?;
        if !(kind.is_file() || kind.is_contiguous()) {
            let kind = format!("{kind:?}").to_lowercase();
            return Err(BundleError::UnsupportedEntry { path, kind });
        }
        if seen.len() >= limits.max_files {
            return Err(BundleError::TooManyFiles {
                limit: limits.max_files,
            });
        }
        if !seen.insert(path.clone()) {
            return Err(BundleError::DuplicatePath { path });
        }
        // The header's size is attacker-chosen: check it before reserving memory for it.
        let size = entry.size();
        if size > limits.max_uncompressed_bytes {
            return Err(BundleError::UncompressedTooLarge {
                limit: limits.max_uncompressed_bytes,
            });
        }
        let mut bytes = Vec::with_capacity(size.min(1 << 20) as usize);
        entry
            .read_to_end(&mut bytes)
            .map_err(BundleError::Archive)?;
        bundle.insert_file(&path, bytes)?;
    }
    Ok(bundle)
}

/// Passes at most `remaining` bytes through, then fails and remembers that it did.
struct LimitedReader<R> {
    inner: R,
    remaining: u64,
    exceeded: bool,
}

impl<R: Read> Read for LimitedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.remaining == 0 {
            // At the limit: only a clean end of stream is acceptable.
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? == 0 {
                return Ok(0);
            }
            self.exceeded = true;
            return Err(io::Error::other("uncompressed size limit exceeded"));
        }
        let max = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        self.remaining -= n as u64;
        Ok(n)
    }
}
