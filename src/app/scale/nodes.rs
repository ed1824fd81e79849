//! The node-count policies of `scale`: predictive (a forecast model; with a
//! regression model, the workshop's SLA band), alarm, target tracking and
//! seasonal naive. Reads the inputs, asks the core for the decision and the
//! outcome, writes through the target, records the run: wiring only.

use super::inputs::{self, LoadedModel};
use crate::app::source::{self, DataSource};
use crate::arm::AutoscalerMode;
use crate::core::forecast::model::ForecastModel;
use crate::core::forecast::regression::RegressionModel;
use crate::core::forecast::series::LoadSeries;
use crate::core::group::{Applied, GroupError, GroupErrorKind, GroupState, NodeGroup};
use crate::core::plan::outcome::{
    after_write, before_write, AfterWrite, BeforeWrite, Outcome, Wanted, WriteRules,
};
use crate::core::plan::signals::{self, Prepared};
use crate::core::plan::{
    plan, sla_plan, Capacity, CheckedPolicy, CheckedPool, Decision, NodeCount, PlanInput,
    PolicyKind, PoolState, Reason, SlaParams, Strategy,
};
use crate::core::sim::backtest::capacity_for_p999;
use crate::core::time::{rfc3339, Duration};
use crate::report::scale::{explain, plan_plot, DataSummary, ForecastSummary, ScaleRecord};
use crate::settings::profile::{AlarmOn, CapacitySource, Fallback};
use crate::settings::scale::{Policy, ScaleSettings};
use crate::store::artifact::Model;
use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, Utc};
use std::time::Instant;

/// What the round decides from, read once.
struct Inputs {
    src: DataSource,
    series: LoadSeries,
    now: i64,
    model: Option<LoadedModel>,
}

/// A decision and everything the record needs about how it was made.
struct Planned {
    group: Box<dyn NodeGroup>,
    before: GroupState,
    decision: Decision,
    explanation: Vec<String>,
    /// The forecast was not used (missing, stale, drifted).
    fell_back: bool,
    /// The policy whose memory moves on after the run, and the state it planned from.
    strategy: Option<Strategy>,
    state: Option<PoolState>,
    forecast: Option<ForecastSummary>,
    capacity_per_node: Option<f64>,
    metric: String,
    current: f64,
}

/// How the run ended.
struct Decided {
    outcome: Outcome,
    after: Option<Applied>,
    held_because: Option<String>,
    short_of_plan: Option<String>,
}

/// Run one node-count round. An `Err` means the target was not changed.
pub fn run(s: &ScaleSettings, clock: DateTime<Utc>, quiet: bool) -> Result<(i32, ScaleRecord)> {
    let t0 = Instant::now();
    let inputs = read_inputs(s, clock, quiet)?;
    let mut planned = make_plan(s, &inputs, None)?;
    if let (Some(path), Some(f), Some(cap)) =
        (&s.run.plot, &planned.forecast, planned.capacity_per_node)
    {
        let svg = plan_plot(
            &inputs.series,
            &planned.metric,
            f,
            cap,
            planned.before.count,
            planned.decision.nodes().get(),
            inputs.now,
        );
        crate::app::write_atomic(path, svg.as_bytes())?;
    }
    let decided = match conclude(s, &mut planned, inputs.now) {
        Err(e) if changed_under_us(&e) => {
            tracing::warn!(error = %format!("{e:#}"), "the target changed while applying (412): re-reading and re-planning once");
            let group = std::mem::replace(
                &mut planned.group,
                Box::new(crate::core::sim::pool::SimPool::new(NodeCount(0), 0)),
            );
            planned = make_plan(s, &inputs, Some(group))?;
            conclude(s, &mut planned, inputs.now)?
        }
        other => other?,
    };
    finish(s, planned, decided, &inputs, t0)
}

