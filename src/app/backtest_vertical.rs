//! `mlscaler backtest --mode vertical`: replay a memory-demand history against
//! a simulated VM scale set that moves along a ladder of VM sizes
//! ([`crate::core::vertsim`]) and report every policy side by side.
//!
//! The forecast of `vertical_forecast` comes from the walk-forward machinery
//! of the node backtest ([`crate::core::backtest::run_backtest`] with the
//! predictive policy alone, on the same demand): at each step, the peak of
//! the median forecast over the lead time, from a model trained only on the
//! data before that step's retrain point. So it is causal, like the rest.

use super::{exit, ui, write_atomic};
use crate::cli::BacktestArgs;
use crate::core::backtest::{
    capacity_for_p999, run_backtest, BacktestParams, RetrainOutcome, Trace,
};
use crate::core::policy::{PolicyKind, PoolParams};
use crate::core::series::LoadSeries;
use crate::core::time::{format_duration_secs, parse_duration_secs, rfc3339, Step};
use crate::core::vertsim::{
    ladder_memory, memory_per_unit_for_p999, run_vertsim, VertSim, VertSimParams, VerticalMetrics,
    VerticalPolicy,
};
use crate::report::plot::{Chart, Line};
use crate::report::table;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

/// What the vertical backtest did, for people (text) and pipelines (JSON).
#[derive(Debug, Serialize)]
pub struct Summary {
    /// The data as given (no secrets).
    pub source: String,
    pub metric: String,
    /// How the GiB per unit of the metric was chosen.
    pub memory_per_unit_source: String,
    /// Settings that make the result suspect (e.g. a ladder whose steps make the size flap).
    pub warnings: Vec<String>,
    pub report: VerticalReport,
    /// Files written.
    pub files: BTreeMap<String, String>,
    pub seconds: BTreeMap<String, f64>,
}

/// The run and the per-policy results.
#[derive(Debug, Serialize)]
pub struct VerticalReport {
    /// Input rows, and steps of the regular series (rows plus filled gaps).
    pub rows: usize,
    pub steps: usize,
    pub filled_steps: usize,
    pub step: Step,
    /// The time a resize takes to roll out, as given and in whole steps.
    pub lead_secs: i64,
    pub lead_steps: usize,
    pub ladder: Vec<LadderSize>,
    pub memory_high: f64,
    pub memory_low: f64,
    pub memory_window_steps: usize,
    /// GiB of memory per unit of the metric.
    pub memory_per_unit: f64,
    /// The 99.9th percentile and the highest memory demand, in GiB.
    pub demand_p999_gib: f64,
    pub demand_max_gib: f64,
    /// The scored steps: from, to (step starts, inclusive) and how many.
    pub scored_from: i64,
    pub scored_to: i64,
    pub scored_steps: usize,
    /// The forecaster behind vertical_forecast (when it ran).
    pub forecast: Option<ForecastInfo>,
    pub policies: Vec<VerticalMetrics>,
}

/// One size of the ladder.
#[derive(Debug, Serialize)]
pub struct LadderSize {
    pub size: String,
    pub memory_gib: f64,
}

/// The walk-forward forecaster of vertical_forecast.
#[derive(Debug, Serialize)]
pub struct ForecastInfo {
    pub warmup_secs: i64,
    pub retrain_every_secs: i64,
    pub retrains: usize,
    /// Retrains that produced a model (the others kept the previous one).
    pub trained: usize,
    /// % of the scored steps with a forecast (the others decide on observed memory alone).
    pub scored_with_forecast_pct: f64,
}

/// Flags of `--mode nodes` (a pool sized by node count, as an AKS node pool
/// is) that mean nothing when the VM size moves and the count stays.
fn node_flags(args: &BacktestArgs) -> Vec<&'static str> {
    let mut set = Vec::new();
    let mut flag = |on: bool, name| {
        if on {
            set.push(name);
        }
    };
    flag(args.capacity_per_node.is_some(), "--capacity-per-node");
    flag(args.p999_nodes != 40, "--p999-nodes");
    flag(args.min_nodes != 1, "--min-nodes");
    flag(args.max_nodes != 1000, "--max-nodes");
    flag(args.target_utilisation.is_some(), "--target-utilisation");
    flag(args.scale_in_window.is_some(), "--scale-in-window");
    flag(
        args.threshold_out.is_some()
            || args.threshold_in.is_some()
            || args.threshold_cooldown.is_some()
            || args.threshold_out_of.is_some()
            || args.threshold_in_of.is_some()
            || args.threshold_out_step.is_some()
            || args.threshold_in_step.is_some(),
        "--threshold-*",
    );
    flag(
        args.tracking_utilisation.is_some() || args.tracking_window.is_some(),
        "--tracking-*",
    );
    flag(
        args.seasonal_period.is_some() || args.seasonal_margin.is_some(),
        "--seasonal-*",
    );
    set
}

