//! The fault matrix: every fault class a controller meets on Azure (as the
//! local ARM emulator injects them) against every kind of target (an AKS
//! pool by count, a scale set by count, a scale set instance by instance, a
//! scale set's VM size), run through the real `mlscaler scale` binary. Each
//! cell states the outcome, the exit code, how many writes reach ARM and the
//! class of the error; every cell also checks that the run appended exactly
//! one decision record saying the same, that the target stays within its
//! bounds (and unchanged when the run did not change it), and that no
//! secret or token appears in any output, record or state.
//!
//! Waits are short through the settings (`--max-wait 200ms`,
//! `--request-timeout 1s`, `--deadline`), so the whole matrix runs in about
//! a minute or two; nothing here asserts a duration.

#[path = "support/arm.rs"]
mod arm;
#[path = "support/cli.rs"]
mod cli;

use arm::Emulator;
use cli::{mlscaler, mlscaler_env, Run};
use serde_json::{json, Value};
use std::ops::RangeInclusive;
use std::path::Path;

const SUB: &str = "00000000-0000-0000-0000-000000000001";
const LADDER: [&str; 3] = ["Standard_D2s_v5", "Standard_D4s_v5", "Standard_D8s_v5"];

/// The kinds of target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// An AKS agent pool by count (predictive policy).
    AksPool,
    /// A scale set by count (predictive policy).
    Vmss,
    /// A scale set instance by instance (jobs policy).
    Instances,
    /// A scale set's VM size (vertical policy).
    VmSize,
}

const KINDS: [Kind; 4] = [Kind::AksPool, Kind::Vmss, Kind::Instances, Kind::VmSize];

/// The fault classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// 409 "another operation in progress" twice, then the write goes through.
    Busy409WaitedOut,
    /// 409 busy beyond the retry bound.
    Busy409Exhausted,
    /// A 409 that is not "busy" (a conflicting property change).
    Conflict409Other,
    /// 412 once: the target changed since it was read.
    Precondition412Once,
    /// 412 twice: changed again after re-planning.
    Precondition412Twice,
    /// 429 twice on the read, with Retry-After.
    Throttled429RetryAfter,
    /// 429 twice on the read, without Retry-After (backoff).
    Throttled429NoRetryAfter,
    /// 429 twice on the write, asking for a day: capped at --max-wait.
    Throttled429Huge,
    /// 429 on every read: beyond the bound.
    Throttled429Exhausted,
    /// 503 three times on the write, then it goes through.
    Server5xxBurst,
    /// 503 on every write.
    Server5xxExhausted,
    /// The write is applied, the connection drops before the answer.
    ConnectionDrop,
    /// The write is applied, its answer comes after the client gave up.
    AnswerAfterTimeout,
    /// The write's long-running operation ends Failed.
    OperationFailed,
    /// The write's long-running operation never ends (the deadline ends the run).
    OperationNeverEnds,
    /// Out of vCPU quota, with ARM's numbers (part of a scale-out fits).
    QuotaWithNumbers,
    /// Out of quota, without numbers.
    QuotaWithoutNumbers,
    /// The target's provisioning state is not Succeeded.
    NotSucceeded,
    /// The AKS pool has the cluster autoscaler on.
    AutoscalerOn,
    /// The token endpoint refuses the service principal.
    TokenFailure,
    /// The read of the target answers late (after the request timeout).
    DelayedGet,
}

const FAULTS: [Fault; 21] = [
    Fault::Busy409WaitedOut,
    Fault::Busy409Exhausted,
    Fault::Conflict409Other,
    Fault::Precondition412Once,
    Fault::Precondition412Twice,
    Fault::Throttled429RetryAfter,
    Fault::Throttled429NoRetryAfter,
    Fault::Throttled429Huge,
    Fault::Throttled429Exhausted,
    Fault::Server5xxBurst,
    Fault::Server5xxExhausted,
    Fault::ConnectionDrop,
    Fault::AnswerAfterTimeout,
    Fault::OperationFailed,
    Fault::OperationNeverEnds,
    Fault::QuotaWithNumbers,
    Fault::QuotaWithoutNumbers,
    Fault::NotSucceeded,
    Fault::AutoscalerOn,
    Fault::TokenFailure,
    Fault::DelayedGet,
];

/// What a cell must end in.
#[derive(Debug, Clone)]
struct Expect {
    outcome: &'static str,
    code: i32,
    /// ARM writes (PUT, PATCH, POST) that reach the emulator.
    writes: RangeInclusive<usize>,
    /// The record's error class (failed runs).
    class: Option<&'static str>,
}

