//! [`ObjectStore`] over a Blob Storage container (optionally under a prefix).
//!
//! The store is synchronous: it owns a small current-thread Tokio runtime and
//! blocks on the SDK's futures, so it must not be used from inside an async
//! runtime. `put` is one Put Blob request for objects up to
//! [`SINGLE_PUT_LIMIT`] (larger ones are staged as blocks and committed in one
//! request); either way readers see the old or the new blob, never a mix.
//!
//! For what several controllers share: [`BlobStore::get_versioned`] and
//! [`BlobStore::put_if`] write only over the version that was read (ETags),
//! and [`BlobStore::append`] appends to an append blob (one atomic block per
//! record, so concurrent writers never lose or mix lines).

use super::location::Endpoint;
use super::sas::{AccountKey, SasProtocol};
use super::{Auth, AzureError, Resolved};
use crate::store::{ObjectStore, StoreError};
use azure_core::error::ErrorKind;
use azure_core::http::{ClientOptions, ExponentialRetryOptions, RequestContent, RetryOptions, Url};
use azure_core::Bytes;
use azure_storage_blob::models::{
    AppendBlobClientCreateOptions, BlobClientUploadOptions, BlobContainerClientListBlobsOptions,
};
use azure_storage_blob::{BlobContainerClient, BlobContainerClientOptions};
use chrono::{DateTime, Duration, Utc};
use futures::TryStreamExt as _;
use std::num::NonZero;
use std::sync::{Arc, Mutex};

/// Objects up to this size are written with a single Put Blob request.
pub const SINGLE_PUT_LIMIT: u64 = 256 * 1024 * 1024;

/// Permissions of the container SAS signed from an account key.
const CONTAINER_SAS_PERMISSIONS: &str = "racwdl";
/// Lifetime of a SAS signed from an account key; renewed when less than
/// [`SAS_RENEW_BEFORE`] is left.
const SAS_LIFETIME: Duration = Duration::hours(1);
const SAS_RENEW_BEFORE: Duration = Duration::minutes(15);
/// Tolerated clock skew with the service (SAS start time is set this far back).
const CLOCK_SKEW: Duration = Duration::minutes(5);

/// A Blob container (or a prefix in it) as an object store. Cheap to clone.
#[derive(Clone)]
pub struct BlobStore {
    inner: Arc<Inner>,
    base: String,
    page_size: Option<u32>,
}

struct Inner {
    runtime: tokio::runtime::Runtime,
    endpoint: Endpoint,
    container: String,
    container_url: Url,
    auth: Auth,
    cached: Mutex<Option<Cached>>,
}

struct Cached {
    client: Arc<BlobContainerClient>,
    renew_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStore")
            .field("location", &self.describe())
            .field("auth", &self.inner.auth.kind())
            .finish()
    }
}

