//! The node-count policies of `scale`: predictive (a forecast model; with a
//! regression model, the workshop's SLA band), alarm, target tracking and
//! seasonal naive. Reads the inputs, asks the core controller for the
//! decision ([`control::decide`], the same the backtest replays) and the
//! outcome, writes through the target, remembers, records the run: wiring
//! only.

use super::inputs::{self, CountTarget, LoadedModel, Lookback, SimStart, StateFile};
use crate::app::source::{self, DataSource};
use crate::arm::AutoscalerMode;
use crate::core::forecast::model::ForecastModel;
use crate::core::forecast::regression::RegressionModel;
use crate::core::forecast::series::LoadSeries;
use crate::core::group::{Applied, GroupError, GroupErrorKind, GroupState};
use crate::core::plan::control::{self, ControlMemory, Datapoints, Decided, Known, NodeControl};
use crate::core::plan::outcome::{
    after_write, before_write, AfterWrite, BeforeWrite, Outcome, Wanted, WriteRules,
};
use crate::core::plan::signals::{self, PastOrigins, Prepared};
use crate::core::plan::{sla_plan, Capacity, CheckedPool, NodeCount, PolicyKind};
use crate::core::sim::backtest::capacity_for_p999;
use crate::core::sim::pool::sized_for;
use crate::core::time::{rfc3339, Duration, Step};
use crate::report::scale::{
    explain, plan_plot, DataSummary, ForecastSummary, ScaleRecord, PLOT_PAST_SECS,
};
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
    /// What the last run left (`None`: no state file yet).
    state: Option<StateFile>,
}

/// A decision and everything the record needs about how it was made.
struct Planned {
    target: CountTarget,
    before: GroupState,
    decided: Decided,
    explanation: Vec<String>,
    /// The controller whose memory moves on after the run, and the memory
    /// it planned with (none for the SLA band, which keeps none).
    control: Option<(NodeControl, ControlMemory)>,
    forecast: Option<ForecastSummary>,
    capacity_per_node: Option<f64>,
    metric: String,
    current: f64,
    /// The past-origin results of the predictive policy's signals, kept in
    /// the state file for the next run.
    past_origins: Option<PastOrigins>,
}

/// How the run ended.
struct Concluded {
    outcome: Outcome,
    after: Option<Applied>,
    held_because: Option<String>,
    short_of_plan: Option<String>,
}

/// The past-origin results this process made in its last round, for a
/// round of the loop mode whose state file holds none (a dry run writes no
/// state). Reused only where they are exact, as those of a state file.
static LAST_KEPT: std::sync::Mutex<Option<PastOrigins>> = std::sync::Mutex::new(None);

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
            planned.decided.decision.nodes().get(),
            inputs.now,
        );
        crate::app::write_atomic(path, svg.as_bytes())?;
    }
    let concluded = match conclude(s, &mut planned) {
        Err(e) if changed_under_us(&e) => {
            tracing::warn!(error = %format!("{e:#}"), "the target changed while applying (412): re-reading and re-planning once");
            let CountTarget::Arm(group) = planned.target else {
                return Err(e);
            };
            planned = make_plan(s, &inputs, Some(group))?;
            conclude(s, &mut planned)?
        }
        other => other?,
    };
    remember(s, &mut planned, &concluded, &inputs)?;
    finish(s, planned, concluded, &inputs, t0)
}

fn read_inputs(s: &ScaleSettings, clock: DateTime<Utc>, quiet: bool) -> Result<Inputs> {
    let src = DataSource::resolve(s.data.location.as_deref(), &s.data.storage)?;
    let needs_model = matches!(s.policy, Policy::Predictive | Policy::Sla);
    // The model first: its step decides how the data is read.
    let model = if needs_model {
        let name = inputs::model_name(s, &src)?;
        Some(inputs::load_model(s, &name)?)
    } else {
        None
    };
    let opts = match model.as_ref().map(|m| &m.model) {
        Some(Model::Forecast(m)) => inputs::read_options_for(s, m)?,
        _ => s.data.read.clone(),
    };
    let lookback = lookback(s, model.as_ref(), opts.step);
    let (series, now) = inputs::recent(s, &src, &opts, lookback, quiet, clock)?;
    Ok(Inputs {
        src,
        series,
        now,
        model,
        state: inputs::load_state(s)?,
    })
}

