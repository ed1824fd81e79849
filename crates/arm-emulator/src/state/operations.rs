//! Long-running operations: every accepted write starts one that finishes
//! after the seed's delay (or fails, when a fault said so). This module owns
//! the operations, the change each one makes when it succeeds (its
//! [`Effect`]), finishing them on time (`tick`), and their status endpoints
//! (`.../locations/L/operations/ID` and `.../operationResults/ID`).

use super::faults::OpFate;
use super::wire::{arm_error, EmuResponse};
use super::State;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::time::Instant;

/// What an operation changes when it succeeds. `key` is the lower-cased id
/// of the pool or scale set it belongs to.
#[derive(Debug, Clone, Serialize)]
pub(super) enum Effect {
    PoolProps {
        key: String,
        props: Map<String, Value>,
    },
    VmssCapacity {
        key: String,
        capacity: u64,
        /// A new VM size (the model changes: instances are not on it until upgraded).
        sku_name: Option<String>,
    },
    Upgrade {
        key: String,
        ids: Vec<String>,
    },
    Power {
        key: String,
        ids: Vec<String>,
        power: String,
    },
    DeleteVms {
        key: String,
        ids: Vec<String>,
    },
    Protect {
        key: String,
        id: String,
        protect_in: bool,
        protect_actions: bool,
    },
}

impl Effect {
    fn key(&self) -> &str {
        match self {
            Effect::PoolProps { key, .. }
            | Effect::VmssCapacity { key, .. }
            | Effect::Upgrade { key, .. }
            | Effect::Power { key, .. }
            | Effect::DeleteVms { key, .. }
            | Effect::Protect { key, .. } => key,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Op {
    id: String,
    #[serde(skip)]
    done_at: Instant,
    status: String,
    effect: Effect,
    failure: Option<(String, String)>,
}

impl State {
    /// Finishes every operation whose time has come.
    pub fn tick(&mut self, now: Instant) {
        let due: Vec<String> = self
            .ops
            .values()
            .filter(|o| o.status == "InProgress" && o.done_at <= now)
            .map(|o| o.id.clone())
            .collect();
        for id in due {
            let Some(op) = self.ops.get(&id).cloned() else {
                continue;
            };
            let ok = op.failure.is_none();
            if ok {
                self.apply(&op.effect);
            }
            let key = op.effect.key().to_string();
            if let Some(p) = self.pools.get_mut(&key) {
                p.busy_op = None;
                p.props
                    .insert("provisioningState".into(), json!("Succeeded"));
            }
            if let Some(v) = self.scale_sets.get_mut(&key) {
                v.busy_op = None;
                v.provisioning_state = "Succeeded".into();
            }
            if let Some(o) = self.ops.get_mut(&id) {
                o.status = if ok { "Succeeded" } else { "Failed" }.into();
            }
        }
    }

    fn apply(&mut self, effect: &Effect) {
        match effect {
            Effect::PoolProps { key, props } => {
                if let Some(p) = self.pools.get_mut(key) {
                    p.set_props(props.clone());
                }
            }
            Effect::VmssCapacity {
                key,
                capacity,
                sku_name,
            } => {
                if let Some(v) = self.scale_sets.get_mut(key) {
                    v.resize(*capacity, sku_name.as_deref());
                }
            }
            Effect::Upgrade { key, ids } => {
                if let Some(v) = self.scale_sets.get_mut(key) {
                    for i in v.instances_mut(ids) {
                        i.latest_model = true;
                    }
                }
            }
            Effect::Power { key, ids, power } => {
                if let Some(v) = self.scale_sets.get_mut(key) {
                    for i in v.instances_mut(ids) {
                        i.power = power.clone();
                    }
                }
            }
            Effect::DeleteVms { key, ids } => {
                if let Some(v) = self.scale_sets.get_mut(key) {
                    v.delete(ids);
                }
            }
            Effect::Protect {
                key,
                id,
                protect_in,
                protect_actions,
            } => {
                if let Some(v) = self.scale_sets.get_mut(key) {
                    for i in v.instances_mut(std::slice::from_ref(id)) {
                        i.protect_in = *protect_in;
                        i.protect_actions = *protect_actions;
                    }
                }
            }
        }
    }

    /// Starts an operation that makes `effect` after the seed's delay (or
    /// fails, or never ends, as `fate` says); returns its id.
    pub(super) fn new_op(&mut self, effect: Effect, fate: OpFate, now: Instant) -> String {
        // An operation that never ends is due in a hundred years.
        let takes = match fate {
            OpFate::Never => std::time::Duration::from_secs(100 * 365 * 86_400),
            _ => self.delay,
        };
        let fail = match fate {
            OpFate::Fail(code, message) => Some((code, message)),
            _ => None,
        };
        let id = format!(
            "{:08x}-0000-4000-8000-{:012x}",
            self.next(),
            now.elapsed().as_nanos() as u64 & 0xffff_ffff_ffff
        );
        self.ops.insert(
            id.clone(),
            Op {
                id: id.clone(),
                done_at: now + takes,
                status: "InProgress".into(),
                effect,
                failure: fail,
            },
        );
        id
    }

    /// The URL of operation `id`'s status (`kind` "operations") or result
    /// (`kind` "operationResults") endpoint.
    pub(super) fn op_url(
        &self,
        sub: &str,
        provider: &str,
        location: &str,
        kind: &str,
        id: &str,
        api: &str,
    ) -> String {
        format!(
            "{}/subscriptions/{sub}/providers/{provider}/locations/{location}/{kind}/{id}?api-version={api}",
            self.base_url
        )
    }

    /// `GET .../operations/ID`: the Azure-AsyncOperation status body.
    pub(super) fn op_status(&self, id: &str) -> EmuResponse {
        let Some(op) = self.ops.get(id) else {
            return arm_error(404, "NotFound", format!("operation {id} not found"));
        };
        let mut body = json!({"id": id, "name": id, "status": op.status});
        if let Some((code, message)) = &op.failure {
            if op.status == "Failed" {
                body["error"] = json!({"code": code, "message": message});
            }
        }
        let mut rsp = EmuResponse::json(200, body);
        if op.status == "InProgress" {
            rsp = rsp.header("Retry-After", self.retry_after.to_string());
        }
        rsp
    }

    /// `GET .../operationResults/ID`: 202 while running, then the outcome.
    pub(super) fn op_result(&self, id: &str) -> EmuResponse {
        let Some(op) = self.ops.get(id) else {
            return arm_error(404, "NotFound", format!("operation {id} not found"));
        };
        match (op.status.as_str(), &op.failure) {
            ("InProgress", _) => {
                EmuResponse::empty(202).header("Retry-After", self.retry_after.to_string())
            }
            ("Failed", Some((code, message))) => arm_error(400, code, message.clone()),
            _ => EmuResponse::empty(200),
        }
    }
}
