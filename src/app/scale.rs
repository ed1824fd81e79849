//! `mlscaler scale`: load the newest good model and the recent load, forecast
//! over the node lead time, plan a node count under the safety policy
//! ([`crate::core::policy::plan`]) and apply it to the target. Every run
//! appends one decision record (a JSON line).

use super::source::{self, DataSource};
use super::target::{Applied, ArmGroup, GroupState, NodeGroup, SimGroup};
use super::{exit, storage};
use crate::cli::{OnAutoscaler, ScaleArgs};
use crate::core::backtest::capacity_for_p999;
use crate::core::control::{self, Prepared};
use crate::core::policy::{
    plan, sla_plan, Capacity, Decision, NodeCount, PlanInput, PlannerMemory, PoolParams, PoolState,
    PredictiveParams, Reason, SlaParams, Strategy,
};
use crate::core::time::{format_duration_secs, parse_duration_secs, rfc3339};
use crate::store::artifact::Model;
use crate::store::registry::{Registry, RegistryError};
use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::io::Write as _;
use std::time::Instant;

/// The moment the demo (no --target, no --data) plans at: a busy evening of
/// the bundled WorldCup98 sample, so the plan has something to do.
pub const DEMO_NOW: &str = "1998-06-30T18:40:00Z";

/// How a run ended, as the exit code tells a pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The target was changed (exit 0).
    Applied,
    /// `--dry-run`: a change was planned and not made (exit 0).
    WouldApply,
    /// The target already has the planned size (exit 4).
    NothingToDo,
    /// Held for safety: the target is busy, the forecast could not be trusted
    /// and the reactive rule kept the size, or an autoscaler-enabled pool was
    /// not to be touched (exit 5).
    Held,
    /// Scaled out only as far as the vCPU quota allows: the target was
    /// changed, but is short of the plan (exit 5; `short_of_plan` says why).
    Limited,
}

impl Outcome {
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Applied | Outcome::WouldApply => exit::OK,
            Outcome::NothingToDo => exit::NOTHING_TO_DO,
            Outcome::Held | Outcome::Limited => exit::HELD,
        }
    }
}

/// The recent data the forecast started from.
#[derive(Debug, Serialize)]
pub struct DataSummary {
    pub source: String,
    pub metric: String,
    pub step: String,
    pub steps: usize,
    /// Start of the newest step.
    pub newest: String,
    /// Seconds between the newest step and `now`.
    pub age_secs: i64,
    pub current_demand: f64,
}

/// The model that was used.
#[derive(Debug, Serialize)]
pub struct ModelSummary {
    pub name: String,
    pub id: String,
    pub created_at: String,
    pub location: String,
}

/// The forecast over the lead window, in load units.
#[derive(Debug, Serialize)]
pub struct ForecastSummary {
    pub lead_time: String,
    pub lead_steps: usize,
    /// Point forecast for horizons 1..=lead.
    pub points: Vec<f64>,
    /// The 10% and 90% quantiles for horizons 1..=lead.
    pub p10: Vec<f64>,
    pub p90: Vec<f64>,
    /// Recent lead-time error over the model's evaluated error (drift).
    pub error_ratio: Option<f64>,
    pub drift_samples: usize,
    pub calibration_samples: usize,
}

/// One run of `scale`: printed, and appended to the decision log.
#[derive(Debug, Serialize)]
pub struct ScaleRecord {
    pub mlscaler_version: &'static str,
    /// When the run planned (RFC 3339).
    pub now: String,
    pub target: String,
    pub dry_run: bool,
    pub outcome: Outcome,
    pub data: DataSummary,
    /// The model used (none for the alarm policy).
    pub model: Option<ModelSummary>,
    pub forecast: Option<ForecastSummary>,
    /// Units of the metric per node and step (forecast mode).
    pub capacity_per_node: Option<f64>,
    pub before: GroupState,
    pub decision: Decision,
    /// Every step of the decision, for people.
    pub explanation: Vec<String>,
    /// What the target reports after the change (not on dry runs or holds).
    pub after: Option<Applied>,
    /// Why nothing was written, when the target was not touched although the plan differed.
    pub held_because: Option<String>,
    /// Why the target is short of the plan (outcome `limited`: the vCPU quota).
    pub short_of_plan: Option<String>,
    pub duration_secs: f64,
}

