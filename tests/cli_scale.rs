//! `mlscaler scale` end to end against a simulated pool, on the bundled real
//! data (the ARM targets are tested against the local ARM emulator elsewhere).

#[path = "support/cli.rs"]
mod cli;

use cli::{assert_code, mlscaler};
use std::path::Path;

fn records(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("decisions.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn train(dir: &Path) {
    assert_code(&mlscaler(dir, &["train", "--models", "models", "-q"]), 0);
}

#[test]
fn the_demo_plans_on_the_bundled_sample_without_azure_and_changes_nothing_on_a_dry_run() {
    let dir = tempfile::tempdir().unwrap();
    let r = mlscaler(dir.path(), &["scale", "--dry-run"]);
    // The demo plans at a busy moment of the sample: the pool sized for the
    // current load is too small for what the forecast says comes next.
    assert_code(&r, 0);
    assert!(r.stdout.contains("would apply"), "{}", r.stdout);
    assert!(
        r.stderr
            .contains("tuning the scaling profile on the bundled sample")
            && r.stderr.contains("tune chose on the sample's first half"),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout.starts_with("[dry run] simulated pool:"),
        "{}",
        r.stdout
    );
    let recs = records(dir.path());
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["dry_run"], true);
    assert!(
        !dir.path().join("mlscaler-state.json").exists(),
        "a dry run moved the planner state"
    );

    // It published model and profile as one version, and planned with both:
    // the model of that version, sized at the profile's target utilisation,
    // calibrated only if the profile says so.
    let pointer: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("models/count/latest.json")).unwrap(),
    )
    .unwrap();
    let profile = std::fs::read_to_string(
        dir.path().join("models").join(
            pointer["profile"]
                .as_str()
                .expect("a profile was published"),
        ),
    )
    .unwrap();
    let setting = |key: &str| {
        profile
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("{key} in {profile}"))
            .to_string()
    };
    assert_eq!(recs[0]["model"]["id"], pointer["id"]);
    assert_eq!(setting("policy"), "\"predictive\"", "{profile}");
    let reasons = recs[0]["decision"]["reasons"].as_array().unwrap();
    let sized = reasons.iter().find(|r| r["step"] == "sized").unwrap();
    assert_eq!(
        sized["utilisation"].as_f64().unwrap(),
        setting("target-utilisation").parse::<f64>().unwrap()
    );
    assert_eq!(
        reasons.iter().any(|r| r["step"] == "calibrated"),
        setting("no-calibration") == "false",
        "{reasons:?}"
    );
    assert!(
        r.stderr.contains(&format!(
            "published with model 'count' version {}",
            pointer["id"].as_str().unwrap()
        )),
        "{}",
        r.stderr
    );

    // The next run plans with the same pair and tunes nothing again.
    let again = mlscaler(dir.path(), &["scale", "--dry-run"]);
    assert_code(&again, 0);
    assert!(!again.stderr.contains("tuning"), "{}", again.stderr);
    assert_eq!(again.stdout, r.stdout);
}

#[test]
fn a_demo_model_published_without_a_profile_plans_with_the_defaults_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    train(dir.path());
    let r = mlscaler(dir.path(), &["scale", "--dry-run", "--output", "json"]);
    assert_code(&r, 0);
    assert!(
        r.stderr.contains("published without a scaling profile") && !r.stderr.contains("tuning"),
        "{}",
        r.stderr
    );
    let reasons = r.json()["decision"]["reasons"].clone();
    let sized = reasons
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["step"] == "sized")
        .unwrap()
        .clone();
    assert_eq!(sized["utilisation"], 0.83, "the default target utilisation");
}

