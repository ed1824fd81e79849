//! The async ARM client: bearer token from an `azure_core` credential, JSON
//! over `reqwest`, a retry layer (429, 5xx, transport timeouts, 409 busy)
//! and long-running-operation polling. One write at a time per client.
//!
//! Every wait (`Retry-After`, backoff, poll interval) is capped by the run's
//! [`RunLimits`]: no single wait is longer than `max_wait`, none goes past
//! the run's deadline (then the call fails at once with
//! [`ArmError::Deadline`]), and a stop request (SIGTERM) ends any wait and
//! any request in flight with [`ArmError::Interrupted`]; no write is sent
//! after it. Every write sent is noted in the run's [`Journal`], so a run
//! that fails can say what it had done.
//!
//! A conditional write (with `If-Match`) whose answer never came (a
//! timeout, a dropped connection, a 5xx) is not retried here: it may have
//! been applied, and resending it would be refused as stale (412). It ends
//! in [`ArmError::Unconfirmed`], and the caller reads the resource back to
//! find out (see [`super::group`]).

use super::error::{parse_retry_after, ArmError, ArmErrorBody};
use azure_core::credentials::TokenCredential;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use url::Url;

/// Public-cloud ARM endpoint.
pub const PUBLIC_ENDPOINT: &str = "https://management.azure.com";
/// AKS api-version used by default.
pub const AKS_API_VERSION: &str = "2026-08-01";
/// Compute (VMSS) api-version used by default.
pub const COMPUTE_API_VERSION: &str = "2024-03-01";

/// Waits; injectable so tests count waits instead of timing them.
pub trait Sleeper: Send + Sync {
    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// Real sleeping on the tokio timer.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioSleeper;

impl Sleeper for TokioSleeper {
    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(tokio::time::sleep(d))
    }
}

/// A source of jitter in `[0, 1)`; injectable for reproducible tests.
pub trait Jitter: Send + Sync {
    fn next_unit(&self) -> f64;
}

/// xorshift64* seeded from the clock: good enough to spread retries.
#[derive(Debug)]
pub struct XorShiftJitter(Mutex<u64>);

impl XorShiftJitter {
    pub fn new(seed: u64) -> Self {
        XorShiftJitter(Mutex::new(seed.max(1)))
    }
    pub fn from_clock() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9E37_79B9_7F4A_7C15);
        Self::new(nanos ^ u64::from(std::process::id()))
    }
}

