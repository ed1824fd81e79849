//! A VM scale set's VM size ([`VmssSize`]): set `sku.name` with `If-Match`,
//! then roll the instances onto it as the upgrade policy says (a Manual
//! policy: upgrade every instance; otherwise the policy rolls them).

use super::client::ArmClient;
use super::group::{write_vmss_confirmed, Blocking, VmssGroup};
use super::id::VmssId;
use super::vmss::InstanceAction;
use crate::core::group::{Capabilities, Done, GroupError, GroupState, NodeGroup};

/// A scale set moved along a ladder of VM sizes.
pub struct VmssSize {
    client: ArmClient,
    id: VmssId,
    rt: Blocking,
}

impl VmssSize {
    pub fn new(client: ArmClient, id: VmssId, rt: Blocking) -> Self {
        VmssSize { client, id, rt }
    }
}

impl NodeGroup for VmssSize {
    fn describe(&self) -> String {
        self.id.to_string()
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            count: false,
            instances: false,
            vm_size: true,
        }
    }
    fn read(&mut self) -> Result<GroupState, GroupError> {
        VmssGroup::new(self.client.clone(), self.id.clone(), self.rt.clone())
            .read()
            .map_err(GroupError::from)
    }

    /// The size first, then (Manual upgrade policy) the instances: when the
    /// upgrade fails, the new size stays set and the failure says so.
    fn set_vm_size(&mut self, read: &GroupState, to: &str) -> Result<Done, (Done, GroupError)> {
        let (client, rt, id) = (&self.client, &self.rt, &self.id);
        let mut done = Done::default();
        let failed = |done: &Done, e: super::ArmError, what: &str| {
            let mut g = GroupError::from(e);
            g.message = format!("{what}: {}", g.message);
            (done.clone(), g)
        };
        let from = read.vm_size.clone().unwrap_or_default();
        let etag = read.etag.as_deref();
        let sent = rt.block_on(write_vmss_confirmed(
            client,
            id,
            etag,
            async || client.set_vmss_sku(id, to, etag).await,
            |now| now.sku.as_ref().and_then(|s| s.name.as_deref()) == Some(to),
        ));
        match sent {
            Ok(false) => done.actions.push(format!("sku.name {from} -> {to}")),
            Ok(true) => done.actions.push(format!(
                "sku.name {from} -> {to} (the answer was lost; reading back showed it applied)"
            )),
            Err(e) => {
                return Err(failed(
                    &done,
                    e,
                    &format!("setting the size of {id} to {to}"),
                ))
            }
        }
        let upgrade = read.upgrade_policy.as_deref().unwrap_or("Manual");
        if !upgrade.eq_ignore_ascii_case("manual") {
            done.actions.push(format!(
                "instances roll to the new size under the {upgrade} upgrade policy"
            ));
            return Ok(done);
        }
        let ids: Vec<String> = match rt.block_on(client.list_vmss_instances(id, false)) {
            Ok(vms) => vms.into_iter().filter_map(|vm| vm.instance_id).collect(),
            Err(e) => return Err(failed(&done, e, "listing the instances to upgrade")),
        };
        if !ids.is_empty() {
            if let Err(e) =
                rt.block_on(client.vmss_instance_action(id, InstanceAction::ManualUpgrade, &ids))
            {
                return Err(failed(&done, e, "upgrading the instances to the new size"));
            }
            done.actions.push(format!(
                "upgraded instances {} to the new size (Manual upgrade policy)",
                ids.join(", ")
            ));
        }
        Ok(done)
    }
}
