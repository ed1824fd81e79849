//! `mlscaler scale` against the local ARM emulator (real HTTPS, an Entra
//! ID-style token endpoint, long-running operations): the binary end to end,
//! on the bundled WorldCup98 data replayed at a busy moment.

#[path = "support/arm.rs"]
mod arm;
#[path = "support/cli.rs"]
mod cli;

use arm::Emulator;
use cli::{assert_code, mlscaler, mlscaler_env, Run};
use serde_json::{json, Value};
use std::path::Path;

const SUB: &str = "00000000-0000-0000-0000-000000000001";

fn pool(name: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.ContainerService/managedClusters/aks1/agentPools/{name}")
}

fn vmss() -> String {
    format!("/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachineScaleSets/vmss1")
}

fn seed() -> Value {
    json!({
        "operationDelayMs": 200,
        "retryAfterSecs": 1,
        "clusters": [{
            "subscription": SUB, "resourceGroup": "rg1", "name": "aks1",
            "pools": [
                {"name": "np1", "properties": {"count": 12, "vmSize": "Standard_D4s_v5", "mode": "User", "osType": "Linux",
                    "nodeLabels": {"team": "web"}}},
                {"name": "auto1", "properties": {"count": 12, "vmSize": "Standard_D4s_v5", "mode": "User", "osType": "Linux",
                    "enableAutoScaling": true, "minCount": 2, "maxCount": 60}},
                {"name": "upgrading", "properties": {"count": 12, "vmSize": "Standard_D4s_v5", "mode": "User", "osType": "Linux",
                    "provisioningState": "Upgrading"}}
            ]
        }],
        "scaleSets": [{"subscription": SUB, "resourceGroup": "rg1", "name": "vmss1", "skuName": "Standard_D4s_v5", "capacity": 12}]
    })
}

/// A folder with a trained WorldCup98 model.
fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    assert_code(
        &mlscaler(dir.path(), &["train", "--models", "models", "-q"]),
        0,
    );
    dir
}

fn scale(emu: &Emulator, dir: &Path, secret: &str, extra: &[&str], env: &[(&str, &str)]) -> Run {
    let data = cli::data("worldcup98_requests_per_minute.csv");
    let mut args = vec![
        "scale",
        "--data",
        data.to_str().unwrap(),
        "--model",
        "count",
        "--capacity-per-node",
        "4000",
        "--max-nodes",
        "100",
        "--output",
        "json",
    ];
    args.extend_from_slice(extra);
    // Loop mode runs on the clock.
    if !extra.contains(&"--now") && !extra.contains(&"--every") {
        args.extend_from_slice(&["--now", "1998-06-30T18:40:00Z"]);
    }
    let owned = emu.cli_env(secret);
    let mut e: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    e.extend_from_slice(env);
    let r = mlscaler_env(dir, &args, &e);
    for s in [secret, arm::CLIENT_SECRET]
        .into_iter()
        .filter(|s| !s.is_empty())
    {
        assert!(
            !r.stdout.contains(s) && !r.stderr.contains(s),
            "the secret was printed:\n{}\n{}",
            r.stdout,
            r.stderr
        );
    }
    r
}

fn pool_props(emu: &Emulator, name: &str) -> Value {
    let state = emu.state();
    let suffix = format!("/agentpools/{}", name.to_lowercase());
    state["pools"]
        .as_array()
        .and_then(|pools| {
            pools.iter().find(|p| {
                p["id"]
                    .as_str()
                    .is_some_and(|id| id.to_lowercase().ends_with(&suffix))
            })
        })
        .map(|p| p["properties"].clone())
        .unwrap_or_else(|| panic!("no pool {name} in {state}"))
}