/// Run `scale`. An `Err` means the target was not changed.
pub fn run(args: &ScaleArgs, clock: DateTime<Utc>, quiet: bool) -> Result<(i32, ScaleRecord)> {
    let t0 = Instant::now();
    if args.policy == "alarm" {
        return run_alarm(args, clock, quiet, t0);
    }
    let input = &args.input;
    let target_spec = resolve_target(args)?;
    let demo = target_spec.is_none() && input.data.is_none() && input.storage.container.is_none();

    // The model first: its step decides how the data is read.
    let store = storage::open_models(&args.models, &input.storage)?;
    let registry = Registry::new(store.as_ref());
    let src = DataSource::resolve(input.data.as_deref(), &input.storage)?;
    let name = match &args.model {
        Some(m) => m.clone(),
        None => default_model_name(&src, args)?,
    };
    let (pointer, payload) = match registry.load_latest(&name) {
        Ok(found) => found,
        Err(RegistryError::NoModel { .. }) if demo => {
            if !quiet {
                eprintln!(
                    "note: no model '{name}' in {} yet: training one on the bundled sample first",
                    registry.location()
                );
            }
            train_demo_model(&args.models)?;
            registry.load_latest(&name)?
        }
        Err(e) => return Err(e.into()),
    };
    let card = payload.card;
    let model_summary = ModelSummary {
        name: name.clone(),
        id: card.id.clone(),
        created_at: card.created_at.clone(),
        location: format!("{}/{}", registry.location(), pointer.artifact),
    };

    let opts = match &payload.model {
        Model::Forecast(m) => super::vertical::read_options_for(args, m)?,
        _ => source::read_options(input)?,
    };
    let (series, now) = recent(args, &src, &opts, demo, quiet, clock)?;
    let step = series.step();
    let column = |metric: &str| -> Result<&[f64]> {
        series.column(metric).map_err(|_| {
            anyhow::anyhow!(
                "{}: the model '{name}' needs '{metric}', which the data does not have (it has: {})",
                src.location,
                series.names().join(", ")
            )
        })
    };

    // Plan (and, after a 412 from a scale set that changed under us, re-read
    // and re-plan once with the group already open).
    let make_plan = |reuse: Option<Box<dyn NodeGroup>>| -> Result<Planned> {
        Ok(match &payload.model {
            Model::Forecast(model) => {
                let y = column(&model.metric)?;
                let capacity = match (args.capacity_per_node, &target_spec) {
                (Some(c), _) => Capacity::new(c).context("--capacity-per-node")?,
                (None, None | Some(TargetSpec::Sim(_))) => capacity_for_p999(y, args.p999_nodes).context("--p999-nodes")?,
                (None, Some(TargetSpec::Arm(_))) => bail!(
                    "--capacity-per-node is required for a real target: the demand one node serves at 100% utilisation, in the units of '{}' per step",
                    model.metric
                ),
            };
                let lead_secs = match &args.lead_time {
                    Some(l) => parse_duration_secs(l).context("--lead-time")?,
                    None => card.lead_steps as i64 * step.secs(),
                };
                let pool = PoolParams {
                    capacity_per_node: capacity.per_node(),
                    min_nodes: args.min_nodes,
                    max_nodes: args.max_nodes,
                    lead_secs,
                }
                .check()
                .context("pool settings")?;
                let policy = predictive_params(args)?
                    .check(&pool)
                    .context("policy settings")?;
                let drift_window =
                    parse_duration_secs(&args.drift_window).context("--drift-window")?;
                let current = *y.last().expect("a loaded series is not empty");
                let group = match reuse {
                    Some(g) => g,
                    None => open_group(
                        args,
                        &target_spec,
                        pool.clamp(capacity.nodes_for(current, 0.83)).get(),
                    )?,
                };
                // A forecast that cannot be made is not an error: the planner falls
                // back to the reactive rule and never scales in.
                let lead_steps = lead_secs / step.secs();
                let (prepared, problem) = match control::prepare(
                    model,
                    &series,
                    &policy,
                    drift_window,
                    eval_last_value_mae(&card, lead_steps),
                ) {
                    Ok(p) => (Some(p), None),
                    Err(e) => (None, Some(e.to_string())),
                };
                if let Some(p) = &problem {
                    tracing::warn!(problem = %p, "no forecast: sizing reactively on the current load");
                }
                Planned::forecast(
                    args,
                    group,
                    &policy,
                    y,
                    step,
                    now,
                    prepared,
                    problem,
                    lead_secs,
                    &model.metric,
                )?
            }
            Model::Regression(model) => {
                let x: Vec<f64> = model
                    .inputs
                    .iter()
                    .map(|i| column(i).map(|c| c[c.len() - 1]))
                    .collect::<Result<_>>()?;
                let q = args.quantile.unwrap_or(0.5);
                let predicted = model.predict_quantile(&x, q)?;
                let target = args.sla_target.with_context(|| {
                format!("model '{name}' predicts '{}' from {}: the SLA mode needs --sla-target (and --sla-threshold)", model.target, model.inputs.join(", "))
            })?;
                let pool = PoolParams {
                    capacity_per_node: 1.0,
                    min_nodes: args.min_nodes,
                    max_nodes: args.max_nodes,
                    lead_secs: step.secs(),
                }
                .check()
                .context("pool settings")?;
                let sla = SlaParams {
                    target,
                    threshold: args.sla_threshold,
                    increment: args.sla_increment,
                }
                .check(&pool)
                .context("SLA settings")?;
                let mut group = match reuse {
                    Some(g) => g,
                    None => open_group(args, &target_spec, args.min_nodes)?,
                };
                let before = group
                    .read()
                    .with_context(|| format!("reading {}", group.describe()))?;
                let decision = sla_plan(predicted, NodeCount(before.count), &sla);
                let inputs: Vec<String> = model
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
                        inputs.join(", ")
                    ),
                    explain(&decision.reasons()[0]),
                ];
                Planned {
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
                }
            }
        })
    };
    let mut planned = make_plan(None)?;
    if let (Some(path), Some(f), Some(cap)) =
        (&args.plot, &planned.forecast, planned.capacity_per_node)
    {
        let svg = plan_plot(
            &series,
            &planned.metric,
            f,
            cap,
            planned.before.count,
            planned.decision.nodes().get(),
            now,
        );
        super::write_atomic(path, svg.as_bytes())?;
    }
    let decided = match conclude(args, &mut planned, now) {
        Err(e) if is_precondition_failed(&e) => {
            tracing::warn!(error = %format!("{e:#}"), "the target changed while applying (412): re-reading and re-planning once");
            let group = std::mem::replace(&mut planned.group, Box::new(SimGroup::new(0)));
            planned = make_plan(Some(group))?;
            conclude(args, &mut planned, now)?
        }
        other => other?,
    };
    finish(
        args,
        planned,
        decided,
        now,
        &src,
        &series,
        Some(model_summary),
        t0,
    )
}