/// What the round reads of the history before its newest step at `step`
/// (`None`: known only from the data): the decision's windows (see
/// [`NodeControl::history_steps`] and [`signals::history_steps`]) and the
/// plot's six hours. All of it when the capacity comes from the 99.9th
/// percentile of the load, or when the settings cannot work (the plan then
/// says why, as it always did).
fn lookback(s: &ScaleSettings, model: Option<&LoadedModel>, step: Option<Step>) -> Lookback {
    let Some(step) = step else {
        return Lookback::All;
    };
    let steps = match model.map(|m| (&m.model, m)) {
        Some((Model::Forecast(m), loaded)) if s.policy != Policy::Sla => {
            predictive_lookback(s, m, loaded, step)
        }
        // The SLA band reads the newest step only.
        Some(_) => Some(0),
        None => reactive_lookback(s, step),
    };
    steps.map_or(Lookback::All, Lookback::Steps)
}

fn predictive_lookback(
    s: &ScaleSettings,
    model: &ForecastModel,
    loaded: &LoadedModel,
    step: Step,
) -> Option<usize> {
    let CapacitySource::PerNode(capacity) = s.profile.pool.capacity else {
        return None;
    };
    let pool = s
        .profile
        .pool
        .checked(capacity, predictive_lead(s, loaded, step))
        .ok()?;
    let control = controller(s, PolicyKind::Predictive, &pool).ok()?;
    let crate::core::plan::Strategy::Predictive(policy) = &control.strategy else {
        return None;
    };
    let signals = signals::history_steps(model, policy, s.profile.predictive.drift_window.secs());
    let plot = match s.run.plot {
        Some(_) => (PLOT_PAST_SECS / step.secs()) as usize,
        None => 0,
    };
    Some(control.history_steps(step).max(signals).max(plot))
}

fn reactive_lookback(s: &ScaleSettings, step: Step) -> Option<usize> {
    let kind = reactive_kind(s);
    let capacity = match s.profile.pool.capacity {
        _ if on_metric(s, kind) => Capacity::new(1.0).expect("positive"),
        CapacitySource::PerNode(c) => c,
        CapacitySource::P999Nodes(_) => return None,
    };
    let pool = s.profile.pool.checked(capacity, reactive_lead(s)).ok()?;
    let control = controller(s, kind, &pool).ok()?;
    Some(control.history_steps(step))
}

/// The lead time of the predictive policy: `--lead-time`, else the model's.
fn predictive_lead(s: &ScaleSettings, loaded: &LoadedModel, step: Step) -> Duration {
    s.profile.pool.lead_time.unwrap_or_else(|| {
        Duration::from_secs(loaded.card.lead_steps as i64 * step.secs()).unwrap_or_default()
    })
}

/// The lead time of a policy without a model: `--lead-time`, else the default.
fn reactive_lead(s: &ScaleSettings) -> Duration {
    s.profile
        .pool
        .lead_time
        .unwrap_or(crate::settings::profile::PoolProfile::DEFAULT_LEAD)
}

/// The policy without a model that the settings name.
fn reactive_kind(s: &ScaleSettings) -> PolicyKind {
    match s.policy {
        Policy::Alarm => PolicyKind::ReactiveThreshold,
        Policy::TargetTracking => PolicyKind::TargetTracking,
        _ => PolicyKind::SeasonalNaive,
    }
}

/// Whether the alarm compares the metric itself (no capacity needed).
fn on_metric(s: &ScaleSettings, kind: PolicyKind) -> bool {
    kind == PolicyKind::ReactiveThreshold && s.profile.alarm.on == AlarmOn::Metric
}

