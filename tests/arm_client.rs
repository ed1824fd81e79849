//! The ARM client and credential against the local ARM emulator, over real
//! HTTPS (the emulator's CA is trusted through the credential's transport).

#[path = "support/arm.rs"]
mod arm_support;

use arm_support::{Emulator, CLIENT_SECRET};
use mlscaler::arm::{
    AgentPoolId, AksPoolGroup, ArmError, AutoscalerMode, Blocking, InstanceAction,
    ProtectionPolicy, SetOutcome, VmssGroup, VmssId,
};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

const SUB: &str = "00000000-0000-0000-0000-000000000001";

fn pool_id(pool: &str) -> AgentPoolId {
    AgentPoolId::parse(&format!("/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.ContainerService/managedClusters/aks1/agentPools/{pool}")).unwrap()
}

fn vmss_id() -> VmssId {
    VmssId::parse(&format!(
        "/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachineScaleSets/vmss1"
    ))
    .unwrap()
}

/// A cluster with a manual pool (`np1`, 3 nodes, with fields the client does
/// not model), an autoscaled pool (`auto1`, 2..6), a pool still upgrading,
/// and a 2-instance scale set.
fn seed() -> Value {
    json!({
        "operationDelayMs": 150,
        "retryAfterSecs": 1,
        "clusters": [{
            "subscription": SUB, "resourceGroup": "rg1", "name": "aks1",
            "pools": [
                {"name": "np1", "properties": {
                    "count": 3, "vmSize": "Standard_DS2_v2", "mode": "User", "osType": "Linux",
                    "orchestratorVersion": "1.33.2", "maxPods": 110,
                    "upgradeSettings": {"maxSurge": "33%"},
                    "nodeTaints": ["workload=batch:NoSchedule"],
                    "nodeLabels": {"team": "data"},
                    "powerState": {"code": "Running"}
                }},
                {"name": "auto1", "properties": {
                    "count": 3, "vmSize": "Standard_DS2_v2", "mode": "User", "osType": "Linux",
                    "enableAutoScaling": true, "minCount": 2, "maxCount": 6
                }},
                {"name": "stopped", "properties": {
                    "count": 0, "vmSize": "Standard_DS2_v2", "mode": "User", "osType": "Linux",
                    "powerState": {"code": "Stopped"}
                }},
                {"name": "upgrading", "properties": {
                    "count": 2, "vmSize": "Standard_DS2_v2", "mode": "System", "osType": "Linux",
                    "provisioningState": "Upgrading"
                }}
            ]
        }],
        "scaleSets": [{
            "subscription": SUB, "resourceGroup": "rg1", "name": "vmss1",
            "skuName": "Standard_D2s_v3", "capacity": 2
        }]
    })
}

fn aks_group(
    emu: &Emulator,
    pool: &str,
) -> (AksPoolGroup, std::sync::Arc<arm_support::RecordingSleeper>) {
    let (client, sleeper) = emu.client();
    (
        AksPoolGroup::new(client, pool_id(pool), Blocking::new().unwrap()),
        sleeper,
    )
}

#[test]
fn aks_pool_count_is_set_by_get_modify_put_and_polled_to_success_keeping_unknown_fields() {
    let emu = Emulator::start(&seed());
    let (group, _) = aks_group(&emu, "np1");
    let before = group.read().unwrap();
    assert_eq!(before.count, 3);
    assert!(before.is_idle() && before.autoscaler.is_none());

    let outcome = group
        .set_count(&group.read().unwrap(), 5, AutoscalerMode::AdjustMinCount)
        .unwrap();
    assert_eq!(outcome, SetOutcome::CountSet { from: 3, to: 5 });
    let after = group.read().unwrap();
    assert_eq!(after.count, 5);
    assert_eq!(after.provisioning_state, "Succeeded");

    let puts = emu.calls("PUT");
    assert_eq!(puts.len(), 1, "exactly one PUT: {puts:?}");
    let put = &puts[0];
    assert!(put.query.contains("api-version=2026-08-01"));
    assert_eq!(
        put.if_match.as_deref(),
        before.etag.as_deref(),
        "If-Match carries the pool's eTag"
    );
    let props = &put.body["properties"];
    assert_eq!(props["count"], 5);
    assert_eq!(
        props["upgradeSettings"]["maxSurge"], "33%",
        "unmodelled fields kept"
    );
    assert_eq!(props["nodeTaints"], json!(["workload=batch:NoSchedule"]));
    assert_eq!(props["nodeLabels"]["team"], "data");
    assert_eq!(props["maxPods"], 110);
    assert!(
        props.get("provisioningState").is_none(),
        "read-only field not sent"
    );
    // The operation was polled through Azure-AsyncOperation until it ended.
    let polls = emu
        .calls("GET")
        .into_iter()
        .filter(|e| e.path.contains("/operations/"))
        .count();
    assert!(polls >= 1, "the operation status was polled");
}

#[test]
fn autoscaled_pool_with_adjust_min_count_moves_min_count_not_count() {
    let emu = Emulator::start(&seed());
    let (group, _) = aks_group(&emu, "auto1");
    let outcome = group
        .set_count(&group.read().unwrap(), 5, AutoscalerMode::AdjustMinCount)
        .unwrap();
    assert_eq!(
        outcome,
        SetOutcome::MinCountSet {
            from: Some(2),
            to: 5,
            requested: 5,
            max: Some(6)
        }
    );
    assert!(
        outcome.to_string().contains("minCount set from 2 to 5"),
        "{outcome}"
    );
    let put = &emu.calls("PUT")[0];
    assert_eq!(put.body["properties"]["minCount"], 5);
    assert_eq!(put.body["properties"]["count"], 3, "count left as read");
    let after = group.read().unwrap();
    assert_eq!(after.autoscaler.map(|(min, _)| min), Some(5));
    assert_eq!(
        after.count, 5,
        "the autoscaler brought the pool up to minCount"
    );

    // Never above maxCount.
    let outcome = group
        .set_count(&group.read().unwrap(), 50, AutoscalerMode::AdjustMinCount)
        .unwrap();
    assert_eq!(
        outcome,
        SetOutcome::MinCountSet {
            from: Some(5),
            to: 6,
            requested: 50,
            max: Some(6)
        }
    );
    assert!(outcome.to_string().contains("clamped"), "{outcome}");
}