fn policies(names: &[String]) -> Result<Vec<VerticalPolicy>> {
    if names.iter().any(|n| n.trim() == "all") {
        return Ok(VerticalPolicy::ALL.to_vec());
    }
    names
        .iter()
        .map(|n| {
            n.parse::<VerticalPolicy>()
                .map_err(|e| anyhow::anyhow!("--policy: {e}"))
        })
        .collect()
}

/// Run `backtest --mode vertical`.
pub fn run(args: &BacktestArgs, quiet: bool) -> Result<(i32, Summary)> {
    let t0 = Instant::now();
    let mut seconds = BTreeMap::new();
    let v = &args.vertical;
    let misused = node_flags(args);
    if !misused.is_empty() {
        bail!(
            "{} size a pool by node count (an AKS node pool, --mode nodes); --mode vertical keeps the instance count of a VM scale set and moves its VM size along --ladder (AKS cannot change a node pool's VM size in place): scale memory with --memory-per-unit or --p999-fill instead",
            misused.join(", ")
        );
    }
    if v.ladder.is_empty() {
        bail!("--mode vertical needs --ladder, the VM sizes from smallest to largest, e.g. Standard_D2s_v5,Standard_D4s_v5,Standard_D8s_v5");
    }
    let ladder: Vec<String> = v.ladder.iter().map(|s| s.trim().to_string()).collect();
    let memory = ladder_memory(&ladder, &v.ladder_memory).context("--ladder / --ladder-memory")?;
    let policies = policies(&args.policy)?;
    let warnings = flapping(&ladder, &memory, v.memory_low, v.memory_high);

    let super::backtest::LoadedTrace {
        src,
        metric,
        trace,
        calendar,
        ..
    } = super::backtest::load_trace(args, quiet)?;
    seconds.insert("ingest".into(), t0.elapsed().as_secs_f64());
    let step = trace.step();

    let top = *memory.last().context("empty ladder")?;
    let (per_unit, per_unit_source) = match v.memory_per_unit {
        Some(m) if m.is_finite() && m > 0.0 => (m, format!("--memory-per-unit {m}")),
        Some(m) => bail!("--memory-per-unit should be a positive number of GiB, but is {m}"),
        None => {
            let (m, p) = memory_per_unit_for_p999(trace.demand(), top, v.p999_fill)
                .context("--p999-fill")?;
            (
                m,
                format!(
                    "the 99.9th percentile of {metric} ({p:.3}) fills {} of the largest size ({top} GiB) (--p999-fill)",
                    v.p999_fill
                ),
            )
        }
    };
    let demand: Vec<f64> = trace.demand().iter().map(|d| d * per_unit).collect();

    let dur = |flag: &str, s: &str| parse_duration_secs(s).with_context(|| format!("--{flag}"));
    let lead_secs = dur("lead-time", &args.lead_time)?;
    if lead_secs <= 0 {
        bail!(
            "--lead-time should be a positive duration, but is {}",
            args.lead_time
        );
    }
    if lead_secs < step.secs() && !args.round_lead_up {
        bail!(
            "--lead-time {} is shorter than the step of the data ({}): a resize would be rolled out before the next datapoint; pass --round-lead-up to count it as one step, or use finer data",
            format_duration_secs(lead_secs),
            format_duration_secs(step.secs())
        );
    }
    let lead_steps = step.steps_ceil(lead_secs).max(1);
    let window_secs = dur("memory-window", &v.memory_window)?;
    let params = VertSimParams {
        ladder: ladder.clone(),
        memory_gib: memory.clone(),
        high: v.memory_high,
        low: v.memory_low,
        window_steps: step.steps_ceil(window_secs),
        lead_steps,
        score_from_fraction: args.score_from,
        policies,
    }
    .check()
    .context("vertical backtest settings")?;

    let (forecast, forecast_info) = if params
        .policies()
        .contains(&VerticalPolicy::VerticalForecast)
    {
        let t1 = Instant::now();
        let (f, info) = forecast(args, &trace, &demand, lead_secs, calendar.as_ref(), quiet)?;
        seconds.insert("forecast".into(), t1.elapsed().as_secs_f64());
        (Some(f), Some(info))
    } else {
        (None, None)
    };

    let t2 = Instant::now();
    let sim = run_vertsim(&params, step.secs(), &demand, forecast.as_deref())
        .context("vertical backtest")?;
    seconds.insert("simulate".into(), t2.elapsed().as_secs_f64());

    let n = demand.len();
    let forecast_info = forecast_info.map(|mut i: ForecastInfo| {
        let f = forecast.as_deref().unwrap_or_default();
        let with = f[sim.score_from..].iter().filter(|x| x.is_some()).count();
        i.scored_with_forecast_pct = 100.0 * with as f64 / (n - sim.score_from) as f64;
        i
    });
    let mut sorted = demand.clone();
    sorted.sort_by(f64::total_cmp);
    let report = VerticalReport {
        rows: trace.rows().len(),
        steps: n,
        filled_steps: trace.filled_steps(),
        step,
        lead_secs,
        lead_steps,
        ladder: ladder
            .iter()
            .zip(&memory)
            .map(|(s, &m)| LadderSize {
                size: s.clone(),
                memory_gib: m,
            })
            .collect(),
        memory_high: v.memory_high,
        memory_low: v.memory_low,
        memory_window_steps: step.steps_ceil(window_secs),
        memory_per_unit: per_unit,
        demand_p999_gib: crate::core::metrics::quantile_sorted(&sorted, 0.999),
        demand_max_gib: sorted.last().copied().unwrap_or(0.0),
        scored_from: trace.start() + sim.score_from as i64 * step.secs(),
        scored_to: trace.start() + (n as i64 - 1) * step.secs(),
        scored_steps: n - sim.score_from,
        forecast: forecast_info,
        policies: sim.runs.iter().map(|r| r.metrics.clone()).collect(),
    };

    let mut files = BTreeMap::new();
    if let Some(p) = &args.plan_out {
        let text = plan_csv(&sim, &trace, &ladder, &args.plan_policy)?;
        write_atomic(p, text.as_bytes())?;
        files.insert("plan".into(), p.display().to_string());
    }
    if let Some(p) = &args.plot {
        let svg = plot(&sim, &trace, &metric, lead_secs);
        write_atomic(p, svg.as_bytes())?;
        files.insert("plot".into(), p.display().to_string());
    }
    if let Some(p) = &args.report {
        files.insert("report".into(), p.display().to_string());
    }
    let mut summary = Summary {
        source: src.location.clone(),
        metric,
        memory_per_unit_source: per_unit_source,
        warnings,
        report,
        files,
        seconds,
    };
    if let Some(p) = &args.report {
        let json = serde_json::to_vec_pretty(&summary)?;
        write_atomic(p, &json)?;
    }
    summary
        .seconds
        .insert("total".into(), t0.elapsed().as_secs_f64());
    Ok((exit::OK, summary))
}

