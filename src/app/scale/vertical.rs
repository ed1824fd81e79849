//! `scale --policy vertical`: move a VM scale set one VM size up or down a
//! ladder on memory pressure ([`crate::core::plan::vertical`]), then roll the
//! instances onto the new size as its upgrade policy says, through the
//! target ([`crate::arm::VmssSize`]).
//!
//! With `--target sim` the scale set is simulated
//! ([`crate::core::sim::vertical::SimScaleSet`], kept in the state file
//! between runs) exactly as `backtest --mode vertical` simulates it: the
//! metric is then the memory demand (GiB per unit: `--memory-per-unit`), the
//! utilisation is that demand over the memory of the size in effect, and a
//! resize is in effect one lead time later. A run per step makes the
//! backtest's decisions (tests/equivalence.rs).
//!
//! With `--model`, the forecast the policy plans for is the highest forecast
//! of the metric at the profile's quantile over the lead time
//! ([`forecast_peak`]), which `backtest --mode vertical --model` takes at
//! every step of its replay.

use super::inputs::{self, Lookback};
use crate::app::source::{self, DataSource};
use crate::core::forecast::model::ForecastModel;
use crate::core::group::GroupState;
use crate::core::group::NodeGroup;
use crate::core::plan::outcome::{before_write, BeforeWrite, Outcome, Wanted, WriteRules};
use crate::core::plan::vertical::{forecast_peak, plan_vertical, VerticalDecision, VerticalParams};
use crate::core::sim::vertical::{builtin_memory_gib, fitting_size, ladder_memory, SimScaleSet};
use crate::core::time::{rfc3339, Step};
use crate::report::scale::VerticalRecord;
use crate::settings::scale::ScaleSettings;
use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};

const LADDER_NEEDED: &str = "--policy vertical needs --ladder, the VM sizes from smallest to largest, e.g. Standard_D2s_v5,Standard_D4s_v5,Standard_D8s_v5";

/// The scale set a vertical run resizes, once its ladder is known to exist.
fn target(s: &ScaleSettings) -> Result<crate::arm::VmssId> {
    let id = inputs::vmss_target(
        s,
        "vertical",
        "an AKS node pool cannot change its VM size in place: create a new pool with the larger size, cordon and drain the old one's nodes, then delete it (scale the pool by count with --policy predictive or alarm)",
    )?;
    if s.profile.vertical.ladder.is_empty() {
        bail!(LADDER_NEEDED);
    }
    Ok(id)
}

/// What a vertical run reads before it reads the target.
struct Read {
    series: crate::core::forecast::series::LoadSeries,
    now: i64,
    metric: String,
    memory_gib: Option<Vec<f64>>,
    params: crate::core::plan::vertical::CheckedVertical,
    /// The forecast peak of the metric over the lead time
    /// ([`forecast_peak`]), or why the model gave none.
    forecast_peak: Result<f64, String>,
}

impl Read {
    fn forecast(&self) -> Option<f64> {
        self.forecast_peak.as_ref().ok().copied()
    }
}

/// Run the vertical policy once: on the scale set `--target` names, or on
/// the simulated one of `--target sim`.
pub fn run(s: &ScaleSettings, clock: DateTime<Utc>, quiet: bool) -> Result<(i32, VerticalRecord)> {
    if let Some(per_unit) = s.memory_per_unit {
        return run_sim(s, per_unit, clock, quiet);
    }
    let id = target(s)?;
    run_arm(s, id, read(s, clock, quiet)?)
}

/// The recent data, the checked settings and the forecast of a run.
fn read(s: &ScaleSettings, clock: DateTime<Utc>, quiet: bool) -> Result<Read> {
    let v = &s.profile.vertical;
    let src = DataSource::resolve(s.data.location.as_deref(), &s.data.storage)?;
    // With a model, the data is read at the model's step.
    let model = match &s.model {
        Some(name) => Some((name, inputs::latest_forecaster(s, name)?.1)),
        None => None,
    };
    let opts = match &model {
        Some((_, m)) => inputs::read_options_for(s, m)?,
        None => s.data.read.clone(),
    };
    let lookback = lookback(s, opts.step, model.as_ref().map(|(_, m)| m));
    let (series, now) = inputs::recent(s, &src, &opts, lookback, quiet, clock)?;
    let metric = source::choose_metric(
        s.data.metric.as_deref(),
        series.names(),
        crate::ingest::Format::Csv,
    )?;
    series.column(&metric).map_err(|_| {
        anyhow::anyhow!(
            "{}: no metric '{metric}' (the data has: {})",
            src.location,
            series.names().join(", ")
        )
    })?;
    // The memory of each size, when given or known: guards moves down.
    let memory_gib = if !v.ladder_memory.is_empty()
        || v.ladder
            .iter()
            .all(|size| builtin_memory_gib(size).is_some())
    {
        Some(ladder_memory(&v.ladder, &v.ladder_memory).context("--ladder-memory")?)
    } else {
        None
    };
    let params = VerticalParams {
        ladder: v.ladder.clone(),
        high: v.memory_high,
        low: v.memory_low,
        window: series.step().steps_ceil(v.memory_window.secs()),
        memory_gib: memory_gib.clone(),
    }
    .check()
    .context("vertical settings")?;
    // The forecast peak of the memory metric over the lead time, when a
    // model is named: at the profile's quantile, as the backtest takes it.
    // A forecast that cannot be made is not an error: the run decides on
    // the observed memory alone, as its backtest does at such a step.
    let lead_steps = series.step().steps_ceil(lead_secs(s)).max(1);
    let forecast_peak = match &model {
        None => Err(String::new()),
        Some((name, m)) => m
            .forecast(&series)
            .map_err(|e| format!("forecasting {metric} with model '{name}': {e}"))
            .and_then(|f| {
                forecast_peak(&f, lead_steps, s.profile.predictive.quantile).ok_or_else(|| {
                    format!(
                        "the model '{name}' forecasts {} steps, not the {lead_steps} of the lead time, or a value that is not a number",
                        f.horizon()
                    )
                })
            }),
    };
    if let (Some(_), Err(e)) = (&model, &forecast_peak) {
        tracing::warn!("{e}: deciding on the observed memory alone");
    }
    Ok(Read {
        series,
        now,
        metric,
        memory_gib,
        params,
        forecast_peak,
    })
}