#[test]
fn an_aks_pool_is_scaled_out_before_the_peak_with_one_put_and_a_decision_record() {
    let emu = Emulator::start(&seed());
    let dir = workdir();
    // Dry run first: a plan, and not one write.
    let dry = scale(
        &emu,
        dir.path(),
        arm::CLIENT_SECRET,
        &["--target", &pool("np1"), "--dry-run"],
        &[],
    );
    assert_code(&dry, 0);
    assert_eq!(dry.json()["outcome"], "would_apply");
    assert!(emu.calls("PUT").is_empty(), "a dry run wrote");

    let r = scale(
        &emu,
        dir.path(),
        arm::CLIENT_SECRET,
        &["--target", &pool("np1")],
        &[],
    );
    assert_code(&r, 0);
    let s = r.json();
    assert_eq!(s["outcome"], "applied");
    assert_eq!(s["before"]["count"], 12);
    let planned = s["decision"]["nodes"].as_u64().unwrap();
    assert!(planned > 12, "{}", s["decision"]);
    assert_eq!(s["after"]["count"], planned);
    assert_eq!(s["after"]["field"], "count");
    let puts = emu.calls("PUT");
    assert_eq!(puts.len(), 1, "{puts:?}");
    assert_eq!(
        puts[0].body["properties"]["nodeLabels"]["team"], "web",
        "fields mlscaler does not model are kept"
    );
    let props = pool_props(&emu, "np1");
    assert_eq!(props["count"], planned);
    assert_eq!(props["provisioningState"], "Succeeded");
    // Both runs are in the decision log.
    let log = std::fs::read_to_string(dir.path().join("decisions.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 2);

    // The next run finds the pool at the planned size: nothing to do, nothing sent.
    emu.clear_log();
    let again = scale(
        &emu,
        dir.path(),
        arm::CLIENT_SECRET,
        &["--target", &pool("np1")],
        &[],
    );
    assert_code(&again, 4);
    assert!(emu.calls("PUT").is_empty());
}

#[test]
fn loop_mode_reuses_one_client_and_one_token_across_rounds_and_merged_roots_work_too() {
    let emu = Emulator::start(&seed());
    let dir = workdir();
    let target = pool("np1");
    let token_requests = |emu: &Emulator| {
        emu.requests()
            .iter()
            .filter(|e| e.path.contains("/oauth2/"))
            .count()
    };
    let r = scale(
        &emu,
        dir.path(),
        arm::CLIENT_SECRET,
        &[
            "--target",
            &target,
            "--dry-run",
            "--every",
            "1s",
            "--jitter",
            "0s",
            "--rounds",
            "3",
        ],
        &[],
    );
    assert_code(&r, 0);
    let rounds = records(&r.stdout);
    assert_eq!(rounds.len(), 3, "{}", r.stdout);
    assert!(
        rounds.iter().all(|x| x["outcome"] == "held"),
        "{}",
        r.stdout
    );
    // (On the clock, the 1998 data is stale: the forecast is not used and
    // nothing is scaled in.) Every round read the pool; one sign-in served
    // them all.
    assert!(emu.calls("GET").len() >= 3, "{:?}", emu.requests());
    assert_eq!(token_requests(&emu), 1, "{:?}", emu.requests());

    // --ca-cert pins: with another emulator's CA given, the system's roots
    // (here: this emulator's CA, through SSL_CERT_FILE) are not consulted
    // and nothing is sent; with --ca-cert-merge they are, and it is reached.
    emu.clear_log();
    let other = Emulator::start(&seed());
    let system_roots = emu.ca_path.display().to_string();
    let pinned_elsewhere = other.ca_path.display().to_string();
    let env = [
        ("SSL_CERT_FILE", system_roots.as_str()),
        ("MLSCALER_CA_CERT", pinned_elsewhere.as_str()),
    ];
    let pinned = scale(
        &emu,
        dir.path(),
        arm::CLIENT_SECRET,
        &["--target", &target, "--dry-run"],
        &env,
    );
    assert_eq!(pinned.code, 1, "{}\n{}", pinned.stdout, pinned.stderr);
    assert_eq!(token_requests(&emu), 0, "{:?}", emu.requests());
    // The cause is named, not only that the sign-in gave up.
    assert!(
        pinned.stderr.contains("invalid peer certificate"),
        "{}",
        pinned.stderr
    );
    let merged = scale(
        &emu,
        dir.path(),
        arm::CLIENT_SECRET,
        &["--target", &target, "--dry-run", "--ca-cert-merge"],
        &env,
    );
    assert_code(&merged, 0);
    assert_eq!(merged.json()["outcome"], "would_apply");
    assert_eq!(token_requests(&emu), 1, "a new process signs in again");
}

#[test]
fn an_autoscaler_pool_gets_its_min_count_raised_or_is_left_alone_on_request() {
    let emu = Emulator::start(&seed());
    let dir = workdir();
    let refused = scale(
        &emu,
        dir.path(),
        arm::CLIENT_SECRET,
        &["--target", &pool("auto1"), "--on-autoscaler", "refuse"],
        &[],
    );
    assert_code(&refused, 5);
    assert!(
        refused.json()["held_because"]
            .as_str()
            .unwrap()
            .contains("autoscaler"),
        "{}",
        refused.stdout
    );
    assert!(emu.calls("PUT").is_empty());

    let r = scale(
        &emu,
        dir.path(),
        arm::CLIENT_SECRET,
        &["--target", &pool("auto1")],
        &[],
    );
    assert_code(&r, 0);
    let s = r.json();
    assert_eq!(s["after"]["field"], "minCount");
    let planned = s["decision"]["nodes"].as_u64().unwrap();
    let props = pool_props(&emu, "auto1");
    assert_eq!(props["minCount"], planned);
    assert_eq!(props["enableAutoScaling"], true);
    assert_eq!(props["maxCount"], 60);
}

#[test]
fn a_busy_pool_is_held_and_a_scale_out_grows_as_far_as_the_vcpu_quota_allows() {
    let mut sd = seed();
    sd["quota"] = json!({"limitCores": 200, "coresPerNode": 4});
    let emu = Emulator::start(&sd);
    let dir = workdir();
    let busy = scale(
        &emu,
        dir.path(),
        arm::CLIENT_SECRET,
        &["--target", &pool("upgrading")],
        &[],
    );
    assert_code(&busy, 5);
    assert!(
        busy.json()["held_because"]
            .as_str()
            .unwrap()
            .contains("Upgrading"),
        "{}",
        busy.stdout
    );
    assert!(emu.calls("PUT").is_empty());

    // 36 nodes x 4 cores are in use of 200: scaling np1 out needs more than the quota.
    let q = scale(
        &emu,
        dir.path(),
        arm::CLIENT_SECRET,
        &["--target", &pool("np1")],
        &[],
    );
    // 48 nodes x 4 cores are in use of 200 (three pools and a scale set of
    // 12): the 15 more nodes np1's plan needs do not fit, 2 do. The pool
    // grows by those, the run says it is short of the plan and exits 5.
    assert_code(&q, 5);
    let v = q.json();
    assert_eq!(v["outcome"], "limited");
    assert_eq!(pool_props(&emu, "np1")["count"], 14);
    assert_eq!(v["after"]["count"], 14);
    let short = v["short_of_plan"].as_str().unwrap();
    for part in [
        "allows 2 of the 15 more nodes",
        "QuotaExceeded",
        "Current Limit: 200",
        "Additional Required: 60",
    ] {
        assert!(short.contains(part), "{part} missing: {short}");
    }
    // When not even one more node fits, nothing changes and the run fails with Azure's numbers.
    let full = scale(
        &emu,
        dir.path(),
        arm::CLIENT_SECRET,
        &["--target", &pool("np1")],
        &[],
    );
    assert_code(&full, 1);
    for part in ["QuotaExceeded", "Current Limit: 200", "Current Usage: 200"] {
        assert!(
            full.stderr.contains(part),
            "{part} missing: {}",
            full.stderr
        );
    }
    assert_eq!(pool_props(&emu, "np1")["count"], 14, "the pool changed");
}

#[test]
fn a_scale_set_capacity_is_patched_and_the_workshop_variables_name_an_aks_pool() {
    let emu = Emulator::start(&seed());
    let dir = workdir();
    let r = scale(
        &emu,
        dir.path(),
        arm::CLIENT_SECRET,
        &["--target", &vmss()],
        &[],
    );
    assert_code(&r, 0);
    let s = r.json();
    assert_eq!(s["after"]["field"], "sku.capacity");
    let patches = emu.calls("PATCH");
    assert_eq!(patches.len(), 1);
    assert!(patches[0].if_match.is_some(), "the PATCH carries the ETag");
    assert_eq!(patches[0].body["sku"]["capacity"], s["decision"]["nodes"]);

    // SP_APP_ID / SP_APP_SECRET / TENANT_ID / AKS_RG / AKS_NAME as in the workshop's release variables.
    let env = [
        ("AZURE_CLIENT_ID", ""),
        ("AZURE_CLIENT_SECRET", ""),
        ("AZURE_TENANT_ID", ""),
        ("SP_APP_ID", arm::CLIENT_ID),
        ("SP_APP_SECRET", arm::CLIENT_SECRET),
        ("TENANT_ID", arm::TENANT),
        ("AZURE_SUBSCRIPTION_ID", SUB),
        ("AKS_RG", "rg1"),
        ("AKS_NAME", "aks1"),
        ("AKS_POOL", "np1"),
    ];
    let w = scale(&emu, dir.path(), "", &["--dry-run"], &env);
    assert_code(&w, 0);
    assert_eq!(
        w.json()["target"].as_str().unwrap().to_lowercase(),
        pool("np1").to_lowercase()
    );
}

#[test]
fn a_wrong_secret_fails_without_printing_it_and_changes_nothing() {
    let emu = Emulator::start(&seed());
    let dir = workdir();
    let r = scale(
        &emu,
        dir.path(),
        "not-the-secret-xyz",
        &["--target", &pool("np1")],
        &[],
    );
    assert_code(&r, 1);
    assert!(r.stderr.contains("error:"), "{}", r.stderr);
    assert!(emu.calls("PUT").is_empty());
    assert_eq!(pool_props(&emu, "np1")["count"], 12);
}

#[test]
fn a_scale_set_that_changed_under_us_is_re_read_and_re_planned_once() {
    let emu = Emulator::start(&seed());
    let dir = workdir();
    // Someone else's write lands between our read and our PATCH: ARM answers 412.
    emu.add_faults(json!({"method": "PATCH", "pathContains": "virtualMachineScaleSets/vmss1", "times": 1,
        "status": 412, "code": "PreconditionFailed", "message": "The ETag in If-Match does not match."}));
    let r = scale(
        &emu,
        dir.path(),
        arm::CLIENT_SECRET,
        &["--target", &vmss()],
        &[],
    );
    assert_code(&r, 0);
    assert_eq!(r.json()["outcome"], "applied");
    let patches = emu.calls("PATCH");
    assert_eq!(
        patches.len(),
        2,
        "one refused, one after re-reading: {patches:?}"
    );
    // Twice 412 in a row: give up for this run, unchanged.
    emu.clear_log();
    emu.add_faults(json!({"method": "PATCH", "pathContains": "virtualMachineScaleSets/vmss1", "times": 2,
        "status": 412, "code": "PreconditionFailed", "message": "The ETag in If-Match does not match."}));
    let again = scale(
        &emu,
        dir.path(),
        arm::CLIENT_SECRET,
        &["--target", &vmss(), "--target-utilisation", "0.5"],
        &[],
    );
    assert_code(&again, 1);
    assert!(
        again.stderr.contains("412") || again.stderr.contains("PreconditionFailed"),
        "{}",
        again.stderr
    );
}

#[test]
fn the_alarm_policy_scales_an_aks_pool_by_its_step() {
    let emu = Emulator::start(&seed());
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("timestamp,queue_load\n");
    for i in 0..30 {
        csv.push_str(&format!(
            "1998-01-01 00:{i:02}:00,{}\n",
            if i >= 28 { 4.0 } else { 1.0 }
        ));
    }
    std::fs::write(dir.path().join("queue.csv"), csv).unwrap();
    let owned = emu.cli_env(arm::CLIENT_SECRET);
    let env: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = mlscaler_env(
        dir.path(),
        &[
            "scale",
            "--policy",
            "alarm",
            "--alarm-on",
            "metric",
            "--alarm-out-at",
            "2",
            "--alarm-in-at",
            "0.5",
            "--data",
            "queue.csv",
            "--target",
            &pool("np1"),
            "--alarm-out-step",
            "25%",
            "--now",
            "1998-01-01T00:29:00Z",
            "--output",
            "json",
        ],
        &env,
    );
    assert_code(&r, 0);
    // 25% of 12 nodes: 3 more.
    assert_eq!(r.json()["after"]["count"], 15);
    assert_eq!(pool_props(&emu, "np1")["count"], 15);
    assert_eq!(emu.calls("PUT").len(), 1);
}

fn jobs_seed() -> Value {
    json!({
        "operationDelayMs": 150,
        "retryAfterSecs": 1,
        "scaleSets": [{"subscription": SUB, "resourceGroup": "rg1", "name": "hpc", "skuName": "Standard_HB120rs_v3", "capacity": 4,
            "instances": [
                {"instanceId": "0", "powerState": "running"},
                {"instanceId": "1", "powerState": "running"},
                {"instanceId": "2", "powerState": "deallocated"},
                {"instanceId": "3", "powerState": "deallocated"}
            ]}]
    })
}

fn hpc() -> String {
    format!("/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachineScaleSets/hpc")
}

fn run_jobs(emu: &Emulator, dir: &Path, jobs: Value, nodes: Value, extra: &[&str]) -> Run {
    let to_ndjson = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.to_string() + "\n")
            .collect::<String>()
    };
    std::fs::write(dir.join("jobs.ndjson"), to_ndjson(&jobs)).unwrap();
    std::fs::write(dir.join("nodes.json"), nodes.to_string()).unwrap();
    let owned = emu.cli_env(arm::CLIENT_SECRET);
    let env: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let target = hpc();
    let mut args = vec![
        "scale",
        "--policy",
        "jobs",
        "--target",
        target.as_str(),
        "--jobs",
        "jobs.ndjson",
        "--nodes",
        "nodes.json",
        "--max-nodes",
        "6",
        "--output",
        "json",
    ];
    args.extend_from_slice(extra);
    mlscaler_env(dir, &args, &env)
}

