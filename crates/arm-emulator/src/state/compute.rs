//! Compute (`Microsoft.Compute`): VM Scale Sets (Uniform orchestration,
//! Manual upgrade policy) and their VM instances, from the seed to the
//! endpoints: GET and PATCH (capacity, VM size) of a scale set, list and GET
//! of instances (with `$expand=instanceView`), PUT of an instance's
//! protection policy, and the start, deallocate, delete and manualUpgrade
//! actions. Every write is a long-running operation; this module also owns
//! how a finished one changes the instances (scale-in order, model changes).

use super::faults::OpFate;
use super::operations::Effect;
use super::seed::SeedVmss;
use super::wire::{arm_error, json_body, not_found, query_param, EmuRequest, EmuResponse};
use super::{State, COMPUTE_API_VERSION};
use serde::Serialize;
use serde_json::{json, Value};
use std::time::Instant;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Vm {
    instance_id: String,
    /// `running`, `deallocated` or `stopped` (the `PowerState/` code).
    pub(super) power: String,
    pub(super) protect_in: bool,
    pub(super) protect_actions: bool,
    /// False after a change of the scale set's model (its size) until the
    /// instance is upgraded (manualUpgrade, under the Manual upgrade policy).
    pub(super) latest_model: bool,
}

impl Vm {
    fn new(instance_id: String, power: String, protect_in: bool) -> Vm {
        Vm {
            instance_id,
            power,
            protect_in,
            protect_actions: false,
            latest_model: true,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ScaleSet {
    id: String,
    name: String,
    location: String,
    subscription: String,
    sku_name: String,
    /// The number of instances.
    pub(super) capacity: u64,
    pub(super) provisioning_state: String,
    etag_n: u64,
    instances: Vec<Vm>,
    next_instance: u64,
    /// The operation running on it, if any.
    pub(super) busy_op: Option<String>,
}

impl ScaleSet {
    /// The instances among `ids`.
    pub(super) fn instances_mut<'a>(
        &'a mut self,
        ids: &'a [String],
    ) -> impl Iterator<Item = &'a mut Vm> + 'a {
        self.instances
            .iter_mut()
            .filter(move |i| ids.contains(&i.instance_id))
    }

    /// A finished capacity change: a new size puts every instance off the
    /// model; scale-out adds running instances with new ids; scale-in
    /// removes unprotected instances, newest first.
    pub(super) fn resize(&mut self, capacity: u64, sku_name: Option<&str>) {
        if let Some(n) = sku_name.filter(|n| *n != self.sku_name) {
            self.sku_name = n.to_string();
            for i in &mut self.instances {
                i.latest_model = false;
            }
        }
        let cap = capacity as usize;
        while self.instances.len() < cap {
            let id = self.next_instance.to_string();
            self.instances.push(Vm::new(id, "running".into(), false));
            self.next_instance += 1;
        }
        while self.instances.len() > cap {
            match self.instances.iter().rposition(|i| !i.protect_in) {
                Some(pos) => {
                    self.instances.remove(pos);
                }
                None => break,
            }
        }
        self.capacity = self.instances.len() as u64;
        self.etag_n += 1;
    }

    /// A finished delete of instances `ids`.
    pub(super) fn delete(&mut self, ids: &[String]) {
        self.instances.retain(|i| !ids.contains(&i.instance_id));
        self.capacity = self.instances.len() as u64;
        self.etag_n += 1;
    }

    fn body(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "type": "Microsoft.Compute/virtualMachineScaleSets",
            "location": self.location,
            "sku": {"name": self.sku_name, "tier": "Standard", "capacity": self.capacity},
            "etag": format!("\"{}\"", self.etag_n),
            "properties": {
                "provisioningState": self.provisioning_state,
                "orchestrationMode": "Uniform",
                "overprovision": false,
                "singlePlacementGroup": false,
                "upgradePolicy": {"mode": "Manual"},
            }
        })
    }