/// plan_vertical moves down one size when utilisation stayed at or below
/// `low` and the peak fits under `high` on the smaller size; where `low x`
/// the memory ratio is above `high`, a move down needs a much lower peak than
/// `low`, so the size tends to stay up.
fn flapping(ladder: &[String], memory: &[f64], low: f64, high: f64) -> Vec<String> {
    memory
        .windows(2)
        .zip(ladder.windows(2))
        .filter(|(m, _)| low * m[1] / m[0] > high)
        .map(|(m, s)| {
            format!(
                "moving down from {} to {} at memory utilisation {low} would land at {:.2}, above --memory-high {high}: the policy moves down only when the recent peak fits the smaller size, so it may stay on the larger one (use sizes closer together or a lower --memory-low)",
                s[1],
                s[0],
                low * m[1] / m[0]
            )
        })
        .collect()
}

/// The causal forecast of the peak memory demand over the lead time at every
/// step (`None` before the first model), from the node backtest's
/// walk-forward predictive policy run on the memory demand.
fn forecast(
    args: &BacktestArgs,
    trace: &Trace,
    demand: &[f64],
    lead_secs: i64,
    calendar: Option<&crate::core::calendar::Calendar>,
    quiet: bool,
) -> Result<(Vec<Option<f64>>, ForecastInfo)> {
    // One row per step (gaps already filled causally), so every step gets its forecast.
    let series = LoadSeries::new(
        trace.start(),
        trace.step(),
        vec!["demand".into()],
        vec![demand.to_vec()],
    )?;
    let regular = Trace::from_series(&series, "demand")?;
    // The pool only shapes the node counts, not the forecast peak the policy
    // plans for (which is taken before calibration and the reactive floor).
    let capacity = capacity_for_p999(demand, 40).map_or(1.0, |c| c.per_node());
    let dur = |flag: &str, v: &str| parse_duration_secs(v).with_context(|| format!("--{flag}"));
    let mut p = BacktestParams::new(PoolParams {
        capacity_per_node: capacity,
        min_nodes: 1,
        max_nodes: 1000,
        lead_secs,
    });
    p.allow_lead_below_step = args.round_lead_up;
    p.warmup_secs = dur("warmup", &args.warmup)?;
    p.retrain_every_secs = dur("retrain-every", &args.retrain_every)?;
    p.train_window_secs = args
        .train_window
        .as_deref()
        .map(|w| dur("train-window", w))
        .transpose()?;
    p.score_from_fraction = args.score_from;
    p.policies = vec![PolicyKind::Predictive];
    if let Some(q) = args.quantile {
        p.predictive.quantile = q;
    }
    if args.no_calibration {
        p.predictive.calibration = None;
    }
    let checked = p
        .check(trace.step())
        .context("vertical_forecast: forecaster settings")?;
    let pb = ui::progress_bar(quiet, demand.len() as u64, "forecasting");
    let mut progress = |done: usize, total: usize| {
        pb.set_length(total as u64);
        pb.set_position(done as u64);
    };
    let bt = run_backtest(&regular, &checked, calendar, &mut progress)
        .context("vertical_forecast: walk-forward forecast")?;
    pb.finish_and_clear();
    let plan = bt
        .plan(PolicyKind::Predictive)
        .context("vertical_forecast: no predictive plan")?;
    let forecast: Vec<Option<f64>> = plan.rows.iter().map(|r| r.forecast).collect();
    let info = ForecastInfo {
        warmup_secs: p.warmup_secs,
        retrain_every_secs: p.retrain_every_secs,
        retrains: bt.report.retrains.len(),
        trained: bt
            .report
            .retrains
            .iter()
            .filter(|r| matches!(r.outcome, RetrainOutcome::Trained { .. }))
            .count(),
        scored_with_forecast_pct: 0.0,
    };
    Ok((forecast, info))
}

