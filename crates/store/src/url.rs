//! What the services read off a database URL before connecting.

use std::path::{Path, PathBuf};

/// The file of a `sqlite://path?options` (or `sqlite:path`) URL; `None` for other URLs and
/// for in-memory databases.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next()?;
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(PathBuf::from(path))
}

/// The directory of a SQLite database file, to create before connecting; `None` when there
/// is nothing to create.
pub fn sqlite_dir(url: &str) -> Option<PathBuf> {
    sqlite_file(url)?
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file_and_directory() {
        let url = "sqlite://data/ledger.db?mode=rwc";
        assert_eq!(sqlite_file(url), Some(PathBuf::from("data/ledger.db")));
        assert_eq!(sqlite_dir(url), Some(PathBuf::from("data")));
        assert_eq!(sqlite_dir("sqlite:ledger.db"), None);
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("mysql://root@db/ledger"), None);
    }
}