fn posts(emu: &Emulator, action: &str) -> Vec<Value> {
    emu.calls("POST")
        .into_iter()
        .filter(|e| e.path.ends_with(action))
        .map(|e| e.body["instanceIds"].clone())
        .collect()
}

#[test]
fn jobs_start_deallocated_instances_first_and_busy_instances_are_never_scaled_in() {
    let emu = Emulator::start(&jobs_seed());
    let dir = tempfile::tempdir().unwrap();
    // 3 queued + 1 running node of work for queue "hpc"; a held job and another queue do not count.
    let jobs = json!([
        {"id": "a", "queue": "hpc", "nodes": 3, "status": "Queued"},
        {"id": "b", "queue": "hpc", "nodes": 1, "status": "Running"},
        {"id": "c", "queue": "hpc", "nodes": 8, "status": "Hold"},
        {"id": "d", "queue": "other", "nodes": 5, "status": "Queued"}
    ]);
    let nodes = json!([{"name": "hpc_0", "pool": "hpc", "status": "Busy"}, {"name": "hpc_1", "pool": "hpc", "status": "Free"}]);
    let dry = run_jobs(
        &emu,
        dir.path(),
        jobs.clone(),
        nodes.clone(),
        &["--dry-run"],
    );
    assert_code(&dry, 0);
    assert_eq!(dry.json()["outcome"], "would_apply");
    assert!(
        emu.calls("POST").is_empty() && emu.calls("PUT").is_empty(),
        "a dry run wrote"
    );

    let r = run_jobs(&emu, dir.path(), jobs, nodes, &[]);
    assert_code(&r, 0);
    let plan = &r.json()["plan"];
    assert_eq!(plan["start"], json!(["2", "3"]), "{plan}");
    assert_eq!(plan["create"], 0);
    assert_eq!(plan["protect"], json!(["0"]));
    assert_eq!(posts(&emu, "/start"), vec![json!(["2", "3"])]);
    assert!(
        emu.calls("PATCH").is_empty(),
        "no new instances while deallocated ones can start"
    );

    // The work is done but instance 0 is still busy, 3 is unknown to the scheduler:
    // only the Free ones go, and never below --min-nodes.
    emu.clear_log();
    let jobs = json!([{"id": "b", "queue": "hpc", "nodes": 1, "status": "Running"}]);
    let nodes = json!([
        {"name": "hpc_0", "pool": "hpc", "status": "Busy"},
        {"name": "1", "pool": "hpc", "status": "Free"},
        {"name": "hpc_2", "pool": "hpc", "status": "Free"}
    ]);
    let r = run_jobs(&emu, dir.path(), jobs, nodes, &[]);
    assert_code(&r, 0);
    assert_eq!(posts(&emu, "/deallocate"), vec![json!(["1", "2"])]);
    assert!(r.stdout.contains("busy or unknown"), "{}", r.stdout);

    // More work than stopped instances: start the two, create the rest, up to the max of 6.
    emu.clear_log();
    let jobs = json!([{"id": "e", "queue": "hpc", "nodes": 9, "status": "Queued"}]);
    let r = run_jobs(&emu, dir.path(), jobs, json!([]), &[]);
    assert_code(&r, 0);
    assert_eq!(posts(&emu, "/start"), vec![json!(["1", "2"])]);
    let patches = emu.calls("PATCH");
    assert_eq!(patches.len(), 1);
    assert_eq!(patches[0].body["sku"]["capacity"], 6);
}

