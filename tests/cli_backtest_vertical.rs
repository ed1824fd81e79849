//! `mlscaler backtest --mode vertical` end to end: the real binary on the
//! bundled real traces, read as memory demand per instance.

#[path = "support/cli.rs"]
mod cli;

use cli::{assert_code, data, mlscaler};
use std::collections::HashMap;

const D_LADDER: &str = "Standard_D2s_v5,Standard_D4s_v5,Standard_D8s_v5,Standard_D16s_v5,Standard_D32s_v5,Standard_D64s_v5";
const D_MEMORY: [f64; 6] = [8.0, 16.0, 32.0, 64.0, 128.0, 256.0];
const E_LADDER: &str = "Standard_E2s_v5,Standard_E4s_v5,Standard_E8s_v5,Standard_E16s_v5";

fn policy<'a>(summary: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    summary["report"]["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["policy"] == name)
        .unwrap_or_else(|| panic!("no policy {name} in {summary}"))
}

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn on_worldcup98_every_policy_stays_on_the_ladder_and_vertical_costs_far_less_than_the_largest_size(
) {
    let dir = tempfile::tempdir().unwrap();
    let wc = data("worldcup98_requests_per_minute.csv");
    let r = mlscaler(
        dir.path(),
        &[
            "backtest",
            "--mode",
            "vertical",
            "--data",
            wc.to_str().unwrap(),
            "--ladder",
            D_LADDER,
            "--plan-out",
            "plan.csv",
            "--plan-policy",
            "all",
            "--report",
            "report.json",
            "--plot",
            "vertical.svg",
            "--output",
            "json",
            "-q",
        ],
    );
    assert_code(&r, 0);
    let s = r.json();
    let rep = &s["report"];
    for key in [
        "rows",
        "steps",
        "step",
        "lead_steps",
        "ladder",
        "memory_per_unit",
        "demand_p999_gib",
        "scored_from",
        "scored_steps",
        "forecast",
    ] {
        assert!(!rep[key].is_null(), "report.{key} missing: {rep}");
    }
    assert_eq!(rep["lead_steps"], 10);
    assert_eq!(rep["memory_window_steps"], 30);
    // The auto scale: the 99.9th percentile fills 70% of the largest size.
    assert!((f(&rep["demand_p999_gib"]) - 0.7 * 256.0).abs() < 1e-6);
    let names: Vec<&str> = rep["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["policy"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["vertical", "vertical_forecast", "static_largest", "oracle"]
    );
    for name in names {
        let p = policy(&s, name);
        for key in [
            "gib_hours",
            "gib_hours_vs_oracle",
            "over_memory_pct",
            "over_high_pct",
            "resizes",
            "mean_utilisation",
        ] {
            assert!(p[key].is_number(), "{name}.{key} missing: {p}");
        }
        let shares = p["sizes"].as_array().unwrap();
        assert_eq!(shares.len(), 6);
        let total: f64 = shares.iter().map(|z| f(&z["pct"])).sum();
        assert!((total - 100.0).abs() < 1e-6, "{name}: {total}");
    }
    let (v, vf, top, oracle) = (
        policy(&s, "vertical"),
        policy(&s, "vertical_forecast"),
        policy(&s, "static_largest"),
        policy(&s, "oracle"),
    );
    assert_eq!(f(&oracle["gib_hours_vs_oracle"]), 1.0);
    // Paying for the peak costs several times what the ladder does.
    assert!(
        f(&v["gib_hours"]) * 3.0 < f(&top["gib_hours"]),
        "vertical {v}\nstatic_largest {top}"
    );
    assert!(f(&v["gib_hours"]) >= f(&oracle["gib_hours"]));
    assert_eq!(top["resizes"], 0);
    assert_eq!(f(&top["sizes"][5]["pct"]), 100.0);
    // What the forecast buys on this trace: fewer steps over the high
    // threshold and over 100% memory (for a few % more GiB-hours).
    assert!(
        f(&vf["over_high_pct"]) < f(&v["over_high_pct"]),
        "vertical_forecast {vf}\nvertical {v}"
    );
    assert!(f(&vf["over_memory_pct"]) < f(&v["over_memory_pct"]));
    assert!(f(&rep["forecast"]["trained"]) > 80.0);

    // The written report is the same document.
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(written["report"], s["report"]);
    let svg = std::fs::read_to_string(dir.path().join("vertical.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("vertical_forecast memory"));

    // The plan: one row per input row and policy; every size on the ladder,
    // one size at a time, no resize decided while one rolls out (10 steps).
    let plan = std::fs::read_to_string(dir.path().join("plan.csv")).unwrap();
    let mut lines = plan.lines();
    assert_eq!(
        lines.next(),
        Some("timestamp,demand_gib,forecast_gib,size,memory_gib,utilisation,resized,policy")
    );
    let ladder: HashMap<&str, usize> = D_LADDER.split(',').zip(0..).collect();
    let mut by_policy: HashMap<String, Vec<(usize, f64, bool)>> = HashMap::new();
    for l in lines {
        let c: Vec<&str> = l.split(',').collect();
        let at = *ladder
            .get(c[3])
            .unwrap_or_else(|| panic!("size off the ladder: {l}"));
        let memory: f64 = c[4].parse().unwrap();
        assert!(D_MEMORY.contains(&memory), "{l}");
        by_policy
            .entry(c[7].to_string())
            .or_default()
            .push((at, memory, c[6] == "true"));
    }
    assert_eq!(by_policy["vertical"].len(), f(&rep["rows"]) as usize);
    assert_eq!(by_policy.len(), 4);
    for name in ["vertical", "vertical_forecast"] {
        let rows = &by_policy[name];
        let mut last_resize: Option<usize> = None;
        for (i, w) in rows.windows(2).enumerate() {
            assert!(
                w[0].0.abs_diff(w[1].0) <= 1,
                "{name}: two sizes at once at row {i}"
            );
            if w[1].2 {
                if let Some(k) = last_resize {
                    assert!(
                        i + 1 - k >= 10,
                        "{name}: resize at {} stacked on {k}",
                        i + 1
                    );
                }
                last_resize = Some(i + 1);
            }
        }
        assert!(rows.iter().any(|r| r.0 == 5) && rows.iter().any(|r| r.0 == 0));
    }
}

fn taxi(dir: &std::path::Path, extra: &[&str]) -> cli::Run {
    let t = data("nab_nyc_taxi.csv");
    let mut args = vec![
        "backtest",
        "--mode",
        "vertical",
        "--data",
        t.to_str().unwrap(),
        "--lead-time",
        "30m",
        "--ladder",
        E_LADDER,
        "--output",
        "json",
        "-q",
    ];
    args.extend_from_slice(extra);
    mlscaler(dir, &args)
}

#[test]
fn on_the_nyc_taxi_trace_the_forecast_avoids_most_out_of_memory_steps_and_runs_are_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let r = taxi(dir.path(), &[]);
    assert_code(&r, 0);
    let s = r.json();
    let (v, vf) = (policy(&s, "vertical"), policy(&s, "vertical_forecast"));
    // Half-hour data, a half-hour roll-out: the observed policy moves up one
    // step too late at every evening ramp, the forecast ahead of it.
    assert!(
        f(&vf["over_memory_pct"]) * 5.0 < f(&v["over_memory_pct"]),
        "vertical_forecast {vf}\nvertical {v}"
    );
    assert!(f(&vf["over_high_pct"]) < f(&v["over_high_pct"]));
    // With sizes that double, a one-step roll-out and a one-datapoint window,
    // vertical is the oracle one step late: the same GiB-hours and resizes.
    let oracle = policy(&s, "oracle");
    assert_eq!(v["gib_hours"], oracle["gib_hours"]);
    assert_eq!(v["resizes"], oracle["resizes"]);
    assert!(f(&v["gib_hours"]) < f(&policy(&s, "static_largest")["gib_hours"]));
    let again = taxi(dir.path(), &[]);
    assert_eq!(again.json()["report"], s["report"]);

    // Explicit memory per unit and sizes: the same run in other units.
    let r = taxi(
        dir.path(),
        &[
            "--policy",
            "vertical,oracle",
            "--ladder-memory",
            "16,32,64,128",
            "--memory-per-unit",
            "0.004",
        ],
    );
    assert_code(&r, 0);
    let s = r.json();
    assert_eq!(s["report"]["memory_per_unit"], 0.004);
    assert_eq!(s["report"]["policies"].as_array().unwrap().len(), 2);

    // A ladder step of 4x: a move down at 0.4 lands at 1.6: flagged, in text too.
    let t = data("nab_nyc_taxi.csv");
    let r = mlscaler(
        dir.path(),
        &[
            "backtest",
            "--mode",
            "vertical",
            "--data",
            t.to_str().unwrap(),
            "--lead-time",
            "30m",
            "--ladder",
            "small,big",
            "--ladder-memory",
            "32,128",
            "--policy",
            "vertical",
        ],
    );
    assert_code(&r, 0);
    assert!(
        r.stdout.contains("warning: moving down from big to small")
            && r.stdout.contains("may stay on the larger one"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("GiB-hours") && r.stdout.ends_with('\n'));
}

#[test]
fn bad_ladders_and_node_count_settings_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let fails = |extra: &[&str], wanted: &[&str]| {
        let t = data("nab_nyc_taxi.csv");
        let mut args = vec![
            "backtest",
            "--mode",
            "vertical",
            "--data",
            t.to_str().unwrap(),
        ];
        if !extra.contains(&"--lead-time") {
            args.extend(["--lead-time", "30m"]);
        }
        args.extend_from_slice(extra);
        let r = mlscaler(dir.path(), &args);
        assert_code(&r, 1);
        for w in wanted {
            assert!(r.stderr.contains(w), "wanted '{w}' in: {}", r.stderr);
        }
    };
    fails(&[], &["needs --ladder"]);
    fails(
        &["--ladder", E_LADDER, "--ladder-memory", "16,32,64"],
        &["4 sizes", "3 values"],
    );
    fails(
        &["--ladder", E_LADDER, "--ladder-memory", "16,32,0,128"],
        &["Standard_E8s_v5", "positive"],
    );
    fails(
        &["--ladder", E_LADDER, "--ladder-memory", "16,32,-64,128"],
        &["Standard_E8s_v5", "positive"],
    );
    fails(
        &["--ladder", E_LADDER, "--ladder-memory", "16,64,32,128"],
        &["smallest to the largest"],
    );
    fails(
        &["--ladder", "Standard_D2s_v5,Standard_X9_v9"],
        &["'Standard_X9_v9'", "--ladder-memory"],
    );
    fails(&["--ladder", "Standard_D2s_v5"], &["at least two sizes"]);
    // Sizing the pool by node count, as an AKS node pool is scaled.
    fails(
        &[
            "--ladder",
            E_LADDER,
            "--min-nodes",
            "3",
            "--max-nodes",
            "20",
        ],
        &["--min-nodes, --max-nodes", "AKS", "--memory-per-unit"],
    );
    fails(
        &["--ladder", E_LADDER, "--capacity-per-node", "100"],
        &["--capacity-per-node"],
    );
    fails(
        &["--ladder", E_LADDER, "--policy", "predictive"],
        &["'predictive'", "--mode nodes", "vertical_forecast"],
    );
    fails(
        &["--ladder", E_LADDER, "--memory-high", "0.3"],
        &["0 < low < high"],
    );
    fails(
        &["--ladder", E_LADDER, "--lead-time", "10m"],
        &["shorter than the step", "--round-lead-up"],
    );
    fails(
        &["--ladder", E_LADDER, "--memory-per-unit", "0"],
        &["--memory-per-unit", "positive"],
    );
    // A published model only the forecast policy would read.
    fails(
        &["--ladder", E_LADDER, "--policy", "vertical", "--model", "m"],
        &["--model is read by vertical_forecast only"],
    );
    fails(
        &["--ladder", E_LADDER, "--start", "2030-01-01T00:00:00Z"],
        &["--start", "after the last step"],
    );
}
