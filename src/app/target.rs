//! Scale targets as the controller sees them ([`NodeGroup`]): read the state,
//! set a size. Implementations: the simulated pool here, and the AKS agent
//! pool and VM scale set through ARM.

use anyhow::Result;
use serde::Serialize;

/// What a target reports before the controller decides.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupState {
    /// The node count the target is set to.
    pub count: u32,
    /// ARM's provisioningState (`Succeeded` when idle).
    pub provisioning_state: String,
    /// The cluster autoscaler's (minCount, maxCount) when it is on (AKS).
    pub autoscaler: Option<(u32, u32)>,
}

impl GroupState {
    /// Whether the target accepts a change now.
    pub fn is_idle(&self) -> bool {
        self.provisioning_state.eq_ignore_ascii_case("succeeded")
    }
}

/// What applying a size did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Applied {
    /// The count the target is set to afterwards.
    pub count: u32,
    /// The field that was changed (`count`, `minCount`, `sku.capacity`, or `none`).
    pub field: String,
    /// What happened, for people.
    pub detail: String,
}

/// A scale target.
pub trait NodeGroup {
    /// Where it is, safe to print.
    fn describe(&self) -> String;
    /// Read the current state.
    fn read(&mut self) -> Result<GroupState>;
    /// Set the size to `nodes`, given the state just read. Returns once the
    /// target reports the change done (or fails).
    fn apply(&mut self, state: &GroupState, nodes: u32) -> Result<Applied>;
}

/// A simulated pool: nothing outside the process changes.
pub struct SimGroup {
    count: u32,
}

impl SimGroup {
    pub fn new(count: u32) -> Self {
        SimGroup { count }
    }
}

impl NodeGroup for SimGroup {
    fn describe(&self) -> String {
        "simulated pool".to_string()
    }
    fn read(&mut self) -> Result<GroupState> {
        Ok(GroupState {
            count: self.count,
            provisioning_state: "Succeeded".into(),
            autoscaler: None,
        })
    }
    fn apply(&mut self, _state: &GroupState, nodes: u32) -> Result<Applied> {
        let from = self.count;
        self.count = nodes;
        Ok(Applied {
            count: nodes,
            field: "count".into(),
            detail: format!("simulated: {from} -> {nodes}"),
        })
    }
}

/// An AKS agent pool or VM scale set through ARM ([`crate::arm`]).
pub struct ArmGroup {
    inner: Box<dyn crate::arm::NodeGroup>,
    mode: crate::arm::AutoscalerMode,
    vmss: bool,
}

impl ArmGroup {
    pub fn new(
        inner: Box<dyn crate::arm::NodeGroup>,
        mode: crate::arm::AutoscalerMode,
        vmss: bool,
    ) -> Self {
        ArmGroup { inner, mode, vmss }
    }
}

impl NodeGroup for ArmGroup {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn read(&mut self) -> Result<GroupState> {
        let s = self.inner.read()?;
        Ok(GroupState {
            count: s.count,
            provisioning_state: s.provisioning_state,
            autoscaler: s
                .autoscaler_enabled
                .then(|| (s.min.unwrap_or(1), s.max.unwrap_or(u32::MAX))),
        })
    }
    fn apply(&mut self, state: &GroupState, nodes: u32) -> Result<Applied> {
        use crate::arm::SetOutcome;
        let outcome = self.inner.set_count(nodes, self.mode)?;
        let detail = outcome.to_string();
        Ok(match outcome {
            SetOutcome::Unchanged { count } => Applied {
                count,
                field: "none".into(),
                detail,
            },
            SetOutcome::CountSet { to, .. } => Applied {
                count: to,
                field: if self.vmss { "sku.capacity" } else { "count" }.into(),
                detail,
            },
            // The autoscaler keeps the count; it may now not go below `to`.
            SetOutcome::MinCountSet { .. } => Applied {
                count: state.count,
                field: "minCount".into(),
                detail,
            },
        })
    }
}
