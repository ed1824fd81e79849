//! Several controllers on one target: a write is tied to the read it was
//! planned from (a controller whose read was overtaken re-plans instead of
//! overwriting), and controllers that share a target, a state blob and a
//! decision log blob (Azurite) lose no record, make no move that was not
//! planned from the state it replaced, and leave the state always valid.

#[path = "support/arm.rs"]
mod arm;
#[path = "support/azurite.rs"]
mod azurite;
#[path = "support/cli.rs"]
mod cli;

use arm::Emulator;
use cli::{assert_code, mlscaler};
use mlscaler::core::plan::PlannerMemory;
use mlscaler::store::ObjectStore;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SUB: &str = "00000000-0000-0000-0000-000000000001";

fn pool() -> String {
    format!("/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.ContainerService/managedClusters/aks1/agentPools/np1")
}

fn seed() -> Value {
    json!({
        "operationDelayMs": 100,
        "retryAfterSecs": 1,
        "clusters": [{"subscription": SUB, "resourceGroup": "rg1", "name": "aks1", "pools": [
            {"name": "np1", "properties": {"count": 12, "vmSize": "Standard_D4s_v5", "mode": "User", "osType": "Linux"}}
        ]}]
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

/// `mlscaler scale` on the pool in the background, planning at `now`.
fn spawn(emu: &Emulator, dir: &Path, now: &str, extra: &[&str], env: &[(&str, &str)]) -> Child {
    let data = cli::data("worldcup98_requests_per_minute.csv");
    let target = pool();
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
        "--target",
        &target,
        "--now",
        now,
        "--max-wait",
        "200ms",
        "--output",
        "json",
    ];
    args.extend_from_slice(extra);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mlscaler"));
    cmd.current_dir(dir)
        .args(&args)
        .envs(emu.cli_env(arm::CLIENT_SECRET))
        .envs(env.iter().copied())
        .env_remove("STORAGE_ACCT_NAME")
        .env_remove("STORAGE_ACCT_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.spawn().unwrap()
}

/// The record a finished run printed, with its exit code.
fn finish(child: Child) -> (i32, Value) {
    let (code, rec, _) = finish_said(child);
    (code, rec)
}

/// [`finish`], with what the run said on standard error.
fn finish_said(child: Child) -> (i32, Value, String) {
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains(arm::CLIENT_SECRET),
        "the secret was printed"
    );
    let rec = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no record ({e}): {}\n{stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (out.status.code().unwrap_or(-1), rec, stderr)
}

fn pool_count(emu: &Emulator) -> u64 {
    emu.state()["pools"][0]["properties"]["count"]
        .as_u64()
        .unwrap()
}

#[test]
fn a_controller_whose_read_was_overtaken_re_plans_instead_of_overwriting() {
    let emu = Emulator::start(&seed());
    let dir = workdir();
    let now = "1998-06-30T18:40:00Z";
    // B reads the pool first, but its answer is held back: B plans from the
    // pool as it was (12 nodes), with a higher target utilisation (fewer nodes).
    emu.add_faults(
        json!({"method": "GET", "pathContains": "agentPools/np1", "times": 1,
        "hold": true, "delayMs": 60000}),
    );
    let b = spawn(
        &emu,
        dir.path(),
        now,
        &[
            "--target-utilisation",
            "0.95",
            "--state",
            "b-state.json",
            "--decisions",
            "b.jsonl",
        ],
        &[],
    );
    let start = Instant::now();
    while emu.calls("GET").is_empty() {
        assert!(start.elapsed() < Duration::from_secs(60), "B never read");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Meanwhile A scales the pool out.
    let (a_code, a) = finish(spawn(
        &emu,
        dir.path(),
        now,
        &["--state", "a-state.json", "--decisions", "a.jsonl"],
        &[],
    ));
    assert_eq!(a_code, 0, "{a}");
    assert_eq!(a["outcome"], "applied");
    let scaled_to = a["after"]["count"].as_u64().unwrap();
    assert!(scaled_to > 12);
    // Now B gets its (stale) answer and plans a smaller pool from it.
    emu.release();
    let (b_code, b) = finish(b);
    // B's write would have scaled A's pool in, unplanned: it is refused, B
    // re-reads, re-plans from the pool as A left it, and holds.
    assert!(matches!(b_code, 4 | 5), "{b}");
    assert_eq!(b["before"]["count"], scaled_to, "{b}");
    assert_eq!(pool_count(&emu), scaled_to, "A's scale-out stands");
    let accepted: Vec<_> = emu
        .calls("PUT")
        .into_iter()
        .filter(|e| e.status < 300)
        .collect();
    assert_eq!(accepted.len(), 1, "only A's write: {accepted:?}");
}

/// The (count before, count after) of every accepted write to the pool, in
/// the order ARM applied them.
fn transitions(emu: &Emulator) -> Vec<(u64, u64)> {
    let mut from = 12;
    emu.calls("PUT")
        .into_iter()
        .filter(|e| e.status < 300)
        .map(|e| {
            let to = e.body["properties"]["count"].as_u64().unwrap();
            let t = (from, to);
            from = to;
            t
        })
        .collect()
}

#[test]
fn controllers_sharing_a_target_a_state_blob_and_a_log_lose_no_record_and_move_only_as_planned() {
    let Some(az) = azurite::Azurite::from_env() else {
        return;
    };
    let c = az.create_container("ctl");
    let emu = Emulator::start(&seed());
    let dir = workdir();
    let cs = az.connection_string();
    let env = [("AZURE_STORAGE_CONNECTION_STRING", cs.as_str())];
    let state = az.url(&c, "web/state.json");
    let log = az.url(&c, "web/decisions.jsonl");
    let store = az.store(&c);
    // Four controllers with different target utilisations (different
    // plans) on one pool, one state blob and one log, three times.
    let utilisations = ["0.6", "0.7", "0.83", "0.95"];
    let moments = [
        "1998-06-30T18:40:00Z",
        "1998-06-30T19:10:00Z",
        "1998-06-30T19:40:00Z",
    ];
    let mut records = Vec::new();
    let mut replanned = 0;
    for (round, now) in moments.iter().enumerate() {
        // All but one read the pool and get their answer only once the one
        // left has finished: they plan from a pool that has moved since.
        emu.add_faults(json!({"method": "GET", "pathContains": "agentPools/np1",
            "times": utilisations.len() - 1, "hold": true, "delayMs": 60000}));
        let mut children: Vec<Option<Child>> = utilisations
            .iter()
            .map(|u| {
                Some(spawn(
                    &emu,
                    dir.path(),
                    now,
                    &[
                        "--target-utilisation",
                        u,
                        "--state",
                        &state,
                        "--decisions",
                        &log,
                        "--request-timeout",
                        "90s",
                    ],
                    &env,
                ))
            })
            .collect();
        let start = Instant::now();
        let first = loop {
            let done = children
                .iter_mut()
                .position(|c| c.as_mut().unwrap().try_wait().unwrap().is_some());
            if let Some(i) = done {
                break i;
            }
            assert!(start.elapsed() < Duration::from_secs(50), "no run finished");
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut finished = vec![finish_said(children[first].take().unwrap())];
        emu.release();
        finished.extend(children.into_iter().flatten().map(finish_said));
        for (code, rec, said) in finished {
            assert!(matches!(code, 0 | 1 | 4 | 5), "exit {code}: {rec}\n{said}");
            replanned += said.matches("re-reading and re-planning").count();
            records.push(rec);
        }
        // No record is lost: one line per run, each whole.
        let text = String::from_utf8(store.get("web/decisions.jsonl").unwrap()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert_eq!(lines.len(), utilisations.len() * (round + 1), "{text}");
        // The state is always a valid planner state, in time order.
        let memory: PlannerMemory =
            serde_json::from_slice(&store.get("web/state.json").unwrap()).unwrap();
        let times: Vec<i64> = memory.recommendations.iter().map(|(t, _)| *t).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    }
    // Every move ARM applied was planned from the pool as it then was: the
    // (before, after) of the records that changed it are exactly the moves.
    let mut moves = transitions(&emu);
    let mut planned: Vec<(u64, u64)> = records
        .iter()
        .filter(|r| matches!(r["outcome"].as_str(), Some("applied" | "limited")))
        .map(|r| {
            (
                r["before"]["count"].as_u64().unwrap(),
                r["after"]["count"].as_u64().unwrap(),
            )
        })
        .collect();
    moves.sort_unstable();
    planned.sort_unstable();
    assert_eq!(moves, planned, "records: {records:#?}");
    assert!(!moves.is_empty());
    // The stale controllers' writes were refused and re-planned, not sent blind.
    assert!(replanned > 0, "no run had to re-plan: {records:#?}");
    assert_eq!(
        pool_count(&emu),
        emu.calls("PUT")
            .iter()
            .rfind(|e| e.status < 300)
            .map_or(12, |e| e.body["properties"]["count"].as_u64().unwrap())
    );
}