/// The ARM path of [`run`]: read the scale set, decide, write.
fn run_arm(s: &ScaleSettings, id: crate::arm::VmssId, read: Read) -> Result<(i32, VerticalRecord)> {
    let memory = read.series.column(&read.metric).expect("checked when read");
    let (client, rt) = inputs::arm_client(s)?;
    let mut target = crate::arm::VmssSize::new(client, id.clone(), rt);
    let state = target
        .read()
        .map_err(anyhow::Error::new)
        .with_context(|| format!("reading {id}"))?;
    let size = state.vm_size.clone().unwrap_or_default();
    let decision = plan_vertical(
        &read.params,
        &size,
        memory,
        read.forecast(),
        state.is_idle(),
    );
    let rules = WriteRules {
        dry_run: s.run.dry_run,
        refuse_autoscaler: false,
    };
    let mut actions = Vec::new();
    let mut failure: Option<crate::core::group::GroupError> = None;
    let wanted = Wanted::Change(matches!(decision, VerticalDecision::Resize { .. }));
    let outcome = match (before_write(&wanted, &state, rules), &decision) {
        (BeforeWrite::End { outcome, .. }, _) => outcome,
        (BeforeWrite::Write, VerticalDecision::Resize { to, .. }) => {
            // The size first, then (Manual policy) the instances: when the
            // upgrade fails the new size stays set, recorded with the error.
            match target.set_vm_size(&state, to) {
                Ok(done) => {
                    actions = done.actions;
                    Outcome::Applied
                }
                Err((done, e)) => {
                    actions = done.actions;
                    failure = Some(e);
                    Outcome::Failed
                }
            }
        }
        (BeforeWrite::Write, VerticalDecision::Hold { .. }) => Outcome::NothingToDo,
    };
    let done = Done {
        outcome,
        actions,
        failure,
    };
    finish(s, read, id.to_string(), &state, decision, done)
}

/// What a run did to its target.
struct Done {
    outcome: Outcome,
    /// What was sent (or, simulated, done).
    actions: Vec<String>,
    /// Why a write failed.
    failure: Option<crate::core::group::GroupError>,
}

/// The record of a run on `target` as `state` was before it: appended to the
/// decision log and returned with its exit code.
fn finish(
    s: &ScaleSettings,
    read: Read,
    target: String,
    state: &GroupState,
    decision: VerticalDecision,
    done: Done,
) -> Result<(i32, VerticalRecord)> {
    let memory = read.series.column(&read.metric).expect("checked when read");
    let forecast_peak = read.forecast();
    let record = VerticalRecord {
        mlscaler_version: env!("CARGO_PKG_VERSION"),
        now: rfc3339(read.now),
        target,
        dry_run: s.run.dry_run,
        outcome: done.outcome,
        memory_now: *memory.last().expect("not empty"),
        memory_per_unit: s.memory_per_unit,
        metric: read.metric,
        forecast_peak,
        forecast_error: match (&s.model, read.forecast_peak) {
            (Some(_), Err(e)) => Some(e),
            _ => None,
        },
        size_before: state.vm_size.clone().unwrap_or_default(),
        ladder_memory_gib: read.memory_gib,
        provisioning_state: state.provisioning_state.clone(),
        upgrade_policy: state
            .upgrade_policy
            .clone()
            .unwrap_or_else(|| "Manual".into()),
        decision,
        actions: done.actions,
        error: done.failure.as_ref().map(ToString::to_string),
        error_class: done.failure.as_ref().map(|e| e.kind.name()),
    };
    inputs::append_record(s, &record)?;
    Ok((done.outcome.exit_code(), record))
}

