//! `mlscaler backtest`: replay a load history through every policy against a
//! simulated pool ([`crate::core::sim::backtest`]) and report them side by side.

use super::source::{self, DataSource};
use super::{exit, ui, write_atomic};
use crate::core::forecast::series::GapFill;
use crate::core::plan::control::Datapoints;
use crate::core::plan::{Capacity, PolicyKind, PoolParams};
use crate::core::sim::backtest::FixedModel;
use crate::core::sim::backtest::{
    capacity_for_p999, run_backtest, targets, Backtest, BacktestParams, Trace,
};
use crate::core::time::Duration;
use crate::ingest::Format;
use crate::report;
use crate::report::backtest::{plot, BacktestSummary};
use crate::settings::backtest::{BacktestSettings, Mode, PlanPolicy, WalkForward};
use crate::settings::data::DataSettings;
use crate::settings::profile::ScalingProfile;
use crate::settings::profile::{AlarmOn, CapacitySource, Fallback};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::time::Instant;

/// Run `backtest` (nodes mode).
pub fn run(s: &BacktestSettings, quiet: bool) -> Result<(i32, BacktestSummary)> {
    let Mode::Nodes(kinds) = &s.mode else {
        bail!("backtest::run replays node-count policies")
    };
    let t0 = Instant::now();
    let mut seconds = BTreeMap::new();
    let LoadedTrace {
        src,
        format,
        metric,
        trace,
        calendar,
    } = load_trace(&s.data, quiet)?;
    seconds.insert("ingest".into(), t0.elapsed().as_secs_f64());
    let step = trace.step();
    let (capacity, capacity_source) = capacity_of(s.profile.pool.capacity, trace.demand())?;
    let model = fixed_model(s)?;
    let params = replay_params(
        &s.profile,
        &s.walk_forward,
        s.lead_time(),
        s.score_from,
        kinds,
        capacity,
    );
    let checked = BacktestParams { model, ..params }
        .check(step)
        .with_context(|| {
            if format == Format::Logs {
                "backtest settings (raw logs)".to_string()
            } else {
                "backtest settings".to_string()
            }
        })?;

    let t1 = Instant::now();
    let pb = ui::progress_bar(quiet, trace.demand().len() as u64, "replaying");
    let mut progress = |done: usize, total: usize| {
        pb.set_length(total as u64);
        pb.set_position(done as u64);
    };
    let bt = run_backtest(&trace, &checked, calendar.as_ref(), &mut progress)?;
    pb.finish_and_clear();
    seconds.insert("replay".into(), t1.elapsed().as_secs_f64());
    for m in &bt.report.policies {
        tracing::info!(
            policy = %m.policy,
            node_hours_vs_oracle = m.node_hours_vs_oracle.unwrap_or(f64::NAN),
            under_provisioned_pct = m.under_provisioned_pct,
            operations = m.actions,
            waited = m.waited,
            "replayed"
        );
    }

    let mut files = BTreeMap::new();
    if let Some(p) = &s.plan_out {
        let text = plan_csv(&bt, &s.plan_policy)?;
        write_atomic(p, text.as_bytes())?;
        files.insert("plan".into(), p.display().to_string());
    }
    if let Some(p) = &s.plot {
        let svg = plot(&bt, &metric, capacity.per_node(), false);
        write_atomic(p, svg.as_bytes())?;
        files.insert("plot".into(), p.display().to_string());
        let zoom = p.with_file_name(format!(
            "{}-busiest-day.svg",
            p.file_stem()
                .map_or("backtest".into(), |s| s.to_string_lossy())
        ));
        write_atomic(
            &zoom,
            plot(&bt, &metric, capacity.per_node(), true).as_bytes(),
        )?;
        files.insert("plot_busiest_day".into(), zoom.display().to_string());
    }
    let mut summary = BacktestSummary {
        source: src.location.clone(),
        metric,
        capacity_source,
        targets: targets(&bt.report),
        report: bt.report,
        files,
        seconds,
    };
    super::finish(&mut summary, s.report.as_deref(), t0)?;
    Ok((exit::OK, summary))
}

/// The plan CSV of `which` policy (or of all, one after the other).
fn plan_csv(bt: &Backtest, which: &PlanPolicy) -> Result<String> {
    let PlanPolicy::One(name) = which else {
        return Ok(report::backtest::plans_csv(&bt.plans));
    };
    let kind: PolicyKind = name
        .parse()
        .map_err(|e| anyhow::anyhow!("--plan-policy: {e}"))?;
    let plan = bt
        .plan(kind)
        .with_context(|| format!("--plan-policy {name}: that policy was not run (see --policy)"))?;
    Ok(plan.to_csv())
}

/// The metric of `--data` as a trace a causal replay can run on (gaps filled
/// with the previous value), with its source, format, metric name and calendar.
pub(super) struct LoadedTrace {
    pub src: DataSource,
    pub format: Format,
    pub metric: String,
    pub trace: Trace,
    pub calendar: Option<crate::core::forecast::calendar::Calendar>,
}