/// The record of a run: appended to the decision log and returned.
#[allow(clippy::too_many_arguments)]
fn finish(
    args: &ScaleArgs,
    planned: Planned,
    decided: Decided,
    now: i64,
    src: &DataSource,
    series: &crate::core::series::LoadSeries,
    model: Option<ModelSummary>,
    t0: Instant,
) -> Result<(i32, ScaleRecord)> {
    let newest = series.time_at(series.len() - 1);
    let record = ScaleRecord {
        mlscaler_version: env!("CARGO_PKG_VERSION"),
        now: rfc3339(now),
        target: planned.group.describe(),
        dry_run: args.dry_run,
        outcome: decided.outcome,
        data: DataSummary {
            source: src.location.clone(),
            metric: planned.metric,
            step: series.step().to_string(),
            steps: series.len(),
            newest: rfc3339(newest),
            age_secs: now - newest,
            current_demand: planned.current,
        },
        model,
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
    append_record(args, &record)?;
    Ok((record.outcome.exit_code(), record))
}

/// `scale --every`: run [`run`] on a schedule until SIGTERM/SIGINT (checked
/// between rounds, so a round always finishes its writes) or `--rounds`.
/// Each round's record goes to `report`; a failed round is logged and does
/// not stop the loop. Exit code: 0, or 1 if the last round failed.
pub fn run_loop(
    args: &ScaleArgs,
    quiet: bool,
    mut report: impl FnMut(&super::round::Record),
) -> Result<i32> {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    let every =
        parse_duration_secs(args.every.as_deref().unwrap_or_default()).context("--every")?;
    if every < 1 {
        bail!("--every should be at least 1s, but is {every} s");
    }
    let jitter = match args.jitter.trim() {
        "0" | "0s" | "none" => 0,
        j => parse_duration_secs(j).context("--jitter")?,
    };
    if args.now.is_some() {
        bail!("--now replays one moment; it cannot be combined with --every");
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing the signal handler")?;
    }
    tracing::info!(
        every_secs = every,
        jitter_secs = jitter,
        "loop mode: reconciling on a schedule until SIGTERM/SIGINT"
    );
    let mut pacer = super::schedule::RealPacer::new();
    let ended = super::schedule::run_rounds(
        std::time::Duration::from_secs(every as u64),
        std::time::Duration::from_secs(jitter.max(0) as u64),
        args.rounds,
        &stop,
        &mut pacer,
        |round| match super::round::run(args, Utc::now(), quiet) {
            Ok((code, record)) => {
                // Per-round outcomes (nothing to do, held, failed part way) are
                // in the logs and records; the loop itself goes on.
                tracing::info!(round, outcome = %record.outcome(), "round done");
                report(&record);
                code != exit::FAILED
            }
            Err(e) => {
                tracing::error!(round, error = %format!("{e:#}"), "round failed; the next round runs as planned");
                if !quiet {
                    eprintln!("round {round} failed: {e:#}");
                }
                false
            }
        },
    );
    let (round, failed) = (ended.rounds, ended.failed);
    let last_code = if ended.last_failed {
        exit::FAILED
    } else {
        exit::OK
    };
    let how = if ended.by_signal {
        "on a signal"
    } else {
        "after the last round"
    };
    tracing::info!(rounds = round, failed, "loop stopped {how}");
    if !quiet {
        eprintln!("stopped {how} after {round} round(s), {failed} failed");
    }
    Ok(last_code)
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

impl Planned {
    #[allow(clippy::too_many_arguments)]
    fn forecast(
        args: &ScaleArgs,
        mut group: Box<dyn NodeGroup>,
        policy: &crate::core::policy::CheckedPolicy,
        y: &[f64],
        step: crate::core::time::Step,
        now: i64,
        prepared: Option<Prepared>,
        problem: Option<String>,
        lead_secs: i64,
        metric: &str,
    ) -> Result<Planned> {
        let before = group
            .read()
            .with_context(|| format!("reading {}", group.describe()))?;
        let memory = load_memory(args, now, before.count)?;
        let state = PoolState {
            requested: NodeCount(before.count),
            ready: NodeCount(before.count),
            memory,
        };
        let input = PlanInput {
            step,
            demand: y,
            utilisation: &[],
            forecast: prepared.as_ref().map(|p| &p.forecast),
            error_ratio: prepared.as_ref().and_then(|p| p.error_ratio),
            calibration: prepared.as_ref().and_then(|p| p.calibration.as_ref()),
            future: &[],
        };
        let decision = plan(&input, &state, policy, now);
        let mut explanation: Vec<String> = decision.reasons().iter().map(explain).collect();
        if let Some(p) = &problem {
            explanation.insert(0, format!("no forecast: {p}"));
        }
        let mut fell_back = decision
            .reasons()
            .iter()
            .any(|r| matches!(r, Reason::Fallback { .. }));
        let mut decision = decision;
        if fell_back && args.fallback == "alarm" {
            // The forecast was not trusted: the team's alarm rule decides instead.
            let alarm = alarm_strategy(args, policy.pool())?;
            let capacity = policy.pool().capacity().per_node();
            let datapoints = alarm_datapoints(args, y, capacity, before.count);
            decision = alarm.decide(&PlanInput::observed(step, y, &datapoints), &state, now);
            explanation.push(
                "the forecast was not used: the alarm rule decides (--fallback alarm)".into(),
            );
            explanation.extend(decision.reasons().iter().map(explain));
            fell_back = false;
        }
        let lead = policy.pool().lead_steps(step);
        let forecast = prepared.as_ref().map(|p| {
            let f = &p.forecast;
            let upto = lead.min(f.horizon());
            ForecastSummary {
                lead_time: format_duration_secs(lead_secs),
                lead_steps: lead,
                points: f.points[..upto].to_vec(),
                p10: (1..=upto).map(|h| f.quantile(h, 0.1)).collect(),
                p90: (1..=upto).map(|h| f.quantile(h, 0.9)).collect(),
                error_ratio: p.error_ratio,
                drift_samples: p.drift_samples,
                calibration_samples: p.calibration_samples,
            }
        });
        Ok(Planned {
            group,
            before,
            decision,
            explanation,
            fell_back,
            strategy: Some(Strategy::Predictive(policy.clone())),
            state: Some(state),
            forecast,
            capacity_per_node: Some(policy.pool().capacity().per_node()),
            metric: metric.to_string(),
            current: *y.last().expect("not empty"),
        })
    }
}

/// The recent load as of `now` (`--now`, the demo moment, or the clock):
/// the data up to then only, so a replay sees what a live run would have.
pub(super) fn recent(
    args: &ScaleArgs,
    src: &DataSource,
    opts: &source::ReadOptions,
    demo: bool,
    quiet: bool,
    clock: DateTime<Utc>,
) -> Result<(crate::core::series::LoadSeries, i64)> {
    let loaded = source::load(src, opts)?;
    let newest_loaded = loaded.series.time_at(loaded.series.len() - 1);
    let now = match args.now.as_deref() {
        Some("data-end") => newest_loaded,
        Some(t) => crate::ingest::timestamp::parse_timestamp(t).with_context(|| {
            format!("--now '{t}': expected RFC 3339 (e.g. 2026-11-30T12:00:00Z) or data-end")
        })?,
        None if demo => {
            let t = crate::ingest::timestamp::parse_timestamp(DEMO_NOW).expect("a valid constant");
            if !quiet {
                eprintln!("note: demo: planning as of {DEMO_NOW} in the bundled sample (a busy evening of the 1998 World Cup), not the clock");
            }
            t
        }
        None => clock.timestamp(),
    };
    let known = (0..loaded.series.len())
        .take_while(|&i| loaded.series.time_at(i) <= now)
        .count();
    if known == 0 {
        bail!(
            "--now {} is before the first step of the data ({})",
            rfc3339(now),
            rfc3339(loaded.series.start())
        );
    }
    Ok((loaded.series.head(known), now))
}

/// `--policy alarm`: M-of-N alarm rules on the metric (or on utilisation),
/// fixed steps, one cooldown; the last action times persist in the state
/// file, so a run every minute behaves like a continuously evaluating alarm.
fn run_alarm(
    args: &ScaleArgs,
    clock: DateTime<Utc>,
    quiet: bool,
    t0: Instant,
) -> Result<(i32, ScaleRecord)> {
    let input = &args.input;
    let target_spec = resolve_target(args)?;
    let src = DataSource::resolve(input.data.as_deref(), &input.storage)?;
    let opts = source::read_options(input)?;
    let (series, now) = recent(args, &src, &opts, false, quiet, clock)?;
    let metric = source::choose_metric(
        input.metric.as_deref(),
        series.names(),
        crate::ingest::Format::Csv,
    )?;
    let y = series.column(&metric).map_err(|_| {
        anyhow::anyhow!(
            "{}: no metric '{metric}' (the data has: {})",
            src.location,
            series.names().join(", ")
        )
    })?;
    let on_utilisation = args.alarm_on == "utilisation";
    let capacity = match (on_utilisation, args.capacity_per_node) {
        (true, Some(c)) => c,
        (true, None) => bail!("--alarm-on utilisation needs --capacity-per-node"),
        (false, _) => 1.0,
    };
    let pool = PoolParams {
        capacity_per_node: capacity,
        min_nodes: args.min_nodes,
        max_nodes: args.max_nodes,
        lead_secs: series.step().secs(),
    }
    .check()
    .context("pool settings")?;
    let strategy = alarm_strategy(args, &pool)?;
    let mut group = open_group(args, &target_spec, args.min_nodes)?;
    let before = group
        .read()
        .with_context(|| format!("reading {}", group.describe()))?;
    let datapoints = alarm_datapoints(args, y, capacity, before.count);
    let memory = load_memory(args, now, before.count)?;
    let state = PoolState {
        requested: NodeCount(before.count),
        ready: NodeCount(before.count),
        memory,
    };
    let decision = strategy.decide(
        &PlanInput::observed(series.step(), y, &datapoints),
        &state,
        now,
    );
    let explanation = decision.reasons().iter().map(explain).collect();
    let mut planned = Planned {
        group,
        before,
        decision,
        explanation,
        fell_back: false,
        strategy: Some(strategy),
        state: Some(state),
        forecast: None,
        capacity_per_node: on_utilisation.then_some(capacity),
        metric: metric.clone(),
        current: *y.last().expect("not empty"),
    };
    let decided = conclude(args, &mut planned, now)?;
    finish(args, planned, decided, now, &src, &series, None, t0)
}

/// The alarm rule of the `--alarm-*` flags, for `pool`.
fn alarm_strategy(args: &ScaleArgs, pool: &crate::core::policy::CheckedPool) -> Result<Strategy> {
    use crate::core::policy::ThresholdParams;
    let (out_m, out_n) = super::parse_m_of_n("alarm-out-of", &args.alarm_out_of)?;
    let (in_m, in_n) = super::parse_m_of_n("alarm-in-of", &args.alarm_in_of)?;
    let checked = ThresholdParams {
        scale_out_at: args.alarm_out_at,
        scale_out_m: out_m,
        scale_out_n: out_n,
        scale_in_at: args.alarm_in_at,
        scale_in_m: in_m,
        scale_in_n: in_n,
        step_out: super::parse_step("alarm-out-step", &args.alarm_out_step)?,
        step_in: super::parse_step("alarm-in-step", &args.alarm_in_step)?,
        cooldown_secs: parse_duration_secs(&args.alarm_cooldown).context("--alarm-cooldown")?,
    }
    .check(pool)
    .context("alarm settings")?;
    Ok(Strategy::ReactiveThreshold(checked))
}

/// The datapoints the alarms evaluate: the metric itself, or the utilisation
/// of the current nodes (the node count of earlier datapoints is not known;
/// the current one is used for all of them).
fn alarm_datapoints(args: &ScaleArgs, y: &[f64], capacity: f64, nodes: u32) -> Vec<f64> {
    if args.alarm_on == "utilisation" {
        y.iter()
            .map(|v| v / (capacity * f64::from(nodes.max(1))))
            .collect()
    } else {
        y.to_vec()
    }
}

/// ARM answered 412: the scale set's ETag changed between reading and writing.
fn is_precondition_failed(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<crate::arm::ArmError>(),
            Some(crate::arm::ArmError::PreconditionFailed { .. })
        )
    })
}