#[test]
fn at_a_busy_hour_the_forecast_is_trusted_and_sizes_the_pool_before_the_load() {
    let dir = tempfile::tempdir().unwrap();
    train(dir.path());
    let r = mlscaler(
        dir.path(),
        &[
            "scale",
            "--now",
            "1998-06-30T18:40:00Z",
            "--target",
            "sim:12",
            "--capacity-per-node",
            "4000",
            "--dry-run",
            "--output",
            "json",
            "--plot",
            "plan.svg",
        ],
    );
    assert_code(&r, 0);
    let s = r.json();
    assert_eq!(s["outcome"], "would_apply");
    let svg = std::fs::read_to_string(dir.path().join("plan.svg")).unwrap();
    assert!(
        svg.starts_with("<svg")
            && svg.contains("planned capacity")
            && svg.contains("10-90% forecast")
    );
    assert_eq!(
        s["data"]["newest"], "1998-06-30T18:40:00Z",
        "a replay sees no data after --now"
    );
    let ratio = s["forecast"]["error_ratio"].as_f64().unwrap();
    assert!(
        ratio < 3.0,
        "the model looks drifted at a busy hour: {ratio}"
    );
    let steps: Vec<&str> = s["decision"]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps[0], "forecast", "{steps:?}");
    // ~73,500 requests/min at 4,000 per node and 83% utilisation: at least 23 nodes.
    let nodes = s["decision"]["nodes"].as_u64().unwrap();
    assert!((23..=40).contains(&nodes), "{nodes} nodes");
    assert_eq!(s["before"]["count"], 12);
}

#[test]
fn stale_data_never_scales_in_and_is_held_for_safety() {
    let dir = tempfile::tempdir().unwrap();
    train(dir.path());
    // The sample ends at 21:59; an hour later the data is stale (--max-data-age 15m).
    let r = mlscaler(
        dir.path(),
        &[
            "scale",
            "--now",
            "1998-07-26T23:00:00Z",
            "--target",
            "sim:10",
            "--capacity-per-node",
            "4000",
            "--output",
            "json",
        ],
    );
    assert_code(&r, 5);
    let s = r.json();
    assert_eq!(s["outcome"], "held");
    assert_eq!(s["decision"]["nodes"], 10);
    let text = s["explanation"].to_string();
    assert!(text.contains("stale"), "{text}");
}

#[test]
fn scale_in_waits_for_the_stabilisation_window_across_separate_runs() {
    let dir = tempfile::tempdir().unwrap();
    train(dir.path());
    let run = |now: &str| {
        mlscaler(
            dir.path(),
            &[
                "scale",
                "--now",
                now,
                "--target",
                "sim:10",
                "--capacity-per-node",
                "4000",
                "--scale-in-window",
                "2m",
                "--output",
                "json",
            ],
        )
    };
    // Quiet night: fewer nodes would do, but the first run has no history of
    // recommendations, so it holds for a whole window.
    let first = run("1998-07-20T04:00:00Z");
    assert_code(&first, 4);
    let steps = first.json()["decision"]["reasons"].to_string();
    assert!(steps.contains("stabilising"), "{steps}");
    let second = run("1998-07-20T04:03:00Z");
    assert_code(&second, 0);
    let s = second.json();
    assert_eq!(s["outcome"], "applied");
    assert!(
        s["decision"]["nodes"].as_u64().unwrap() < 10,
        "{}",
        s["decision"]
    );
    assert_eq!(records(dir.path()).len(), 2);
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("mlscaler-state.json")).unwrap())
            .unwrap();
    assert!(state["last_scale_in"].is_number(), "{state}");
}

#[test]
fn bad_targets_and_missing_models_fail_clearly_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = cli::data("worldcup98_requests_per_minute.csv");
    let d = data.to_str().unwrap();
    let r = mlscaler(
        dir.path(),
        &[
            "scale", "--data", d, "--model", "count", "--target", "sim:3",
        ],
    );
    assert_code(&r, 1);
    assert!(
        r.stderr.contains("no published model named 'count'"),
        "{}",
        r.stderr
    );
    train(dir.path());
    let r = mlscaler(
        dir.path(),
        &[
            "scale", "--data", d, "--model", "count", "--target", "nonsense",
        ],
    );
    assert_code(&r, 1);
    assert!(r.stderr.contains("--target 'nonsense'"), "{}", r.stderr);
    let r = mlscaler(
        dir.path(),
        &[
            "scale",
            "--data",
            d,
            "--model",
            "count",
            "--target",
            "sim:3",
            "--now",
            "1990-01-01T00:00:00Z",
        ],
    );
    assert_code(&r, 1);
    assert!(r.stderr.contains("before the first step"), "{}", r.stderr);
    assert!(!dir.path().join("mlscaler-state.json").exists());
}

