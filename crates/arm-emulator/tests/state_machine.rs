//! The state machine on its own (no HTTP, no clock: each request says when
//! it happens): tokens, pools and scale sets whose writes are operations,
//! faults, the quota and the request log.

use arm_emulator::state::{EmuRequest, EmuResponse, AKS_API_VERSION, COMPUTE_API_VERSION};
use arm_emulator::{Fault, Principal, Seed, State};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const SUB: &str = "00000000-0000-0000-0000-000000000001";
const POOL: &str = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg1/providers/Microsoft.ContainerService/managedClusters/aks1/agentPools/np1";
const VMSS: &str = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachineScaleSets/ss1";

fn seed(extra: Value) -> Seed {
    let mut s = json!({
        "operationDelayMs": 100,
        "clusters": [{"subscription": SUB, "resourceGroup": "rg1", "name": "aks1",
            "pools": [{"name": "np1", "properties": {"count": 3, "vmSize": "Standard_D4s_v5", "mode": "User"}}]}],
        "scaleSets": [{"subscription": SUB, "resourceGroup": "rg1", "name": "ss1",
            "skuName": "Standard_D2s_v5", "capacity": 3,
            "instances": [
                {"instanceId": "0", "protectFromScaleIn": true},
                {"instanceId": "1"},
                {"instanceId": "2"}]}],
    });
    if let (Some(s), Some(extra)) = (s.as_object_mut(), extra.as_object()) {
        s.extend(extra.clone());
    }
    serde_json::from_value(s).unwrap()
}

fn principal() -> Principal {
    Principal {
        tenant: "t1".into(),
        client_id: "c1".into(),
        client_secret: "s1".into(),
    }
}

/// A state and the time of its start, with a token already issued.
struct Emu {
    state: State,
    t0: Instant,
    token: String,
}

impl Emu {
    fn new(seed: &Seed) -> Emu {
        let mut state = State::new(seed, principal(), "https://127.0.0.1:1").unwrap();
        let t0 = Instant::now();
        let rsp = state.handle(&token_request("s1"), t0);
        assert_eq!(rsp.status, 200, "{:?}", rsp.body);
        let token = body(&rsp)["access_token"].as_str().unwrap().to_string();
        Emu { state, t0, token }
    }

    /// `method path[?query]` with the api-version of its provider, `ms`
    /// after start.
    fn call(&mut self, ms: u64, method: &str, path: &str, body: Option<Value>) -> EmuResponse {
        self.call_with(ms, method, path, body, &[])
    }