    fn vm_body(&self, vm: &Vm, expand: bool) -> Value {
        let mut props = json!({
            "latestModelApplied": vm.latest_model,
            "provisioningState": "Succeeded",
            "protectionPolicy": {"protectFromScaleIn": vm.protect_in, "protectFromScaleSetActions": vm.protect_actions},
        });
        if expand {
            let display = match vm.power.as_str() {
                "running" => "VM running",
                "deallocated" => "VM deallocated",
                "stopped" => "VM stopped",
                other => other,
            };
            props["instanceView"] = json!({
                "statuses": [
                    {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded"},
                    {"code": format!("PowerState/{}", vm.power), "level": "Info", "displayStatus": display},
                ]
            });
        }
        json!({
            "id": format!("{}/virtualMachines/{}", self.id, vm.instance_id),
            "name": format!("{}_{}", self.name, vm.instance_id),
            "type": "Microsoft.Compute/virtualMachineScaleSets/virtualMachines",
            "location": self.location,
            "instanceId": vm.instance_id,
            "properties": props,
        })
    }

    fn instance_not_found(&self, iid: &str) -> EmuResponse {
        arm_error(
            404,
            "NotFound",
            format!("The instance '{iid}' of '{}' was not found.", self.id),
        )
    }
}

fn vmss_id(sub: &str, rg: &str, name: &str) -> String {
    format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachineScaleSets/{name}")
}

impl State {
    /// Adds a seeded scale set; without seeded instances, `capacity` running
    /// instances with ids `0..capacity`.
    pub(super) fn seed_scale_set(&mut self, v: &SeedVmss) {
        let id = vmss_id(&v.subscription, &v.resource_group, &v.name);
        let instances: Vec<Vm> = if v.instances.is_empty() {
            (0..v.capacity)
                .map(|i| Vm::new(i.to_string(), "running".into(), false))
                .collect()
        } else {
            v.instances
                .iter()
                .map(|i| {
                    Vm::new(
                        i.instance_id.clone(),
                        i.power_state.clone(),
                        i.protect_from_scale_in,
                    )
                })
                .collect()
        };
        let next_instance = instances
            .iter()
            .filter_map(|i| i.instance_id.parse::<u64>().ok())
            .max()
            .map_or(0, |m| m + 1);
        self.scale_sets.insert(
            id.to_ascii_lowercase(),
            ScaleSet {
                id,
                name: v.name.clone(),
                location: v.location.clone(),
                subscription: v.subscription.clone(),
                sku_name: v.sku_name.clone(),
                capacity: v.capacity,
                provisioning_state: v
                    .provisioning_state
                    .clone()
                    .unwrap_or_else(|| "Succeeded".into()),
                etag_n: 1,
                instances,
                next_instance,
                busy_op: None,
            },
        );
    }

    /// Routes a `Microsoft.Compute` request below a resource group: `l`
    /// holds the lower-cased path segments, `segs` the same as sent, `key`
    /// the scale set's lower-cased id.
    pub(super) fn route_compute(
        &mut self,
        req: &EmuRequest,
        l: &[&str],
        segs: &[String],
        key: &str,
        fail: OpFate,
        now: Instant,
    ) -> EmuResponse {
        let m = req.method.as_str();
        let not_allowed = || {
            arm_error(
                405,
                "MethodNotAllowed",
                format!("{m} is not supported here"),
            )
        };
        match &l[6..] {
            ["virtualmachinescalesets", _] => match m {
                "GET" => self.get_vmss(key),
                "PATCH" => self.patch_vmss(key, req, fail, now),
                _ => not_allowed(),
            },
            ["virtualmachinescalesets", _, "virtualmachines"] if m == "GET" => {
                let expand = query_param(&req.query, "$expand")
                    .is_some_and(|v| v.eq_ignore_ascii_case("instanceView"));
                self.list_vms(key, expand)
            }
            ["virtualmachinescalesets", _, "virtualmachines", _] => {
                let iid = &segs[9];
                match m {
                    "GET" => self.get_vm(key, iid),
                    "PUT" => self.put_vm(key, iid, req, fail, now),
                    _ => not_allowed(),
                }
            }
            ["virtualmachinescalesets", _, action]
                if m == "POST"
                    && matches!(*action, "start" | "deallocate" | "delete" | "manualupgrade") =>
            {
                self.instance_action(key, action, req, fail, now)
            }
            _ => arm_error(
                404,
                "InvalidResourceType",
                format!("no route for {} {}", m, req.path),
            ),
        }
    }

