//! Every policy on the three bundled traces, with the settings of the
//! backtest targets: lead time 10 minutes, capacity per node such that the
//! 99.9th percentile of demand needs 40 nodes, at least 1 node, scoring the
//! second half of each trace. Prints the results table and the wall time.
//!
//! ```text
//! cargo run --release --example backtest_traces
//! cargo run --release --example backtest_traces -- quantile=0.95 floor_util=1.0 traces=wc
//! ```
//!
//! Settings can be overridden as `key=value` arguments (see `apply` below:
//! the predictive policy, the forecaster, the baselines as `th_*`, `tt_*`,
//! `sn_*`, and `score_from`); `traces=` picks traces by short name (wc, taxi,
//! elb); `csv=DIR` writes the plan of every policy as CSV there. With
//! `BT_REASONS=1` the tallies of decision reasons are printed, with
//! `BT_RETRAINS=1` the retrains that did not produce a model.
//!
//! Each trace line ends with whether the predictive policy met the targets:
//! under-provisioned <= 0.5% of the scored buckets and no more than the
//! reactive-threshold baseline, and node-hours <= 1.25x the oracle's. A lead
//! time shorter than a trace's step (the taxi data: 30 minutes) counts as one
//! step, and the trace line says so.

use mlscaler::core::forecast::series::{GapFill, GapPolicy};
use mlscaler::core::plan::{
    Adjustment, CalibrationParams, LeadWindow, PolicyKind, PoolParams, ReactiveFloor,
};
use mlscaler::core::sim::backtest::{
    capacity_for_p999, infer_step, run_backtest, BacktestParams, Trace,
};
use mlscaler::core::time::format_duration_secs;
use std::time::Instant;

const TRACES: [(&str, &str); 3] = [
    ("wc", "worldcup98_requests_per_minute.csv"),
    ("taxi", "nab_nyc_taxi.csv"),
    ("elb", "nab_elb_request_count_8c0756.csv"),
];

/// Read `timestamp,value` rows (a header line first).
fn read_rows(path: &str) -> (Vec<i64>, Vec<f64>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut ts = Vec::new();
    let mut vs = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        let Some((t, v)) = line.split_once(',') else {
            continue;
        };
        let t = chrono::NaiveDateTime::parse_from_str(t.trim(), "%Y-%m-%d %H:%M:%S")
            .unwrap_or_else(|e| panic!("{path}:{}: {e}", n + 1))
            .and_utc()
            .timestamp();
        ts.push(t);
        vs.push(
            v.trim()
                .parse()
                .unwrap_or_else(|e| panic!("{path}:{}: {e}", n + 1)),
        );
    }
    (ts, vs)
}

fn adjustment(v: &str) -> Adjustment {
    match v.strip_suffix('%') {
        Some(p) => Adjustment::Percent(p.parse().expect("a percentage")),
        None => Adjustment::Nodes(v.parse().expect("a node count")),
    }
}

