//! VM Scale Sets (compute api-version 2024-03-01 by default): GET, PATCH of
//! `sku.capacity` with `If-Match`, instances with their power state, start /
//! deallocate / delete of named instances, and instance protection.

use super::client::ArmClient;
use super::error::ArmError;
use super::id::VmssId;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// A scale set as ARM returns it (unknown fields kept in `extra`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Vmss {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<Sku>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<VmssProperties>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Sku {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct VmssProperties {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Vmss {
    pub fn capacity(&self) -> Option<u64> {
        self.sku.as_ref()?.capacity
    }
    pub fn provisioning_state(&self) -> Option<&str> {
        self.properties.as_ref()?.provisioning_state.as_deref()
    }
    /// `properties.upgradePolicy.mode` (Manual, Automatic, Rolling), when set.
    pub fn upgrade_mode(&self) -> Option<&str> {
        self.properties
            .as_ref()?
            .extra
            .get("upgradePolicy")?
            .get("mode")?
            .as_str()
    }
}

/// One VM of a scale set (Uniform orchestration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct VmssVm {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub instance_id: Option<String>,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub properties: Option<VmssVmProperties>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct VmssVmProperties {
    #[serde(default)]
    pub provisioning_state: Option<String>,
    #[serde(default)]
    pub protection_policy: Option<ProtectionPolicy>,
    #[serde(default)]
    pub instance_view: Option<VmInstanceView>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ProtectionPolicy {
    #[serde(default)]
    pub protect_from_scale_in: bool,
    #[serde(default)]
    pub protect_from_scale_set_actions: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct VmInstanceView {
    #[serde(default)]
    pub statuses: Vec<InstanceViewStatus>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct InstanceViewStatus {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub display_status: Option<String>,
}

impl VmssVm {
    /// `running`, `deallocated`, `stopped`, `starting`... from the instance
    /// view's `PowerState/...` status (None without an instance view).
    pub fn power_state(&self) -> Option<&str> {
        self.properties
            .as_ref()?
            .instance_view
            .as_ref()?
            .statuses
            .iter()
            .filter_map(|s| s.code.as_deref())
            .find_map(|c| c.strip_prefix("PowerState/"))
    }
    pub fn protection(&self) -> ProtectionPolicy {
        self.properties
            .as_ref()
            .and_then(|p| p.protection_policy)
            .unwrap_or_default()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VmList {
    #[serde(default)]
    value: Vec<VmssVm>,
    #[serde(default)]
    next_link: Option<String>,
}

/// Action on named instances (`POST .../{action}` with `instanceIds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceAction {
    Start,
    Deallocate,
    /// Delete the instances (scale-in of exactly those).
    Delete,
    /// Bring the instances to the scale set's latest model (after a size
    /// change under the Manual upgrade policy).
    ManualUpgrade,
}

impl InstanceAction {
    fn path(self) -> &'static str {
        match self {
            InstanceAction::Start => "start",
            InstanceAction::Deallocate => "deallocate",
            InstanceAction::Delete => "delete",
            InstanceAction::ManualUpgrade => "manualupgrade",
        }
    }
}

/// Page bound for instance lists (a scale set has at most 1,000 VMs).
const MAX_PAGES: usize = 100;

impl ArmClient {
    /// The scale set's URL (with the api-version).
    pub fn vmss_url(&self, id: &VmssId) -> Result<url::Url, ArmError> {
        self.url(&id.to_string(), &self.config().compute_api_version.clone())
    }

    /// GET the scale set; its ETag comes from the `ETag` header, else the body.
    pub async fn get_vmss(&self, id: &VmssId) -> Result<Vmss, ArmError> {
        let url = self.vmss_url(id)?;
        let (mut vmss, rsp): (Vmss, _) = self.get_json(&url).await?;
        if let Some(tag) = rsp.header("etag") {
            vmss.etag = Some(tag.to_string());
        }
        Ok(vmss)
    }

    /// PATCH `{"sku":{"capacity":n}}` with `If-Match: etag` (when given) and
    /// wait for the operation; returns the scale set as read afterwards.
    /// A 412 comes back as [`ArmError::PreconditionFailed`]: re-read, re-plan.
    pub async fn set_vmss_capacity(
        &self,
        id: &VmssId,
        capacity: u64,
        etag: Option<&str>,
    ) -> Result<Vmss, ArmError> {
        let url = self.url(&id.to_string(), &self.config().compute_api_version.clone())?;
        let body = json!({ "sku": { "capacity": capacity } });
        self.write_and_wait(reqwest::Method::PATCH, &url, Some(&body), etag)
            .await?;
        self.get_vmss(id).await
    }

    /// PATCH `{"sku":{"name":name}}` with `If-Match` and wait: a new VM size
    /// for the scale set's model (instances follow per its upgrade policy).
    pub async fn set_vmss_sku(
        &self,
        id: &VmssId,
        name: &str,
        etag: Option<&str>,
    ) -> Result<Vmss, ArmError> {
        let url = self.url(&id.to_string(), &self.config().compute_api_version.clone())?;
        let body = json!({ "sku": { "name": name } });
        self.write_and_wait(reqwest::Method::PATCH, &url, Some(&body), etag)
            .await?;
        self.get_vmss(id).await
    }

    /// All VMs, with their instance view (power state) when `with_instance_view`.
    pub async fn list_vmss_instances(
        &self,
        id: &VmssId,
        with_instance_view: bool,
    ) -> Result<Vec<VmssVm>, ArmError> {
        let mut url = self.url(
            &format!("{id}/virtualMachines"),
            &self.config().compute_api_version.clone(),
        )?;
        if with_instance_view {
            url.query_pairs_mut().append_pair("$expand", "instanceView");
        }
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let (page, _): (VmList, _) = self.get_json(&url).await?;
            out.extend(page.value);
            match page.next_link {
                Some(next) => {
                    url = url::Url::parse(&next).map_err(|e| ArmError::Decode {
                        what: format!("nextLink of {id}"),
                        message: e.to_string(),
                    })?
                }
                None => return Ok(out),
            }
        }
        Err(ArmError::Invalid {
            what: format!("instances of {id}"),
            message: format!("more than {MAX_PAGES} pages"),
        })
    }

    pub async fn get_vmss_instance(
        &self,
        id: &VmssId,
        instance_id: &str,
    ) -> Result<VmssVm, ArmError> {
        let url = self.url(
            &format!("{id}/virtualMachines/{instance_id}"),
            &self.config().compute_api_version.clone(),
        )?;
        Ok(self.get_json(&url).await?.0)
    }

    /// Start, deallocate or delete the named instances and wait.
    pub async fn vmss_instance_action(
        &self,
        id: &VmssId,
        action: InstanceAction,
        instance_ids: &[String],
    ) -> Result<(), ArmError> {
        if instance_ids.is_empty() {
            return Err(ArmError::Invalid {
                what: format!("{} on {id}", action.path()),
                message: "no instance ids given".into(),
            });
        }
        let url = self.url(
            &format!("{id}/{}", action.path()),
            &self.config().compute_api_version.clone(),
        )?;
        let body = json!({ "instanceIds": instance_ids });
        self.write_and_wait(reqwest::Method::POST, &url, Some(&body), None)
            .await?;
        Ok(())
    }

    /// Sets an instance's protection policy (PUT of the VM with only
    /// `location` and `protectionPolicy`, as the official example does).
    pub async fn set_instance_protection(
        &self,
        id: &VmssId,
        instance_id: &str,
        policy: ProtectionPolicy,
    ) -> Result<VmssVm, ArmError> {
        let vm = self.get_vmss_instance(id, instance_id).await?;
        let url = self.url(
            &format!("{id}/virtualMachines/{instance_id}"),
            &self.config().compute_api_version.clone(),
        )?;
        let body = json!({
            "location": vm.location,
            "properties": { "protectionPolicy": policy },
        });
        self.write_and_wait(reqwest::Method::PUT, &url, Some(&body), None)
            .await?;
        self.get_vmss_instance(id, instance_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_power_state_and_protection_come_from_the_instance_view() {
        let vm: VmssVm = serde_json::from_str(r#"{"instanceId":"3","properties":{"protectionPolicy":{"protectFromScaleIn":true},"instanceView":{"statuses":[{"code":"ProvisioningState/succeeded"},{"code":"PowerState/deallocated"}]}}}"#).unwrap();
        assert_eq!(vm.power_state(), Some("deallocated"));
        assert!(vm.protection().protect_from_scale_in);
        assert!(!vm.protection().protect_from_scale_set_actions);
    }
}