    fn get_vmss(&self, key: &str) -> EmuResponse {
        match self.scale_sets.get(key) {
            Some(v) => EmuResponse::json(200, v.body()).header("ETag", format!("\"{}\"", v.etag_n)),
            None => not_found(key),
        }
    }

    /// The scale set a write may change: it exists, If-Match matches, and
    /// no operation runs on it.
    fn vmss_write_checks(&self, key: &str, req: &EmuRequest) -> Result<ScaleSet, EmuResponse> {
        let Some(v) = self.scale_sets.get(key).cloned() else {
            return Err(not_found(key));
        };
        if let Some(tag) = req.headers.get("if-match") {
            if tag != "*" && tag.trim_matches('"') != v.etag_n.to_string() {
                return Err(arm_error(412, "PreconditionFailed", format!("The specified precondition 'If-Match = {tag}' failed (current ETag \"{}\").", v.etag_n)));
            }
        }
        if let Some(op) = &v.busy_op {
            return Err(arm_error(409, "Conflict", format!("The operation cannot be performed because another operation ({op}) is in progress on the scale set. Retry later.")).header("Retry-After", self.retry_after.to_string()));
        }
        Ok(v)
    }

    /// Starts the operation of a write on scale set `key`; returns the
    /// operation's status URL (`kind` "operations") or result URL
    /// ("operationResults").
    fn start_vmss_op(
        &mut self,
        key: &str,
        effect: Effect,
        fail: OpFate,
        now: Instant,
        kind: &str,
    ) -> String {
        let op = self.new_op(effect, fail, now);
        let v = self.scale_sets.get_mut(key).expect("checked by caller");
        v.busy_op = Some(op.clone());
        v.provisioning_state = "Updating".into();
        v.etag_n += 1;
        let (sub, location) = (v.subscription.clone(), v.location.clone());
        self.op_url(
            &sub,
            "Microsoft.Compute",
            &location,
            kind,
            &op,
            COMPUTE_API_VERSION,
        )
    }

    fn patch_vmss(
        &mut self,
        key: &str,
        req: &EmuRequest,
        fail: OpFate,
        now: Instant,
    ) -> EmuResponse {
        let v = match self.vmss_write_checks(key, req) {
            Ok(v) => v,
            Err(rsp) => return rsp,
        };
        let body = match json_body(req) {
            Ok(b) => b,
            Err(rsp) => return rsp,
        };
        let cap = match body.pointer("/sku/capacity") {
            None => v.capacity,
            Some(c) => match c.as_u64() {
                Some(c) if c <= 1000 => c,
                _ => {
                    return arm_error(
                        400,
                        "InvalidParameter",
                        format!("sku.capacity must be an integer between 0 and 1000, got {c}."),
                    )
                }
            },
        };
        let sku_name = match body.pointer("/sku/name") {
            None => None,
            Some(Value::String(n)) if n.starts_with("Standard_") || n.starts_with("Basic_") => {
                Some(n.clone())
            }
            Some(n) => {
                return arm_error(
                    400,
                    "InvalidParameter",
                    format!("The value {n} of parameter 'sku.name' is not valid."),
                )
            }
        };
        if let Some(msg) = self.quota_check(cap.saturating_sub(v.capacity), &v.location) {
            return arm_error(409, "OperationNotAllowed", msg);
        }
        let effect = Effect::VmssCapacity {
            key: key.to_string(),
            capacity: cap,
            sku_name: sku_name.clone(),
        };
        let url = self.start_vmss_op(key, effect, fail, now, "operations");
        let v = &self.scale_sets[key];
        let mut shown = v.body();
        shown["sku"]["capacity"] = json!(cap);
        if let Some(n) = &sku_name {
            shown["sku"]["name"] = json!(n);
        }
        EmuResponse::json(200, shown)
            .header("ETag", format!("\"{}\"", v.etag_n))
            .header("Azure-AsyncOperation", url)
            .header("Retry-After", self.retry_after.to_string())
    }

