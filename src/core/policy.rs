//! The planner: a pure function of (what is known now, the pool's state, the
//! checked settings, the time) to a [`Decision`] that carries every step that
//! produced it as a typed [`Reason`].
//!
//! [`plan`] is mlscaler's own predictive policy, shared by `scale` and
//! `backtest`. The reactive baselines it is compared against
//! ([`CheckedThreshold`], [`CheckedTargetTracking`], [`CheckedSeasonalNaive`])
//! and the perfect-foresight [`CheckedOracle`] sit behind one enum,
//! [`Strategy`], so the simulator treats them all alike.
//!
//! # Time model
//! `now` is the start of the newest bucket; `PlanInput::demand` ends with that
//! bucket's demand, which counts as known when the decision is made. A node
//! requested at `now` is ready at `now + lead`; a scale-in takes effect at
//! once. So a request made now first serves the bucket `lead` ahead, while a
//! scale-in now already affects the current bucket: that is why the
//! predictive policy sizes for the *whole* window `now ..= now + lead` (the
//! reactive floor covers `now`, the forecast the rest).
//!
//! # State between calls
//! What must survive between calls (recent recommendations for the scale-in
//! stabilisation window, the times of the last scale-out and scale-in for
//! cooldowns) lives in [`PlannerMemory`], plain serializable data that the
//! caller keeps (the simulator in memory, `scale` between scheduled runs) and
//! updates with [`Strategy::record`] after each decision.

use super::model::Forecast;
use super::time::Step;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fmt;

/// Relative tolerance when turning demand into whole nodes: demand of
/// `3.0000000001` nodes' worth is three nodes, not four.
const NODE_TOLERANCE: f64 = 1e-9;

/// A whole number of nodes.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct NodeCount(pub u32);

impl NodeCount {
    /// The count as a plain number.
    pub fn get(self) -> u32 {
        self.0
    }
    /// `self + n`, saturating.
    pub fn plus(self, n: u32) -> NodeCount {
        NodeCount(self.0.saturating_add(n))
    }
    /// `self - n`, saturating at zero.
    pub fn minus(self, n: u32) -> NodeCount {
        NodeCount(self.0.saturating_sub(n))
    }
}

impl fmt::Display for NodeCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Errors in policy settings. Each carries the offending value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    #[error("capacity per node should be a positive, finite amount of demand, but is {0}")]
    Capacity(f64),
    #[error("max nodes should be at least 1, but is {0}")]
    MaxNodes(u32),
    #[error("min nodes ({min}) should not exceed max nodes ({max})")]
    Bounds { min: u32, max: u32 },
    #[error("lead time should be a positive number of seconds, but is {0}")]
    Lead(i64),
    #[error("{name} should be in (0, 1], but is {value}")]
    Utilisation { name: &'static str, value: f64 },
    #[error("forecast quantile should be between 0 and 1, but is {0}")]
    Quantile(f64),
    #[error("{name} should not be negative, but is {secs} s")]
    Duration { name: &'static str, secs: i64 },
    #[error("{name} should be at least 1 node when set, but is {value}")]
    StepSize { name: &'static str, value: u32 },
    #[error("{name} should be a positive percentage, but is {value}")]
    Percent { name: &'static str, value: f64 },
    #[error(
        "{name} should need between 1 and N breaching datapoints out of N >= 1, but is {m} of {n}"
    )]
    MofN {
        name: &'static str,
        m: usize,
        n: usize,
    },
    #[error("{name} should be a positive, finite utilisation, but is {value}")]
    Threshold { name: &'static str, value: f64 },
    #[error(
        "the scale-in threshold ({scale_in}) should be below the scale-out threshold ({scale_out})"
    )]
    ThresholdOrder { scale_out: f64, scale_in: f64 },
    #[error("margin should be a finite number >= 0, but is {0}")]
    Margin(f64),
    #[error("trend gain should be a finite number >= 0, but is {0}")]
    TrendGain(f64),
    #[error("error ratio limit should be a positive number, but is {0}")]
    ErrorRatio(f64),
    #[error("seasonal period should be a positive number of seconds, but is {0}")]
    Period(i64),
    #[error("the SLA target should be a positive number and the threshold a number >= 0 below it, but they are {target} and {threshold}")]
    SlaBand { target: f64, threshold: f64 },
}

/// Demand one node serves at full utilisation, in the load's unit per step
/// (always positive and finite).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Capacity(f64);

impl Capacity {
    /// A capacity of `per_node`; an error unless it is positive and finite.
    pub fn new(per_node: f64) -> Result<Capacity, PolicyError> {
        if per_node > 0.0 && per_node.is_finite() {
            Ok(Capacity(per_node))
        } else {
            Err(PolicyError::Capacity(per_node))
        }
    }
    /// Demand per node at full utilisation.
    pub fn per_node(self) -> f64 {
        self.0
    }
    /// Nodes needed to serve `demand` at `utilisation` (0..=1) of each node:
    /// `ceil(demand / (capacity * utilisation))`, saturating. Demand that is
    /// zero, negative or not a number needs no node.
    pub fn nodes_for(self, demand: f64, utilisation: f64) -> NodeCount {
        let x = demand / (self.0 * utilisation);
        if x.is_nan() || x <= 0.0 {
            return NodeCount(0);
        }
        // `as` saturates at u32::MAX (and maps +inf there too).
        NodeCount((x * (1.0 - NODE_TOLERANCE)).ceil() as u32)
    }
    /// Utilisation of `nodes` serving `demand` (above 1 when overloaded;
    /// infinite for demand on no node, 0 for no demand).
    pub fn utilisation(self, demand: f64, nodes: NodeCount) -> f64 {
        if demand <= 0.0 {
            0.0
        } else if nodes.0 == 0 {
            f64::INFINITY
        } else {
            demand / (self.0 * f64::from(nodes.0))
        }
    }
}

impl TryFrom<f64> for Capacity {
    type Error = PolicyError;
    fn try_from(v: f64) -> Result<Self, Self::Error> {
        Capacity::new(v)
    }
}

impl From<Capacity> for f64 {
    fn from(c: Capacity) -> f64 {
        c.0
    }
}

/// The node pool as the planner sees it (unchecked).
#[derive(Debug, Clone, PartialEq)]
pub struct PoolParams {
    /// Demand one node serves at full utilisation.
    pub capacity_per_node: f64,
    pub min_nodes: u32,
    pub max_nodes: u32,
    /// Seconds from requesting a node until it serves load.
    pub lead_secs: i64,
}

/// The node pool, checked: positive capacity, `1 <= max`, `min <= max`, a
/// positive lead time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CheckedPool {
    capacity: Capacity,
    min: NodeCount,
    max: NodeCount,
    lead_secs: i64,
}

impl PoolParams {
    /// Validate.
    pub fn check(&self) -> Result<CheckedPool, PolicyError> {
        let capacity = Capacity::new(self.capacity_per_node)?;
        if self.max_nodes == 0 {
            return Err(PolicyError::MaxNodes(self.max_nodes));
        }
        if self.min_nodes > self.max_nodes {
            return Err(PolicyError::Bounds {
                min: self.min_nodes,
                max: self.max_nodes,
            });
        }
        if self.lead_secs <= 0 {
            return Err(PolicyError::Lead(self.lead_secs));
        }
        Ok(CheckedPool {
            capacity,
            min: NodeCount(self.min_nodes),
            max: NodeCount(self.max_nodes),
            lead_secs: self.lead_secs,
        })
    }
}

