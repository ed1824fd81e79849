//! `scale --policy vertical`: move a VM scale set one VM size up or down a
//! ladder on memory pressure ([`crate::core::plan::vertical`]), then roll the
//! instances onto the new size as its upgrade policy says, through the
//! target ([`crate::arm::VmssSize`]).

use super::inputs::{self, Lookback};
use crate::app::source::{self, DataSource};
use crate::core::forecast::model::ForecastModel;
use crate::core::group::NodeGroup;
use crate::core::plan::outcome::{before_write, BeforeWrite, Outcome, Wanted, WriteRules};
use crate::core::plan::vertical::{plan_vertical, VerticalDecision, VerticalParams};
use crate::core::sim::vertical::{builtin_memory_gib, ladder_memory};
use crate::core::time::{rfc3339, Step};
use crate::report::scale::VerticalRecord;
use crate::settings::scale::ScaleSettings;
use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};

/// The scale set a vertical run resizes, once its ladder is known to exist.
fn target(s: &ScaleSettings) -> Result<crate::arm::VmssId> {
    let id = inputs::vmss_target(
        s,
        "vertical",
        "an AKS node pool cannot change its VM size in place: create a new pool with the larger size, cordon and drain the old one's nodes, then delete it (scale the pool by count with --policy predictive or alarm)",
    )?;
    if s.profile.vertical.ladder.is_empty() {
        bail!("--policy vertical needs --ladder, the VM sizes from smallest to largest, e.g. Standard_D2s_v5,Standard_D4s_v5,Standard_D8s_v5");
    }
    Ok(id)
}

/// Run the vertical policy once.
pub fn run(s: &ScaleSettings, clock: DateTime<Utc>, quiet: bool) -> Result<(i32, VerticalRecord)> {
    let id = target(s)?;
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
    let memory = series.column(&metric).map_err(|_| {
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
    // A forecast of the memory metric, when a model is named.
    let forecast_peak = match &model {
        None => None,
        Some((name, m)) => {
            let f = m
                .forecast(&series)
                .with_context(|| format!("forecasting {metric} with model '{name}'"))?;
            Some(f.points.iter().copied().fold(f64::NEG_INFINITY, f64::max))
        }
    };
    let (client, rt) = inputs::arm_client(s)?;
    let mut target = crate::arm::VmssSize::new(client, id.clone(), rt);
    let state = target
        .read()
        .map_err(anyhow::Error::new)
        .with_context(|| format!("reading {id}"))?;
    let size = state.vm_size.clone().unwrap_or_default();
    let upgrade = state
        .upgrade_policy
        .clone()
        .unwrap_or_else(|| "Manual".into());
    let decision = plan_vertical(&params, &size, memory, forecast_peak, state.is_idle());
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
    let record = VerticalRecord {
        mlscaler_version: env!("CARGO_PKG_VERSION"),
        now: rfc3339(now),
        target: id.to_string(),
        dry_run: s.run.dry_run,
        outcome,
        metric,
        memory_now: *memory.last().expect("not empty"),
        forecast_peak,
        size_before: size,
        ladder_memory_gib: memory_gib,
        provisioning_state: state.provisioning_state.clone(),
        upgrade_policy: upgrade,
        decision,
        actions,
        error: failure.as_ref().map(ToString::to_string),
        error_class: failure.as_ref().map(|e| e.kind.name()),
    };
    inputs::append_record(s, &record)?;
    Ok((outcome.exit_code(), record))
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
