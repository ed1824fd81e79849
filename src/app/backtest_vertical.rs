//! `mlscaler backtest --mode vertical`: replay a memory-demand history against
//! a simulated VM scale set that moves along a ladder of VM sizes
//! ([`crate::core::sim::vertical`]) and report every policy side by side.
//!
//! The forecast of `vertical_forecast` comes from the forecasting machinery
//! of the node backtest ([`crate::core::sim::backtest::forecast_tape`] on
//! the metric): at each step, the highest forecast at the profile's quantile
//! over the lead time ([`forecast_peak`], as `scale --policy vertical
//! --model` takes it) in GiB, from a model trained walk-forward only on the
//! data before that step's retrain point, or from the published model of
//! `--model` throughout. So it is causal, like the rest; with `--model` and
//! `--start` it is what a `scale --target sim` run per step decides
//! (tests/equivalence.rs).

use super::{exit, ui, write_atomic};
use crate::core::forecast::series::LoadSeries;
use crate::core::plan::vertical::forecast_peak;
use crate::core::plan::{PolicyKind, PoolParams};
use crate::core::sim::backtest::{
    capacity_for_p999, forecast_tape, BacktestParams, RetrainOutcome, Trace,
};
use crate::core::sim::vertical::{
    ladder_memory, memory_per_unit_for_p999, run_vertsim, CheckedVertSim, VertSim, VertSimParams,
    VerticalPolicy,
};
use crate::core::time::format_duration_secs;
use crate::report::backtest_vertical::{
    plan_csv, plot, ForecastInfo, LadderSize, Summary, VerticalReport,
};
use crate::settings::backtest::{BacktestSettings, Mode, PlanPolicy, VerticalReplay};
use crate::settings::profile::{CapacitySource, ScalingProfile};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::time::Instant;

/// Settings of `--mode nodes` (a pool sized by node count, as an AKS node
/// pool is) that mean nothing when the VM size moves and the count stays:
/// the ones given away from their defaults.
fn node_flags(p: &ScalingProfile) -> Vec<&'static str> {
    let d = ScalingProfile::default();
    let mut set = Vec::new();
    let mut flag = |on: bool, name| {
        if on {
            set.push(name);
        }
    };
    flag(
        matches!(p.pool.capacity, CapacitySource::PerNode(_)),
        "--capacity-per-node",
    );
    flag(
        matches!(p.pool.capacity, CapacitySource::P999Nodes(n) if n != 40),
        "--p999-nodes",
    );
    flag(p.pool.min_nodes != d.pool.min_nodes, "--min-nodes");
    flag(p.pool.max_nodes != d.pool.max_nodes, "--max-nodes");
    flag(
        p.predictive.target_utilisation != d.predictive.target_utilisation,
        "--target-utilisation",
    );
    flag(
        p.predictive.scale_in_window != d.predictive.scale_in_window,
        "--scale-in-window",
    );
    flag(p.alarm != d.alarm, "--alarm-*");
    flag(p.tracking != d.tracking, "--tracking-*");
    flag(p.seasonal != d.seasonal, "--seasonal-*");
    set
}

/// The name `--plan-policy` gave (its default names a nodes-mode policy:
/// then every vertical policy).
fn plan_policy_name(p: &PlanPolicy) -> String {
    match p {
        PlanPolicy::All => "all".into(),
        PlanPolicy::One(n) => n.clone(),
    }
}

