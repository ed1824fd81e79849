//! What every `scale` round reads and writes around its decision: the model,
//! the recent load as of `now`, the target, the planner's memory and the
//! decision log.

use crate::app::source::{self, DataSource, ReadOptions};
use crate::app::storage;
use crate::arm::{ArmClient, ArmConfig, Blocking, TargetId};
use crate::core::forecast::model::ForecastModel;
use crate::core::forecast::series::LoadSeries;
use crate::core::group::NodeGroup;
use crate::core::plan::control::ControlMemory;
use crate::core::plan::NodeCount;
use crate::core::sim::pool::{Operations, SimPool};
use crate::core::time::{rfc3339, Duration, Step};
use crate::ingest::TimeRange;
use crate::report::scale::ModelSummary;
use crate::settings::scale::{Now, ScaleSettings, TargetSpec};
use crate::store::artifact::{ArtifactPayload, Model};
use crate::store::card::ModelCard;
use crate::store::registry::{Registry, RegistryError};
use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::io::Write as _;

/// The moment the demo (no --target, no --data) plans at: a busy evening of
/// the bundled WorldCup98 sample, so the plan has something to do.
pub const DEMO_NOW: &str = "1998-06-30T18:40:00Z";

/// A published model and where it came from.
pub struct LoadedModel {
    pub card: ModelCard,
    pub model: Model,
    pub summary: ModelSummary,
}

/// The latest version of the model `name` (for the demo, trained on the
/// bundled sample first when there is none).
pub fn load_model(s: &ScaleSettings, name: &str, quiet: bool) -> Result<LoadedModel> {
    let store = storage::open_models(&s.models, &s.data.storage)?;
    let registry = Registry::new(store.as_ref());
    let (pointer, payload): (_, ArtifactPayload) = match registry.load_latest(name) {
        Ok(found) => found,
        Err(RegistryError::NoModel { .. }) if s.is_demo() => {
            if !quiet {
                eprintln!(
                    "note: no model '{name}' in {} yet: training one on the bundled sample first",
                    registry.location()
                );
            }
            train_demo_model(&s.models)?;
            registry.load_latest(name)?
        }
        Err(e) => return Err(e.into()),
    };
    let summary = ModelSummary {
        name: name.to_string(),
        id: payload.card.id.clone(),
        created_at: payload.card.created_at.clone(),
        location: format!("{}/{}", registry.location(), pointer.artifact),
    };
    Ok(LoadedModel {
        card: payload.card,
        model: payload.model,
        summary,
    })
}

/// The latest version of the forecast model `name`.
pub fn latest_forecaster(s: &ScaleSettings, name: &str) -> Result<(ModelCard, ForecastModel)> {
    let loaded = load_model(s, name, true)?;
    let Model::Forecast(m) = loaded.model else {
        bail!("model '{name}' is not a forecast model")
    };
    Ok((loaded.card, m))
}

/// The model's name: `--model`, else the metric (as `train` names it), else
/// `count` for the bundled sample.
pub fn model_name(s: &ScaleSettings, src: &DataSource) -> Result<String> {
    match (&s.model, &s.data.metric) {
        (Some(m), _) | (None, Some(m)) => Ok(m.clone()),
        (None, None) if src.location == source::SAMPLE_NAME => Ok("count".into()),
        (None, None) => {
            bail!("which model? pass --model NAME (or --metric, the name `train` gave it)")
        }
    }
}

/// The read options of the run, at the step of `model` (a different --step is an error).
pub fn read_options_for(s: &ScaleSettings, model: &ForecastModel) -> Result<ReadOptions> {
    let mut opts = s.data.read.clone();
    let step = model.spec.step();
    if let Some(other) = opts.step.filter(|o| *o != step) {
        bail!(
            "--step {other} differs from the model's step {step}; the data is read at the model's step"
        );
    }
    opts.step = Some(step);
    Ok(opts)
}

/// How much of the history a round reads before its newest step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookback {
    /// All of it: the decision depends on the whole history (a capacity
    /// from the 99.9th percentile of the load), or the step is known only
    /// once the data is read.
    All,
    /// This many steps before the newest one, at the step of the read
    /// options: what the decision reads (model lags, rolling windows and
    /// seasons, the drift and calibration windows, the policy's own windows).
    Steps(usize),
}

/// The time range a round reads when `--since` is not given, for a decision
/// that reads `steps` steps before the newest one at `step`: from that many
/// steps plus `margin_secs` (rounded up to whole steps) before the step that
/// holds `now`, to the end of that step (the newest one a round plans from;
/// with the clock as `now` nothing later exists). Both ends step-aligned, so
/// every step in the range holds the same observations as in the whole
/// history.
pub fn recent_range(now: i64, step: Step, steps: usize, margin_secs: i64) -> TimeRange {
    let bucket = step.floor(now);
    let back = (steps + step.steps_ceil(margin_secs)) as i64 * step.secs();
    TimeRange {
        since: Some(bucket - back),
        until: Some(bucket + step.secs() - 1),
    }
}

