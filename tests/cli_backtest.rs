//! `mlscaler backtest` end to end: the real binary on the bundled real traces.

#[path = "support/cli.rs"]
mod cli;

use cli::{assert_code, data, mlscaler};

fn policy<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["report"]["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["policy"] == name)
        .unwrap_or_else(|| panic!("no policy {name} in {report}"))
}

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn on_worldcup98_the_predictive_policy_beats_every_baseline_and_writes_the_plan_contract() {
    let dir = tempfile::tempdir().unwrap();
    let r = mlscaler(
        dir.path(),
        &[
            "backtest",
            "--lead-time",
            "10m",
            "--plan-out",
            "plan.csv",
            "--report",
            "report.json",
            "--plot",
            "bt.svg",
            "--output",
            "json",
            "-q",
        ],
    );
    assert_code(&r, 0);
    let s = r.json();
    let pred = policy(&s, "predictive");
    let (under, ratio) = (
        f(&pred["under_provisioned_pct"]),
        f(&pred["node_hours_vs_oracle"]),
    );
    // The default profile, not one tuned on this load (that is `tune`'s job,
    // see cli_tune.rs), on a pool that runs one operation at a time: 0.131%
    // short at 1.346x the oracle when measured (with the 10-minute scale-in
    // window; 0.206% at 1.256x with 2 minutes, which changed the pool twice
    // as often). The 1.25x target is for a tuned profile; the default must
    // stay near it, and beat every baseline on both counts (below).
    assert!(under <= 0.5, "under-provisioned {under}%");
    assert!(ratio <= 1.4, "node-hours {ratio}x the oracle");
    for base in ["reactive_threshold", "target_tracking", "seasonal_naive"] {
        let b = policy(&s, base);
        assert!(
            under <= f(&b["under_provisioned_pct"]),
            "{base} is less often short: {b}"
        );
        assert!(
            ratio < f(&b["node_hours_vs_oracle"]),
            "{base} uses fewer node-hours: {b}"
        );
    }
    // The targets block says what the numbers say.
    let t = &s["targets"];
    assert_eq!(t["under_provisioned_ok"], under <= 0.5);
    assert_eq!(t["node_hours_ok"], ratio <= 1.25);
    assert_eq!(
        t["met"],
        under <= 0.5
            && ratio <= 1.25
            && under <= f(&policy(&s, "reactive_threshold")["under_provisioned_pct"])
    );
    // The written report is the same document.
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(written["report"], s["report"]);
    // It holds the whole run's time and names itself, as printed.
    assert!(f(&written["seconds"]["total"]) >= f(&written["seconds"]["replay"]));
    assert_eq!(written["files"]["report"], s["files"]["report"]);

    // The plan: exactly one row per input row, in input order, with the contract's columns.
    let input = std::fs::read_to_string(data("worldcup98_requests_per_minute.csv")).unwrap();
    let plan = std::fs::read_to_string(dir.path().join("plan.csv")).unwrap();
    let mut lines = plan.lines();
    assert_eq!(
        lines.next(),
        Some("timestamp,demand,forecast,target_nodes,ready_nodes,policy,change,waited")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let inputs: Vec<&str> = input.lines().skip(1).collect();
    assert_eq!(rows.len(), inputs.len());
    for (row, inp) in rows.iter().zip(&inputs) {
        let (t, v) = inp.split_once(',').unwrap();
        assert_eq!(row[0], format!("{}Z", t.replace(' ', "T")));
        assert_eq!(row[1].parse::<f64>().unwrap(), v.parse::<f64>().unwrap());
        assert_eq!(row[5], "predictive");
    }
    for svg in ["bt.svg", "bt-busiest-day.svg"] {
        assert!(
            std::fs::read_to_string(dir.path().join(svg))
                .unwrap()
                .starts_with("<svg"),
            "{svg}"
        );
    }
}

#[test]
fn on_the_nyc_taxi_trace_the_predictive_policy_stays_within_the_sla_and_cost_targets() {
    let dir = tempfile::tempdir().unwrap();
    let d = data("nab_nyc_taxi.csv");
    // 30-minute data with a 10-minute lead: the lead must be rounded up on purpose.
    let refused = mlscaler(
        dir.path(),
        &["backtest", "--data", d.to_str().unwrap(), "-q"],
    );
    assert_code(&refused, 1);
    assert!(
        refused.stderr.contains("shorter than the step"),
        "{}",
        refused.stderr
    );
    let r = mlscaler(
        dir.path(),
        &[
            "backtest",
            "--data",
            d.to_str().unwrap(),
            "--round-lead-up",
            "--output",
            "json",
            "-q",
        ],
    );
    assert_code(&r, 0);
    let s = r.json();
    assert_eq!(s["report"]["lead_steps"], 1);
    let pred = policy(&s, "predictive");
    assert!(f(&pred["under_provisioned_pct"]) <= 0.5, "{pred}");
    // Default profile on a one-operation-at-a-time pool: 1.253x measured.
    assert!(f(&pred["node_hours_vs_oracle"]) <= 1.3, "{pred}");
    assert_eq!(f(&policy(&s, "oracle")["under_provisioned_pct"]), 0.0);
}

/// The first `n` data rows of the WorldCup98 trace as a CSV file.
fn head(dir: &std::path::Path, name: &str, n: usize) -> String {
    let text = std::fs::read_to_string(data("worldcup98_requests_per_minute.csv")).unwrap();
    let lines: Vec<&str> = text.lines().take(n + 1).collect();
    std::fs::write(dir.join(name), lines.join("\n") + "\n").unwrap();
    name.to_string()
}

#[test]
fn cutting_the_input_at_any_row_leaves_every_earlier_row_of_the_plan_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let full = head(dir.path(), "full.csv", 5 * 1440);
    let run = |file: &str, out: &str| {
        let r = mlscaler(
            dir.path(),
            &[
                "backtest",
                "--data",
                file,
                "--capacity-per-node",
                "100",
                "--warmup",
                "2d",
                "--retrain-every",
                "12h",
                "--plan-out",
                out,
                "--plan-policy",
                "all",
                "-q",
            ],
        );
        assert_code(&r, 0);
        std::fs::read_to_string(dir.path().join(out)).unwrap()
    };
    let whole = run(&full, "whole.csv");
    for cut in [3 * 1440 + 7, 4 * 1440 + 611] {
        let part = head(dir.path(), &format!("cut{cut}.csv"), cut);
        let plan = run(&part, &format!("plan{cut}.csv"));
        for policy in [
            "predictive",
            "reactive_threshold",
            "target_tracking",
            "seasonal_naive",
        ] {
            let rows = |p: &str| -> Vec<String> {
                p.lines()
                    .filter(|l| l.split(',').nth(5) == Some(policy))
                    .map(str::to_string)
                    .collect()
            };
            let (a, b) = (rows(&whole), rows(&plan));
            assert_eq!(b.len(), cut, "{policy}");
            // The capacity is a setting, not derived from the (cut) trace, so
            // everything the plan depends on is the input up to each row.
            if let Some(i) = (0..cut).find(|&i| a[i] != b[i]) {
                panic!(
                    "{policy}: cutting at row {cut} changed row {i}: {} became {}",
                    a[i], b[i]
                );
            }
        }
    }
}

