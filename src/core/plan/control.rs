//! The node-count controller, one decision: what `scale` runs once per run
//! and `backtest` once per step, so that a replay makes exactly the
//! decisions the live controller makes.
//!
//! A decision reads the target's state (as the one target interface reports
//! it), what is known of the load up to `now`, the forecast signals (for the
//! predictive policy) and the controller's memory; it returns the planner's
//! [`Decision`] and whether the forecast was set aside. After the run has
//! concluded (written, or held, see [`crate::core::plan::outcome`]),
//! [`remember`] moves the memory on with what really happened. Both
//! functions are pure: the same arguments give the same result.
//!
//! The memory is what a scheduled controller keeps between runs in its
//! state file: the planner's (last actions, recent recommendations) and the
//! ready node count seen at each recent decision, which turns the load into
//! the alarm's utilisation datapoints as the target really was.

use super::calibration::Calibration;
use super::decision::{Decision, PlanInput, PlannerMemory, PoolState, Reason};
use super::outcome::Outcome;
use super::strategy::Strategy;
use super::units::NodeCount;
use crate::core::forecast::model::Forecast;
use crate::core::group::GroupState;
use crate::core::time::Step;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// What an alarm's datapoints are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Datapoints {
    /// Load / (ready nodes x capacity per node).
    Utilisation,
    /// The metric itself (a published load metric such as queue length).
    Metric,
}

/// A node-count controller: the policy, and the alarm rule that decides
/// instead when the forecast is not trusted (`--fallback alarm`).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeControl {
    pub strategy: Strategy,
    pub fallback: Option<Strategy>,
    pub datapoints: Datapoints,
}

/// What a controller remembers between decisions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ControlMemory {
    /// The planner's memory (kept at the top level of the state file, as
    /// before the controller remembered anything else).
    #[serde(flatten)]
    pub planner: PlannerMemory,
    /// The ready node count seen at recent decisions (time, nodes), oldest
    /// first, as long as the alarm's datapoints need them.
    #[serde(default, skip_serializing_if = "VecDeque::is_empty")]
    pub ready: VecDeque<(i64, u32)>,
}

impl ControlMemory {
    /// A memory that starts with `nodes` recommended at `now`: a controller
    /// without a history never scales in before a whole stabilisation window
    /// has been observed.
    pub fn starting(now: i64, nodes: u32) -> ControlMemory {
        let mut m = ControlMemory::default();
        m.planner.recommendations.push_back((now, NodeCount(nodes)));
        m
    }

    /// The ready nodes behind the datapoint at `t`: what was seen at the
    /// latest decision at or before `t` (the first one seen for earlier
    /// times), or `current` when nothing was seen yet.
    fn ready_at(&self, t: i64, current: u32) -> u32 {
        match self.ready.iter().rev().find(|(at, _)| *at <= t) {
            Some((_, n)) => *n,
            None => self.ready.front().map_or(current, |(_, n)| *n),
        }
    }
}

/// What is known at `now`: the load up to and including the bucket that
/// starts at `now`, and the forecast signals of a predictive policy.
#[derive(Debug, Clone, Copy)]
pub struct Known<'a> {
    pub step: Step,
    pub demand: &'a [f64],
    pub forecast: Option<&'a Forecast>,
    pub error_ratio: Option<f64>,
    pub calibration: Option<&'a Calibration>,
    /// The load after `now`: read by the oracle only.
    pub future: &'a [f64],
}

impl NodeControl {
    /// Steps before the newest one a decision reads of the load at `step`:
    /// the policy's and its alarm fallback's (see
    /// [`Strategy::history_steps`]).
    pub fn history_steps(&self, step: Step) -> usize {
        [Some(&self.strategy), self.fallback.as_ref()]
            .into_iter()
            .flatten()
            .map(|s| s.history_steps(step))
            .max()
            .unwrap_or(0)
    }
}

/// A decision and how it was made.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    pub decision: Decision,
    /// The forecast was not used (missing, stale, drifted) and the built-in
    /// reactive rule decided: a lower recommendation is held, never applied.
    pub fell_back: bool,
    /// The forecast was not trusted and the alarm rule decided instead.
    pub by_alarm: bool,
    /// With `by_alarm`, the steps of the policy's own decision that was set
    /// aside (why the forecast was not trusted).
    pub set_aside: Vec<Reason>,
}