fn ok(writes: usize) -> Expect {
    Expect {
        outcome: "applied",
        code: 0,
        writes: writes..=writes,
        class: None,
    }
}

fn failed(class: &'static str, writes: usize) -> Expect {
    Expect {
        outcome: "failed",
        code: 1,
        writes: writes..=writes,
        class: Some(class),
    }
}

fn held() -> Expect {
    Expect {
        outcome: "held",
        code: 5,
        writes: 0..=0,
        class: None,
    }
}

/// The writes of a run without faults: a PUT (pool), a PATCH (scale set),
/// a start and a capacity PATCH (instances), a size PATCH and an upgrade
/// (VM size).
fn normal(kind: Kind) -> usize {
    match kind {
        Kind::AksPool | Kind::Vmss => 1,
        Kind::Instances | Kind::VmSize => 2,
    }
}

/// The expected end of every cell (`None`: the fault does not apply).
fn expect(fault: Fault, kind: Kind) -> Option<Expect> {
    use Kind::*;
    let n = normal(kind);
    let by_count = matches!(kind, AksPool | Vmss);
    Some(match fault {
        Fault::Busy409WaitedOut => ok(n + 2),
        // 1 + 10 retries (RetryPolicy::max_busy_retries).
        Fault::Busy409Exhausted => failed("busy", 11),
        Fault::Conflict409Other => failed("rejected", 1),
        // By count, the run re-reads and re-plans once; the instance and
        // size policies do not re-plan: their record says what was done.
        Fault::Precondition412Once if by_count => ok(2),
        Fault::Precondition412Once | Fault::Precondition412Twice => match kind {
            Instances => failed("changed", 2),
            _ => failed("changed", if kind == VmSize { 1 } else { 2 }),
        },
        Fault::Throttled429RetryAfter | Fault::Throttled429NoRetryAfter => ok(n),
        Fault::Throttled429Huge => ok(n + 2),
        Fault::Throttled429Exhausted => failed("throttled", 0),
        // A conditional write (If-Match) that got a 5xx is read back and
        // sent again; the instances' start (no If-Match) is retried as is.
        Fault::Server5xxBurst => ok(n + 3),
        // 1 + 4 sends (RetryPolicy::max_server_retries).
        Fault::Server5xxExhausted => failed("server", 5),
        // A conditional write whose answer is lost is read back: applied. The
        // instances' start (no If-Match) is sent again, and may meet its own
        // operation still running (a busy 409, waited out).
        Fault::ConnectionDrop | Fault::AnswerAfterTimeout => match kind {
            Instances => Expect {
                writes: 3..=5,
                ..ok(3)
            },
            _ => ok(n),
        },
        Fault::OperationFailed => failed("operation_failed", 1),
        Fault::OperationNeverEnds => failed("timeout", 1),
        Fault::QuotaWithNumbers => match kind {
            // Part of the scale-out fits: one more, smaller write.
            AksPool | Vmss => Expect {
                outcome: "limited",
                code: 5,
                writes: 2..=2,
                class: None,
            },
            Instances => Expect {
                outcome: "limited",
                code: 5,
                writes: 3..=3,
                class: None,
            },
            VmSize => failed("quota", 1),
        },
        Fault::QuotaWithoutNumbers => failed("quota", if kind == Instances { 2 } else { 1 }),
        // Instance actions do not wait on the scale set's provisioning state
        // (each is an operation of its own): the instance policy goes on.
        Fault::NotSucceeded if kind == Instances => ok(2),
        Fault::NotSucceeded => held(),
        Fault::AutoscalerOn if kind == AksPool => ok(1),
        Fault::AutoscalerOn => return None,
        Fault::TokenFailure => failed("auth", 0),
        Fault::DelayedGet => ok(n),
    })
}

/// The target of a kind (a busy twin for `NotSucceeded`, the autoscaled
/// pool for `AutoscalerOn`).
fn target(kind: Kind, fault: Fault) -> String {
    let busy = fault == Fault::NotSucceeded;
    let rg = format!("/subscriptions/{SUB}/resourceGroups/rg1/providers");
    match kind {
        Kind::AksPool => {
            let pool = match fault {
                Fault::NotSucceeded => "upgrading",
                Fault::AutoscalerOn => "auto1",
                _ => "np1",
            };
            format!("{rg}/Microsoft.ContainerService/managedClusters/aks1/agentPools/{pool}")
        }
        Kind::Vmss => vmss(&rg, if busy { "vmssbusy" } else { "vmss1" }),
        Kind::Instances => vmss(&rg, if busy { "hpcbusy" } else { "hpc" }),
        Kind::VmSize => vmss(&rg, if busy { "membusy" } else { "mem" }),
    }
}

