//! The scale target seen by the `scale` command: a [`NodeGroup`] (read its
//! state, set its size), implemented for an AKS agent pool and a VM Scale
//! Set. Synchronous: each group owns a handle on a small tokio runtime and
//! blocks on the async [`ArmClient`] (do not call from inside a runtime).

use super::aks::AgentPool;
use super::client::ArmClient;
use super::error::ArmError;
use super::id::{AgentPoolId, TargetId, VmssId};
use std::sync::Arc;

/// What a group looks like now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupState {
    pub count: u32,
    /// Autoscaler bounds (AKS pool with the cluster autoscaler on).
    pub min: Option<u32>,
    pub max: Option<u32>,
    pub provisioning_state: String,
    pub autoscaler_enabled: bool,
    pub etag: Option<String>,
}

impl GroupState {
    pub fn is_settled(&self) -> bool {
        self.provisioning_state.eq_ignore_ascii_case("succeeded")
    }
}

/// What to do when the cluster autoscaler owns the count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AutoscalerMode {
    /// Set `minCount` to the target instead (clamped to `[1, maxCount]`), so
    /// the autoscaler keeps at least that many nodes and stays the backstop.
    #[default]
    AdjustMinCount,
    /// Fail with [`ArmError::AutoscalerEnabled`] and send nothing.
    Refuse,
}

/// What `set_count` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetOutcome {
    /// The count was already `n`: nothing sent.
    Unchanged { count: u32 },
    /// `count` set from `from` to `to`.
    CountSet { from: u32, to: u32 },
    /// The autoscaler is on: `minCount` moved instead (`requested` may have been clamped to `to`).
    MinCountSet {
        from: Option<u32>,
        to: u32,
        requested: u32,
        max: Option<u32>,
    },
}

impl std::fmt::Display for SetOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SetOutcome::Unchanged { count } => write!(f, "count already {count}; nothing sent"),
            SetOutcome::CountSet { from, to } => write!(f, "count set from {from} to {to}"),
            SetOutcome::MinCountSet {
                from,
                to,
                requested,
                max,
            } => {
                write!(f, "cluster autoscaler is on: minCount set from {} to {to} instead of setting the count", from.map_or("unset".to_string(), |x| x.to_string()))?;
                if to != requested {
                    write!(
                        f,
                        " (requested {requested}, clamped to [1, {}])",
                        max.map_or("?".into(), |m| m.to_string())
                    )?;
                }
                Ok(())
            }
        }
    }
}

/// A scale target (in the spirit of cluster-autoscaler's NodeGroup).
pub trait NodeGroup {
    /// A name for messages and decision records (the resource id).
    fn describe(&self) -> String;
    fn read(&self) -> Result<GroupState, ArmError>;
    /// Sets the size to `n`; only when the provisioning state is Succeeded
    /// (else [`ArmError::Busy`], nothing sent).
    fn set_count(&self, n: u32, on_autoscaler: AutoscalerMode) -> Result<SetOutcome, ArmError>;
}

/// Opens the group for a target id (AKS pool or scale set).
pub fn open_group(client: ArmClient, target: TargetId, rt: Blocking) -> Box<dyn NodeGroup> {
    match target {
        TargetId::AgentPool(id) => Box::new(AksPoolGroup::new(client, id, rt)),
        TargetId::Vmss(id) => Box::new(VmssGroup::new(client, id, rt)),
    }
}

/// Owns (or shares) the runtime the sync facade blocks on.
///
/// Use one `Blocking` (clone it) for everything that shares an [`ArmClient`]:
/// reqwest keeps pooled connections on the runtime that opened them, and a
/// connection left behind by a dropped runtime stalls the next request until
/// its read timeout.
#[derive(Clone)]
pub struct Blocking {
    rt: Arc<tokio::runtime::Runtime>,
}

impl Blocking {
    /// A current-thread runtime with timers and I/O.
    pub fn new() -> Result<Self, ArmError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ArmError::Invalid {
                what: "tokio runtime".into(),
                message: e.to_string(),
            })?;
        Ok(Blocking { rt: Arc::new(rt) })
    }
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }
}

/// An AKS agent pool as a [`NodeGroup`].
pub struct AksPoolGroup {
    pub client: ArmClient,
    pub id: AgentPoolId,
    rt: Blocking,
}

impl AksPoolGroup {
    pub fn new(client: ArmClient, id: AgentPoolId, rt: Blocking) -> Self {
        AksPoolGroup { client, id, rt }
    }

