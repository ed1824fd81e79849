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
    /// The answer to the write was lost, and reading back showed it
    /// applied: what it did.
    Confirmed(Box<SetOutcome>),
    /// The autoscaler is on: `minCount` moved instead (`requested` may have been clamped to `to`).
    MinCountSet {
        from: Option<u32>,
        to: u32,
        requested: u32,
        max: Option<u32>,
    },
}

impl SetOutcome {
    /// This outcome, found by reading back after the answer was lost.
    fn confirmed(self) -> SetOutcome {
        SetOutcome::Confirmed(Box::new(self))
    }
}

impl std::fmt::Display for SetOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SetOutcome::Confirmed(done) => write!(
                f,
                "{done} (the answer to the write was lost; reading back showed it applied)"
            ),
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
    /// refuse, as `on_autoscaler` says), conditional on `read`: the PUT
    /// carries `If-Match` with the ETag of the read the plan was made from,
    /// so a change made by anyone since is never overwritten (it fails with
    /// [`ArmError::PreconditionFailed`], nothing changed: re-read and
    /// re-plan). Only when the pool is idle (else [`ArmError::Busy`],
    /// nothing sent). A PUT whose answer was lost is read back: when the
    /// pool has the requested value it counts as done.
    pub fn set_count(
        &self,
        read: &GroupState,
        n: u32,
        on_autoscaler: AutoscalerMode,
    ) -> Result<SetOutcome, ArmError> {
        self.rt.block_on(async {
            let mut pool = self.client.get_agent_pool(&self.id).await?;
            if pool.properties.e_tag != read.etag {
                return Err(changed_since(
                    &self.id.to_string(),
                    read.etag.as_deref(),
                    pool.properties.e_tag.as_deref(),
                ));
            }
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
            let (outcome, wanted) = if state.autoscaler.is_some() {
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
                let outcome = SetOutcome::MinCountSet {
                    from: min,
                    to,
                    requested: n,
                    max,
                };
                (outcome, PoolValue::MinCount(to))
            } else {
                if state.count == n {
                    return Ok(SetOutcome::Unchanged { count: n });
                }
                pool.properties.count = Some(n);
                let outcome = SetOutcome::CountSet {
                    from: state.count,
                    to: n,
                };
                (outcome, PoolValue::Count(n))
            };
            let what = self.id.to_string();
            let mut resent = 0;
            loop {
                match self
                    .client
                    .put_agent_pool_if(&self.id, &pool, read.etag.as_deref())
                    .await
                {
                    Ok(_) => {
                        tracing::info!(pool = %self.id, "{outcome}");
                        return Ok(outcome);
                    }
                    Err(ArmError::Unconfirmed { cause, status, .. }) => {
                        let url = self.client.agent_pool_url(&self.id)?;
                        self.client.wait_until_settled(&what, &url).await?;
                        let now = self.client.get_agent_pool(&self.id).await?;
                        match landed(
                            &what,
                            wanted.is_in(&now),
                            read.etag.as_deref(),
                            now.properties.e_tag.as_deref(),
                            (&cause, status),
                            &mut resent,
                            self.client.config().retry.max_server_retries,
                        )? {
                            Landed::Yes => return Ok(outcome.confirmed()),
                            Landed::Resend => {
                                self.client
                                    .pause_before_resending(&what, resent - 1)
                                    .await?;
                                continue;
                            }
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
        })
    }
}

/// The value a pool write sets, to recognise it when reading back.
enum PoolValue {
    Count(u32),
    MinCount(u32),
}

impl PoolValue {
    fn is_in(&self, pool: &AgentPool) -> bool {
        match *self {
            PoolValue::Count(n) => pool.properties.count == Some(n),
            PoolValue::MinCount(n) => pool.properties.min_count == Some(n),
        }
    }
}

/// What a read-back found after a conditional write whose answer was lost.
enum Landed {
    /// The target has the requested value: the write was applied.
    Yes,
    /// Nothing changed since the read: the write never landed; send it again.
    Resend,
}

/// Decides from a read-back after a write answered with `cause` (none):
/// applied when `has_value`; never landed when the ETag is still `read` (then
/// resend, at most `bound` times); otherwise someone else changed the target.
fn landed(
    what: &str,
    has_value: bool,
    read: Option<&str>,
    now: Option<&str>,
    (cause, status): (&str, Option<u16>),
    resent: &mut u32,
    bound: u32,
) -> Result<Landed, ArmError> {
    if has_value {
        tracing::warn!(%what, "no answer to the write ({cause}), but reading back shows it applied");
        return Ok(Landed::Yes);
    }
    if now == read {
        if *resent < bound {
            *resent += 1;
            tracing::warn!(%what, "no answer to the write ({cause}) and nothing changed: sending it again");
            return Ok(Landed::Resend);
        }
        return Err(ArmError::Unconfirmed {
            what: what.to_string(),
            cause: format!("{cause}; sent {} times, never applied", *resent + 1),
            status,
        });
    }
    Err(changed_since(what, read, now))
}

/// The target's ETag is no longer the one the plan was made from.
fn changed_since(what: &str, read: Option<&str>, now: Option<&str>) -> ArmError {
    ArmError::PreconditionFailed {
        what: what.to_string(),
        etag: read.map(str::to_string),
        error: super::error::ArmErrorBody {
            code: "Changed".into(),
            message: format!(
                "someone else changed it since (ETag now {}); nothing was sent",
                now.unwrap_or("unset")
            ),
        },
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

    /// Set `sku.capacity` to `n`, conditional on `read`: the PATCH carries
    /// `If-Match` with the ETag of the read the plan was made from (a 412
    /// means someone changed the scale set since: re-read and re-plan).
    /// Only when `read` was idle (else [`ArmError::Busy`], nothing sent).
    /// A PATCH whose answer was lost is read back: when the capacity is `n`
    /// it counts as done. `on_autoscaler` does not apply (Azure autoscale
    /// settings on a scale set are a separate resource this does not read).
    pub fn set_count(
        &self,
        read: &GroupState,
        n: u32,
        _on_autoscaler: AutoscalerMode,
    ) -> Result<SetOutcome, ArmError> {
        if !read.is_idle() {
            return Err(ArmError::Busy {
                what: self.id.to_string(),
                state: read.provisioning_state.clone(),
            });
        }
        if read.count == n {
            return Ok(SetOutcome::Unchanged { count: n });
        }
        let outcome = SetOutcome::CountSet {
            from: read.count,
            to: n,
        };
        let confirmed = self.rt.block_on(write_vmss_confirmed(
            &self.client,
            &self.id,
            read.etag.as_deref(),
            async || {
                self.client
                    .set_vmss_capacity(&self.id, u64::from(n), read.etag.as_deref())
                    .await
            },
            |now| now.capacity() == Some(u64::from(n)),
        ))?;
        Ok(if confirmed {
            outcome.confirmed()
        } else {
            outcome
        })
    }
}

/// A conditional write of scale set `id` (made from the read at `etag`):
/// `write` sends it; when its answer is lost, the scale set is read back
/// once it has settled: done when `has_value`, sent again when nothing
/// changed, [`ArmError::PreconditionFailed`] when someone else changed it.
/// Returns whether the write was only confirmed by reading back.
pub(super) async fn write_vmss_confirmed(
    client: &ArmClient,
    id: &VmssId,
    etag: Option<&str>,
    write: impl AsyncFn() -> Result<super::vmss::Vmss, ArmError>,
    has_value: impl Fn(&super::vmss::Vmss) -> bool,
) -> Result<bool, ArmError> {
    let what = id.to_string();
    let mut resent = 0;
    loop {
        match write().await {
            Ok(_) => return Ok(false),
            Err(ArmError::Unconfirmed { cause, status, .. }) => {
                let url = client.vmss_url(id)?;
                client.wait_until_settled(&what, &url).await?;
                let now = client.get_vmss(id).await?;
                match landed(
                    &what,
                    has_value(&now),
                    etag,
                    now.etag.as_deref(),
                    (&cause, status),
                    &mut resent,
                    client.config().retry.max_server_retries,
                )? {
                    Landed::Yes => return Ok(true),
                    Landed::Resend => {
                        client.pause_before_resending(&what, resent - 1).await?;
                        continue;
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// What a count write did, as the one target interface reports it: the
/// field that changed (`field` for a count) and ARM's detail.
fn applied(outcome: SetOutcome, before: u32, field: &str) -> Applied {
    Applied {
        detail: outcome.to_string(),
        ..changed(outcome, before, field)
    }
}

/// The count and field a write leaves (the detail is filled by [`applied`]).
fn changed(outcome: SetOutcome, before: u32, field: &str) -> Applied {
    let (count, field) = match outcome {
        SetOutcome::Confirmed(done) => return changed(*done, before, field),
        SetOutcome::Unchanged { count } => (count, "none"),
        SetOutcome::CountSet { to, .. } => (to, field),
        // The autoscaler keeps the count; it may now not go below `to`.
        SetOutcome::MinCountSet { .. } => (before, "minCount"),
    };
    Applied {
        count,
        field: field.into(),
        detail: String::new(),
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
        let outcome = AksPoolGroup::set_count(self, read, n, self.mode)?;
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
        let outcome = VmssGroup::set_count(self, read, n, AutoscalerMode::AdjustMinCount)?;
        Ok(applied(outcome, read.count, "sku.capacity"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_back_after_a_lost_answer_decides_done_resend_or_changed() {
        let mut resent = 0;
        let decide = |has, now, resent: &mut u32| {
            landed(
                "vmss1",
                has,
                Some("\"1\""),
                now,
                ("timed out", None),
                resent,
                2,
            )
        };
        // The target has the value: applied, whatever its ETag.
        assert!(matches!(
            decide(true, Some("\"3\""), &mut resent),
            Ok(Landed::Yes)
        ));
        // Nothing changed: send again, at most twice.
        assert!(matches!(
            decide(false, Some("\"1\""), &mut resent),
            Ok(Landed::Resend)
        ));
        assert!(matches!(
            decide(false, Some("\"1\""), &mut resent),
            Ok(Landed::Resend)
        ));
        let e = decide(false, Some("\"1\""), &mut resent).err().unwrap();
        assert!(matches!(e, ArmError::Unconfirmed { .. }), "{e}");
        // Someone else changed it: never sent again over their change.
        let e = decide(false, Some("\"2\""), &mut 0).err().unwrap();
        assert!(matches!(e, ArmError::PreconditionFailed { .. }), "{e}");
        assert_eq!(
            crate::core::group::GroupError::from(e).kind,
            crate::core::group::GroupErrorKind::Changed
        );
    }
}