    fn call_with(
        &mut self,
        ms: u64,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> EmuResponse {
        let api = if path.contains("Microsoft.Compute") {
            COMPUTE_API_VERSION
        } else {
            AKS_API_VERSION
        };
        let mut h: HashMap<String, String> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        h.insert("authorization".into(), format!("Bearer {}", self.token));
        let (path, extra) = path.split_once('?').unwrap_or((path, ""));
        let req = EmuRequest {
            method: method.into(),
            path: path.into(),
            query: format!("api-version={api}&{extra}"),
            headers: h,
            body: body
                .map(|b| serde_json::to_vec(&b).unwrap())
                .unwrap_or_default(),
        };
        self.state.handle(&req, self.t0 + Duration::from_millis(ms))
    }
}

fn token_request(secret: &str) -> EmuRequest {
    EmuRequest {
        method: "POST".into(),
        path: "/t1/oauth2/v2.0/token".into(),
        query: String::new(),
        headers: HashMap::new(),
        body: format!("grant_type=client_credentials&client_id=c1&client_secret={secret}&scope=x")
            .into_bytes(),
    }
}

fn body(rsp: &EmuResponse) -> &Value {
    rsp.body.as_ref().expect("a JSON body")
}

fn header<'a>(rsp: &'a EmuResponse, name: &str) -> Option<&'a str> {
    rsp.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn instance_ids(emu: &mut Emu, ms: u64) -> Vec<String> {
    let rsp = emu.call(ms, "GET", &format!("{VMSS}/virtualMachines"), None);
    body(&rsp)["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["instanceId"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_wrong_secret_gets_entras_error_and_a_call_without_a_token_gets_401() {
    let mut state = State::new(&seed(json!({})), principal(), "https://127.0.0.1:1").unwrap();
    let now = Instant::now();
    let rsp = state.handle(&token_request("wrong"), now);
    assert_eq!(rsp.status, 401);
    assert_eq!(body(&rsp)["error"], "invalid_client");
    let req = EmuRequest {
        method: "GET".into(),
        path: POOL.into(),
        query: format!("api-version={AKS_API_VERSION}"),
        headers: HashMap::new(),
        body: Vec::new(),
    };
    let rsp = state.handle(&req, now);
    assert_eq!(rsp.status, 401);
    assert_eq!(body(&rsp)["error"]["code"], "AuthenticationFailed");
}

#[test]
fn a_pool_put_is_an_operation_that_changes_the_count_when_it_finishes() {
    let mut emu = Emu::new(&seed(json!({})));
    let rsp = emu.call(0, "GET", POOL, None);
    assert_eq!(body(&rsp)["properties"]["eTag"], "1");
    let put = json!({"properties": {"count": 5, "vmSize": "Standard_D4s_v5", "mode": "User"}});
    let rsp = emu.call_with(1, "PUT", POOL, Some(put.clone()), &[("if-match", "7")]);
    assert_eq!(rsp.status, 412);
    let rsp = emu.call_with(1, "PUT", POOL, Some(put.clone()), &[("if-match", "1")]);
    assert_eq!(rsp.status, 200, "{:?}", rsp.body);
    assert_eq!(body(&rsp)["properties"]["provisioningState"], "Scaling");
    let op_url = header(&rsp, "Azure-AsyncOperation").unwrap().to_string();
    let op_path = op_url
        .trim_start_matches("https://127.0.0.1:1")
        .split('?')
        .next()
        .unwrap()
        .to_string();
    // A second write while the first runs: 409 with Retry-After.
    let rsp = emu.call(2, "PUT", POOL, Some(put));
    assert_eq!(rsp.status, 409);
    assert_eq!(header(&rsp, "Retry-After"), Some("1"));
    assert_eq!(
        body(&emu.call(3, "GET", &op_path, None))["status"],
        "InProgress"
    );
    assert_eq!(
        body(&emu.call(3, "GET", POOL, None))["properties"]["count"],
        3
    );
    // After the seed's 100 ms the operation has succeeded.
    assert_eq!(
        body(&emu.call(200, "GET", &op_path, None))["status"],
        "Succeeded"
    );
    let pool = emu.call(200, "GET", POOL, None);
    assert_eq!(body(&pool)["properties"]["count"], 5);
    assert_eq!(body(&pool)["properties"]["provisioningState"], "Succeeded");
}

#[test]
fn an_autoscaled_pool_refuses_a_manual_count() {
    let mut emu = Emu::new(&seed(json!({})));
    let put = json!({"properties": {"count": 3, "enableAutoScaling": true, "minCount": 2, "maxCount": 6}});
    assert_eq!(emu.call(0, "PUT", POOL, Some(put)).status, 200);
    let put = json!({"properties": {"count": 4, "enableAutoScaling": true, "minCount": 2, "maxCount": 6}});
    let rsp = emu.call(500, "PUT", POOL, Some(put));
    assert_eq!(rsp.status, 400);
    assert_eq!(body(&rsp)["error"]["code"], "InvalidParameter");
}

#[test]
fn scale_in_removes_unprotected_instances_newest_first_and_a_new_size_leaves_them_off_the_model() {
    let mut emu = Emu::new(&seed(json!({})));
    let patch = json!({"sku": {"capacity": 1, "name": "Standard_D4s_v5"}});
    let rsp = emu.call(0, "PATCH", VMSS, Some(patch));
    assert_eq!(rsp.status, 200, "{:?}", rsp.body);
    assert_eq!(body(&rsp)["sku"]["capacity"], 1);
    assert_eq!(instance_ids(&mut emu, 1), ["0", "1", "2"]);
    assert_eq!(instance_ids(&mut emu, 200), ["0"]);
    let vm = emu.call(200, "GET", &format!("{VMSS}/virtualMachines/0"), None);
    assert_eq!(body(&vm)["properties"]["latestModelApplied"], false);
    // Scale-out adds new ids after the highest ever used.
    let rsp = emu.call(201, "PATCH", VMSS, Some(json!({"sku": {"capacity": 3}})));
    assert_eq!(rsp.status, 200);
    assert_eq!(instance_ids(&mut emu, 400), ["0", "3", "4"]);
}

#[test]
fn instance_actions_answer_202_with_a_result_location() {
    let mut emu = Emu::new(&seed(json!({})));
    let rsp = emu.call(
        0,
        "POST",
        &format!("{VMSS}/deallocate"),
        Some(json!({"instanceIds": ["2"]})),
    );
    assert_eq!(rsp.status, 202);
    let location = header(&rsp, "Location").unwrap();
    assert!(location.contains("/operationResults/"), "{location}");
    let rsp = emu.call(
        1,
        "POST",
        &format!("{VMSS}/delete"),
        Some(json!({"instanceIds": ["9"]})),
    );
    assert_eq!(rsp.status, 409, "busy while the first action runs");
    let list = emu.call(
        200,
        "GET",
        &format!("{VMSS}/virtualMachines?$expand=instanceView"),
        None,
    );
    let power: Vec<&Value> = body(&list)["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|vm| &vm["properties"]["instanceView"]["statuses"][1]["code"])
        .collect();
    assert_eq!(
        power,
        [
            "PowerState/running",
            "PowerState/running",
            "PowerState/deallocated"
        ]
    );
}

#[test]
fn a_fault_answers_instead_the_given_number_of_times_then_the_emulator_is_normal_again() {
    let mut emu = Emu::new(&seed(json!({})));
    let fault: Fault = serde_json::from_value(
        json!({"method": "GET", "pathContains": "agentpools", "times": 2, "status": 429, "retryAfter": 7}),
    )
    .unwrap();
    emu.state.add_faults(vec![fault]);
    for _ in 0..2 {
        let rsp = emu.call(0, "GET", POOL, None);
        assert_eq!(rsp.status, 429);
        assert_eq!(body(&rsp)["error"]["code"], "TooManyRequests");
        assert_eq!(header(&rsp, "Retry-After"), Some("7"));
    }
    assert_eq!(emu.call(0, "GET", POOL, None).status, 200);
}

#[test]
fn a_failed_operation_changes_nothing() {
    let mut emu = Emu::new(&seed(json!({})));
    let fault: Fault = serde_json::from_value(
        json!({"method": "PATCH", "failOperation": true, "code": "AllocationFailed"}),
    )
    .unwrap();
    emu.state.add_faults(vec![fault]);
    let rsp = emu.call(0, "PATCH", VMSS, Some(json!({"sku": {"capacity": 5}})));
    assert_eq!(rsp.status, 200);
    let op_url = header(&rsp, "Azure-AsyncOperation").unwrap();
    let op_path = op_url
        .trim_start_matches("https://127.0.0.1:1")
        .split('?')
        .next()
        .unwrap()
        .to_string();
    let status = emu.call(200, "GET", &op_path, None);
    assert_eq!(body(&status)["status"], "Failed");
    assert_eq!(body(&status)["error"]["code"], "AllocationFailed");
    assert_eq!(instance_ids(&mut emu, 200).len(), 3);
}

#[test]
fn growing_past_the_vcpu_quota_is_refused_like_arm_does() {
    // 3 pool nodes + 3 instances at 2 cores = 12 of 16 cores: 2 more nodes fit.
    let mut emu = Emu::new(&seed(json!({"quota": {"limitCores": 16}})));
    let rsp = emu.call(0, "PATCH", VMSS, Some(json!({"sku": {"capacity": 6}})));
    assert_eq!(rsp.status, 409);
    assert_eq!(body(&rsp)["error"]["code"], "OperationNotAllowed");
    let put = json!({"properties": {"count": 6}});
    let rsp = emu.call(0, "PUT", POOL, Some(put));
    assert_eq!(rsp.status, 400);
    assert_eq!(body(&rsp)["error"]["code"], "QuotaExceeded");
    let rsp = emu.call(0, "PATCH", VMSS, Some(json!({"sku": {"capacity": 5}})));
    assert_eq!(rsp.status, 200);
}

#[test]
fn a_wrong_api_version_is_refused() {
    let mut emu = Emu::new(&seed(json!({})));
    let mut req = EmuRequest {
        method: "GET".into(),
        path: POOL.into(),
        query: "api-version=2020-01-01".into(),
        headers: HashMap::new(),
        body: Vec::new(),
    };
    req.headers
        .insert("authorization".into(), format!("Bearer {}", emu.token));
    let rsp = emu.state.handle(&req, emu.t0);
    assert_eq!(rsp.status, 400);
    assert_eq!(body(&rsp)["error"]["code"], "InvalidApiVersionParameter");
}

#[test]
fn the_log_has_every_request_but_no_token_bodies() {
    let mut emu = Emu::new(&seed(json!({})));
    emu.call(0, "GET", POOL, None);
    let log = emu.state.log();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].path, "/t1/oauth2/v2.0/token");
    assert_eq!(log[0].body, json!("(token request body not logged)"));
    assert_eq!(log[0].response, json!("(token response not logged)"));
    assert!(log[1].authorized);
    assert_eq!(log[1].status, 200);
    emu.state.clear_log();
    assert!(emu.state.log().is_empty());
}