impl Jitter for XorShiftJitter {
    fn next_unit(&self) -> f64 {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut x = *s;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *s = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What bounds a run's time with ARM: the longest single wait, the run's
/// deadline, and its stop flag (set by SIGTERM/SIGINT).
#[derive(Debug, Clone)]
pub struct RunLimits {
    /// No single wait (`Retry-After`, backoff, poll interval) is longer,
    /// whatever the server asks for.
    pub max_wait: Duration,
    /// The run's time budget from `started`: no wait or request goes past
    /// it. `None`: no deadline.
    pub budget: Option<Duration>,
    /// When the run started (the budget counts from here).
    pub started: Instant,
    /// Set when the run is asked to stop: waits and requests in flight end,
    /// and no further write is sent.
    pub stop: Arc<AtomicBool>,
}

impl Default for RunLimits {
    fn default() -> Self {
        RunLimits {
            max_wait: Duration::from_secs(30),
            budget: None,
            started: Instant::now(),
            stop: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl RunLimits {
    /// Whether the run was asked to stop.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// One write the run sent, for its decision record: what was asked and
/// what came of it (never a token or a secret).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WriteEvent {
    /// Method and resource path (`PATCH /subscriptions/.../vmss1`).
    pub request: String,
    /// The change asked for (`sku.capacity=27`, `count=15`).
    pub change: String,
    /// What came of it (`accepted (HTTP 200)`, `refused: HTTP 412 ...`,
    /// `no answer: ...`, `operation Succeeded`).
    pub result: String,
}

/// The writes of a run, in order; shared by every client of the run.
#[derive(Debug, Default)]
pub struct Journal(Mutex<Vec<WriteEvent>>);

impl Journal {
    /// Every write so far.
    pub fn events(&self) -> Vec<WriteEvent> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn push(&self, e: WriteEvent) -> usize {
        let mut v = self.0.lock().unwrap_or_else(|p| p.into_inner());
        v.push(e);
        v.len() - 1
    }

    fn set_result(&self, at: usize, result: String) {
        let mut v = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = v.get_mut(at) {
            e.result = result;
        }
    }
}

/// The change a write body asks for, in a few words (only the fields
/// mlscaler changes; never the whole body).
fn change_of(body: Option<&serde_json::Value>) -> String {
    let Some(b) = body else {
        return String::new();
    };
    let mut parts = Vec::new();
    for (label, ptr) in [
        ("count", "/properties/count"),
        ("minCount", "/properties/minCount"),
        ("maxCount", "/properties/maxCount"),
        ("sku.capacity", "/sku/capacity"),
        ("sku.name", "/sku/name"),
        ("instanceIds", "/instanceIds"),
        ("protectionPolicy", "/properties/protectionPolicy"),
    ] {
        if let Some(v) = b.pointer(ptr) {
            parts.push(format!("{label}={v}"));
        }
    }
    parts.join(" ")
}

/// Bounds of the retry layer.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries after a 5xx or a transport error/timeout (then the error is returned).
    pub max_server_retries: u32,
    /// Retries after a 429 (each waits `Retry-After`, or the backoff).
    pub max_throttle_retries: u32,
    /// Retries of a write answered `409` busy (another operation in progress).
    pub max_busy_retries: u32,
    /// First backoff; doubles each retry, with full jitter, up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Wait after a busy 409 without `Retry-After`.
    pub busy_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_server_retries: 4,
            max_throttle_retries: 5,
            max_busy_retries: 10,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            busy_delay: Duration::from_secs(15),
        }
    }
}

/// Where and how to talk to ARM.
#[derive(Debug, Clone)]
pub struct ArmConfig {
    /// ARM endpoint (must be https: a bearer token never goes over plain http).
    pub endpoint: Url,
    /// Token audience; the scope asked for is `{audience}/.default`.
    pub audience: String,
    pub aks_api_version: String,
    pub compute_api_version: String,
    pub retry: RetryPolicy,
    /// Poll interval of long-running operations without `Retry-After`.
    pub poll_interval: Duration,
    /// Overall bound on one long-running operation: the larger of wall-clock
    /// time and the sum of the waits asked of the [`Sleeper`] counts.
    pub lro_timeout: Duration,
    /// Per-request timeout.
    pub request_timeout: Duration,
}

impl Default for ArmConfig {
    fn default() -> Self {
        ArmConfig {
            endpoint: Url::parse(PUBLIC_ENDPOINT).unwrap_or_else(|_| unreachable!()),
            audience: PUBLIC_ENDPOINT.to_string(),
            aks_api_version: AKS_API_VERSION.into(),
            compute_api_version: COMPUTE_API_VERSION.into(),
            retry: RetryPolicy::default(),
            poll_interval: Duration::from_secs(10),
            lro_timeout: Duration::from_secs(30 * 60),
            request_timeout: Duration::from_secs(60),
        }
    }
}

impl ArmConfig {
    /// Configuration for another endpoint (sovereign cloud, emulator); the
    /// audience defaults to the endpoint.
    pub fn with_endpoint(endpoint: &str) -> Result<Self, ArmError> {
        let url = Url::parse(endpoint).map_err(|e| ArmError::Invalid {
            what: "ARM endpoint".into(),
            message: format!("{endpoint:?}: {e}"),
        })?;
        Ok(ArmConfig {
            audience: endpoint.trim_end_matches('/').to_string(),
            endpoint: url,
            ..Default::default()
        })
    }

    /// From variables: `MLSCALER_ARM_ENDPOINT` (default: public cloud),
    /// `MLSCALER_ARM_AUDIENCE` (default: the endpoint),
    /// `MLSCALER_AKS_API_VERSION`, `MLSCALER_COMPUTE_API_VERSION`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ArmError> {
        let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let mut config = match var(ENDPOINT_ENV) {
            Some(e) => Self::with_endpoint(&e)?,
            None => Self::default(),
        };
        if let Some(a) = var(AUDIENCE_ENV) {
            config.audience = a;
        }
        if let Some(v) = var(AKS_API_VERSION_ENV) {
            config.aks_api_version = v;
        }
        if let Some(v) = var(COMPUTE_API_VERSION_ENV) {
            config.compute_api_version = v;
        }
        Ok(config)
    }

    /// As [`ArmConfig::from_lookup`] with the process environment.
    pub fn from_env() -> Result<Self, ArmError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }
}