/// The margin [`recent`] reads before what the decision needs: the newest
/// data may be `--max-data-age` old and still be planned from, a gap of up
/// to `--max-gap` across the start of the range is filled in the whole
/// history but starts the range's series after it, and one step more.
fn range_margin_secs(s: &ScaleSettings, opts: &ReadOptions, step: Step) -> i64 {
    s.profile.predictive.max_data_age.secs() + opts.max_gap_secs + step.secs()
}

/// The recent load as of `now` (`--now`, the demo moment, or the clock):
/// the data up to then only, so a replay sees what a live run would have.
///
/// Without `--since`, and when the decision's `lookback` and `now` are known
/// before reading (not with `--now data-end`), only the [`recent_range`]
/// is read: partitions, Parquet row groups and rows outside it are skipped.
/// If what the range holds is not enough for the decision (data older than
/// the margin, a longer gap at its start), the whole history is read
/// instead, so the decision never depends on the range.
pub fn recent(
    s: &ScaleSettings,
    src: &DataSource,
    opts: &ReadOptions,
    lookback: Lookback,
    quiet: bool,
    clock: DateTime<Utc>,
) -> Result<(LoadSeries, i64)> {
    let now = match s.run.now {
        Now::DataEnd => None,
        Now::At(t) => Some(t),
        Now::Clock if s.is_demo() => {
            let t = crate::ingest::timestamp::parse_timestamp(DEMO_NOW).expect("a valid constant");
            if !quiet {
                eprintln!("note: demo: planning as of {DEMO_NOW} in the bundled sample (a busy evening of the 1998 World Cup), not the clock");
            }
            Some(t)
        }
        Now::Clock => Some(clock.timestamp()),
    };
    let ranged = match (now, lookback, opts.step, opts.since) {
        (Some(now), Lookback::Steps(steps), Some(step), None) => {
            let range = recent_range(now, step, steps, range_margin_secs(s, opts, step));
            let mut ranged = opts.clone();
            ranged.since = range.since;
            ranged.until = opts.until.or(range.until);
            Some((ranged, steps))
        }
        _ => None,
    };
    if let Some((ranged, steps)) = ranged {
        tracing::debug!(range = %ranged.range(), steps, "reading the recent window the decision needs");
        match source::load(src, &ranged) {
            Ok(loaded) => {
                let (series, now) = up_to_now(loaded.series, now)?;
                if series.len() > steps {
                    return Ok((series, now));
                }
                tracing::info!(
                    range = %ranged.range(),
                    have = series.len().saturating_sub(1),
                    need = steps,
                    "the recent window holds too little before its newest step: reading the whole history"
                );
            }
            Err(e) if source::NothingInRange::is_cause_of(&e) => {
                tracing::info!(range = %ranged.range(), "no data in the recent window: reading the whole history");
            }
            Err(e) => return Err(e),
        }
    }
    let loaded = source::load(src, opts)?;
    up_to_now(loaded.series, now)
}

/// The steps of `series` up to `now` (`None`: its newest step), and `now`.
fn up_to_now(series: LoadSeries, now: Option<i64>) -> Result<(LoadSeries, i64)> {
    let now = now.unwrap_or_else(|| series.time_at(series.len() - 1));
    let known = (0..series.len())
        .take_while(|&i| series.time_at(i) <= now)
        .count();
    if known == 0 {
        bail!(
            "--now {} is before the first step of the data ({})",
            rfc3339(now),
            rfc3339(series.start())
        );
    }
    Ok((series.head(known), now))
}

/// The ARM client of the run (credential, endpoint, extra root) and the
/// runtime it must be used on.
pub fn arm_client(s: &ScaleSettings) -> Result<(ArmClient, Blocking)> {
    use crate::azure::credential::{AuthSettings, AUTHORITY_HOST_ENV, CA_CERT_ENV};
    let a = &s.arm;
    // Flags win over the environment (clap has already read the same variables into them).
    let lookup = |k: &str| -> Option<String> {
        let flag = match k {
            crate::arm::client::ENDPOINT_ENV => a.endpoint.clone(),
            AUTHORITY_HOST_ENV => a.authority_host.clone(),
            CA_CERT_ENV => a.ca_cert.as_ref().map(|p| p.display().to_string()),
            _ => None,
        };
        flag.or_else(|| std::env::var(k).ok())
    };
    let config = ArmConfig::from_lookup(lookup)?;
    let auth = AuthSettings::from_lookup(lookup);
    Ok((ArmClient::connect(config, a.auth, &auth)?, Blocking::new()?))
}

/// What a node-count round scales: a simulated pool (kept in the state
/// file between runs), or an AKS pool / scale set by count.
pub enum CountTarget {
    Sim(SimPool),
    Arm(Box<dyn NodeGroup>),
}

impl CountTarget {
    /// The target behind the one interface.
    pub fn group(&mut self) -> &mut dyn NodeGroup {
        match self {
            CountTarget::Sim(p) => p,
            CountTarget::Arm(g) => g.as_mut(),
        }
    }
}

/// How a simulated pool starts when the state file holds none.
pub struct SimStart {
    /// Its count when no `sim:N` was given.
    pub sized: u32,
    pub lead: Duration,
    pub operations: Operations,
}