/// Run `backtest --mode vertical`.
pub fn run(s: &BacktestSettings, quiet: bool) -> Result<(i32, Summary)> {
    let Mode::Vertical(policies) = &s.mode else {
        bail!("backtest_vertical::run replays vertical policies")
    };
    let t0 = Instant::now();
    let mut seconds = BTreeMap::new();
    let (v, replay) = (&s.profile.vertical, &s.vertical);
    let (ladder, memory, warnings) = checked_ladder(s)?;
    if s.walk_forward.model.is_some() && !policies.contains(&VerticalPolicy::VerticalForecast) {
        bail!("--model is read by vertical_forecast only: add it to --policy (e.g. --policy vertical,vertical_forecast), or drop --model");
    }
    let super::backtest::LoadedTrace {
        src,
        metric,
        trace,
        calendar,
        ..
    } = super::backtest::load_trace(&s.data, quiet)?;
    seconds.insert("ingest".into(), t0.elapsed().as_secs_f64());
    let step = trace.step();

    let (per_unit, per_unit_source) = memory_scale(replay, &trace, &metric, &memory)?;
    let demand: Vec<f64> = trace.demand().iter().map(|d| d * per_unit).collect();

    let lead_secs = s.lead_time().secs();
    if lead_secs < step.secs() && !s.profile.pool.round_lead_up {
        bail!(
            "--lead-time {} is shorter than the step of the data ({}): a resize would be rolled out before the next datapoint; pass --round-lead-up to count it as one step, or use finer data",
            format_duration_secs(lead_secs),
            format_duration_secs(step.secs())
        );
    }
    let lead_steps = step.steps_ceil(lead_secs).max(1);
    let window_secs = v.memory_window.secs();
    // `--start`: the first decision at the first step at or after it.
    let start_step = match s.walk_forward.start {
        Some(t) if t > trace.start() => {
            let i = (t - trace.start() + step.secs() - 1) / step.secs();
            if i as usize >= demand.len() {
                bail!(
                    "--start {} is after the last step of the data ({})",
                    crate::core::time::rfc3339(t),
                    crate::core::time::rfc3339(
                        trace.start() + (demand.len() as i64 - 1) * step.secs()
                    )
                );
            }
            i as usize
        }
        _ => 0,
    };
    let params = VertSimParams {
        ladder: ladder.clone(),
        memory_gib: memory.clone(),
        high: v.memory_high,
        low: v.memory_low,
        window_steps: step.steps_ceil(window_secs),
        lead_steps,
        score_from_fraction: s.score_from,
        start_step,
        policies: policies.clone(),
    }
    .check()
    .context("vertical backtest settings")?;

    let (forecast, forecast_info) = if params
        .policies()
        .contains(&VerticalPolicy::VerticalForecast)
    {
        let t1 = Instant::now();
        let (f, info) = forecast(s, &trace, per_unit, lead_steps, calendar.as_ref(), quiet)?;
        seconds.insert("forecast".into(), t1.elapsed().as_secs_f64());
        (Some(f), Some(info))
    } else {
        (None, None)
    };

    let t2 = Instant::now();
    let sim = run_vertsim(&params, step.secs(), &demand, forecast.as_deref())
        .context("vertical backtest")?;
    seconds.insert("simulate".into(), t2.elapsed().as_secs_f64());

    let report = vertical_report(
        &trace,
        &params,
        lead_secs,
        v.memory_low,
        &sim,
        &demand,
        per_unit,
        forecast_info.map(|mut i: ForecastInfo| {
            let f = forecast.as_deref().unwrap_or_default();
            let n = demand.len();
            let with = f[sim.score_from..].iter().filter(|x| x.is_some()).count();
            i.scored_with_forecast_pct = 100.0 * with as f64 / (n - sim.score_from) as f64;
            i
        }),
    );
    let mut files = BTreeMap::new();
    if let Some(p) = &s.plan_out {
        let text = plan_csv(&sim, &trace, &ladder, &plan_policy_name(&s.plan_policy))?;
        write_atomic(p, text.as_bytes())?;
        files.insert("plan".into(), p.display().to_string());
    }
    if let Some(p) = &s.plot {
        let svg = plot(&sim, &trace, &metric, lead_secs);
        write_atomic(p, svg.as_bytes())?;
        files.insert("plot".into(), p.display().to_string());
    }
    if let Some(p) = &s.report {
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
    super::finish(&mut summary, s.report.as_deref(), t0)?;
    Ok((exit::OK, summary))
}

/// The ladder and the memory of its sizes, refusing node-count settings
/// that mean nothing here, with warnings for steps that make a move down rare.
fn checked_ladder(s: &BacktestSettings) -> Result<(Vec<String>, Vec<f64>, Vec<String>)> {
    let v = &s.profile.vertical;
    let misused = node_flags(&s.profile);
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
    let warnings = flapping(&ladder, &memory, v.memory_low, v.memory_high);
    Ok((ladder, memory, warnings))
}

/// GiB per unit of the metric, and how it was chosen.
fn memory_scale(
    replay: &VerticalReplay,
    trace: &Trace,
    metric: &str,
    memory: &[f64],
) -> Result<(f64, String)> {
    let top = *memory.last().context("empty ladder")?;
    Ok(match replay.memory_per_unit {
        Some(m) => (m, format!("--memory-per-unit {m}")),
        None => {
            let (m, p) = memory_per_unit_for_p999(trace.demand(), top, replay.p999_fill)
                .context("--p999-fill")?;
            (
                m,
                format!(
                    "the 99.9th percentile of {metric} ({p:.3}) fills {} of the largest size ({top} GiB) (--p999-fill)",
                    replay.p999_fill
                ),
            )
        }
    })
}

/// What the replay found, with the settings it ran under.
#[allow(clippy::too_many_arguments)]
fn vertical_report(
    trace: &Trace,
    params: &CheckedVertSim,
    lead_secs: i64,
    memory_low: f64,
    sim: &VertSim,
    demand: &[f64],
    per_unit: f64,
    forecast: Option<ForecastInfo>,
) -> VerticalReport {
    let step = trace.step();
    let n = demand.len();
    let mut sorted = demand.to_vec();
    sorted.sort_by(f64::total_cmp);
    VerticalReport {
        rows: trace.rows().len(),
        steps: n,
        filled_steps: trace.filled_steps(),
        step,
        lead_secs,
        lead_steps: params.lead_steps(),
        ladder: params
            .ladder()
            .iter()
            .zip(params.memory_gib())
            .map(|(s, &m)| LadderSize {
                size: s.clone(),
                memory_gib: m,
            })
            .collect(),
        memory_high: params.high(),
        memory_low,
        memory_window_steps: params.window_steps(),
        memory_per_unit: per_unit,
        demand_p999_gib: crate::core::forecast::metrics::quantile_sorted(&sorted, 0.999),
        demand_max_gib: sorted.last().copied().unwrap_or(0.0),
        scored_from: trace.start() + sim.score_from as i64 * step.secs(),
        scored_to: trace.start() + (n as i64 - 1) * step.secs(),
        scored_steps: n - sim.score_from,
        forecast,
        policies: sim.runs.iter().map(|r| r.metrics.clone()).collect(),
    }
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

/// The causal forecast of the peak memory demand (GiB) over the lead time at
/// every step (`None` where there is none: before the first model, or before
/// the published model has the history it needs): the metric forecast at
/// each step from the data up to it, by the models the node backtest's
/// predictive policy retrains walk-forward, or by the published model of
/// `--model` throughout, then [`forecast_peak`] over `lead_steps` at the
/// profile's quantile (as `scale --policy vertical --model` takes it) in
/// GiB.
fn forecast(
    s: &BacktestSettings,
    trace: &Trace,
    per_unit: f64,
    lead_steps: usize,
    calendar: Option<&crate::core::forecast::calendar::Calendar>,
    quiet: bool,
) -> Result<(Vec<Option<f64>>, ForecastInfo)> {
    // One row per step (gaps already filled causally), so every step gets its forecast.
    let demand = trace.demand();
    let series = LoadSeries::new(
        trace.start(),
        trace.step(),
        vec!["demand".into()],
        vec![demand.to_vec()],
    )?;
    let regular = Trace::from_series(&series, "demand")?;
    // The pool shapes node counts only, not the forecast, which is all this reads.
    let capacity = capacity_for_p999(demand, 40).map_or(1.0, |c| c.per_node());
    let lead_secs = lead_steps as i64 * trace.step().secs();
    let mut p = BacktestParams::new(PoolParams {
        capacity_per_node: capacity,
        min_nodes: 1,
        max_nodes: 1000,
        lead_secs,
    });
    p.warmup_secs = s.walk_forward.warmup.secs();
    p.retrain_every_secs = s.walk_forward.retrain_every.secs();
    p.train_window_secs = s.walk_forward.train_window.map(|w| w.secs());
    p.policies = vec![PolicyKind::Predictive];
    p.predictive.quantile = s.profile.predictive.quantile;
    // Only the forecast is read: no calibration or drift signals to track.
    p.predictive.calibration = None;
    p.predictive.max_error_ratio = None;
    p.drift_window_secs = 0;
    p.model = super::backtest::fixed_model(s)?;
    let checked = p
        .check(trace.step())
        .context("vertical_forecast: forecaster settings")?;
    let policy = p
        .predictive
        .check(checked.pool())
        .context("vertical_forecast: forecaster settings")?;
    let pb = ui::progress_bar(quiet, demand.len() as u64, "forecasting");
    let mut progress = |done: usize, total: usize| {
        pb.set_length(total as u64);
        pb.set_position(done as u64);
    };
    let q = s.profile.predictive.quantile;
    let tape = forecast_tape(
        &regular,
        &checked,
        calendar,
        std::slice::from_ref(&policy),
        demand.len(),
        &mut progress,
    );
    pb.finish_and_clear();
    let forecast: Vec<Option<f64>> = (0..demand.len())
        .map(|i| {
            let f = tape.forecast(i, q)?;
            forecast_peak(&f, lead_steps, q).map(|peak| peak * per_unit)
        })
        .collect();
    let info = ForecastInfo {
        model: s
            .walk_forward
            .model
            .as_ref()
            .map(|name| match &s.walk_forward.model_version {
                Some(v) => format!("{name}@{v}"),
                None => name.clone(),
            }),
        warmup_secs: p.warmup_secs,
        retrain_every_secs: p.retrain_every_secs,
        retrains: tape.retrains.len(),
        trained: tape
            .retrains
            .iter()
            .filter(|r| matches!(r.outcome, RetrainOutcome::Trained { .. }))
            .count(),
        scored_with_forecast_pct: 0.0,
    };
    Ok((forecast, info))
}

#[cfg(test)]
mod tests {
    use super::*;

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
