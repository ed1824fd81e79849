//! `mlscaler tune` end to end: the real binary on the bundled real traces.
//! The choice is the cheapest candidate that meets the objective on the
//! tuning window, a reactive rule when no predictive candidate beats it, and
//! the profile it writes is exactly what it scored: `backtest --config` of
//! that profile on the held-back window gives the same result.

#[path = "support/cli.rs"]
mod cli;

use cli::{assert_code, data, mlscaler};
use serde_json::Value;

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Tune on `trace` in `dir` (lead 10 minutes, capacity p99.9 = 40 nodes);
/// the JSON summary.
fn tune(dir: &std::path::Path, trace: &str, extra: &[&str]) -> Value {
    let d = data(trace);
    let mut args = vec![
        "tune",
        "--data",
        d.to_str().unwrap(),
        "--lead-time",
        "10m",
        "--round-lead-up",
        "--p999-nodes",
        "40",
        "--out",
        "profile.toml",
        "--report",
        "tune.json",
        "--plot",
        "tune.svg",
        "--output",
        "json",
        "-q",
    ];
    args.extend_from_slice(extra);
    let r = mlscaler(dir, &args);
    assert_code(&r, 0);
    r.json()
}

/// Every rule of the choice, checked against the candidates' own results.
fn check_choice(s: &Value) {
    let candidates = s["candidates"].as_array().expect("candidates");
    assert!(candidates.len() >= 200, "{} candidates", candidates.len());
    let i = s["choice"]["index"].as_u64().expect("an index") as usize;
    let chosen = &candidates[i];
    let max = f(&s["objective"]["max_under_pct"]);
    let max_ops = s["objective"]["max_ops_per_hour"].as_f64();
    let within_ops = |c: &Value| max_ops.is_none_or(|x| f(&c["ops_per_hour"]) <= x);
    let blocks =
        |c: &Value| -> Vec<f64> { c["blocks"].as_array().unwrap().iter().map(f).collect() };
    let hours = |c: &Value| -> Vec<f64> {
        c["block_node_hours"]
            .as_array()
            .unwrap()
            .iter()
            .map(f)
            .collect()
    };
    let v = &s["choice"]["validation"];
    let limit = f(&v["limit_pct"]);
    let validated = v["validated"] == true;
    // The walk-forward check: the later half of the blocks, each with the
    // cheapest (by the node-hours of the blocks before it) of the candidates
    // short at most the limit in every block before it.
    let k = blocks(chosen).len();
    let checks = v["checks"].as_array().unwrap();
    let checked: Vec<u64> = checks
        .iter()
        .map(|c| c["block"].as_u64().unwrap())
        .collect();
    if checks.is_empty() {
        // Nothing to check: under two blocks, or no candidate within the
        // operations limit; the objective as given.
        assert!(k < 2 || !candidates.iter().any(within_ops));
        assert_eq!((validated, limit), (false, max));
    } else {
        assert_eq!(
            checked,
            ((k / 2).max(1) as u64..k as u64).collect::<Vec<_>>()
        );
    }
    for c in checks {
        let w = c["block"].as_u64().unwrap() as usize;
        let picked = &candidates[c["chosen"].as_u64().unwrap() as usize];
        let before = |x: &Value| hours(x)[..w].iter().sum::<f64>();
        let mean = |x: &Value| blocks(x)[..w].iter().sum::<f64>() / w as f64;
        let meets_before = |x: &Value| blocks(x)[..w].iter().all(|b| *b <= limit);
        let usable: Vec<&Value> = candidates.iter().filter(|x| within_ops(x)).collect();
        if usable.iter().any(|x| meets_before(x)) {
            assert!(meets_before(picked), "{picked}");
            for other in usable.iter().filter(|x| meets_before(x)) {
                assert!(
                    before(picked) <= before(other),
                    "{} before {w}",
                    other["label"]
                );
            }
        } else {
            // None meets it before w: the least short on average there.
            for other in &usable {
                assert!(mean(picked) <= mean(other), "{} before {w}", other["label"]);
            }
        }
        assert_eq!(f(&c["under_provisioned_pct"]), blocks(picked)[w]);
    }
    assert_eq!(
        validated,
        !checks.is_empty() && checks.iter().all(|c| f(&c["under_provisioned_pct"]) <= max)
    );
    let predictive = |c: &Value| c["label"].as_str().unwrap().starts_with("predictive");
    if !validated && !checks.is_empty() {
        // The rule did not hold: the reactive threshold rule as configured.
        assert_eq!(chosen["candidate"]["policy"], "configured_threshold");
        assert_eq!(s["choice"]["reactive"], true);
        return;
    }
    // At the validated limit: the cheapest that meets it overall and in
    // every block, a reactive choice said to be one.
    let meets = |c: &Value| {
        f(&c["under_provisioned_pct"]) <= limit
            && blocks(c).iter().all(|b| *b <= limit)
            && within_ops(c)
    };
    let feasible: Vec<&Value> = candidates.iter().filter(|c| meets(c)).collect();
    if feasible.is_empty() {
        // Nothing meets it: the least under-provisioned.
        for c in candidates {
            assert!(f(&chosen["under_provisioned_pct"]) <= f(&c["under_provisioned_pct"]));
        }
        return;
    }
    assert!(meets(chosen), "{chosen}");
    for c in &feasible {
        assert!(
            f(&chosen["node_hours"]) <= f(&c["node_hours"]),
            "{} is cheaper than the choice {}",
            c["label"],
            chosen["label"]
        );
    }
    // A predictive choice beats every reactive rule that meets the objective;
    // a reactive choice is said to be one.
    assert_eq!(s["choice"]["reactive"], !predictive(chosen));
    if predictive(chosen) {
        for c in feasible.iter().filter(|c| !predictive(c)) {
            assert!(f(&chosen["node_hours"]) < f(&c["node_hours"]), "{c}");
        }
    } else {
        let why = s["choice"]["why"].as_str().unwrap();
        assert!(why.contains("reactive"), "{why}");
    }
}

