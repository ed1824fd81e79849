//! The emulator's state machine: one request in, one response out, no I/O.
//! Resources are keyed by their lower-cased id (ARM ids are case-insensitive).

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

pub const AKS_API_VERSION: &str = "2026-08-01";
pub const COMPUTE_API_VERSION: &str = "2024-03-01";

/// The resources to start with (a JSON file given to `arm-emulator --seed`).
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Seed {
    #[serde(default)]
    pub clusters: Vec<SeedCluster>,
    #[serde(default)]
    pub scale_sets: Vec<SeedVmss>,
    #[serde(default)]
    pub quota: Option<SeedQuota>,
    /// How long a write's operation runs before it succeeds.
    #[serde(default = "default_delay_ms")]
    pub operation_delay_ms: u64,
    /// `Retry-After` (seconds) on operation headers and busy answers.
    #[serde(default = "default_retry_after")]
    pub retry_after_secs: u64,
}

fn default_delay_ms() -> u64 {
    300
}
fn default_retry_after() -> u64 {
    1
}
fn default_location() -> String {
    "westeurope".into()
}
fn default_running() -> String {
    "running".into()
}
fn default_k8s() -> String {
    "1.33.2".into()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedCluster {
    pub subscription: String,
    pub resource_group: String,
    pub name: String,
    #[serde(default = "default_location")]
    pub location: String,
    #[serde(default = "default_k8s")]
    pub kubernetes_version: String,
    #[serde(default)]
    pub pools: Vec<SeedPool>,
}

/// A pool: its name and its `properties` exactly as ARM would show them
/// (only fields of the spec's `ManagedClusterAgentPoolProfileProperties`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SeedPool {
    pub name: String,
    pub properties: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedVmss {
    pub subscription: String,
    pub resource_group: String,
    pub name: String,
    #[serde(default = "default_location")]
    pub location: String,
    pub sku_name: String,
    pub capacity: u64,
    #[serde(default)]
    pub provisioning_state: Option<String>,
    /// Instances; when empty, `capacity` running instances `0..capacity`.
    #[serde(default)]
    pub instances: Vec<SeedVm>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedVm {
    pub instance_id: String,
    #[serde(default = "default_running")]
    pub power_state: String,
    #[serde(default)]
    pub protect_from_scale_in: bool,
}

/// A regional vCPU quota shared by every pool and scale set.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedQuota {
    pub limit_cores: u64,
    #[serde(default = "default_cores")]
    pub cores_per_node: u64,
    #[serde(default = "default_family")]
    pub family: String,
}
fn default_cores() -> u64 {
    2
}
fn default_family() -> String {
    "standardDSv2Family".into()
}

/// The service principal the token endpoint accepts.
#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant: String,
    pub client_id: String,
    pub client_secret: String,
}

/// A fault to inject into the next `times` matching requests.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fault {
    /// HTTP method to match (any when absent).
    #[serde(default)]
    pub method: Option<String>,
    /// Case-insensitive substring of the path to match (any when absent).
    #[serde(default)]
    pub path_contains: Option<String>,
    #[serde(default = "one")]
    pub times: u32,
    /// Answer with this status and an ARM error body instead of handling.
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// Delay the answer by this long (then answer as configured).
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// Accept the write but make its long-running operation end Failed.
    #[serde(default)]
    pub fail_operation: bool,
}
fn one() -> u32 {
    1
}

/// One request as the emulator saw it (admin calls are not logged).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    pub seq: u64,
    pub method: String,
    pub path: String,
    pub query: String,
    pub if_match: Option<String>,
    pub authorized: bool,
    pub status: u16,
    /// Request body (JSON, or null).
    pub body: Value,
    /// Response headers and body (tokens are not logged).
    pub response_headers: BTreeMap<String, String>,
    pub response: Value,
}

/// A request, already read.
#[derive(Debug, Clone)]
pub struct EmuRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    /// Lower-cased names.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

/// A response to write, possibly after `delay`.
#[derive(Debug, Clone)]
pub struct EmuResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
    pub delay: Option<Duration>,
}