impl CheckedPool {
    /// Demand per node.
    pub fn capacity(&self) -> Capacity {
        self.capacity
    }
    /// Fewest nodes.
    pub fn min(&self) -> NodeCount {
        self.min
    }
    /// Most nodes.
    pub fn max(&self) -> NodeCount {
        self.max
    }
    /// Provisioning lead time in seconds.
    pub fn lead_secs(&self) -> i64 {
        self.lead_secs
    }
    /// The lead time in whole steps of `step`, rounded up (at least 1): a
    /// node requested at bucket `i` first serves bucket `i + lead_steps`.
    pub fn lead_steps(&self, step: Step) -> usize {
        step.steps_ceil(self.lead_secs).max(1)
    }
    /// `n` clamped to `[min, max]`.
    pub fn clamp(&self, n: NodeCount) -> NodeCount {
        n.clamp(self.min, self.max)
    }
}

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
    fn current_demand(&self) -> Option<f64> {
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
    fn highest_after(&self, since: i64) -> Option<NodeCount> {
        self.recommendations
            .iter()
            .rev()
            .take_while(|(t, _)| *t > since)
            .map(|(_, n)| *n)
            .max()
    }
    /// The last scaling action of either kind.
    fn last_action(&self) -> Option<i64> {
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
            Reason::ReactiveFloor { .. } => "reactive_floor",
            Reason::ClampedToMin { .. } => "clamped_to_min",
            Reason::ClampedToMax { .. } => "clamped_to_max",
            Reason::Stabilising { .. } => "stabilising",
            Reason::NoScaleInWithoutForecast => "no_scale_in_without_forecast",
            Reason::ScaleOutCooldown { .. } => "scale_out_cooldown",
            Reason::ScaleInCooldown { .. } => "scale_in_cooldown",
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

// ---------------------------------------------------------------------------
// Rules shared by the policies that size from a demand figure.

/// The outcome of a sizing step, before the rules.
struct Sizing {
    nodes: NodeCount,
    /// No forecast backs the count: never scale in on it.
    blind: bool,
    planned_demand: Option<f64>,
    reasons: Vec<Reason>,
}

/// How changes are rate-limited after the sizing step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Rules {
    stabilisation_secs: i64,
    scale_in_cooldown_secs: i64,
    scale_out_cooldown_secs: i64,
    max_step_up: Option<u32>,
    max_step_down: Option<u32>,
}

impl Rules {
    const NONE: Rules = Rules {
        stabilisation_secs: 0,
        scale_in_cooldown_secs: 0,
        scale_out_cooldown_secs: 0,
        max_step_up: None,
        max_step_down: None,
    };
}

/// Clamp the recommendation to the bounds (with a reason), apply the rules
/// relative to the requested count, clamp again, and build the decision.
/// `blind` means no forecast backs the recommendation: then it never scales in.
fn finish(
    pool: &CheckedPool,
    rules: &Rules,
    state: &PoolState,
    now: i64,
    sizing: Sizing,
) -> Decision {
    let Sizing {
        nodes: raw,
        blind,
        planned_demand,
        mut reasons,
    } = sizing;
    let recommended = clamp_with_reason(pool, raw, &mut reasons);
    let cur = state.requested;
    let mem = &state.memory;
    let mut target = recommended;
    if recommended < cur {
        if blind {
            target = cur;
            reasons.push(Reason::NoScaleInWithoutForecast);
        } else {
            if rules.stabilisation_secs > 0 {
                if let Some(hi) = mem.highest_after(now - rules.stabilisation_secs) {
                    if hi > target {
                        target = hi.min(cur);
                        reasons.push(Reason::Stabilising {
                            window_secs: rules.stabilisation_secs,
                            highest: hi,
                        });
                    }
                }
            }
            if target < cur && rules.scale_in_cooldown_secs > 0 {
                if let Some(last) = mem.last_scale_out {
                    let remaining = last + rules.scale_in_cooldown_secs - now;
                    if remaining > 0 {
                        target = cur;
                        reasons.push(Reason::ScaleInCooldown {
                            remaining_secs: remaining,
                        });
                    }
                }
            }
            if let Some(step) = rules.max_step_down {
                if target < cur.minus(step) {
                    reasons.push(Reason::StepDownLimited {
                        max_step: step,
                        wanted: target,
                    });
                    target = cur.minus(step);
                }
            }
        }
    } else if recommended > cur {
        if rules.scale_out_cooldown_secs > 0 {
            if let Some(last) = mem.last_scale_out {
                let remaining = last + rules.scale_out_cooldown_secs - now;
                if remaining > 0 {
                    target = cur;
                    reasons.push(Reason::ScaleOutCooldown {
                        remaining_secs: remaining,
                    });
                }
            }
        }
        if let Some(step) = rules.max_step_up {
            if target > cur.plus(step) {
                reasons.push(Reason::StepUpLimited {
                    max_step: step,
                    wanted: target,
                });
                target = cur.plus(step);
            }
        }
    }
    // The bounds win over cooldowns and step limits (a pool found outside
    // them is brought back at once).
    let target = clamp_with_reason(pool, target, &mut reasons);
    decide(cur, target, recommended, planned_demand, reasons)
}

fn clamp_with_reason(pool: &CheckedPool, n: NodeCount, reasons: &mut Vec<Reason>) -> NodeCount {
    if n < pool.min {
        reasons.push(Reason::ClampedToMin { min: pool.min });
        pool.min
    } else if n > pool.max {
        reasons.push(Reason::ClampedToMax { max: pool.max });
        pool.max
    } else {
        n
    }
}

fn decide(
    cur: NodeCount,
    target: NodeCount,
    recommended: NodeCount,
    planned_demand: Option<f64>,
    reasons: Vec<Reason>,
) -> Decision {
    if target == cur {
        Decision::Hold {
            nodes: cur,
            recommended,
            planned_demand,
            reasons,
        }
    } else {
        Decision::ScaleTo {
            from: cur,
            nodes: target,
            recommended,
            planned_demand,
            reasons,
        }
    }
}

/// Hold because there is nothing to size for.
fn hold_without_data(pool: &CheckedPool, state: &PoolState) -> Decision {
    let mut reasons = vec![Reason::NoDemandData];
    let target = clamp_with_reason(pool, state.requested, &mut reasons);
    decide(state.requested, target, state.requested, None, reasons)
}

fn check_duration(name: &'static str, secs: i64) -> Result<i64, PolicyError> {
    if secs < 0 {
        Err(PolicyError::Duration { name, secs })
    } else {
        Ok(secs)
    }
}

fn check_utilisation(name: &'static str, value: f64) -> Result<f64, PolicyError> {
    if value > 0.0 && value <= 1.0 {
        Ok(value)
    } else {
        Err(PolicyError::Utilisation { name, value })
    }
}

fn check_step(name: &'static str, value: Option<u32>) -> Result<Option<u32>, PolicyError> {
    match value {
        Some(0) => Err(PolicyError::StepSize { name, value: 0 }),
        v => Ok(v),
    }
}

// ---------------------------------------------------------------------------
// Calibration of forecast peaks.

/// Number of level bins of a [`Calibration`]: planned peaks of `[0, 2)`,
/// `[2, 4)`, `[4, 8)`, ... nodes, the last bin open-ended.
pub const CALIBRATION_BINS: usize = 8;

/// How forecast peaks compared with what followed: for each level of the
/// planned peak (in nodes), the `quantile` of `actual peak / planned peak`
/// over recent decisions, where the actual peak is the highest demand from the
/// decision to a lead time later. Multiplying a new planned peak by its
/// factor gives a peak that recent history covered with that probability.
///
/// It exists because the forecaster's own intervals describe one horizon at a
/// time over the whole history, while the pool has to cover the *highest*
/// demand of the lead window, and errors differ by level (quiet nights and
/// busy evenings): a level-binned empirical quantile corrects both, from data
/// the caller has already seen. Plain data; fitted by [`Calibration::fit`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    capacity: Capacity,
    quantile: f64,
    /// Per level bin, the factor when the bin had enough samples.
    factors: Vec<Option<f64>>,
    /// The factor over all samples (used for bins with too few).
    overall: f64,
    samples: usize,
}

impl Calibration {
    /// Fit from `(planned peak, actual peak)` pairs. Pairs with a planned
    /// peak that is not a positive number, or an actual peak that is not a
    /// number, are skipped. `None` with fewer than `min_samples` usable pairs
    /// (or a quantile outside (0, 1)).
    pub fn fit(
        pairs: impl IntoIterator<Item = (f64, f64)>,
        capacity: Capacity,
        quantile: f64,
        min_samples: usize,
    ) -> Option<Calibration> {
        if !(quantile > 0.0 && quantile < 1.0) {
            return None;
        }
        let mut bins: Vec<Vec<f64>> = vec![Vec::new(); CALIBRATION_BINS];
        for (planned, actual) in pairs {
            if planned > 0.0 && planned.is_finite() && actual.is_finite() {
                bins[Self::bin(capacity, planned)].push(actual.max(0.0) / planned);
            }
        }
        let samples: usize = bins.iter().map(Vec::len).sum();
        if samples < min_samples.max(1) {
            return None;
        }
        let mut all: Vec<f64> = bins.iter().flatten().copied().collect();
        all.sort_by(f64::total_cmp);
        let overall = super::metrics::quantile_sorted(&all, quantile);
        let factors = bins
            .iter_mut()
            .map(|b| {
                (b.len() >= min_samples.max(1)).then(|| {
                    b.sort_by(f64::total_cmp);
                    super::metrics::quantile_sorted(b, quantile)
                })
            })
            .collect();
        Some(Calibration {
            capacity,
            quantile,
            factors,
            overall,
            samples,
        })
    }

