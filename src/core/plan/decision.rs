//! What the planner reads and what it returns: [`PlanInput`] (what is known
//! at `now`), [`PoolState`] with the [`PlannerMemory`] kept between calls, and
//! the [`Decision`] with the typed [`Reason`]s that produced it.

use super::calibration::Calibration;
use super::units::NodeCount;
use crate::core::forecast::model::Forecast;
use crate::core::time::Step;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// What the planner knows at `now`. Slices are oldest first and aligned:
/// the last element of `demand` and of `utilisation` belong to the bucket
/// starting at `now`.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    /// Step of the demand series.
    pub step: Step,
    /// Observed demand up to and including `now`.
    pub demand: &'a [f64],
    /// Utilisation of the ready nodes per bucket (demand / ready capacity),
    /// aligned with `demand`; threshold alarms read it. May be shorter.
    pub utilisation: &'a [f64],
    /// The newest forecast, if any (the predictive policy reads it).
    pub forecast: Option<&'a Forecast>,
    /// Recent forecast error relative to the model's walk-forward error
    /// (1 = as good as in evaluation); `None` when not known yet.
    pub error_ratio: Option<f64>,
    /// How the forecast's peaks compared with the peaks that followed, when
    /// known (see [`Calibration`]); read by a predictive policy with
    /// calibration on.
    pub calibration: Option<&'a Calibration>,
    /// Demand after `now`: perfect foresight, read only by the oracle. Empty
    /// for everything that must be causal.
    pub future: &'a [f64],
}

impl<'a> PlanInput<'a> {
    /// An input with observed demand only (no forecast, no foresight).
    pub fn observed(step: Step, demand: &'a [f64], utilisation: &'a [f64]) -> Self {
        PlanInput {
            step,
            demand,
            utilisation,
            forecast: None,
            error_ratio: None,
            calibration: None,
            future: &[],
        }
    }
    /// The demand at `now`, when known and a valid number.
    pub(super) fn current_demand(&self) -> Option<f64> {
        self.demand
            .last()
            .copied()
            .filter(|d| d.is_finite() && *d >= 0.0)
    }
}

/// What the planner remembers between calls. Plain data: keep it next to the
/// pool (in memory, or serialized between scheduled runs).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlannerMemory {
    /// When the planner last scaled out, if ever.
    pub last_scale_out: Option<i64>,
    /// When the planner last scaled in, if ever.
    pub last_scale_in: Option<i64>,
    /// Recent recommendations (time, nodes), oldest first, kept as long as the
    /// stabilisation window needs them.
    pub recommendations: VecDeque<(i64, NodeCount)>,
}

impl PlannerMemory {
    /// The highest recommendation made after `since` (exclusive).
    pub(super) fn highest_after(&self, since: i64) -> Option<NodeCount> {
        self.recommendations
            .iter()
            .rev()
            .take_while(|(t, _)| *t > since)
            .map(|(_, n)| *n)
            .max()
    }
    /// The last scaling action of either kind.
    pub(super) fn last_action(&self) -> Option<i64> {
        self.last_scale_out.max(self.last_scale_in)
    }
}

/// The pool as the planner sees it when deciding.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PoolState {
    /// Nodes requested: the pool's target size, ready or still provisioning.
    pub requested: NodeCount,
    /// Nodes ready to serve.
    pub ready: NodeCount,
    /// What the planner remembers.
    pub memory: PlannerMemory,
}

impl PoolState {
    /// A pool of `nodes` ready nodes and an empty memory.
    pub fn steady(nodes: NodeCount) -> Self {
        PoolState {
            requested: nodes,
            ready: nodes,
            memory: PlannerMemory::default(),
        }
    }
}

