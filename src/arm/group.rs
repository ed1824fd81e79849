//! AKS agent pools and VM scale sets by count as [`NodeGroup`]s (the one
//! target interface of [`crate::core::group`]). Each also keeps its typed
//! ARM operations (`read`, `set_count` with an [`AutoscalerMode`], returning
//! [`ArmError`]s) for callers that need ARM's own detail. Synchronous: each
//! group owns a handle on a small tokio runtime and blocks on the async
//! [`ArmClient`] (do not call from inside a runtime).

use super::aks::AgentPool;
use super::client::ArmClient;
use super::error::ArmError;
use super::id::{AgentPoolId, TargetId, VmssId};
use crate::core::group::{Applied, Capabilities, GroupError, GroupState, NodeGroup};
use std::sync::Arc;

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

/// Opens the node-count group for a target id (AKS pool or scale set).
pub fn open_group(
    client: ArmClient,
    target: TargetId,
    rt: Blocking,
    mode: AutoscalerMode,
) -> Box<dyn NodeGroup> {
    match target {
        TargetId::AgentPool(id) => {
            Box::new(AksPoolGroup::new(client, id, rt).with_autoscaler_mode(mode))
        }
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
    mode: AutoscalerMode,
}

impl AksPoolGroup {
    /// The pool `id`; with the cluster autoscaler on, counts move `minCount`.
    pub fn new(client: ArmClient, id: AgentPoolId, rt: Blocking) -> Self {
        AksPoolGroup {
            client,
            id,
            rt,
            mode: AutoscalerMode::AdjustMinCount,
        }
    }

    /// What [`NodeGroup::set_count`] does when the cluster autoscaler is on.
    pub fn with_autoscaler_mode(mut self, mode: AutoscalerMode) -> Self {
        self.mode = mode;
        self
    }

    fn state_of(&self, pool: &AgentPool) -> Result<GroupState, ArmError> {
        let p = &pool.properties;
        Ok(GroupState {
            count: p.count.ok_or_else(|| ArmError::Decode {
                what: self.id.to_string(),
                message: "the agent pool has no count".into(),
            })?,
            ready: None,
            provisioning_state: p.provisioning_state.clone().unwrap_or_default(),
            autoscaler: pool
                .autoscaler_enabled()
                .then(|| (p.min_count.unwrap_or(1), p.max_count.unwrap_or(u32::MAX))),
            vm_size: p.vm_size.clone(),
            upgrade_policy: None,
            etag: p.e_tag.clone(),
        })
    }

    /// The pool's state.
    pub fn read(&self) -> Result<GroupState, ArmError> {
        let pool = self.rt.block_on(self.client.get_agent_pool(&self.id))?;
        self.state_of(&pool)
    }

    /// Set the count to `n` (or, with the autoscaler on, `minCount`, or
    /// refuse, as `on_autoscaler` says); only when the provisioning state is
    /// Succeeded (else [`ArmError::Busy`], nothing sent).
    pub fn set_count(&self, n: u32, on_autoscaler: AutoscalerMode) -> Result<SetOutcome, ArmError> {
        self.rt.block_on(async {
            let mut pool = self.client.get_agent_pool(&self.id).await?;
            let state = self.state_of(&pool)?;
            let (min, max) = (pool.properties.min_count, pool.properties.max_count);
            if !state.is_idle() {
                return Err(ArmError::Busy {
                    what: self.id.to_string(),
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
                    what: self.id.to_string(),
                    state: "Succeeded, but the pool is stopped (powerState Stopped)".into(),
                });
            }
            if state.autoscaler.is_some() {
                if on_autoscaler == AutoscalerMode::Refuse {
                    return Err(ArmError::AutoscalerEnabled {
                        what: self.id.to_string(),
                        min,
                        max,
                    });
                }
                let to = n.max(1).min(max.unwrap_or(u32::MAX));
                if min == Some(to) {
                    return Ok(SetOutcome::Unchanged { count: state.count });
                }
                pool.properties.min_count = Some(to);
                self.client.put_agent_pool(&self.id, &pool).await?;
                let outcome = SetOutcome::MinCountSet {
                    from: min,
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
        ready: None,
        provisioning_state: vmss.provisioning_state().unwrap_or_default().to_string(),
        autoscaler: None,
        vm_size: vmss.sku.as_ref().and_then(|s| s.name.clone()),
        upgrade_policy: vmss.upgrade_mode().map(str::to_string),
        etag: vmss.etag.clone(),
    })
}

impl VmssGroup {
    /// The scale set's state.
    pub fn read(&self) -> Result<GroupState, ArmError> {
        let vmss = self.rt.block_on(self.client.get_vmss(&self.id))?;
        vmss_state(&self.id, &vmss)
    }

    /// Set `sku.capacity` to `n` with `If-Match` on the ETag; only when the
    /// provisioning state is Succeeded (else [`ArmError::Busy`], nothing
    /// sent). `on_autoscaler` does not apply (Azure autoscale settings on a
    /// scale set are a separate resource this does not read).
    pub fn set_count(
        &self,
        n: u32,
        _on_autoscaler: AutoscalerMode,
    ) -> Result<SetOutcome, ArmError> {
        self.rt.block_on(async {
            let vmss = self.client.get_vmss(&self.id).await?;
            let state = vmss_state(&self.id, &vmss)?;
            if !state.is_idle() {
                return Err(ArmError::Busy {
                    what: self.id.to_string(),
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

/// What a count write did, as the one target interface reports it: the
/// field that changed (`field` for a count) and ARM's detail.
fn applied(outcome: SetOutcome, before: u32, field: &str) -> Applied {
    let detail = outcome.to_string();
    match outcome {
        SetOutcome::Unchanged { count } => Applied {
            count,
            field: "none".into(),
            detail,
        },
        SetOutcome::CountSet { to, .. } => Applied {
            count: to,
            field: field.into(),
            detail,
        },
        // The autoscaler keeps the count; it may now not go below `to`.
        SetOutcome::MinCountSet { .. } => Applied {
            count: before,
            field: "minCount".into(),
            detail,
        },
    }
}

impl NodeGroup for AksPoolGroup {
    fn describe(&self) -> String {
        self.id.to_string()
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::COUNT
    }
    fn read(&mut self) -> Result<GroupState, GroupError> {
        AksPoolGroup::read(self).map_err(GroupError::from)
    }
    fn set_count(&mut self, read: &GroupState, n: u32) -> Result<Applied, GroupError> {
        let outcome = AksPoolGroup::set_count(self, n, self.mode)?;
        Ok(applied(outcome, read.count, "count"))
    }
}

impl NodeGroup for VmssGroup {
    fn describe(&self) -> String {
        self.id.to_string()
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::COUNT
    }
    fn read(&mut self) -> Result<GroupState, GroupError> {
        VmssGroup::read(self).map_err(GroupError::from)
    }
    fn set_count(&mut self, read: &GroupState, n: u32) -> Result<Applied, GroupError> {
        let outcome = VmssGroup::set_count(self, n, AutoscalerMode::AdjustMinCount)?;
        Ok(applied(outcome, read.count, "sku.capacity"))
    }
}
