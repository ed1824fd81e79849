//! Shared helper for integration tests that need Blob Storage: the Azurite
//! emulator started by `scripts/test` (its URL is in `MLSCALER_TEST_AZURITE`).
//!
//! Include it with `#[path = "support/azurite.rs"] mod azurite;`, then:
//!
//! ```ignore
//! let Some(az) = azurite::Azurite::from_env() else { return };
//! let container = az.create_container("train");
//! az.upload(&container, "data/part-0001.csv", b"timestamp,value\n...");
//! let url = az.url(&container, "data/");          // path-style URL, no secret
//! let cs = az.connection_string();                // for AZURE_STORAGE_CONNECTION_STRING
//! ```
//!
//! Without `MLSCALER_TEST_AZURITE` the helper panics (run the tests through
//! `scripts/test`), unless `MLSCALER_SKIP_AZURITE=1`, in which case
//! [`Azurite::from_env`] prints "skipped" and returns `None`.
#![allow(dead_code)]

use mlscaler::azure::location::{DEV_ACCOUNT, DEV_ACCOUNT_KEY};
use mlscaler::azure::{self, BlobStore, Secret, StorageSettings};
use mlscaler::store::ObjectStore;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The emulator's well-known account (public, documented).
pub const ACCOUNT: &str = DEV_ACCOUNT;
/// The emulator's well-known key (public, documented; not a secret).
pub const KEY: &str = DEV_ACCOUNT_KEY;

/// A running Azurite Blob endpoint, e.g. `http://127.0.0.1:PORT/devstoreaccount1`.
#[derive(Debug, Clone)]
pub struct Azurite {
    endpoint: String,
}

impl Azurite {
    /// The emulator started by `scripts/test`. Panics if it is not configured,
    /// unless `MLSCALER_SKIP_AZURITE=1` (then prints "skipped" and returns `None`).
    #[track_caller]
    pub fn from_env() -> Option<Azurite> {
        match std::env::var("MLSCALER_TEST_AZURITE") {
            Ok(e) if !e.trim().is_empty() => Some(Azurite {
                endpoint: e.trim().trim_end_matches('/').to_string(),
            }),
            _ if std::env::var("MLSCALER_SKIP_AZURITE").as_deref() == Ok("1") => {
                eprintln!(
                    "skipped: MLSCALER_SKIP_AZURITE=1 and no MLSCALER_TEST_AZURITE ({})",
                    std::panic::Location::caller()
                );
                None
            }
            _ => panic!(
                "MLSCALER_TEST_AZURITE is not set: this test needs the Azurite storage emulator. \
                 Run the tests with scripts/test (it starts Azurite), or start it yourself with \
                 `eval \"$(scripts/azurite start DIR)\"`; set MLSCALER_SKIP_AZURITE=1 to skip on purpose."
            ),
        }
    }

    /// The Blob service endpoint (`http://127.0.0.1:PORT/devstoreaccount1`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A connection string for this endpoint with the well-known account key.
    pub fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};BlobEndpoint={}/;",
            self.endpoint
        )
    }

    /// The URL of a blob or prefix (no query): `ENDPOINT/container/path`.
    pub fn url(&self, container: &str, path: &str) -> String {
        if path.is_empty() {
            format!("{}/{container}", self.endpoint)
        } else {
            format!("{}/{container}/{path}", self.endpoint)
        }
    }

    /// Settings for `url(container, path)` with the account key.
    pub fn key_settings(&self, container: &str, path: &str) -> StorageSettings {
        StorageSettings {
            url: Some(self.url(container, path)),
            account_key: Some(Secret::new(KEY)),
            ..Default::default()
        }
    }

    /// A store rooted at `container`, authorised with the account key.
    pub fn store(&self, container: &str) -> BlobStore {
        azure::open(&self.key_settings(container, ""))
            .expect("open the Azurite container")
            .0
    }

    /// A new, empty container with a unique name starting with `tag`.
    pub fn create_container(&self, tag: &str) -> String {
        let name = unique_name(tag);
        let created = self
            .store(&name)
            .create_container()
            .expect("create a container in Azurite");
        assert!(created, "container {name} already existed");
        name
    }

    /// Uploads one blob (creates or replaces it).
    pub fn upload(&self, container: &str, name: &str, bytes: &[u8]) {
        self.store(container)
            .put(name, bytes)
            .unwrap_or_else(|e| panic!("upload {name} to Azurite: {e}"));
    }

    /// A SAS (query string, no `?`) for `container` valid for an hour, with
    /// the given permissions (e.g. `rl` for read+list, `racwdl` for all).
    pub fn container_sas(&self, container: &str, permissions: &str) -> String {
        let key = azure::sas::AccountKey::new(ACCOUNT, &Secret::new(KEY)).unwrap();
        let now = chrono::Utc::now();
        key.container_sas(
            container,
            permissions,
            now - chrono::Duration::minutes(5),
            now + chrono::Duration::hours(1),
            azure::sas::SasProtocol::HttpsAndHttp,
        )
        .expose()
        .to_string()
    }

    /// `url(container, path)` with a container SAS in the query.
    pub fn sas_url(&self, container: &str, path: &str, permissions: &str) -> String {
        format!(
            "{}?{}",
            self.url(container, path),
            self.container_sas(container, permissions)
        )
    }
}

/// A container name unique to this process and call: `tag-PID-N-NANOS`
/// (lowercase letters, digits and hyphens, at most 63 characters).
pub fn unique_name(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let tag: String = tag
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(24)
        .collect();
    let tag = tag.trim_matches('-');
    let tag = if tag.is_empty() { "t" } else { tag };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{tag}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