fn vmss(rg: &str, name: &str) -> String {
    format!("{rg}/Microsoft.Compute/virtualMachineScaleSets/{name}")
}

fn seed() -> Value {
    let pool = |name: &str, extra: Value| {
        let mut p =
            json!({"count": 12, "vmSize": "Standard_D4s_v5", "mode": "User", "osType": "Linux"});
        p.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({"name": name, "properties": p})
    };
    let set = |name: &str, sku: &str, capacity: u64, busy: bool| {
        let mut v = json!({"subscription": SUB, "resourceGroup": "rg1", "name": name, "skuName": sku, "capacity": capacity});
        if busy {
            v["provisioningState"] = json!("Updating");
        }
        v
    };
    let hpc = |name: &str, busy: bool| {
        let mut v = set(name, "Standard_HB120rs_v3", 4, busy);
        v["instances"] = json!([
            {"instanceId": "0", "powerState": "running"},
            {"instanceId": "1", "powerState": "running"},
            {"instanceId": "2", "powerState": "deallocated"},
            {"instanceId": "3", "powerState": "deallocated"}
        ]);
        v
    };
    json!({
        "operationDelayMs": 50,
        "retryAfterSecs": 1,
        "clusters": [{"subscription": SUB, "resourceGroup": "rg1", "name": "aks1", "pools": [
            pool("np1", json!({})),
            pool("auto1", json!({"enableAutoScaling": true, "minCount": 2, "maxCount": 60})),
            pool("upgrading", json!({"provisioningState": "Upgrading"})),
        ]}],
        "scaleSets": [
            set("vmss1", "Standard_D4s_v5", 12, false),
            set("vmssbusy", "Standard_D4s_v5", 12, true),
            hpc("hpc", false),
            hpc("hpcbusy", true),
            set("mem", "Standard_D2s_v5", 2, false),
            set("membusy", "Standard_D2s_v5", 2, true),
        ]
    })
}

/// Where each kind writes first, and its conditional write (If-Match).
fn first_write(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::AksPool => ("PUT", "agentPools/"),
        Kind::Vmss => ("PATCH", "virtualMachineScaleSets/vmss1"),
        Kind::Instances => ("POST", "/start"),
        Kind::VmSize => ("PATCH", "virtualMachineScaleSets/mem"),
    }
}

fn conditional_write(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::Instances => ("PATCH", "virtualMachineScaleSets/hpc"),
        k => first_write(k),
    }
}

/// The read of the target the run plans from.
fn target_read(kind: Kind) -> &'static str {
    match kind {
        Kind::AksPool => "agentPools/np1",
        Kind::Vmss => "virtualMachineScaleSets/vmss1",
        Kind::Instances => "virtualMachineScaleSets/hpc",
        Kind::VmSize => "virtualMachineScaleSets/mem",
    }
}

const QUOTA_COUNT: &str = "Operation could not be completed as it results in exceeding approved standardDSv2Family Cores quota. Additional details - Deployment Model: Resource Manager, Location: westeurope, Current Limit: 60, Current Usage: 48, Additional Required: 60, (Minimum) New Limit Required: 108.";
const QUOTA_INSTANCES: &str = "Operation could not be completed as it results in exceeding approved standardHBrsv3Family Cores quota. Additional details - Deployment Model: Resource Manager, Location: westeurope, Current Limit: 20, Current Usage: 16, Additional Required: 8, (Minimum) New Limit Required: 24.";

