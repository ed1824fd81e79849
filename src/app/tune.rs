//! `mlscaler tune`: choose the scaling policy and its parameters on a
//! history ([`crate::core::sim::tune`]): forecast the tuning window
//! walk-forward once, replay every candidate's planner on it in parallel,
//! pick, write the profile, and score the choice on the held-back rest as
//! `backtest --config` replays it.

use super::backtest::{load_trace, replay_params, LoadedTrace};
use super::{exit, ui, write_atomic};
use crate::core::plan::control::{Datapoints, NodeControl};
use crate::core::plan::{CheckedPolicy, PolicyKind, Strategy};
use crate::core::sim::backtest::{
    forecast_tape, run_backtest, BacktestReport, CheckedBacktest, Tape, Trace,
};
use crate::core::sim::pool::{sized_for, PolicyMetrics};
use crate::core::sim::tune::{self, Candidate, Objective, Replayed, Scored};
use crate::core::time::rfc3339;
use crate::report::tune::{HeldBack, TuneSummary, Window};
use crate::settings::profile::{AlarmOn, Fallback, PoolProfile, ScalingProfile};
use crate::settings::tune::TuneSettings;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::time::Instant;

/// A candidate ready to replay.
struct Prepared {
    candidate: Candidate,
    profile: ScalingProfile,
    control: NodeControl,
    /// Its signal group in the tape (predictive candidates).
    group: Option<usize>,
}

/// Run `tune`.
pub fn run(s: &TuneSettings, quiet: bool) -> Result<(i32, TuneSummary)> {
    let t0 = Instant::now();
    let mut seconds = BTreeMap::new();
    let LoadedTrace {
        src,
        metric,
        trace,
        calendar,
        ..
    } = load_trace(&s.data, quiet)?;
    let n = trace.demand().len();
    let split = ((n as f64 * s.tune_fraction).ceil() as usize).clamp(1, n - 1);
    let (capacity, capacity_source) =
        super::backtest::capacity_of(s.profile.pool.capacity, trace.demand())?;
    let lead = s
        .profile
        .pool
        .lead_time
        .unwrap_or(PoolProfile::DEFAULT_LEAD);
    let base = replay_params(
        &s.profile,
        &s.walk_forward,
        lead,
        0.0,
        &[PolicyKind::Predictive],
        capacity,
    )
    .check(trace.step())
    .context("tune settings")?;
    let score_from = base.warmup_steps();
    if score_from + 1 >= split {
        bail!(
            "the tuning window ({} steps, --tune-fraction {}) is not longer than the warm-up ({score_from} steps, --warmup): give a longer history or a shorter warm-up",
            split,
            s.tune_fraction
        );
    }
    let mut candidates = prepare(s, &base)?;
    let groups = groups(&mut candidates);
    seconds.insert("ingest".into(), t0.elapsed().as_secs_f64());

    let t1 = Instant::now();
    let pb = ui::progress_bar(quiet, split as u64, "forecasting");
    let mut progress = |done: usize, total: usize| {
        pb.set_length(total as u64);
        pb.set_position(done as u64);
    };
    let tape = forecast_tape(
        &trace,
        &base,
        calendar.as_ref(),
        &groups,
        split,
        &mut progress,
    );
    pb.finish_and_clear();
    seconds.insert("forecast".into(), t1.elapsed().as_secs_f64());

    let t2 = Instant::now();
    let replay = Replay {
        trace: &trace,
        tape: &tape,
        split,
        score_from,
        s,
        base: &base,
    };
    let (scored, objective, objective_source) = replay.score(&candidates)?;
    seconds.insert("replay".into(), t2.elapsed().as_secs_f64());

    let block = block_name(trace.step(), split - score_from);
    let choice = tune::choose(&scored, &objective, block).context("no candidate to choose from")?;
    tracing::info!(
        candidates = scored.len(),
        meet_objective = scored.iter().filter(|c| c.feasible).count(),
        validated = choice.validation.validated,
        margin = choice.validation.margin,
        chosen = %scored[choice.index].label,
        why = %choice.why,
        "tune chose"
    );
    let chosen = &candidates[choice.index];
    let kind = chosen.candidate.kind();
    let profile_text = format!(
        "# Chosen by `mlscaler tune` on {} ({} .. {}): {}\npolicy = \"{}\"\n{}",
        src.location,
        rfc3339(trace.start()),
        rfc3339(trace.start() + (split as i64 - 1) * trace.step().secs()),
        choice.why.replace('\n', " "),
        kind.name(),
        chosen.profile.to_toml()
    );

    let t3 = Instant::now();
    let held_back = held_back(
        s,
        &chosen.profile,
        kind,
        &trace,
        calendar.as_ref(),
        split,
        capacity,
        quiet,
    )?;
    seconds.insert("held_back".into(), t3.elapsed().as_secs_f64());

    let mut summary = TuneSummary {
        source: src.location.clone(),
        metric,
        capacity_source,
        tuning_window: window(&trace, score_from, split),
        objective,
        objective_source,
        block: block.into(),
        candidates: scored,
        choice,
        policy: kind.name().to_string(),
        profile: profile_text,
        held_back,
        files: BTreeMap::new(),
        seconds,
    };
    write_outputs(s, &mut summary)?;
    super::finish(&mut summary, s.report.as_deref(), t0)?;
    Ok((exit::OK, summary))
}