#[test]
fn forecast_job_arrivals_add_headroom_on_top_of_the_queues_demand() {
    let emu = Emulator::start(&jobs_seed());
    let dir = tempfile::tempdir().unwrap();
    // A model of job arrivals per 5 minutes, trained on the bundled raw logs
    // (23 hours: no daily season, a one-hour rolling window).
    let logs = cli::data("agilethought_logs.txt");
    let logs = logs.to_str().unwrap();
    let train = mlscaler(
        dir.path(),
        &[
            "train",
            "--data",
            logs,
            "--metric",
            "job_arrivals",
            "--step",
            "5m",
            "--lead-time",
            "10m",
            "--seasons",
            "none",
            "--rolling",
            "1h",
            "--models",
            "models",
            "--name",
            "arrivals",
            "-q",
        ],
    );
    assert_code(&train, 0);
    let jobs = json!([{"id": "a", "queue": "hpc", "nodes": 2, "status": "Running"}]);
    let nodes = json!([{"name": "hpc_0", "pool": "hpc", "status": "Busy"}, {"name": "hpc_1", "pool": "hpc", "status": "Busy"}]);
    let forecast = [
        "--dry-run",
        "--model",
        "arrivals",
        "--models",
        "models",
        "--data",
        logs,
        "--now",
        "2019-06-15T23:00:00Z",
    ];
    let r = run_jobs(&emu, dir.path(), jobs.clone(), nodes.clone(), &forecast);
    assert_code(&r, 0);
    let v = r.json();
    let a = &v["arrivals"];
    // About 22 jobs arrive per 5 minutes in the evening of these logs: two steps of lead time.
    let expected = a["expected_jobs"].as_f64().unwrap();
    assert!((20.0..80.0).contains(&expected), "{a}\n{}", r.stderr);
    assert_eq!(a["nodes_per_job"], 2.0);
    assert_eq!(a["lead_time"], "10m");
    // Jobs in these logs last 62-334 s: all of today's are done before a new
    // instance is ready, and only the arrivals of the last few minutes still
    // run then, so the headroom is well below "every arrival on top".
    let duration = a["mean_duration_secs"].as_f64().unwrap();
    assert!((62.0..=334.0).contains(&duration), "{a}");
    let headroom = a["headroom"].as_u64().unwrap();
    assert!(
        headroom > 0 && headroom < (expected * 2.0).ceil() as u64,
        "{a}"
    );
    assert_eq!(v["plan"]["demand"].as_u64().unwrap(), 2 + headroom);
    assert_eq!(v["plan"]["target"], 6, "capped by --max-nodes");
    assert!(r.stdout.contains("expects"), "{}", r.stdout);
    // Without the model, only the queue's own demand counts.
    let plain = run_jobs(
        &emu,
        dir.path(),
        jobs.clone(),
        nodes.clone(),
        &["--dry-run"],
    );
    assert_eq!(plain.json()["plan"]["demand"], 2);
    assert!(plain.json()["arrivals"].is_null());
    // A model without the history it forecasts from is refused before anything is read from ARM.
    emu.clear_log();
    let r = run_jobs(
        &emu,
        dir.path(),
        jobs,
        nodes,
        &["--dry-run", "--model", "arrivals", "--models", "models"],
    );
    assert_code(&r, 1);
    assert!(r.stderr.contains("--data"), "{}", r.stderr);
    assert!(emu.requests().is_empty());
}

