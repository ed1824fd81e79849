//! The reactive baselines mlscaler is compared against (and which teams run
//! today): the threshold alarm rule, target tracking, seasonal naive, and the
//! perfect-foresight oracle that bounds what any policy can save.

use super::decision::{Decision, FallbackCause, PlanInput, PoolState, Reason};
use super::rules::{
    check_duration, check_utilisation, clamp_with_reason, decide, finish, hold_without_data, Rules,
    Sizing,
};
use super::units::{CheckedPool, NodeCount, PolicyError};
use crate::core::time::Step;
use serde::{Deserialize, Serialize};

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
    pub(super) fn nodes(self, current: NodeCount) -> u32 {
        match self {
            Adjustment::Nodes(n) => n,
            Adjustment::Percent(p) => ((f64::from(current.0) * p / 100.0).floor() as u32).max(1),
        }
    }
    pub(super) fn check(self, name: &'static str) -> Result<Adjustment, PolicyError> {
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
    pub(super) pool: CheckedPool,
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

impl CheckedThreshold {
    /// Datapoints the alarms look back over: the longer of the two N.
    pub fn datapoints(&self) -> usize {
        self.p.out_n.max(self.p.in_n)
    }
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

pub(super) fn threshold_plan(
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
    pub(super) pool: CheckedPool,
    pub(super) target_utilisation: f64,
    pub(super) rules: Rules,
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

pub(super) fn tracking_plan(
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
            period_secs: crate::core::time::DAY_SECS,
            margin: 0.2,
            floor_on_current: true,
        }
    }
}

/// Checked seasonal naive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckedSeasonalNaive {
    pub(super) pool: CheckedPool,
    pub(super) period_secs: i64,
    pub(super) margin: f64,
    pub(super) floor_on_current: bool,
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

impl CheckedSeasonalNaive {
    /// The period in whole steps, rounded up, never shorter than the lead
    /// (the same time one period earlier must already be observed): also
    /// the steps before the newest one that [`seasonal_plan`] reads.
    pub fn period_steps(&self, step: Step) -> usize {
        step.steps_ceil(self.period_secs)
            .max(self.pool.lead_steps(step))
    }
}

pub(super) fn seasonal_plan(
    input: &PlanInput<'_>,
    state: &PoolState,
    s: &CheckedSeasonalNaive,
    now: i64,
) -> Decision {
    let pool = &s.pool;
    let lead = pool.lead_steps(input.step);
    let period = s.period_steps(input.step);
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
    pub(super) pool: CheckedPool,
    /// Seconds after the lead time the count must also cover: the longest
    /// scale operation, during which the target takes no other change.
    #[serde(default)]
    pub(super) busy_secs: i64,
}

impl CheckedOracle {
    /// The oracle for a pool whose operations end at once.
    pub fn new(pool: &CheckedPool) -> Self {
        CheckedOracle {
            pool: *pool,
            busy_secs: 0,
        }
    }

    /// The oracle for a pool that runs one operation at a time, the longest
    /// taking `busy_secs`: a count set now must cover the load until a
    /// change asked once the operation ends is ready, so it covers the lead
    /// window and that long after it (and so is never short).
    pub fn with_operations(pool: &CheckedPool, busy_secs: i64) -> Self {
        CheckedOracle {
            pool: *pool,
            busy_secs: busy_secs.max(0),
        }
    }
}

pub(super) fn oracle_plan(input: &PlanInput<'_>, state: &PoolState, o: &CheckedOracle) -> Decision {
    let pool = &o.pool;
    let lead = pool.lead_steps(input.step) + input.step.steps_busy(o.busy_secs);
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