/// How the run ended.
struct Decided {
    outcome: Outcome,
    after: Option<Applied>,
    held_because: Option<String>,
    short_of_plan: Option<String>,
}

/// Apply the decision (unless it is a dry run or must be held) and move the
/// planner's memory on with what really happened.
fn conclude(args: &ScaleArgs, p: &mut Planned, now: i64) -> Result<Decided> {
    let before = &p.before;
    let planned = p.decision.nodes().get();
    let mut held_because = None;
    let mut short_of_plan = None;
    let mut after = None;
    let outcome = if planned == before.count && before.autoscaler.is_none() {
        if p.fell_back && p.decision.recommended().get() < before.count {
            Outcome::Held
        } else {
            Outcome::NothingToDo
        }
    } else if !before.is_idle() {
        held_because = Some(format!(
            "the target is {} (not Succeeded): another operation is running; nothing was sent",
            before.provisioning_state
        ));
        Outcome::Held
    } else if before.autoscaler.is_some() && args.on_autoscaler == OnAutoscaler::Refuse {
        held_because = Some(
            "the pool has the cluster autoscaler on and --on-autoscaler refuse: nothing was sent"
                .into(),
        );
        Outcome::Held
    } else if before
        .autoscaler
        .is_some_and(|(min, max)| min == planned.min(max))
    {
        Outcome::NothingToDo
    } else if args.dry_run {
        Outcome::WouldApply
    } else {
        match p.group.apply(before, planned) {
            Ok(applied) => {
                after = Some(applied);
                Outcome::Applied
            }
            Err(e) => {
                // Out of vCPU quota on a scale-out: grow as far as it allows
                // (more capacity now beats none), say so, exit 5.
                let extra = u64::from(planned.saturating_sub(before.count));
                let fit = e
                    .downcast_ref::<crate::arm::ArmError>()
                    .and_then(|a| a.quota_numbers())
                    .map_or(0, |q| q.nodes_that_fit(extra));
                if fit == 0 || fit >= extra {
                    return Err(
                        e.context(format!("setting {} to {planned} nodes", p.group.describe()))
                    );
                }
                let to = before.count + fit as u32;
                let applied = p.group.apply(before, to).with_context(|| {
                    format!(
                        "setting {} to {to} nodes (as far as the quota allows, after: {e:#})",
                        p.group.describe()
                    )
                })?;
                short_of_plan = Some(format!(
                    "the vCPU quota allows {fit} of the {extra} more nodes planned: scaled to {to}, not {planned}; ask for a quota increase ({e:#})"
                ));
                after = Some(applied);
                Outcome::Limited
            }
        }
    };
    if let (false, Some(strategy), Some(state)) = (args.dry_run, &p.strategy, &p.state) {
        let mut memory = state.memory.clone();
        let recorded = match (&p.decision, outcome) {
            (Decision::ScaleTo { .. }, Outcome::Applied | Outcome::Limited) => p.decision.clone(),
            _ => Decision::Hold {
                nodes: NodeCount(before.count),
                recommended: p.decision.recommended(),
                planned_demand: p.decision.planned_demand(),
                reasons: vec![],
            },
        };
        strategy.record(&mut memory, &recorded, now);
        save_memory(args, &memory)?;
    }
    Ok(Decided {
        outcome,
        after,
        held_because,
        short_of_plan,
    })
}