#[test]
fn jobs_create_as_many_instances_as_the_vcpu_quota_allows_and_a_failure_is_recorded() {
    // 4 instances of 4 cores against a limit of 20: the two deallocated ones
    // start, the two more that fit under --max-nodes 6 need 8 cores on top
    // of the 16 in use, 4 are left: one is created.
    let mut seed = jobs_seed();
    seed["quota"] = json!({"limitCores": 20, "coresPerNode": 4});
    let emu = Emulator::start(&seed);
    let dir = tempfile::tempdir().unwrap();
    let jobs = json!([{"id": "e", "queue": "hpc", "nodes": 9, "status": "Queued"}]);
    let r = run_jobs(&emu, dir.path(), jobs.clone(), json!([]), &[]);
    assert_code(&r, 5);
    let v = r.json();
    assert_eq!(v["outcome"], "limited");
    assert_eq!(
        v["actions"],
        json!([
            "started instances 2, 3",
            "capacity 4 -> 5: 1 new instance(s)"
        ])
    );
    let short = v["short_of_plan"].as_str().unwrap();
    for part in [
        "allows 1 of the 2",
        "Current Limit: 20",
        "Additional Required: 8",
    ] {
        assert!(short.contains(part), "{part}: {short}");
    }
    assert_eq!(posts(&emu, "/start"), vec![json!(["2", "3"])]);
    // Now the quota is used up: the create fails, recorded with Azure's numbers, exit 1.
    let r = run_jobs(&emu, dir.path(), jobs, json!([]), &[]);
    assert_code(&r, 1);
    let v = r.json();
    assert_eq!(v["outcome"], "failed");
    let error = v["error"].as_str().unwrap();
    for part in ["quota", "Current Limit: 20", "Current Usage: 20"] {
        assert!(error.contains(part), "{part}: {error}");
    }
    // The decision log has both records.
    let log = std::fs::read_to_string(dir.path().join("decisions.jsonl")).unwrap();
    let outcomes: Vec<String> = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["outcome"].to_string())
        .collect();
    assert_eq!(outcomes, ["\"limited\"", "\"failed\""]);
}