#[test]
fn the_workshop_sla_mode_steps_nodes_on_the_predicted_latency_band() {
    let dir = tempfile::tempdir().unwrap();
    let data = cli::data("agilethought_log_data_daily.csv");
    let d = data.to_str().unwrap();
    let common = ["--data", d, "--time-format", "index", "--step", "1d"];
    let mut train = vec![
        "train",
        "--kind",
        "regression",
        "--metric",
        "avg_request_time_s",
        "--inputs",
        "admin_users,config_users,end_users",
        "-q",
    ];
    train.extend_from_slice(&common);
    assert_code(&mlscaler(dir.path(), &train), 0);
    let scale = |now: &str, extra: &[&str]| {
        let mut a = vec![
            "scale",
            "--model",
            "avg_request_time_s",
            "--target",
            "sim:4",
            "--sla-target",
            "180",
            "--sla-threshold",
            "20",
            "--sla-increment",
            "2",
            "--now",
            now,
            "--output",
            "json",
        ];
        a.extend_from_slice(&common);
        a.extend_from_slice(extra);
        mlscaler(dir.path(), &a)
    };
    // Day 38: 9,650 end users, about 236 s measured: above the band, +2 nodes.
    let busy = scale("1970-02-08T00:00:00Z", &[]);
    assert_code(&busy, 0);
    let s = busy.json();
    assert!(
        s["data"]["current_demand"].as_f64().unwrap() > 200.0,
        "{}",
        s["data"]
    );
    assert_eq!(s["decision"]["nodes"], 6);
    // Day 8: about 196 s, inside 180 +- 20: nothing to do.
    let inside = scale("1970-01-09T00:00:00Z", &[]);
    assert_code(&inside, 4);
    // Day 364: about 90 s, below the band: -2 nodes, but never below --min-nodes.
    let quiet = scale("data-end", &["--min-nodes", "3"]);
    assert_code(&quiet, 0);
    assert_eq!(quiet.json()["decision"]["nodes"], 3);
    assert!(
        quiet.json()["explanation"].to_string().contains("below"),
        "{}",
        quiet.stdout
    );
    // A forecast model is needed for the predictive mode, a target for the SLA mode.
    let mut no_target = vec![
        "scale",
        "--model",
        "avg_request_time_s",
        "--target",
        "sim:4",
    ];
    no_target.extend_from_slice(&common);
    let r = mlscaler(dir.path(), &no_target);
    assert_code(&r, 1);
    assert!(r.stderr.contains("--sla-target"), "{}", r.stderr);
}

#[test]
fn the_alarm_policy_needs_m_of_n_datapoints_and_keeps_its_cooldown_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    // A published queue-load metric, one datapoint a minute.
    let mut csv = String::from("timestamp,queue_load\n");
    let value = |i: usize| match i {
        0..=29 => 1.0,
        30..=37 => 3.0,
        _ => 0.2,
    };
    for i in 0..60 {
        csv.push_str(&format!("1998-01-01 00:{i:02}:00,{}\n", value(i)));
    }
    std::fs::write(dir.path().join("queue.csv"), csv).unwrap();
    let run = |minute: usize, nodes: u32| {
        let now = format!("1998-01-01T00:{minute:02}:00Z");
        let target = format!("sim:{nodes}");
        let r = mlscaler(
            dir.path(),
            &[
                "scale",
                "--policy",
                "alarm",
                // The alarm as this team runs it: on the published metric, one node a step.
                "--alarm-on",
                "metric",
                "--alarm-out-at",
                "2",
                "--alarm-in-at",
                "0.5",
                "--alarm-out-step",
                "1",
                "--data",
                "queue.csv",
                "--target",
                &target,
                "--now",
                &now,
                "--output",
                "json",
            ],
        );
        let steps: Vec<String> = r.json()["decision"]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["step"].as_str().unwrap().to_string())
            .collect();
        (
            r.code,
            r.json()["decision"]["nodes"].as_u64().unwrap(),
            steps,
        )
    };
    // 1 of the last 2 datapoints >= 2: no alarm.
    assert_eq!(run(30, 4), (4, 4, vec!["no_alarm".to_string()]));
    // 2 of 2: one node more.
    assert_eq!(run(31, 4), (0, 5, vec!["alarm_high".to_string()]));
    // A minute later, in a separate run, still high: the 300 s cooldown holds.
    assert_eq!(run(32, 5), (4, 5, vec!["cooldown".to_string()]));
    // Six minutes after the action: the alarm acts again.
    assert_eq!(run(37, 5), (0, 6, vec!["alarm_high".to_string()]));
    // Scale-in needs 20 of 20 low datapoints: 19 are not enough, 20 are.
    assert_eq!(run(56, 6), (4, 6, vec!["no_alarm".to_string()]));
    assert_eq!(run(57, 6), (0, 5, vec!["alarm_low".to_string()]));
    // Never below the minimum.
    let r = mlscaler(
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
            "--alarm-out-step",
            "1",
            "--data",
            "queue.csv",
            "--target",
            "sim:1",
            "--now",
            "1998-01-01T00:59:00Z",
            "--alarm-cooldown",
            "1s",
        ],
    );
    assert_code(&r, 4);
}