    /// The factor for a planned peak of `planned` (its bin's, or the overall
    /// one when the bin had too few samples).
    pub fn factor(&self, planned: f64) -> f64 {
        self.bin_factor(Self::bin(self.capacity, planned))
    }

    /// The calibrated peak for a planned peak: `planned * factor`, but never
    /// below the calibrated peak at the top of a lower bin, so that a higher
    /// forecast never gets a lower plan.
    pub fn calibrated(&self, planned: f64) -> f64 {
        if planned.is_nan() || planned <= 0.0 {
            return planned.max(0.0);
        }
        let bin = Self::bin(self.capacity, planned);
        let cap = self.capacity.per_node();
        (0..bin)
            .map(|b| {
                // Top of bin b: 2^(b+1) nodes.
                let top = cap * f64::from(1u32 << (b + 1));
                top * self.bin_factor(b)
            })
            .fold(planned * self.bin_factor(bin), f64::max)
    }

    fn bin_factor(&self, bin: usize) -> f64 {
        self.factors
            .get(bin)
            .copied()
            .flatten()
            .unwrap_or(self.overall)
    }

    /// The quantile the factors are at.
    pub fn quantile(&self) -> f64 {
        self.quantile
    }

    /// Pairs the calibration was fitted on.
    pub fn samples(&self) -> usize {
        self.samples
    }

    fn bin(capacity: Capacity, planned: f64) -> usize {
        let nodes = planned / capacity.per_node();
        if nodes >= 2.0 {
            (nodes.log2().floor() as usize).min(CALIBRATION_BINS - 1)
        } else {
            0
        }
    }
}

/// Settings of the calibration a predictive policy uses (see [`Calibration`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CalibrationParams {
    /// Share of recent peaks the calibrated peak must cover.
    pub quantile: f64,
    /// Fit on the decisions of this many recent seconds.
    pub window_secs: i64,
    /// Fewest pairs for a factor (per bin, and overall).
    pub min_samples: usize,
}

// ---------------------------------------------------------------------------
// The predictive policy.

/// Which forecast horizons the predictive policy sizes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeadWindow {
    /// The highest forecast over every horizon up to the lead time
    /// (`now + step ..= now + lead`): a scale-in now is immediate, so nothing
    /// needed before the lead time may be given up.
    Whole,
    /// Only the horizon at the lead time.
    AtLead,
}

/// The reactive floor: never plan below what the recent observed demand needs,
/// optionally extrapolating a rise over the lead time.
///
/// Floor demand = `max(highest demand over window_secs, d_now + trend_gain *
/// rise_per_step * lead_steps)`, where `rise_per_step` is
/// `(d_now - d_{now - trend_secs}) / trend_steps` when positive, else 0; it is
/// sized at `utilisation`. The trend term catches the start of a ramp that a
/// linear forecaster (fitted on all hours alike) follows only slowly.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReactiveFloor {
    /// Utilisation at which the floor sizes (1.0 = just enough for the demand).
    pub utilisation: f64,
    /// Look at the highest demand over this many seconds up to `now`, in whole
    /// steps rounded down (0, or less than a step: the current bucket only).
    pub window_secs: i64,
    /// Measure the rise over this many seconds, rounded up to whole steps
    /// (0 = no trend term).
    pub trend_secs: i64,
    /// How much of the recent rise to extrapolate over the lead time (1 = a
    /// straight line).
    pub trend_gain: f64,
}

impl ReactiveFloor {
    /// A floor on current demand at `utilisation`, without trend.
    pub fn current(utilisation: f64) -> Self {
        ReactiveFloor {
            utilisation,
            window_secs: 0,
            trend_secs: 0,
            trend_gain: 0.0,
        }
    }

    /// The floor demand from `demand` (oldest first, last = now), or `None`
    /// without a finite current demand.
    fn demand(&self, demand: &[f64], step: Step, lead_steps: usize) -> Option<f64> {
        let &now = demand.last().filter(|d| d.is_finite())?;
        // A window shorter than a step covers the current bucket only; the
        // trend needs at least one step back.
        let back = (self.window_secs / step.secs()).max(0) as usize;
        let from = demand.len().saturating_sub(back + 1);
        let recent = demand[from..]
            .iter()
            .copied()
            .filter(|d| d.is_finite())
            .fold(now, f64::max);
        let k = step.steps_ceil(self.trend_secs);
        let trend = match demand.len().checked_sub(k + 1).map(|j| demand[j]) {
            Some(then) if k > 0 && then.is_finite() && now > then => {
                now + self.trend_gain * (now - then) / k as f64 * lead_steps as f64
            }
            _ => now,
        };
        Some(recent.max(trend))
    }
}

/// Settings of the predictive policy (unchecked; see [`PredictiveParams::check`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PredictiveParams {
    /// Forecast quantile to size for (0.5 = the median forecast).
    pub quantile: f64,
    /// Horizons to take the highest forecast over.
    pub window: LeadWindow,
    /// Utilisation of each node the plan aims for.
    pub target_utilisation: f64,
    /// Floor on recent observed demand; `None` to trust the forecast alone.
    pub floor: Option<ReactiveFloor>,
    /// Scale in only to the highest recommendation of this many seconds
    /// (0 = scale in as soon as the forecast drops).
    pub scale_in_stabilisation_secs: i64,
    /// No scale-in for this long after a scale-out.
    pub scale_in_cooldown_secs: i64,
    /// No scale-out for this long after a scale-out.
    pub scale_out_cooldown_secs: i64,
    /// Most nodes added in one decision.
    pub max_step_up: Option<u32>,
    /// Most nodes removed in one decision.
    pub max_step_down: Option<u32>,
    /// A forecast whose origin is older than this is stale.
    pub max_forecast_age_secs: i64,
    /// Recent error above this multiple of the evaluated error means drift:
    /// fall back to the reactive rule. `None` disables the check.
    pub max_error_ratio: Option<f64>,
    /// Utilisation the reactive fallback sizes for.
    pub fallback_utilisation: f64,
    /// Raise the planned peak to what recent errors say it must be
    /// ([`PlanInput::calibration`]); never lowers the plan. `None`: off.
    pub calibration: Option<CalibrationParams>,
}

impl Default for PredictiveParams {
    /// The settings tuned on the three bundled traces (see
    /// `examples/backtest_traces.rs` and the module docs of
    /// [`crate::core::backtest`]): the median forecast at 83% utilisation
    /// (20% headroom), raised by a calibration at the 98th percentile of
    /// recent peak errors; a floor on the last two minutes of demand and its
    /// ten-minute trend, at 83%; scale-in after two minutes of lower
    /// recommendations; no step limits or cooldowns.
    fn default() -> Self {
        PredictiveParams {
            quantile: 0.5,
            window: LeadWindow::Whole,
            target_utilisation: 0.83,
            floor: Some(ReactiveFloor {
                utilisation: 0.833,
                window_secs: 120,
                trend_secs: 600,
                trend_gain: 1.5,
            }),
            scale_in_stabilisation_secs: 120,
            scale_in_cooldown_secs: 0,
            scale_out_cooldown_secs: 0,
            max_step_up: None,
            max_step_down: None,
            max_forecast_age_secs: 900,
            max_error_ratio: None,
            fallback_utilisation: 0.7,
            calibration: Some(CalibrationParams {
                quantile: 0.98,
                window_secs: 14 * super::time::DAY_SECS,
                min_samples: 50,
            }),
        }
    }
}

/// Checked predictive policy: the only form [`plan`] accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckedPolicy {
    pool: CheckedPool,
    quantile: f64,
    window: LeadWindow,
    target_utilisation: f64,
    floor: Option<ReactiveFloor>,
    rules: Rules,
    max_forecast_age_secs: i64,
    max_error_ratio: Option<f64>,
    fallback_utilisation: f64,
    calibration: Option<CalibrationParams>,
}

