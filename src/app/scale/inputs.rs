//! What every `scale` round reads and writes around its decision: the model,
//! the recent load as of `now`, the target, the planner's memory and the
//! decision log.
//!
//! Several controllers may share a state blob and a decision log blob: the
//! state is written only over the version that was read (ETags), and when
//! another controller wrote it in between, this run's change is applied on
//! top of theirs ([`save_state`]); the log is an append blob
//! ([`append_record`]).

use crate::app::source::{self, DataSource, ReadOptions};
use crate::app::storage;
use crate::arm::{ArmClient, ArmConfig, Blocking, TargetId};
use crate::core::forecast::model::ForecastModel;
use crate::core::forecast::series::LoadSeries;
use crate::core::group::NodeGroup;
use crate::core::plan::control::ControlMemory;
use crate::core::plan::signals::PastOrigins;
use crate::core::plan::NodeCount;
use crate::core::sim::pool::{Operations, SimPool};
use crate::core::time::{rfc3339, Duration, Step};
use crate::ingest::TimeRange;
use crate::report::scale::ModelSummary;
use crate::settings::scale::{Now, ScaleSettings, TargetSpec};
use crate::store::artifact::{ArtifactPayload, Model};
use crate::store::card::ModelCard;
use crate::store::registry::Registry;
use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::Write as _;

/// Data stamped later than the clock by more than `--max-clock-skew`: the
/// clock or the data's timestamps are wrong, and data that looks fresh may
/// not be, so the run does not plan on it.
#[derive(Debug, thiserror::Error)]
#[error("{location}: the newest data ({newest}) is {ahead} ahead of the clock ({now}), more than --max-clock-skew {max}: the clock or the data's timestamps are wrong (a time zone?), and data that looks fresh may not be; not planning on it (fix the timestamps or the clock, or raise --max-clock-skew)")]
pub struct ClockSkew {
    pub location: String,
    pub newest: String,
    pub now: String,
    pub ahead: String,
    pub max: String,
}

/// The moment the demo (no --target, no --data) plans at: a busy evening of
/// the bundled WorldCup98 sample, so the plan has something to do.
pub const DEMO_NOW: &str = "1998-06-30T18:40:00Z";

/// A published model and where it came from.
pub struct LoadedModel {
    pub card: ModelCard,
    pub model: Model,
    pub summary: ModelSummary,
}