#[test]
fn with_fallback_alarm_the_alarm_rule_decides_when_the_forecast_is_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    train(dir.path());
    // Stale data (an hour after the sample ends), as in the test above, but the
    // team's alarm rule on utilisation takes over: 20 of 20 datapoints are low.
    let r = mlscaler(
        dir.path(),
        &[
            "scale",
            "--now",
            "1998-07-26T23:00:00Z",
            "--target",
            "sim:10",
            "--capacity-per-node",
            "4000",
            "--fallback",
            "alarm",
            "--alarm-on",
            "utilisation",
            "--alarm-out-at",
            "2",
            "--alarm-in-at",
            "0.5",
            "--alarm-out-step",
            "1",
            "--output",
            "json",
        ],
    );
    assert_code(&r, 0);
    let s = r.json();
    assert_eq!(s["decision"]["nodes"], 9);
    let text = s["explanation"].to_string();
    assert!(
        text.contains("stale") && text.contains("the alarm rule decides"),
        "{text}"
    );
    let steps: Vec<&str> = s["decision"]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["alarm_low"]);
}

/// A CSV of `metric` per minute whose last row is `ahead` seconds after the clock.
fn csv_ending_ahead_of_the_clock(dir: &Path, ahead: i64) -> std::path::PathBuf {
    let end = chrono::Utc::now().timestamp() + ahead;
    let end = end - end.rem_euclid(60);
    let mut csv = String::from("timestamp,requests\n");
    for i in (0..120).rev() {
        let t = chrono::DateTime::from_timestamp(end - i * 60, 0).unwrap();
        csv.push_str(&format!("{},{}\n", t.format("%Y-%m-%dT%H:%M:%SZ"), 100 + i));
    }
    let path = dir.join("ahead.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

#[test]
fn data_ahead_of_the_clock_beyond_the_allowed_skew_is_refused_and_recorded_as_clock_skew() {
    let dir = tempfile::tempdir().unwrap();
    let data = csv_ending_ahead_of_the_clock(dir.path(), 30 * 60);
    let run = |skew: &str| {
        mlscaler(
            dir.path(),
            &[
                "scale",
                "--policy",
                "target-tracking",
                "--data",
                data.to_str().unwrap(),
                "--target",
                "sim:3",
                "--capacity-per-node",
                "50",
                "--max-clock-skew",
                skew,
                "--output",
                "json",
            ],
        )
    };
    // 30 minutes ahead, 5 allowed: not planned on, said so, recorded.
    let r = run("5m");
    assert_code(&r, 1);
    assert!(
        r.stderr.contains("ahead of the clock") && r.stderr.contains("--max-clock-skew 5m"),
        "{}",
        r.stderr
    );
    let rec = &records(dir.path())[0];
    assert_eq!(rec["outcome"], "failed");
    assert_eq!(rec["error_class"], "clock_skew");
    // Allowing an hour: the rows are used, the newest one included.
    let r = run("1h");
    assert!(matches!(r.code, 0 | 4 | 5), "{}{}", r.stdout, r.stderr);
    let rec: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(rec["data"]["steps"], 120, "{rec}");
    assert!(rec["data"]["age_secs"].as_i64().unwrap() < 0, "{rec}");
}

#[test]
fn a_run_that_fails_before_deciding_appends_a_failed_record_and_prints_no_backtrace() {
    let dir = tempfile::tempdir().unwrap();
    // No such model: the run cannot plan.
    let r = cli::mlscaler_env(
        dir.path(),
        &[
            "scale", "--model", "nope", "--target", "sim:3", "-vv", "--output", "json",
        ],
        &[("RUST_BACKTRACE", "1")],
    );
    assert_code(&r, 1);
    assert!(r.stderr.contains("error:"), "{}", r.stderr);
    assert!(!r.stderr.contains("stack backtrace"), "{}", r.stderr);
    let recs = records(dir.path());
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["outcome"], "failed");
    assert_eq!(recs[0]["error_class"], "other");
    assert_eq!(recs[0]["target"], "simulated pool");
    assert_eq!(recs[0]["writes"], serde_json::json!([]));
    let printed: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(printed, recs[0]);
}

/// What a run decided and why, without how much data it read.
fn decided(r: &cli::Run) -> serde_json::Value {
    let s = r.json();
    serde_json::json!({
        "code": r.code,
        "outcome": s["outcome"],
        "before": s["before"],
        "decision": s["decision"],
        "explanation": s["explanation"],
        "forecast": s["forecast"],
        "capacity_per_node": s["capacity_per_node"],
        "newest": s["data"]["newest"],
        "current_demand": s["data"]["current_demand"],
    })
}

#[test]
fn scale_reads_only_the_recent_window_it_needs_and_decides_as_on_the_whole_history() {
    let dir = tempfile::tempdir().unwrap();
    train(dir.path());
    let run = |now: &str, extra: &[&str]| {
        let mut a = vec![
            "scale",
            "--now",
            now,
            "--target",
            "sim:12",
            "--capacity-per-node",
            "4000",
            "--dry-run",
            "--output",
            "json",
        ];
        a.extend_from_slice(extra);
        mlscaler(dir.path(), &a)
    };
    // An explicit --since before the sample's first row: the whole history.
    let whole = ["--since", "1998-01-01T00:00:00Z"];
    let steps = |r: &cli::Run| r.json()["data"]["steps"].as_u64().unwrap();
    for (now, extra, windowed) in [
        // A busy evening: forecast, drift and calibration windows, the plot.
        ("1998-06-30T18:40:00Z", &["--plot", "plan.svg"][..], true),
        // A quiet night.
        ("1998-07-20T04:00:00Z", &[][..], true),
        // An hour after the sample ends: stale, but within the window's margin.
        ("1998-07-26T23:00:00Z", &[][..], true),
        // Eight hours after: the window holds too little, the whole history is read.
        ("1998-07-27T06:00:00Z", &[][..], false),
        // Months after: nothing in the window, the whole history is read.
        ("1998-10-01T00:00:00Z", &[][..], false),
    ] {
        let recent = run(now, extra);
        let mut all = extra.to_vec();
        all.extend_from_slice(&whole);
        let everything = run(now, &all);
        assert_eq!(decided(&recent), decided(&everything), "now {now}");
        if windowed {
            // The model's weekly season and the 14-day calibration window:
            // about three weeks of the three months before `now`.
            let (a, b) = (steps(&recent), steps(&everything));
            assert!(a * 2 < b && a > 21 * 1440, "now {now}: {a} of {b} steps");
        } else {
            assert_eq!(steps(&recent), steps(&everything), "now {now}");
        }
    }
    // Policies without a model, at a known step: the same.
    for policy in [
        &["--policy", "seasonal-naive", "--step", "1m"][..],
        &["--policy", "alarm", "--step", "1m"][..],
        &["--policy", "target-tracking", "--step", "1m"][..],
    ] {
        let now = "1998-06-30T18:40:00Z";
        let recent = run(now, policy);
        let mut all = policy.to_vec();
        all.extend_from_slice(&whole);
        let everything = run(now, &all);
        assert_eq!(decided(&recent), decided(&everything), "{policy:?}");
        assert!(
            steps(&recent) < 3 * 1440,
            "{policy:?}: {} steps",
            steps(&recent)
        );
    }
}

#[test]
fn the_vertical_policy_runs_on_a_simulated_scale_set_kept_in_the_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let ladder = "Standard_D2s_v5,Standard_D4s_v5,Standard_D8s_v5,Standard_D16s_v5";
    let file = cli::data("worldcup98_requests_per_minute.csv");
    let data = file.to_str().unwrap();
    // The sample's requests as memory demand, 0.0003 GiB per request a minute.
    let run = |now: &str, more: &[&str]| {
        let mut a = vec![
            "scale",
            "--policy",
            "vertical",
            "--target",
            "sim",
            "--data",
            data,
            "--ladder",
            ladder,
            "--memory-per-unit",
            "0.0003",
            "--now",
            now,
            "--output",
            "json",
            "-q",
        ];
        a.extend_from_slice(more);
        mlscaler(dir.path(), &a)
    };
    // A dry run plans and keeps nothing.
    let r = run("1998-06-30T18:40:00Z", &["--dry-run"]);
    assert!([0, 4].contains(&r.code), "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.json()["target"], "simulated scale set");
    // The record says how its memory demand converts to GiB.
    assert_eq!(r.json()["memory_per_unit"], 0.0003);
    assert!(!dir.path().join("mlscaler-state.json").exists());
    // A run keeps the scale set, at the size it decided, in the state file.
    let r = run("1998-06-30T18:40:00Z", &[]);
    assert!([0, 4].contains(&r.code), "{}\n{}", r.stdout, r.stderr);
    let decision = r.json()["decision"].clone();
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("mlscaler-state.json")).unwrap())
            .unwrap();
    let set = &state["sim_scale_set"];
    assert_eq!(set["ladder"].as_array().unwrap().len(), 4);
    let kept = &set["ladder"][set["size"].as_u64().unwrap() as usize];
    assert_eq!(
        kept,
        if decision["action"] == "resize" {
            &decision["to"]
        } else {
            &decision["size"]
        }
    );

    // Another ladder than the kept scale set's: refused, naming the state file.
    let r = mlscaler(
        dir.path(),
        &[
            "scale",
            "--policy",
            "vertical",
            "--target",
            "sim",
            "--data",
            data,
            "--ladder",
            "Standard_D4s_v5,Standard_D8s_v5",
            "--now",
            "1998-06-30T18:41:00Z",
        ],
    );
    assert_code(&r, 1);
    assert!(
        r.stderr.contains("mlscaler-state.json") && r.stderr.contains("remove the state file"),
        "{}",
        r.stderr
    );
    // --memory-per-unit means nothing to a policy that sizes by count.
    let r = mlscaler(
        dir.path(),
        &["scale", "--target", "sim:3", "--memory-per-unit", "2"],
    );
    assert_code(&r, 1);
    assert!(r.stderr.contains("--memory-per-unit"), "{}", r.stderr);
}