    fn list_vms(&self, key: &str, expand: bool) -> EmuResponse {
        let Some(v) = self.scale_sets.get(key) else {
            return not_found(key);
        };
        let value: Vec<Value> = v.instances.iter().map(|i| v.vm_body(i, expand)).collect();
        EmuResponse::json(200, json!({ "value": value }))
    }

    fn get_vm(&self, key: &str, iid: &str) -> EmuResponse {
        let Some(v) = self.scale_sets.get(key) else {
            return not_found(key);
        };
        match v.instances.iter().find(|i| i.instance_id == iid) {
            Some(vm) => EmuResponse::json(200, v.vm_body(vm, false)),
            None => v.instance_not_found(iid),
        }
    }

    /// PUT of an instance: only its protection policy changes.
    fn put_vm(
        &mut self,
        key: &str,
        iid: &str,
        req: &EmuRequest,
        fail: OpFate,
        now: Instant,
    ) -> EmuResponse {
        let v = match self.vmss_write_checks(key, req) {
            Ok(v) => v,
            Err(rsp) => return rsp,
        };
        let Some(vm) = v.instances.iter().find(|i| i.instance_id == iid).cloned() else {
            return v.instance_not_found(iid);
        };
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let pp = body.pointer("/properties/protectionPolicy");
        let flag = |name: &str, old: bool| {
            pp.and_then(|p| p.get(name))
                .and_then(Value::as_bool)
                .unwrap_or(old)
        };
        let (pin, pact) = (
            flag("protectFromScaleIn", vm.protect_in),
            flag("protectFromScaleSetActions", vm.protect_actions),
        );
        let effect = Effect::Protect {
            key: key.into(),
            id: iid.into(),
            protect_in: pin,
            protect_actions: pact,
        };
        let url = self.start_vmss_op(key, effect, fail, now, "operations");
        let shown = Vm {
            protect_in: pin,
            protect_actions: pact,
            ..vm
        };
        EmuResponse::json(200, self.scale_sets[key].vm_body(&shown, false))
            .header("Azure-AsyncOperation", url)
    }

    /// POST of start, deallocate, delete or manualUpgrade on instances
    /// (`instanceIds`; all of them when absent, except for delete).
    fn instance_action(
        &mut self,
        key: &str,
        action: &str,
        req: &EmuRequest,
        fail: OpFate,
        now: Instant,
    ) -> EmuResponse {
        let v = match self.vmss_write_checks(key, req) {
            Ok(v) => v,
            Err(rsp) => return rsp,
        };
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let ids: Vec<String> = match body.get("instanceIds").and_then(Value::as_array) {
            Some(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            None if action == "delete" => {
                return arm_error(400, "InvalidParameter", "instanceIds is required.")
            }
            None => v.instances.iter().map(|i| i.instance_id.clone()).collect(),
        };
        if let Some(missing) = ids
            .iter()
            .find(|id| !v.instances.iter().any(|i| &i.instance_id == *id))
        {
            return arm_error(
                400,
                "InvalidParameter",
                format!("Instance id '{missing}' is not in scale set '{}'.", v.name),
            );
        }
        let key = key.to_string();
        let effect = match action {
            "start" => Effect::Power {
                key: key.clone(),
                ids,
                power: "running".into(),
            },
            "deallocate" => Effect::Power {
                key: key.clone(),
                ids,
                power: "deallocated".into(),
            },
            "manualupgrade" => Effect::Upgrade {
                key: key.clone(),
                ids,
            },
            _ => Effect::DeleteVms {
                key: key.clone(),
                ids,
            },
        };
        let url = self.start_vmss_op(&key, effect, fail, now, "operationResults");
        EmuResponse::empty(202)
            .header("Location", url)
            .header("Retry-After", self.retry_after.to_string())
    }
}