fn read_inputs(s: &ScaleSettings, clock: DateTime<Utc>, quiet: bool) -> Result<Inputs> {
    let src = DataSource::resolve(s.data.location.as_deref(), &s.data.storage)?;
    let needs_model = matches!(s.policy, Policy::Predictive | Policy::Sla);
    // The model first: its step decides how the data is read.
    let model = if needs_model {
        let name = inputs::model_name(s, &src)?;
        Some(inputs::load_model(s, &name, quiet)?)
    } else {
        None
    };
    let opts = match model.as_ref().map(|m| &m.model) {
        Some(Model::Forecast(m)) => inputs::read_options_for(s, m)?,
        _ => s.data.read.clone(),
    };
    let (series, now) = inputs::recent(s, &src, &opts, quiet, clock)?;
    Ok(Inputs {
        src,
        series,
        now,
        model,
    })
}

fn make_plan(
    s: &ScaleSettings,
    inputs: &Inputs,
    reuse: Option<Box<dyn NodeGroup>>,
) -> Result<Planned> {
    match inputs.model.as_ref().map(|m| (&m.model, m)) {
        Some((Model::Forecast(model), loaded)) => {
            if s.policy == Policy::Sla {
                bail!(
                    "--policy sla needs a regression model (train --kind regression); '{}' forecasts '{}'",
                    loaded.summary.name,
                    model.metric
                );
            }
            forecast_plan(s, inputs, model, loaded, reuse)
        }
        Some((Model::Regression(model), loaded)) => sla_round(s, inputs, model, loaded, reuse),
        None => {
            let kind = match s.policy {
                Policy::Alarm => PolicyKind::ReactiveThreshold,
                Policy::TargetTracking => PolicyKind::TargetTracking,
                _ => PolicyKind::SeasonalNaive,
            };
            reactive_plan(s, inputs, kind, reuse)
        }
    }
}

/// The column `metric` of the data, or an error naming what the data has.
fn column<'a>(inputs: &'a Inputs, metric: &str, needed_by: &str) -> Result<&'a [f64]> {
    inputs.series.column(metric).map_err(|_| {
        anyhow!(
            "{}: {needed_by} needs '{metric}', which the data does not have (it has: {})",
            inputs.src.location,
            inputs.series.names().join(", ")
        )
    })
}

/// The demand one node serves: given, or (for a simulated target only)
/// chosen so that the 99.9th percentile of `y` needs the profile's nodes.
fn capacity(s: &ScaleSettings, y: &[f64], metric: &str) -> Result<Capacity> {
    match s.profile.pool.capacity {
        CapacitySource::PerNode(c) => Ok(c),
        CapacitySource::P999Nodes(_) if s.target.is_arm() => bail!(
            "--capacity-per-node is required for a real target: the demand one node serves at 100% utilisation, in the units of '{metric}' per step"
        ),
        CapacitySource::P999Nodes(n) => capacity_for_p999(y, n).context("--p999-nodes"),
    }
}

fn open_or_reuse(
    s: &ScaleSettings,
    reuse: Option<Box<dyn NodeGroup>>,
    sim_nodes: u32,
) -> Result<(Box<dyn NodeGroup>, GroupState)> {
    let mut group = match reuse {
        Some(g) => g,
        None => inputs::open_count_target(s, sim_nodes)?,
    };
    let before = group
        .read()
        .map_err(anyhow::Error::new)
        .with_context(|| format!("reading {}", group.describe()))?;
    Ok((group, before))
}

fn memory_state(s: &ScaleSettings, now: i64, before: &GroupState) -> Result<PoolState> {
    Ok(PoolState {
        requested: NodeCount(before.count),
        ready: NodeCount(before.count),
        memory: inputs::load_memory(s, now, before.count)?,
    })
}

