//! Opening object stores from what the user typed: a folder, or a Blob
//! Storage URL / container with credentials from flags or environment.

use crate::cli::StorageArgs;
use crate::store::local::LocalStore;
use crate::store::ObjectStore;
use anyhow::{bail, Result};

/// True for `http(s)://` locations (Blob Storage), false for local paths.
pub fn is_url(s: &str) -> bool {
    s.starts_with("https://") || s.starts_with("http://")
}

/// The store holding the training data and the prefix (or blob name) in it.
pub fn open_data(data: Option<&str>, st: &StorageArgs) -> Result<(Box<dyn ObjectStore>, String)> {
    let _ = (data, st);
    bail!("Blob Storage support is being wired")
}

/// The model registry store: a folder or a Blob container/prefix URL.
pub fn open_models(models: &str, st: &StorageArgs) -> Result<Box<dyn ObjectStore>> {
    if !is_url(models) {
        return Ok(Box::new(LocalStore::new(models)));
    }
    let _ = st;
    bail!("Blob Storage support is being wired")
}