/// Read `--data` for a backtest (every mode that replays one metric).
pub(super) fn load_trace(data: &DataSettings, quiet: bool) -> Result<LoadedTrace> {
    let mut opts = data.read.clone();
    // A linear fill looks at the next row, which a causal replay must not.
    if opts.gaps.fill == GapFill::Linear {
        opts.gaps.fill = GapFill::Previous;
    }
    let calendar = source::read_calendar(data.calendar.as_deref())?;
    let src = DataSource::resolve(data.location.as_deref(), &data.storage)?;
    if src.location == source::SAMPLE_NAME && !quiet {
        eprintln!(
            "note: no --data given: replaying the bundled sample ({})",
            source::SAMPLE_NAME
        );
    }
    let raw = source::load_raw(&src, &opts)?;
    let names: Vec<String> = raw.table.columns.iter().map(|c| c.name.clone()).collect();
    let metric = source::choose_metric(data.metric.as_deref(), &names, raw.format)?;
    let column = raw
        .table
        .columns
        .iter()
        .find(|c| c.name == metric)
        .with_context(|| {
            format!(
                "{}: no metric column '{metric}' (columns: {})",
                src.location,
                names.join(", ")
            )
        })?;
    let step = raw.step;
    let gaps = crate::core::forecast::series::GapPolicy {
        max_gap_steps: step.steps_ceil(opts.max_gap_secs),
        ..opts.gaps
    };
    let trace = Trace::from_rows(&raw.table.timestamps, &column.values, step, gaps)
        .with_context(|| format!("{}: column '{metric}'", src.location))?;
    Ok(LoadedTrace {
        src,
        format: raw.format,
        metric,
        trace,
        calendar,
    })
}

/// The published model of `--model`, if any.
pub(super) fn fixed_model(s: &BacktestSettings) -> Result<Option<FixedModel>> {
    let Some(name) = &s.walk_forward.model else {
        return Ok(None);
    };
    let store = super::storage::open_models(&s.walk_forward.models, &s.data.storage)?;
    let registry = crate::store::registry::Registry::new(store.as_ref());
    let (_, payload) = match &s.walk_forward.model_version {
        Some(v) => registry.load_version(name, v)?,
        None => registry.load_latest(name)?,
    };
    let crate::store::artifact::Model::Forecast(model) = payload.model else {
        bail!("--model {name}: not a forecast model")
    };
    let lead = model.spec.horizon().min(payload.card.lead_steps.max(1));
    Ok(Some(FixedModel {
        eval_last_value_mae: super::scale::inputs::eval_last_value_mae(&payload.card, lead as i64),
        model,
    }))
}

/// The replay's settings: the profile's policies on a pool of `capacity`,
/// with the lead time `lead`, scored from the fraction `score_from` on.
pub(super) fn replay_params(
    profile: &ScalingProfile,
    wf: &WalkForward,
    lead: Duration,
    score_from: f64,
    kinds: &[PolicyKind],
    capacity: Capacity,
) -> BacktestParams {
    let pool = &profile.pool;
    let mut p = BacktestParams::new(PoolParams {
        capacity_per_node: capacity.per_node(),
        min_nodes: pool.min_nodes,
        max_nodes: pool.max_nodes,
        lead_secs: lead.secs(),
    });
    p.allow_lead_below_step = pool.round_lead_up;
    p.warmup_secs = wf.warmup.secs();
    p.retrain_every_secs = wf.retrain_every.secs();
    p.train_window_secs = wf.train_window.map(|w| w.secs());
    p.drift_window_secs = profile.predictive.drift_window.secs();
    p.score_from_fraction = score_from;
    p.policies = kinds.to_vec();
    p.predictive = profile.predictive.params();
    p.predictive.busy_secs = (
        pool.scale_out_duration.secs(),
        pool.scale_in_duration.secs(),
    );
    p.threshold = profile.alarm.rule.clone();
    p.target_tracking = profile.tracking.clone();
    p.seasonal_naive = profile.seasonal.clone();
    p.fallback_alarm = profile.predictive.fallback == Fallback::Alarm;
    p.datapoints = match profile.alarm.on {
        AlarmOn::Utilisation => Datapoints::Utilisation,
        AlarmOn::Metric => Datapoints::Metric,
    };
    p.operations = pool.operations();
    p.start = wf.start;
    p
}

/// The capacity per node of a replay, and where it came from: given, or
/// such that the 99.9th percentile of `demand` needs so many nodes.
pub fn capacity_of(source: CapacitySource, demand: &[f64]) -> Result<(Capacity, String)> {
    Ok(match source {
        CapacitySource::PerNode(c) => (c, format!("--capacity-per-node {}", c.per_node())),
        CapacitySource::P999Nodes(n) => (
            capacity_for_p999(demand, n).context("--p999-nodes")?,
            format!("the 99.9th percentile of demand needs {n} nodes (--p999-nodes)"),
        ),
    })
}

#[cfg(test)]
mod tests {
    use crate::core::plan::{NodeCount, PolicyKind};
    use crate::core::sim::backtest::{PlanRow, PolicyPlan};
    use crate::report::backtest::busiest_day;

    fn plan(demand: &[f64]) -> PolicyPlan {
        PolicyPlan {
            policy: PolicyKind::Oracle,
            rows: demand
                .iter()
                .enumerate()
                .map(|(i, &d)| PlanRow {
                    timestamp: i as i64 * 3600,
                    demand: d,
                    forecast: None,
                    target_nodes: NodeCount(1),
                    ready_nodes: NodeCount(1),
                    policy: PolicyKind::Oracle,
                    change: 0,
                    waited: false,
                })
                .collect(),
        }
    }

    #[test]
    fn the_busiest_day_is_the_window_with_the_most_demand() {
        // Hourly steps: 24 per day; the peak day is rows 30..54.
        let mut d = vec![1.0; 80];
        for v in &mut d[30..54] {
            *v = 10.0;
        }
        assert_eq!(busiest_day(&plan(&d), 0, 3600), (30, 54));
        // Starting inside the peak, the window starts there.
        assert_eq!(busiest_day(&plan(&d), 50, 3600), (50, 74));
        // Less than a day left: all of it.
        assert_eq!(busiest_day(&plan(&d), 60, 3600), (60, 80));
    }
}