/// What the tuning window's blocks are ([`tune::block_steps`]).
fn block_name(step: crate::core::time::Step, scored_steps: usize) -> &'static str {
    if tune::block_steps(step, scored_steps) as i64 * step.secs() >= 7 * 86_400 {
        "week"
    } else {
        "day"
    }
}

/// The profile and the plot, each written whole or not at all (the report
/// comes last, with the total time).
fn write_outputs(s: &TuneSettings, summary: &mut TuneSummary) -> Result<()> {
    write_atomic(&s.out, summary.profile.as_bytes())?;
    summary
        .files
        .insert("profile".into(), s.out.display().to_string());
    if let Some(p) = &s.plot {
        write_atomic(p, crate::report::tune::plot(summary).as_bytes())?;
        summary.files.insert("plot".into(), p.display().to_string());
    }
    Ok(())
}

/// Every candidate of the grid as a profile and a controller on `base`'s pool.
fn prepare(s: &TuneSettings, base: &CheckedBacktest) -> Result<Vec<Prepared>> {
    let pool = base.pool();
    let mut out: Vec<Prepared> = Vec::new();
    // The grid, and the reactive rule exactly as the profile sets it (kept
    // when the choosing rule does not hold up on the history).
    for candidate in tune::grid()
        .into_iter()
        .chain([Candidate::ConfiguredThreshold])
    {
        let profile = s.profile.with_candidate(&candidate);
        let kind = candidate.kind();
        let fallback = (kind == PolicyKind::Predictive
            && profile.predictive.fallback == Fallback::Alarm)
            .then(|| profile.strategy(PolicyKind::ReactiveThreshold, pool))
            .transpose()?;
        let control = NodeControl {
            strategy: profile.strategy(kind, pool)?,
            fallback,
            datapoints: datapoints(&profile),
        };
        out.push(Prepared {
            candidate,
            profile,
            control,
            group: None,
        });
    }
    Ok(out)
}

/// The signal groups (one per quantile and calibration the predictive
/// candidates use: what the signals read), with each candidate's group set.
fn groups(candidates: &mut [Prepared]) -> Vec<CheckedPolicy> {
    let mut groups: Vec<CheckedPolicy> = Vec::new();
    let key = |p: &CheckedPolicy| {
        (
            p.quantile().to_bits(),
            p.calibration()
                .map(|c| (c.quantile.to_bits(), c.window_secs)),
        )
    };
    for c in candidates.iter_mut() {
        if let Strategy::Predictive(p) = &c.control.strategy {
            let at = match groups.iter().position(|g| key(g) == key(p)) {
                Some(i) => i,
                None => {
                    groups.push(p.clone());
                    groups.len() - 1
                }
            };
            c.group = Some(at);
        }
    }
    groups
}

fn datapoints(p: &ScalingProfile) -> Datapoints {
    match p.alarm.on {
        AlarmOn::Utilisation => Datapoints::Utilisation,
        AlarmOn::Metric => Datapoints::Metric,
    }
}

fn oracle_control(base: &CheckedBacktest, s: &TuneSettings) -> NodeControl {
    let ops = s.profile.pool.operations();
    NodeControl {
        strategy: Strategy::Oracle(crate::core::plan::CheckedOracle::with_operations(
            base.pool(),
            ops.scale_out_secs.max(ops.scale_in_secs),
        )),
        fallback: None,
        datapoints: datapoints(&s.profile),
    }
}

fn reactive_control(
    s: &TuneSettings,
    base: &CheckedBacktest,
    kind: PolicyKind,
) -> Result<NodeControl> {
    Ok(NodeControl {
        strategy: s.profile.strategy(kind, base.pool())?,
        fallback: None,
        datapoints: datapoints(&s.profile),
    })
}

/// The objective: as given, with the operations limit of target tracking
/// (the profile's) on the tuning window unless one was given.
fn objective(s: &TuneSettings, tracking: &PolicyMetrics, hours: f64) -> (Objective, String) {
    if s.max_ops_given {
        return (s.objective, "--max-operations-per-hour".into());
    }
    let ops = if hours > 0.0 {
        tracking.actions as f64 / hours
    } else {
        0.0
    };
    (
        Objective {
            max_ops_per_hour: Some(ops.max(f64::MIN_POSITIVE)),
            ..s.objective
        },
        "as many as target tracking runs on the tuning window".into(),
    )
}

/// Replays over the tuning window.
struct Replay<'a> {
    trace: &'a Trace,
    tape: &'a Tape,
    split: usize,
    score_from: usize,
    s: &'a TuneSettings,
    base: &'a CheckedBacktest,
}