fn make_plan(
    s: &ScaleSettings,
    inputs: &Inputs,
    reuse: Option<Box<dyn crate::core::group::NodeGroup>>,
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
        None => reactive_plan(s, inputs, reactive_kind(s), reuse),
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

/// The target (the one re-read after a 412, or opened afresh) and its state.
fn open_or_reuse(
    s: &ScaleSettings,
    inputs: &Inputs,
    reuse: Option<Box<dyn crate::core::group::NodeGroup>>,
    start: SimStart,
) -> Result<(CountTarget, GroupState)> {
    let mut target = match reuse {
        Some(g) => CountTarget::Arm(g),
        None => inputs::open_count_target(
            s,
            inputs.state.as_ref().unwrap_or(&StateFile::default()),
            start,
            inputs.now,
        )?,
    };
    let group = target.group();
    let before = group
        .read()
        .map_err(anyhow::Error::new)
        .with_context(|| format!("reading {}", group.describe()))?;
    Ok((target, before))
}

/// The controller's memory: the state file's, or (without one) a memory
/// that never scales in before a whole stabilisation window was observed.
fn memory(inputs: &Inputs, before: &GroupState) -> ControlMemory {
    match &inputs.state {
        Some(st) => st.memory.clone(),
        None => ControlMemory::starting(inputs.now, before.count),
    }
}

/// The controller of `kind` on `pool`, as the profile says.
fn controller(s: &ScaleSettings, kind: PolicyKind, pool: &CheckedPool) -> Result<NodeControl> {
    let fallback = (kind == PolicyKind::Predictive
        && s.profile.predictive.fallback == Fallback::Alarm)
        .then(|| s.profile.strategy(PolicyKind::ReactiveThreshold, pool))
        .transpose()?;
    Ok(NodeControl {
        strategy: s.profile.strategy(kind, pool)?,
        fallback,
        datapoints: match s.profile.alarm.on {
            AlarmOn::Utilisation => Datapoints::Utilisation,
            AlarmOn::Metric => Datapoints::Metric,
        },
    })
}

fn forecast_plan(
    s: &ScaleSettings,
    inputs: &Inputs,
    model: &ForecastModel,
    loaded: &LoadedModel,
    reuse: Option<Box<dyn crate::core::group::NodeGroup>>,
) -> Result<Planned> {
    let step = inputs.series.step();
    let y = column(
        inputs,
        &model.metric,
        &format!("the model '{}'", loaded.summary.name),
    )?;
    let capacity = capacity(s, y, &model.metric)?;
    let lead = predictive_lead(s, loaded, step);
    let pool = s.profile.pool.checked(capacity, lead)?;
    let control = controller(s, PolicyKind::Predictive, &pool)?;
    let crate::core::plan::Strategy::Predictive(policy) = &control.strategy else {
        unreachable!("a predictive strategy")
    };
    let current = *y.last().expect("a loaded series is not empty");
    let start = SimStart {
        sized: sized_for(&pool, current).get(),
        lead,
        operations: s.profile.pool.operations(),
    };
    let (target, before) = open_or_reuse(s, inputs, reuse, start)?;
    // A forecast that cannot be made is not an error: the planner falls
    // back to the reactive rule and never scales in.
    let lead_steps = lead.secs() / step.secs();
    let remembered = LAST_KEPT.lock().unwrap_or_else(|p| p.into_inner()).take();
    let past = signals::Past {
        model_id: &loaded.card.id,
        kept: (inputs.state.as_ref())
            .and_then(|s| s.past_origins.as_ref())
            .or(remembered.as_ref()),
    };
    let (prepared, past_origins, problem) = match signals::prepare_kept(
        model,
        &inputs.series,
        policy,
        s.profile.predictive.drift_window.secs(),
        inputs::eval_last_value_mae(&loaded.card, lead_steps),
        past,
    ) {
        Ok(k) => {
            tracing::debug!(
                reused = k.reused,
                forecast = k.forecast,
                kept = k.keep.len(),
                "past origins of the drift and calibration signals"
            );
            *LAST_KEPT.lock().unwrap_or_else(|p| p.into_inner()) = Some(k.keep.clone());
            (Some(k.prepared), Some(k.keep), None)
        }
        Err(e) => (None, None, Some(e.to_string())),
    };
    if let Some(p) = &problem {
        tracing::warn!(problem = %p, "no forecast: sizing reactively on the current load");
    }
    let memory = memory(inputs, &before);
    let known = Known {
        step,
        demand: y,
        forecast: prepared.as_ref().map(|p| &p.forecast),
        error_ratio: prepared.as_ref().and_then(|p| p.error_ratio),
        calibration: prepared.as_ref().and_then(|p| p.calibration.as_ref()),
        future: &[],
    };
    let decided = control::decide(&control, &known, &before, &memory, inputs.now);
    let mut explanation: Vec<String> = Vec::new();
    if let Some(p) = &problem {
        explanation.push(format!("no forecast: {p}"));
    }
    if decided.by_alarm {
        explanation.extend(decided.set_aside.iter().map(explain));
        explanation
            .push("the forecast was not used: the alarm rule decides (--fallback alarm)".into());
    }
    explanation.extend(decided.decision.reasons().iter().map(explain));
    let forecast = prepared
        .as_ref()
        .map(|p| forecast_summary(p, policy.pool(), lead));
    Ok(Planned {
        target,
        before,
        decided,
        explanation,
        control: Some((control, memory)),
        forecast,
        capacity_per_node: Some(capacity.per_node()),
        metric: model.metric.clone(),
        current,
        past_origins,
    })
}

fn forecast_summary(p: &Prepared, pool: &CheckedPool, lead: Duration) -> ForecastSummary {
    let f = &p.forecast;
    let lead_steps = pool.lead_steps(f.step);
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
    reuse: Option<Box<dyn crate::core::group::NodeGroup>>,
) -> Result<Planned> {
    let needed_by = format!("the model '{}'", loaded.summary.name);
    let x: Vec<f64> = model
        .inputs
        .iter()
        .map(|i| column(inputs, i, &needed_by).map(|c| c[c.len() - 1]))
        .collect::<Result<_>>()?;
    let q = s.profile.predictive.quantile;
    let predicted = model.predict_quantile(&x, q)?;
    let step = Duration::from_secs(inputs.series.step().secs()).unwrap_or_default();
    let checked = s
        .profile
        .sla_band(step, &predicts(&loaded.summary.name, model))?;
    let start = SimStart {
        sized: s.profile.pool.min_nodes,
        lead: Duration::from_secs(checked.pool().lead_secs()).unwrap_or_default(),
        operations: s.profile.pool.operations(),
    };
    let (target, before) = open_or_reuse(s, inputs, reuse, start)?;
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
        target,
        before,
        decided: Decided {
            decision,
            fell_back: false,
            by_alarm: false,
            set_aside: Vec::new(),
        },
        explanation,
        control: None,
        forecast: None,
        capacity_per_node: None,
        metric: model.target.clone(),
        current: predicted,
        past_origins: None,
    })
}