fn apply(p: &mut BacktestParams, key: &str, value: &str) -> bool {
    let f = || value.parse::<f64>().expect("a number");
    let i = || value.parse::<i64>().expect("an integer");
    let opt_u = || match value {
        "none" => None,
        v => Some(v.parse::<u32>().expect("an integer or none")),
    };
    let pr = &mut p.predictive;
    match key {
        "quantile" => pr.quantile = f(),
        "util" => pr.target_utilisation = f(),
        "window" => {
            pr.window = match value {
                "whole" => LeadWindow::Whole,
                "lead" => LeadWindow::AtLead,
                _ => panic!("window=whole|lead"),
            }
        }
        "floor_util" => {
            pr.floor = match value {
                "none" => None,
                _ => Some(ReactiveFloor {
                    utilisation: f(),
                    ..pr.floor.unwrap_or(ReactiveFloor::current(1.0))
                }),
            }
        }
        "floor_window" | "trend" | "gain" => {
            let fl = pr.floor.get_or_insert(ReactiveFloor::current(1.0));
            match key {
                "floor_window" => fl.window_secs = i(),
                "trend" => fl.trend_secs = i(),
                _ => fl.trend_gain = f(),
            }
        }
        "stab" => pr.scale_in_stabilisation_secs = i(),
        "in_cooldown" => pr.scale_in_cooldown_secs = i(),
        "out_cooldown" => pr.scale_out_cooldown_secs = i(),
        "step_up" => pr.max_step_up = opt_u(),
        "step_down" => pr.max_step_down = opt_u(),
        "drift" => {
            pr.max_error_ratio = match value {
                "none" => None,
                _ => Some(f()),
            }
        }
        "fallback_util" => pr.fallback_utilisation = f(),
        "calib" => {
            pr.calibration = match value {
                "none" => None,
                _ => Some(CalibrationParams {
                    quantile: f(),
                    ..pr.calibration.unwrap_or(CalibrationParams {
                        quantile: 0.98,
                        window_secs: 14 * 86_400,
                        min_samples: 50,
                    })
                }),
            }
        }
        "calib_window" => {
            if let Some(c) = &mut pr.calibration {
                c.window_secs = i();
            }
        }
        "ridge" => p.forecaster.ridge = f(),
        "folds" => p.forecaster.folds = value.parse().expect("an integer"),
        "eval" => p.forecaster.eval_fraction = f(),
        "transform" => p.forecaster.transform = value.parse().expect("none|log1p"),
        "lags" => p.forecaster.features.lags = value.parse().expect("an integer"),
        "rolling" => {
            p.forecaster.features.rolling_secs = value
                .split(',')
                .map(|v| v.parse().expect("seconds"))
                .collect()
        }
        "daily_order" | "weekly_order" => {
            let period = if key == "daily_order" {
                86_400
            } else {
                604_800
            };
            for s in &mut p.forecaster.features.seasons {
                if s.period_secs == period {
                    s.fourier_order = value.parse().expect("an integer");
                }
            }
        }
        "train_window" => {
            p.train_window_secs = match value {
                "none" => None,
                _ => Some(i()),
            }
        }
        "retrain" => p.retrain_every_secs = i(),
        "th_out" => p.threshold.scale_out_at = f(),
        "th_in" => p.threshold.scale_in_at = f(),
        "th_step_out" => p.threshold.step_out = adjustment(value),
        "th_step_in" => p.threshold.step_in = adjustment(value),
        "th_cooldown" => p.threshold.cooldown_secs = i(),
        "sn_margin" => p.seasonal_naive.margin = f(),
        "sn_period" => p.seasonal_naive.period_secs = i(),
        "sn_floor" => p.seasonal_naive.floor_on_current = value == "true",
        "tt_util" => p.target_tracking.target_utilisation = f(),
        "tt_stab" => p.target_tracking.scale_in_stabilisation_secs = i(),
        "warmup" => p.warmup_secs = i(),
        "score_from" => p.score_from_fraction = f(),
        _ => return false,
    }
    true
}