#[test]
fn the_jobs_policy_runs_in_loop_mode_one_record_per_round() {
    let emu = Emulator::start(&jobs_seed());
    let dir = tempfile::tempdir().unwrap();
    let jobs = json!([
        {"id": "a", "queue": "hpc", "nodes": 3, "status": "Queued"},
        {"id": "b", "queue": "hpc", "nodes": 1, "status": "Running"}
    ]);
    let nodes = json!([{"name": "hpc_0", "pool": "hpc", "status": "Busy"}, {"name": "hpc_1", "pool": "hpc", "status": "Free"}]);
    let r = run_jobs(
        &emu,
        dir.path(),
        jobs,
        nodes,
        &["--every", "1s", "--jitter", "0s", "--rounds", "2"],
    );
    assert_code(&r, 0);
    let rounds = records(&r.stdout);
    assert_eq!(rounds.len(), 2, "{}", r.stdout);
    // Round 1 starts the two deallocated instances; round 2 finds the demand met.
    assert_eq!(rounds[0]["outcome"], "applied");
    assert_eq!(rounds[0]["plan"]["start"], json!(["2", "3"]));
    assert_eq!(rounds[1]["outcome"], "nothing_to_do", "{}", rounds[1]);
    assert_eq!(posts(&emu, "/start").len(), 1, "started once");
}