/// The node-count target at `now`: for `--target sim`, the simulated pool
/// the last run left in the state file (advanced to `now`), or a new one
/// sized as `start` says; for `sim:N`, a new pool of N nodes; else the AKS
/// pool or scale set by count.
pub fn open_count_target(
    s: &ScaleSettings,
    state: &StateFile,
    start: SimStart,
    now: i64,
) -> Result<CountTarget> {
    let mut pool = match (&s.target, &state.sim_target) {
        (TargetSpec::Arm(id), _) => {
            let (client, rt) = arm_client(s)?;
            return Ok(CountTarget::Arm(crate::arm::open_group(
                client,
                id.clone(),
                rt,
                s.on_autoscaler,
            )));
        }
        // `sim:N`: a pool of N nodes now, whatever the last run left.
        (TargetSpec::Sim(Some(n)), _) => SimPool::new(NodeCount(*n), start.lead.secs()),
        (TargetSpec::Demo | TargetSpec::Sim(None), Some(kept)) => kept.clone(),
        (TargetSpec::Demo | TargetSpec::Sim(None), None) => {
            SimPool::new(NodeCount(start.sized), start.lead.secs())
        }
    }
    .with_operations(start.operations);
    pool.advance(now);
    Ok(CountTarget::Sim(pool))
}

/// The scale set of an instance or VM-size policy, or why the target cannot be one.
pub fn vmss_target(s: &ScaleSettings, policy: &str, aks_hint: &str) -> Result<crate::arm::VmssId> {
    match &s.target {
        TargetSpec::Arm(TargetId::Vmss(id)) => Ok(id.clone()),
        TargetSpec::Arm(TargetId::AgentPool(_)) => bail!("{aks_hint}"),
        _ => bail!("--policy {policy} needs --target with the ARM resource id of a VM scale set"),
    }
}

/// What a controller keeps between runs (`--state`, a file or a blob): its
/// memory and, for a simulated target, the simulated pool. A state file of
/// an earlier version (the planner's memory alone) reads as is.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct StateFile {
    #[serde(flatten)]
    pub memory: ControlMemory,
    /// The simulated pool of `--target sim`, as the last run left it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sim_target: Option<SimPool>,
}

/// The state file, or `None` when there is none yet.
pub fn load_state(s: &ScaleSettings) -> Result<Option<StateFile>> {
    let loc = &s.run.state;
    match storage::read_object(loc, &s.data.storage)? {
        Some(bytes) => serde_json::from_slice(&bytes).map(Some).with_context(|| {
            format!(
                "{}: not a planner state file (delete it to start afresh)",
                crate::store::Redacted(loc)
            )
        }),
        None => Ok(None),
    }
}

/// Replace the state file.
pub fn save_state(s: &ScaleSettings, state: &StateFile) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(state)?;
    storage::write_object(&s.run.state, &s.data.storage, &bytes)
}

/// Append the record as one JSON line: to a local file (one write call, so
/// concurrent appenders do not interleave lines), or to a blob (read, append,
/// replace: one controller per log).
pub fn append_record<T: Serialize>(s: &ScaleSettings, record: &T) -> Result<()> {
    let mut line = serde_json::to_vec(record)?;
    line.push(b'\n');
    let loc = &s.run.decisions;
    if storage::is_url(loc) {
        let mut bytes = storage::read_object(loc, &s.data.storage)?.unwrap_or_default();
        bytes.extend_from_slice(&line);
        return storage::write_object(loc, &s.data.storage, &bytes)
            .context("appending the decision record");
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(loc)
        .with_context(|| format!("{loc}: cannot open the decision log"))?;
    f.write_all(&line)
        .with_context(|| format!("{loc}: cannot append the decision record"))
}

/// The last-value baseline's MAE at the lead time in the model's evaluation.
pub fn eval_last_value_mae(card: &ModelCard, lead: i64) -> Option<f64> {
    let h = card
        .evaluation
        .per_horizon
        .get(usize::try_from(lead).ok()?.checked_sub(1)?)?;
    h.baselines
        .iter()
        .find(|b| b.name == "last_value")
        .map(|b| b.metrics.mae)
}

fn train_demo_model(models: &str) -> Result<()> {
    let settings = crate::settings::train::TrainSettings::sample(models)?;
    let (code, summary) = crate::app::train::run(&settings, Utc::now(), true)?;
    if code != crate::app::exit::OK {
        bail!(
            "the demo model was not published: {}",
            summary.card.gate.reason
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recent_range_is_step_aligned_and_ends_with_the_step_that_holds_now() {
        let step = Step::from_secs(300).unwrap();
        // 12:03:20 is in the step 12:00-12:04:59.
        let now = 1_796_040_000 + 200;
        let r = recent_range(now, step, 12, 301);
        assert_eq!(r.until, Some(1_796_040_000 + 299));
        // 12 steps the decision reads, and 301 s of margin rounded up to 2 steps.
        assert_eq!(r.since, Some(1_796_040_000 - 14 * 300));
        assert!(r.contains(now) && !r.contains(1_796_040_000 + 300));
    }
}
