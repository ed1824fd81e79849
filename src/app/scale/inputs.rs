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
use crate::core::time::{rfc3339, Duration};
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

/// The recent load as of `now` (`--now`, the demo moment, or the clock):
/// the data up to then only, so a replay sees what a live run would have.
pub fn recent(
    s: &ScaleSettings,
    src: &DataSource,
    opts: &ReadOptions,
    quiet: bool,
    clock: DateTime<Utc>,
) -> Result<(LoadSeries, i64)> {
    let loaded = source::load(src, opts)?;
    let newest_loaded = loaded.series.time_at(loaded.series.len() - 1);
    let now = match s.run.now {
        Now::DataEnd => newest_loaded,
        Now::At(t) => t,
        Now::Clock if s.is_demo() => {
            let t = crate::ingest::timestamp::parse_timestamp(DEMO_NOW).expect("a valid constant");
            if !quiet {
                eprintln!("note: demo: planning as of {DEMO_NOW} in the bundled sample (a busy evening of the 1998 World Cup), not the clock");
            }
            t
        }
        Now::Clock => clock.timestamp(),
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