#[test]
fn awkward_settings_and_traces_get_clear_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let small = head(dir.path(), "small.csv", 1440);
    let cases: &[(&[&str], &str)] = &[
        (&["--capacity-per-node", "0"], "capacity"),
        (&["--warmup", "3d"], "warm-up"),
        (&["--lead-time", "30s"], "shorter than the step"),
        (&["--policy", "magic"], "unknown policy 'magic'"),
        (&["--min-nodes", "5", "--max-nodes", "2"], "5"),
        (
            &[
                "--plan-out",
                "p.csv",
                "--policy",
                "oracle",
                "--plan-policy",
                "predictive",
            ],
            "not run",
        ),
    ];
    for (extra, wanted) in cases {
        let mut args = vec!["backtest", "--data", small.as_str(), "-q"];
        args.extend_from_slice(extra);
        let r = mlscaler(dir.path(), &args);
        assert_code(&r, 1);
        assert!(
            r.stderr.contains(wanted),
            "{extra:?}: wanted '{wanted}' in {}",
            r.stderr
        );
        assert!(!r.stderr.contains("panicked"), "{extra:?}: {}", r.stderr);
    }
}

#[test]
fn zero_demand_stretches_and_gaps_are_simulated_at_the_pool_minimum_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(data("worldcup98_requests_per_minute.csv")).unwrap();
    let mut out = String::from("period,count\n");
    for (i, line) in text.lines().skip(1).take(4 * 1440).enumerate() {
        if (3000..3030).contains(&i) {
            continue; // a 30-minute gap
        }
        let (t, v) = line.split_once(',').unwrap();
        let v = if (3500..3700).contains(&i) { "0" } else { v };
        out.push_str(&format!("{t},{v}\n"));
    }
    std::fs::write(dir.path().join("g.csv"), out).unwrap();
    let r = mlscaler(
        dir.path(),
        &[
            "backtest",
            "--data",
            "g.csv",
            "--min-nodes",
            "2",
            "--plan-out",
            "p.csv",
            "--plan-policy",
            "oracle",
            "--output",
            "json",
            "-q",
        ],
    );
    assert_code(&r, 0);
    let s = r.json();
    assert_eq!(s["report"]["filled_steps"], 30);
    assert_eq!(s["report"]["rows"], 4 * 1440 - 30);
    let plan = std::fs::read_to_string(dir.path().join("p.csv")).unwrap();
    // During the zero stretch the oracle holds the minimum of 2 nodes.
    let zero_rows: Vec<&str> = plan.lines().skip(1).skip(3600 - 30).take(50).collect();
    for row in zero_rows {
        let c: Vec<&str> = row.split(',').collect();
        assert_eq!((c[1], c[3]), ("0", "2"), "{row}");
    }
}

