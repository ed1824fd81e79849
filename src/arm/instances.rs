//! A VM scale set instance by instance ([`VmssInstances`]), for job
//! schedulers: list the instances with their power state, then protect,
//! start, create, deallocate or delete exactly the instances a plan names.

use super::client::ArmClient;
use super::error::ArmError;
use super::group::{write_vmss_confirmed, Blocking};
use super::id::VmssId;
use super::vmss::{InstanceAction, ProtectionPolicy, VmssVm};
use crate::core::group::{Capabilities, Done, GroupError, GroupState, NodeGroup};
use crate::core::plan::instances::{Instance, InstancePlan, Power};
use crate::core::plan::outcome::{after_write, AfterWrite};

/// A scale set whose instances are started, created, deallocated or deleted by name.
pub struct VmssInstances {
    client: ArmClient,
    id: VmssId,
    rt: Blocking,
}

impl VmssInstances {
    pub fn new(client: ArmClient, id: VmssId, rt: Blocking) -> Self {
        VmssInstances { client, id, rt }
    }

    /// Protect busy instances first, then start, create, and scale in.
    fn apply(&self, plan: &InstancePlan, done: &mut Done) -> Result<(), GroupError> {
        let (client, rt, id) = (&self.client, &self.rt, &self.id);
        let protect = ProtectionPolicy {
            protect_from_scale_in: true,
            protect_from_scale_set_actions: false,
        };
        for i in &plan.protect {
            rt.block_on(client.set_instance_protection(id, i, protect))
                .map_err(|e| context(e, &format!("protecting instance {i}")))?;
            done.actions
                .push(format!("protected instance {i} from scale-in"));
        }
        if !plan.start.is_empty() {
            rt.block_on(client.vmss_instance_action(id, InstanceAction::Start, &plan.start))
                .map_err(|e| context(e, "starting instances"))?;
            done.actions
                .push(format!("started instances {}", plan.start.join(", ")));
        }
        if plan.create > 0 {
            self.create(plan.create, done)?;
        }
        for (ids, action, verb) in [
            (&plan.deallocate, InstanceAction::Deallocate, "deallocated"),
            (&plan.delete, InstanceAction::Delete, "deleted"),
        ] {
            if !ids.is_empty() {
                rt.block_on(client.vmss_instance_action(id, action, ids))
                    .map_err(|e| context(e, &format!("{verb} instances")))?;
                done.actions
                    .push(format!("{verb} instances {}", ids.join(", ")));
            }
        }
        Ok(())
    }

    /// Raise the capacity by `n`; out of vCPU quota, by as many as it allows
    /// (more nodes for the queue now beats none), and say so.
    fn create(&self, n: u32, done: &mut Done) -> Result<(), GroupError> {
        let (client, rt, id) = (&self.client, &self.rt, &self.id);
        let vmss = rt.block_on(client.get_vmss(id))?;
        let capacity = vmss.capacity().unwrap_or(0);
        let before = u32::try_from(capacity).unwrap_or(u32::MAX);
        let planned = before.saturating_add(n);
        let etag = vmss.etag.as_deref();
        let raise = |to: u32, etag: Option<String>| {
            rt.block_on(write_vmss_confirmed(
                client,
                id,
                etag.as_deref(),
                async || {
                    client
                        .set_vmss_capacity(id, u64::from(to), etag.as_deref())
                        .await
                },
                |now| now.capacity() == Some(u64::from(to)),
            ))
        };
        let first = raise(planned, etag.map(str::to_string)).map_err(GroupError::from);
        let to = match after_write(before, planned, &first) {
            AfterWrite::Done(_) => planned,
            AfterWrite::Failed(e) => {
                return Err(with_context(
                    e,
                    &format!("raising the capacity to {planned}"),
                ))
            }
            AfterWrite::Retry { nodes, .. } => {
                // The quota refused the first write: nothing changed, so the
                // scale set is still at the version read above.
                raise(nodes, vmss.etag.clone()).map_err(|e| {
                    context(
                        e,
                        &format!("raising the capacity to {nodes} (as far as the quota allows)"),
                    )
                })?;
                let e = first.expect_err("a retry follows a failed write");
                done.short_of_plan = Some(format!(
                    "the vCPU quota allows {} of the {n} new instances planned; ask for a quota increase ({e})",
                    nodes - before
                ));
                nodes
            }
        };
        done.actions.push(format!(
            "capacity {capacity} -> {to}: {} new instance(s)",
            to - before
        ));
        Ok(())
    }
}

fn context(e: ArmError, what: &str) -> GroupError {
    with_context(GroupError::from(e), what)
}

fn with_context(mut e: GroupError, what: &str) -> GroupError {
    e.message = format!("{what}: {}", e.message);
    e
}

/// An instance as the planner sees it.
pub fn instance_of(vm: &VmssVm) -> Instance {
    let id = vm.instance_id.clone().unwrap_or_default();
    let mut names: Vec<String> = vm.name.iter().cloned().collect();
    if let Some(cn) = vm
        .properties
        .as_ref()
        .and_then(|p| p.extra.get("osProfile"))
        .and_then(|o| o.get("computerName"))
        .and_then(|c| c.as_str())
    {
        names.push(cn.to_string());
    }
    let power = match vm.power_state() {
        Some("running" | "starting") => Power::Running,
        Some("deallocated" | "stopped") => Power::Deallocated,
        _ => Power::Other,
    };
    Instance {
        instance_id: id,
        names,
        power,
        protected_from_scale_in: vm.protection().protect_from_scale_in,
    }
}

impl NodeGroup for VmssInstances {
    fn describe(&self) -> String {
        self.id.to_string()
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            count: false,
            instances: true,
            vm_size: false,
        }
    }
    fn read(&mut self) -> Result<GroupState, GroupError> {
        super::group::VmssGroup::new(self.client.clone(), self.id.clone(), self.rt.clone())
            .read()
            .map_err(GroupError::from)
    }
    fn instances(&mut self) -> Result<Vec<Instance>, GroupError> {
        let vms = self
            .rt
            .block_on(self.client.list_vmss_instances(&self.id, true))
            .map_err(|e| context(e, &format!("listing the instances of {}", self.id)))?;
        Ok(vms.iter().map(instance_of).collect())
    }
    fn apply_instances(&mut self, plan: &InstancePlan) -> Result<Done, (Done, GroupError)> {
        let mut done = Done::default();
        match self.apply(plan, &mut done) {
            Ok(()) => Ok(done),
            Err(e) => Err((done, e)),
        }
    }
}