/// The last six hours of the metric, the forecast over the lead time with its
/// 10-90% band, and the capacity before and after the plan.
fn plan_plot(
    series: &crate::core::series::LoadSeries,
    metric: &str,
    f: &ForecastSummary,
    capacity: f64,
    before: u32,
    after: u32,
    now: i64,
) -> String {
    use crate::report::plot::{Band, Chart, Line};
    let step = series.step().secs();
    let y = series.column(metric).unwrap_or(&[]);
    let past = y.len().min((6 * 3600 / step.max(1)) as usize + 1);
    let n = past + f.points.len();
    let mut times = Vec::with_capacity(n);
    let (mut actual, mut point, mut lo, mut hi) = (
        vec![f64::NAN; n],
        vec![f64::NAN; n],
        vec![f64::NAN; n],
        vec![f64::NAN; n],
    );
    for (k, i) in (y.len() - past..y.len()).enumerate() {
        times.push(series.time_at(i));
        actual[k] = y[i];
    }
    // The forecast starts at the last observation, so the lines join.
    point[past - 1] = y[y.len() - 1];
    for (h, v) in f.points.iter().enumerate() {
        times.push(now + (h as i64 + 1) * step);
        point[past + h] = *v;
        lo[past + h] = f.p10[h];
        hi[past + h] = f.p90[h];
    }
    let cap_before = vec![capacity * f64::from(before); n];
    let cap_after: Vec<f64> = (0..n)
        .map(|k| {
            if k + 1 >= past {
                capacity * f64::from(after)
            } else {
                f64::NAN
            }
        })
        .collect();
    let title = format!(
        "{metric}: last 6 h, forecast over {} and capacity {before} -> {after} nodes",
        f.lead_time
    );
    Chart {
        title: &title,
        y_label: metric,
        times: &times,
        lines: vec![
            Line {
                name: "actual",
                color: "#222222",
                values: &actual,
                width: 1.2,
            },
            Line {
                name: "forecast",
                color: "#1f77b4",
                values: &point,
                width: 1.2,
            },
            Line {
                name: "capacity now",
                color: "#7f7f7f",
                values: &cap_before,
                width: 0.8,
            },
            Line {
                name: "planned capacity",
                color: "#d62728",
                values: &cap_after,
                width: 1.2,
            },
        ],
        bands: vec![Band {
            name: "10-90% forecast",
            color: "#1f77b4",
            lo: &lo,
            hi: &hi,
        }],
    }
    .to_svg()
}