impl Replay<'_> {
    fn one(&self, control: &NodeControl, group: Option<usize>) -> Replayed {
        let demand = self.trace.demand();
        tune::replay(
            control,
            self.tape,
            group,
            demand,
            self.split,
            sized_for(self.base.pool(), demand[0]),
            self.s.profile.pool.operations(),
            self.score_from,
        )
    }

    /// Every candidate replayed and scored against the objective, with the
    /// oracle's node-hours as the scale of cost and target tracking's
    /// operations as the default limit; the objective and where it came from.
    fn score(&self, candidates: &[Prepared]) -> Result<(Vec<Scored>, Objective, String)> {
        let metrics = self.all(candidates);
        let oracle = self.one(&oracle_control(self.base, self.s), None);
        let tracking = self.one(
            &reactive_control(self.s, self.base, PolicyKind::TargetTracking)?,
            None,
        );
        let hours =
            (self.split - self.score_from) as f64 * self.trace.step().secs() as f64 / 3600.0;
        let (objective, source) = objective(self.s, &tracking.metrics, hours);
        let scored = candidates
            .iter()
            .zip(&metrics)
            .map(|(c, m)| {
                Scored::new(
                    c.candidate.clone(),
                    m,
                    hours,
                    Some(oracle.metrics.node_hours),
                    &objective,
                )
            })
            .collect();
        Ok((scored, objective, source))
    }

    /// Every candidate, on as many threads as the machine has cores.
    fn all(&self, candidates: &[Prepared]) -> Vec<Replayed> {
        let next = std::sync::atomic::AtomicUsize::new(0);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut results: Vec<Option<Replayed>> = vec![None; candidates.len()];
        let chunks: Vec<Vec<(usize, Replayed)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let mut done = Vec::new();
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(c) = candidates.get(i) else {
                                break;
                            };
                            done.push((i, self.one(&c.control, c.group)));
                        }
                        done
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a replay does not panic"))
                .collect()
        });
        for (i, m) in chunks.into_iter().flatten() {
            results[i] = Some(m);
        }
        results
            .into_iter()
            .map(|m| m.expect("every candidate was replayed"))
            .collect()
    }
}

/// The choice replayed over the whole history as `backtest --config` replays
/// it, scored on the held-back part, with the starting profile's reactive
/// rules and the oracle.
#[allow(clippy::too_many_arguments)]
fn held_back(
    s: &TuneSettings,
    chosen: &ScalingProfile,
    kind: PolicyKind,
    trace: &Trace,
    calendar: Option<&crate::core::forecast::calendar::Calendar>,
    split: usize,
    capacity: crate::core::plan::Capacity,
    quiet: bool,
) -> Result<HeldBack> {
    let n = trace.demand().len();
    let from = split as f64 / n as f64;
    let lead = |p: &ScalingProfile| p.pool.lead_time.unwrap_or(PoolProfile::DEFAULT_LEAD);
    let run = |p: &ScalingProfile, kinds: &[PolicyKind]| -> Result<BacktestReport> {
        let checked = replay_params(p, &s.walk_forward, lead(p), from, kinds, capacity)
            .check(trace.step())
            .context("held-back replay")?;
        let pb = ui::progress_bar(quiet, n as u64, "held back");
        let mut progress = |done: usize, total: usize| {
            pb.set_length(total as u64);
            pb.set_position(done as u64);
        };
        let bt = run_backtest(trace, &checked, calendar, &mut progress)?;
        pb.finish_and_clear();
        Ok(bt.report)
    };
    let a = run(chosen, &[kind, PolicyKind::Oracle])?;
    let b = run(
        &s.profile,
        &[
            PolicyKind::ReactiveThreshold,
            PolicyKind::TargetTracking,
            PolicyKind::Oracle,
        ],
    )?;
    let oracle = a.policy(PolicyKind::Oracle).map(|m| m.node_hours);
    let with_ratio = |m: &PolicyMetrics| {
        let mut m = m.clone();
        m.node_hours_vs_oracle = oracle.filter(|h| *h > 0.0).map(|h| m.node_hours / h);
        m
    };
    Ok(HeldBack {
        window: Window {
            from: rfc3339(a.scored_from),
            to: rfc3339(a.scored_to),
            steps: a.scored_steps,
        },
        chosen: with_ratio(a.policy(kind).context("the chosen policy ran")?),
        baselines: b
            .policies
            .iter()
            .filter(|m| m.policy != PolicyKind::Oracle)
            .map(with_ratio)
            .chain(a.policy(PolicyKind::Oracle).cloned())
            .collect(),
    })
}

fn window(trace: &Trace, from: usize, to: usize) -> Window {
    let step = trace.step().secs();
    Window {
        from: rfc3339(trace.start() + from as i64 * step),
        to: rfc3339(trace.start() + (to as i64 - 1) * step),
        steps: to - from,
    }
}