/// The per-step plan of one policy (or all) as CSV: one row per input row,
/// in input order.
fn plan_csv(sim: &VertSim, trace: &Trace, ladder: &[String], which: &str) -> Result<String> {
    let runs: Vec<_> = match which.trim() {
        "all" => sim.runs.iter().collect(),
        // The default of --plan-policy names the node mode's forecast policy:
        // here, the forecast policy if it ran, else the first one.
        "predictive" => vec![sim
            .run(VerticalPolicy::VerticalForecast)
            .or(sim.runs.first())
            .context("no policy ran")?],
        name => {
            let p: VerticalPolicy = name
                .parse()
                .map_err(|e| anyhow::anyhow!("--plan-policy: {e}"))?;
            vec![sim.run(p).with_context(|| {
                format!("--plan-policy {name}: that policy was not run (see --policy)")
            })?]
        }
    };
    let mut out = String::with_capacity(80 * trace.rows().len() * runs.len() + 80);
    out.push_str("timestamp,demand_gib,forecast_gib,size,memory_gib,utilisation,resized,policy\n");
    for r in runs {
        for row in trace.rows() {
            let s = &r.steps[row.bucket];
            let _ = write!(out, "{},{:.4},", rfc3339(row.time), s.demand);
            if let Some(f) = s.forecast {
                let _ = write!(out, "{f:.4}");
            }
            let _ = writeln!(
                out,
                ",{},{},{:.4},{},{}",
                ladder[s.size], s.memory, s.utilisation, s.resized, r.policy
            );
        }
    }
    Ok(out)
}

const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#7f7f7f"];

/// Memory demand, the forecast of vertical_forecast and the memory in effect
/// of every policy over the scored part.
fn plot(sim: &VertSim, trace: &Trace, metric: &str, lead_secs: i64) -> String {
    let Some(first) = sim.runs.first() else {
        return String::new();
    };
    let from = sim.score_from;
    let times: Vec<i64> = (from..first.steps.len())
        .map(|i| trace.start() + i as i64 * trace.step().secs())
        .collect();
    let demand: Vec<f64> = first.steps[from..].iter().map(|s| s.demand).collect();
    let forecast: Option<Vec<f64>> = sim.run(VerticalPolicy::VerticalForecast).map(|r| {
        r.steps[from..]
            .iter()
            .map(|s| s.forecast.unwrap_or(f64::NAN))
            .collect()
    });
    let memory: Vec<(String, Vec<f64>)> = sim
        .runs
        .iter()
        .map(|r| {
            (
                format!("{} memory", r.policy),
                r.steps[from..].iter().map(|s| s.memory).collect(),
            )
        })
        .collect();
    let mut lines = vec![Line {
        name: "memory demand",
        color: "#222222",
        values: &demand,
        width: 1.2,
    }];
    if let Some(f) = &forecast {
        lines.push(Line {
            name: "forecast peak (vertical_forecast)",
            color: "#ff7f0e",
            values: f,
            width: 0.8,
        });
    }
    for (i, (name, values)) in memory.iter().enumerate() {
        lines.push(Line {
            name,
            color: COLORS[i % COLORS.len()],
            values,
            width: 0.8,
        });
    }
    let title = format!(
        "{metric} as memory demand per instance (GiB): scored part, memory in effect per policy (resize {})",
        format_duration_secs(lead_secs)
    );
    Chart {
        title: &title,
        y_label: "GiB",
        times: &times,
        lines,
        bands: vec![],
    }
    .to_svg()
}