/// The latest version of the model `name`, or the one `--model-version`
/// names (the demo's is published before the settings are built, see
/// [`crate::app::demo`]).
pub fn load_model(s: &ScaleSettings, name: &str) -> Result<LoadedModel> {
    let store = storage::open_models(&s.models, &s.data.storage)?;
    let registry = Registry::new(store.as_ref());
    let loaded = match &s.model_version {
        Some(v) => registry.load_version(name, v),
        None => registry.load_latest(name),
    };
    let (pointer, payload): (_, ArtifactPayload) = loaded?;
    tracing::debug!(
        model = name,
        id = %payload.card.id,
        created_at = %payload.card.created_at,
        kind = %payload.card.kind,
        lead_steps = payload.card.lead_steps,
        gate_passed = payload.card.gate.passed,
        from = %registry.location(),
        "model loaded"
    );
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
    let loaded = load_model(s, name)?;
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
    // A live run also uses rows a little ahead of the clock (see
    // `up_to_now`), so its range has no end: nothing later than the clock
    // exists but rows from a fast clock, and those must be seen to be judged.
    let live = s.run.now == Now::Clock && !s.is_demo();
    let ranged = match (now, lookback, opts.step, opts.since) {
        (Some(now), Lookback::Steps(steps), Some(step), None) => {
            let range = recent_range(now, step, steps, range_margin_secs(s, opts, step));
            let mut ranged = opts.clone();
            ranged.since = range.since;
            ranged.until = if live {
                opts.until
            } else {
                opts.until.or(range.until)
            };
            Some((ranged, steps))
        }
        _ => None,
    };
    if let Some((ranged, steps)) = ranged {
        tracing::debug!(range = %ranged.range(), steps, "reading the recent window the decision needs");
        match source::load(src, &ranged) {
            Ok(loaded) => {
                let (series, now) = up_to_now(s, src, loaded.series, now)?;
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
    up_to_now(s, src, loaded.series, now)
}

/// The steps of `series` up to `now` (`None`: its newest step), and `now`.
///
/// Live runs use the rows up to the clock plus the skew allowed (rows a
/// little ahead come from a source whose clock runs a little fast); data
/// further ahead is refused. Replays (`--now`, data-end) see the past only.
fn up_to_now(
    s: &ScaleSettings,
    src: &DataSource,
    series: LoadSeries,
    now: Option<i64>,
) -> Result<(LoadSeries, i64)> {
    let newest = series.time_at(series.len() - 1);
    let now = now.unwrap_or(newest);
    let mut upto = now;
    if s.run.now == Now::Clock && !s.is_demo() {
        let skew = s.run.max_clock_skew.as_secs() as i64;
        let ahead = newest - now;
        if ahead > skew {
            return Err(ClockSkew {
                location: src.location.clone(),
                newest: rfc3339(newest),
                now: rfc3339(now),
                ahead: crate::core::time::format_duration_secs(ahead),
                max: crate::core::time::format_duration_secs(skew),
            }
            .into());
        }
        if ahead > 0 {
            tracing::warn!(
                newest = %rfc3339(newest),
                now = %rfc3339(now),
                ahead_secs = ahead,
                "the newest data is ahead of the clock (within --max-clock-skew): used"
            );
        }
        upto = now + skew;
    }
    let known = (0..series.len())
        .take_while(|&i| series.time_at(i) <= upto)
        .count();
    if known < series.len() {
        tracing::info!(
            unused_steps = series.len() - known,
            now = %rfc3339(now),
            "data after --now is not used (a replay sees only the past)"
        );
    }
    if known == 0 {
        bail!(
            "--now {} is before the first step of the data ({})",
            rfc3339(now),
            rfc3339(series.start())
        );
    }
    Ok((series.head(known), now))
}

/// The ARM client of the run (credential, endpoint, trusted roots) and the
/// runtime it must be used on.
///
/// Built once per process for the same settings and shared by every round
/// of `scale --every`: the rounds reuse the TLS set-up, the pooled HTTPS
/// connection and the credential's cached token instead of paying for them
/// again each time. The round's own limits and journal are applied to the
/// shared client per round.
pub fn arm_client(s: &ScaleSettings) -> Result<(ArmClient, Blocking)> {
    let key = (s.arm.clone(), s.run.request_timeout);
    let mut slot = ARM_CONNECTION
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let cached = slot
        .as_ref()
        .filter(|(k, _, _)| *k == key)
        .map(|(_, client, rt)| (client.clone(), rt.clone()));
    let (mut client, rt) = match cached {
        Some(found) => {
            tracing::debug!("ARM client reused from an earlier round");
            found
        }
        None => {
            let made = (connect_arm(s)?, Blocking::new()?);
            *slot = Some((key, made.0.clone(), made.1.clone()));
            made
        }
    };
    drop(slot);
    // The round's limits (the longest wait, the deadline, the stop flag) and
    // its journal of writes, when run as a round of `scale`.
    if let Some(round) = super::round::current() {
        client = client.with_limits(round.limits).with_journal(round.journal);
    }
    Ok((client, rt))
}

type ArmConnection = (
    (crate::settings::scale::ArmAccess, std::time::Duration),
    ArmClient,
    Blocking,
);

/// The process's ARM client and runtime, with the settings they were made
/// for. A static is never dropped: the runtime is not torn down at exit.
static ARM_CONNECTION: std::sync::Mutex<Option<ArmConnection>> = std::sync::Mutex::new(None);

fn connect_arm(s: &ScaleSettings) -> Result<ArmClient> {
    use crate::azure::credential::{
        AuthSettings, AUTHORITY_HOST_ENV, CA_CERT_ENV, CA_CERT_MERGE_ENV,
    };
    let a = &s.arm;
    // Flags win over the environment (clap has already read the same variables into them).
    let lookup = |k: &str| -> Option<String> {
        let flag = match k {
            crate::arm::client::ENDPOINT_ENV => a.endpoint.clone(),
            AUTHORITY_HOST_ENV => a.authority_host.clone(),
            CA_CERT_ENV => a.ca_cert.as_ref().map(|p| p.display().to_string()),
            CA_CERT_MERGE_ENV => Some(a.ca_cert_merge.to_string()),
            _ => None,
        };
        flag.or_else(|| std::env::var(k).ok())
    };
    let mut config = ArmConfig::from_lookup(lookup)?;
    config.request_timeout = s.run.request_timeout;
    let auth = AuthSettings::from_lookup(lookup);
    Ok(ArmClient::connect(config, a.auth, &auth)?)
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct StateFile {
    #[serde(flatten)]
    pub memory: ControlMemory,
    /// The simulated pool of `--target sim`, as the last run left it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sim_target: Option<SimPool>,
    /// The simulated scale set of `--policy vertical --target sim`, as the
    /// last run left it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sim_scale_set: Option<crate::core::sim::vertical::SimScaleSet>,
    /// The predictive policy's past-origin results, so that the next run
    /// forecasts only the origins that are new (a cache: reused only where
    /// they are exactly what the run would compute, see
    /// [`crate::core::plan::signals::prepare_kept`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub past_origins: Option<PastOrigins>,
}

/// The state as this round last read it: where, at which version (a blob's
/// ETag; `None` when it did not exist), and what it held.
struct LoadedState {
    location: String,
    version: Option<String>,
    state: StateFile,
}

thread_local! {
    /// Set by [`load_state`], used by [`save_state`] (a round runs on one thread).
    static LOADED: RefCell<Option<LoadedState>> = const { RefCell::new(None) };
}

/// The state file (a path or a blob URL), or `None` when there is none yet.
pub fn load_state(s: &ScaleSettings) -> Result<Option<StateFile>> {
    let loc = &s.run.state;
    let (found, version) = match storage::read_versioned(loc, &s.data.storage)? {
        Some((bytes, version)) => (Some(parse_state(loc, &bytes)?), version),
        None => (None, None),
    };
    tracing::debug!(
        state = %crate::store::Redacted(loc),
        found = found.is_some(),
        version = version.as_deref().unwrap_or("-"),
        last_scale_out = ?found.as_ref().and_then(|f| f.memory.planner.last_scale_out),
        last_scale_in = ?found.as_ref().and_then(|f| f.memory.planner.last_scale_in),
        simulated_pool = found.as_ref().is_some_and(|f| f.sim_target.is_some()),
        "state read"
    );
    LOADED.with(|l| {
        *l.borrow_mut() = Some(LoadedState {
            location: loc.clone(),
            version,
            state: found.clone().unwrap_or_default(),
        })
    });
    Ok(found)
}

fn parse_state(loc: &str, bytes: &[u8]) -> Result<StateFile> {
    serde_json::from_slice(bytes).with_context(|| {
        format!(
            "{}: not a planner state file (delete it to start afresh)",
            crate::store::Redacted(loc)
        )
    })
}

/// How often a state blob written by others in between is read and merged
/// again before the run gives up.
const STATE_TRIES: usize = 8;

/// Save the state. A file is replaced. A blob is written only over the
/// version this round read: when another controller wrote it in between,
/// this round's change (its new recommendations, its action times, the
/// ready counts it saw) is applied on top of what they wrote, and written
/// over that version; nothing is ever overwritten blind.
pub fn save_state(s: &ScaleSettings, state: &StateFile) -> Result<()> {
    let loc = &s.run.state;
    if !storage::is_url(loc) {
        let bytes = serde_json::to_vec_pretty(state)?;
        storage::write_object(loc, &s.data.storage, &bytes)?;
        tracing::debug!(state = %loc, bytes = bytes.len(), "state saved");
        return Ok(());
    }
    let loaded = LOADED
        .with(|l| l.borrow_mut().take())
        .filter(|l| l.location == *loc);
    let (mut base, mut version) = match &loaded {
        Some(l) => (l.state.clone(), l.version.clone()),
        None => (StateFile::default(), None),
    };
    let mut mine = state.clone();
    for _ in 0..STATE_TRIES {
        let bytes = serde_json::to_vec_pretty(&mine)?;
        if storage::write_if(loc, &s.data.storage, &bytes, version.as_deref())? {
            tracing::debug!(state = %crate::store::Redacted(loc), bytes = bytes.len(), "state saved");
            return Ok(());
        }
        tracing::info!(
            "the state blob was written by another controller since it was read: merging"
        );
        let (theirs, now_at) = match storage::read_versioned(loc, &s.data.storage)? {
            Some((bytes, v)) => (parse_state(loc, &bytes)?, v),
            None => (StateFile::default(), None),
        };
        mine = rebase(&base, &mine, &theirs);
        base = theirs;
        version = now_at;
    }
    bail!(
        "{}: the state blob kept changing under this run ({STATE_TRIES} tries): other controllers write it too often",
        crate::store::Redacted(loc)
    )
}

/// This run's change to the state (from `base` to `mine`) applied on top of
/// `theirs`: the action times are the later of both; the recommendations
/// and the ready counts seen are theirs plus those this run added, in time
/// order; a simulated pool is this run's.
pub fn rebase(base: &StateFile, mine: &StateFile, theirs: &StateFile) -> StateFile {
    let mut out = theirs.clone();
    let (p, m, b) = (
        &mut out.memory.planner,
        &mine.memory.planner,
        &base.memory.planner,
    );
    p.last_scale_out = p.last_scale_out.max(m.last_scale_out);
    p.last_scale_in = p.last_scale_in.max(m.last_scale_in);
    p.recommendations = merged(
        &b.recommendations,
        &m.recommendations,
        &p.recommendations,
        |r| (r.0, r.1.get()),
    );
    out.memory.ready = merged(
        &base.memory.ready,
        &mine.memory.ready,
        &out.memory.ready,
        |r| *r,
    );
    if mine.sim_target.is_some() {
        out.sim_target = mine.sim_target.clone();
    }
    if mine.past_origins.is_some() {
        out.past_origins = mine.past_origins.clone();
    }
    out
}

/// `theirs` plus what `mine` added to `base`, in time order.
fn merged<T: Copy + PartialEq>(
    base: &VecDeque<T>,
    mine: &VecDeque<T>,
    theirs: &VecDeque<T>,
    key: impl Fn(&T) -> (i64, u32),
) -> VecDeque<T> {
    let added = mine
        .iter()
        .filter(|r| !base.contains(r) && !theirs.contains(r));
    let mut all: Vec<T> = theirs.iter().copied().collect();
    all.extend(added.copied());
    all.sort_by_key(|r| key(r));
    all.into_iter().collect()
}

/// Append the record as one JSON line: to a local file (one write call, so
/// concurrent appenders do not interleave lines), or to an append blob (one
/// atomic block per record, so concurrent controllers lose no line).
pub fn append_record<T: Serialize>(s: &ScaleSettings, record: &T) -> Result<()> {
    let mut line = serde_json::to_vec(record)?;
    line.push(b'\n');
    let loc = &s.run.decisions;
    if storage::is_url(loc) {
        return storage::append_object(loc, &s.data.storage, &line)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::plan::PlannerMemory;

    fn memory(out: Option<i64>, recs: &[(i64, u32)]) -> StateFile {
        let mut s = StateFile::default();
        s.memory.planner = PlannerMemory {
            last_scale_out: out,
            last_scale_in: None,
            recommendations: recs.iter().map(|(t, n)| (*t, NodeCount(*n))).collect(),
        };
        s
    }

    #[test]
    fn a_run_s_change_to_the_state_is_applied_on_top_of_a_concurrent_one() {
        // Both read the state at time 100; they write at 160 and 170.
        let base = memory(None, &[(100, 12)]);
        let mine = memory(Some(160), &[(100, 12), (160, 27)]);
        let theirs = memory(None, &[(100, 12), (170, 24)]);
        let merged = rebase(&base, &mine, &theirs);
        assert_eq!(merged.memory.planner.last_scale_out, Some(160));
        let recs: Vec<(i64, u32)> = merged
            .memory
            .planner
            .recommendations
            .iter()
            .map(|(t, n)| (*t, n.get()))
            .collect();
        assert_eq!(recs, vec![(100, 12), (160, 27), (170, 24)]);
        // Applying the same change twice changes nothing more.
        assert_eq!(rebase(&base, &mine, &merged), merged);
        // What they trimmed stays trimmed; what this run trimmed is theirs to keep.
        let theirs = memory(Some(150), &[(170, 24)]);
        let merged = rebase(&base, &mine, &theirs);
        assert_eq!(merged.memory.planner.last_scale_out, Some(160));
        assert_eq!(merged.memory.planner.recommendations.len(), 2);
    }

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