/// ARM endpoint override (sovereign cloud, the local emulator).
pub const ENDPOINT_ENV: &str = "MLSCALER_ARM_ENDPOINT";
/// Token audience override (scope is `{audience}/.default`).
pub const AUDIENCE_ENV: &str = "MLSCALER_ARM_AUDIENCE";
pub const AKS_API_VERSION_ENV: &str = "MLSCALER_AKS_API_VERSION";
pub const COMPUTE_API_VERSION_ENV: &str = "MLSCALER_COMPUTE_API_VERSION";

/// A response whose status was a success (2xx).
#[derive(Debug, Clone)]
pub struct ArmResponse {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Bytes,
}

impl ArmResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn json<T: DeserializeOwned>(&self, what: &str) -> Result<T, ArmError> {
        serde_json::from_slice(&self.body).map_err(|e| ArmError::Decode {
            what: what.to_string(),
            message: e.to_string(),
        })
    }
}

/// A typed ARM client. Async; see [`super::blocking`] for the sync facade.
#[derive(Clone)]
pub struct ArmClient {
    inner: Arc<Inner>,
}

struct Inner {
    config: ArmConfig,
    http: reqwest::Client,
    credential: Arc<dyn TokenCredential>,
    sleeper: Arc<dyn Sleeper>,
    jitter: Arc<dyn Jitter>,
    write_lock: tokio::sync::Mutex<()>,
    limits: RunLimits,
    journal: Arc<Journal>,
    /// Milliseconds waited so far (the waits asked of the sleeper): with a
    /// test's sleeper that does not really sleep, the deadline still counts them.
    waited_ms: AtomicU64,
}

impl std::fmt::Debug for ArmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArmClient")
            .field("endpoint", &self.inner.config.endpoint.as_str())
            .finish_non_exhaustive()
    }
}

/// Where the operation status is reported.
enum Poll {
    AsyncOperation(Url),
    Location(Url),
}

impl ArmClient {
    /// `http` should be the same client the credential uses (see
    /// `azure::credential::http_client`), so both trust the same roots.
    pub fn new(
        config: ArmConfig,
        credential: Arc<dyn TokenCredential>,
        http: reqwest::Client,
    ) -> Result<Self, ArmError> {
        if config.endpoint.scheme() != "https" {
            return Err(ArmError::Invalid {
                what: "ARM endpoint".into(),
                message: format!(
                    "{} is not https; a bearer token is never sent over plain http",
                    config.endpoint
                ),
            });
        }
        Ok(ArmClient {
            inner: Arc::new(Inner {
                config,
                http,
                credential,
                sleeper: Arc::new(TokioSleeper),
                jitter: Arc::new(XorShiftJitter::from_clock()),
                write_lock: tokio::sync::Mutex::new(()),
                limits: RunLimits::default(),
                journal: Arc::new(Journal::default()),
                waited_ms: AtomicU64::new(0),
            }),
        })
    }

    /// Builds the credential for `choice` and a client sharing its HTTP
    /// transport (so both trust the same roots: `auth.ca_cert`'s, if any).
    pub fn connect(
        config: ArmConfig,
        choice: crate::azure::credential::AuthChoice,
        auth: &crate::azure::credential::AuthSettings,
    ) -> Result<Self, ArmError> {
        use crate::azure::credential;
        let http = credential::http_client(credential::Roots::of(auth))
            .map_err(|e| ArmError::Credential(e.to_string()))?;
        let cred = credential::credential_with_client(choice, auth, http.clone())
            .map_err(|e| ArmError::Credential(e.to_string()))?;
        Self::new(config, cred, http)
    }

    /// Replaces the sleeper and jitter source (tests).
    pub fn with_timing(self, sleeper: Arc<dyn Sleeper>, jitter: Arc<dyn Jitter>) -> Self {
        self.rebuild(|i| Inner {
            sleeper,
            jitter,
            ..i
        })
    }

    /// Bounds waits and requests by `limits` (cap, deadline, stop flag).
    pub fn with_limits(self, limits: RunLimits) -> Self {
        self.rebuild(|i| Inner { limits, ..i })
    }

    /// Notes every write in `journal` (shared with the caller).
    pub fn with_journal(self, journal: Arc<Journal>) -> Self {
        self.rebuild(|i| Inner { journal, ..i })
    }

    fn rebuild(self, f: impl FnOnce(Inner) -> Inner) -> Self {
        let inner = match Arc::try_unwrap(self.inner) {
            Ok(i) => i,
            Err(shared) => Inner {
                config: shared.config.clone(),
                http: shared.http.clone(),
                credential: shared.credential.clone(),
                sleeper: shared.sleeper.clone(),
                jitter: shared.jitter.clone(),
                write_lock: tokio::sync::Mutex::new(()),
                limits: shared.limits.clone(),
                journal: shared.journal.clone(),
                waited_ms: AtomicU64::new(shared.waited_ms.load(Ordering::SeqCst)),
            },
        };
        ArmClient {
            inner: Arc::new(f(inner)),
        }
    }

