//! The settings of `mlscaler backtest`, checked: what to replay, which
//! policies, the scaling profile they run with (the same as `scale`'s), the
//! walk-forward retraining, and what to write.

use super::data::DataSettings;
use super::profile::ScalingProfile;
use super::{nonzero, positive, utilisation, Result, SettingsError};
use crate::cli::{BacktestArgs, BacktestMode};
use crate::core::plan::PolicyKind;
use crate::core::sim::jobs::JobPolicy;
use crate::core::sim::vertical::VerticalPolicy;
use crate::core::time::Duration;
use std::path::PathBuf;
use std::str::FromStr;

/// What the backtest simulates and which policies it compares.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// A pool scaled by node count (`--data` is the load).
    Nodes(Vec<PolicyKind>),
    /// A scale set scaled instance by instance for a job queue (`--data` is a job trace).
    Jobs(Vec<JobPolicy>),
    /// A scale set moved along a ladder of VM sizes (`--data` is memory demand).
    Vertical(Vec<VerticalPolicy>),
    /// The SLA band on a published regression model's prediction (`--data`
    /// holds the model's inputs).
    Sla,
}

/// The model's walk-forward retraining in a replay.
#[derive(Debug, Clone, PartialEq)]
pub struct WalkForward {
    /// History before the first model is trained.
    pub warmup: Duration,
    /// Retrain this often, each time on the data strictly before that point.
    pub retrain_every: Duration,
    /// Train on only this much recent history (`None`: all of it).
    pub train_window: Option<Duration>,
    /// Replay this published model instead of retraining.
    pub model: Option<String>,
    /// The registry holding `model`.
    pub models: String,
    /// The version of `model` to replay (`None`: the latest).
    pub model_version: Option<String>,
    /// The controller's first decision (epoch seconds); `None`: the first row.
    pub start: Option<i64>,
}

/// Which policy's plan `--plan-out` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanPolicy {
    /// Every policy, one after the other.
    All,
    /// One policy, by its report name.
    One(String),
}

/// The jobs replay's simulated scheduler and scale set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JobsReplay {
    /// A deallocated instance is ready this long after a start.
    pub start_lead_time: Duration,
    /// The controller runs this often.
    pub decision_every: Duration,
    /// Nodes per job when the trace does not say.
    pub nodes_per_job: u32,
}

/// The vertical replay's memory scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VerticalReplay {
    /// GiB per unit of the metric (`None`: from `p999_fill`).
    pub memory_per_unit: Option<f64>,
    /// The share of the largest size that the 99.9th percentile fills.
    pub p999_fill: f64,
}

/// Everything `backtest` needs, checked.
#[derive(Debug, Clone)]
pub struct BacktestSettings {
    pub data: DataSettings,
    pub mode: Mode,
    pub profile: ScalingProfile,
    pub walk_forward: WalkForward,
    /// Score from this fraction of the trace on.
    pub score_from: f64,
    pub plan_out: Option<PathBuf>,
    pub plan_policy: PlanPolicy,
    pub report: Option<PathBuf>,
    pub plot: Option<PathBuf>,
    pub jobs: JobsReplay,
    pub vertical: VerticalReplay,
}