/// Decide at `now` for the target in `state`.
pub fn decide(
    c: &NodeControl,
    known: &Known<'_>,
    state: &GroupState,
    memory: &ControlMemory,
    now: i64,
) -> Decided {
    let pool_state = PoolState {
        requested: NodeCount(state.count),
        ready: NodeCount(state.ready.unwrap_or(state.count)),
        memory: memory.planner.clone(),
    };
    let datapoints = |s: &Strategy| datapoints(c, s, known, state, memory, now);
    let uses_forecast = c.strategy.uses_forecast();
    let input = PlanInput {
        step: known.step,
        demand: known.demand,
        utilisation: &datapoints(&c.strategy),
        forecast: known.forecast.filter(|_| uses_forecast),
        error_ratio: known.error_ratio.filter(|_| uses_forecast),
        calibration: known.calibration.filter(|_| uses_forecast),
        future: if c.strategy.uses_future() {
            known.future
        } else {
            &[]
        },
    };
    let decision = c.strategy.decide(&input, &pool_state, now);
    let fell_back = decision
        .reasons()
        .iter()
        .any(|r| matches!(r, Reason::Fallback { .. }));
    if let (true, Some(alarm)) = (fell_back, &c.fallback) {
        let points = datapoints(alarm);
        let input = PlanInput::observed(known.step, known.demand, &points);
        return Decided {
            decision: alarm.decide(&input, &pool_state, now),
            fell_back: false,
            by_alarm: true,
            set_aside: decision.reasons().to_vec(),
        };
    }
    Decided {
        decision,
        fell_back,
        by_alarm: false,
        set_aside: Vec::new(),
    }
}

/// The datapoints an alarm rule reads: the recent load, or its utilisation
/// of the nodes that were ready when each bucket was observed. Empty for
/// the policies that read none.
fn datapoints(
    c: &NodeControl,
    s: &Strategy,
    known: &Known<'_>,
    state: &GroupState,
    memory: &ControlMemory,
    now: i64,
) -> Vec<f64> {
    let Some(n) = s.datapoints_needed() else {
        return Vec::new();
    };
    let d = known.demand;
    let from = d.len().saturating_sub(n);
    let step = known.step.secs();
    let current = state.ready.unwrap_or(state.count);
    let capacity = s.pool().capacity();
    (from..d.len())
        .map(|j| match c.datapoints {
            Datapoints::Metric => d[j],
            Datapoints::Utilisation => {
                let t = now - (d.len() - 1 - j) as i64 * step;
                let ready = if t >= now {
                    current
                } else {
                    memory.ready_at(t, current)
                };
                capacity.utilisation(d[j], NodeCount(ready))
            }
        })
        .collect()
}

/// Move the memory on after a run that planned `decided` from `before` and
/// ended with `outcome`: a change counts only if it was made; the ready
/// count seen is kept for the alarm's datapoints.
pub fn remember(
    c: &NodeControl,
    memory: &mut ControlMemory,
    decided: &Decided,
    outcome: Outcome,
    before: &GroupState,
    step: Step,
    now: i64,
) {
    let d = &decided.decision;
    let recorded = match (d, outcome.changed()) {
        (Decision::ScaleTo { .. }, true) => d.clone(),
        _ => Decision::Hold {
            nodes: NodeCount(before.count),
            recommended: d.recommended(),
            planned_demand: d.planned_demand(),
            reasons: vec![],
        },
    };
    c.strategy.record(&mut memory.planner, &recorded, now);
    let keep = [Some(&c.strategy), c.fallback.as_ref()]
        .into_iter()
        .flatten()
        .filter_map(Strategy::datapoints_needed)
        .max();
    match keep {
        Some(n) => {
            memory
                .ready
                .push_back((now, before.ready.unwrap_or(before.count)));
            let horizon = now - n as i64 * step.secs();
            // Keep the newest entry at or before the oldest datapoint too.
            while memory.ready.len() > 1 && memory.ready[1].0 <= horizon {
                memory.ready.pop_front();
            }
        }
        None => memory.ready.clear(),
    }
}