impl PredictiveParams {
    /// Validate for a pool.
    pub fn check(&self, pool: &CheckedPool) -> Result<CheckedPolicy, PolicyError> {
        if !(self.quantile > 0.0 && self.quantile < 1.0) {
            return Err(PolicyError::Quantile(self.quantile));
        }
        let target_utilisation = check_utilisation("target utilisation", self.target_utilisation)?;
        let fallback_utilisation =
            check_utilisation("fallback utilisation", self.fallback_utilisation)?;
        if let Some(f) = &self.floor {
            check_utilisation("reactive floor utilisation", f.utilisation)?;
            check_duration("reactive floor window", f.window_secs)?;
            check_duration("reactive floor trend window", f.trend_secs)?;
            if !(f.trend_gain >= 0.0 && f.trend_gain.is_finite()) {
                return Err(PolicyError::TrendGain(f.trend_gain));
            }
        }
        if let Some(r) = self.max_error_ratio {
            if r.is_nan() || r <= 0.0 {
                return Err(PolicyError::ErrorRatio(r));
            }
        }
        if let Some(c) = &self.calibration {
            if !(c.quantile > 0.0 && c.quantile < 1.0) {
                return Err(PolicyError::Quantile(c.quantile));
            }
            if c.window_secs <= 0 {
                return Err(PolicyError::Duration {
                    name: "calibration window",
                    secs: c.window_secs,
                });
            }
        }
        Ok(CheckedPolicy {
            pool: *pool,
            quantile: self.quantile,
            window: self.window,
            target_utilisation,
            floor: self.floor,
            rules: Rules {
                stabilisation_secs: check_duration(
                    "scale-in stabilisation window",
                    self.scale_in_stabilisation_secs,
                )?,
                scale_in_cooldown_secs: check_duration(
                    "scale-in cooldown",
                    self.scale_in_cooldown_secs,
                )?,
                scale_out_cooldown_secs: check_duration(
                    "scale-out cooldown",
                    self.scale_out_cooldown_secs,
                )?,
                max_step_up: check_step("max step up", self.max_step_up)?,
                max_step_down: check_step("max step down", self.max_step_down)?,
            },
            max_forecast_age_secs: check_duration("max forecast age", self.max_forecast_age_secs)?,
            max_error_ratio: self.max_error_ratio,
            fallback_utilisation,
            calibration: self.calibration,
        })
    }
}

impl CheckedPolicy {
    /// The pool the policy was checked for.
    pub fn pool(&self) -> &CheckedPool {
        &self.pool
    }
    /// The forecast quantile sized for.
    pub fn quantile(&self) -> f64 {
        self.quantile
    }
    /// The calibration settings, when calibration is on.
    pub fn calibration(&self) -> Option<&CalibrationParams> {
        self.calibration.as_ref()
    }
    /// The planned peak of a fresh forecast (made at `now`): the highest
    /// value at the policy's quantile over the lead window, as [`plan`]
    /// sizes it before calibration. `None` when the forecast is too short
    /// or not a number.
    pub fn planned_peak(&self, f: &Forecast) -> Option<f64> {
        let lead = self.pool.lead_steps(f.step);
        if lead == 0 || lead > f.horizon() || f.quantiles.len() < f.horizon() {
            return None;
        }
        let from = match self.window {
            LeadWindow::Whole => 1,
            LeadWindow::AtLead => lead,
        };
        let peak = (from..=lead)
            .map(|h| f.quantile(h, self.quantile))
            .fold(f64::NEG_INFINITY, f64::max);
        peak.is_finite().then_some(peak.max(0.0))
    }
}

/// Plan the pool's size from a forecast: mlscaler's predictive policy.
///
/// In order, each step adding a [`Reason`]:
/// 1. check the forecast (present, same step, not stale, not from the future,
///    long enough to reach `now + lead`, numbers, not drifted); if it fails,
///    size reactively on the current demand at the fallback utilisation and
///    **never scale in** ([`Reason::NoScaleInWithoutForecast`]);
/// 2. otherwise take the highest forecast at the chosen quantile over the lead
///    window and divide by capacity x target utilisation;
/// 3. raise to the reactive floor (recent observed demand);
/// 4. clamp to `[min, max]`: this is the recommendation the memory keeps;
/// 5. scale in only to the highest recommendation within the stabilisation
///    window, not within the scale-in cooldown, by at most the step limit;
///    scale out unless within the scale-out cooldown, by at most the step limit;
/// 6. clamp to `[min, max]` again (bounds win over cooldowns and step limits).
///
/// Without any usable current demand and forecast it holds.
pub fn plan(
    input: &PlanInput<'_>,
    state: &PoolState,
    policy: &CheckedPolicy,
    now: i64,
) -> Decision {
    let pool = &policy.pool;
    let cap = pool.capacity;
    let mut reasons = Vec::with_capacity(6);
    let sized = match forecast_demand(input, policy, now) {
        Ok((demand, from_h, to_h)) => {
            reasons.push(Reason::Forecast {
                quantile: policy.quantile,
                from_horizon: from_h,
                to_horizon: to_h,
                demand,
            });
            Some((demand, policy.target_utilisation, false))
        }
        Err(cause) => match input.current_demand() {
            Some(d) => {
                reasons.push(Reason::Fallback { cause, demand: d });
                Some((d, policy.fallback_utilisation, true))
            }
            None => None,
        },
    };
    let Some((demand, utilisation, blind)) = sized else {
        return hold_without_data(pool, state);
    };
    let mut nodes = cap.nodes_for(demand, utilisation);
    reasons.push(Reason::Sized {
        demand,
        capacity: cap.per_node(),
        utilisation,
        nodes,
    });
    if let (false, Some(_), Some(c)) = (blind, &policy.calibration, input.calibration) {
        let calibrated = c.calibrated(demand);
        let factor = if demand > 0.0 {
            calibrated / demand
        } else {
            1.0
        };
        let calibrated_nodes = cap.nodes_for(calibrated, 1.0);
        if calibrated_nodes > nodes {
            nodes = calibrated_nodes;
            reasons.push(Reason::Calibrated {
                factor,
                demand: calibrated,
                nodes,
            });
        }
    }
    if let (false, Some(floor)) = (blind, &policy.floor) {
        let lead = pool.lead_steps(input.step);
        if let Some(fd) = floor.demand(input.demand, input.step, lead) {
            let floor_nodes = cap.nodes_for(fd, floor.utilisation);
            if floor_nodes > nodes {
                nodes = floor_nodes;
                reasons.push(Reason::ReactiveFloor {
                    demand: fd,
                    utilisation: floor.utilisation,
                    nodes,
                });
            }
        }
    }
    let sizing = Sizing {
        nodes,
        blind,
        planned_demand: (!blind).then_some(demand),
        reasons,
    };
    finish(pool, &policy.rules, state, now, sizing)
}

/// The highest forecast over the lead window at the policy's quantile, with
/// the horizons used; or why the forecast cannot be used.
fn forecast_demand(
    input: &PlanInput<'_>,
    policy: &CheckedPolicy,
    now: i64,
) -> Result<(f64, usize, usize), FallbackCause> {
    let f = input.forecast.ok_or(FallbackCause::Missing)?;
    if f.step != input.step {
        return Err(FallbackCause::StepMismatch {
            forecast: f.step.secs(),
            series: input.step.secs(),
        });
    }
    let age = now - f.origin;
    if age < 0 {
        return Err(FallbackCause::FromTheFuture {
            origin: f.origin,
            now,
        });
    }
    if age > policy.max_forecast_age_secs {
        return Err(FallbackCause::Stale {
            age_secs: age,
            max_age_secs: policy.max_forecast_age_secs,
        });
    }
    if let (Some(limit), Some(ratio)) = (policy.max_error_ratio, input.error_ratio) {
        // A ratio that is not a number cannot show the model is fine: fail closed.
        if ratio.is_nan() || ratio > limit {
            return Err(FallbackCause::Drifted {
                error_ratio: ratio,
                limit,
            });
        }
    }
    // Horizons of the forecast that cover (now, now + lead].
    let shift = (age / f.step.secs()) as usize;
    let lead = policy.pool.lead_steps(f.step);
    let to_h = shift + lead;
    if to_h > f.horizon() || f.quantiles.len() < f.horizon() {
        return Err(FallbackCause::TooShort {
            horizon: f.horizon(),
            needed: to_h,
        });
    }
    let from_h = match policy.window {
        LeadWindow::Whole => shift + 1,
        LeadWindow::AtLead => to_h,
    };
    let mut best = f64::NEG_INFINITY;
    for h in from_h..=to_h {
        let v = f.quantile(h, policy.quantile);
        if !v.is_finite() {
            return Err(FallbackCause::Invalid);
        }
        best = best.max(v);
    }
    Ok((best.max(0.0), from_h, to_h))
}

// ---------------------------------------------------------------------------
// Baselines.