/// The summary as text for people.
pub fn render_text(s: &Summary) -> String {
    let r = &s.report;
    let mut out = format!(
        "vertical backtest of '{}' from {}: {} rows, {} steps of {} ({} filled), a resize rolls out in {} ({} step{})\n",
        s.metric,
        s.source,
        r.rows,
        r.steps,
        r.step,
        r.filled_steps,
        format_duration_secs(r.lead_secs),
        r.lead_steps,
        if r.lead_steps == 1 { "" } else { "s" }
    );
    let ladder: Vec<String> = r
        .ladder
        .iter()
        .map(|l| format!("{} ({} GiB)", l.size, l.memory_gib))
        .collect();
    let _ = writeln!(out, "ladder: {}", ladder.join(" < "));
    let _ = writeln!(
        out,
        "memory demand: {:.6} GiB per unit ({}); p99.9 {:.1} GiB, max {:.1} GiB",
        r.memory_per_unit, s.memory_per_unit_source, r.demand_p999_gib, r.demand_max_gib
    );
    let _ = writeln!(
        out,
        "up at >= {}, down after {} steps <= {}; scored {} .. {} ({} steps)",
        r.memory_high,
        r.memory_window_steps,
        r.memory_low,
        rfc3339(r.scored_from),
        rfc3339(r.scored_to),
        r.scored_steps
    );
    if let Some(f) = &r.forecast {
        let _ = writeln!(
            out,
            "vertical_forecast: {} of {} retrains produced a model; {:.1}% of the scored steps had a forecast",
            f.trained, f.retrains, f.scored_with_forecast_pct
        );
    }
    for w in &s.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    out.push('\n');
    let mut rows = vec![vec![
        "policy".to_string(),
        "GiB-hours".into(),
        "vs oracle".into(),
        "over 100% %".into(),
        "over high %".into(),
        "resizes".into(),
        "mean util".into(),
        "time per size %".into(),
    ]];
    for m in &r.policies {
        rows.push(vec![
            m.policy.to_string(),
            format!("{:.0}", m.gib_hours),
            m.gib_hours_vs_oracle
                .map_or("-".into(), |x| format!("{x:.3}")),
            format!("{:.3}", m.over_memory_pct),
            format!("{:.3}", m.over_high_pct),
            m.resizes.to_string(),
            format!("{:.3}", m.mean_utilisation),
            m.sizes
                .iter()
                .map(|z| format!("{:.1}", z.pct))
                .collect::<Vec<_>>()
                .join("/"),
        ]);
    }
    out.push_str(&table::render(&rows));
    if !out.ends_with('\n') {
        out.push('\n');
    }
    for (k, v) in &s.files {
        let _ = writeln!(out, "{k}: {v}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_names_are_checked_and_all_means_every_vertical_policy() {
        assert_eq!(
            policies(&["all".into()]).unwrap(),
            VerticalPolicy::ALL.to_vec()
        );
        assert_eq!(
            policies(&["oracle".into(), " vertical".into()]).unwrap(),
            vec![VerticalPolicy::Oracle, VerticalPolicy::Vertical]
        );
        let e = policies(&["reactive_threshold".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--mode nodes"), "{e}");
    }

    #[test]
    fn a_ladder_step_that_lands_a_move_down_at_the_high_threshold_is_flagged() {
        let ladder: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        assert!(flapping(&ladder, &[8.0, 16.0, 24.0], 0.4, 0.8).is_empty());
        // Doubling sizes land exactly at the threshold: not above it.
        assert!(flapping(&ladder, &[8.0, 16.0, 32.0], 0.4, 0.8).is_empty());
        // 16 -> 64 GiB: 0.4 on 64 is 1.6 on 16.
        let w = flapping(&ladder, &[8.0, 16.0, 64.0], 0.4, 0.8);
        assert_eq!(w.len(), 1);
        assert!(
            w[0].contains("from c to b") && w[0].contains("1.60"),
            "{w:?}"
        );
    }
}