impl BlobStore {
    /// A store for a resolved location, rooted at its container (not at its path).
    pub fn new(resolved: Resolved) -> Result<Self, AzureError> {
        // The SDK builds the Blob transport itself (without automatic
        // decompression), on the crypto provider installed here.
        super::credential::install_crypto_provider();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| AzureError::Client(format!("cannot start the async runtime: {e}")))?;
        let container_url = resolved.endpoint.container_url(&resolved.container);
        Ok(BlobStore {
            inner: Arc::new(Inner {
                runtime,
                endpoint: resolved.endpoint,
                container: resolved.container,
                container_url,
                auth: resolved.auth,
                cached: Mutex::new(None),
            }),
            base: String::new(),
            page_size: None,
        })
    }

    /// The same container, rooted at `prefix` below this store's root (a `/`
    /// is added if missing). Names are then relative to that prefix.
    pub fn under(&self, prefix: &str) -> BlobStore {
        let p = prefix.trim_matches('/');
        let mut base = self.base.clone();
        if !p.is_empty() {
            base.push_str(p);
            base.push('/');
        }
        BlobStore {
            inner: self.inner.clone(),
            base,
            page_size: self.page_size,
        }
    }

    /// Lists with at most `n` names per request (the service's maximum, 5000, by default).
    pub fn with_page_size(mut self, n: u32) -> BlobStore {
        self.page_size = Some(n.clamp(1, 5000));
        self
    }

    /// The storage account name, when the endpoint names it.
    pub fn account(&self) -> Option<&str> {
        self.inner.endpoint.account.as_deref()
    }

    /// The container name.
    pub fn container(&self) -> &str {
        &self.inner.container
    }

    /// The prefix this store is rooted at within the container (empty, or ends with `/`).
    pub fn base_prefix(&self) -> &str {
        &self.base
    }

    /// The container URL, without any query (safe to print).
    pub fn container_url(&self) -> &Url {
        &self.inner.container_url
    }

    /// How requests are authorised: `sas`, `account-key`, `entra-id` or `anonymous`.
    pub fn auth_kind(&self) -> &'static str {
        self.inner.auth.kind()
    }

    /// Creates the container if it does not exist. Returns true if it was created.
    ///
    /// With an account key this signs a short-lived account SAS allowing only
    /// container creation; with a user SAS it needs an account SAS that allows it.
    pub fn create_container(&self) -> Result<bool, StoreError> {
        let client = match &self.inner.auth {
            Auth::Key(k) => Arc::new(self.key_client(k, true)?),
            _ => self.client()?,
        };
        let r = self
            .inner
            .runtime
            .block_on(async { client.create(None).await });
        match r {
            Ok(_) => Ok(true),
            Err(e) if e.http_status().map(u16::from) == Some(409) => Ok(false),
            Err(e) => Err(self.error(&format!("(container {})", self.inner.container), e)),
        }
    }

    fn full_name(&self, name: &str) -> Result<String, StoreError> {
        let bad = |why: &str| StoreError::InvalidLocation(format!("object name '{name}' {why}"));
        if name.is_empty() {
            return Err(bad("is empty"));
        }
        if name.starts_with('/') || name.split('/').any(|c| c == ".." || c == ".") {
            return Err(bad("leaves the store"));
        }
        let full = format!("{}{name}", self.base);
        if full.len() > 1024 {
            return Err(bad("is longer than 1024 characters"));
        }
        Ok(full)
    }

    fn sdk_error(&self, e: azure_core::Error) -> StoreError {
        StoreError::InvalidLocation(format!(
            "{}: {}",
            self.describe(),
            sanitize(&super::error_text(&e))
        ))
    }

    fn key_client(
        &self,
        key: &AccountKey,
        for_create: bool,
    ) -> Result<BlobContainerClient, StoreError> {
        let now = Utc::now();
        let protocol = SasProtocol::for_scheme(self.inner.container_url.scheme());
        let sas = if for_create {
            key.account_sas(
                "c",
                "c",
                now - CLOCK_SKEW,
                now + Duration::minutes(10),
                protocol,
            )
        } else {
            key.container_sas(
                &self.inner.container,
                CONTAINER_SAS_PERMISSIONS,
                now - CLOCK_SKEW,
                now + SAS_LIFETIME,
                protocol,
            )
        };
        let mut url = self.inner.container_url.clone();
        url.set_query(Some(sas.expose()));
        BlobContainerClient::new(url, None, Some(client_options())).map_err(|e| self.sdk_error(e))
    }

    /// The container client, built on first use; a locally signed SAS is renewed
    /// before it expires.
    fn client(&self) -> Result<Arc<BlobContainerClient>, StoreError> {
        let mut cached = self.inner.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cached.as_ref() {
            if c.renew_at.is_none_or(|t| Utc::now() < t) {
                return Ok(c.client.clone());
            }
        }
        let _guard = self.inner.runtime.enter();
        let url = self.inner.container_url.clone();
        let (client, renew_at) = match &self.inner.auth {
            Auth::Sas(sas) => {
                let mut url = url;
                url.set_query(Some(sas.expose()));
                (
                    BlobContainerClient::new(url, None, Some(client_options())),
                    None,
                )
            }
            Auth::Key(k) => (
                Ok(self.key_client(k, false)?),
                Some(Utc::now() + SAS_LIFETIME - SAS_RENEW_BEFORE),
            ),
            Auth::Token(c) => (
                BlobContainerClient::new(url, Some(c.clone()), Some(client_options())),
                None,
            ),
            Auth::Anonymous => (
                BlobContainerClient::new(url, None, Some(client_options())),
                None,
            ),
        };
        let client = Arc::new(client.map_err(|e| self.sdk_error(e))?);
        *cached = Some(Cached {
            client: client.clone(),
            renew_at,
        });
        Ok(client)
    }

    /// Maps an SDK error to a [`StoreError`] without any secret: HTTP errors
    /// keep only the status and the service's error code.
    fn error(&self, name: &str, e: azure_core::Error) -> StoreError {
        let location = self.describe();
        let name = name.to_string();
        match e.kind() {
            ErrorKind::HttpResponse {
                status, error_code, ..
            } => {
                let code = error_code
                    .as_deref()
                    .map(sanitize)
                    .unwrap_or_else(|| "no error code".to_string());
                let status = u16::from(*status);
                match status {
                    404 if code == "ContainerNotFound" => StoreError::NotFound {
                        location: format!("{location} (the container does not exist)"),
                        name,
                    },
                    404 => StoreError::NotFound { location, name },
                    401 | 403 => StoreError::Denied {
                        location,
                        name,
                        detail: format!("HTTP {status} {code}; {}", self.denied_hint()),
                    },
                    _ => StoreError::Io {
                        location,
                        name,
                        detail: format!("HTTP {status} {code}"),
                    },
                }
            }
            _ => StoreError::Io {
                location,
                name,
                detail: sanitize(&super::error_text(&e)),
            },
        }
    }

    fn denied_hint(&self) -> &'static str {
        match self.inner.auth {
            Auth::Sas(_) => "check the SAS token (expiry, permissions, container)",
            Auth::Key(_) => "check the storage account name and key",
            Auth::Token(_) => {
                "check that the identity has a Storage Blob Data role on the container"
            }
            Auth::Anonymous => {
                "the container is not public: give a SAS, key, connection string or credential"
            }
        }
    }
}

