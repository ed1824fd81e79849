//! Where data and model artifacts live: local folders or Azure Blob Storage,
//! behind one small interface ([`ObjectStore`]), plus the model artifact format
//! ([`artifact`]) and the model registry layout ([`registry`]).

pub mod artifact;
pub mod card;
pub mod format1;
pub mod local;
pub mod registry;

use std::fmt;

/// A flat namespace of named byte objects: a local folder, or a Blob container
/// (optionally under a prefix).
///
/// Contract:
/// - `list` returns names (relative to the store's root) in byte-wise name order.
/// - `put` replaces an object *atomically*: a reader sees the old bytes or the
///   new bytes, never a mix or a truncated object.
/// - No method ever prints or returns a secret (keys, SAS signatures, tokens),
///   including in errors and in [`ObjectStore::describe`].
pub trait ObjectStore: Send + Sync {
    /// A human-readable location, safe to log (no secrets).
    fn describe(&self) -> String;
    /// Names of all objects whose name starts with `prefix`, sorted by name.
    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
    /// The whole object.
    fn get(&self, name: &str) -> Result<Vec<u8>, StoreError>;
    /// Create or atomically replace an object.
    fn put(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError>;
}

/// Errors from an [`ObjectStore`]. Messages name the object and never contain secrets.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("{location}: object '{name}' not found")]
    NotFound { location: String, name: String },
    #[error("{location}: access denied for '{name}': {detail}")]
    Denied {
        location: String,
        name: String,
        detail: String,
    },
    #[error("{location}: I/O error on '{name}': {detail}")]
    Io {
        location: String,
        name: String,
        detail: String,
    },
    #[error("invalid storage location: {0}")]
    InvalidLocation(String),
}

impl StoreError {
    /// True when the object does not exist (as opposed to an access or I/O failure).
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound { .. })
    }
}

/// Display helper that hides everything after '?' in a URL (SAS tokens).
pub struct Redacted<'a>(pub &'a str);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.split_once('?') {
            Some((base, _)) => write!(f, "{base}?<redacted>"),
            None => f.write_str(self.0),
        }
    }
}