/// What a regression model predicts from what (for errors).
pub(crate) fn predicts(name: &str, model: &RegressionModel) -> String {
    format!(
        "model '{name}' predicts '{}' from {}",
        model.target,
        model.inputs.join(", ")
    )
}

/// A policy without a model: the alarm rule (on the metric or on
/// utilisation), target tracking or seasonal naive; the last action times
/// and the ready counts persist in the state file, so a run every minute
/// behaves like a continuously evaluating rule.
fn reactive_plan(
    s: &ScaleSettings,
    inputs: &Inputs,
    kind: PolicyKind,
    reuse: Option<Box<dyn crate::core::group::NodeGroup>>,
) -> Result<Planned> {
    let metric = source::choose_metric(
        s.data.metric.as_deref(),
        inputs.series.names(),
        crate::ingest::Format::Csv,
    )?;
    let y = column(inputs, &metric, "the policy")?;
    let on_metric = on_metric(s, kind);
    let per_node = if on_metric {
        Capacity::new(1.0).expect("positive")
    } else {
        match (kind, s.profile.pool.capacity) {
            (PolicyKind::ReactiveThreshold, CapacitySource::P999Nodes(_)) if s.target.is_arm() => {
                bail!("--alarm-on utilisation needs --capacity-per-node")
            }
            _ => capacity(s, y, &metric)?,
        }
    };
    let lead = reactive_lead(s);
    let pool: CheckedPool = s.profile.pool.checked(per_node, lead)?;
    let control = controller(s, kind, &pool)?;
    let current = *y.last().expect("not empty");
    let start = SimStart {
        // Sized for the load, as the backtest starts every policy. An alarm
        // on the metric plans without a capacity per node, but a fresh
        // simulated pool still starts at the capacity the backtest sizes
        // and scores with (a real target has its own size).
        sized: if on_metric {
            match capacity(s, y, &metric) {
                Ok(c) if !s.target.is_arm() => {
                    sized_for(&s.profile.pool.checked(c, lead)?, current).get()
                }
                _ => s.profile.pool.min_nodes,
            }
        } else {
            sized_for(&pool, current).get()
        },
        lead,
        operations: s.profile.pool.operations(),
    };
    let (target, before) = open_or_reuse(s, inputs, reuse, start)?;
    let memory = memory(inputs, &before);
    let known = Known {
        step: inputs.series.step(),
        demand: y,
        forecast: None,
        error_ratio: None,
        calibration: None,
        future: &[],
    };
    let decided = control::decide(&control, &known, &before, &memory, inputs.now);
    let explanation = decided.decision.reasons().iter().map(explain).collect();
    Ok(Planned {
        target,
        before,
        decided,
        explanation,
        control: Some((control, memory)),
        forecast: None,
        capacity_per_node: (!on_metric).then_some(per_node.per_node()),
        metric,
        current,
        past_origins: None,
    })
}

