//! Starts the ARM emulator (the `arm-emulator` dev-dependency) in-process for
//! a test, on its own thread and runtime, and points the ARM client and an
//! Entra ID client-secret credential at it. The emulator stops on Drop (and
//! with this process).
//!
//! Every ARM request the emulator logged is checked against the list the
//! custom role is generated from (`mlscaler::arm::operations`), before the
//! log is cleared and when the emulator is dropped: a request the client
//! sends but the role lacks fails the test that sent it.

#![allow(dead_code)]

use arm_emulator::{LogEntry, Principal, Seed};
use azure_core::credentials::{Secret, TokenCredential};
use mlscaler::arm::{ArmClient, ArmConfig, Blocking, Jitter, Sleeper};
use mlscaler::azure::credential::{self, AuthChoice, AuthSettings};
use serde_json::Value;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const TENANT: &str = "00000000-0000-0000-0000-0000000000aa";
pub const CLIENT_ID: &str = "emulator-client";
pub const CLIENT_SECRET: &str = "emulator-secret-do-not-log";

pub struct Emulator {
    pub base_url: String,
    pub ca_path: PathBuf,
    // Dropped first: the server stops before its CA file is removed.
    _server: arm_emulator::Handle,
    _dir: tempfile::TempDir,
    /// Requests the test sent itself ([`Emulator::raw_get`]), not the client.
    own_requests: Mutex<Vec<String>>,
}

/// Records every wait instead of timing it; really sleeps at most 20 ms so
/// the emulator's operations (a few hundred ms) still finish.
#[derive(Default)]
pub struct RecordingSleeper {
    pub waits: Mutex<Vec<Duration>>,
}

impl RecordingSleeper {
    pub fn waits(&self) -> Vec<Duration> {
        self.waits.lock().unwrap().clone()
    }
}

impl Sleeper for RecordingSleeper {
    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        self.waits.lock().unwrap().push(d);
        Box::pin(tokio::time::sleep(d.min(Duration::from_millis(20))))
    }
}

pub struct HalfJitter;
impl Jitter for HalfJitter {
    fn next_unit(&self) -> f64 {
        0.5
    }
}

impl Emulator {
    /// The environment that points `mlscaler` at this emulator, signing in
    /// as the test service principal with `secret`.
    pub fn cli_env(&self, secret: &str) -> Vec<(&'static str, String)> {
        vec![
            ("MLSCALER_ARM_ENDPOINT", self.base_url.clone()),
            ("AZURE_AUTHORITY_HOST", self.base_url.clone()),
            ("MLSCALER_CA_CERT", self.ca_path.display().to_string()),
            ("AZURE_TENANT_ID", TENANT.to_string()),
            ("AZURE_CLIENT_ID", CLIENT_ID.to_string()),
            ("AZURE_CLIENT_SECRET", secret.to_string()),
        ]
    }

    /// Starts an emulator with `seed` (JSON of an `arm_emulator::Seed`).
    pub fn start(seed: &Value) -> Emulator {
        let seed: Seed = serde_json::from_value(seed.clone())
            .unwrap_or_else(|e| panic!("invalid emulator seed: {e}\n{seed:#}"));
        let dir = tempfile::tempdir().expect("temp dir for the emulator");
        let principal = Principal {
            tenant: TENANT.into(),
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
        };
        let server = arm_emulator::spawn(&seed, principal, dir.path())
            .unwrap_or_else(|e| panic!("start the ARM emulator: {e}"));
        Emulator {
            base_url: server.base_url.clone(),
            ca_path: server.ca_path.clone(),
            _server: server,
            _dir: dir,
            own_requests: Mutex::new(Vec::new()),
        }
    }

    pub fn auth_settings(&self, secret: &str) -> AuthSettings {
        AuthSettings {
            tenant_id: Some(TENANT.into()),
            client_id: Some(CLIENT_ID.into()),
            client_secret: Some(Secret::new(secret.to_string())),
            authority_host: Some(self.base_url.clone()),
            ca_cert: Some(self.ca_path.clone()),
            ..Default::default()
        }
    }

    pub fn credential_with_secret(&self, secret: &str) -> Arc<dyn TokenCredential> {
        credential::credential(AuthChoice::Auto, &self.auth_settings(secret))
            .expect("credential for the emulator")
    }

    /// ARM configuration for this emulator (api-versions as the defaults).
    pub fn config(&self) -> ArmConfig {
        let mut c = ArmConfig::with_endpoint(&self.base_url).unwrap();
        c.poll_interval = Duration::from_secs(2);
        c
    }

    pub fn client_with(
        &self,
        config: ArmConfig,
        secret: &str,
        sleeper: Arc<RecordingSleeper>,
    ) -> ArmClient {
        let http = credential::http_client(credential::Roots::Only(&self.ca_path)).unwrap();
        ArmClient::new(config, self.credential_with_secret(secret), http)
            .unwrap()
            .with_timing(sleeper, Arc::new(HalfJitter))
    }

    /// A client with the right secret and a recording sleeper.
    pub fn client(&self) -> (ArmClient, Arc<RecordingSleeper>) {
        let sleeper = Arc::new(RecordingSleeper::default());
        (
            self.client_with(self.config(), CLIENT_SECRET, sleeper.clone()),
            sleeper,
        )
    }

    fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.try_admin(method, path, body)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let http = credential::http_client(credential::Roots::Only(&self.ca_path))
            .map_err(|e| e.to_string())?;
        let url = format!("{}{path}", self.base_url);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async move {
            let mut req = http.request(method, &url);
            if let Some(b) = body {
                req = req
                    .header("Content-Type", "application/json")
                    .body(serde_json::to_vec(&b).unwrap());
            }
            let rsp = req
                .send()
                .await
                .map_err(|e| format!("admin call {url}: {e}"))?;
            let status = rsp.status();
            let bytes = rsp.bytes().await.map_err(|e| e.to_string())?;
            if !status.is_success() {
                return Err(format!("admin {url}: {status} {bytes:?}"));
            }
            Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
        })
    }

    /// The logged requests that are the client's ARM calls but match no
    /// entry of `mlscaler::arm::operations::OPERATIONS`, as `METHOD path`.
    /// Token requests (Entra ID, not ARM) and the test's own raw requests
    /// are left out.
    pub fn unlisted_operations(&self, log: &[LogEntry]) -> Vec<String> {
        let own = self.own_requests.lock().unwrap().clone();
        log.iter()
            .filter(|e| !e.path.contains("/oauth2/"))
            .filter(|e| !own.contains(&format!("{} {}", e.method, e.path)))
            .filter(|e| {
                let path = emulator_poll_path_as_azure_sends_it(&e.path);
                mlscaler::arm::operations::find(&e.method, &path).is_none()
            })
            .map(|e| format!("{} {}", e.method, e.path))
            .collect()
    }

    /// Panics if a logged ARM request is not in the operations list (see
    /// [`Emulator::unlisted_operations`]).
    pub fn check_operations(&self) {
        let unlisted = self.unlisted_operations(&self.requests());
        assert!(
            unlisted.is_empty(),
            "ARM requests missing from src/arm/operations.rs (and so from the custom role): {unlisted:#?}"
        );
    }

    pub fn add_faults(&self, faults: Value) {
        self.admin(reqwest::Method::POST, "/_emulator/faults", Some(faults));
    }

    pub fn requests(&self) -> Vec<LogEntry> {
        serde_json::from_value(self.admin(reqwest::Method::GET, "/_emulator/requests", None))
            .unwrap()
    }

    /// Logged ARM calls (not token requests) with this method.
    pub fn calls(&self, method: &str) -> Vec<LogEntry> {
        self.requests()
            .into_iter()
            .filter(|e| e.method == method && !e.path.contains("/oauth2/"))
            .collect()
    }

    /// Sends the answers that `hold` faults hold back.
    pub fn release(&self) {
        self.admin(reqwest::Method::POST, "/_emulator/release", None);
    }

    /// Logged ARM writes (PUT, PATCH, POST, DELETE; not token requests).
    pub fn writes(&self) -> Vec<LogEntry> {
        self.requests()
            .into_iter()
            .filter(|e| e.method != "GET" && !e.path.contains("/oauth2/"))
            .collect()
    }

    /// Clears the request log (after checking it, see [`Emulator::check_operations`]).
    pub fn clear_log(&self) {
        self.check_operations();
        self.admin(reqwest::Method::DELETE, "/_emulator/requests", None);
    }

    pub fn state(&self) -> Value {
        self.admin(reqwest::Method::GET, "/_emulator/state", None)
    }

    /// An authorized raw GET of an ARM path (for shape checks). `rt` must be
    /// the runtime the client is used on (reqwest's pooled connections live
    /// on the runtime that opened them).
    pub fn raw_get(&self, rt: &Blocking, client: &ArmClient, path_and_query: &str) -> Value {
        let url = url::Url::parse(&format!("{}{path_and_query}", self.base_url)).unwrap();
        self.own_requests
            .lock()
            .unwrap()
            .push(format!("GET {}", url.path()));
        rt.block_on(async {
            let rsp = client
                .send(reqwest::Method::GET, &url, None, None)
                .await
                .unwrap_or_else(|e| panic!("GET {path_and_query}: {e}"));
            serde_json::from_slice(&rsp.body).unwrap()
        })
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // Check the log of a test that passed so far (a failing test has
        // said what failed already; a dead emulator has no log to check).
        let unlisted = if std::thread::panicking() {
            Vec::new()
        } else {
            match self.try_admin(reqwest::Method::GET, "/_emulator/requests", None) {
                Ok(v) => match serde_json::from_value::<Vec<LogEntry>>(v) {
                    Ok(log) => self.unlisted_operations(&log),
                    Err(_) => Vec::new(),
                },
                Err(_) => Vec::new(),
            }
        };
        assert!(
            unlisted.is_empty(),
            "ARM requests missing from src/arm/operations.rs (and so from the custom role): {unlisted:#?}"
        );
    }
}

/// The emulator answers a scale set action with a `Location` of
/// `.../providers/Microsoft.Compute/locations/L/operationResults/ID`; Azure
/// Compute reports its operations under `.../locations/L/operations/ID`
/// (RBAC action `Microsoft.Compute/locations/operations/read`; Compute has
/// no `operationResults` action). The client polls whatever `Location`
/// says, so this maps the emulator's shape to Azure's before the lookup.
/// Every other path is checked as it is.
fn emulator_poll_path_as_azure_sends_it(path: &str) -> String {
    let segs: Vec<&str> = path.split('/').collect();
    match segs.as_slice() {
        ["", subs, _, providers, provider, locations, _, kind, _]
            if subs.eq_ignore_ascii_case("subscriptions")
                && providers.eq_ignore_ascii_case("providers")
                && provider.eq_ignore_ascii_case("Microsoft.Compute")
                && locations.eq_ignore_ascii_case("locations")
                && kind.eq_ignore_ascii_case("operationResults") =>
        {
            let mut fixed = segs.clone();
            fixed[7] = "operations";
            fixed.join("/")
        }
        _ => path.to_string(),
    }
}