fn forecast_plan(
    s: &ScaleSettings,
    inputs: &Inputs,
    model: &ForecastModel,
    loaded: &LoadedModel,
    reuse: Option<Box<dyn NodeGroup>>,
) -> Result<Planned> {
    let step = inputs.series.step();
    let y = column(
        inputs,
        &model.metric,
        &format!("the model '{}'", loaded.summary.name),
    )?;
    let capacity = capacity(s, y, &model.metric)?;
    let lead = s.profile.pool.lead_time.unwrap_or_else(|| {
        Duration::from_secs(loaded.card.lead_steps as i64 * step.secs()).unwrap_or_default()
    });
    let pool = s.profile.pool.checked(capacity, lead)?;
    let Strategy::Predictive(policy) = s.profile.strategy(PolicyKind::Predictive, &pool)? else {
        unreachable!("a predictive strategy")
    };
    let current = *y.last().expect("a loaded series is not empty");
    let (group, before) = open_or_reuse(
        s,
        reuse,
        pool.clamp(capacity.nodes_for(current, 0.83)).get(),
    )?;
    // A forecast that cannot be made is not an error: the planner falls
    // back to the reactive rule and never scales in.
    let lead_steps = lead.secs() / step.secs();
    let (prepared, problem) = match signals::prepare(
        model,
        &inputs.series,
        &policy,
        s.profile.predictive.drift_window.secs(),
        inputs::eval_last_value_mae(&loaded.card, lead_steps),
    ) {
        Ok(p) => (Some(p), None),
        Err(e) => (None, Some(e.to_string())),
    };
    if let Some(p) = &problem {
        tracing::warn!(problem = %p, "no forecast: sizing reactively on the current load");
    }
    let state = memory_state(s, inputs.now, &before)?;
    let input = PlanInput {
        step,
        demand: y,
        utilisation: &[],
        forecast: prepared.as_ref().map(|p| &p.forecast),
        error_ratio: prepared.as_ref().and_then(|p| p.error_ratio),
        calibration: prepared.as_ref().and_then(|p| p.calibration.as_ref()),
        future: &[],
    };
    let mut decision = plan(&input, &state, &policy, inputs.now);
    let mut explanation: Vec<String> = decision.reasons().iter().map(explain).collect();
    if let Some(p) = &problem {
        explanation.insert(0, format!("no forecast: {p}"));
    }
    let mut fell_back = decision
        .reasons()
        .iter()
        .any(|r| matches!(r, Reason::Fallback { .. }));
    if fell_back && s.profile.predictive.fallback == Fallback::Alarm {
        // The forecast was not trusted: the team's alarm rule decides instead.
        let alarm = s
            .profile
            .strategy(PolicyKind::ReactiveThreshold, policy.pool())?;
        let datapoints = alarm_datapoints(s, y, capacity.per_node(), before.count);
        decision = alarm.decide(
            &PlanInput::observed(step, y, &datapoints),
            &state,
            inputs.now,
        );
        explanation
            .push("the forecast was not used: the alarm rule decides (--fallback alarm)".into());
        explanation.extend(decision.reasons().iter().map(explain));
        fell_back = false;
    }
    let forecast = prepared
        .as_ref()
        .map(|p| forecast_summary(p, &policy, lead));
    Ok(Planned {
        group,
        before,
        decision,
        explanation,
        fell_back,
        strategy: Some(Strategy::Predictive(policy.clone())),
        state: Some(state),
        forecast,
        capacity_per_node: Some(capacity.per_node()),
        metric: model.metric.clone(),
        current,
    })
}

fn forecast_summary(p: &Prepared, policy: &CheckedPolicy, lead: Duration) -> ForecastSummary {
    let f = &p.forecast;
    let lead_steps = policy.pool().lead_steps(f.step);
    let upto = lead_steps.min(f.horizon());
    ForecastSummary {
        lead_time: lead.to_string(),
        lead_steps,
        points: f.points[..upto].to_vec(),
        p10: (1..=upto).map(|h| f.quantile(h, 0.1)).collect(),
        p90: (1..=upto).map(|h| f.quantile(h, 0.9)).collect(),
        error_ratio: p.error_ratio,
        drift_samples: p.drift_samples,
        calibration_samples: p.calibration_samples,
    }
}