/// A step size of a threshold policy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Adjustment {
    /// Add or remove this many nodes.
    Nodes(u32),
    /// Add or remove this percentage of the current count, at least one node
    /// (rounded down above one node, as cloud step policies do).
    Percent(f64),
}

impl Adjustment {
    fn nodes(self, current: NodeCount) -> u32 {
        match self {
            Adjustment::Nodes(n) => n,
            Adjustment::Percent(p) => ((f64::from(current.0) * p / 100.0).floor() as u32).max(1),
        }
    }
    fn check(self, name: &'static str) -> Result<Adjustment, PolicyError> {
        match self {
            Adjustment::Nodes(0) => Err(PolicyError::StepSize { name, value: 0 }),
            Adjustment::Percent(p) if !(p > 0.0 && p.is_finite()) => {
                Err(PolicyError::Percent { name, value: p })
            }
            a => Ok(a),
        }
    }
}

/// A reactive threshold policy in the style of cloud alarms (unchecked):
/// scale out when utilisation >= `scale_out_at` for M of the last N
/// datapoints, scale in when <= `scale_in_at` for M of N, by fixed steps, with
/// one cooldown after any action. A datapoint is one bucket of the series.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdParams {
    pub scale_out_at: f64,
    pub scale_out_m: usize,
    pub scale_out_n: usize,
    pub scale_in_at: f64,
    pub scale_in_m: usize,
    pub scale_in_n: usize,
    pub step_out: Adjustment,
    pub step_in: Adjustment,
    /// After any scaling action, no further action for this long.
    pub cooldown_secs: i64,
}

impl Default for ThresholdParams {
    /// Scale out at >= 70% for 2 of 2 datapoints by 20% (at least one node),
    /// scale in at <= 20% for 20 of 20 by one node, 300 s cooldown.
    fn default() -> Self {
        ThresholdParams {
            scale_out_at: 0.7,
            scale_out_m: 2,
            scale_out_n: 2,
            scale_in_at: 0.2,
            scale_in_m: 20,
            scale_in_n: 20,
            step_out: Adjustment::Percent(20.0),
            step_in: Adjustment::Nodes(1),
            cooldown_secs: 300,
        }
    }
}

/// Checked threshold policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckedThreshold {
    pool: CheckedPool,
    p: ThresholdSettings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ThresholdSettings {
    out_at: f64,
    out_m: usize,
    out_n: usize,
    in_at: f64,
    in_m: usize,
    in_n: usize,
    step_out: Adjustment,
    step_in: Adjustment,
    cooldown_secs: i64,
}

impl ThresholdParams {
    /// Validate for a pool.
    pub fn check(&self, pool: &CheckedPool) -> Result<CheckedThreshold, PolicyError> {
        for (name, v) in [
            ("scale-out threshold", self.scale_out_at),
            ("scale-in threshold", self.scale_in_at),
        ] {
            if !(v > 0.0 && v.is_finite()) {
                return Err(PolicyError::Threshold { name, value: v });
            }
        }
        if self.scale_in_at >= self.scale_out_at {
            return Err(PolicyError::ThresholdOrder {
                scale_out: self.scale_out_at,
                scale_in: self.scale_in_at,
            });
        }
        for (name, m, n) in [
            ("scale-out alarm", self.scale_out_m, self.scale_out_n),
            ("scale-in alarm", self.scale_in_m, self.scale_in_n),
        ] {
            if m == 0 || m > n {
                return Err(PolicyError::MofN { name, m, n });
            }
        }
        Ok(CheckedThreshold {
            pool: *pool,
            p: ThresholdSettings {
                out_at: self.scale_out_at,
                out_m: self.scale_out_m,
                out_n: self.scale_out_n,
                in_at: self.scale_in_at,
                in_m: self.scale_in_m,
                in_n: self.scale_in_n,
                step_out: self.step_out.check("scale-out step")?,
                step_in: self.step_in.check("scale-in step")?,
                cooldown_secs: check_duration("cooldown", self.cooldown_secs)?,
            },
        })
    }
}

fn threshold_plan(
    input: &PlanInput<'_>,
    state: &PoolState,
    t: &CheckedThreshold,
    now: i64,
) -> Decision {
    let pool = &t.pool;
    let p = &t.p;
    let cur = state.requested;
    let mut reasons = Vec::with_capacity(3);
    let mut target = cur;
    let cooling = state
        .memory
        .last_action()
        .map(|last| last + p.cooldown_secs - now)
        .filter(|r| *r > 0);
    if let Some(remaining) = cooling {
        reasons.push(Reason::Cooldown {
            remaining_secs: remaining,
        });
    } else {
        let u = input.utilisation;
        let last = |n: usize| &u[u.len().saturating_sub(n)..];
        // NaN utilisation (no datapoint) breaches neither alarm.
        let high = last(p.out_n).iter().filter(|v| **v >= p.out_at).count();
        let low = last(p.in_n).iter().filter(|v| **v <= p.in_at).count();
        if high >= p.out_m {
            reasons.push(Reason::AlarmHigh {
                breaching: high,
                of: p.out_n,
                threshold: p.out_at,
            });
            target = cur.plus(p.step_out.nodes(cur));
        } else if low >= p.in_m {
            reasons.push(Reason::AlarmLow {
                breaching: low,
                of: p.in_n,
                threshold: p.in_at,
            });
            target = cur.minus(p.step_in.nodes(cur));
        } else {
            reasons.push(Reason::NoAlarm);
        }
    }
    let target = clamp_with_reason(pool, target, &mut reasons);
    decide(cur, target, target, None, reasons)
}

/// Target tracking (unchecked): keep utilisation of current demand at a target,
/// scaling out at once and in only after the recommendation stayed lower for
/// the whole stabilisation window.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetTrackingParams {
    pub target_utilisation: f64,
    pub scale_in_stabilisation_secs: i64,
}

impl Default for TargetTrackingParams {
    /// 70% utilisation, 10 minutes of scale-in stabilisation.
    fn default() -> Self {
        TargetTrackingParams {
            target_utilisation: 0.7,
            scale_in_stabilisation_secs: 600,
        }
    }
}

/// Checked target tracking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckedTargetTracking {
    pool: CheckedPool,
    target_utilisation: f64,
    rules: Rules,
}

impl TargetTrackingParams {
    /// Validate for a pool.
    pub fn check(&self, pool: &CheckedPool) -> Result<CheckedTargetTracking, PolicyError> {
        Ok(CheckedTargetTracking {
            pool: *pool,
            target_utilisation: check_utilisation("target utilisation", self.target_utilisation)?,
            rules: Rules {
                stabilisation_secs: check_duration(
                    "scale-in stabilisation window",
                    self.scale_in_stabilisation_secs,
                )?,
                ..Rules::NONE
            },
        })
    }
}

fn tracking_plan(
    input: &PlanInput<'_>,
    state: &PoolState,
    t: &CheckedTargetTracking,
    now: i64,
) -> Decision {
    let Some(d) = input.current_demand() else {
        return hold_without_data(&t.pool, state);
    };
    let nodes = t.pool.capacity.nodes_for(d, t.target_utilisation);
    let reasons = vec![
        Reason::Tracking {
            demand: d,
            target_utilisation: t.target_utilisation,
        },
        Reason::Sized {
            demand: d,
            capacity: t.pool.capacity.per_node(),
            utilisation: t.target_utilisation,
            nodes,
        },
    ];
    let sizing = Sizing {
        nodes,
        blind: false,
        planned_demand: None,
        reasons,
    };
    finish(&t.pool, &t.rules, state, now, sizing)
}

/// Seasonal naive (unchecked): size for the demand one period earlier over
/// the lead window, plus a margin; scale in at once.
#[derive(Debug, Clone, PartialEq)]
pub struct SeasonalNaiveParams {
    /// The period: a day or a week, in seconds.
    pub period_secs: i64,
    /// Extra demand on top of last period's (0.2 = +20%).
    pub margin: f64,
    /// Never size below the current demand (plus the margin): with scale-in
    /// taking effect at once, a pure seasonal rule drops capacity that is in
    /// use whenever today runs above yesterday.
    pub floor_on_current: bool,
}

impl Default for SeasonalNaiveParams {
    /// Same time yesterday, +20%.
    fn default() -> Self {
        SeasonalNaiveParams {
            period_secs: super::time::DAY_SECS,
            margin: 0.2,
            floor_on_current: true,
        }
    }
}