impl BacktestSettings {
    /// From the command line.
    pub fn from_args(a: &BacktestArgs) -> Result<BacktestSettings> {
        let mode = match a.mode {
            BacktestMode::Nodes => Mode::Nodes(policies(&a.policy, &PolicyKind::ALL)?),
            BacktestMode::Jobs => Mode::Jobs(policies(&a.policy, &JobPolicy::ALL)?),
            BacktestMode::Vertical => Mode::Vertical(policies(&a.policy, &VerticalPolicy::ALL)?),
            BacktestMode::Sla => sla_mode(a)?,
        };
        if !(a.score_from >= 0.0 && a.score_from < 1.0) {
            return Err(SettingsError::invalid(
                "score-from",
                a.score_from,
                "the scored part should start inside the trace: 0 <= fraction < 1",
            ));
        }
        let plan_policy = match a.plan_policy.as_deref().map(str::trim) {
            Some("all") => PlanPolicy::All,
            Some(one) => PlanPolicy::One(one.to_string()),
            None => match &mode {
                Mode::Nodes(kinds) if kinds.len() == 1 => {
                    PlanPolicy::One(kinds[0].name().to_string())
                }
                Mode::Nodes(_) => PlanPolicy::One("predictive".into()),
                Mode::Jobs(_) | Mode::Vertical(_) | Mode::Sla => PlanPolicy::All,
            },
        };
        Ok(BacktestSettings {
            data: DataSettings::from_args(&a.input)?,
            mode,
            profile: ScalingProfile::from_args(&a.profile)?,
            walk_forward: WalkForward {
                warmup: nonzero("warmup", a.warmup)?,
                retrain_every: nonzero("retrain-every", a.retrain_every)?,
                train_window: a
                    .train_window
                    .map(|w| nonzero("train-window", w))
                    .transpose()?,
                model: a.model.clone().filter(|m| !m.trim().is_empty()),
                models: a.models.clone(),
                model_version: model_version(a)?,
                start: a
                    .start
                    .as_deref()
                    .map(|t| {
                        crate::ingest::timestamp::parse_timestamp(t.trim()).ok_or_else(|| {
                            SettingsError::invalid(
                                "start",
                                t,
                                "expected RFC 3339, e.g. 1998-07-01T00:00:00Z",
                            )
                        })
                    })
                    .transpose()?,
            },
            score_from: a.score_from,
            plan_out: a.plan_out.clone(),
            plan_policy,
            report: a.report.clone(),
            plot: a.plot.clone(),
            jobs: JobsReplay {
                start_lead_time: nonzero("start-lead-time", a.jobs.start_lead_time)?,
                decision_every: nonzero("decision-every", a.jobs.decision_every)?,
                nodes_per_job: super::at_least_one("nodes-per-job", a.jobs.nodes_per_job)?,
            },
            vertical: VerticalReplay {
                memory_per_unit: a
                    .vertical
                    .memory_per_unit
                    .map(|m| positive("memory-per-unit", m))
                    .transpose()?,
                p999_fill: utilisation("p999-fill", a.vertical.p999_fill)?,
            },
        })
    }

    /// The lead time replayed: the profile's, or 10 minutes.
    pub fn lead_time(&self) -> Duration {
        self.profile
            .pool
            .lead_time
            .unwrap_or(super::profile::PoolProfile::DEFAULT_LEAD)
    }
}

/// `--policy`: `all`, or a list of the mode's policy names.
fn policies<P>(names: &[String], all: &[P]) -> Result<Vec<P>>
where
    P: FromStr<Err = String> + Copy + PartialEq,
{
    if names.iter().any(|n| n.trim() == "all") {
        return Ok(all.to_vec());
    }
    let mut out: Vec<P> = Vec::new();
    for n in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let p = n
            .parse::<P>()
            .map_err(|e| SettingsError::invalid("policy", n, e))?;
        if !out.contains(&p) {
            out.push(p);
        }
    }
    if out.is_empty() {
        return Err(SettingsError::invalid("policy", "", "no policy to run"));
    }
    Ok(out)
}

/// `--mode sla`: one policy (the band), on a published model.
fn sla_mode(a: &BacktestArgs) -> Result<Mode> {
    let named = a.policy.iter().map(|p| p.trim()).filter(|p| !p.is_empty());
    if let Some(other) = named
        .into_iter()
        .find(|p| *p != "all" && *p != crate::core::sim::sla::SLA_POLICY)
    {
        return Err(SettingsError::invalid(
            "policy",
            other,
            "the SLA mode replays one policy: sla_band",
        ));
    }
    if a.model.as_deref().is_none_or(|m| m.trim().is_empty()) {
        return Err(SettingsError::Combination(
            "--mode sla replays a published regression model: give --model NAME (train --kind regression)".into(),
        ));
    }
    Ok(Mode::Sla)
}

/// `--model-version`: checked, and only with `--model`.
fn model_version(a: &BacktestArgs) -> Result<Option<String>> {
    let Some(v) = a.model_version.as_deref().map(str::trim) else {
        return Ok(None);
    };
    if a.model.as_deref().is_none_or(|m| m.trim().is_empty()) {
        return Err(SettingsError::Combination(
            "--model-version picks a version of --model: give --model NAME too".into(),
        ));
    }
    crate::store::registry::check_version(v)
        .map_err(|e| SettingsError::invalid("model-version", v, e.to_string()))?;
    Ok(Some(v.to_string()))
}