    /// The writes this client (and its clones) sent.
    pub fn journal(&self) -> &Arc<Journal> {
        &self.inner.journal
    }

    /// The run's limits.
    pub fn limits(&self) -> &RunLimits {
        &self.inner.limits
    }

    pub fn config(&self) -> &ArmConfig {
        &self.inner.config
    }

    /// `endpoint + path + ?api-version=`.
    pub fn url(&self, path: &str, api_version: &str) -> Result<Url, ArmError> {
        let mut url = self
            .inner
            .config
            .endpoint
            .join(path)
            .map_err(|e| ArmError::Invalid {
                what: path.to_string(),
                message: e.to_string(),
            })?;
        url.query_pairs_mut()
            .append_pair("api-version", api_version);
        Ok(url)
    }

    async fn token(&self) -> Result<String, ArmError> {
        let scope = format!(
            "{}/.default",
            self.inner.config.audience.trim_end_matches('/')
        );
        let token = self
            .inner
            .credential
            .get_token(&[scope.as_str()], None)
            .await
            .map_err(|e| {
                ArmError::Credential(crate::azure::blob::sanitize(&crate::azure::error_text(&e)))
            })?;
        Ok(token.token.secret().to_string())
    }

    /// Never send the token to a host other than the configured endpoint.
    fn check_same_origin(&self, url: &Url) -> Result<(), ArmError> {
        let ep = &self.inner.config.endpoint;
        if url.scheme() == "https"
            && url.host_str() == ep.host_str()
            && url.port_or_known_default() == ep.port_or_known_default()
        {
            Ok(())
        } else {
            Err(ArmError::Invalid {
                what: "operation URL".into(),
                message: format!(
                    "{} is not on the ARM endpoint {}; not sending a token there",
                    url.origin().ascii_serialization(),
                    ep.origin().ascii_serialization()
                ),
            })
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let p = &self.inner.config.retry;
        let exp = p
            .base_delay
            .saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX))
            .min(p.max_delay);
        // "Equal jitter": half fixed, half random, so retries never bunch at 0.
        let half = exp / 2;
        half + half.mul_f64(self.inner.jitter.next_unit())
    }

    /// The time the run has spent: the larger of the clock and the waits
    /// asked of the sleeper.
    fn spent(&self) -> Duration {
        let waited = Duration::from_millis(self.inner.waited_ms.load(Ordering::SeqCst));
        self.inner.limits.started.elapsed().max(waited)
    }

    /// What is left of the run's budget (`None`: no deadline).
    fn remaining(&self) -> Option<Duration> {
        self.inner
            .limits
            .budget
            .map(|b| b.saturating_sub(self.spent()))
    }

    /// Fails when the run was asked to stop, or its deadline has passed.
    fn check_limits(&self, what: &str) -> Result<(), ArmError> {
        if self.inner.limits.stopped() {
            return Err(ArmError::Interrupted {
                what: what.to_string(),
            });
        }
        if self.remaining().is_some_and(|r| r.is_zero()) {
            return Err(self.deadline_error(what));
        }
        Ok(())
    }

    fn deadline_error(&self, what: &str) -> ArmError {
        ArmError::Deadline {
            what: what.to_string(),
            budget: self.inner.limits.budget.unwrap_or_default(),
        }
    }

    /// The backoff before sending a write again (`attempt` from 0), within
    /// the run's limits.
    pub async fn pause_before_resending(&self, what: &str, attempt: u32) -> Result<(), ArmError> {
        self.wait(what, self.backoff(attempt)).await
    }

    /// Waits `asked` (capped at the run's `max_wait`) before `what`; fails
    /// at once when the wait would go past the deadline, and ends early
    /// when the run is asked to stop.
    async fn wait(&self, what: &str, asked: Duration) -> Result<(), ArmError> {
        self.check_limits(what)?;
        let d = asked.min(self.inner.limits.max_wait);
        if d < asked {
            tracing::info!(%what, asked = %secs(asked), capped = %secs(d), "wait capped at --max-wait");
        }
        if self.remaining().is_some_and(|r| d >= r) {
            return Err(self.deadline_error(&format!("{what} (after waiting {})", secs(d))));
        }
        self.inner
            .waited_ms
            .fetch_add(d.as_millis() as u64, Ordering::SeqCst);
        let stop = self.inner.limits.stop.clone();
        tokio::select! {
            biased;
            _ = stopped(stop) => Err(ArmError::Interrupted { what: what.to_string() }),
            _ = self.inner.sleeper.sleep(d) => Ok(()),
        }
    }

    /// One HTTP exchange, no retries.
    async fn send_once(
        &self,
        method: reqwest::Method,
        url: &Url,
        body: Option<&serde_json::Value>,
        if_match: Option<&str>,
        token: &str,
    ) -> Result<(u16, reqwest::header::HeaderMap, Bytes), reqwest::Error> {
        let timeout = self
            .remaining()
            .map_or(self.inner.config.request_timeout, |r| {
                r.min(self.inner.config.request_timeout)
            });
        let mut req = self
            .inner
            .http
            .request(method, url.clone())
            .timeout(timeout)
            .header("Accept", "application/json")
            .bearer_auth(token);
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(serde_json::to_vec(b).unwrap_or_default());
        }
        if let Some(tag) = if_match {
            req = req.header("If-Match", tag);
        }
        let rsp = req.send().await?;
        let status = rsp.status().as_u16();
        let headers = rsp.headers().clone();
        let bytes = rsp.bytes().await?;
        Ok((status, headers, bytes))
    }

    /// A token for the next attempt: the credential caches it and renews it
    /// when due. Bounded by the run's stop flag and deadline.
    async fn token_for(&self, what: &str) -> Result<String, ArmError> {
        let stop = self.inner.limits.stop.clone();
        let budget = self.remaining().unwrap_or(Duration::MAX);
        tokio::select! {
            biased;
            _ = stopped(stop) => Err(ArmError::Interrupted { what: what.to_string() }),
            _ = tokio::time::sleep(budget) => Err(self.deadline_error(&format!("{what} (getting a token)"))),
            t = self.token() => t,
        }
    }

    /// Sends with the retry layer: 429 and a busy 409 (writes) are waited
    /// out; 5xx, 408 and transport errors are retried with backoff, except
    /// for a conditional write (`If-Match`), which ends in
    /// [`ArmError::Unconfirmed`] (it may have been applied; the caller reads
    /// back). Nothing is sent once the run is asked to stop or its deadline
    /// has passed.
    pub async fn send(
        &self,
        method: reqwest::Method,
        url: &Url,
        body: Option<&serde_json::Value>,
        if_match: Option<&str>,
    ) -> Result<ArmResponse, ArmError> {
        self.send_noted(method, url, body, if_match)
            .await
            .map(|(rsp, _)| rsp)
    }

    /// [`ArmClient::send`], returning also where a write is in the journal.
    async fn send_noted(
        &self,
        method: reqwest::Method,
        url: &Url,
        body: Option<&serde_json::Value>,
        if_match: Option<&str>,
    ) -> Result<(ArmResponse, Option<usize>), ArmError> {
        self.check_same_origin(url)?;
        let write = method != reqwest::Method::GET;
        let conditional = write && if_match.is_some();
        let what = format!("{method} {}", url.path());
        let journal = &self.inner.journal;
        let mut tries = Tries::default();
        loop {
            self.check_limits(&what)?;
            let token = self.token_for(&what).await?;
            // Checked again: getting the token may have taken a while.
            self.check_limits(&what)?;
            let noted = write.then(|| {
                journal.push(WriteEvent {
                    request: what.clone(),
                    change: change_of(body),
                    result: "sent; no answer yet".into(),
                })
            });
            let note = |result: String| {
                if let Some(at) = noted {
                    journal.set_result(at, result);
                }
            };
            let stop = self.inner.limits.stop.clone();
            let result = tokio::select! {
                biased;
                _ = stopped(stop) => None,
                r = self.send_once(method.clone(), url, body, if_match, &token) => Some(r),
            };
            let Some(result) = result else {
                note(
                    "sent; the run stopped before the answer came (it may have been applied)"
                        .into(),
                );
                return Err(ArmError::Interrupted { what });
            };
            let (status, headers, bytes) = match result {
                Ok(x) => {
                    tracing::debug!(%what, status = x.0, bytes = x.2.len(), "ARM answered");
                    x
                }
                Err(e) => {
                    let cause = crate::azure::blob::sanitize(&crate::azure::error_text(&e));
                    if conditional {
                        note(format!("no answer ({cause}); it may have been applied"));
                        return Err(ArmError::Unconfirmed {
                            what,
                            cause,
                            status: None,
                        });
                    }
                    self.check_limits(&what)?;
                    if tries.server < self.inner.config.retry.max_server_retries {
                        let d = self.backoff(tries.server);
                        tries.server += 1;
                        tracing::warn!(%what, attempt = tries.server, "transport error, retrying: {cause}");
                        note(format!("no answer ({cause}); sent again"));
                        self.wait(&what, d).await?;
                        continue;
                    }
                    note(format!("no answer ({cause})"));
                    return Err(lost(what, cause, e.is_timeout()));
                }
            };
            if (200..300).contains(&status) {
                note(format!("accepted (HTTP {status})"));
                return Ok((
                    ArmResponse {
                        status,
                        headers,
                        body: bytes,
                    },
                    noted,
                ));
            }
            let retry_after =
                parse_retry_after(headers.get("retry-after").and_then(|v| v.to_str().ok()));
            let error = ArmErrorBody::parse(&bytes);
            note(format!("refused: HTTP {status} {error}"));
            if conditional && (status >= 500 || status == 408) {
                return Err(ArmError::Unconfirmed {
                    what,
                    cause: format!("HTTP {status}: {error}"),
                    status: Some(status),
                });
            }
            let asked =
                self.wait_after_refusal(&what, status, retry_after, &error, write, &mut tries);
            if let Some(d) = asked {
                self.wait(&what, d).await?;
                continue;
            }
            let etag = if_match.map(str::to_string);
            return Err(ArmError::from_response(
                &what,
                status,
                retry_after,
                etag,
                &bytes,
            ));
        }
    }

    /// How long to wait before sending a refused request again (429, a busy
    /// 409 on a write, a 5xx or 408), within the retry bounds; `None` when it
    /// is not sent again and the refusal is the answer.
    fn wait_after_refusal(
        &self,
        what: &str,
        status: u16,
        retry_after: Option<Duration>,
        error: &ArmErrorBody,
        write: bool,
        tries: &mut Tries,
    ) -> Option<Duration> {
        let policy = &self.inner.config.retry;
        match status {
            429 if tries.throttle < policy.max_throttle_retries => {
                tries.throttle += 1;
                let d = retry_after.unwrap_or_else(|| self.backoff(tries.throttle - 1));
                tracing::warn!(%what, attempt = tries.throttle, wait = %secs(d), "throttled (429)");
                Some(d)
            }
            409 if write && tries.busy < policy.max_busy_retries && error.is_busy() => {
                tries.busy += 1;
                let d = retry_after.unwrap_or(policy.busy_delay);
                tracing::warn!(%what, attempt = tries.busy, wait = %secs(d), "busy (409), waiting");
                Some(d)
            }
            s if (s >= 500 || s == 408) && tries.server < policy.max_server_retries => {
                tries.server += 1;
                let d = retry_after
                    .unwrap_or(Duration::ZERO)
                    .max(self.backoff(tries.server - 1));
                tracing::warn!(%what, attempt = tries.server, status = s, "server error, retrying");
                Some(d)
            }
            _ => None,
        }
    }

    /// GET and decode.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        url: &Url,
    ) -> Result<(T, ArmResponse), ArmError> {
        let rsp = self.send(reqwest::Method::GET, url, None, None).await?;
        let value = rsp.json(url.path())?;
        Ok((value, rsp))
    }

    /// A write (PUT/PATCH/POST) followed by its long-running operation, under
    /// the client's write lock (one write in flight). Returns the write's own
    /// response; read the resource again for its final state. The journal
    /// notes how the operation ended.
    pub async fn write_and_wait(
        &self,
        method: reqwest::Method,
        url: &Url,
        body: Option<&serde_json::Value>,
        if_match: Option<&str>,
    ) -> Result<ArmResponse, ArmError> {
        let _guard = self.inner.write_lock.lock().await;
        let (rsp, noted) = self.send_noted(method.clone(), url, body, if_match).await?;
        let what = format!("{method} {}", url.path());
        let ended = self.wait_operation(&what, &rsp, url).await;
        if let Some(at) = noted {
            let how = match &ended {
                Ok(()) => "operation done".to_string(),
                Err(ArmError::OperationFailed { status, error, .. }) => {
                    format!("operation {status}: {error}")
                }
                Err(e) => format!("operation not seen to end: {e}"),
            };
            self.inner
                .journal
                .set_result(at, format!("accepted (HTTP {}); {how}", rsp.status));
        }
        ended.map(|()| rsp)
    }

    /// Polls `resource` until its provisioning state leaves a transitional
    /// state (a write whose answer was lost has no operation to poll).
    pub async fn wait_until_settled(&self, what: &str, resource: &Url) -> Result<(), ArmError> {
        let first = ArmResponse {
            status: 200,
            headers: reqwest::header::HeaderMap::new(),
            body: Bytes::new(),
        };
        let rsp = self
            .send(reqwest::Method::GET, resource, None, None)
            .await?;
        match provisioning_state(&rsp.body).as_deref() {
            Some(s) if !is_terminal_ok(s) && !is_terminal_failed(s) => {
                self.poll_resource(what, resource, &first).await
            }
            _ => Ok(()),
        }
    }

    /// Polls the operation started by `first` until it ends.
    async fn wait_operation(
        &self,
        what: &str,
        first: &ArmResponse,
        resource: &Url,
    ) -> Result<(), ArmError> {
        let parse = |h: &str| -> Option<Result<Url, ArmError>> {
            first.header(h).map(|v| {
                Url::parse(v).map_err(|e| ArmError::Decode {
                    what: format!("{h} header of {what}"),
                    message: e.to_string(),
                })
            })
        };
        let poll = if let Some(u) = parse("azure-asyncoperation") {
            Poll::AsyncOperation(u?)
        } else if let Some(u) = parse("location") {
            Poll::Location(u?)
        } else {
            // No operation header: a 200/201 body may still say "Updating";
            // then poll the resource itself.
            let state = provisioning_state(&first.body);
            match state.as_deref() {
                None => return Ok(()),
                Some(s) if is_terminal_ok(s) => return Ok(()),
                Some(s) if is_terminal_failed(s) => {
                    return Err(ArmError::OperationFailed {
                        what: what.to_string(),
                        status: s.to_string(),
                        error: ArmErrorBody::default(),
                    })
                }
                Some(_) => return self.poll_resource(what, resource, first).await,
            }
        };
        let started = Instant::now();
        let mut waited = Duration::ZERO;
        let mut delay = parse_retry_after(first.header("retry-after"))
            .unwrap_or(self.inner.config.poll_interval);
        loop {
            if waited.max(started.elapsed()) >= self.inner.config.lro_timeout {
                return Err(ArmError::Timeout {
                    what: format!(
                        "{what}: the operation did not finish within {}",
                        secs(self.inner.config.lro_timeout)
                    ),
                });
            }
            self.wait(&format!("polling {what}"), delay).await?;
            waited += delay;
            match &poll {
                Poll::AsyncOperation(u) => {
                    self.check_same_origin(u)?;
                    let rsp = self.send(reqwest::Method::GET, u, None, None).await?;
                    let status: OperationStatus =
                        rsp.json(&format!("operation status of {what}"))?;
                    match status.status.as_str() {
                        s if is_terminal_ok(s) => return Ok(()),
                        s if is_terminal_failed(s) => {
                            return Err(ArmError::OperationFailed {
                                what: what.to_string(),
                                status: s.to_string(),
                                error: status
                                    .error
                                    .map(|e| ArmErrorBody {
                                        code: e.code.unwrap_or_default(),
                                        message: e.message.unwrap_or_default(),
                                    })
                                    .unwrap_or_default(),
                            })
                        }
                        _ => {
                            delay = parse_retry_after(rsp.header("retry-after"))
                                .unwrap_or(self.inner.config.poll_interval);
                        }
                    }
                }
                Poll::Location(u) => {
                    self.check_same_origin(u)?;
                    // The operation's failure comes back as the poll's error status.
                    let rsp = match self.send(reqwest::Method::GET, u, None, None).await {
                        Ok(rsp) => rsp,
                        Err(
                            ArmError::Server { status, error, .. }
                            | ArmError::BadRequest { status, error, .. }
                            | ArmError::Quota { status, error, .. },
                        ) => {
                            return Err(ArmError::OperationFailed {
                                what: what.to_string(),
                                status: format!("Failed (HTTP {status})"),
                                error,
                            })
                        }
                        Err(ArmError::Conflict { error, .. }) => {
                            return Err(ArmError::OperationFailed {
                                what: what.to_string(),
                                status: "Failed (HTTP 409)".into(),
                                error,
                            })
                        }
                        Err(e) => return Err(e),
                    };
                    if rsp.status != 202 {
                        return Ok(());
                    }
                    delay = parse_retry_after(rsp.header("retry-after"))
                        .unwrap_or(self.inner.config.poll_interval);
                }
            }
        }
    }

    async fn poll_resource(
        &self,
        what: &str,
        resource: &Url,
        first: &ArmResponse,
    ) -> Result<(), ArmError> {
        let started = Instant::now();
        let mut waited = Duration::ZERO;
        let mut delay = parse_retry_after(first.header("retry-after"))
            .unwrap_or(self.inner.config.poll_interval);
        loop {
            if waited.max(started.elapsed()) >= self.inner.config.lro_timeout {
                return Err(ArmError::Timeout {
                    what: format!("{what}: the resource did not leave its transitional state"),
                });
            }
            self.wait(&format!("polling {what}"), delay).await?;
            waited += delay;
            let rsp = self
                .send(reqwest::Method::GET, resource, None, None)
                .await?;
            match provisioning_state(&rsp.body).as_deref() {
                None => return Ok(()),
                Some(s) if is_terminal_ok(s) => return Ok(()),
                Some(s) if is_terminal_failed(s) => {
                    return Err(ArmError::OperationFailed {
                        what: what.to_string(),
                        status: s.to_string(),
                        error: ArmErrorBody::default(),
                    })
                }
                Some(_) => {
                    delay = parse_retry_after(rsp.header("retry-after"))
                        .unwrap_or(self.inner.config.poll_interval)
                }
            }
        }
    }
}