/// The faults to inject for a cell.
fn faults(fault: Fault, kind: Kind) -> Value {
    let (wm, wp) = first_write(kind);
    let (cm, cp) = conditional_write(kind);
    let read = target_read(kind);
    let busy = |times: u32| {
        json!({"method": wm, "pathContains": wp, "times": times, "status": 409,
            "code": "OperationNotAllowed", "retryAfter": 1,
            "message": "Operation is not allowed because there's an in progress update operation."})
    };
    match fault {
        Fault::Busy409WaitedOut => busy(2),
        Fault::Busy409Exhausted => busy(100),
        Fault::Conflict409Other => json!({"method": wm, "pathContains": wp, "status": 409,
            "code": "PropertyChangeNotAllowed", "message": "Changing property 'osProfile' is not allowed."}),
        Fault::Precondition412Once => json!({"method": cm, "pathContains": cp, "status": 412}),
        Fault::Precondition412Twice => {
            json!({"method": cm, "pathContains": cp, "times": 2, "status": 412})
        }
        Fault::Throttled429RetryAfter => {
            json!({"method": "GET", "pathContains": read, "times": 2, "status": 429, "retryAfter": 1})
        }
        Fault::Throttled429NoRetryAfter => {
            json!({"method": "GET", "pathContains": read, "times": 2, "status": 429})
        }
        Fault::Throttled429Huge => {
            json!({"method": wm, "pathContains": wp, "times": 2, "status": 429, "retryAfter": 86400})
        }
        Fault::Throttled429Exhausted => {
            json!({"method": "GET", "pathContains": read, "times": 1000, "status": 429, "retryAfter": 1})
        }
        Fault::Server5xxBurst => {
            json!({"method": wm, "pathContains": wp, "times": 3, "status": 503})
        }
        Fault::Server5xxExhausted => {
            json!({"method": wm, "pathContains": wp, "times": 1000, "status": 503})
        }
        Fault::ConnectionDrop => {
            json!({"method": wm, "pathContains": wp, "dropConnection": true})
        }
        Fault::AnswerAfterTimeout => json!({"method": wm, "pathContains": wp, "delayMs": 2500}),
        Fault::OperationFailed => json!({"method": wm, "pathContains": wp, "failOperation": true,
            "code": "ReconcileVMSSAgentPoolFailed", "message": "Unable to scale: allocation failed."}),
        Fault::OperationNeverEnds => {
            json!({"method": wm, "pathContains": wp, "neverFinish": true})
        }
        Fault::QuotaWithNumbers => match kind {
            Kind::AksPool => json!({"method": cm, "pathContains": cp, "status": 400,
                "code": "QuotaExceeded", "message": QUOTA_COUNT}),
            Kind::Instances => json!({"method": cm, "pathContains": cp, "status": 409,
                "code": "OperationNotAllowed", "message": QUOTA_INSTANCES}),
            _ => json!({"method": cm, "pathContains": cp, "status": 409,
                "code": "OperationNotAllowed", "message": QUOTA_COUNT}),
        },
        Fault::QuotaWithoutNumbers => json!({"method": cm, "pathContains": cp, "status": 400,
            "code": "QuotaExceeded", "message": "Quota exceeded for this subscription."}),
        Fault::NotSucceeded | Fault::AutoscalerOn => json!([]),
        Fault::TokenFailure => json!({"pathContains": "oauth2", "times": 1000, "status": 401,
            "code": "invalid_client", "message": "AADSTS7000215: Invalid client secret provided."}),
        Fault::DelayedGet => {
            json!({"method": "GET", "pathContains": read, "times": 1, "delayMs": 1500})
        }
    }
}

/// Files a kind's policy reads, written into the cell's folder.
fn inputs(kind: Kind, dir: &Path) {
    match kind {
        Kind::Instances => {
            std::fs::write(
                dir.join("jobs.ndjson"),
                "{\"id\":\"a\",\"queue\":\"hpc\",\"nodes\":6,\"status\":\"Queued\"}\n",
            )
            .unwrap();
            std::fs::write(dir.join("nodes.json"), "[]").unwrap();
        }
        Kind::VmSize => {
            let mut csv = String::from("timestamp,mem_util\n");
            for i in 0..60 {
                let v = if i < 40 { 0.3 } else { 0.9 };
                csv.push_str(&format!("1998-01-01 00:{i:02}:00,{v}\n"));
            }
            std::fs::write(dir.join("mem.csv"), csv).unwrap();
        }
        Kind::AksPool | Kind::Vmss => {}
    }
}

/// The arguments of a kind's run.
fn args(kind: Kind, target: &str, models: &Path, worldcup: &Path) -> Vec<String> {
    let mut a: Vec<String> = match kind {
        Kind::AksPool | Kind::Vmss => vec![
            "--data".into(),
            worldcup.display().to_string(),
            "--model".into(),
            "count".into(),
            "--models".into(),
            models.display().to_string(),
            "--capacity-per-node".into(),
            "4000".into(),
            "--max-nodes".into(),
            "100".into(),
            "--now".into(),
            "1998-06-30T18:40:00Z".into(),
        ],
        Kind::Instances => [
            "--policy",
            "jobs",
            "--jobs",
            "jobs.ndjson",
            "--nodes",
            "nodes.json",
            "--queue",
            "hpc",
        ]
        .map(String::from)
        .into(),
        Kind::VmSize => vec![
            "--policy".into(),
            "vertical".into(),
            "--data".into(),
            "mem.csv".into(),
            "--ladder".into(),
            LADDER.join(","),
            "--memory-window".into(),
            "30m".into(),
            "--now".into(),
            "1998-01-01T00:45:00Z".into(),
        ],
    };
    if kind == Kind::Instances {
        a.extend(["--max-nodes".into(), "6".into()]);
    }
    a.extend(["--target".into(), target.to_string()]);
    a
}