fn main() {
    let args: Vec<(String, String)> = std::env::args()
        .skip(1)
        .map(|a| {
            let (k, v) = a.split_once('=').expect("arguments are key=value");
            (k.to_string(), v.to_string())
        })
        .collect();
    let pick = args
        .iter()
        .find(|(k, _)| k == "traces")
        .map(|(_, v)| v.split(',').map(str::to_string).collect::<Vec<_>>());
    let csv_dir = args
        .iter()
        .find(|(k, _)| k == "csv")
        .map(|(_, v)| v.clone());
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/data/");
    let all = Instant::now();
    println!(
        "{:<5} {:<19} {:>8} {:>10} {:>7} {:>9} {:>8} {:>6} {:>10}",
        "trace",
        "policy",
        "vs_orcl",
        "node_h",
        "under%",
        "unserved%",
        "actions",
        "util",
        "fallback"
    );
    for (short, file) in TRACES {
        if pick.as_ref().is_some_and(|p| !p.iter().any(|s| s == short)) {
            continue;
        }
        let t0 = Instant::now();
        let (ts, vs) = read_rows(&format!("{data}{file}"));
        let step = infer_step(&ts).expect("a step");
        let gaps = GapPolicy {
            fill: GapFill::Previous,
            max_gap_steps: 60,
        };
        let trace = Trace::from_rows(&ts, &vs, step, gaps).expect("a trace");
        let capacity = capacity_for_p999(trace.demand(), 40).expect("a capacity");
        let mut params = BacktestParams::new(PoolParams {
            capacity_per_node: capacity.per_node(),
            min_nodes: 1,
            max_nodes: 1_000,
            lead_secs: 600,
        });
        params.allow_lead_below_step = true;
        for (k, v) in &args {
            if k != "traces" && k != "csv" && k != "label" && !apply(&mut params, k, v) {
                panic!("unknown setting '{k}'");
            }
        }
        let checked = params.check(step).expect("valid settings");
        let bt = run_backtest(&trace, &checked, None, &mut |_, _| {}).expect("a backtest");
        let wall = t0.elapsed();
        let r = &bt.report;
        let failed = r
            .retrains
            .iter()
            .filter(|x| {
                !matches!(
                    x.outcome,
                    mlscaler::core::sim::backtest::RetrainOutcome::Trained { .. }
                )
            })
            .count();
        for m in &r.policies {
            let fallback = m.reasons.get("fallback").copied().unwrap_or(0);
            println!(
                "{:<5} {:<19} {:>8} {:>10.1} {:>7.3} {:>9.4} {:>8} {:>6.3} {:>10}",
                short,
                m.policy.name(),
                m.node_hours_vs_oracle
                    .map_or("-".to_string(), |x| format!("{x:.3}")),
                m.node_hours,
                m.under_provisioned_pct,
                m.unserved_pct,
                m.actions,
                m.mean_utilisation,
                fallback
            );
        }
        if std::env::var_os("BT_RETRAINS").is_some() {
            for x in r.retrains.iter().filter(|x| {
                !matches!(
                    x.outcome,
                    mlscaler::core::sim::backtest::RetrainOutcome::Trained { .. }
                )
            }) {
                println!("  retrain at {}: {:?}", x.at, x.outcome);
            }
        }
        if std::env::var_os("BT_REASONS").is_some() {
            for m in &r.policies {
                println!("  {} reasons {:?}", m.policy, m.reasons);
            }
        }
        let pred = r.policy(PolicyKind::Predictive);
        let thr = r.policy(PolicyKind::ReactiveThreshold);
        if let (Some(p), Some(t)) = (pred, thr) {
            let ratio = p.node_hours_vs_oracle.unwrap_or(f64::NAN);
            let ok = p.under_provisioned_pct <= 0.5
                && p.under_provisioned_pct <= t.under_provisioned_pct
                && ratio <= 1.25;
            println!(
                "{short}: {} rows, {} steps of {} ({} filled), lead {} = {} step(s), capacity/node {:.2}, {} retrains ({} not used), scored {} steps; targets {}; {:.2?}",
                r.rows,
                r.steps,
                step,
                r.filled_steps,
                format_duration_secs(r.lead_secs),
                r.lead_steps,
                r.capacity_per_node,
                r.retrains.len(),
                failed,
                r.scored_steps,
                if ok { "MET" } else { "NOT MET" },
                wall
            );
        }
        if let Some(dir) = &csv_dir {
            for plan in &bt.plans {
                let path = format!("{dir}/{short}_{}.csv", plan.policy);
                std::fs::write(&path, plan.to_csv()).expect("write plan");
            }
        }
    }
    println!("total wall time {:.2?}", all.elapsed());
}