/// The retries one call has used.
#[derive(Debug, Default)]
struct Tries {
    server: u32,
    throttle: u32,
    busy: u32,
}

/// A request that got no answer, after the retries.
fn lost(what: String, cause: String, timeout: bool) -> ArmError {
    if timeout {
        ArmError::Timeout {
            what: format!("{what}: {cause}"),
        }
    } else {
        ArmError::Transport {
            what,
            message: cause,
        }
    }
}

/// Resolves once `stop` is set (checked every 50 ms).
async fn stopped(stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A duration for people: `1.5s`, `30s`, `86400s`.
pub fn secs(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.3}s", d.as_secs_f64())
            .trim_end_matches('0')
            .to_string()
    }
}

#[derive(serde::Deserialize)]
struct OperationStatus {
    #[serde(default)]
    status: String,
    #[serde(default)]
    error: Option<OperationError>,
}

#[derive(serde::Deserialize)]
struct OperationError {
    code: Option<String>,
    message: Option<String>,
}

fn is_terminal_ok(s: &str) -> bool {
    s.eq_ignore_ascii_case("succeeded")
}

fn is_terminal_failed(s: &str) -> bool {
    s.eq_ignore_ascii_case("failed") || s.eq_ignore_ascii_case("canceled")
}

/// `properties.provisioningState` of a resource body, if any.
fn provisioning_state(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("properties")?
        .get("provisioningState")?
        .as_str()
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_in_the_unit_interval() {
        let j = XorShiftJitter::new(42);
        for _ in 0..1000 {
            let x = j.next_unit();
            assert!((0.0..1.0).contains(&x), "{x}");
        }
    }

    #[test]
    fn config_from_variables_overrides_endpoint_audience_and_versions() {
        let get = |k: &str| match k {
            ENDPOINT_ENV => Some("https://127.0.0.1:8443/".to_string()),
            COMPUTE_API_VERSION_ENV => Some("2024-07-01".to_string()),
            _ => None,
        };
        let c = ArmConfig::from_lookup(get).unwrap();
        assert_eq!(c.endpoint.as_str(), "https://127.0.0.1:8443/");
        assert_eq!(c.audience, "https://127.0.0.1:8443");
        assert_eq!(c.compute_api_version, "2024-07-01");
        assert_eq!(c.aks_api_version, AKS_API_VERSION);
        let d = ArmConfig::from_lookup(|_| None).unwrap();
        assert_eq!(d.audience, PUBLIC_ENDPOINT);
    }

    #[test]
    fn plain_http_endpoints_are_refused() {
        // Building a CLI credential runs nothing until a token is asked for.
        let cred = azure_identity::AzureCliCredential::new(None).unwrap();
        let config = ArmConfig::with_endpoint("http://127.0.0.1:8080").unwrap();
        let http =
            crate::azure::credential::http_client(crate::azure::credential::Roots::System).unwrap();
        let err = ArmClient::new(config, cred, http).unwrap_err();
        assert!(err.to_string().contains("not https"), "{err}");
    }

    #[test]
    fn provisioning_state_is_read_from_properties() {
        assert_eq!(
            provisioning_state(br#"{"properties":{"provisioningState":"Updating"}}"#).as_deref(),
            Some("Updating")
        );
        assert_eq!(provisioning_state(b"{}"), None);
    }
}