/// The simulated path of [`run`] (`--target sim`): the scale set the last
/// run left in the state file, or a new one at the ladder's size that fits
/// the newest demand read; every step of the data after its newest observed
/// one is observed in order, then it decides at the newest step, as the
/// backtest decides at each. A dry run keeps nothing.
fn run_sim(
    s: &ScaleSettings,
    per_unit: f64,
    clock: DateTime<Utc>,
    quiet: bool,
) -> Result<(i32, VerticalRecord)> {
    let v = &s.profile.vertical;
    if v.ladder.is_empty() {
        bail!(LADDER_NEEDED);
    }
    let read = read(s, clock, quiet)?;
    let (series, now) = (&read.series, read.now);
    let memory_gib = read.memory_gib.clone().context(
        "--policy vertical --target sim needs the memory of every size on --ladder: give --ladder-memory, or sizes the built-in table knows (e.g. Standard_D4s_v5)",
    )?;
    let step = series.step();
    let lead_secs = lead_secs(s);
    if lead_secs < step.secs() && !s.profile.pool.round_lead_up {
        bail!(
            "--lead-time {} is shorter than the step of the data ({}): a resize would be rolled out before the next datapoint; pass --round-lead-up to count it as one step, or use finer data",
            crate::core::time::format_duration_secs(lead_secs),
            crate::core::time::format_duration_secs(step.secs())
        );
    }
    let lead = step.steps_ceil(lead_secs).max(1) as i64 * step.secs();
    let window = step.steps_ceil(v.memory_window.secs());
    let demand = series.column(&read.metric).expect("checked when read");
    let ladder: Vec<String> = v.ladder.iter().map(|l| l.trim().to_string()).collect();
    let kept = inputs::load_state(s)?;
    let mut set = match kept.as_ref().and_then(|k| k.sim_scale_set.clone()) {
        Some(set) if set.ladder() == ladder.as_slice() => set,
        Some(set) => bail!(
            "{}: the simulated scale set kept there moves along {}, not --ladder {}: remove the state file to start a new one",
            s.run.state,
            set.ladder().join(","),
            ladder.join(",")
        ),
        // A new one at the size that fits the newest demand, as the backtest
        // starts its set at the demand of its first decision (`--start`).
        None => {
            let newest = (0..demand.len())
                .rev()
                .filter(|&i| series.start() + i as i64 * step.secs() <= now)
                .map(|i| demand[i])
                .find(|d| d.is_finite())
                .context("no memory demand datapoint at or before the run's time")?;
            SimScaleSet::new(
                ladder.clone(),
                fitting_size(&memory_gib, v.memory_high, newest * per_unit),
            )
        }
    };
    for (i, d) in demand.iter().enumerate() {
        let t = series.start() + i as i64 * step.secs();
        if t <= now && set.newest().is_none_or(|newest| t > newest) {
            set.observe(t, d * per_unit, &memory_gib, window);
        }
    }
    let at = set
        .newest()
        .context("no memory demand datapoint at or before the run's time")?;
    let size_before = set.size().to_string();
    let state = GroupState {
        provisioning_state: if set.is_idle() {
            "Succeeded"
        } else {
            "Updating"
        }
        .into(),
        vm_size: Some(size_before.clone()),
        upgrade_policy: Some("Automatic".into()),
        ..GroupState::idle(0)
    };
    let decision = set.decide(
        &read.params,
        &memory_gib,
        at,
        read.forecast().map(|f| f * per_unit),
        lead,
    );
    let rules = WriteRules {
        dry_run: s.run.dry_run,
        refuse_autoscaler: false,
    };
    let wanted = Wanted::Change(matches!(decision, VerticalDecision::Resize { .. }));
    let (outcome, actions) = match (before_write(&wanted, &state, rules), &decision) {
        (BeforeWrite::End { outcome, .. }, _) => (outcome, Vec::new()),
        (BeforeWrite::Write, VerticalDecision::Resize { to, .. }) => (
            Outcome::Applied,
            vec![format!(
                "set the simulated scale set's VM size to {to}, in effect at {}",
                rfc3339(at + lead)
            )],
        ),
        (BeforeWrite::Write, VerticalDecision::Hold { .. }) => (Outcome::NothingToDo, Vec::new()),
    };
    if !s.run.dry_run {
        let mut keep = kept.unwrap_or_default();
        keep.sim_scale_set = Some(set);
        inputs::save_state(s, &keep)?;
    }
    let done = Done {
        outcome,
        actions,
        failure: None,
    };
    finish(
        s,
        read,
        "simulated scale set".into(),
        &state,
        decision,
        done,
    )
}

/// The lead time: a resize asked now is in effect this long after.
fn lead_secs(s: &ScaleSettings) -> i64 {
    s.profile
        .pool
        .lead_time
        .unwrap_or(crate::settings::profile::PoolProfile::DEFAULT_LEAD)
        .secs()
}

/// What the round reads before the newest step at `step` (`None`: known
/// only from the data): the memory window's datapoints and the forecast's
/// history.
fn lookback(s: &ScaleSettings, step: Option<Step>, model: Option<&ForecastModel>) -> Lookback {
    match step {
        Some(step) => Lookback::Steps(
            step.steps_ceil(s.profile.vertical.memory_window.secs())
                .saturating_sub(1)
                .max(model.map_or(0, |m| m.spec.warmup())),
        ),
        None => Lookback::All,
    }
}