/// Why the forecast was not used.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub enum FallbackCause {
    /// No forecast was given (no model yet, or before warm-up).
    Missing,
    /// The forecast's origin is older than allowed.
    Stale { age_secs: i64, max_age_secs: i64 },
    /// The forecast's origin lies after `now`.
    FromTheFuture { origin: i64, now: i64 },
    /// The forecast does not reach `now + lead`.
    TooShort { horizon: usize, needed: usize },
    /// The forecast was made at another step than the demand series.
    StepMismatch { forecast: i64, series: i64 },
    /// The forecast holds a value that is not a number.
    Invalid,
    /// Recent forecast errors are far above the model's evaluated error.
    Drifted { error_ratio: f64, limit: f64 },
    /// A seasonal policy does not have one full period of history yet.
    NoSeasonYet { have: usize, need: usize },
}

/// One step of the planning that shaped a [`Decision`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Reason {
    /// Sized for the highest forecast at `quantile` over horizons
    /// `from_horizon ..= to_horizon`.
    Forecast {
        quantile: f64,
        from_horizon: usize,
        to_horizon: usize,
        demand: f64,
    },
    /// The forecast could not be used: sized reactively on current demand.
    Fallback { cause: FallbackCause, demand: f64 },
    /// No usable current demand either: nothing to size for.
    NoDemandData,
    /// `nodes = ceil(demand / (capacity * utilisation))`.
    Sized {
        demand: f64,
        capacity: f64,
        utilisation: f64,
        nodes: NodeCount,
    },
    /// Recent forecast peaks fell short by more than the target utilisation
    /// allows: sized for the calibrated peak (the planned peak times
    /// `factor`), at full utilisation.
    Calibrated {
        factor: f64,
        demand: f64,
        nodes: NodeCount,
    },
    /// The change keeps the target busy for `busy_secs` (it takes no other
    /// change meanwhile): sized to cover that long after the lead window too.
    OperationWindow { busy_secs: i64 },
    /// The recent observed demand needed more nodes than the forecast.
    ReactiveFloor {
        demand: f64,
        utilisation: f64,
        nodes: NodeCount,
    },
    /// Raised to the pool's minimum.
    ClampedToMin { min: NodeCount },
    /// Lowered to the pool's maximum.
    ClampedToMax { max: NodeCount },
    /// A scale-in was held up because a recommendation within the window was
    /// higher (scale in only after the recommendation stayed low throughout).
    Stabilising {
        window_secs: i64,
        highest: NodeCount,
    },
    /// Without a forecast the planner never scales in.
    NoScaleInWithoutForecast,
    /// A scale-out came too soon after the previous one.
    ScaleOutCooldown { remaining_secs: i64 },
    /// A scale-in came too soon after the last scale-out.
    ScaleInCooldown { remaining_secs: i64 },
    /// A scale-in of fewer than `least` nodes was held (it wanted `wanted`):
    /// small drops are batched so the target runs fewer operations.
    ScaleInTooSmall { least: u32, wanted: NodeCount },
    /// A scale-out was raised to `least` nodes (it wanted `wanted`): fewer,
    /// larger operations.
    ScaleOutRoundedUp { least: u32, wanted: NodeCount },
    /// A scale-out was limited to `max_step` nodes (wanted `wanted`).
    StepUpLimited { max_step: u32, wanted: NodeCount },
    /// A scale-in was limited to `max_step` nodes (wanted `wanted`).
    StepDownLimited { max_step: u32, wanted: NodeCount },
    /// The scale-out alarm fired: `breaching` of the last `of` datapoints had
    /// utilisation >= `threshold`.
    AlarmHigh {
        breaching: usize,
        of: usize,
        threshold: f64,
    },
    /// The scale-in alarm fired: `breaching` of the last `of` datapoints had
    /// utilisation <= `threshold`.
    AlarmLow {
        breaching: usize,
        of: usize,
        threshold: f64,
    },
    /// Neither alarm fired.
    NoAlarm,
    /// A scaling action happened `cooldown_secs - remaining_secs` ago.
    Cooldown { remaining_secs: i64 },
    /// Utilisation of current demand on the ready nodes (target tracking).
    Tracking {
        demand: f64,
        target_utilisation: f64,
    },
    /// The same time one period earlier, plus a margin, over the lead window.
    SeasonalNaive {
        period_secs: i64,
        margin: f64,
        demand: f64,
    },
    /// Perfect foresight: the highest demand over the lead window.
    Oracle { demand: f64 },
    /// The workshop controller: the predicted latency against the SLA band
    /// `target +- threshold`; `change` is the node step it led to (0 inside
    /// the band).
    SlaBand {
        predicted: f64,
        target: f64,
        threshold: f64,
        change: i64,
    },
}