/// Checked seasonal naive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckedSeasonalNaive {
    pool: CheckedPool,
    period_secs: i64,
    margin: f64,
    floor_on_current: bool,
}

impl SeasonalNaiveParams {
    /// Validate for a pool.
    pub fn check(&self, pool: &CheckedPool) -> Result<CheckedSeasonalNaive, PolicyError> {
        if self.period_secs <= 0 {
            return Err(PolicyError::Period(self.period_secs));
        }
        if !(self.margin >= 0.0 && self.margin.is_finite()) {
            return Err(PolicyError::Margin(self.margin));
        }
        Ok(CheckedSeasonalNaive {
            pool: *pool,
            period_secs: self.period_secs,
            margin: self.margin,
            floor_on_current: self.floor_on_current,
        })
    }
}

fn seasonal_plan(
    input: &PlanInput<'_>,
    state: &PoolState,
    s: &CheckedSeasonalNaive,
    now: i64,
) -> Decision {
    let pool = &s.pool;
    let lead = pool.lead_steps(input.step);
    // The period in whole steps, rounded up, never shorter than the lead
    // (the same time one period earlier must already be observed).
    let period = input.step.steps_ceil(s.period_secs).max(lead);
    let n = input.demand.len();
    if n <= period {
        // Not one full period yet: the blind reactive rule.
        let Some(d) = input.current_demand() else {
            return hold_without_data(pool, state);
        };
        let nodes = pool.capacity.nodes_for(d * (1.0 + s.margin), 1.0);
        let reasons = vec![
            Reason::Fallback {
                cause: FallbackCause::NoSeasonYet {
                    have: n,
                    need: period + 1,
                },
                demand: d,
            },
            Reason::Sized {
                demand: d * (1.0 + s.margin),
                capacity: pool.capacity.per_node(),
                utilisation: 1.0,
                nodes,
            },
        ];
        let sizing = Sizing {
            nodes,
            blind: true,
            planned_demand: None,
            reasons,
        };
        return finish(pool, &Rules::NONE, state, now, sizing);
    }
    // Bucket now + h was, one period earlier, bucket n-1+h-period (h = 0..=lead).
    let base = n - 1 - period;
    let past = input.demand[base..=base + lead]
        .iter()
        .copied()
        .filter(|d| d.is_finite())
        .fold(0.0, f64::max);
    let demand = past * (1.0 + s.margin);
    let mut nodes = pool.capacity.nodes_for(demand, 1.0);
    let mut reasons = vec![
        Reason::SeasonalNaive {
            period_secs: s.period_secs,
            margin: s.margin,
            demand,
        },
        Reason::Sized {
            demand,
            capacity: pool.capacity.per_node(),
            utilisation: 1.0,
            nodes,
        },
    ];
    if let (true, Some(d)) = (s.floor_on_current, input.current_demand()) {
        let utilisation = 1.0 / (1.0 + s.margin);
        let floor = pool.capacity.nodes_for(d, utilisation);
        if floor > nodes {
            nodes = floor;
            reasons.push(Reason::ReactiveFloor {
                demand: d,
                utilisation,
                nodes,
            });
        }
    }
    let sizing = Sizing {
        nodes,
        blind: false,
        planned_demand: Some(demand),
        reasons,
    };
    finish(pool, &Rules::NONE, state, now, sizing)
}

/// The oracle: perfect foresight with the same lead time, at full
/// utilisation. Its node-hours are the lower bound for any policy that serves
/// all demand on this pool: the count at `now` must cover every bucket from
/// `now` to `now + lead` (a node for a later bucket must be requested by now,
/// and a node removed now cannot be back before then).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckedOracle {
    pool: CheckedPool,
}

impl CheckedOracle {
    /// The oracle for a pool.
    pub fn new(pool: &CheckedPool) -> Self {
        CheckedOracle { pool: *pool }
    }
}

fn oracle_plan(input: &PlanInput<'_>, state: &PoolState, o: &CheckedOracle) -> Decision {
    let pool = &o.pool;
    let lead = pool.lead_steps(input.step);
    let Some(now_d) = input.current_demand() else {
        return hold_without_data(pool, state);
    };
    let ahead = &input.future[..input.future.len().min(lead)];
    let demand = ahead
        .iter()
        .copied()
        .filter(|d| d.is_finite())
        .fold(now_d, f64::max);
    let nodes = pool.capacity.nodes_for(demand, 1.0);
    let mut reasons = vec![Reason::Oracle { demand }];
    let target = clamp_with_reason(pool, nodes, &mut reasons);
    decide(state.requested, target, target, Some(demand), reasons)
}

// ---------------------------------------------------------------------------
// One type for all policies.

/// The kinds of policy, as named in reports and plan files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyKind {
    Predictive,
    ReactiveThreshold,
    TargetTracking,
    SeasonalNaive,
    Oracle,
}

impl PolicyKind {
    /// Every kind, in report order.
    pub const ALL: [PolicyKind; 5] = [
        PolicyKind::Predictive,
        PolicyKind::ReactiveThreshold,
        PolicyKind::TargetTracking,
        PolicyKind::SeasonalNaive,
        PolicyKind::Oracle,
    ];
    /// The name in reports and plan files.
    pub fn name(self) -> &'static str {
        match self {
            PolicyKind::Predictive => "predictive",
            PolicyKind::ReactiveThreshold => "reactive_threshold",
            PolicyKind::TargetTracking => "target_tracking",
            PolicyKind::SeasonalNaive => "seasonal_naive",
            PolicyKind::Oracle => "oracle",
        }
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for PolicyKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PolicyKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown policy '{s}': expected predictive, reactive_threshold, target_tracking, seasonal_naive or oracle"
                )
            })
    }
}

/// Any policy, checked, behind one interface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    Predictive(CheckedPolicy),
    ReactiveThreshold(CheckedThreshold),
    TargetTracking(CheckedTargetTracking),
    SeasonalNaive(CheckedSeasonalNaive),
    Oracle(CheckedOracle),
}

impl Strategy {
    /// Which policy this is.
    pub fn kind(&self) -> PolicyKind {
        match self {
            Strategy::Predictive(_) => PolicyKind::Predictive,
            Strategy::ReactiveThreshold(_) => PolicyKind::ReactiveThreshold,
            Strategy::TargetTracking(_) => PolicyKind::TargetTracking,
            Strategy::SeasonalNaive(_) => PolicyKind::SeasonalNaive,
            Strategy::Oracle(_) => PolicyKind::Oracle,
        }
    }

    /// The pool the policy was checked for.
    pub fn pool(&self) -> &CheckedPool {
        match self {
            Strategy::Predictive(p) => &p.pool,
            Strategy::ReactiveThreshold(p) => &p.pool,
            Strategy::TargetTracking(p) => &p.pool,
            Strategy::SeasonalNaive(p) => &p.pool,
            Strategy::Oracle(p) => &p.pool,
        }
    }

    /// Whether the policy reads a forecast ([`PlanInput::forecast`]).
    pub fn uses_forecast(&self) -> bool {
        matches!(self, Strategy::Predictive(_))
    }

    /// Whether the policy reads the future ([`PlanInput::future`]): only the
    /// oracle, which is therefore not causal.
    pub fn uses_future(&self) -> bool {
        matches!(self, Strategy::Oracle(_))
    }

    /// Decide at `now`. Pure: the same arguments give the same decision.
    pub fn decide(&self, input: &PlanInput<'_>, state: &PoolState, now: i64) -> Decision {
        match self {
            Strategy::Predictive(p) => plan(input, state, p, now),
            Strategy::ReactiveThreshold(t) => threshold_plan(input, state, t, now),
            Strategy::TargetTracking(t) => tracking_plan(input, state, t, now),
            Strategy::SeasonalNaive(s) => seasonal_plan(input, state, s, now),
            Strategy::Oracle(o) => oracle_plan(input, state, o),
        }
    }