#[test]
fn memory_pressure_moves_a_scale_set_one_size_up_the_ladder_and_rolls_its_instances() {
    let emu = Emulator::start(&json!({
        "operationDelayMs": 150,
        "retryAfterSecs": 1,
        "scaleSets": [{"subscription": SUB, "resourceGroup": "rg1", "name": "mem", "skuName": "Standard_D2s_v5", "capacity": 2}],
        "clusters": [{"subscription": SUB, "resourceGroup": "rg1", "name": "aks1",
            "pools": [{"name": "np1", "properties": {"count": 3, "vmSize": "Standard_D2s_v5", "mode": "User", "osType": "Linux"}}]}]
    }));
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("timestamp,mem_util\n");
    for i in 0..60 {
        // Calm for 40 minutes, then memory pressure.
        csv.push_str(&format!(
            "1998-01-01 00:{i:02}:00,{}\n",
            if i < 40 { 0.3 } else { 0.9 }
        ));
    }
    std::fs::write(dir.path().join("mem.csv"), csv).unwrap();
    let owned = emu.cli_env(arm::CLIENT_SECRET);
    let env: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mem = format!("/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachineScaleSets/mem");
    let run_with = |target: &str, ladder: &str, now: &str, extra: &[&str]| {
        let mut args = vec![
            "scale",
            "--policy",
            "vertical",
            "--data",
            "mem.csv",
            "--target",
            target,
            "--ladder",
            ladder,
            "--memory-window",
            "30m",
            "--now",
            now,
            "--output",
            "json",
        ];
        args.extend_from_slice(extra);
        mlscaler_env(dir.path(), &args, &env)
    };
    let run = |target: &str, ladder: &str, now: &str| run_with(target, ladder, now, &[]);
    let ladder = "Standard_D2s_v5,Standard_D4s_v5,Standard_D8s_v5";
    let r = run(&mem, ladder, "1998-01-01T00:45:00Z");
    assert_code(&r, 0);
    assert_eq!(r.json()["decision"]["to"], "Standard_D4s_v5");
    let patches = emu.calls("PATCH");
    assert_eq!(patches.len(), 1);
    assert_eq!(patches[0].body["sku"]["name"], "Standard_D4s_v5");
    assert!(patches[0].if_match.is_some());
    let upgrades: Vec<Value> = emu
        .calls("POST")
        .into_iter()
        .filter(|e| e.path.ends_with("/manualupgrade"))
        .map(|e| e.body)
        .collect();
    assert_eq!(
        upgrades,
        vec![json!({"instanceIds": ["0", "1"]})],
        "the Manual upgrade policy: mlscaler rolls the instances"
    );

    // At the top of a (shorter) ladder: held, nothing sent.
    emu.clear_log();
    let top = run(
        &mem,
        "Standard_D2s_v5,Standard_D4s_v5",
        "1998-01-01T00:50:00Z",
    );
    assert_code(&top, 4);
    assert!(top.stdout.contains("largest size"), "{}", top.stdout);
    assert!(emu.calls("PATCH").is_empty());
    // Calm for the whole 30-minute window (minutes 9..39), but with a smaller
    // size of 4 GiB below the current 16 GiB, 0.3 would become 1.2 there: held.
    let guarded = run_with(
        &mem,
        ladder,
        "1998-01-01T00:39:00Z",
        &["--ladder-memory", "4,16,32"],
    );
    assert_code(&guarded, 4);
    assert!(
        guarded.stdout.contains("undone at once"),
        "{}",
        guarded.stdout
    );
    assert!(emu.calls("PATCH").is_empty());
    // With the real sizes (8, 16, 32 GiB from the built-in table): one size down.
    let calm = run(&mem, ladder, "1998-01-01T00:39:00Z");
    assert_eq!(calm.json()["ladder_memory_gib"], json!([8.0, 16.0, 32.0]));
    assert_code(&calm, 0);
    assert_eq!(calm.json()["decision"]["to"], "Standard_D2s_v5");
    // The size changes but rolling the instances onto it fails: recorded as
    // failed with what was done, exit 1.
    emu.add_faults(
        json!({"method": "POST", "pathContains": "manualupgrade", "times": 1,
        "status": 400, "code": "InvalidParameter", "message": "instance 1 is being deleted"}),
    );
    let broken = run(&mem, ladder, "1998-01-01T00:45:00Z");
    assert_code(&broken, 1);
    let v = broken.json();
    assert_eq!(v["outcome"], "failed");
    assert_eq!(
        v["actions"],
        json!(["sku.name Standard_D2s_v5 -> Standard_D4s_v5"])
    );
    assert!(
        v["error"].as_str().unwrap().contains("being deleted"),
        "{v}"
    );
    // An AKS pool cannot change size in place: said clearly, nothing sent.
    emu.clear_log();
    let aks = run(&pool("np1"), ladder, "1998-01-01T00:45:00Z");
    assert_code(&aks, 1);
    assert!(
        aks.stderr.contains("cannot change its VM size in place"),
        "{}",
        aks.stderr
    );
    assert!(emu.calls("PUT").is_empty() && emu.calls("PATCH").is_empty());
}

#[test]
fn a_quiet_night_scales_an_aks_pool_and_a_scale_set_in_after_the_stabilisation_window() {
    let mut sd = seed();
    sd["clusters"][0]["pools"][0]["properties"]["count"] = json!(30);
    sd["scaleSets"][0]["capacity"] = json!(30);
    let emu = Emulator::start(&sd);
    let dir = workdir();
    for (target, field, state) in [
        (pool("np1"), "count", "aks-state.json"),
        (vmss(), "sku.capacity", "vmss-state.json"),
    ] {
        let run = |now: &str| {
            scale(
                &emu,
                dir.path(),
                arm::CLIENT_SECRET,
                &[
                    "--target",
                    &target,
                    "--state",
                    state,
                    "--min-nodes",
                    "2",
                    "--now",
                    now,
                ],
                &[],
            )
        };
        // The first run has no memory of recommendations: it holds for a
        // whole window (the default --scale-in-window, 10 minutes).
        let first = run("1998-07-20T04:00:00Z");
        assert_code(&first, 4);
        let early = run("1998-07-20T04:09:00Z");
        assert_code(&early, 4);
        let second = run("1998-07-20T04:11:00Z");
        assert_code(&second, 0);
        let s = second.json();
        let n = s["decision"]["nodes"].as_u64().unwrap();
        assert!((2..30).contains(&n), "{}", s["decision"]);
        assert_eq!(s["after"]["field"], field);
        assert_eq!(s["after"]["count"], n);
    }
    assert!(pool_props(&emu, "np1")["count"].as_u64().unwrap() < 30);
}

