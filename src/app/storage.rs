//! Opening object stores from what the user typed: a folder, or a Blob
//! Storage URL / container with credentials from flags or environment.

use crate::azure::{self, StorageSettings};
use crate::settings::data::{StorageAccess, StorageAuth};
use crate::store::local::LocalStore;
use crate::store::ObjectStore;
use anyhow::{Context, Result};

/// True for `http(s)://` locations (Blob Storage), false for local paths.
pub fn is_url(s: &str) -> bool {
    s.starts_with("https://") || s.starts_with("http://")
}

fn settings(
    url: Option<&str>,
    st: &StorageAccess,
    with_container: bool,
) -> Result<StorageSettings> {
    Ok(StorageSettings {
        url: url.map(str::to_string),
        account: st.account.clone(),
        account_key: st.account_key.clone(),
        connection_string: st.connection_string.clone(),
        container: if with_container {
            st.container.clone()
        } else {
            None
        },
        prefix: if with_container {
            st.prefix.clone()
        } else {
            None
        },
        credential: credential(st)?,
    })
}

/// The Entra ID credential for storage: the one asked for, or with `auto`,
/// the environment's service principal, Azure Pipelines service connection,
/// workload identity or managed identity when one is configured (a SAS,
/// connection string or account key still wins; without any of them the
/// access is anonymous).
fn credential(
    st: &StorageAccess,
) -> Result<Option<std::sync::Arc<dyn azure_core::credentials::TokenCredential>>> {
    use crate::azure::credential::{self as cred, AuthChoice, AuthSettings};
    let auth = AuthSettings::from_env();
    let choice = match st.auth {
        StorageAuth::Anonymous => return Ok(None),
        StorageAuth::Auto => {
            if !auth.identity_configured() {
                return Ok(None);
            }
            AuthChoice::Auto
        }
        StorageAuth::ClientSecret => AuthChoice::ClientSecret,
        StorageAuth::WorkloadIdentity => AuthChoice::WorkloadIdentity,
        StorageAuth::ManagedIdentity => AuthChoice::ManagedIdentity,
        StorageAuth::AzureCli => AuthChoice::AzureCli,
    };
    Ok(Some(cred::credential(choice, &auth).context(
        "--storage-auth: building the Entra ID credential",
    )?))
}

/// The store holding the data and the blob name or prefix in it.
pub fn open_data(data: Option<&str>, st: &StorageAccess) -> Result<(Box<dyn ObjectStore>, String)> {
    let s = settings(data, st, true)?;
    let (store, path) = azure::open(&s).context("opening Blob Storage for --data")?;
    Ok((Box::new(store), path))
}

/// The model registry store: a folder or a Blob container/prefix URL.
pub fn open_models(models: &str, st: &StorageAccess) -> Result<Box<dyn ObjectStore>> {
    if !is_url(models) {
        return Ok(Box::new(LocalStore::new(models)));
    }
    // The data's container and prefix do not apply to the registry.
    let s = settings(Some(models), st, false)?;
    let (store, path) = azure::open(&s).context("opening Blob Storage for --models")?;
    Ok(Box::new(store.under(&path)))
}

/// One blob named by its URL: the store and the blob's name in it.
fn blob_object(url: &str, st: &StorageAccess) -> Result<(crate::azure::BlobStore, String)> {
    let s = settings(Some(url), st, false)?;
    let (store, name) =
        azure::open(&s).with_context(|| format!("opening {}", crate::store::Redacted(url)))?;
    if name.is_empty() || name.ends_with('/') {
        anyhow::bail!(
            "{}: name a blob, not a container or prefix",
            crate::store::Redacted(url)
        );
    }
    Ok((store, name))
}

/// The bytes of a small file or blob (state, decision log), `None` when it
/// does not exist yet.
pub fn read_object(location: &str, st: &StorageAccess) -> Result<Option<Vec<u8>>> {
    if is_url(location) {
        let (store, name) = blob_object(location, st)?;
        return match store.get(&name) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        };
    }
    match std::fs::read(location) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("{location}: cannot read")),
    }
}

/// Replace a small file or blob atomically.
pub fn write_object(location: &str, st: &StorageAccess, bytes: &[u8]) -> Result<()> {
    if is_url(location) {
        let (store, name) = blob_object(location, st)?;
        return Ok(store.put(&name, bytes)?);
    }
    super::write_atomic(std::path::Path::new(location), bytes)
}

/// The bytes of a small file or blob and, for a blob, its version (ETag);
/// `None` when it does not exist yet.
pub fn read_versioned(
    location: &str,
    st: &StorageAccess,
) -> Result<Option<(Vec<u8>, Option<String>)>> {
    if is_url(location) {
        let (store, name) = blob_object(location, st)?;
        return Ok(store
            .get_versioned(&name)?
            .map(|(bytes, etag)| (bytes, Some(etag))));
    }
    Ok(read_object(location, st)?.map(|b| (b, None)))
}

/// Replace a blob only if it is still at `version` (`None`: only if it does
/// not exist); `Ok(false)` when someone wrote it in between. A file is
/// replaced atomically (files have no versions: one writer per file).
pub fn write_if(
    location: &str,
    st: &StorageAccess,
    bytes: &[u8],
    version: Option<&str>,
) -> Result<bool> {
    if is_url(location) {
        let (store, name) = blob_object(location, st)?;
        return Ok(store.put_if(&name, bytes, version)?);
    }
    super::write_atomic(std::path::Path::new(location), bytes)?;
    Ok(true)
}

/// Append to an append blob (created when missing).
pub fn append_object(location: &str, st: &StorageAccess, bytes: &[u8]) -> Result<()> {
    let (store, name) = blob_object(location, st)?;
    Ok(store.append(&name, bytes)?)
}