/// Client options: fewer, shorter retries than the SDK's default (8 retries
/// within a minute), so an unreachable endpoint fails in seconds, not minutes.
fn client_options() -> BlobContainerClientOptions {
    BlobContainerClientOptions {
        client_options: ClientOptions {
            retry: RetryOptions::exponential(ExponentialRetryOptions {
                initial_delay: azure_core::time::Duration::milliseconds(500),
                max_retries: 4,
                max_total_elapsed: azure_core::time::Duration::seconds(20),
                max_delay: azure_core::time::Duration::seconds(8),
            }),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Hides URL queries (SAS tokens) in free text: everything from `?` to the
/// next whitespace, quote or bracket becomes `?<redacted>`; any `sig=` left
/// over is cut too.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(|n| !n.is_whitespace()) {
            out.push_str("?<redacted>");
            while let Some(&n) = chars.peek() {
                if n.is_whitespace() || matches!(n, ')' | '"' | '\'' | '>' | ']' | '}') {
                    break;
                }
                chars.next();
            }
        } else {
            out.push(c);
        }
    }
    while let Some(i) = out.find("sig=") {
        let end = out[i..]
            .find(|c: char| c.is_whitespace() || c == '&')
            .map_or(out.len(), |j| i + j);
        out.replace_range(i..end, "<redacted>");
    }
    out
}

/// Appends to one append blob at most; a log that reaches Azure's limit of
/// 50,000 appends goes on in `NAME.2`, `NAME.3`, ... up to this many parts.
const MAX_LOG_PARTS: u32 = 1000;