/// One cell's run and what it left.
struct Ran {
    run: Run,
    record: Value,
    log: Vec<Value>,
    writes: usize,
    /// The emulator's state after the run.
    state: Value,
    /// The planner's state file after the run (null when none).
    memory: Value,
    files: String,
}

fn run_cell(fault: Fault, kind: Kind, models: &Path, worldcup: &Path) -> Ran {
    let emu = Emulator::start(&seed());
    let dir = tempfile::tempdir().unwrap();
    inputs(kind, dir.path());
    emu.add_faults(faults(fault, kind));
    let deadline = if fault == Fault::OperationNeverEnds {
        "3s"
    } else {
        "30s"
    };
    let mut a = vec![
        "scale".to_string(),
        "--output".into(),
        "json".into(),
        "--max-wait".into(),
        "200ms".into(),
        "--request-timeout".into(),
        "1s".into(),
        "--deadline".into(),
        deadline.into(),
    ];
    a.extend(args(kind, &target(kind, fault), models, worldcup));
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let owned = emu.cli_env(arm::CLIENT_SECRET);
    let env: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = mlscaler_env(dir.path(), &a, &env);
    let log_text = std::fs::read_to_string(dir.path().join("decisions.jsonl")).unwrap_or_default();
    let state_text =
        std::fs::read_to_string(dir.path().join("mlscaler-state.json")).unwrap_or_default();
    let log = log_text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or(Value::Null))
        .collect();
    let record = serde_json::from_str(&run.stdout).unwrap_or(Value::Null);
    Ran {
        memory: serde_json::from_str(&state_text).unwrap_or(Value::Null),
        writes: emu.writes().len(),
        state: emu.state(),
        record,
        log,
        files: format!("{log_text}\n{state_text}"),
        run,
    }
}

/// The size of the target after the run: a count, or a VM size.
fn size_of(state: &Value, kind: Kind, target: &str) -> Value {
    let id = target.to_lowercase();
    let find = |list: &str| {
        state[list]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"].as_str().unwrap().to_lowercase() == id)
            .cloned()
            .unwrap_or_else(|| panic!("no {id} in {state}"))
    };
    match kind {
        Kind::AksPool => find("pools")["properties"]["count"].clone(),
        Kind::Vmss | Kind::Instances => find("scaleSets")["capacity"].clone(),
        Kind::VmSize => find("scaleSets")["skuName"].clone(),
    }
}

