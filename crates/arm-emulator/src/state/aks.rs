//! AKS (`Microsoft.ContainerService`): managed clusters and their agent
//! pools, from the seed to the endpoints: GET of a cluster (with its
//! `agentPoolProfiles`), list and GET of pools, and PUT of a pool (If-Match,
//! one operation at a time, the autoscaler's rules, the quota) whose change
//! is a long-running operation.

use super::faults::OpFate;
use super::operations::Effect;
use super::seed::SeedCluster;
use super::wire::{arm_error, json_body, not_found, EmuRequest, EmuResponse};
use super::{as_u64, State, AKS_API_VERSION};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::time::Instant;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Cluster {
    id: String,
    name: String,
    location: String,
    subscription: String,
    kubernetes_version: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Pool {
    pub(super) id: String,
    name: String,
    /// The lower-cased id of its cluster.
    cluster: String,
    /// `properties` as ARM shows them (the eTag aside).
    pub(super) props: Map<String, Value>,
    pub(super) etag_n: u64,
    /// The operation running on it, if any.
    pub(super) busy_op: Option<String>,
}

impl Pool {
    /// The pool's new properties once an update has run: with the
    /// autoscaler on, the count stays within [minCount, maxCount].
    pub(super) fn set_props(&mut self, mut props: Map<String, Value>) {
        if props.get("enableAutoScaling") == Some(&json!(true)) {
            let count = as_u64(props.get("count")).unwrap_or(0);
            let min = as_u64(props.get("minCount")).unwrap_or(count);
            let max = as_u64(props.get("maxCount")).unwrap_or(count);
            props.insert("count".into(), json!(count.max(min).min(max)));
        }
        self.props = props;
        self.etag_n += 1;
    }

    fn body(&self) -> Value {
        let mut props = self.props.clone();
        props.insert("eTag".into(), json!(format!("{}", self.etag_n)));
        json!({
            "id": self.id,
            "name": self.name,
            "type": "Microsoft.ContainerService/managedClusters/agentPools",
            "properties": props,
        })
    }
}

fn pool_id(sub: &str, rg: &str, cluster: &str, pool: &str) -> String {
    format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerService/managedClusters/{cluster}/agentPools/{pool}")
}

fn cluster_id(sub: &str, rg: &str, cluster: &str) -> String {
    format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerService/managedClusters/{cluster}")
}

/// Read-only pool properties: a PUT cannot change them.
const READ_ONLY: [&str; 4] = [
    "provisioningState",
    "eTag",
    "currentOrchestratorVersion",
    "nodeImageVersion",
];

/// Pool properties a cluster's `agentPoolProfiles` show.
const PROFILE_FIELDS: [&str; 9] = [
    "count",
    "vmSize",
    "mode",
    "enableAutoScaling",
    "minCount",
    "maxCount",
    "provisioningState",
    "orchestratorVersion",
    "osType",
];

impl State {
    /// Adds a seeded cluster and its pools.
    pub(super) fn seed_cluster(&mut self, c: &SeedCluster) -> Result<(), String> {
        let cid = cluster_id(&c.subscription, &c.resource_group, &c.name);
        self.clusters.insert(
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
            self.pools.insert(
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
        Ok(())
    }

    /// Routes a `Microsoft.ContainerService` request below a resource group:
    /// `l` holds the lower-cased path segments, `key` the cluster's
    /// lower-cased id.
    pub(super) fn route_aks(
        &mut self,
        req: &EmuRequest,
        l: &[&str],
        key: &str,
        fail: OpFate,
        now: Instant,
    ) -> EmuResponse {
        let m = req.method.as_str();
        match &l[6..] {
            ["managedclusters", _] if m == "GET" => self.get_cluster(key),
            ["managedclusters", _, "agentpools"] if m == "GET" => self.list_pools(key),
            ["managedclusters", _, "agentpools", _] => {
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
            _ => arm_error(
                404,
                "InvalidResourceType",
                format!("no route for {} {}", m, req.path),
            ),
        }
    }

    fn get_cluster(&self, key: &str) -> EmuResponse {
        let Some(c) = self.clusters.get(key) else {
            return not_found(key);
        };
        let profiles: Vec<Value> = self
            .pools
            .values()
            .filter(|p| p.cluster == key)
            .map(|p| {
                let mut prof = Map::new();
                prof.insert("name".into(), json!(p.name));
                for k in PROFILE_FIELDS {
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
            return not_found(cluster_key);
        }
        let value: Vec<Value> = self
            .pools
            .values()
            .filter(|p| p.cluster == cluster_key)
            .map(Pool::body)
            .collect();
        EmuResponse::json(200, json!({ "value": value }))
    }

    fn get_pool(&self, key: &str) -> EmuResponse {
        match self.pools.get(key) {
            Some(p) => EmuResponse::json(200, p.body()),
            None => arm_error(
                404,
                "NotFound",
                format!("The agent pool '{key}' was not found."),
            ),
        }
    }

    /// The pool a write may change: it exists, If-Match matches, and no
    /// operation runs on it.
    fn pool_write_checks(&self, key: &str, req: &EmuRequest) -> Result<Pool, EmuResponse> {
        let Some(pool) = self.pools.get(key).cloned() else {
            return Err(arm_error(
                404,
                "NotFound",
                format!(
                    "The agent pool '{key}' was not found (the emulator does not create pools)."
                ),
            ));
        };
        if let Some(tag) = req.headers.get("if-match") {
            if tag.trim_matches('"') != pool.etag_n.to_string() && tag != "*" {
                return Err(arm_error(412, "PreconditionFailed", format!("Operation failed: the If-Match header '{tag}' does not match the agent pool's eTag '{}'.", pool.etag_n)));
            }
        }
        if let Some(op) = &pool.busy_op {
            return Err(arm_error(409, "OperationNotAllowed", format!("Operation is not allowed because there's an in progress update agent pool operation (operation {op}). Please wait for it to finish before starting a new operation.")).header("Retry-After", self.retry_after.to_string()));
        }
        Ok(pool)
    }

    fn put_pool(&mut self, key: &str, req: &EmuRequest, fail: OpFate, now: Instant) -> EmuResponse {
        let pool = match self.pool_write_checks(key, req) {
            Ok(p) => p,
            Err(rsp) => return rsp,
        };
        let (location, sub) = self
            .clusters
            .get(&pool.cluster)
            .map(|c| (c.location.clone(), c.subscription.clone()))
            .unwrap_or_default();
        let (new, count, target) = match requested_props(&pool, req) {
            Ok(r) => r,
            Err(rsp) => return rsp,
        };
        let old_count = as_u64(pool.props.get("count")).unwrap_or(0);
        if let Some(msg) = self.quota_check(target.saturating_sub(old_count), &location) {
            return arm_error(400, "QuotaExceeded", format!("Preflight validation check for resource(s) for container service {} failed. Message: {msg}", pool.cluster.rsplit('/').next().unwrap_or("")));
        }
        let mut props = new;
        for ro in READ_ONLY {
            props.remove(ro);
            if let Some(v) = pool.props.get(ro) {
                props.insert(ro.into(), v.clone());
            }
        }
        props.insert("provisioningState".into(), json!("Succeeded"));
        let effect = Effect::PoolProps {
            key: key.to_string(),
            props: props.clone(),
        };
        let op = self.new_op(effect, fail, now);
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
        let url = self.op_url(
            &sub,
            "Microsoft.ContainerService",
            &location,
            "operations",
            &op,
            AKS_API_VERSION,
        );
        EmuResponse::json(200, body)
            .header("Azure-AsyncOperation", url)
            .header("Retry-After", self.retry_after.to_string())
    }
}

/// The properties a pool PUT asks for, checked like AKS checks them: the
/// properties, the requested count, and the node count it leads to (with the
/// autoscaler on, at least minCount).
fn requested_props(
    pool: &Pool,
    req: &EmuRequest,
) -> Result<(Map<String, Value>, u64, u64), EmuResponse> {
    let body = json_body(req)?;
    let Some(new) = body.get("properties").and_then(Value::as_object) else {
        return Err(arm_error(
            400,
            "InvalidParameter",
            "The request body has no 'properties' object.",
        ));
    };
    let old_count = as_u64(pool.props.get("count")).unwrap_or(0);
    let Some(count) = as_u64(new.get("count")) else {
        return Err(arm_error(
            400,
            "InvalidParameter",
            "properties.count must be an integer.",
        ));
    };
    if new.get("enableAutoScaling") != Some(&json!(true)) {
        return Ok((new.clone(), count, count));
    }
    let (min, max) = (as_u64(new.get("minCount")), as_u64(new.get("maxCount")));
    match (min, max) {
        (Some(min), Some(max)) if min >= 1 && min <= max => {}
        _ => return Err(arm_error(400, "InvalidParameter", format!("With enableAutoScaling, minCount and maxCount are required and must satisfy 1 <= minCount <= maxCount (got minCount {min:?}, maxCount {max:?})."))),
    }
    if count != old_count {
        return Err(arm_error(400, "InvalidParameter", format!("Cannot change properties.count ({old_count} -> {count}) of an agent pool with the cluster autoscaler enabled; change minCount/maxCount instead, or disable autoscaling.")));
    }
    Ok((new.clone(), count, count.max(min.unwrap_or(count))))
}
