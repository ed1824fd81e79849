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
    /// The count the target reports afterwards.
    pub count: u32,
    /// The field that was changed (`count`, `minCount`, `sku.capacity`, or `none`).
    pub field: String,
    /// Requests sent, including retries.
    pub requests: u32,
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
            requests: 0,
            detail: format!("simulated: {from} -> {nodes}"),
        })
    }
}