/// The ARM client for `args` (credential, endpoint, extra root) and the
/// runtime it must be used on.
pub fn arm_client(args: &ScaleArgs) -> Result<(crate::arm::ArmClient, crate::arm::Blocking)> {
    use crate::arm::{ArmClient, ArmConfig, Blocking};
    use crate::azure::credential::{AuthChoice, AuthSettings, AUTHORITY_HOST_ENV, CA_CERT_ENV};
    // Flags win over the environment (clap has already read the same variables into them).
    let lookup = |k: &str| -> Option<String> {
        let flag = match k {
            crate::arm::client::ENDPOINT_ENV => args.arm_endpoint.clone(),
            AUTHORITY_HOST_ENV => args.authority_host.clone(),
            CA_CERT_ENV => args.ca_cert.as_ref().map(|p| p.display().to_string()),
            _ => None,
        };
        flag.or_else(|| std::env::var(k).ok())
    };
    let config = ArmConfig::from_lookup(lookup)?;
    let auth = AuthSettings::from_lookup(lookup);
    let choice: AuthChoice = args
        .auth
        .parse()
        .with_context(|| format!("--auth {}", args.auth))?;
    Ok((ArmClient::connect(config, choice, &auth)?, Blocking::new()?))
}

fn open_group(
    args: &ScaleArgs,
    spec: &Option<TargetSpec>,
    demo_nodes: u32,
) -> Result<Box<dyn NodeGroup>> {
    use crate::arm::{AutoscalerMode, TargetId};
    Ok(match spec {
        None => Box::new(SimGroup::new(demo_nodes)),
        Some(TargetSpec::Sim(n)) => Box::new(SimGroup::new(*n)),
        Some(TargetSpec::Arm(id)) => {
            let (client, rt) = arm_client(args)?;
            let mode = match args.on_autoscaler {
                OnAutoscaler::AdjustMin => AutoscalerMode::AdjustMinCount,
                OnAutoscaler::Refuse => AutoscalerMode::Refuse,
            };
            let vmss = matches!(id, TargetId::Vmss(_));
            Box::new(ArmGroup::new(
                crate::arm::open_group(client, id.clone(), rt),
                mode,
                vmss,
            ))
        }
    })
}