/// The target answered 412: it changed between reading and writing.
fn changed_under_us(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<GroupError>()
            .is_some_and(|g| g.kind == GroupErrorKind::Changed)
    })
}

/// Apply the decision unless there is nothing to do, it must be held, or it
/// is a dry run.
fn conclude(s: &ScaleSettings, p: &mut Planned) -> Result<Concluded> {
    let planned = p.decided.decision.nodes().get();
    let wanted = Wanted::Count {
        nodes: planned,
        recommended: p.decided.decision.recommended().get(),
        fell_back: p.decided.fell_back,
    };
    let rules = WriteRules {
        dry_run: s.run.dry_run,
        refuse_autoscaler: s.on_autoscaler == AutoscalerMode::Refuse,
    };
    let mut c = Concluded {
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
            c.outcome = outcome;
            c.held_because = held_because;
        }
        BeforeWrite::Write => {
            let group = p.target.group();
            let first = group.set_count(&p.before, planned);
            match after_write(p.before.count, planned, &first) {
                AfterWrite::Done(outcome) => {
                    c.outcome = outcome;
                    c.after = first.ok();
                }
                AfterWrite::Retry {
                    nodes,
                    short_of_plan,
                } => {
                    let why = first.err().map(|e| e.to_string()).unwrap_or_default();
                    let applied = group
                        .set_count(&p.before, nodes)
                        .map_err(anyhow::Error::new)
                        .with_context(|| {
                            format!(
                                "setting {} to {nodes} nodes (as far as the quota allows, after: {why})",
                                group.describe()
                            )
                        })?;
                    c.outcome = Outcome::Limited;
                    c.after = Some(applied);
                    c.short_of_plan = Some(short_of_plan);
                }
                AfterWrite::Failed(e) => {
                    return Err(anyhow::Error::new(e)
                        .context(format!("setting {} to {planned} nodes", group.describe())))
                }
            }
        }
    }
    Ok(c)
}

/// Move the controller's memory on with what really happened and keep it
/// (with the simulated pool, for a simulated target), unless this is a dry run.
fn remember(s: &ScaleSettings, p: &mut Planned, c: &Concluded, inputs: &Inputs) -> Result<()> {
    if s.run.dry_run {
        return Ok(());
    }
    let mut state = inputs.state.clone().unwrap_or_default();
    if let Some((control, memory)) = &p.control {
        let mut memory = memory.clone();
        let step = inputs.series.step();
        control::remember(
            control,
            &mut memory,
            &p.decided,
            c.outcome,
            &p.before,
            step,
            inputs.now,
        );
        state.memory = memory;
    } else if inputs.state.is_none() && !matches!(p.target, CountTarget::Sim(_)) {
        // Nothing to keep: no memory, and a real target keeps its own count.
        return Ok(());
    }
    if let CountTarget::Sim(pool) = &p.target {
        state.sim_target = Some(pool.clone());
    }
    state.past_origins = p.past_origins.take();
    inputs::save_state(s, &state)
}

/// The record of a run: appended to the decision log and returned.
fn finish(
    s: &ScaleSettings,
    mut planned: Planned,
    concluded: Concluded,
    inputs: &Inputs,
    t0: Instant,
) -> Result<(i32, ScaleRecord)> {
    let series = &inputs.series;
    let newest = series.time_at(series.len() - 1);
    let d = &planned.decided;
    tracing::debug!(
        before = planned.before.count,
        ready = ?planned.before.ready,
        planned = d.decision.nodes().get(),
        recommended = d.decision.recommended().get(),
        fell_back = d.fell_back,
        by_alarm = d.by_alarm,
        reasons = %d.decision.reasons().iter().map(|r| r.kind()).collect::<Vec<_>>().join(","),
        outcome = concluded.outcome.name(),
        "decided"
    );
    let record = ScaleRecord {
        mlscaler_version: env!("CARGO_PKG_VERSION"),
        now: rfc3339(inputs.now),
        target: planned.target.group().describe(),
        dry_run: s.run.dry_run,
        outcome: concluded.outcome,
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
        decision: planned.decided.decision,
        explanation: planned.explanation,
        after: concluded.after,
        held_because: concluded.held_because,
        short_of_plan: concluded.short_of_plan,
        duration_secs: t0.elapsed().as_secs_f64(),
    };
    inputs::append_record(s, &record)?;
    Ok((record.outcome.exit_code(), record))
}
