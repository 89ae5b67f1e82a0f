//! Helpers shared by the integration tests: real files, real archives, no mocks.
#![allow(dead_code)]

use std::fs;
use std::path::Path;

use blindledger_policy::Bundle;

/// Writes `files` (path, contents) under `dir`, creating directories.
pub fn write_tree(dir: &Path, files: &[(&str, &str)]) {
    for (path, contents) in files {
        let path = dir.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, contents).unwrap();
    }
}

/// Builds an in-memory bundle from `(path, contents)` pairs.
pub fn bundle(name: &str, files: &[(&str, &str)]) -> Bundle {
    let mut bundle = Bundle::new(name);
    for (path, contents) in files {
        bundle
            .insert_file(path, contents.as_bytes().to_vec())
            .unwrap();
    }
    bundle
}

/// A gzipped tar whose entries are written with raw names, bypassing the `tar` crate's own
/// path checks, so that hostile archives can be made. `kind` is a tar type flag.
pub fn raw_tar_gz(entries: &[(&[u8], u8, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut tar = Vec::new();
    for (name, kind, data) in entries {
        let mut header = tar::Header::new_ustar();
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::new(*kind));
        header.set_cksum();
        tar.extend_from_slice(header.as_bytes());
        tar.extend_from_slice(data);
        tar.resize(tar.len().div_ceil(512) * 512, 0);
    }
    tar.resize(tar.len() + 1024, 0);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}