/// The last-value baseline's MAE at the lead time in the model's evaluation.
fn eval_last_value_mae(card: &crate::store::card::ModelCard, lead: i64) -> Option<f64> {
    let h = card
        .evaluation
        .per_horizon
        .get(usize::try_from(lead).ok()?.checked_sub(1)?)?;
    h.baselines
        .iter()
        .find(|b| b.name == "last_value")
        .map(|b| b.metrics.mae)
}

/// The target as given.
enum TargetSpec {
    Sim(u32),
    Arm(crate::arm::TargetId),
}

fn resolve_target(args: &ScaleArgs) -> Result<Option<TargetSpec>> {
    use crate::arm::TargetId;
    let Some(t) = args
        .target
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    else {
        // The workshop's release variables: subscription + AKS_RG + AKS_NAME (+ pool).
        return match (&args.subscription, &args.aks_resource_group, &args.aks_name) {
            (None, None, None) | (None, None, Some(_)) | (Some(_), None, None) => Ok(None),
            (Some(sub), Some(rg), Some(name)) => {
                let id = format!(
                    "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerService/managedClusters/{name}/agentPools/{}",
                    args.pool
                );
                Ok(Some(TargetSpec::Arm(TargetId::parse(&id).with_context(|| "the AKS pool from AZURE_SUBSCRIPTION_ID, AKS_RG, AKS_NAME and --pool")?)))
            }
            _ => bail!("an AKS target needs all of the subscription (--subscription / AZURE_SUBSCRIPTION_ID), AKS_RG and AKS_NAME, or --target with the pool's resource id"),
        };
    };
    if t == "sim" {
        return Ok(None);
    }
    if let Some(n) = t.strip_prefix("sim:") {
        let n: u32 = n
            .parse()
            .with_context(|| format!("--target {t}: expected sim:<nodes>"))?;
        return Ok(Some(TargetSpec::Sim(n)));
    }
    if t.starts_with("/subscriptions/") {
        return Ok(Some(TargetSpec::Arm(
            TargetId::parse(t).with_context(|| format!("--target '{t}'"))?,
        )));
    }
    bail!("--target '{t}': expected an ARM resource id of an AKS agent pool or a VM scale set, or sim / sim:<nodes>")
}

fn default_model_name(src: &DataSource, args: &ScaleArgs) -> Result<String> {
    match &args.input.metric {
        Some(m) => Ok(m.clone()),
        None if src.location == source::SAMPLE_NAME => Ok("count".into()),
        None => bail!("which model? pass --model NAME (or --metric, the name `train` gave it)"),
    }
}

fn predictive_params(args: &ScaleArgs) -> Result<PredictiveParams> {
    let dur = |flag: &str, v: &str| parse_duration_secs(v).with_context(|| format!("--{flag}"));
    let mut p = PredictiveParams::default();
    if let Some(q) = args.quantile {
        p.quantile = q;
    }
    if let Some(u) = args.target_utilisation {
        p.target_utilisation = u;
    }
    if let Some(w) = &args.scale_in_window {
        p.scale_in_stabilisation_secs = dur("scale-in-window", w)?;
    }
    if let Some(c) = &args.scale_out_cooldown {
        p.scale_out_cooldown_secs = dur("scale-out-cooldown", c)?;
    }
    if let Some(c) = &args.scale_in_cooldown {
        p.scale_in_cooldown_secs = dur("scale-in-cooldown", c)?;
    }
    p.max_step_up = args.max_step_up;
    p.max_step_down = args.max_step_down;
    p.max_forecast_age_secs = dur("max-data-age", &args.max_data_age)?;
    p.max_error_ratio = Some(args.max_error_ratio);
    if args.no_calibration {
        p.calibration = None;
    }
    Ok(p)
}

/// The planner's memory from the state file (a path or a blob URL). Without
/// one, the memory starts with the current size as a recent recommendation,
/// so the first runs never scale in before a whole stabilisation window has
/// been observed.
fn load_memory(args: &ScaleArgs, now: i64, current: u32) -> Result<PlannerMemory> {
    let loc = args.state.to_string_lossy();
    match storage::read_object(&loc, &args.input.storage)? {
        Some(bytes) => serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{}: not a planner state file (delete it to start afresh)",
                crate::store::Redacted(&loc)
            )
        }),
        None => {
            let mut m = PlannerMemory::default();
            m.recommendations.push_back((now, NodeCount(current)));
            Ok(m)
        }
    }
}

fn save_memory(args: &ScaleArgs, memory: &PlannerMemory) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(memory)?;
    storage::write_object(&args.state.to_string_lossy(), &args.input.storage, &bytes)
}

/// Append the record as one JSON line: to a local file (one write call, so
/// concurrent appenders do not interleave lines), or to a blob (read, append,
/// replace: one controller per log).
pub(super) fn append_record<T: Serialize>(args: &ScaleArgs, record: &T) -> Result<()> {
    let mut line = serde_json::to_vec(record)?;
    line.push(b'\n');
    let loc = args.decisions.to_string_lossy();
    if storage::is_url(&loc) {
        let mut bytes = storage::read_object(&loc, &args.input.storage)?.unwrap_or_default();
        bytes.extend_from_slice(&line);
        return storage::write_object(&loc, &args.input.storage, &bytes)
            .context("appending the decision record");
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&*args.decisions)
        .with_context(|| format!("{loc}: cannot open the decision log"))?;
    f.write_all(&line)
        .with_context(|| format!("{loc}: cannot append the decision record"))
}