    /// Remember a decision made at `now` (after applying it): its
    /// recommendation for the stabilisation window, and the time of a scaling
    /// action for cooldowns. Recommendations older than the window are dropped.
    pub fn record(&self, memory: &mut PlannerMemory, decision: &Decision, now: i64) {
        if let Decision::ScaleTo { from, nodes, .. } = decision {
            if nodes > from {
                memory.last_scale_out = Some(now);
            } else {
                memory.last_scale_in = Some(now);
            }
        }
        let keep = match self {
            Strategy::Predictive(p) => p.rules.stabilisation_secs,
            Strategy::TargetTracking(t) => t.rules.stabilisation_secs,
            _ => 0,
        };
        if keep > 0 {
            memory
                .recommendations
                .push_back((now, decision.recommended()));
        }
        while memory
            .recommendations
            .front()
            .is_some_and(|(t, _)| *t <= now - keep)
        {
            memory.recommendations.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::metrics::LEVELS;

    fn step() -> Step {
        Step::from_secs(60).unwrap()
    }

    fn pool(min: u32, max: u32) -> CheckedPool {
        PoolParams {
            capacity_per_node: 10.0,
            min_nodes: min,
            max_nodes: max,
            lead_secs: 180,
        }
        .check()
        .unwrap()
    }

    /// A forecast whose quantiles at every level equal `points[h-1] * factor(level)`.
    fn forecast(origin: i64, points: &[f64]) -> Forecast {
        Forecast {
            origin,
            step: step(),
            points: points.to_vec(),
            levels: LEVELS.to_vec(),
            quantiles: points
                .iter()
                .map(|p| LEVELS.iter().map(|l| p * (0.5 + l)).collect())
                .collect(),
        }
    }

    fn bare() -> PredictiveParams {
        PredictiveParams {
            quantile: 0.5,
            window: LeadWindow::Whole,
            target_utilisation: 1.0,
            floor: None,
            scale_in_stabilisation_secs: 0,
            scale_in_cooldown_secs: 0,
            scale_out_cooldown_secs: 0,
            max_step_up: None,
            max_step_down: None,
            max_forecast_age_secs: 120,
            max_error_ratio: None,
            fallback_utilisation: 1.0,
            calibration: None,
        }
    }

    #[test]
    fn nodes_for_rounds_up_but_forgives_float_noise() {
        let c = Capacity::new(10.0).unwrap();
        assert_eq!(c.nodes_for(30.0, 1.0), NodeCount(3));
        assert_eq!(c.nodes_for(30.000_000_001, 1.0), NodeCount(3));
        assert_eq!(c.nodes_for(30.1, 1.0), NodeCount(4));
        assert_eq!(c.nodes_for(35.0, 0.5), NodeCount(7));
        assert_eq!(c.nodes_for(0.0, 1.0), NodeCount(0));
        assert_eq!(c.nodes_for(f64::NAN, 1.0), NodeCount(0));
        assert_eq!(c.nodes_for(f64::INFINITY, 1.0), NodeCount(u32::MAX));
    }

    #[test]
    fn a_capacity_of_zero_or_bounds_the_wrong_way_round_are_refused() {
        let mut p = PoolParams {
            capacity_per_node: 0.0,
            min_nodes: 1,
            max_nodes: 5,
            lead_secs: 600,
        };
        assert_eq!(p.check().unwrap_err(), PolicyError::Capacity(0.0));
        p.capacity_per_node = 1.0;
        p.min_nodes = 6;
        assert_eq!(
            p.check().unwrap_err(),
            PolicyError::Bounds { min: 6, max: 5 }
        );
        p.min_nodes = 1;
        p.lead_secs = 0;
        assert_eq!(p.check().unwrap_err(), PolicyError::Lead(0));
    }

    #[test]
    fn the_predictive_plan_sizes_for_the_highest_forecast_over_the_lead_window() {
        let policy = bare().check(&pool(1, 100)).unwrap();
        let f = forecast(600, &[30.0, 55.0, 41.0]);
        let demand = [20.0];
        let input = PlanInput {
            forecast: Some(&f),
            ..PlanInput::observed(step(), &demand, &[])
        };
        let d = plan(&input, &PoolState::steady(NodeCount(2)), &policy, 600);
        assert_eq!(d.nodes(), NodeCount(6));
        assert!(d.is_change());
        assert!(matches!(
            d.reasons()[0],
            Reason::Forecast { from_horizon: 1, to_horizon: 3, demand, .. } if (demand - 55.0).abs() < 1e-9
        ));
    }

    #[test]
    fn a_missing_forecast_falls_back_to_current_demand_and_never_scales_in() {
        let policy = bare().check(&pool(1, 100)).unwrap();
        let demand = [25.0];
        let input = PlanInput::observed(step(), &demand, &[]);
        let up = plan(&input, &PoolState::steady(NodeCount(2)), &policy, 0);
        assert_eq!(up.nodes(), NodeCount(3));
        let hold = plan(&input, &PoolState::steady(NodeCount(9)), &policy, 0);
        assert_eq!(hold.nodes(), NodeCount(9));
        assert!(!hold.is_change());
        assert!(hold.reasons().contains(&Reason::NoScaleInWithoutForecast));
    }

    #[test]
    fn a_stale_forecast_is_not_used() {
        let policy = bare().check(&pool(1, 100)).unwrap();
        let f = forecast(0, &[1.0; 10]);
        let demand = [1.0];
        let input = PlanInput {
            forecast: Some(&f),
            ..PlanInput::observed(step(), &demand, &[])
        };
        let d = plan(&input, &PoolState::steady(NodeCount(9)), &policy, 180);
        assert_eq!(d.nodes(), NodeCount(9));
        assert!(matches!(
            d.reasons()[0],
            Reason::Fallback {
                cause: FallbackCause::Stale {
                    age_secs: 180,
                    max_age_secs: 120
                },
                ..
            }
        ));
    }

    #[test]
    fn a_slightly_old_forecast_is_read_at_shifted_horizons() {
        let policy = bare().check(&pool(1, 100)).unwrap();
        let f = forecast(0, &[90.0, 10.0, 10.0, 10.0, 70.0]);
        let demand = [1.0];
        let input = PlanInput {
            forecast: Some(&f),
            ..PlanInput::observed(step(), &demand, &[])
        };
        // At t=60 the lead window (3 steps) is horizons 2..=4 of a forecast made at 0.
        let d = plan(&input, &PoolState::steady(NodeCount(1)), &policy, 60);
        assert_eq!(d.nodes(), NodeCount(1));
        // At t=120 it reaches horizon 5.
        let d = plan(&input, &PoolState::steady(NodeCount(1)), &policy, 120);
        assert_eq!(d.nodes(), NodeCount(7));
    }

    #[test]
    fn drift_beyond_the_limit_falls_back() {
        let mut p = bare();
        p.max_error_ratio = Some(3.0);
        let policy = p.check(&pool(1, 100)).unwrap();
        let f = forecast(0, &[1.0; 3]);
        let demand = [1.0];
        let input = PlanInput {
            forecast: Some(&f),
            error_ratio: Some(4.0),
            ..PlanInput::observed(step(), &demand, &[])
        };
        let d = plan(&input, &PoolState::steady(NodeCount(5)), &policy, 0);
        assert_eq!(d.nodes(), NodeCount(5));
        assert!(matches!(
            d.reasons()[0],
            Reason::Fallback {
                cause: FallbackCause::Drifted { .. },
                ..
            }
        ));
    }

    #[test]
    fn the_reactive_floor_covers_demand_the_forecast_missed() {
        let mut p = bare();
        p.floor = Some(ReactiveFloor {
            utilisation: 0.5,
            window_secs: 60,
            trend_secs: 0,
            trend_gain: 0.0,
        });
        let policy = p.check(&pool(1, 100)).unwrap();
        let f = forecast(120, &[5.0; 3]);
        let demand = [100.0, 40.0, 10.0];
        let input = PlanInput {
            forecast: Some(&f),
            ..PlanInput::observed(step(), &demand, &[])
        };
        let d = plan(&input, &PoolState::steady(NodeCount(1)), &policy, 120);
        // max(40, 10) / (10 * 0.5) = 8
        assert_eq!(d.nodes(), NodeCount(8));
        assert!(d
            .reasons()
            .iter()
            .any(|r| matches!(r, Reason::ReactiveFloor { .. })));
    }

    #[test]
    fn the_trend_floor_extrapolates_a_rise_over_the_lead_time_and_ignores_a_fall() {
        let floor = ReactiveFloor {
            utilisation: 1.0,
            window_secs: 0,
            trend_secs: 120,
            trend_gain: 1.0,
        };
        // Rise of 10 over 2 steps = 5 per step, over a lead of 3 steps: +15.
        assert_eq!(
            floor.demand(&[0.0, 20.0, 25.0, 30.0], step(), 3),
            Some(45.0)
        );
        assert_eq!(
            floor.demand(&[0.0, 40.0, 35.0, 30.0], step(), 3),
            Some(30.0)
        );
        // Without enough history there is no trend, just the current demand.
        assert_eq!(floor.demand(&[30.0], step(), 3), Some(30.0));
        assert_eq!(floor.demand(&[1.0, f64::NAN], step(), 3), None);
        // A window shorter than a step covers the current bucket only.
        let window = ReactiveFloor {
            window_secs: 59,
            ..ReactiveFloor::current(1.0)
        };
        assert_eq!(window.demand(&[90.0, 10.0], step(), 3), Some(10.0));
        let window = ReactiveFloor {
            window_secs: 60,
            ..window
        };
        assert_eq!(window.demand(&[90.0, 10.0], step(), 3), Some(90.0));
    }

    #[test]
    fn a_calibration_never_gives_a_higher_planned_peak_a_lower_calibrated_one() {
        let cap = Capacity::new(10.0).unwrap();
        // Below 2 nodes peaks ran 3x the plan; from 2 nodes on, 1.1x.
        let mut pairs: Vec<(f64, f64)> = (0..60).map(|_| (15.0, 45.0)).collect();
        pairs.extend((0..60).map(|_| (30.0, 33.0)));
        let c = Calibration::fit(pairs, cap, 0.5, 50).unwrap();
        assert!((c.factor(15.0) - 3.0).abs() < 1e-9);
        assert!((c.factor(30.0) - 1.1).abs() < 1e-9);
        assert!((c.calibrated(15.0) - 45.0).abs() < 1e-9);
        // Just above the bin edge: not 21 * 1.1, but the 20 * 3 reached below it.
        assert!((c.calibrated(21.0) - 60.0).abs() < 1e-9);
        let mut last = 0.0;
        for k in 0..500 {
            let v = c.calibrated(f64::from(k) * 0.2);
            assert!(v >= last, "{v} < {last} at {k}");
            last = v;
        }
    }

    #[test]
    fn percent_steps_round_down_but_move_at_least_one_node() {
        assert_eq!(Adjustment::Percent(20.0).nodes(NodeCount(3)), 1);
        assert_eq!(Adjustment::Percent(20.0).nodes(NodeCount(14)), 2);
        assert_eq!(Adjustment::Nodes(3).nodes(NodeCount(14)), 3);
        assert!(Adjustment::Percent(0.0).check("step").is_err());
        assert!(Adjustment::Nodes(0).check("step").is_err());
    }

    #[test]
    fn threshold_settings_that_cannot_work_are_refused() {
        let pool = pool(1, 10);
        let p = ThresholdParams {
            scale_in_at: 0.8,
            ..ThresholdParams::default()
        };
        assert!(matches!(
            p.check(&pool),
            Err(PolicyError::ThresholdOrder { .. })
        ));
        let p = ThresholdParams {
            scale_out_m: 3,
            scale_out_n: 2,
            ..ThresholdParams::default()
        };
        assert_eq!(
            p.check(&pool).unwrap_err().to_string(),
            "scale-out alarm should need between 1 and N breaching datapoints out of N >= 1, but is 3 of 2"
        );
    }

    #[test]
    fn policy_names_read_back() {
        for k in PolicyKind::ALL {
            assert_eq!(k.name().parse::<PolicyKind>(), Ok(k));
        }
        assert!("magic".parse::<PolicyKind>().is_err());
    }

    #[test]
    fn a_decision_serializes_with_its_reasons() {
        let policy = bare().check(&pool(1, 100)).unwrap();
        let demand = [25.0];
        let d = plan(
            &PlanInput::observed(step(), &demand, &[]),
            &PoolState::steady(NodeCount(2)),
            &policy,
            0,
        );
        let json = serde_json::to_string(&d).unwrap();
        assert!(
            json.starts_with(r#"{"action":"scale_to","from":2,"nodes":3"#),
            "{json}"
        );
        assert!(json.contains(r#""cause":"missing""#), "{json}");
    }
}

// ---------------------------------------------------------------------------
// The workshop controller: size on a predicted latency against an SLA band.

/// The SLA-band controller of the original proactive-scaling workshop
/// (unchecked): when the predicted latency is above `target + threshold`, add
/// `increment` nodes; below `target - threshold`, remove `increment`; inside
/// the band, hold. Always within the pool's bounds (the workshop's "at
/// least N nodes" is the pool minimum).
#[derive(Debug, Clone, PartialEq)]
pub struct SlaParams {
    pub target: f64,
    pub threshold: f64,
    pub increment: u32,
}

/// Checked SLA-band settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckedSla {
    pool: CheckedPool,
    target: f64,
    threshold: f64,
    increment: u32,
}

impl SlaParams {
    /// Validate for a pool.
    pub fn check(&self, pool: &CheckedPool) -> Result<CheckedSla, PolicyError> {
        let ok = self.target > 0.0
            && self.target.is_finite()
            && self.threshold >= 0.0
            && self.threshold < self.target;
        if !ok {
            return Err(PolicyError::SlaBand {
                target: self.target,
                threshold: self.threshold,
            });
        }
        if self.increment == 0 {
            return Err(PolicyError::StepSize {
                name: "SLA increment",
                value: 0,
            });
        }
        Ok(CheckedSla {
            pool: *pool,
            target: self.target,
            threshold: self.threshold,
            increment: self.increment,
        })
    }
}

/// Plan from a predicted latency (a number that is not finite holds the pool:
/// no blind change).
pub fn sla_plan(predicted: f64, current: NodeCount, p: &CheckedSla) -> Decision {
    let hi = p.target + p.threshold;
    let lo = p.target - p.threshold;
    let wanted = if !predicted.is_finite() {
        current
    } else if predicted > hi {
        current.plus(p.increment)
    } else if predicted < lo {
        current.minus(p.increment)
    } else {
        current
    };
    let nodes = p.pool.clamp(wanted);
    let mut reasons = vec![Reason::SlaBand {
        predicted,
        target: p.target,
        threshold: p.threshold,
        change: i64::from(nodes.get()) - i64::from(current.get()),
    }];
    if nodes > wanted {
        reasons.push(Reason::ClampedToMin { min: p.pool.min });
    } else if nodes < wanted {
        reasons.push(Reason::ClampedToMax { max: p.pool.max });
    }
    if nodes == current {
        Decision::Hold {
            nodes,
            recommended: nodes,
            planned_demand: None,
            reasons,
        }
    } else {
        Decision::ScaleTo {
            from: current,
            nodes,
            recommended: nodes,
            planned_demand: None,
            reasons,
        }
    }
}

#[cfg(test)]
mod sla_tests {
    use super::*;

    fn sla(min: u32, max: u32) -> CheckedSla {
        let pool = PoolParams {
            capacity_per_node: 1.0,
            min_nodes: min,
            max_nodes: max,
            lead_secs: 60,
        }
        .check()
        .unwrap();
        SlaParams {
            target: 180.0,
            threshold: 20.0,
            increment: 2,
        }
        .check(&pool)
        .unwrap()
    }

    #[test]
    fn above_the_band_adds_the_increment_below_removes_it_inside_holds() {
        let p = sla(1, 20);
        assert_eq!(sla_plan(201.0, NodeCount(5), &p).nodes(), NodeCount(7));
        assert_eq!(sla_plan(159.0, NodeCount(5), &p).nodes(), NodeCount(3));
        let inside = sla_plan(200.0, NodeCount(5), &p);
        assert!(!inside.is_change());
        assert!(matches!(
            inside.reasons()[0],
            Reason::SlaBand { change: 0, .. }
        ));
    }

    #[test]
    fn the_pool_bounds_win_and_a_prediction_that_is_not_a_number_holds() {
        let p = sla(3, 6);
        assert_eq!(sla_plan(100.0, NodeCount(4), &p).nodes(), NodeCount(3));
        assert_eq!(sla_plan(100.0, NodeCount(3), &p).nodes(), NodeCount(3));
        assert_eq!(sla_plan(300.0, NodeCount(5), &p).nodes(), NodeCount(6));
        assert_eq!(sla_plan(f64::NAN, NodeCount(5), &p).nodes(), NodeCount(5));
    }

    #[test]
    fn a_band_that_reaches_zero_or_a_zero_increment_is_refused() {
        let pool = PoolParams {
            capacity_per_node: 1.0,
            min_nodes: 1,
            max_nodes: 5,
            lead_secs: 60,
        }
        .check()
        .unwrap();
        assert!(SlaParams {
            target: 10.0,
            threshold: 10.0,
            increment: 1
        }
        .check(&pool)
        .is_err());
        assert!(SlaParams {
            target: 10.0,
            threshold: 1.0,
            increment: 0
        }
        .check(&pool)
        .is_err());
    }
}