impl Reason {
    /// A short name of the kind of step, for tallies.
    pub fn kind(&self) -> &'static str {
        match self {
            Reason::Forecast { .. } => "forecast",
            Reason::Fallback { .. } => "fallback",
            Reason::NoDemandData => "no_demand_data",
            Reason::Sized { .. } => "sized",
            Reason::Calibrated { .. } => "calibrated",
            Reason::OperationWindow { .. } => "operation_window",
            Reason::ReactiveFloor { .. } => "reactive_floor",
            Reason::ClampedToMin { .. } => "clamped_to_min",
            Reason::ClampedToMax { .. } => "clamped_to_max",
            Reason::Stabilising { .. } => "stabilising",
            Reason::NoScaleInWithoutForecast => "no_scale_in_without_forecast",
            Reason::ScaleOutCooldown { .. } => "scale_out_cooldown",
            Reason::ScaleInCooldown { .. } => "scale_in_cooldown",
            Reason::ScaleInTooSmall { .. } => "scale_in_too_small",
            Reason::ScaleOutRoundedUp { .. } => "scale_out_rounded_up",
            Reason::StepUpLimited { .. } => "step_up_limited",
            Reason::StepDownLimited { .. } => "step_down_limited",
            Reason::AlarmHigh { .. } => "alarm_high",
            Reason::AlarmLow { .. } => "alarm_low",
            Reason::NoAlarm => "no_alarm",
            Reason::Cooldown { .. } => "cooldown",
            Reason::Tracking { .. } => "tracking",
            Reason::SeasonalNaive { .. } => "seasonal_naive",
            Reason::Oracle { .. } => "oracle",
            Reason::SlaBand { .. } => "sla_band",
        }
    }
}

/// What to do with the pool, and why.
#[must_use = "a decision does nothing until the caller applies and records it"]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Decision {
    /// Set the pool's size to `nodes` (it is `from` now).
    ScaleTo {
        from: NodeCount,
        nodes: NodeCount,
        /// The count the sizing steps asked for before cooldowns, step
        /// limits and stabilisation (what the stabilisation window remembers).
        recommended: NodeCount,
        /// The demand the policy sized for, when it had a forecast of it.
        planned_demand: Option<f64>,
        reasons: Vec<Reason>,
    },
    /// Keep the pool at `nodes`.
    Hold {
        nodes: NodeCount,
        recommended: NodeCount,
        planned_demand: Option<f64>,
        reasons: Vec<Reason>,
    },
}

impl Decision {
    /// The node count after the decision.
    pub fn nodes(&self) -> NodeCount {
        match self {
            Decision::ScaleTo { nodes, .. } | Decision::Hold { nodes, .. } => *nodes,
        }
    }
    /// The recommendation before cooldowns, step limits and stabilisation.
    pub fn recommended(&self) -> NodeCount {
        match self {
            Decision::ScaleTo { recommended, .. } | Decision::Hold { recommended, .. } => {
                *recommended
            }
        }
    }
    /// The demand the policy sized for, if it had a forecast of it.
    pub fn planned_demand(&self) -> Option<f64> {
        match self {
            Decision::ScaleTo { planned_demand, .. } | Decision::Hold { planned_demand, .. } => {
                *planned_demand
            }
        }
    }
    /// The steps that produced the decision, in order.
    pub fn reasons(&self) -> &[Reason] {
        match self {
            Decision::ScaleTo { reasons, .. } | Decision::Hold { reasons, .. } => reasons,
        }
    }
    /// Whether the pool changes size.
    pub fn is_change(&self) -> bool {
        matches!(self, Decision::ScaleTo { .. })
    }
}