/// The workshop's controller: a regression model's predicted latency
/// against the SLA band.
fn sla_round(
    s: &ScaleSettings,
    inputs: &Inputs,
    model: &RegressionModel,
    loaded: &LoadedModel,
    reuse: Option<Box<dyn NodeGroup>>,
) -> Result<Planned> {
    let needed_by = format!("the model '{}'", loaded.summary.name);
    let x: Vec<f64> = model
        .inputs
        .iter()
        .map(|i| column(inputs, i, &needed_by).map(|c| c[c.len() - 1]))
        .collect::<Result<_>>()?;
    let q = s.profile.predictive.quantile;
    let predicted = model.predict_quantile(&x, q)?;
    let sla = &s.profile.sla;
    let target = sla.target.with_context(|| {
        format!(
            "model '{}' predicts '{}' from {}: the SLA mode needs --sla-target (and --sla-threshold)",
            loaded.summary.name,
            model.target,
            model.inputs.join(", ")
        )
    })?;
    let step = Duration::from_secs(inputs.series.step().secs()).unwrap_or_default();
    let pool = s
        .profile
        .pool
        .checked(Capacity::new(1.0).expect("positive"), step)?;
    let checked = SlaParams {
        target,
        threshold: sla.threshold,
        increment: sla.increment,
    }
    .check(&pool)
    .context("SLA settings")?;
    let (group, before) = open_or_reuse(s, reuse, s.profile.pool.min_nodes)?;
    let decision = sla_plan(predicted, NodeCount(before.count), &checked);
    let shown: Vec<String> = model
        .inputs
        .iter()
        .zip(&x)
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    let explanation = vec![
        format!(
            "predicted {} at q{:.0} from {}: {predicted:.3}",
            model.target,
            q * 100.0,
            shown.join(", ")
        ),
        explain(&decision.reasons()[0]),
    ];
    Ok(Planned {
        group,
        before,
        decision,
        explanation,
        fell_back: false,
        strategy: None,
        state: None,
        forecast: None,
        capacity_per_node: None,
        metric: model.target.clone(),
        current: predicted,
    })
}

/// A policy without a model: the alarm rule (on the metric or on
/// utilisation), target tracking or seasonal naive; the last action times
/// persist in the state file, so a run every minute behaves like a
/// continuously evaluating rule.
fn reactive_plan(
    s: &ScaleSettings,
    inputs: &Inputs,
    kind: PolicyKind,
    reuse: Option<Box<dyn NodeGroup>>,
) -> Result<Planned> {
    let metric = source::choose_metric(
        s.data.metric.as_deref(),
        inputs.series.names(),
        crate::ingest::Format::Csv,
    )?;
    let y = column(inputs, &metric, "the policy")?;
    let on_metric = kind == PolicyKind::ReactiveThreshold && s.profile.alarm.on == AlarmOn::Metric;
    let capacity = if on_metric {
        Capacity::new(1.0).expect("positive")
    } else {
        match (kind, s.profile.pool.capacity) {
            (PolicyKind::ReactiveThreshold, CapacitySource::P999Nodes(_)) if s.target.is_arm() => {
                bail!("--alarm-on utilisation needs --capacity-per-node")
            }
            _ => capacity(s, y, &metric)?,
        }
    };
    let lead = s
        .profile
        .pool
        .lead_time
        .unwrap_or(crate::settings::profile::PoolProfile::DEFAULT_LEAD);
    let pool: CheckedPool = s.profile.pool.checked(capacity, lead)?;
    let strategy = s.profile.strategy(kind, &pool)?;
    let current = *y.last().expect("not empty");
    let sim_nodes = if kind == PolicyKind::ReactiveThreshold {
        s.profile.pool.min_nodes
    } else {
        pool.clamp(capacity.nodes_for(current, 0.83)).get()
    };
    let (group, before) = open_or_reuse(s, reuse, sim_nodes)?;
    let datapoints = alarm_datapoints(s, y, capacity.per_node(), before.count);
    let state = memory_state(s, inputs.now, &before)?;
    let decision = strategy.decide(
        &PlanInput::observed(inputs.series.step(), y, &datapoints),
        &state,
        inputs.now,
    );
    let explanation = decision.reasons().iter().map(explain).collect();
    Ok(Planned {
        group,
        before,
        decision,
        explanation,
        fell_back: false,
        strategy: Some(strategy),
        state: Some(state),
        forecast: None,
        capacity_per_node: (!on_metric).then_some(capacity.per_node()),
        metric,
        current,
    })
}

/// The datapoints the alarms evaluate: the metric itself, or the utilisation
/// of the current nodes (the node count of earlier datapoints is not known;
/// the current one is used for all of them).
fn alarm_datapoints(s: &ScaleSettings, y: &[f64], capacity: f64, nodes: u32) -> Vec<f64> {
    match s.profile.alarm.on {
        AlarmOn::Utilisation => y
            .iter()
            .map(|v| v / (capacity * f64::from(nodes.max(1))))
            .collect(),
        AlarmOn::Metric => y.to_vec(),
    }
}

