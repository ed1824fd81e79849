//! One interface for "a thing whose capacity we set" ([`NodeGroup`]), in the
//! spirit of cluster-autoscaler's NodeGroup: an AKS agent pool, a VM scale
//! set by count, a VM scale set instance by instance, a VM scale set's VM
//! size, and the simulated targets of backtests and the demo all implement
//! it. What each can change is in its [`Capabilities`]; a method outside
//! them answers [`GroupErrorKind::Unsupported`] and changes nothing.
//!
//! The interface is pure (no I/O here): the implementations that talk to
//! Azure live in [`crate::arm`], the simulated ones in [`crate::core::sim`].
//!
//! Contracts every implementation keeps:
//! - `read` never changes anything;
//! - a write is tied to the read the plan was made from (`read.etag`): if
//!   the target changed since, it fails with [`GroupErrorKind::Changed`] and
//!   changes nothing; it never overwrites someone else's change blind;
//! - a write returns once the target reports the change done, or fails;
//! - no write while the target is busy (another operation running): it
//!   fails with [`GroupErrorKind::Busy`] and sends nothing;
//! - instance writes never touch an instance the plan did not name (busy
//!   instances are never removed).

use crate::core::plan::instances::{Instance, InstancePlan};
use serde::Serialize;
use std::fmt;

/// What a target can change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// Its node count ([`NodeGroup::set_count`]).
    pub count: bool,
    /// Named instances ([`NodeGroup::instances`], [`NodeGroup::apply_instances`]).
    pub instances: bool,
    /// Its VM size ([`NodeGroup::set_vm_size`]).
    pub vm_size: bool,
}

impl Capabilities {
    /// A target set by count only.
    pub const COUNT: Capabilities = Capabilities {
        count: true,
        instances: false,
        vm_size: false,
    };
}

/// What a target reports before the controller decides.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupState {
    /// The node count the target is set to (ready or still provisioning).
    pub count: u32,
    /// Nodes ready to serve, when the target knows (simulated pools).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready: Option<u32>,
    /// ARM's provisioningState (`Succeeded` when idle).
    pub provisioning_state: String,
    /// The cluster autoscaler's (minCount, maxCount) when it is on (AKS).
    pub autoscaler: Option<(u32, u32)>,
    /// The VM size, when the target has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vm_size: Option<String>,
    /// How instances roll onto a new model (a scale set's upgrade policy:
    /// Manual, Automatic, Rolling), when the target has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upgrade_policy: Option<String>,
    /// The version of the target this state was read at: a write made from
    /// this state is conditional on it.
    #[serde(skip)]
    pub etag: Option<String>,
}

impl GroupState {
    /// An idle target of `count` nodes with no autoscaler and no version.
    pub fn idle(count: u32) -> GroupState {
        GroupState {
            count,
            ready: None,
            provisioning_state: "Succeeded".into(),
            autoscaler: None,
            vm_size: None,
            upgrade_policy: None,
            etag: None,
        }
    }

    /// Whether the target accepts a change now.
    pub fn is_idle(&self) -> bool {
        self.provisioning_state.eq_ignore_ascii_case("succeeded")
    }
}

/// What a write did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Applied {
    /// The count the target is set to afterwards.
    pub count: u32,
    /// The field that was changed (`count`, `minCount`, `sku.capacity`,
    /// `sku.name`, or `none`).
    pub field: String,
    /// What happened, for people.
    pub detail: String,
}

/// What a write of several steps (an instance plan, a VM size and the
/// roll-out onto it) did, in order. What was done stays done when a later
/// step fails: nothing is rolled back, and the failure carries this too.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Done {
    /// What was done, in order, for people.
    pub actions: Vec<String>,
    /// Why fewer instances were created than planned (the vCPU quota).
    pub short_of_plan: Option<String>,
}

/// The numbers of a vCPU quota error, as ARM gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct QuotaNumbers {
    pub limit: u64,
    pub usage: u64,
    /// Cores the refused change needed.
    pub required: u64,
}

impl QuotaNumbers {
    /// How many of `extra` more nodes (that together need `required` cores)
    /// fit in what is left of the limit.
    pub fn nodes_that_fit(&self, extra: u64) -> u64 {
        if extra == 0 || self.required == 0 {
            return 0;
        }
        let per_node = self.required.div_ceil(extra);
        (self.limit.saturating_sub(self.usage) / per_node).min(extra)
    }
}

/// The classes of failure a target reports; the decision record names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum GroupErrorKind {
    /// Another operation is running (provisioning state not Succeeded, or 409).
    Busy,
    /// The target changed since it was read (412).
    Changed,
    /// Throttled (429) beyond the retry bound.
    Throttled,
    /// Out of quota or capacity.
    Quota,
    NotFound,
    /// The identity could not sign in or may not do this (401/403).
    Auth,
    /// Refused as invalid (another 4xx).
    Rejected,
    /// Server errors (5xx) beyond the retry bound.
    Server,
    /// A request or an operation took too long.
    Timeout,
    /// A long-running operation ended Failed or Canceled.
    OperationFailed,
    /// The target cannot do this (see [`Capabilities`]).
    Unsupported,
    /// The run was stopped (SIGTERM/SIGINT) before it finished; nothing
    /// further was sent.
    Interrupted,
    /// Anything else (bad answers, transport).
    Other,
}