/// `backtest --config profile.toml` of the chosen policy on the held-back
/// window gives exactly the result tune printed for it.
fn check_profile_replays_the_held_back_result(dir: &std::path::Path, trace: &str, s: &Value) {
    let policy = s["policy"].as_str().unwrap();
    let d = data(trace);
    let r = mlscaler(
        dir,
        &[
            "backtest",
            "--config",
            "profile.toml",
            "--data",
            d.to_str().unwrap(),
            "--policy",
            policy,
            "--score-from",
            "0.5",
            "--output",
            "json",
            "-q",
        ],
    );
    assert_code(&r, 0);
    let b = r.json();
    let replayed = b["report"]["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["policy"] == policy)
        .unwrap_or_else(|| panic!("no {policy} in {b}"))
        .clone();
    let held = &s["held_back"]["chosen"];
    for key in [
        "node_hours",
        "under_provisioned_pct",
        "actions",
        "waited",
        "steps",
    ] {
        assert_eq!(replayed[key], held[key], "{key}: {replayed} vs {held}");
    }
}

#[test]
fn on_the_elb_trace_tune_picks_by_the_rules_and_its_profile_replays_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let trace = "nab_elb_request_count_8c0756.csv";
    let s = tune(dir.path(), trace, &[]);
    check_choice(&s);
    // The written report is the same document; the plot is a picture.
    let written: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("tune.json")).unwrap()).unwrap();
    assert_eq!(written["choice"], s["choice"]);
    assert!(std::fs::read_to_string(dir.path().join("tune.svg"))
        .unwrap()
        .starts_with("<svg"));
    let profile = std::fs::read_to_string(dir.path().join("profile.toml")).unwrap();
    assert!(
        profile.starts_with("# Chosen by `mlscaler tune`"),
        "{profile}"
    );
    assert!(
        profile.contains(&format!("policy = \"{}\"", s["policy"].as_str().unwrap())),
        "{profile}"
    );
    check_profile_replays_the_held_back_result(dir.path(), trace, &s);
    // The ELB trace's bursts: no rule holds on its days, chosen from the
    // days before each, so the threshold rule as configured is kept, and
    // the held-back result is exactly that baseline's.
    assert_eq!(s["choice"]["validation"]["validated"], false);
    assert_eq!(s["policy"], "reactive_threshold");
    let baseline = s["held_back"]["baselines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["policy"] == "reactive_threshold")
        .unwrap();
    for key in ["node_hours", "under_provisioned_pct", "actions"] {
        assert_eq!(s["held_back"]["chosen"][key], baseline[key], "{key}");
    }
}

#[test]
fn on_the_taxi_trace_tune_picks_by_the_rules_and_its_profile_replays_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let trace = "nab_nyc_taxi.csv";
    let s = tune(dir.path(), trace, &[]);
    check_choice(&s);
    check_profile_replays_the_held_back_result(dir.path(), trace, &s);
}

#[test]
fn an_objective_nothing_meets_picks_the_least_under_provisioned_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let s = tune(
        dir.path(),
        "nab_elb_request_count_8c0756.csv",
        &["--max-operations-per-hour", "0.001"],
    );
    assert!(s["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["feasible"] == false));
    check_choice(&s);
    let why = s["choice"]["why"].as_str().unwrap();
    assert!(why.contains("no candidate met the objective"), "{why}");
}

#[test]
fn bad_tune_settings_are_refused_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let d = data("nab_elb_request_count_8c0756.csv");
    for (flag, value) in [
        ("--tune-fraction", "1.5"),
        ("--max-under-provisioned", "150"),
    ] {
        let r = mlscaler(
            dir.path(),
            &["tune", "--data", d.to_str().unwrap(), flag, value, "-q"],
        );
        assert_code(&r, 1);
        assert!(
            r.stderr.contains(flag.trim_start_matches("--")),
            "{flag}: {}",
            r.stderr
        );
    }
    assert!(!dir.path().join("profile.toml").exists());
}