/// The target answered 412: it changed between reading and writing.
fn changed_under_us(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<GroupError>()
            .is_some_and(|g| g.kind == GroupErrorKind::Changed)
    })
}

/// Apply the decision (unless there is nothing to do, it must be held, or it
/// is a dry run) and move the planner's memory on with what really happened.
fn conclude(s: &ScaleSettings, p: &mut Planned, now: i64) -> Result<Decided> {
    let planned = p.decision.nodes().get();
    let wanted = Wanted::Count {
        nodes: planned,
        recommended: p.decision.recommended().get(),
        fell_back: p.fell_back,
    };
    let rules = WriteRules {
        dry_run: s.run.dry_run,
        refuse_autoscaler: s.on_autoscaler == AutoscalerMode::Refuse,
    };
    let mut decided = Decided {
        outcome: Outcome::NothingToDo,
        after: None,
        held_because: None,
        short_of_plan: None,
    };
    match before_write(&wanted, &p.before, rules) {
        BeforeWrite::End {
            outcome,
            held_because,
        } => {
            decided.outcome = outcome;
            decided.held_because = held_because;
        }
        BeforeWrite::Write => {
            let first = p.group.set_count(&p.before, planned);
            match after_write(p.before.count, planned, &first) {
                AfterWrite::Done(outcome) => {
                    decided.outcome = outcome;
                    decided.after = first.ok();
                }
                AfterWrite::Retry {
                    nodes,
                    short_of_plan,
                } => {
                    let why = first.err().map(|e| e.to_string()).unwrap_or_default();
                    let applied = p
                        .group
                        .set_count(&p.before, nodes)
                        .map_err(anyhow::Error::new)
                        .with_context(|| {
                            format!(
                                "setting {} to {nodes} nodes (as far as the quota allows, after: {why})",
                                p.group.describe()
                            )
                        })?;
                    decided.outcome = Outcome::Limited;
                    decided.after = Some(applied);
                    decided.short_of_plan = Some(short_of_plan);
                }
                AfterWrite::Failed(e) => {
                    return Err(anyhow::Error::new(e)
                        .context(format!("setting {} to {planned} nodes", p.group.describe())))
                }
            }
        }
    }
    if let (false, Some(strategy), Some(state)) = (s.run.dry_run, &p.strategy, &p.state) {
        let mut memory = state.memory.clone();
        let recorded = match (&p.decision, decided.outcome) {
            (Decision::ScaleTo { .. }, Outcome::Applied | Outcome::Limited) => p.decision.clone(),
            _ => Decision::Hold {
                nodes: NodeCount(p.before.count),
                recommended: p.decision.recommended(),
                planned_demand: p.decision.planned_demand(),
                reasons: vec![],
            },
        };
        strategy.record(&mut memory, &recorded, now);
        inputs::save_memory(s, &memory)?;
    }
    Ok(decided)
}

/// The record of a run: appended to the decision log and returned.
fn finish(
    s: &ScaleSettings,
    planned: Planned,
    decided: Decided,
    inputs: &Inputs,
    t0: Instant,
) -> Result<(i32, ScaleRecord)> {
    let series = &inputs.series;
    let newest = series.time_at(series.len() - 1);
    let record = ScaleRecord {
        mlscaler_version: env!("CARGO_PKG_VERSION"),
        now: rfc3339(inputs.now),
        target: planned.group.describe(),
        dry_run: s.run.dry_run,
        outcome: decided.outcome,
        data: DataSummary {
            source: inputs.src.location.clone(),
            metric: planned.metric,
            step: series.step().to_string(),
            steps: series.len(),
            newest: rfc3339(newest),
            age_secs: inputs.now - newest,
            current_demand: planned.current,
        },
        model: inputs.model.as_ref().map(|m| m.summary.clone()),
        forecast: planned.forecast,
        capacity_per_node: planned.capacity_per_node,
        before: planned.before,
        decision: planned.decision,
        explanation: planned.explanation,
        after: decided.after,
        held_because: decided.held_because,
        short_of_plan: decided.short_of_plan,
        duration_secs: t0.elapsed().as_secs_f64(),
    };
    inputs::append_record(s, &record)?;
    Ok((record.outcome.exit_code(), record))
}