#[test]
fn the_alarm_rule_of_the_threshold_baseline_is_configurable_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let small = head(dir.path(), "small.csv", 3 * 1440);
    let run = |extra: &[&str]| {
        let mut a = vec![
            "backtest",
            "--data",
            small.as_str(),
            "--policy",
            "reactive_threshold,oracle",
            "--output",
            "json",
            "-q",
        ];
        a.extend_from_slice(extra);
        mlscaler(dir.path(), &a)
    };
    let default = run(&[]);
    assert_code(&default, 0);
    // The DataRobot-style alarm: 1 of 1 datapoints, one node at a time.
    let alarm = run(&[
        "--alarm-out-of",
        "1/1",
        "--alarm-out-step",
        "1",
        "--alarm-in-of",
        "10/10",
        "--alarm-in-step",
        "10%",
    ]);
    assert_code(&alarm, 0);
    let actions = |r: &cli::Run| {
        policy(&r.json(), "reactive_threshold")["actions"]
            .as_u64()
            .unwrap()
    };
    assert_ne!(
        actions(&default),
        actions(&alarm),
        "the settings changed nothing"
    );
    let bad = run(&["--alarm-out-of", "3/2"]);
    assert_code(&bad, 1);
    assert!(bad.stderr.contains("3 of 2"), "{}", bad.stderr);
}

#[test]
fn demand_whose_capacity_arithmetic_overflows_is_refused_naming_the_row_not_met() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("timestamp,demand\n");
    for i in 0..3000 {
        let v = if i == 2000 {
            1e308
        } else {
            100.0 + (i % 50) as f64
        };
        csv.push_str(&format!("{},{v}\n", 1_700_000_000 + i * 60));
    }
    std::fs::write(dir.path().join("big.csv"), csv).unwrap();
    let r = mlscaler(
        dir.path(),
        &["backtest", "--data", "big.csv", "--time-format", "unix"],
    );
    assert_code(&r, 1);
    assert!(
        r.stderr.contains("row 2000")
            && r.stderr.contains("1e308")
            && r.stderr.contains("overflow"),
        "{}",
        r.stderr
    );
    assert!(!r.stdout.contains("MET"), "{}", r.stdout);
}