#[test]
fn the_vertical_policy_with_a_model_plans_for_the_forecast_peak_or_says_why_there_is_none() {
    let dir = tempfile::tempdir().unwrap();
    train(dir.path());
    let file = cli::data("worldcup98_requests_per_minute.csv");
    let whole = file.to_str().unwrap().to_string();
    // Half an hour of the sample: too little history for the model's lags.
    let short: String = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .take(31)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.path().join("short.csv"), short).unwrap();
    let run = |data: &str, now: &str| {
        mlscaler(
            dir.path(),
            &[
                "scale",
                "--policy",
                "vertical",
                "--target",
                "sim",
                "--model",
                "count",
                "--models",
                "models",
                "--data",
                data,
                "--ladder",
                "Standard_D2s_v5,Standard_D4s_v5,Standard_D8s_v5,Standard_D16s_v5",
                "--memory-per-unit",
                "0.0003",
                "--now",
                now,
                "--dry-run",
                "--output",
                "json",
                "-q",
            ],
        )
    };
    // With the model's history: the forecast peak over the lead time is
    // planned for, at the size's memory.
    let r = run(&whole, "1998-06-30T18:40:00Z");
    assert!([0, 4].contains(&r.code), "{}\n{}", r.stdout, r.stderr);
    let rec = r.json();
    let peak = rec["forecast_peak"].as_f64().expect("a forecast peak");
    assert!(peak > 1000.0, "{rec}");
    assert!(rec.get("forecast_error").is_none(), "{rec}");
    // Without it: no forecast, a decision on the observed memory alone (as
    // the backtest decides at such a step), and the record says why.
    let r = run("short.csv", "1998-04-30T21:59:00Z");
    assert!([0, 4].contains(&r.code), "{}\n{}", r.stdout, r.stderr);
    let rec = r.json();
    assert!(rec["forecast_peak"].is_null(), "{rec}");
    let why = rec["forecast_error"]
        .as_str()
        .expect("why there is no forecast");
    assert!(why.contains("model 'count'"), "{why}");
    assert!(rec["decision"]["action"].is_string(), "{rec}");
}