/// The HTTP status and the service's error code of an SDK error.
fn status_of(e: &azure_core::Error) -> (Option<u16>, Option<String>) {
    match e.kind() {
        ErrorKind::HttpResponse {
            status, error_code, ..
        } => (Some(u16::from(*status)), error_code.clone()),
        _ => (None, None),
    }
}

impl BlobStore {
    /// The bytes of a blob and its ETag (the version a conditional write
    /// names), or `None` when it does not exist.
    pub fn get_versioned(&self, name: &str) -> Result<Option<(Vec<u8>, String)>, StoreError> {
        let full = self.full_name(name)?;
        let client = self.client()?;
        let blob = client.blob_client(&full);
        let got = self.inner.runtime.block_on(async {
            let r = blob.download(None).await?;
            let etag = r.properties.etag.as_ref().map(|t| t.to_string());
            r.body.collect().await.map(|b| (b.to_vec(), etag))
        });
        match got {
            Ok((bytes, Some(etag))) => Ok(Some((bytes, etag))),
            Ok((_, None)) => Err(StoreError::Io {
                location: self.describe(),
                name: name.to_string(),
                detail: "the service gave no ETag".into(),
            }),
            Err(e) => match self.error(name, e) {
                StoreError::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    /// Replaces a blob only if it is still at `version` (an ETag from
    /// [`BlobStore::get_versioned`]), or, with `None`, only if it does not
    /// exist. `Ok(false)`: someone else wrote it in between; nothing was
    /// written.
    pub fn put_if(
        &self,
        name: &str,
        bytes: &[u8],
        version: Option<&str>,
    ) -> Result<bool, StoreError> {
        let full = self.full_name(name)?;
        let client = self.client()?;
        let blob = client.blob_client(&full);
        let content: RequestContent<Bytes, _> = Bytes::copy_from_slice(bytes).into();
        let options = BlobClientUploadOptions {
            partition_size: NonZero::new(SINGLE_PUT_LIMIT),
            if_match: version.map(|v| v.to_string().into()),
            if_none_match: version.is_none().then(|| "*".to_string().into()),
            ..Default::default()
        };
        let r = self
            .inner
            .runtime
            .block_on(async { blob.upload(content, Some(options)).await });
        match r {
            Ok(_) => Ok(true),
            Err(e) => match status_of(&e) {
                (Some(412), _) => Ok(false),
                (Some(409), Some(code)) if code == "BlobAlreadyExists" => Ok(false),
                _ => Err(self.error(name, e)),
            },
        }
    }

    /// Appends `bytes` (one record) to the append blob `name`, creating it
    /// when it does not exist. Each append is one atomic block: lines of
    /// several writers never interleave and none is lost. A blob full of
    /// appends (Azure's limit is 50,000) continues in `NAME.2`, `NAME.3`...
    pub fn append(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let mut part = 1;
        loop {
            let this = if part == 1 {
                name.to_string()
            } else {
                format!("{name}.{part}")
            };
            match self.append_to(&this, bytes)? {
                true => return Ok(()),
                false if part < MAX_LOG_PARTS => part += 1,
                false => {
                    return Err(StoreError::Io {
                        location: self.describe(),
                        name: name.to_string(),
                        detail: format!(
                            "{MAX_LOG_PARTS} parts of the log are full: point the decision log at a new blob"
                        ),
                    })
                }
            }
        }
    }

    /// One append to `name`; `Ok(false)` when that blob is full.
    fn append_to(&self, name: &str, bytes: &[u8]) -> Result<bool, StoreError> {
        let full = self.full_name(name)?;
        let client = self.client()?;
        let blob = client.blob_client(&full).append_blob_client();
        let append = || {
            let content: RequestContent<Bytes, azure_core::http::NoFormat> =
                Bytes::copy_from_slice(bytes).into();
            self.inner
                .runtime
                .block_on(blob.append_block(content, bytes.len() as u64, None))
        };
        let mut created = false;
        loop {
            let e = match append() {
                Ok(_) => return Ok(true),
                Err(e) => e,
            };
            match status_of(&e) {
                (Some(404), Some(code)) if code == "BlobNotFound" && !created => {
                    created = true;
                    let options = AppendBlobClientCreateOptions::default().if_not_exists();
                    match self
                        .inner
                        .runtime
                        .block_on(blob.create(Some(options)))
                    {
                        Ok(_) => {}
                        // Someone else created it first: append to theirs.
                        Err(e) if status_of(&e).0 == Some(409) => {}
                        Err(e) => return Err(self.error(name, e)),
                    }
                }
                (Some(409), Some(code)) if code == "BlockCountExceedsLimit" => return Ok(false),
                (Some(409), Some(code)) if code == "InvalidBlobType" => {
                    return Err(StoreError::Io {
                        location: self.describe(),
                        name: name.to_string(),
                        detail: "this blob is not an append blob (a decision log written by mlscaler before 0.2 is a block blob): rename it, or point the decision log at a new blob".into(),
                    })
                }
                _ => return Err(self.error(name, e)),
            }
        }
    }
}

impl ObjectStore for BlobStore {
    fn describe(&self) -> String {
        format!("{}/{}", self.inner.container_url, self.base)
            .trim_end_matches('/')
            .to_string()
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let client = self.client()?;
        let full = format!("{}{prefix}", self.base);
        let options = BlobContainerClientListBlobsOptions {
            prefix: (!full.is_empty()).then(|| full.clone()),
            maxresults: self.page_size.map(|n| n as i32),
            ..Default::default()
        };
        let mut pager = {
            let _guard = self.inner.runtime.enter();
            client
                .list_blobs(Some(options))
                .map_err(|e| self.error(&format!("{prefix}*"), e))?
        };
        let names: Result<Vec<String>, azure_core::Error> = self.inner.runtime.block_on(async {
            let mut names = Vec::new();
            while let Some(item) = pager.try_next().await? {
                if let Some(n) = item.name {
                    names.push(n);
                }
            }
            Ok(names)
        });
        let mut names: Vec<String> = names
            .map_err(|e| self.error(&format!("{prefix}*"), e))?
            .into_iter()
            .filter_map(|n| n.strip_prefix(&self.base).map(str::to_string))
            .filter(|n| n.starts_with(prefix))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn get(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        let full = self.full_name(name)?;
        let client = self.client()?;
        let blob = client.blob_client(&full);
        self.inner
            .runtime
            .block_on(async {
                let r = blob.download(None).await?;
                r.body.collect().await
            })
            .map(|b| {
                tracing::debug!(blob = %full, bytes = b.len(), "blob read");
                b.to_vec()
            })
            .map_err(|e| self.error(name, e))
    }

    fn put(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let full = self.full_name(name)?;
        let client = self.client()?;
        let blob = client.blob_client(&full);
        let content: RequestContent<Bytes, _> = Bytes::copy_from_slice(bytes).into();
        let options = BlobClientUploadOptions {
            partition_size: NonZero::new(SINGLE_PUT_LIMIT),
            ..Default::default()
        };
        self.inner
            .runtime
            .block_on(async { blob.upload(content, Some(options)).await })
            .map(|_| tracing::debug!(blob = %full, bytes = bytes.len(), "blob written"))
            .map_err(|e| match self.error(name, e) {
                StoreError::NotFound { name, .. } => StoreError::Io {
                    location: self.describe(),
                    name,
                    detail: "HTTP 404 ContainerNotFound: the container does not exist".into(),
                },
                other => other,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_hides_queries_and_signatures() {
        let t = "error sending request for url (http://127.0.0.1:1/a/b?sv=1&sig=abc%2B): refused";
        let s = sanitize(t);
        assert_eq!(
            s,
            "error sending request for url (http://127.0.0.1:1/a/b?<redacted>): refused"
        );
        assert_eq!(sanitize("x sig=abc&y=1"), "x <redacted>&y=1");
        assert_eq!(sanitize("what? nothing"), "what? nothing");
    }
}