/// Why a cell is wrong, or `None`.
fn check(fault: Fault, kind: Kind, want: &Expect, r: &Ran) -> Option<String> {
    let mut wrong = Vec::new();
    let rec = &r.record;
    if r.run.code != want.code {
        wrong.push(format!("exit code {} (wanted {})", r.run.code, want.code));
    }
    if rec["outcome"] != want.outcome {
        wrong.push(format!(
            "outcome {} (wanted {})",
            rec["outcome"], want.outcome
        ));
    }
    if !want.writes.contains(&r.writes) {
        wrong.push(format!("{} writes (wanted {:?})", r.writes, want.writes));
    }
    let class = rec["error_class"].as_str();
    if class != want.class {
        wrong.push(format!("error class {class:?} (wanted {:?})", want.class));
    }
    // The run appended exactly one record, the one it printed.
    if r.log.len() != 1 || r.log[0] != *rec {
        wrong.push(format!(
            "{} records in the log, or not the printed one",
            r.log.len()
        ));
    }
    // A failed record lists every write the run sent.
    if rec.get("writes").is_some() && rec["writes"].as_array().map(Vec::len) != Some(r.writes) {
        wrong.push(format!("the record lists {} writes", rec["writes"]));
    }
    // The target stays within its bounds, and unchanged unless the run changed it.
    let t = target(kind, fault);
    let size = size_of(&r.state, kind, &t);
    let unchanged = matches!(want.outcome, "failed" | "held" | "nothing_to_do");
    match kind {
        Kind::AksPool | Kind::Vmss => {
            let n = size.as_u64().unwrap_or(0);
            if !(1..=100).contains(&n) {
                wrong.push(format!("{n} nodes, outside [1, 100]"));
            }
            if unchanged && n != 12 {
                wrong.push(format!("{n} nodes after a run that changed nothing"));
            }
            if want.outcome == "applied" && fault != Fault::AutoscalerOn {
                if rec["after"]["count"].as_u64() != Some(n) {
                    wrong.push(format!("{n} nodes, but the record says {}", rec["after"]));
                }
                if rec["before"]["count"] != 12 {
                    wrong.push(format!(
                        "before {} (the pool had 12)",
                        rec["before"]["count"]
                    ));
                }
            }
        }
        _ => {}
    }
    // A write whose answer was lost but which landed is recorded as applied,
    // with the true before and after, and the planner remembers it.
    if matches!(fault, Fault::ConnectionDrop | Fault::AnswerAfterTimeout)
        && matches!(kind, Kind::AksPool | Kind::Vmss)
    {
        let detail = rec["after"]["detail"].as_str().unwrap_or("");
        if !detail.contains("reading back showed it applied") {
            wrong.push(format!("the record does not say it read back: {detail}"));
        }
        if !r.memory["last_scale_out"].is_number() {
            wrong.push(format!("the planner forgot the scale-out: {}", r.memory));
        }
    }
    match kind {
        Kind::AksPool | Kind::Vmss => {}
        Kind::Instances => {
            let n = size.as_u64().unwrap_or(0);
            if !(4..=6).contains(&n) {
                wrong.push(format!("capacity {n}, outside [4, 6]"));
            }
        }
        Kind::VmSize => {
            let s = size.as_str().unwrap_or("");
            if !LADDER.contains(&s) {
                wrong.push(format!("size {s} is not on the ladder"));
            }
            if unchanged && s != LADDER[0] {
                wrong.push(format!("size {s} after a run that changed nothing"));
            }
        }
    }
    // No secret and no token anywhere.
    for (name, text) in [
        ("stdout", &r.run.stdout),
        ("stderr", &r.run.stderr),
        ("decision log and state", &r.files),
    ] {
        for secret in [arm::CLIENT_SECRET, "access_token", "Bearer ", "emu."] {
            if text.contains(secret) {
                wrong.push(format!("{name} shows '{secret}'"));
            }
        }
    }
    if wrong.is_empty() {
        None
    } else {
        Some(format!(
            "{fault:?} x {kind:?}: {}\nstdout: {}\nstderr: {}",
            wrong.join("; "),
            r.run.stdout,
            r.run.stderr
        ))
    }
}

/// Every cell of the matrix, `(fault, kind, expectation)`.
fn cells() -> Vec<(Fault, Kind, Expect)> {
    FAULTS
        .iter()
        .flat_map(|&f| KINDS.iter().map(move |&k| (f, k)))
        .filter_map(|(f, k)| expect(f, k).map(|e| (f, k, e)))
        .collect()
}

#[test]
fn the_matrix_has_every_fault_class_for_every_kind_of_target() {
    // 21 fault classes x 4 kinds of target; the cluster autoscaler exists
    // only for AKS pools.
    assert_eq!(FAULTS.len() * KINDS.len(), 84);
    assert_eq!(cells().len(), 81);
}

#[test]
fn every_fault_on_every_kind_of_target_ends_as_the_matrix_says() {
    let models = tempfile::tempdir().unwrap();
    let trained = mlscaler(models.path(), &["train", "--models", "models", "-q"]);
    cli::assert_code(&trained, 0);
    let models = models.path().join("models");
    let worldcup = cli::data("worldcup98_requests_per_minute.csv");
    let cells = cells();
    // Two cells at a time (each has its own emulator and folder).
    let wrong: Vec<String> = std::thread::scope(|scope| {
        let chunks: Vec<_> = cells.chunks(cells.len().div_ceil(2)).collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let (models, worldcup) = (&models, &worldcup);
                scope.spawn(move || {
                    chunk
                        .iter()
                        .filter_map(|(fault, kind, want)| {
                            let ran = run_cell(*fault, *kind, models, worldcup);
                            check(*fault, *kind, want, &ran)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(
        wrong.is_empty(),
        "{} of {} cells are wrong:\n\n{}",
        wrong.len(),
        cells.len(),
        wrong.join("\n\n")
    );
}