impl GroupErrorKind {
    /// The name in decision records.
    pub fn name(self) -> &'static str {
        match self {
            GroupErrorKind::Busy => "busy",
            GroupErrorKind::Changed => "changed",
            GroupErrorKind::Throttled => "throttled",
            GroupErrorKind::Quota => "quota",
            GroupErrorKind::NotFound => "not_found",
            GroupErrorKind::Auth => "auth",
            GroupErrorKind::Rejected => "rejected",
            GroupErrorKind::Server => "server",
            GroupErrorKind::Timeout => "timeout",
            GroupErrorKind::OperationFailed => "operation_failed",
            GroupErrorKind::Unsupported => "unsupported",
            GroupErrorKind::Interrupted => "interrupted",
            GroupErrorKind::Other => "other",
        }
    }
}

/// A target's failure: its class, what it said (never a secret) and, for a
/// quota error, ARM's numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupError {
    pub kind: GroupErrorKind,
    pub message: String,
    pub quota: Option<QuotaNumbers>,
}

impl GroupError {
    /// An error of `kind` saying `message`.
    pub fn new(kind: GroupErrorKind, message: impl Into<String>) -> GroupError {
        GroupError {
            kind,
            message: message.into(),
            quota: None,
        }
    }

    /// `what` is outside this target's capabilities.
    pub fn unsupported(target: &str, what: &str) -> GroupError {
        GroupError::new(
            GroupErrorKind::Unsupported,
            format!("{target} cannot {what}"),
        )
    }
}

impl fmt::Display for GroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for GroupError {}

/// A target whose capacity mlscaler sets.
pub trait NodeGroup {
    /// Where it is, safe to print (a resource id, "simulated pool").
    fn describe(&self) -> String;

    /// What this target can change.
    fn capabilities(&self) -> Capabilities;

    /// The current state. Never changes anything.
    fn read(&mut self) -> Result<GroupState, GroupError>;

    /// Set the node count to `n`, conditional on `read` (the state the plan
    /// was made from). With the cluster autoscaler on, an AKS pool moves its
    /// `minCount` instead (or refuses, as configured). Returns once the target
    /// reports the change done.
    fn set_count(&mut self, read: &GroupState, n: u32) -> Result<Applied, GroupError> {
        let _ = (read, n);
        Err(GroupError::unsupported(
            &self.describe(),
            "set a node count",
        ))
    }

    /// The instances with their power state (and scale-in protection).
    fn instances(&mut self) -> Result<Vec<Instance>, GroupError> {
        Err(GroupError::unsupported(&self.describe(), "list instances"))
    }

    /// Protect, start, create, deallocate or delete exactly the instances the
    /// plan names, in that order. A failure part way returns what was done so
    /// far with the error; nothing is rolled back.
    fn apply_instances(&mut self, plan: &InstancePlan) -> Result<Done, (Done, GroupError)> {
        let _ = plan;
        Err((
            Done::default(),
            GroupError::unsupported(&self.describe(), "change instances"),
        ))
    }

    /// Move to VM size `size`, conditional on `read`, and roll the
    /// instances onto it as the target's upgrade policy says.
    fn set_vm_size(&mut self, read: &GroupState, size: &str) -> Result<Done, (Done, GroupError)> {
        let _ = (read, size);
        Err((
            Done::default(),
            GroupError::unsupported(&self.describe(), "change its VM size"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quota_left_decides_how_many_more_nodes_fit() {
        let n = QuotaNumbers {
            limit: 10,
            usage: 8,
            required: 4,
        };
        // Two more nodes need 4 cores (2 each): 2 cores are left, one fits.
        assert_eq!(n.nodes_that_fit(2), 1);
        assert_eq!(n.nodes_that_fit(0), 0);
    }

    #[test]
    fn a_target_asked_outside_its_capabilities_changes_nothing_and_says_so() {
        struct CountOnly;
        impl NodeGroup for CountOnly {
            fn describe(&self) -> String {
                "a pool".into()
            }
            fn capabilities(&self) -> Capabilities {
                Capabilities::COUNT
            }
            fn read(&mut self) -> Result<GroupState, GroupError> {
                Ok(GroupState::idle(3))
            }
        }
        let mut g = CountOnly;
        let (done, e) = g
            .set_vm_size(&GroupState::idle(3), "Standard_D4s_v5")
            .unwrap_err();
        assert!(done.actions.is_empty());
        assert_eq!(e.kind, GroupErrorKind::Unsupported);
        assert_eq!(e.to_string(), "a pool cannot change its VM size");
        assert_eq!(g.instances().unwrap_err().kind, GroupErrorKind::Unsupported);
    }
}