impl EmuResponse {
    fn json(status: u16, body: Value) -> Self {
        EmuResponse {
            status,
            headers: vec![(
                "Content-Type".to_string(),
                "application/json; charset=utf-8".to_string(),
            )],
            body: Some(body),
            delay: None,
        }
    }
    fn empty(status: u16) -> Self {
        EmuResponse {
            status,
            headers: Vec::new(),
            body: None,
            delay: None,
        }
    }
    fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

fn arm_error(status: u16, code: &str, message: impl Into<String>) -> EmuResponse {
    EmuResponse::json(
        status,
        json!({ "error": { "code": code, "message": message.into() } }),
    )
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Pool {
    id: String,
    name: String,
    cluster: String,
    props: Map<String, Value>,
    etag_n: u64,
    busy_op: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Cluster {
    id: String,
    name: String,
    location: String,
    subscription: String,
    kubernetes_version: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Vm {
    instance_id: String,
    power: String,
    protect_in: bool,
    protect_actions: bool,
    /// False after a change of the scale set's model (its size) until the
    /// instance is upgraded (manualUpgrade, under the Manual upgrade policy).
    latest_model: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct ScaleSet {
    id: String,
    name: String,
    location: String,
    subscription: String,
    sku_name: String,
    capacity: u64,
    provisioning_state: String,
    etag_n: u64,
    instances: Vec<Vm>,
    next_instance: u64,
    busy_op: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
enum Effect {
    PoolProps {
        key: String,
        props: Map<String, Value>,
    },
    VmssCapacity {
        key: String,
        capacity: u64,
        /// A new VM size (the model changes: instances are not on it until upgraded).
        sku_name: Option<String>,
    },
    Upgrade {
        key: String,
        ids: Vec<String>,
    },
    Power {
        key: String,
        ids: Vec<String>,
        power: String,
    },
    DeleteVms {
        key: String,
        ids: Vec<String>,
    },
    Protect {
        key: String,
        id: String,
        protect_in: bool,
        protect_actions: bool,
    },
}

impl Effect {
    fn key(&self) -> &str {
        match self {
            Effect::PoolProps { key, .. }
            | Effect::VmssCapacity { key, .. }
            | Effect::Upgrade { key, .. }
            | Effect::Power { key, .. }
            | Effect::DeleteVms { key, .. }
            | Effect::Protect { key, .. } => key,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Op {
    id: String,
    #[serde(skip)]
    done_at: Instant,
    status: String,
    effect: Effect,
    failure: Option<(String, String)>,
}

/// All of the emulator's state.
#[derive(Debug)]
pub struct State {
    base_url: String,
    principal: Principal,
    delay: Duration,
    retry_after: u64,
    quota: Option<SeedQuota>,
    clusters: BTreeMap<String, Cluster>,
    pools: BTreeMap<String, Pool>,
    scale_sets: BTreeMap<String, ScaleSet>,
    ops: BTreeMap<String, Op>,
    faults: Vec<Fault>,
    log: Vec<LogEntry>,
    tokens: HashSet<String>,
    counter: u64,
}

fn pool_id(sub: &str, rg: &str, cluster: &str, pool: &str) -> String {
    format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerService/managedClusters/{cluster}/agentPools/{pool}")
}

fn cluster_id(sub: &str, rg: &str, cluster: &str) -> String {
    format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerService/managedClusters/{cluster}")
}

fn vmss_id(sub: &str, rg: &str, name: &str) -> String {
    format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachineScaleSets/{name}")
}

fn as_u64(v: Option<&Value>) -> Option<u64> {
    v.and_then(Value::as_u64)
}

impl State {
    pub fn new(seed: &Seed, principal: Principal, base_url: &str) -> Result<Self, String> {
        let mut s = State {
            base_url: base_url.trim_end_matches('/').to_string(),
            principal,
            delay: Duration::from_millis(seed.operation_delay_ms),
            retry_after: seed.retry_after_secs,
            quota: seed.quota.clone(),
            clusters: BTreeMap::new(),
            pools: BTreeMap::new(),
            scale_sets: BTreeMap::new(),
            ops: BTreeMap::new(),
            faults: Vec::new(),
            log: Vec::new(),
            tokens: HashSet::new(),
            counter: 0,
        };
        for c in &seed.clusters {
            let cid = cluster_id(&c.subscription, &c.resource_group, &c.name);
            s.clusters.insert(
                cid.to_ascii_lowercase(),
                Cluster {
                    id: cid.clone(),
                    name: c.name.clone(),
                    location: c.location.clone(),
                    subscription: c.subscription.clone(),
                    kubernetes_version: c.kubernetes_version.clone(),
                },
            );
            for p in &c.pools {
                if as_u64(p.properties.get("count")).is_none() {
                    return Err(format!("pool {} has no integer properties.count", p.name));
                }
                let id = pool_id(&c.subscription, &c.resource_group, &c.name, &p.name);
                let mut props = p.properties.clone();
                props
                    .entry("provisioningState")
                    .or_insert_with(|| json!("Succeeded"));
                s.pools.insert(
                    id.to_ascii_lowercase(),
                    Pool {
                        id,
                        name: p.name.clone(),
                        cluster: cid.to_ascii_lowercase(),
                        props,
                        etag_n: 1,
                        busy_op: None,
                    },
                );
            }
        }
        for v in &seed.scale_sets {
            let id = vmss_id(&v.subscription, &v.resource_group, &v.name);
            let instances: Vec<Vm> = if v.instances.is_empty() {
                (0..v.capacity)
                    .map(|i| Vm {
                        instance_id: i.to_string(),
                        power: "running".into(),
                        protect_in: false,
                        protect_actions: false,
                        latest_model: true,
                    })
                    .collect()
            } else {
                v.instances
                    .iter()
                    .map(|i| Vm {
                        instance_id: i.instance_id.clone(),
                        power: i.power_state.clone(),
                        protect_in: i.protect_from_scale_in,
                        protect_actions: false,
                        latest_model: true,
                    })
                    .collect()
            };
            let next_instance = instances
                .iter()
                .filter_map(|i| i.instance_id.parse::<u64>().ok())
                .max()
                .map_or(0, |m| m + 1);
            s.scale_sets.insert(
                id.to_ascii_lowercase(),
                ScaleSet {
                    id,
                    name: v.name.clone(),
                    location: v.location.clone(),
                    subscription: v.subscription.clone(),
                    sku_name: v.sku_name.clone(),
                    capacity: v.capacity,
                    provisioning_state: v
                        .provisioning_state
                        .clone()
                        .unwrap_or_else(|| "Succeeded".into()),
                    etag_n: 1,
                    instances,
                    next_instance,
                    busy_op: None,
                },
            );
        }
        Ok(s)
    }

    pub fn log(&self) -> &[LogEntry] {
        &self.log
    }

    fn next(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    /// Everything, for `GET /_emulator/state`.
    pub fn snapshot(&self) -> Value {
        json!({
            "pools": self.pools.values().map(|p| json!({"id": p.id, "properties": p.props, "eTag": format!("{}", p.etag_n), "busyOperation": p.busy_op})).collect::<Vec<_>>(),
            "scaleSets": self.scale_sets.values().collect::<Vec<_>>(),
            "operations": self.ops.values().collect::<Vec<_>>(),
            "faults": self.faults,
        })
    }

    /// Finishes every operation whose time has come.
    pub fn tick(&mut self, now: Instant) {
        let due: Vec<String> = self
            .ops
            .values()
            .filter(|o| o.status == "InProgress" && o.done_at <= now)
            .map(|o| o.id.clone())
            .collect();
        for id in due {
            let Some(op) = self.ops.get(&id).cloned() else {
                continue;
            };
            let ok = op.failure.is_none();
            if ok {
                self.apply(&op.effect);
            }
            let key = op.effect.key().to_string();
            if let Some(p) = self.pools.get_mut(&key) {
                p.busy_op = None;
                p.props
                    .insert("provisioningState".into(), json!("Succeeded"));
            }
            if let Some(v) = self.scale_sets.get_mut(&key) {
                v.busy_op = None;
                v.provisioning_state = "Succeeded".into();
            }
            if let Some(o) = self.ops.get_mut(&id) {
                o.status = if ok { "Succeeded" } else { "Failed" }.into();
            }
        }
    }

    fn apply(&mut self, effect: &Effect) {
        match effect {
            Effect::PoolProps { key, props } => {
                if let Some(p) = self.pools.get_mut(key) {
                    let mut props = props.clone();
                    // The autoscaler keeps the count within [minCount, maxCount].
                    if props.get("enableAutoScaling") == Some(&json!(true)) {
                        let count = as_u64(props.get("count")).unwrap_or(0);
                        let min = as_u64(props.get("minCount")).unwrap_or(count);
                        let max = as_u64(props.get("maxCount")).unwrap_or(count);
                        props.insert("count".into(), json!(count.max(min).min(max)));
                    }
                    p.props = props;
                    p.etag_n += 1;
                }
            }
            Effect::Upgrade { key, ids } => {
                if let Some(v) = self.scale_sets.get_mut(key) {
                    for i in v
                        .instances
                        .iter_mut()
                        .filter(|i| ids.contains(&i.instance_id))
                    {
                        i.latest_model = true;
                    }
                }
            }
            Effect::VmssCapacity {
                key,
                capacity,
                sku_name,
            } => {
                if let Some(v) = self.scale_sets.get_mut(key) {
                    if let Some(n) = sku_name.as_ref().filter(|n| **n != v.sku_name) {
                        v.sku_name = n.clone();
                        for i in &mut v.instances {
                            i.latest_model = false;
                        }
                    }
                    let cap = *capacity as usize;
                    while v.instances.len() < cap {
                        v.instances.push(Vm {
                            instance_id: v.next_instance.to_string(),
                            power: "running".into(),
                            protect_in: false,
                            protect_actions: false,
                            latest_model: true,
                        });
                        v.next_instance += 1;
                    }
                    // Scale-in removes unprotected instances, newest first.
                    while v.instances.len() > cap {
                        match v.instances.iter().rposition(|i| !i.protect_in) {
                            Some(pos) => {
                                v.instances.remove(pos);
                            }
                            None => break,
                        }
                    }
                    v.capacity = v.instances.len() as u64;
                    v.etag_n += 1;
                }
            }
            Effect::Power { key, ids, power } => {
                if let Some(v) = self.scale_sets.get_mut(key) {
                    for i in v
                        .instances
                        .iter_mut()
                        .filter(|i| ids.contains(&i.instance_id))
                    {
                        i.power = power.clone();
                    }
                }
            }
            Effect::DeleteVms { key, ids } => {
                if let Some(v) = self.scale_sets.get_mut(key) {
                    v.instances.retain(|i| !ids.contains(&i.instance_id));
                    v.capacity = v.instances.len() as u64;
                    v.etag_n += 1;
                }
            }
            Effect::Protect {
                key,
                id,
                protect_in,
                protect_actions,
            } => {
                if let Some(v) = self.scale_sets.get_mut(key) {
                    if let Some(i) = v.instances.iter_mut().find(|i| &i.instance_id == id) {
                        i.protect_in = *protect_in;
                        i.protect_actions = *protect_actions;
                    }
                }
            }
        }
    }

    /// Handles one non-admin request and logs it.
    pub fn handle(&mut self, req: &EmuRequest, now: Instant) -> EmuResponse {
        self.tick(now);
        let authorized = self.authorized(req);
        let rsp = self.route(req, authorized, now);
        let seq = self.next();
        let body = if req.path.contains("/oauth2/") {
            json!("(token request body not logged)")
        } else {
            serde_json::from_slice(&req.body).unwrap_or(Value::Null)
        };
        self.log.push(LogEntry {
            seq,
            method: req.method.clone(),
            path: req.path.clone(),
            query: req.query.clone(),
            if_match: req.headers.get("if-match").cloned(),
            authorized,
            status: rsp.status,
            body,
            response_headers: rsp.headers.iter().cloned().collect(),
            response: if req.path.contains("/oauth2/") {
                json!("(token response not logged)")
            } else {
                rsp.body.clone().unwrap_or(Value::Null)
            },
        });
        rsp
    }

    fn authorized(&self, req: &EmuRequest) -> bool {
        req.headers
            .get("authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
            .is_some_and(|t| self.tokens.contains(t))
    }

    fn take_fault(&mut self, req: &EmuRequest) -> Option<Fault> {
        let path = req.path.to_ascii_lowercase();
        let pos = self.faults.iter().position(|f| {
            f.times > 0
                && f.method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(&req.method))
                && f.path_contains
                    .as_deref()
                    .is_none_or(|p| path.contains(&p.to_ascii_lowercase()))
        })?;
        let f = &mut self.faults[pos];
        f.times -= 1;
        let out = f.clone();
        if f.times == 0 {
            self.faults.remove(pos);
        }
        Some(out)
    }

    pub fn add_faults(&mut self, faults: Vec<Fault>) {
        self.faults.extend(faults);
    }

    pub fn clear_faults(&mut self) {
        self.faults.clear();
    }

    pub fn clear_log(&mut self) {
        self.log.clear();
    }

    fn route(&mut self, req: &EmuRequest, authorized: bool, now: Instant) -> EmuResponse {
        let segs: Vec<String> = req
            .path
            .trim_matches('/')
            .split('/')
            .map(|s| s.to_string())
            .collect();
        let lower: Vec<String> = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
        let l: Vec<&str> = lower.iter().map(String::as_str).collect();

        if l.len() == 4 && l[1] == "oauth2" && l[2] == "v2.0" && l[3] == "token" {
            return self.token(&segs[0], req);
        }
        if !authorized {
            let has = req.headers.contains_key("authorization");
            return arm_error(
                401,
                if has {
                    "InvalidAuthenticationToken"
                } else {
                    "AuthenticationFailed"
                },
                if has {
                    "The access token is invalid."
                } else {
                    "Authentication failed. The 'Authorization' header is missing."
                },
            );
        }
        let mut fail_operation = None;
        let mut delay = None;
        if let Some(f) = self.take_fault(req) {
            delay = f.delay_ms.map(Duration::from_millis);
            if let Some(status) = f.status {
                let code = f
                    .code
                    .clone()
                    .unwrap_or_else(|| default_code(status).into());
                let message = f
                    .message
                    .clone()
                    .unwrap_or_else(|| format!("injected fault: {status} {code}"));
                let mut rsp = arm_error(status, &code, message);
                if let Some(s) = f.retry_after {
                    rsp = rsp.header("Retry-After", s.to_string());
                }
                rsp.delay = delay;
                return rsp;
            }
            if f.fail_operation {
                fail_operation = Some((
                    f.code.unwrap_or_else(|| "InternalOperationError".into()),
                    f.message
                        .unwrap_or_else(|| "injected failure of the operation".into()),
                ));
            }
        }
        let api_version = query_param(&req.query, "api-version");
        let mut rsp = self.route_arm(req, &l, &segs, api_version.as_deref(), fail_operation, now);
        rsp.delay = delay;
        rsp
    }

    fn token(&mut self, tenant: &str, req: &EmuRequest) -> EmuResponse {
        if req.method != "POST" {
            return EmuResponse::json(405, json!({"error": "invalid_request"}));
        }
        let form: HashMap<String, String> =
            form_urlencoded::parse(&req.body).into_owned().collect();
        let bad = |code: &str, desc: &str, n: u32| {
            EmuResponse::json(
                if code == "invalid_client" { 401 } else { 400 },
                json!({"error": code, "error_description": desc, "error_codes": [n]}),
            )
        };
        if !tenant.eq_ignore_ascii_case(&self.principal.tenant) {
            return bad(
                "invalid_request",
                &format!("AADSTS90002: Tenant '{tenant}' not found."),
                90002,
            );
        }
        if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
            return bad(
                "unsupported_grant_type",
                "AADSTS70003: The app requested an unsupported grant type.",
                70003,
            );
        }
        if form.get("client_id") != Some(&self.principal.client_id) {
            return bad(
                "unauthorized_client",
                "AADSTS700016: Application not found in the directory.",
                700016,
            );
        }
        if form.get("client_secret") != Some(&self.principal.client_secret) {
            return bad(
                "invalid_client",
                "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
                7000215,
            );
        }
        let n = self.next();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let token = format!("emu.{n:x}.{nanos:x}");
        self.tokens.insert(token.clone());
        EmuResponse::json(
            200,
            json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}),
        )
    }

    fn route_arm(
        &mut self,
        req: &EmuRequest,
        l: &[&str],
        segs: &[String],
        api_version: Option<&str>,
        fail: Option<(String, String)>,
        now: Instant,
    ) -> EmuResponse {
        let m = req.method.as_str();
        if l.len() < 2 || l[0] != "subscriptions" {
            return arm_error(
                404,
                "InvalidResourceType",
                format!("no route for {}", req.path),
            );
        }
        let provider = l
            .iter()
            .position(|s| *s == "providers")
            .and_then(|i| l.get(i + 1).copied());
        let want = match provider {
            Some("microsoft.containerservice") => AKS_API_VERSION,
            Some("microsoft.compute") => COMPUTE_API_VERSION,
            _ => {
                return arm_error(
                    404,
                    "InvalidResourceType",
                    format!("no route for {}", req.path),
                )
            }
        };
        match api_version {
            Some(v) if v == want => {}
            other => {
                return arm_error(
                    400,
                    if other.is_none() {
                        "MissingApiVersionParameter"
                    } else {
                        "InvalidApiVersionParameter"
                    },
                    format!(
                        "The api-version '{}' is invalid. The supported versions are '{want}'.",
                        other.unwrap_or("")
                    ),
                )
            }
        }
        // /subscriptions/S/providers/P/locations/L/operations/ID (status) or operationResults/ID
        if l.len() == 8 && l[2] == "providers" && l[4] == "locations" {
            return match l[6] {
                "operations" => self.op_status(&segs[7]),
                "operationresults" => self.op_result(&segs[7]),
                _ => arm_error(404, "NotFound", "no such operation endpoint"),
            };
        }
        if l.len() < 8 || l[2] != "resourcegroups" || l[4] != "providers" {
            return arm_error(
                404,
                "InvalidResourceType",
                format!("no route for {}", req.path),
            );
        }
        let rest = &l[6..];
        let base_lower = l[..8].join("/");
        let key = format!("/{base_lower}");
        match (provider, rest) {
            (Some("microsoft.containerservice"), ["managedclusters", _]) if m == "GET" => {
                self.get_cluster(&key)
            }
            (Some("microsoft.containerservice"), ["managedclusters", _, "agentpools"])
                if m == "GET" =>
            {
                self.list_pools(&key)
            }
            (Some("microsoft.containerservice"), ["managedclusters", _, "agentpools", _]) => {
                let pkey = format!("/{}", l[..10].join("/"));
                match m {
                    "GET" => self.get_pool(&pkey),
                    "PUT" => self.put_pool(&pkey, req, fail, now),
                    _ => arm_error(
                        405,
                        "MethodNotAllowed",
                        format!("{m} is not supported here"),
                    ),
                }
            }
            (Some("microsoft.compute"), ["virtualmachinescalesets", _]) => match m {
                "GET" => self.get_vmss(&key),
                "PATCH" => self.patch_vmss(&key, req, fail, now),
                _ => arm_error(
                    405,
                    "MethodNotAllowed",
                    format!("{m} is not supported here"),
                ),
            },
            (Some("microsoft.compute"), ["virtualmachinescalesets", _, "virtualmachines"])
                if m == "GET" =>
            {
                let expand = query_param(&req.query, "$expand")
                    .is_some_and(|v| v.eq_ignore_ascii_case("instanceView"));
                self.list_vms(&key, expand)
            }
            (Some("microsoft.compute"), ["virtualmachinescalesets", _, "virtualmachines", _]) => {
                let iid = &segs[9];
                match m {
                    "GET" => self.get_vm(&key, iid),
                    "PUT" => self.put_vm(&key, iid, req, fail, now),
                    _ => arm_error(
                        405,
                        "MethodNotAllowed",
                        format!("{m} is not supported here"),
                    ),
                }
            }
            (Some("microsoft.compute"), ["virtualmachinescalesets", _, action])
                if m == "POST"
                    && matches!(*action, "start" | "deallocate" | "delete" | "manualupgrade") =>
            {
                self.instance_action(&key, action, req, fail, now)
            }
            _ => arm_error(
                404,
                "InvalidResourceType",
                format!("no route for {} {}", m, req.path),
            ),
        }
    }

    fn new_op(&mut self, effect: Effect, fail: Option<(String, String)>, now: Instant) -> String {
        let id = format!(
            "{:08x}-0000-4000-8000-{:012x}",
            self.next(),
            now.elapsed().as_nanos() as u64 & 0xffff_ffff_ffff
        );
        self.ops.insert(
            id.clone(),
            Op {
                id: id.clone(),
                done_at: now + self.delay,
                status: "InProgress".into(),
                effect,
                failure: fail,
            },
        );
        id
    }

    fn op_url(
        &self,
        sub: &str,
        provider: &str,
        location: &str,
        kind: &str,
        id: &str,
        api: &str,
    ) -> String {
        format!(
            "{}/subscriptions/{sub}/providers/{provider}/locations/{location}/{kind}/{id}?api-version={api}",
            self.base_url
        )
    }

    fn op_status(&self, id: &str) -> EmuResponse {
        let Some(op) = self.ops.get(id) else {
            return arm_error(404, "NotFound", format!("operation {id} not found"));
        };
        let mut body = json!({"id": id, "name": id, "status": op.status});
        if let Some((code, message)) = &op.failure {
            if op.status == "Failed" {
                body["error"] = json!({"code": code, "message": message});
            }
        }
        let mut rsp = EmuResponse::json(200, body);
        if op.status == "InProgress" {
            rsp = rsp.header("Retry-After", self.retry_after.to_string());
        }
        rsp
    }

    fn op_result(&self, id: &str) -> EmuResponse {
        let Some(op) = self.ops.get(id) else {
            return arm_error(404, "NotFound", format!("operation {id} not found"));
        };
        match (op.status.as_str(), &op.failure) {
            ("InProgress", _) => {
                EmuResponse::empty(202).header("Retry-After", self.retry_after.to_string())
            }
            ("Failed", Some((code, message))) => arm_error(400, code, message.clone()),
            _ => EmuResponse::empty(200),
        }
    }

    // ---- AKS ----

    fn pool_body(p: &Pool) -> Value {
        let mut props = p.props.clone();
        props.insert("eTag".into(), json!(format!("{}", p.etag_n)));
        json!({
            "id": p.id,
            "name": p.name,
            "type": "Microsoft.ContainerService/managedClusters/agentPools",
            "properties": props,
        })
    }

    fn get_cluster(&self, key: &str) -> EmuResponse {
        let Some(c) = self.clusters.get(key) else {
            return arm_error(
                404,
                "ResourceNotFound",
                format!("The Resource '{key}' was not found."),
            );
        };
        let profiles: Vec<Value> = self
            .pools
            .values()
            .filter(|p| p.cluster == key)
            .map(|p| {
                let mut prof = Map::new();
                prof.insert("name".into(), json!(p.name));
                for k in [
                    "count",
                    "vmSize",
                    "mode",
                    "enableAutoScaling",
                    "minCount",
                    "maxCount",
                    "provisioningState",
                    "orchestratorVersion",
                    "osType",
                ] {
                    if let Some(v) = p.props.get(k) {
                        prof.insert(k.into(), v.clone());
                    }
                }
                Value::Object(prof)
            })
            .collect();
        let busy = self
            .pools
            .values()
            .any(|p| p.cluster == key && p.busy_op.is_some());
        EmuResponse::json(
            200,
            json!({
                "id": c.id,
                "name": c.name,
                "type": "Microsoft.ContainerService/ManagedClusters",
                "location": c.location,
                "properties": {
                    "provisioningState": if busy { "Updating" } else { "Succeeded" },
                    "powerState": {"code": "Running"},
                    "kubernetesVersion": c.kubernetes_version,
                    "currentKubernetesVersion": c.kubernetes_version,
                    "dnsPrefix": c.name,
                    "agentPoolProfiles": profiles,
                }
            }),
        )
    }

    fn list_pools(&self, cluster_key: &str) -> EmuResponse {
        if !self.clusters.contains_key(cluster_key) {
            return arm_error(
                404,
                "ResourceNotFound",
                format!("The Resource '{cluster_key}' was not found."),
            );
        }
        let value: Vec<Value> = self
            .pools
            .values()
            .filter(|p| p.cluster == cluster_key)
            .map(Self::pool_body)
            .collect();
        EmuResponse::json(200, json!({ "value": value }))
    }

    fn get_pool(&self, key: &str) -> EmuResponse {
        match self.pools.get(key) {
            Some(p) => EmuResponse::json(200, Self::pool_body(p)),
            None => arm_error(
                404,
                "NotFound",
                format!("The agent pool '{key}' was not found."),
            ),
        }
    }

    fn total_nodes(&self) -> u64 {
        self.pools
            .values()
            .map(|p| as_u64(p.props.get("count")).unwrap_or(0))
            .sum::<u64>()
            + self.scale_sets.values().map(|v| v.capacity).sum::<u64>()
    }

    /// ARM's quota message when growing by `extra_nodes` exceeds the limit.
    fn quota_check(&self, extra_nodes: u64, location: &str) -> Option<String> {
        let q = self.quota.as_ref()?;
        let usage = self.total_nodes() * q.cores_per_node;
        let required = extra_nodes * q.cores_per_node;
        if extra_nodes == 0 || usage + required <= q.limit_cores {
            return None;
        }
        Some(format!(
            "Operation could not be completed as it results in exceeding approved {} Cores quota. Additional details - Deployment Model: Resource Manager, Location: {location}, Current Limit: {}, Current Usage: {usage}, Additional Required: {required}, (Minimum) New Limit Required: {}. Submit a request for Quota increase.",
            q.family,
            q.limit_cores,
            usage + required
        ))
    }

    fn put_pool(
        &mut self,
        key: &str,
        req: &EmuRequest,
        fail: Option<(String, String)>,
        now: Instant,
    ) -> EmuResponse {
        let Some(pool) = self.pools.get(key).cloned() else {
            return arm_error(
                404,
                "NotFound",
                format!(
                    "The agent pool '{key}' was not found (the emulator does not create pools)."
                ),
            );
        };
        let location = self
            .clusters
            .get(&pool.cluster)
            .map(|c| c.location.clone())
            .unwrap_or_default();
        let sub = self
            .clusters
            .get(&pool.cluster)
            .map(|c| c.subscription.clone())
            .unwrap_or_default();
        if let Some(tag) = req.headers.get("if-match") {
            if tag.trim_matches('"') != pool.etag_n.to_string() && tag != "*" {
                return arm_error(412, "PreconditionFailed", format!("Operation failed: the If-Match header '{tag}' does not match the agent pool's eTag '{}'.", pool.etag_n));
            }
        }
        if let Some(op) = &pool.busy_op {
            return arm_error(409, "OperationNotAllowed", format!("Operation is not allowed because there's an in progress update agent pool operation (operation {op}). Please wait for it to finish before starting a new operation.")).header("Retry-After", self.retry_after.to_string());
        }
        let body: Value = match serde_json::from_slice(&req.body) {
            Ok(v) => v,
            Err(e) => {
                return arm_error(
                    400,
                    "InvalidRequestContent",
                    format!("The request content was invalid and could not be deserialized: {e}"),
                )
            }
        };
        let Some(new) = body.get("properties").and_then(Value::as_object) else {
            return arm_error(
                400,
                "InvalidParameter",
                "The request body has no 'properties' object.",
            );
        };
        let old_count = as_u64(pool.props.get("count")).unwrap_or(0);
        let Some(count) = as_u64(new.get("count")) else {
            return arm_error(
                400,
                "InvalidParameter",
                "properties.count must be an integer.",
            );
        };
        let autoscale = new.get("enableAutoScaling") == Some(&json!(true));
        if autoscale {
            let (min, max) = (as_u64(new.get("minCount")), as_u64(new.get("maxCount")));
            match (min, max) {
                (Some(min), Some(max)) if min >= 1 && min <= max => {}
                _ => return arm_error(400, "InvalidParameter", format!("With enableAutoScaling, minCount and maxCount are required and must satisfy 1 <= minCount <= maxCount (got minCount {min:?}, maxCount {max:?}).")),
            }
            if count != old_count {
                return arm_error(400, "InvalidParameter", format!("Cannot change properties.count ({old_count} -> {count}) of an agent pool with the cluster autoscaler enabled; change minCount/maxCount instead, or disable autoscaling."));
            }
        }
        let target = if autoscale {
            count.max(as_u64(new.get("minCount")).unwrap_or(count))
        } else {
            count
        };
        if let Some(msg) = self.quota_check(target.saturating_sub(old_count), &location) {
            return arm_error(400, "QuotaExceeded", format!("Preflight validation check for resource(s) for container service {} failed. Message: {msg}", pool.cluster.rsplit('/').next().unwrap_or("")));
        }
        let mut props = new.clone();
        for ro in [
            "provisioningState",
            "eTag",
            "currentOrchestratorVersion",
            "nodeImageVersion",
        ] {
            props.remove(ro);
            if let Some(v) = pool.props.get(ro) {
                props.insert(ro.into(), v.clone());
            }
        }
        props.insert("provisioningState".into(), json!("Succeeded"));
        let op = self.new_op(
            Effect::PoolProps {
                key: key.to_string(),
                props: props.clone(),
            },
            fail,
            now,
        );
        let p = self.pools.get_mut(key).expect("checked above");
        p.busy_op = Some(op.clone());
        p.etag_n += 1;
        let state = if count != old_count {
            "Scaling"
        } else {
            "Updating"
        };
        p.props.insert("provisioningState".into(), json!(state));
        // The answer shows the requested model, still provisioning.
        let mut shown = props;
        shown.insert("provisioningState".into(), json!(state));
        shown.insert("eTag".into(), json!(p.etag_n.to_string()));
        let body = json!({"id": p.id, "name": p.name, "type": "Microsoft.ContainerService/managedClusters/agentPools", "properties": shown});
        EmuResponse::json(200, body)
            .header(
                "Azure-AsyncOperation",
                self.op_url(
                    &sub,
                    "Microsoft.ContainerService",
                    &location,
                    "operations",
                    &op,
                    AKS_API_VERSION,
                ),
            )
            .header("Retry-After", self.retry_after.to_string())
    }

    // ---- Compute ----

    fn vmss_body(v: &ScaleSet) -> Value {
        json!({
            "id": v.id,
            "name": v.name,
            "type": "Microsoft.Compute/virtualMachineScaleSets",
            "location": v.location,
            "sku": {"name": v.sku_name, "tier": "Standard", "capacity": v.capacity},
            "etag": format!("\"{}\"", v.etag_n),
            "properties": {
                "provisioningState": v.provisioning_state,
                "orchestrationMode": "Uniform",
                "overprovision": false,
                "singlePlacementGroup": false,
                "upgradePolicy": {"mode": "Manual"},
            }
        })
    }

    fn get_vmss(&self, key: &str) -> EmuResponse {
        match self.scale_sets.get(key) {
            Some(v) => EmuResponse::json(200, Self::vmss_body(v))
                .header("ETag", format!("\"{}\"", v.etag_n)),
            None => arm_error(
                404,
                "ResourceNotFound",
                format!("The Resource '{key}' was not found."),
            ),
        }
    }

    fn vmss_write_checks(&self, key: &str, req: &EmuRequest) -> Result<ScaleSet, EmuResponse> {
        let Some(v) = self.scale_sets.get(key).cloned() else {
            return Err(arm_error(
                404,
                "ResourceNotFound",
                format!("The Resource '{key}' was not found."),
            ));
        };
        if let Some(tag) = req.headers.get("if-match") {
            if tag != "*" && tag.trim_matches('"') != v.etag_n.to_string() {
                return Err(arm_error(412, "PreconditionFailed", format!("The specified precondition 'If-Match = {tag}' failed (current ETag \"{}\").", v.etag_n)));
            }
        }
        if let Some(op) = &v.busy_op {
            return Err(arm_error(409, "Conflict", format!("The operation cannot be performed because another operation ({op}) is in progress on the scale set. Retry later.")).header("Retry-After", self.retry_after.to_string()));
        }
        Ok(v)
    }

    fn start_vmss_op(
        &mut self,
        key: &str,
        effect: Effect,
        fail: Option<(String, String)>,
        now: Instant,
    ) -> (String, String) {
        let op = self.new_op(effect, fail, now);
        let v = self.scale_sets.get_mut(key).expect("checked by caller");
        v.busy_op = Some(op.clone());
        v.provisioning_state = "Updating".into();
        v.etag_n += 1;
        (op, v.subscription.clone())
    }

    fn patch_vmss(
        &mut self,
        key: &str,
        req: &EmuRequest,
        fail: Option<(String, String)>,
        now: Instant,
    ) -> EmuResponse {
        let v = match self.vmss_write_checks(key, req) {
            Ok(v) => v,
            Err(rsp) => return rsp,
        };
        let body: Value = match serde_json::from_slice(&req.body) {
            Ok(b) => b,
            Err(e) => {
                return arm_error(
                    400,
                    "InvalidRequestContent",
                    format!("The request content was invalid and could not be deserialized: {e}"),
                )
            }
        };
        let cap = match body.pointer("/sku/capacity") {
            None => v.capacity,
            Some(c) => match c.as_u64() {
                Some(c) if c <= 1000 => c,
                _ => {
                    return arm_error(
                        400,
                        "InvalidParameter",
                        format!("sku.capacity must be an integer between 0 and 1000, got {c}."),
                    )
                }
            },
        };
        let sku_name = match body.pointer("/sku/name") {
            None => None,
            Some(Value::String(n)) if n.starts_with("Standard_") || n.starts_with("Basic_") => {
                Some(n.clone())
            }
            Some(n) => {
                return arm_error(
                    400,
                    "InvalidParameter",
                    format!("The value {n} of parameter 'sku.name' is not valid."),
                )
            }
        };
        if let Some(msg) = self.quota_check(cap.saturating_sub(v.capacity), &v.location) {
            return arm_error(409, "OperationNotAllowed", msg);
        }
        let (op, sub) = self.start_vmss_op(
            key,
            Effect::VmssCapacity {
                key: key.to_string(),
                capacity: cap,
                sku_name: sku_name.clone(),
            },
            fail,
            now,
        );
        let v = &self.scale_sets[key];
        let mut shown = Self::vmss_body(v);
        shown["sku"]["capacity"] = json!(cap);
        if let Some(n) = &sku_name {
            shown["sku"]["name"] = json!(n);
        }
        EmuResponse::json(200, shown)
            .header("ETag", format!("\"{}\"", v.etag_n))
            .header(
                "Azure-AsyncOperation",
                self.op_url(
                    &sub,
                    "Microsoft.Compute",
                    &v.location,
                    "operations",
                    &op,
                    COMPUTE_API_VERSION,
                ),
            )
            .header("Retry-After", self.retry_after.to_string())
    }

    fn vm_body(v: &ScaleSet, vm: &Vm, expand: bool) -> Value {
        let mut props = json!({
            "latestModelApplied": vm.latest_model,
            "provisioningState": "Succeeded",
            "protectionPolicy": {"protectFromScaleIn": vm.protect_in, "protectFromScaleSetActions": vm.protect_actions},
        });
        if expand {
            let display = match vm.power.as_str() {
                "running" => "VM running",
                "deallocated" => "VM deallocated",
                "stopped" => "VM stopped",
                other => other,
            };
            props["instanceView"] = json!({
                "statuses": [
                    {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded"},
                    {"code": format!("PowerState/{}", vm.power), "level": "Info", "displayStatus": display},
                ]
            });
        }
        json!({
            "id": format!("{}/virtualMachines/{}", v.id, vm.instance_id),
            "name": format!("{}_{}", v.name, vm.instance_id),
            "type": "Microsoft.Compute/virtualMachineScaleSets/virtualMachines",
            "location": v.location,
            "instanceId": vm.instance_id,
            "properties": props,
        })
    }

    fn list_vms(&self, key: &str, expand: bool) -> EmuResponse {
        let Some(v) = self.scale_sets.get(key) else {
            return arm_error(
                404,
                "ResourceNotFound",
                format!("The Resource '{key}' was not found."),
            );
        };
        let value: Vec<Value> = v
            .instances
            .iter()
            .map(|i| Self::vm_body(v, i, expand))
            .collect();
        EmuResponse::json(200, json!({ "value": value }))
    }

    fn get_vm(&self, key: &str, iid: &str) -> EmuResponse {
        let Some(v) = self.scale_sets.get(key) else {
            return arm_error(
                404,
                "ResourceNotFound",
                format!("The Resource '{key}' was not found."),
            );
        };
        match v.instances.iter().find(|i| i.instance_id == iid) {
            Some(vm) => EmuResponse::json(200, Self::vm_body(v, vm, false)),
            None => arm_error(
                404,
                "NotFound",
                format!("The instance '{iid}' of '{}' was not found.", v.id),
            ),
        }
    }

    fn put_vm(
        &mut self,
        key: &str,
        iid: &str,
        req: &EmuRequest,
        fail: Option<(String, String)>,
        now: Instant,
    ) -> EmuResponse {
        let v = match self.vmss_write_checks(key, req) {
            Ok(v) => v,
            Err(rsp) => return rsp,
        };
        let Some(vm) = v.instances.iter().find(|i| i.instance_id == iid).cloned() else {
            return arm_error(
                404,
                "NotFound",
                format!("The instance '{iid}' of '{}' was not found.", v.id),
            );
        };
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let pp = body.pointer("/properties/protectionPolicy");
        let flag = |name: &str, old: bool| {
            pp.and_then(|p| p.get(name))
                .and_then(Value::as_bool)
                .unwrap_or(old)
        };
        let (pin, pact) = (
            flag("protectFromScaleIn", vm.protect_in),
            flag("protectFromScaleSetActions", vm.protect_actions),
        );
        let (op, sub) = self.start_vmss_op(
            key,
            Effect::Protect {
                key: key.into(),
                id: iid.into(),
                protect_in: pin,
                protect_actions: pact,
            },
            fail,
            now,
        );
        let v = &self.scale_sets[key];
        let shown = Vm {
            protect_in: pin,
            protect_actions: pact,
            ..vm
        };
        EmuResponse::json(200, Self::vm_body(v, &shown, false)).header(
            "Azure-AsyncOperation",
            self.op_url(
                &sub,
                "Microsoft.Compute",
                &v.location,
                "operations",
                &op,
                COMPUTE_API_VERSION,
            ),
        )
    }

    fn instance_action(
        &mut self,
        key: &str,
        action: &str,
        req: &EmuRequest,
        fail: Option<(String, String)>,
        now: Instant,
    ) -> EmuResponse {
        let v = match self.vmss_write_checks(key, req) {
            Ok(v) => v,
            Err(rsp) => return rsp,
        };
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let ids: Vec<String> = match body.get("instanceIds").and_then(Value::as_array) {
            Some(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            None if action == "delete" => {
                return arm_error(400, "InvalidParameter", "instanceIds is required.")
            }
            None => v.instances.iter().map(|i| i.instance_id.clone()).collect(),
        };
        if let Some(missing) = ids
            .iter()
            .find(|id| !v.instances.iter().any(|i| &i.instance_id == *id))
        {
            return arm_error(
                400,
                "InvalidParameter",
                format!("Instance id '{missing}' is not in scale set '{}'.", v.name),
            );
        }
        let effect = match action {
            "start" => Effect::Power {
                key: key.into(),
                ids,
                power: "running".into(),
            },
            "deallocate" => Effect::Power {
                key: key.into(),
                ids,
                power: "deallocated".into(),
            },
            "manualupgrade" => Effect::Upgrade {
                key: key.into(),
                ids,
            },
            _ => Effect::DeleteVms {
                key: key.into(),
                ids,
            },
        };
        let (op, sub) = self.start_vmss_op(key, effect, fail, now);
        let location = self.scale_sets[key].location.clone();
        EmuResponse::empty(202)
            .header(
                "Location",
                self.op_url(
                    &sub,
                    "Microsoft.Compute",
                    &location,
                    "operationResults",
                    &op,
                    COMPUTE_API_VERSION,
                ),
            )
            .header("Retry-After", self.retry_after.to_string())
    }
}

fn default_code(status: u16) -> &'static str {
    match status {
        400 => "BadRequest",
        401 => "AuthenticationFailed",
        403 => "AuthorizationFailed",
        404 => "NotFound",
        409 => "Conflict",
        412 => "PreconditionFailed",
        429 => "TooManyRequests",
        500 => "InternalServerError",
        502 => "BadGateway",
        503 => "ServiceUnavailable",
        _ => "Error",
    }
}

fn query_param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.into_owned())
}
