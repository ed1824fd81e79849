//! AKS agent pools (api-version 2026-08-01 by default): typed GET, PUT with
//! the modified body (unknown fields kept), and the managed cluster GET.

use super::client::ArmClient;
use super::error::ArmError;
use super::id::AgentPoolId;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// An agent pool as ARM returns it. Fields we do not model stay in `extra`
/// (at each level) so that GET-modify-PUT sends them back unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct AgentPool {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub properties: AgentPoolProperties,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The agent pool properties we read or change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AgentPoolProperties {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_auto_scaling: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_state: Option<PowerState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// The pool's ETag (`properties.eTag`), sent back as `If-Match`.
    #[serde(default, rename = "eTag", skip_serializing_if = "Option::is_none")]
    pub e_tag: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `powerState` (`Running` or `Stopped`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct PowerState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl AgentPool {
    pub fn autoscaler_enabled(&self) -> bool {
        self.properties.enable_auto_scaling == Some(true)
    }

    /// The body to PUT: this pool without the read-only fields ARM sets
    /// itself (id, name, type, provisioningState, eTag, current versions).
    /// Everything else, modelled or not, is kept.
    pub fn to_put_body(&self) -> Value {
        let mut body = self.clone();
        body.id = None;
        body.name = None;
        body.extra.remove("type");
        body.extra.remove("systemData");
        body.properties.provisioning_state = None;
        body.properties.e_tag = None;
        for ro in ["currentOrchestratorVersion", "nodeImageVersion", "status"] {
            body.properties.extra.remove(ro);
        }
        serde_json::to_value(body).unwrap_or(Value::Null)
    }
}

/// A managed cluster, for context (not written).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ManagedCluster {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub properties: Map<String, Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ManagedCluster {
    pub fn provisioning_state(&self) -> Option<&str> {
        self.properties.get("provisioningState")?.as_str()
    }
    pub fn kubernetes_version(&self) -> Option<&str> {
        self.properties.get("kubernetesVersion")?.as_str()
    }
}

impl ArmClient {
    /// The pool's URL (with the api-version).
    pub fn agent_pool_url(&self, id: &AgentPoolId) -> Result<url::Url, ArmError> {
        self.url(&id.to_string(), &self.config().aks_api_version.clone())
    }

    pub async fn get_agent_pool(&self, id: &AgentPoolId) -> Result<AgentPool, ArmError> {
        let url = self.agent_pool_url(id)?;
        Ok(self.get_json(&url).await?.0)
    }

    /// PUTs `pool` (see [`AgentPool::to_put_body`]) with `If-Match: etag`
    /// (when given: the ETag of the read the change was planned from) and
    /// waits for the operation to end. Returns the pool as read afterwards.
    pub async fn put_agent_pool_if(
        &self,
        id: &AgentPoolId,
        pool: &AgentPool,
        etag: Option<&str>,
    ) -> Result<AgentPool, ArmError> {
        let url = self.agent_pool_url(id)?;
        let body = pool.to_put_body();
        self.write_and_wait(reqwest::Method::PUT, &url, Some(&body), etag)
            .await?;
        self.get_agent_pool(id).await
    }

    /// [`ArmClient::put_agent_pool_if`] with the pool's own ETag.
    pub async fn put_agent_pool(
        &self,
        id: &AgentPoolId,
        pool: &AgentPool,
    ) -> Result<AgentPool, ArmError> {
        self.put_agent_pool_if(id, pool, pool.properties.e_tag.as_deref())
            .await
    }

    pub async fn get_managed_cluster(&self, id: &AgentPoolId) -> Result<ManagedCluster, ArmError> {
        let url = self.url(&id.cluster_id(), &self.config().aks_api_version.clone())?;
        Ok(self.get_json(&url).await?.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GET: &str = r#"{"name":"agentpool1","id":"/subscriptions/0/resourceGroups/rg1/providers/Microsoft.ContainerService/managedClusters/c/agentPools/agentpool1","properties":{"count":3,"currentOrchestratorVersion":"1.9.6","eTag":"ebwiyfneowv","maxPods":110,"nodeImageVersion":"AKSUbuntu:1604:2020.03.11","orchestratorVersion":"1.9.6","osType":"Linux","provisioningState":"Succeeded","upgradeSettings":{"maxSurge":"33%"},"vmSize":"Standard_DS1_v2","powerState":{"code":"Running"}}}"#;

    #[test]
    fn official_example_parses_and_round_trips_unknown_fields() {
        let mut pool: AgentPool = serde_json::from_str(GET).unwrap();
        assert_eq!(pool.properties.count, Some(3));
        assert_eq!(pool.properties.e_tag.as_deref(), Some("ebwiyfneowv"));
        assert_eq!(
            pool.properties
                .power_state
                .as_ref()
                .and_then(|p| p.code.as_deref()),
            Some("Running")
        );
        pool.properties.count = Some(5);
        let body = pool.to_put_body();
        let p = &body["properties"];
        assert_eq!(p["count"], 5);
        assert_eq!(
            p["upgradeSettings"]["maxSurge"], "33%",
            "unknown nested field kept"
        );
        assert_eq!(p["maxPods"], 110);
        assert_eq!(p["orchestratorVersion"], "1.9.6");
        for ro in [
            "provisioningState",
            "eTag",
            "currentOrchestratorVersion",
            "nodeImageVersion",
        ] {
            assert!(p.get(ro).is_none(), "{ro} is read-only");
        }
        assert!(body.get("id").is_none() && body.get("name").is_none());
    }
}