    fn state_of(&self, pool: &AgentPool) -> Result<GroupState, ArmError> {
        let p = &pool.properties;
        Ok(GroupState {
            count: p.count.ok_or_else(|| ArmError::Decode {
                what: self.id.to_string(),
                message: "the agent pool has no count".into(),
            })?,
            min: p.min_count,
            max: p.max_count,
            provisioning_state: p.provisioning_state.clone().unwrap_or_default(),
            autoscaler_enabled: pool.autoscaler_enabled(),
            etag: p.e_tag.clone(),
        })
    }
}

impl NodeGroup for AksPoolGroup {
    fn describe(&self) -> String {
        self.id.to_string()
    }

    fn read(&self) -> Result<GroupState, ArmError> {
        let pool = self.rt.block_on(self.client.get_agent_pool(&self.id))?;
        self.state_of(&pool)
    }

    fn set_count(&self, n: u32, on_autoscaler: AutoscalerMode) -> Result<SetOutcome, ArmError> {
        self.rt.block_on(async {
            let mut pool = self.client.get_agent_pool(&self.id).await?;
            let state = self.state_of(&pool)?;
            if !state.is_settled() {
                return Err(ArmError::Busy {
                    what: self.describe(),
                    state: state.provisioning_state,
                });
            }
            let power = pool
                .properties
                .power_state
                .as_ref()
                .and_then(|p| p.code.as_deref());
            if power.is_some_and(|c| c.eq_ignore_ascii_case("stopped")) {
                return Err(ArmError::Busy {
                    what: self.describe(),
                    state: "Succeeded, but the pool is stopped (powerState Stopped)".into(),
                });
            }
            if state.autoscaler_enabled {
                if on_autoscaler == AutoscalerMode::Refuse {
                    return Err(ArmError::AutoscalerEnabled {
                        what: self.describe(),
                        min: state.min,
                        max: state.max,
                    });
                }
                let max = state.max;
                let to = n.max(1).min(max.unwrap_or(u32::MAX));
                if state.min == Some(to) {
                    return Ok(SetOutcome::Unchanged { count: state.count });
                }
                pool.properties.min_count = Some(to);
                self.client.put_agent_pool(&self.id, &pool).await?;
                let outcome = SetOutcome::MinCountSet {
                    from: state.min,
                    to,
                    requested: n,
                    max,
                };
                tracing::info!(pool = %self.id, "{outcome}");
                return Ok(outcome);
            }
            if state.count == n {
                return Ok(SetOutcome::Unchanged { count: n });
            }
            pool.properties.count = Some(n);
            self.client.put_agent_pool(&self.id, &pool).await?;
            Ok(SetOutcome::CountSet {
                from: state.count,
                to: n,
            })
        })
    }
}

/// A VM Scale Set as a [`NodeGroup`] (capacity through `sku.capacity`).
pub struct VmssGroup {
    pub client: ArmClient,
    pub id: VmssId,
    rt: Blocking,
}

impl VmssGroup {
    pub fn new(client: ArmClient, id: VmssId, rt: Blocking) -> Self {
        VmssGroup { client, id, rt }
    }
}

fn vmss_state(id: &VmssId, vmss: &super::vmss::Vmss) -> Result<GroupState, ArmError> {
    let cap = vmss.capacity().ok_or_else(|| ArmError::Decode {
        what: id.to_string(),
        message: "the scale set has no sku.capacity".into(),
    })?;
    Ok(GroupState {
        count: u32::try_from(cap).map_err(|_| ArmError::Decode {
            what: id.to_string(),
            message: format!("capacity {cap} is out of range"),
        })?,
        min: None,
        max: None,
        provisioning_state: vmss.provisioning_state().unwrap_or_default().to_string(),
        autoscaler_enabled: false,
        etag: vmss.etag.clone(),
    })
}

impl NodeGroup for VmssGroup {
    fn describe(&self) -> String {
        self.id.to_string()
    }

    fn read(&self) -> Result<GroupState, ArmError> {
        let vmss = self.rt.block_on(self.client.get_vmss(&self.id))?;
        vmss_state(&self.id, &vmss)
    }

    /// `on_autoscaler` does not apply (Azure autoscale settings on a scale
    /// set are a separate resource this does not read).
    fn set_count(&self, n: u32, _on_autoscaler: AutoscalerMode) -> Result<SetOutcome, ArmError> {
        self.rt.block_on(async {
            let vmss = self.client.get_vmss(&self.id).await?;
            let state = vmss_state(&self.id, &vmss)?;
            if !state.is_settled() {
                return Err(ArmError::Busy {
                    what: self.describe(),
                    state: state.provisioning_state,
                });
            }
            if state.count == n {
                return Ok(SetOutcome::Unchanged { count: n });
            }
            self.client
                .set_vmss_capacity(&self.id, u64::from(n), state.etag.as_deref())
                .await?;
            Ok(SetOutcome::CountSet {
                from: state.count,
                to: n,
            })
        })
    }
}