fn train_demo_model(models: &str) -> Result<()> {
    use clap::Parser as _;
    let cli =
        crate::cli::Cli::try_parse_from(["mlscaler", "train", "--models", models, "--quiet"])?;
    let crate::cli::Command::Train(args) = cli.command else {
        unreachable!("parsed a train command")
    };
    let (code, summary) = super::train::run(&args, Utc::now(), true)?;
    if code != exit::OK {
        bail!(
            "the demo model was not published: {}",
            summary.card.gate.reason
        );
    }
    Ok(())
}

/// One planning step in words.
pub fn explain(r: &Reason) -> String {
    match r {
        Reason::Forecast {
            quantile,
            from_horizon,
            to_horizon,
            demand,
        } => {
            format!("forecast: highest q{:.0} over horizons {from_horizon}..={to_horizon} is {demand:.1}", quantile * 100.0)
        }
        Reason::Fallback { cause, demand } => format!(
            "forecast not used ({}): sizing reactively on current demand {demand:.1}",
            serde_json::to_string(cause).unwrap_or_default()
        ),
        Reason::NoDemandData => "no usable current demand".into(),
        Reason::Sized {
            demand,
            capacity,
            utilisation,
            nodes,
        } => {
            format!("sized: ceil({demand:.1} / ({capacity:.3} x {utilisation:.2})) = {nodes} nodes")
        }
        Reason::Calibrated {
            factor,
            demand,
            nodes,
        } => {
            format!("calibrated by recent errors: x{factor:.3} -> {demand:.1} at full utilisation = {nodes} nodes")
        }
        Reason::ReactiveFloor {
            demand,
            utilisation,
            nodes,
        } => {
            format!(
                "reactive floor: recent demand {demand:.1} at {utilisation:.2} needs {nodes} nodes"
            )
        }
        Reason::ClampedToMin { min } => format!("raised to the minimum of {min}"),
        Reason::ClampedToMax { max } => format!("lowered to the maximum of {max}"),
        Reason::Stabilising {
            window_secs,
            highest,
        } => {
            format!(
                "scale-in held: a recommendation of {highest} within the last {}",
                format_duration_secs(*window_secs)
            )
        }
        Reason::NoScaleInWithoutForecast => "no scale-in without a trusted forecast".into(),
        Reason::ScaleOutCooldown { remaining_secs } => {
            format!("scale-out cooldown: {remaining_secs} s left")
        }
        Reason::ScaleInCooldown { remaining_secs } => {
            format!("scale-in cooldown: {remaining_secs} s left")
        }
        Reason::StepUpLimited { max_step, wanted } => {
            format!("step up limited to {max_step} (wanted {wanted})")
        }
        Reason::StepDownLimited { max_step, wanted } => {
            format!("step down limited to {max_step} (wanted {wanted})")
        }
        Reason::SlaBand {
            predicted,
            target,
            threshold,
            change,
        } => format!(
            "SLA band {target} +- {threshold}: predicted {predicted:.3} is {}: {change:+} nodes",
            if *predicted > target + threshold {
                "above"
            } else if *predicted < target - threshold {
                "below"
            } else {
                "inside"
            }
        ),
        other => serde_json::to_string(other).unwrap_or_else(|_| other.kind().to_string()),
    }
}

/// The record as text for people: the plan as a diff, then every reason.
pub fn render_text(r: &ScaleRecord) -> String {
    let planned = r.decision.nodes().get();
    let mut out = format!(
        "{}{}: {} -> {} nodes ({})\n",
        if r.dry_run { "[dry run] " } else { "" },
        r.target,
        r.before.count,
        planned,
        match r.outcome {
            Outcome::Applied => "applied",
            Outcome::WouldApply => "would apply; nothing changed",
            Outcome::NothingToDo => "nothing to do",
            Outcome::Held => "held for safety",
            Outcome::Limited => "applied as far as the quota allows",
        }
    );
    out.push_str(&format!(
        "as of {}: {} = {:.1} (newest step {}, {} old), {}\n",
        r.now,
        r.data.metric,
        r.data.current_demand,
        r.data.newest,
        format_duration_secs(r.data.age_secs.max(0)),
        r.model
            .as_ref()
            .map_or("alarm policy (no model)".to_string(), |m| format!(
                "model {} ({})",
                m.name, m.id
            ))
    ));
    if let Some(f) = &r.forecast {
        let peak = f.points.iter().copied().fold(0.0, f64::max);
        let hi = f.p90.iter().copied().fold(0.0, f64::max);
        out.push_str(&format!(
            "forecast over the next {}: peak {:.1} (p90 {:.1}); drift {}; capacity {:.3} per node\n",
            f.lead_time,
            peak,
            hi,
            f.error_ratio.map_or("unknown".into(), |e| format!("{e:.2}x the evaluated error")),
            r.capacity_per_node.unwrap_or(f64::NAN)
        ));
    }
    for (i, e) in r.explanation.iter().enumerate() {
        out.push_str(&format!("  {}. {e}\n", i + 1));
    }
    if let Some(h) = &r.held_because {
        out.push_str(&format!("held: {h}\n"));
    }
    if let Some(a) = &r.after {
        out.push_str(&format!("applied: {}: {}\n", a.field, a.detail));
    }
    if let Some(s) = &r.short_of_plan {
        out.push_str(&format!("short of plan: {s}\n"));
    }
    out
}
