//! Every node-count policy behind one enum ([`Strategy`]), named by
//! [`PolicyKind`] in reports and plan files.

use super::decision::{Decision, PlanInput, PlannerMemory, PoolState};
use super::predictive::{plan, CheckedPolicy};
use super::reactive::{
    oracle_plan, seasonal_plan, threshold_plan, tracking_plan, CheckedOracle, CheckedSeasonalNaive,
    CheckedTargetTracking, CheckedThreshold,
};
use super::units::CheckedPool;
use crate::core::time::Step;
use serde::{Deserialize, Serialize};
use std::fmt;

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
    /// The report name, or the name `scale --policy` gives the same policy
    /// (`alarm`, `target-tracking`, `seasonal-naive`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = match s {
            "alarm" | "reactive-threshold" => "reactive_threshold",
            "target-tracking" => "target_tracking",
            "seasonal-naive" | "seasonal" => "seasonal_naive",
            other => other,
        };
        PolicyKind::ALL
            .into_iter()
            .find(|k| k.name() == name)
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

    /// How many recent datapoints ([`PlanInput::utilisation`]) the policy
    /// reads: `None` for the policies that read none.
    pub fn datapoints_needed(&self) -> Option<usize> {
        match self {
            Strategy::ReactiveThreshold(t) => Some(t.datapoints()),
            _ => None,
        }
    }

    /// Steps before the newest one the policy reads of the load
    /// ([`PlanInput::demand`], and its alarm datapoints) at `step`: handed
    /// at least this many more, it decides as on the whole history.
    pub fn history_steps(&self, step: Step) -> usize {
        match self {
            Strategy::Predictive(p) => p.history_steps(step),
            Strategy::ReactiveThreshold(t) => t.datapoints().saturating_sub(1),
            Strategy::TargetTracking(_) | Strategy::Oracle(_) => 0,
            Strategy::SeasonalNaive(s) => s.period_steps(step),
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