#[test]
fn a_dropped_answer_applies_the_write_unless_the_fault_answers_instead() {
    let mut emu = Emu::new(&seed(json!({})));
    let fault = |v: Value| -> Fault { serde_json::from_value(v).unwrap() };
    // Handled, then the connection is dropped: the write happened.
    emu.state.add_faults(vec![fault(
        json!({"method": "PATCH", "dropConnection": true, "delayMs": 50}),
    )]);
    let rsp = emu.call(0, "PATCH", VMSS, Some(json!({"sku": {"capacity": 5}})));
    assert!(rsp.drop, "the answer is dropped");
    assert_eq!(rsp.delay, Some(Duration::from_millis(50)));
    assert_eq!(
        instance_ids(&mut emu, 200).len(),
        5,
        "the write was applied"
    );
    // With a status, nothing is handled.
    emu.state.add_faults(vec![fault(
        json!({"method": "PATCH", "dropConnection": true, "status": 503}),
    )]);
    let rsp = emu.call(300, "PATCH", VMSS, Some(json!({"sku": {"capacity": 2}})));
    assert!(rsp.drop);
    assert_eq!(instance_ids(&mut emu, 600).len(), 5, "nothing was applied");
}

#[test]
fn an_operation_can_be_made_to_never_finish() {
    let mut emu = Emu::new(&seed(json!({})));
    let fault: Fault =
        serde_json::from_value(json!({"method": "PATCH", "neverFinish": true})).unwrap();
    emu.state.add_faults(vec![fault]);
    let rsp = emu.call(0, "PATCH", VMSS, Some(json!({"sku": {"capacity": 5}})));
    assert_eq!(rsp.status, 200);
    let op_path = header(&rsp, "Azure-AsyncOperation")
        .unwrap()
        .trim_start_matches("https://127.0.0.1:1")
        .split('?')
        .next()
        .unwrap()
        .to_string();
    // An hour later it still runs, and the scale set is still busy.
    let status = emu.call(3_600_000, "GET", &op_path, None);
    assert_eq!(body(&status)["status"], "InProgress");
    let v = emu.call(3_600_000, "GET", VMSS, None);
    assert_eq!(body(&v)["properties"]["provisioningState"], "Updating");
}

#[test]
fn token_requests_are_faulted_only_by_faults_that_name_them() {
    let mut state = State::new(&seed(json!({})), principal(), "https://127.0.0.1:1").unwrap();
    let fault = |v: Value| -> Fault { serde_json::from_value(v).unwrap() };
    // A fault for every request (no path) leaves sign-in alone.
    state.add_faults(vec![fault(json!({"times": 5, "status": 503}))]);
    let t0 = Instant::now();
    assert_eq!(state.handle(&token_request("s1"), t0).status, 200);
    state.clear_faults();
    state.add_faults(vec![fault(
        json!({"pathContains": "oauth2", "status": 400, "code": "invalid_request"}),
    )]);
    assert_eq!(state.handle(&token_request("s1"), t0).status, 400);
    assert_eq!(state.handle(&token_request("s1"), t0).status, 200);
}