#[test]
fn autoscaled_pool_with_refuse_errors_and_sends_no_put() {
    let emu = Emulator::start(&seed());
    let (group, _) = aks_group(&emu, "auto1");
    let err = group
        .set_count(&group.read().unwrap(), 5, AutoscalerMode::Refuse)
        .unwrap_err();
    assert!(
        matches!(
            err,
            ArmError::AutoscalerEnabled {
                min: Some(2),
                max: Some(6),
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("autoscaler"), "{err}");
    assert!(emu.calls("PUT").is_empty(), "no PUT was sent");
}

#[test]
fn emulator_rejects_a_manual_count_on_an_autoscaled_pool_like_aks() {
    let emu = Emulator::start(&seed());
    let (client, _) = emu.client();
    let rt = Blocking::new().unwrap();
    let mut pool = rt
        .block_on(client.get_agent_pool(&pool_id("auto1")))
        .unwrap();
    pool.properties.count = Some(5);
    let err = rt
        .block_on(client.put_agent_pool(&pool_id("auto1"), &pool))
        .unwrap_err();
    assert!(
        matches!(err, ArmError::BadRequest { status: 400, .. }),
        "{err}"
    );
    assert_eq!(err.code(), Some("InvalidParameter"));
    assert!(err.to_string().contains("autoscaler"), "{err}");
}

#[test]
fn busy_409_is_waited_out_within_the_bound_then_the_write_succeeds() {
    let emu = Emulator::start(&seed());
    emu.add_faults(
        json!({"method": "PUT", "pathContains": "agentPools/np1", "times": 2,
        "status": 409, "code": "OperationNotAllowed",
        "message": "Operation is not allowed because there's an in progress scale operation.",
        "retryAfter": 9}),
    );
    let (group, sleeper) = aks_group(&emu, "np1");
    group
        .set_count(&group.read().unwrap(), 4, AutoscalerMode::AdjustMinCount)
        .unwrap();
    assert_eq!(group.read().unwrap().count, 4);
    assert_eq!(
        emu.calls("PUT").len(),
        3,
        "two busy answers, then the write"
    );
    let nines = sleeper
        .waits()
        .iter()
        .filter(|d| **d == Duration::from_secs(9))
        .count();
    assert_eq!(
        nines,
        2,
        "Retry-After of the busy answers honoured: {:?}",
        sleeper.waits()
    );
}

#[test]
fn busy_409_beyond_the_bound_is_a_conflict_with_arms_code() {
    let emu = Emulator::start(&seed());
    emu.add_faults(json!({"method": "PUT", "times": 100, "status": 409,
        "code": "OperationNotAllowed", "message": "another operation is in progress"}));
    let (group, _) = aks_group(&emu, "np1");
    let err = group
        .set_count(&group.read().unwrap(), 4, AutoscalerMode::AdjustMinCount)
        .unwrap_err();
    assert!(matches!(err, ArmError::Conflict { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("OperationNotAllowed: another operation is in progress"),
        "{err}"
    );
    let bound = mlscaler::arm::RetryPolicy::default().max_busy_retries as usize;
    assert_eq!(emu.calls("PUT").len(), bound + 1);
}

#[test]
fn throttling_429_honours_retry_after() {
    let emu = Emulator::start(&seed());
    emu.add_faults(
        json!({"method": "GET", "pathContains": "agentPools/np1", "times": 2,
        "status": 429, "retryAfter": 7}),
    );
    let (group, sleeper) = aks_group(&emu, "np1");
    assert_eq!(group.read().unwrap().count, 3);
    assert_eq!(
        sleeper.waits(),
        vec![Duration::from_secs(7), Duration::from_secs(7)]
    );
    assert_eq!(emu.calls("GET").len(), 3);
}

#[test]
fn server_errors_are_retried_with_backoff_then_succeed() {
    let emu = Emulator::start(&seed());
    emu.add_faults(json!({"method": "GET", "pathContains": "virtualMachineScaleSets/vmss1", "times": 3, "status": 500}));
    let (client, sleeper) = emu.client();
    let group = VmssGroup::new(client, vmss_id(), Blocking::new().unwrap());
    assert_eq!(group.read().unwrap().count, 2);
    // Base 1 s doubling, "equal jitter" at 0.5: 0.75 s, 1.5 s, 3 s.
    assert_eq!(
        sleeper.waits(),
        vec![
            Duration::from_millis(750),
            Duration::from_millis(1500),
            Duration::from_secs(3)
        ]
    );
}

#[test]
fn server_errors_beyond_the_bound_fail_with_arms_message() {
    let emu = Emulator::start(&seed());
    emu.add_faults(json!({"method": "GET", "times": 100, "status": 503,
        "code": "ServiceUnavailable", "message": "The service is temporarily unavailable."}));
    let (client, _) = emu.client();
    let group = VmssGroup::new(client, vmss_id(), Blocking::new().unwrap());
    let err = group.read().unwrap_err();
    assert!(matches!(err, ArmError::Server { status: 503, .. }), "{err}");
    assert!(
        err.to_string()
            .contains("ServiceUnavailable: The service is temporarily unavailable."),
        "{err}"
    );
    let bound = mlscaler::arm::RetryPolicy::default().max_server_retries as usize;
    assert_eq!(emu.calls("GET").len(), bound + 1);
}

#[test]
fn vmss_capacity_is_patched_with_if_match_and_polled() {
    let emu = Emulator::start(&seed());
    let (client, _) = emu.client();
    let group = VmssGroup::new(client, vmss_id(), Blocking::new().unwrap());
    let before = group.read().unwrap();
    assert_eq!(before.etag.as_deref(), Some("\"1\""));
    assert_eq!(
        group
            .set_count(&group.read().unwrap(), 4, AutoscalerMode::AdjustMinCount)
            .unwrap(),
        SetOutcome::CountSet { from: 2, to: 4 }
    );
    let patches = emu.calls("PATCH");
    assert_eq!(patches.len(), 1);
    assert_eq!(patches[0].body, json!({"sku": {"capacity": 4}}));
    assert_eq!(patches[0].if_match.as_deref(), Some("\"1\""));
    assert!(patches[0].query.contains("api-version=2024-03-01"));
    let after = group.read().unwrap();
    assert_eq!(after.count, 4);
    assert_ne!(after.etag, before.etag, "the ETag changes on every write");
    assert_eq!(
        group
            .set_count(&group.read().unwrap(), 4, AutoscalerMode::AdjustMinCount)
            .unwrap(),
        SetOutcome::Unchanged { count: 4 }
    );
    assert_eq!(emu.calls("PATCH").len(), 1, "no write when nothing changes");
}

#[test]
fn stale_etag_is_surfaced_as_precondition_failed() {
    let emu = Emulator::start(&seed());
    let (client, _) = emu.client();
    let rt = Blocking::new().unwrap();
    let stale = rt.block_on(client.get_vmss(&vmss_id())).unwrap().etag;
    rt.block_on(client.set_vmss_capacity(&vmss_id(), 3, stale.as_deref()))
        .unwrap();
    let err = rt
        .block_on(client.set_vmss_capacity(&vmss_id(), 5, stale.as_deref()))
        .unwrap_err();
    assert!(matches!(err, ArmError::PreconditionFailed { .. }), "{err}");
    assert!(
        err.to_string().contains("PreconditionFailed") && err.to_string().contains("re-read"),
        "{err}"
    );
    assert_eq!(emu.calls("PATCH").len(), 2, "412 is not retried");
}

#[test]
fn quota_errors_carry_arms_numbers() {
    let mut s = seed();
    s["quota"] = json!({"limitCores": 20, "coresPerNode": 2});
    let emu = Emulator::start(&s);
    // 3 + 3 + 2 pool nodes and 2 instances: 10 nodes, 20 cores in use.
    let (group, _) = aks_group(&emu, "np1");
    let err = group
        .set_count(&group.read().unwrap(), 5, AutoscalerMode::AdjustMinCount)
        .unwrap_err();
    assert!(matches!(err, ArmError::Quota { status: 400, .. }), "{err}");
    let msg = err.to_string();
    for part in [
        "QuotaExceeded",
        "Current Limit: 20",
        "Current Usage: 20",
        "Additional Required: 4",
    ] {
        assert!(msg.contains(part), "{part} missing from: {msg}");
    }
    let (client, _) = emu.client();
    let vmss = VmssGroup::new(client, vmss_id(), Blocking::new().unwrap());
    let err = vmss
        .set_count(&vmss.read().unwrap(), 3, AutoscalerMode::AdjustMinCount)
        .unwrap_err();
    assert!(matches!(err, ArmError::Quota { status: 409, .. }), "{err}");
    assert!(
        err.to_string().contains("OperationNotAllowed")
            && err.to_string().contains("Additional Required: 2"),
        "{err}"
    );
    assert_eq!(emu.calls("PATCH").len(), 1, "quota is not retried");
}

#[test]
fn wrong_secret_is_an_auth_error_that_does_not_show_the_secret() {
    let emu = Emulator::start(&seed());
    let wrong = "wrong-secret-value-1234";
    let client = emu.client_with(emu.config(), wrong, Default::default());
    let group = AksPoolGroup::new(client, pool_id("np1"), Blocking::new().unwrap());
    let err = group.read().unwrap_err();
    assert!(matches!(err, ArmError::Credential(_)), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("AADSTS7000215"), "{msg}");
    assert!(
        !msg.contains(wrong) && !msg.contains(CLIENT_SECRET),
        "{msg}"
    );
    assert!(emu.calls("GET").is_empty(), "no ARM call without a token");
}

#[test]
fn arm_rejects_a_call_without_a_valid_token_with_401() {
    let emu = Emulator::start(&seed());
    let http = mlscaler::azure::credential::http_client(mlscaler::azure::credential::Roots::Only(
        &emu.ca_path,
    ))
    .unwrap();
    let url = format!("{}/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachineScaleSets/vmss1?api-version=2024-03-01", emu.base_url);
    let rt = Blocking::new().unwrap();
    let status = rt.block_on(async {
        http.get(&url)
            .bearer_auth("forged")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(status, 401);
    let e = mlscaler::arm::ArmError::from_response("GET vmss", 401, None, None, br#"{"error":{"code":"InvalidAuthenticationToken","message":"The access token is invalid."}}"#);
    assert!(matches!(e, ArmError::Auth { status: 401, .. }));
}

#[test]
fn a_pool_that_is_not_succeeded_is_busy_and_nothing_is_written() {
    let emu = Emulator::start(&seed());
    let (group, _) = aks_group(&emu, "upgrading");
    let err = group
        .set_count(&group.read().unwrap(), 3, AutoscalerMode::AdjustMinCount)
        .unwrap_err();
    assert!(
        matches!(&err, ArmError::Busy { state, .. } if state == "Upgrading"),
        "{err}"
    );
    assert!(emu.calls("PUT").is_empty());
}

#[test]
fn a_stopped_pool_is_not_scaled() {
    let emu = Emulator::start(&seed());
    let (group, _) = aks_group(&emu, "stopped");
    let err = group
        .set_count(&group.read().unwrap(), 3, AutoscalerMode::AdjustMinCount)
        .unwrap_err();
    assert!(matches!(&err, ArmError::Busy { .. }), "{err}");
    assert!(err.to_string().contains("stopped"), "{err}");
    assert!(emu.calls("PUT").is_empty());
}

#[test]
fn a_failed_operation_is_reported_with_its_error() {
    let emu = Emulator::start(&seed());
    emu.add_faults(json!({"method": "PUT", "failOperation": true,
        "code": "ReconcileVMSSAgentPoolFailed", "message": "Unable to scale: allocation failed."}));
    let (group, _) = aks_group(&emu, "np1");
    let err = group
        .set_count(&group.read().unwrap(), 6, AutoscalerMode::AdjustMinCount)
        .unwrap_err();
    assert!(
        matches!(&err, ArmError::OperationFailed { status, .. } if status == "Failed"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("ReconcileVMSSAgentPoolFailed: Unable to scale"),
        "{err}"
    );
    assert_eq!(group.read().unwrap().count, 3, "the count did not change");
}

#[test]
fn an_operation_that_never_ends_times_out() {
    let mut s = seed();
    s["operationDelayMs"] = json!(600_000);
    let emu = Emulator::start(&s);
    let mut config = emu.config();
    config.lro_timeout = Duration::from_secs(5);
    let client = emu.client_with(config, CLIENT_SECRET, Default::default());
    let group = AksPoolGroup::new(client, pool_id("np1"), Blocking::new().unwrap());
    let err = group
        .set_count(&group.read().unwrap(), 4, AutoscalerMode::AdjustMinCount)
        .unwrap_err();
    assert!(matches!(err, ArmError::Timeout { .. }), "{err}");
}

#[test]
fn an_unsupported_api_version_is_rejected_like_arm() {
    let emu = Emulator::start(&seed());
    let mut config = emu.config();
    config.aks_api_version = "2019-01-01".into();
    let client = emu.client_with(config, CLIENT_SECRET, Default::default());
    let err = AksPoolGroup::new(client, pool_id("np1"), Blocking::new().unwrap())
        .read()
        .unwrap_err();
    assert_eq!(err.code(), Some("InvalidApiVersionParameter"), "{err}");
}

#[test]
fn vmss_instances_power_state_actions_and_protection() {
    let emu = Emulator::start(&seed());
    let (client, _) = emu.client();
    let rt = Blocking::new().unwrap();
    let id = vmss_id();
    let vms = rt.block_on(client.list_vmss_instances(&id, true)).unwrap();
    let ids: Vec<String> = vms.iter().filter_map(|v| v.instance_id.clone()).collect();
    assert_eq!(ids, vec!["0", "1"]);
    assert!(vms.iter().all(|v| v.power_state() == Some("running")));
    assert!(emu
        .calls("GET")
        .iter()
        .any(|e| e.query.contains("%24expand=instanceView")
            || e.query.contains("$expand=instanceView")));

    rt.block_on(client.vmss_instance_action(&id, InstanceAction::Deallocate, &["1".to_string()]))
        .unwrap();
    let vms = rt.block_on(client.list_vmss_instances(&id, true)).unwrap();
    assert_eq!(vms[1].power_state(), Some("deallocated"));
    rt.block_on(client.vmss_instance_action(&id, InstanceAction::Start, &["1".to_string()]))
        .unwrap();
    let vms = rt.block_on(client.list_vmss_instances(&id, true)).unwrap();
    assert_eq!(vms[1].power_state(), Some("running"));

    let vm = rt
        .block_on(client.set_instance_protection(
            &id,
            "0",
            ProtectionPolicy {
                protect_from_scale_in: true,
                protect_from_scale_set_actions: false,
            },
        ))
        .unwrap();
    assert!(vm.protection().protect_from_scale_in);
    let put = emu.calls("PUT").pop().unwrap();
    assert_eq!(
        put.body,
        json!({"location": "westeurope", "properties": {"protectionPolicy": {"protectFromScaleIn": true, "protectFromScaleSetActions": false}}})
    );

    rt.block_on(client.vmss_instance_action(&id, InstanceAction::Delete, &["1".to_string()]))
        .unwrap();
    let after = rt.block_on(client.get_vmss(&id)).unwrap();
    assert_eq!(after.capacity(), Some(1));
    let posts: Vec<String> = emu
        .calls("POST")
        .iter()
        .map(|e| e.path.rsplit('/').next().unwrap().to_string())
        .collect();
    assert_eq!(posts, vec!["deallocate", "start", "delete"]);
    assert!(emu
        .calls("POST")
        .iter()
        .all(|e| e.body == json!({"instanceIds": ["1"]})));

    let err = rt
        .block_on(client.vmss_instance_action(&id, InstanceAction::Delete, &["42".to_string()]))
        .unwrap_err();
    assert!(
        matches!(err, ArmError::BadRequest { status: 400, .. }),
        "{err}"
    );
}

// ---- The emulator answers only with fields the official specs define ----

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/azure-specs/specification")
}

const AKS_SPEC: &str = "containerservice/resource-manager/Microsoft.ContainerService/aks/stable/2026-08-01/managedClusters.json";
const VMSS_SPEC: &str = "compute/resource-manager/Microsoft.Compute/ComputeRP/stable/2024-03-01/virtualMachineScaleSet.json";

/// A tiny checker over the vendored swagger: every key of `value` must be a
/// property of `schema` (through `$ref`s and `allOf`, across files), unless
/// the schema allows additional properties; recursively.
struct SpecChecker {
    cache: std::collections::HashMap<PathBuf, std::rc::Rc<Value>>,
}

impl SpecChecker {
    fn new() -> Self {
        SpecChecker {
            cache: Default::default(),
        }
    }

    fn load(&mut self, file: &Path) -> std::rc::Rc<Value> {
        let file = file
            .canonicalize()
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        self.cache
            .entry(file.clone())
            .or_insert_with(|| {
                std::rc::Rc::new(serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap())
            })
            .clone()
    }

    /// Resolves a `$ref` seen in `file`; returns (file of the target, schema).
    fn resolve(&mut self, file: &Path, reference: &str) -> (PathBuf, Value) {
        let (path, pointer) = reference.split_once('#').unwrap_or((reference, ""));
        let target = if path.is_empty() {
            file.to_path_buf()
        } else {
            file.parent().unwrap().join(path).canonicalize().unwrap()
        };
        let doc = self.load(&target);
        let schema = doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("{reference} not found"))
            .clone();
        (target, schema)
    }

    /// Property schemas (with their files) of an object schema, and whether
    /// additional properties are allowed.
    fn properties(&mut self, file: &Path, schema: &Value) -> (Vec<(String, PathBuf, Value)>, bool) {
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            let (f, s) = self.resolve(file, r);
            return self.properties(&f, &s);
        }
        let mut props = Vec::new();
        let mut additional = schema
            .get("additionalProperties")
            .is_some_and(|a| a != &json!(false));
        if let Some(p) = schema.get("properties").and_then(Value::as_object) {
            props.extend(
                p.iter()
                    .map(|(k, v)| (k.clone(), file.to_path_buf(), v.clone())),
            );
        }
        for part in schema
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (p, a) = self.properties(file, part);
            props.extend(p);
            additional |= a;
        }
        (props, additional)
    }

    fn check(
        &mut self,
        file: &Path,
        schema: &Value,
        value: &Value,
        at: &str,
        errors: &mut Vec<String>,
    ) {
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            let (f, s) = self.resolve(file, r);
            return self.check(&f, &s, value, at, errors);
        }
        match value {
            Value::Object(map) => {
                let (props, additional) = self.properties(file, schema);
                if props.is_empty() && (additional || schema.get("type").is_none()) {
                    return;
                }
                for (k, v) in map {
                    match props.iter().find(|(name, _, _)| name == k) {
                        Some((_, f, s)) => {
                            let (f, s) = (f.clone(), s.clone());
                            self.check(&f, &s, v, &format!("{at}.{k}"), errors);
                        }
                        None if additional => {}
                        None => errors.push(format!("{at}.{k} is not in the spec")),
                    }
                }
            }
            Value::Array(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (i, v) in items.iter().enumerate() {
                        self.check(file, item_schema, v, &format!("{at}[{i}]"), errors);
                    }
                }
            }
            _ => {}
        }
    }

    fn assert_conforms(&mut self, spec: &str, definition: &str, value: &Value) {
        let file = fixtures().join(spec).canonicalize().unwrap();
        let (f, schema) = self.resolve(&file, &format!("#/definitions/{definition}"));
        let mut errors = Vec::new();
        self.check(&f, &schema, value, definition, &mut errors);
        assert!(
            errors.is_empty(),
            "emulator invented fields: {errors:?}\nin {value:#}"
        );
    }
}

#[test]
fn the_checker_catches_an_invented_field() {
    let mut c = SpecChecker::new();
    let file = fixtures().join(AKS_SPEC).canonicalize().unwrap();
    let (f, schema) = c.resolve(&file, "#/definitions/AgentPool");
    let mut errors = Vec::new();
    c.check(&f, &schema, &json!({"name": "x", "properties": {"count": 1, "nodeCount": 2, "upgradeSettings": {"surge": 1}}}), "AgentPool", &mut errors);
    assert_eq!(
        errors,
        vec![
            "AgentPool.properties.nodeCount is not in the spec",
            "AgentPool.properties.upgradeSettings.surge is not in the spec"
        ]
    );
    // And the official example passes.
    let example: Value = serde_json::from_slice(&std::fs::read(fixtures().join("containerservice/resource-manager/Microsoft.ContainerService/aks/stable/2026-08-01/examples/AgentPoolsGet.json")).unwrap()).unwrap();
    c.assert_conforms(AKS_SPEC, "AgentPool", &example["responses"]["200"]["body"]);
}

/// Every kind of call the client makes (reads, writes, a few error answers),
/// so the request log holds one answer of each kind.
fn full_scenario(emu: &Emulator) {
    // Error answers too: a busy pool, a throttled and a failing read.
    emu.add_faults(json!([
        {"method": "PUT", "pathContains": "agentPools/np1", "status": 409, "code": "OperationNotAllowed",
         "message": "Operation is not allowed because there's an in progress scale operation.", "retryAfter": 1},
        {"method": "GET", "pathContains": "virtualMachineScaleSets/vmss1/virtualMachines", "status": 429, "retryAfter": 1},
        {"method": "GET", "pathContains": "managedClusters/aks1/agentPools/auto1", "status": 500}
    ]));
    let (client, _) = emu.client();
    let rt = Blocking::new().unwrap();
    let aks = format!("/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.ContainerService/managedClusters/aks1");
    emu.raw_get(
        &rt,
        &client,
        &format!("{aks}/agentPools?api-version=2026-08-01"),
    );
    rt.block_on(client.get_managed_cluster(&pool_id("np1")))
        .unwrap();
    for pool in ["auto1", "upgrading", "stopped"] {
        rt.block_on(client.get_agent_pool(&pool_id(pool))).unwrap();
    }
    let np1 = AksPoolGroup::new(client.clone(), pool_id("np1"), rt.clone());
    np1.set_count(&np1.read().unwrap(), 4, AutoscalerMode::AdjustMinCount)
        .unwrap();
    let auto1 = AksPoolGroup::new(client.clone(), pool_id("auto1"), rt.clone());
    auto1
        .set_count(&auto1.read().unwrap(), 4, AutoscalerMode::AdjustMinCount)
        .unwrap();
    let vmss = VmssGroup::new(client.clone(), vmss_id(), rt.clone());
    vmss.set_count(&vmss.read().unwrap(), 3, AutoscalerMode::AdjustMinCount)
        .unwrap();
    let id = vmss_id();
    rt.block_on(client.list_vmss_instances(&id, true)).unwrap();
    rt.block_on(client.list_vmss_instances(&id, false)).unwrap();
    let one = vec!["1".to_string()];
    rt.block_on(client.vmss_instance_action(&id, InstanceAction::Deallocate, &one))
        .unwrap();
    rt.block_on(client.vmss_instance_action(&id, InstanceAction::Start, &one))
        .unwrap();
    rt.block_on(client.set_instance_protection(
        &id,
        "0",
        ProtectionPolicy {
            protect_from_scale_in: true,
            protect_from_scale_set_actions: false,
        },
    ))
    .unwrap();
    rt.block_on(client.vmss_instance_action(&id, InstanceAction::Delete, &one))
        .unwrap();
}

/// The spec definition of a successful answer, by method and path shape.
fn definition_for(method: &str, path: &str) -> Option<(&'static str, &'static str)> {
    let p = path.to_ascii_lowercase();
    let segs: Vec<&str> = p.trim_matches('/').split('/').collect();
    let last_kind = segs.get(segs.len().saturating_sub(2)).copied();
    match (method, segs.last().copied(), last_kind) {
        ("GET", Some("agentpools"), _) => Some((AKS_SPEC, "AgentPoolListResult")),
        ("GET" | "PUT", _, Some("agentpools")) => Some((AKS_SPEC, "AgentPool")),
        ("GET", _, Some("managedclusters")) => Some((AKS_SPEC, "ManagedCluster")),
        ("GET" | "PATCH", _, Some("virtualmachinescalesets")) => {
            Some((VMSS_SPEC, "VirtualMachineScaleSet"))
        }
        ("GET", Some("virtualmachines"), _) => {
            Some((VMSS_SPEC, "VirtualMachineScaleSetVMListResult"))
        }
        ("GET" | "PUT", _, Some("virtualmachines")) => {
            Some((VMSS_SPEC, "VirtualMachineScaleSetVM"))
        }
        _ => None,
    }
}

#[test]
fn emulator_responses_contain_only_fields_the_official_specs_define() {
    let emu = Emulator::start(&seed());
    full_scenario(&emu);
    let mut c = SpecChecker::new();
    let mut checked = BTreeSet::new();
    for e in emu.requests() {
        let lower = e.path.to_ascii_lowercase();
        // Operation status answers are ARM's generic shape, not in these specs.
        if lower.contains("/oauth2/")
            || lower.contains("/operations/")
            || lower.contains("/operationresults/")
            || !(200..300).contains(&e.status)
            || e.response.is_null()
        {
            continue;
        }
        let (spec, def) = definition_for(&e.method, &e.path)
            .unwrap_or_else(|| panic!("no spec definition mapped for {} {}", e.method, e.path));
        c.assert_conforms(spec, def, &e.response);
        checked.insert(format!("{} {def}", e.method));
    }
    let expected = [
        "GET AgentPool",
        "GET AgentPoolListResult",
        "GET ManagedCluster",
        "GET VirtualMachineScaleSet",
        "GET VirtualMachineScaleSetVM",
        "GET VirtualMachineScaleSetVMListResult",
        "PATCH VirtualMachineScaleSet",
        "PUT AgentPool",
        "PUT VirtualMachineScaleSetVM",
    ];
    assert_eq!(checked.into_iter().collect::<Vec<_>>(), expected);
}

/// Writes the emulator's traffic as `oav validate-traffic` payloads (URLs on
/// management.azure.com) to the folder in `MLSCALER_OAV_OUT`, for a manual
/// check with Microsoft's validator (see tests/fixtures/azure-specs/README.md).
#[test]
#[ignore = "writes oav payloads for a manual check; set MLSCALER_OAV_OUT"]
fn record_emulator_traffic_for_oav() {
    let out = PathBuf::from(std::env::var("MLSCALER_OAV_OUT").expect("set MLSCALER_OAV_OUT"));
    let emu = Emulator::start(&seed());
    full_scenario(&emu);
    for (dir, provider) in [
        ("aks", "microsoft.containerservice"),
        ("vmss", "microsoft.compute"),
    ] {
        std::fs::create_dir_all(out.join(dir)).unwrap();
        for e in emu.requests() {
            if e.path.contains("/oauth2/") || !e.path.to_ascii_lowercase().contains(provider) {
                continue;
            }
            let headers: serde_json::Map<String, Value> = e
                .response_headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        json!(v.replace(&emu.base_url, "https://management.azure.com")),
                    )
                })
                .collect();
            let payload = json!({
                "liveRequest": {
                    "method": e.method,
                    "url": format!("https://management.azure.com{}?{}", e.path, e.query),
                    "headers": {"Content-Type": "application/json"},
                    "body": e.body,
                },
                "liveResponse": {
                    "statusCode": e.status.to_string(),
                    "headers": headers,
                    "body": e.response,
                }
            });
            let file = out.join(dir).join(format!("{:04}.json", e.seq));
            std::fs::write(file, serde_json::to_vec_pretty(&payload).unwrap()).unwrap();
        }
    }
}

