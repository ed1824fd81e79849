//! The emulator's state machine: one request in, one response out, no I/O.
//! Resources are keyed by their lower-cased id (ARM ids are case-insensitive).
//!
//! This module owns [`State`], its construction from a [`Seed`], the way a
//! request goes through it (tick the operations, check the token, inject a
//! fault, check the api-version, route to a provider, log), the admin
//! snapshot, and the vCPU quota that pools and scale sets share. The parts:
//!
//! - `seed`: the input, the resources to start with;
//! - `wire`: request, response and ARM error bodies;
//! - `token`: Entra ID, the principal, tokens issued and checked;
//! - `faults`: fault injection;
//! - `log`: the request log;
//! - `operations`: long-running operations and what they change;
//! - `aks`: managed clusters and agent pools;
//! - `compute`: scale sets and their VM instances.

mod aks;
mod compute;
mod faults;
mod log;
mod operations;
mod seed;
mod token;
mod wire;

pub use faults::{Fault, OpFate};
pub use log::LogEntry;
pub use seed::{Seed, SeedCluster, SeedPool, SeedQuota, SeedVm, SeedVmss};
pub use token::Principal;
pub use wire::{EmuRequest, EmuResponse};

use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};
use wire::{arm_error, query_param};

pub const AKS_API_VERSION: &str = "2026-08-01";
pub const COMPUTE_API_VERSION: &str = "2024-03-01";

/// All of the emulator's state.
#[derive(Debug)]
pub struct State {
    base_url: String,
    principal: Principal,
    delay: Duration,
    retry_after: u64,
    quota: Option<SeedQuota>,
    clusters: BTreeMap<String, aks::Cluster>,
    pools: BTreeMap<String, aks::Pool>,
    scale_sets: BTreeMap<String, compute::ScaleSet>,
    ops: BTreeMap<String, operations::Op>,
    faults: Vec<Fault>,
    log: Vec<LogEntry>,
    tokens: HashSet<String>,
    counter: u64,
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
            s.seed_cluster(c)?;
        }
        for v in &seed.scale_sets {
            s.seed_scale_set(v);
        }
        Ok(s)
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

    /// Handles one non-admin request and logs it.
    pub fn handle(&mut self, req: &EmuRequest, now: Instant) -> EmuResponse {
        self.tick(now);
        let authorized = self.authorized(req);
        let rsp = self.route(req, authorized, now);
        self.record(req, authorized, &rsp);
        rsp
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

        let is_token = l.len() == 4 && l[1] == "oauth2" && l[2] == "v2.0" && l[3] == "token";
        if !is_token && !authorized {
            return Self::unauthorized(req);
        }
        let injected = match self.inject(req) {
            Ok(injected) => injected,
            Err(rsp) => return rsp,
        };
        let mut rsp = if is_token {
            self.token(&segs[0], req)
        } else {
            self.route_arm(req, &l, &segs, injected.operation, now)
        };
        rsp.delay = injected.delay;
        rsp.hold = injected.hold;
        rsp.drop = injected.drop;
        rsp
    }

    /// Routes an authorized ARM call: the provider's api-version, then the
    /// operation endpoints or the provider's resources.
    fn route_arm(
        &mut self,
        req: &EmuRequest,
        l: &[&str],
        segs: &[String],
        fail: OpFate,
        now: Instant,
    ) -> EmuResponse {
        let no_route = || {
            arm_error(
                404,
                "InvalidResourceType",
                format!("no route for {}", req.path),
            )
        };
        if l.len() < 2 || l[0] != "subscriptions" {
            return no_route();
        }
        let provider = l
            .iter()
            .position(|s| *s == "providers")
            .and_then(|i| l.get(i + 1).copied());
        let want = match provider {
            Some("microsoft.containerservice") => AKS_API_VERSION,
            Some("microsoft.compute") => COMPUTE_API_VERSION,
            _ => return no_route(),
        };
        if let Err(rsp) = check_api_version(req, want) {
            return rsp;
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
            return no_route();
        }
        // The lower-cased id of the cluster or scale set.
        let key = format!("/{}", l[..8].join("/"));
        if provider == Some("microsoft.containerservice") {
            self.route_aks(req, l, &key, fail, now)
        } else {
            self.route_compute(req, l, segs, &key, fail, now)
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
}

/// ARM's 400 unless the request's `api-version` is `want`.
fn check_api_version(req: &EmuRequest, want: &str) -> Result<(), EmuResponse> {
    match query_param(&req.query, "api-version") {
        Some(v) if v == want => Ok(()),
        other => Err(arm_error(
            400,
            if other.is_none() {
                "MissingApiVersionParameter"
            } else {
                "InvalidApiVersionParameter"
            },
            format!(
                "The api-version '{}' is invalid. The supported versions are '{want}'.",
                other.as_deref().unwrap_or("")
            ),
        )),
    }
}