/// Starts `mlscaler scale ARGS` against the emulator in the background.
fn spawn_scale(emu: &Emulator, dir: &Path, extra: &[&str]) -> std::process::Child {
    use std::process::{Command, Stdio};
    let data = cli::data("worldcup98_requests_per_minute.csv");
    let mut args = vec![
        "scale",
        "--data",
        data.to_str().unwrap(),
        "--model",
        "count",
        "--capacity-per-node",
        "4000",
        "--output",
        "json",
    ];
    args.extend_from_slice(extra);
    Command::new(env!("CARGO_BIN_EXE_mlscaler"))
        .current_dir(dir)
        .args(&args)
        .envs(emu.cli_env(arm::CLIENT_SECRET))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the emulator has seen a request `what` says, then sends SIGTERM.
fn terminate_once(
    emu: &Emulator,
    child: &std::process::Child,
    what: impl Fn(&arm_emulator::LogEntry) -> bool,
) {
    use std::time::{Duration, Instant};
    let start = Instant::now();
    while !emu.requests().iter().any(&what) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the run never got there"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
}

#[test]
fn sigterm_in_the_middle_of_a_round_stops_it_before_any_write_records_it_and_ends_the_loop() {
    let emu = Emulator::start(&seed());
    let dir = workdir();
    // The round's read of the pool is held for a minute: the signal arrives
    // while the round waits for it.
    emu.add_faults(
        json!({"method": "GET", "pathContains": "agentPools/np1", "times": 1, "hold": true, "delayMs": 60000}),
    );
    let target = pool("np1");
    let child = spawn_scale(
        &emu,
        dir.path(),
        &["--target", &target, "--every", "1h", "--jitter", "0s"],
    );
    terminate_once(&emu, &child, |e| e.path.contains("agentPools/np1"));
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // The loop was asked to stop: exit 0, and it says the round was cut.
    assert!(out.status.success(), "{:?}: {err}", out.status);
    assert!(
        err.contains("stopped on a signal after 1 round(s)")
            && err.contains("recorded as interrupted"),
        "{err}"
    );
    assert!(emu.calls("PUT").is_empty(), "a write after the signal");
    assert_eq!(pool_props(&emu, "np1")["count"], 12);
    // The round is recorded, as interrupted, with nothing sent.
    let log = std::fs::read_to_string(dir.path().join("decisions.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 1, "{log}");
    let rec: Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(rec["outcome"], "failed");
    assert_eq!(rec["error_class"], "interrupted");
    assert_eq!(rec["writes"], json!([]));
    emu.release();
}

#[test]
fn sigterm_during_a_wait_ends_the_run_with_a_record_of_the_write_it_had_sent() {
    let emu = Emulator::start(&seed());
    let dir = workdir();
    // ARM answers the PUT "busy, come back in an hour"; even capped at a
    // minute, the run waits, and SIGTERM must end the wait.
    emu.add_faults(
        json!({"method": "PUT", "pathContains": "agentPools/np1", "times": 1, "status": 409,
        "code": "OperationNotAllowed", "message": "another operation is in progress", "retryAfter": 3600}),
    );
    let target = pool("np1");
    let child = spawn_scale(
        &emu,
        dir.path(),
        &[
            "--target",
            &target,
            "--now",
            "1998-06-30T18:40:00Z",
            "--max-wait",
            "1m",
        ],
    );
    terminate_once(&emu, &child, |e| e.method == "PUT");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let rec: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rec["outcome"], "failed");
    assert_eq!(rec["error_class"], "interrupted");
    // What it had done: one PUT, refused as busy; nothing after the signal.
    let writes = rec["writes"].as_array().unwrap();
    assert_eq!(writes.len(), 1, "{rec}");
    assert!(
        writes[0]["result"].as_str().unwrap().contains("409"),
        "{rec}"
    );
    assert_eq!(emu.calls("PUT").len(), 1);
    let log = std::fs::read_to_string(dir.path().join("decisions.jsonl")).unwrap();
    assert_eq!(serde_json::from_str::<Value>(log.trim()).unwrap(), rec);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stopped by a signal"), "{err}");
}

/// The loop mode's records: one JSON document per line of standard output.
fn records(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON record per line"))
        .collect()
}