#[test]
fn a_slow_answer_times_out_and_is_retried() {
    let emu = Emulator::start(&seed());
    emu.add_faults(
        json!({"method": "GET", "pathContains": "agentPools/np1", "times": 1, "delayMs": 3000}),
    );
    let mut config = emu.config();
    config.request_timeout = Duration::from_millis(400);
    let sleeper = std::sync::Arc::new(arm_support::RecordingSleeper::default());
    let client = emu.client_with(config, CLIENT_SECRET, sleeper.clone());
    let group = AksPoolGroup::new(client, pool_id("np1"), Blocking::new().unwrap());
    assert_eq!(group.read().unwrap().count, 3);
    assert_eq!(sleeper.waits().len(), 1, "one backoff after the timeout");
}

#[test]
fn a_failed_operation_reported_through_location_is_operation_failed() {
    let emu = Emulator::start(&seed());
    emu.add_faults(
        json!({"method": "POST", "pathContains": "/deallocate", "failOperation": true,
        "code": "AllocationFailed", "message": "Deallocation failed on instance 0."}),
    );
    let (client, _) = emu.client();
    let rt = Blocking::new().unwrap();
    let err = rt
        .block_on(client.vmss_instance_action(
            &vmss_id(),
            InstanceAction::Deallocate,
            &["0".to_string()],
        ))
        .unwrap_err();
    assert!(matches!(err, ArmError::OperationFailed { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("Deallocation failed on instance 0."),
        "{err}"
    );
}

#[test]
fn connect_builds_credential_and_client_from_settings_and_targets_open_by_id() {
    let emu = Emulator::start(&seed());
    let config = mlscaler::arm::ArmConfig::from_lookup(|k| {
        (k == "MLSCALER_ARM_ENDPOINT").then(|| emu.base_url.clone())
    })
    .unwrap();
    let auth = emu.auth_settings(CLIENT_SECRET);
    let client = mlscaler::arm::ArmClient::connect(
        config,
        mlscaler::azure::credential::AuthChoice::Auto,
        &auth,
    )
    .unwrap();
    let rt = Blocking::new().unwrap();
    let target = mlscaler::arm::TargetId::parse(&vmss_id().to_string()).unwrap();
    let mut group = mlscaler::arm::open_group(
        client.clone(),
        target,
        rt.clone(),
        AutoscalerMode::AdjustMinCount,
    );
    assert_eq!(group.read().unwrap().count, 2);
    let cluster = rt
        .block_on(client.get_managed_cluster(&pool_id("np1")))
        .unwrap();
    assert_eq!(cluster.provisioning_state(), Some("Succeeded"));
    assert_eq!(cluster.kubernetes_version(), Some("1.33.2"));
}

/// A client with `limits` (and the recording sleeper).
fn limited_client(
    emu: &Emulator,
    limits: mlscaler::arm::RunLimits,
) -> (
    mlscaler::arm::ArmClient,
    std::sync::Arc<arm_support::RecordingSleeper>,
) {
    let (client, sleeper) = emu.client();
    (client.with_limits(limits), sleeper)
}

#[test]
fn every_wait_is_capped_whatever_retry_after_asks_for() {
    let emu = Emulator::start(&seed());
    emu.add_faults(
        json!({"method": "GET", "pathContains": "agentPools/np1", "times": 2,
        "status": 429, "retryAfter": 86400}),
    );
    let limits = mlscaler::arm::RunLimits {
        max_wait: Duration::from_secs(20),
        ..Default::default()
    };
    let (client, sleeper) = limited_client(&emu, limits);
    let group = AksPoolGroup::new(client, pool_id("np1"), Blocking::new().unwrap());
    assert_eq!(group.read().unwrap().count, 3);
    assert_eq!(
        sleeper.waits(),
        vec![Duration::from_secs(20), Duration::from_secs(20)],
        "a day asked for, 20 s waited"
    );
}

#[test]
fn a_wait_that_would_pass_the_deadline_fails_the_call_at_once() {
    let emu = Emulator::start(&seed());
    emu.add_faults(
        json!({"method": "PUT", "pathContains": "agentPools/np1", "times": 100,
        "status": 409, "code": "OperationNotAllowed", "message": "another operation is in progress",
        "retryAfter": 25}),
    );
    let limits = mlscaler::arm::RunLimits {
        max_wait: Duration::from_secs(30),
        budget: Some(Duration::from_secs(60)),
        ..Default::default()
    };
    let (client, sleeper) = limited_client(&emu, limits);
    let group = AksPoolGroup::new(client, pool_id("np1"), Blocking::new().unwrap());
    let err = group
        .set_count(&group.read().unwrap(), 4, AutoscalerMode::AdjustMinCount)
        .unwrap_err();
    assert!(matches!(err, ArmError::Deadline { .. }), "{err}");
    assert!(err.to_string().contains("deadline of 60s"), "{err}");
    // 25 s twice fits in 60 s; a third wait would not.
    assert_eq!(sleeper.waits(), vec![Duration::from_secs(25); 2]);
    assert_eq!(emu.calls("PUT").len(), 3);
    assert_eq!(
        mlscaler::core::group::GroupError::from(err).kind.name(),
        "timeout"
    );
}

#[test]
fn a_stop_request_ends_a_wait_and_no_further_write_is_sent() {
    let emu = Emulator::start(&seed());
    // Busy for a minute, as far as the (real) sleeper is concerned.
    emu.add_faults(
        json!({"method": "PUT", "pathContains": "agentPools/np1", "times": 1,
        "status": 409, "code": "OperationNotAllowed", "message": "another operation is in progress",
        "retryAfter": 60}),
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let limits = mlscaler::arm::RunLimits {
        max_wait: Duration::from_secs(60),
        stop: stop.clone(),
        ..Default::default()
    };
    let http = mlscaler::azure::credential::http_client(mlscaler::azure::credential::Roots::Only(
        &emu.ca_path,
    ))
    .unwrap();
    let client = mlscaler::arm::ArmClient::new(
        emu.config(),
        emu.credential_with_secret(CLIENT_SECRET),
        http,
    )
    .unwrap()
    .with_limits(limits);
    let journal = client.journal().clone();
    let group = AksPoolGroup::new(client, pool_id("np1"), Blocking::new().unwrap());
    let read = group.read().unwrap();
    let setter = std::thread::spawn(move || {
        // Stop while the run waits out the busy answer.
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let err = group
        .set_count(&read, 4, AutoscalerMode::AdjustMinCount)
        .unwrap_err();
    setter.join().unwrap();
    assert!(matches!(err, ArmError::Interrupted { .. }), "{err}");
    assert_eq!(emu.calls("PUT").len(), 1, "no write after the stop");
    let events = journal.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].result.contains("409"), "{events:?}");
    assert!(events[0].change.contains("count=4"), "{events:?}");
    // Once stopped, not even a read is sent.
    let err = group.read().unwrap_err();
    assert!(matches!(err, ArmError::Interrupted { .. }), "{err}");
}

#[test]
fn a_write_is_tied_to_the_read_the_plan_was_made_from() {
    let emu = Emulator::start(&seed());
    let (client, _) = emu.client();
    let rt = Blocking::new().unwrap();
    let vmss = VmssGroup::new(client.clone(), vmss_id(), rt.clone());
    let planned_from = vmss.read().unwrap();
    // Someone else scales the set after our read.
    let other = vmss.read().unwrap();
    vmss.set_count(&other, 5, AutoscalerMode::AdjustMinCount)
        .unwrap();
    let err = vmss
        .set_count(&planned_from, 3, AutoscalerMode::AdjustMinCount)
        .unwrap_err();
    assert!(matches!(err, ArmError::PreconditionFailed { .. }), "{err}");
    assert_eq!(vmss.read().unwrap().count, 5, "their change stands");
    let patches = emu.calls("PATCH");
    assert_eq!(patches.len(), 2);
    assert_eq!(patches[1].if_match, planned_from.etag, "our read's ETag");
    // An AKS pool: the change since the read is seen before anything is sent.
    let pool = AksPoolGroup::new(client, pool_id("np1"), rt);
    let planned_from = pool.read().unwrap();
    let other = pool.read().unwrap();
    pool.set_count(&other, 6, AutoscalerMode::AdjustMinCount)
        .unwrap();
    let err = pool
        .set_count(&planned_from, 2, AutoscalerMode::AdjustMinCount)
        .unwrap_err();
    assert!(matches!(err, ArmError::PreconditionFailed { .. }), "{err}");
    assert_eq!(emu.calls("PUT").len(), 1, "nothing sent on a stale read");
    assert_eq!(pool.read().unwrap().count, 6);
}

#[test]
fn a_write_whose_answer_is_lost_is_read_back_and_counts_as_done_when_it_landed() {
    let emu = Emulator::start(&seed());
    // The PATCH is applied, its answer comes after the client gave up.
    emu.add_faults(json!({"method": "PATCH", "times": 1, "delayMs": 1500}));
    let mut config = emu.config();
    config.request_timeout = Duration::from_millis(400);
    let client = emu.client_with(config, CLIENT_SECRET, Default::default());
    let group = VmssGroup::new(client, vmss_id(), Blocking::new().unwrap());
    let read = group.read().unwrap();
    let outcome = group
        .set_count(&read, 4, AutoscalerMode::AdjustMinCount)
        .unwrap();
    assert!(
        matches!(&outcome, SetOutcome::Confirmed(done) if **done == SetOutcome::CountSet { from: 2, to: 4 }),
        "{outcome:?}"
    );
    assert!(outcome.to_string().contains("reading back"), "{outcome}");
    assert_eq!(emu.calls("PATCH").len(), 1, "not sent twice");
    assert_eq!(group.read().unwrap().count, 4);
}

#[test]
fn a_write_that_never_landed_is_sent_again() {
    let emu = Emulator::start(&seed());
    // The connection drops before the PATCH is handled: nothing changed.
    emu.add_faults(json!({"method": "PATCH", "times": 1, "status": 503, "dropConnection": true}));
    let (client, _) = emu.client();
    let group = VmssGroup::new(client.clone(), vmss_id(), Blocking::new().unwrap());
    let read = group.read().unwrap();
    assert_eq!(
        group
            .set_count(&read, 4, AutoscalerMode::AdjustMinCount)
            .unwrap(),
        SetOutcome::CountSet { from: 2, to: 4 }
    );
    assert_eq!(emu.calls("PATCH").len(), 2);
}

/// The other direction of the check in support/arm.rs (every request the
/// emulator saw is listed): every listed operation is one the client really
/// sends, so the custom role generated from the list grants nothing more.
#[test]
fn every_operation_in_the_role_list_is_a_request_the_client_sends() {
    use mlscaler::arm::operations::{find, OPERATIONS};
    let emu = Emulator::start(&seed());
    full_scenario(&emu);
    let (client, _) = emu.client();
    let rt = Blocking::new().unwrap();
    rt.block_on(client.vmss_instance_action(
        &vmss_id(),
        InstanceAction::ManualUpgrade,
        &["0".to_string()],
    ))
    .unwrap();
    let seen: BTreeSet<String> = emu
        .requests()
        .iter()
        .filter_map(|e| {
            find(
                &e.method,
                &e.path.replace("/operationResults/", "/operations/"),
            )
        })
        .map(|op| format!("{} {}", op.method, op.path))
        .collect();
    // The emulator always answers an agent pool PUT with Azure-AsyncOperation
    // (as AKS does); the client falls back to the Location header, which
    // AKS points at `operationresults`, only without it.
    let not_reachable_here = ["GET /subscriptions/{subscriptionId}/providers/Microsoft.ContainerService/locations/{location}/operationresults/{operationId}"];
    let missing: Vec<String> = OPERATIONS
        .iter()
        .map(|op| format!("{} {}", op.method, op.path))
        .filter(|op| !seen.contains(op) && !not_reachable_here.contains(&op.as_str()))
        .collect();
    assert!(missing.is_empty(), "listed but never sent: {missing:#?}");
}