#[test]
fn the_sla_mode_replays_a_regression_model_and_refuses_what_it_cannot_replay() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let daily = data("agilethought_log_data_daily.csv");
    let daily = daily.to_str().unwrap();
    let shape = ["--data", daily, "--time-format", "index", "--step", "1d"];
    let run = |extra: &[&str]| {
        let mut args = vec!["backtest", "--mode", "sla"];
        args.extend(shape);
        args.extend(extra);
        mlscaler(d, &args)
    };
    // No model: refused before anything is read.
    let r = run(&["--sla-target", "180"]);
    assert_code(&r, 1);
    assert!(r.stderr.contains("--model"), "{}", r.stderr);
    let mut train = vec![
        "train",
        "--kind",
        "regression",
        "--metric",
        "avg_request_time_s",
    ];
    train.extend(["--inputs", "admin_users,config_users,end_users", "-q"]);
    train.extend(shape);
    assert_code(&mlscaler(d, &train), 0);
    let model = ["--model", "avg_request_time_s"];
    // Another mode's policy, and no band: clear errors.
    let r = run(&[
        &model[..],
        &["--policy", "predictive", "--sla-target", "180"],
    ]
    .concat());
    assert_code(&r, 1);
    assert!(r.stderr.contains("sla_band"), "{}", r.stderr);
    let r = run(&model);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("--sla-target"), "{}", r.stderr);

    let band = [
        "--sla-target",
        "180",
        "--sla-threshold",
        "20",
        "--max-nodes",
        "3",
    ];
    let out = [
        "--plan-out",
        "plan.csv",
        "--plot",
        "sla.svg",
        "--output",
        "json",
        "-q",
    ];
    let r = run(&[&model[..], &band, &out].concat());
    assert_code(&r, 0);
    let m = &r.json()["metrics"];
    assert_eq!(m["policy"], "sla_band");
    assert_eq!(m["largest_nodes"], 3, "{m}");
    // The band keeps adding while the users stay high: the pool sits at
    // its maximum for much of the year, and the text says why.
    assert!(f(&m["at_max_pct"]) > 50.0, "{m}");
    assert!(f(&m["prediction_mae"]) < 20.0, "{m}");
    let plan = std::fs::read_to_string(d.join("plan.csv")).unwrap();
    assert_eq!(plan.lines().count(), 366);
    assert!(plan.lines().skip(1).all(|l| l.contains(",sla_band,")));
    for svg in ["sla.svg", "sla-nodes.svg"] {
        let text = std::fs::read_to_string(d.join(svg)).unwrap();
        assert!(
            text.starts_with("<svg") && text.matches("<path").count() >= 2,
            "{svg}"
        );
    }
    let r = run(&[&model[..], &band].concat());
    assert_code(&r, 0);
    assert!(
        r.stdout.contains("warning: the pool sat at --max-nodes 3"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_predictive_policy_that_misses_its_targets_points_to_tune() {
    let dir = tempfile::tempdir().unwrap();
    let elb = data("nab_elb_request_count_8c0756.csv");
    let run = |policies: &str| {
        mlscaler(
            dir.path(),
            &[
                "backtest",
                "--data",
                elb.to_str().unwrap(),
                "--lead-time",
                "10m",
                "--round-lead-up",
                "--policy",
                policies,
            ],
        )
    };
    // The ELB trace's short random bursts: the default settings miss.
    let r = run("predictive,reactive_threshold,oracle");
    assert_code(&r, 0);
    assert!(
        r.stdout.contains("=> NOT MET") && r.stdout.contains("`mlscaler tune` chooses"),
        "{}",
        r.stdout
    );
    // Without the predictive policy there are no targets, and no pointer.
    let r = run("reactive_threshold,oracle");
    assert_code(&r, 0);
    assert!(!r.stdout.contains("mlscaler tune"), "{}", r.stdout);
}
