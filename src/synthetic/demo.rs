//! The demo store behind `crv serve --demo`: generated once into a data directory and reused by
//! later runs, so a new user can try the server with no data of their own.

use std::path::{Path, PathBuf};

use crate::atomic_file::write_atomically;
use crate::error::{Error, Result};
use crate::store::{self, Store};

/// Customers in the demo store.
pub const DEMO_CUSTOMERS: u64 = 1_000_000;
/// The demo store's seed.
pub const DEMO_SEED: u64 = 42;

/// The store of `customers` generated customers (seed [`DEMO_SEED`]) in `dir`: reused when a
/// valid one is already there, otherwise generated (CSV, import, CSV removed) and returned.
pub fn demo_store(dir: &Path, customers: u64) -> Result<PathBuf> {
    let path = dir.join(format!("demo-{customers}-{DEMO_SEED}.crv"));
    if Store::open(&path).is_ok() {
        return Ok(path);
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let csv = dir.join(format!("demo-{customers}-{DEMO_SEED}.csv"));
    write_atomically(&csv, |out| {
        super::write_customers_csv(out, customers, DEMO_SEED).map_err(|e| Error::io(&csv, e))
    })?;
    let imported = store::import(&csv, &path, &mut |_| {});
    std::fs::remove_file(&csv).map_err(|e| Error::io(&csv, e))?;
    imported?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_store_is_generated_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("demo-data");
        let path = demo_store(&data, 2_000).unwrap();
        assert_eq!(Store::open(&path).unwrap().rows(), 2_000);
        let written = std::fs::metadata(&path).unwrap().modified().unwrap();
        assert_eq!(demo_store(&data, 2_000).unwrap(), path);
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            written
        );
        let names: Vec<_> = std::fs::read_dir(&data)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            [path.file_name().unwrap()],
            "the CSV is removed after import"
        );
    }
}
