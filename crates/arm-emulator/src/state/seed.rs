//! The seed: the resources an emulator starts with (the JSON file given to
//! `arm-emulator --seed`, or a test's JSON): clusters and their agent pools,
//! scale sets and their instances, an optional vCPU quota, and how long
//! operations take. Only the input; `aks` and `compute` turn it into state.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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
