//! A simulated node pool and the scoring of a policy run against it.
//!
//! [`SimPool`] is the pool: a scale-out requested at `t` is ready at
//! `t + lead`; a scale-in takes effect at once and removes the most recently
//! requested nodes first (nodes still provisioning are cancelled before ready
//! ones are removed); every requested node is billed from its request until
//! its removal, ready or not.
//!
//! [`Simulation`] walks a demand series bucket by bucket. At bucket `i`
//! (starting at `now`):
//! 1. scale-outs whose ready time has come become ready;
//! 2. the utilisation of the ready nodes by `demand[i]` becomes datapoint `i`;
//! 3. the policy decides from `demand[..=i]` (and, for the oracle only, the
//!    demand after `i`);
//! 4. the pool applies the decision;
//! 5. bucket `i` is scored: `demand[i]` against the *ready* nodes after the
//!    decision, billed for the *requested* nodes after the decision.
//!
//! Because step 3 sees nothing after bucket `i` (except for the oracle),
//! every row of a run depends only on the demand up to that row.

use crate::core::forecast::model::Forecast;
use crate::core::group::{
    Applied, Capabilities, GroupError, GroupErrorKind, GroupState, NodeGroup,
};
use crate::core::plan::control::{self, ControlMemory, Known, NodeControl};
use crate::core::plan::outcome::{before_write, BeforeWrite, Outcome, Wanted, WriteRules};
use crate::core::plan::{Calibration, Capacity, CheckedPool, Decision, NodeCount, PolicyKind};
use crate::core::time::Step;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// Relative tolerance of "demand exceeds ready capacity" (float noise is not
/// under-provisioning).
const CAPACITY_TOLERANCE: f64 = 1e-9;

/// What a change of target did to the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum PoolChange {
    /// Nothing.
    None,
    /// `added` nodes requested; ready after the lead time.
    Out { added: u32 },
    /// `cancelled` provisioning nodes and `removed` ready nodes taken away, at once.
    In { cancelled: u32, removed: u32 },
}

/// The node count a simulated pool starts with for `demand` now: just
/// enough nodes for it (at full utilisation), within the pool's bounds.
/// `scale --target sim` and the backtest start the same way.
pub fn sized_for(pool: &CheckedPool, demand: f64) -> NodeCount {
    pool.clamp(pool.capacity().nodes_for(demand, 1.0))
}

/// How long the simulated target's scale operations run. While one runs,
/// the target is busy (provisioning state `Updating`): like an AKS agent
/// pool or a scale set, it takes no other change, and a controller that
/// asks is held, as a 409 holds it live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operations {
    /// Seconds a scale-out operation runs (0: it ends at once).
    pub scale_out_secs: i64,
    /// Seconds a scale-in operation runs.
    pub scale_in_secs: i64,
}

/// The simulated pool: a [`NodeGroup`] by count whose new nodes are ready a
/// lead time after the request, whose removed nodes go at once, and which
/// runs one scale operation at a time. Plain data: `scale --target sim`
/// keeps it in its state file between runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimPool {
    lead_secs: i64,
    operations: Operations,
    /// The time the pool has been advanced to (writes through
    /// [`NodeGroup::set_count`] happen then).
    now: i64,
    ready: u32,
    /// Requested nodes not ready yet: (ready at, count), oldest request first.
    pending: VecDeque<(i64, u32)>,
    pending_total: u32,
    /// The running operation ends at this time (busy before it).
    busy_until: i64,
    /// Scale operations started.
    started: usize,
}

impl SimPool {
    /// A pool of `initial` ready nodes whose new nodes take `lead_secs` to
    /// become ready (a negative lead counts as zero), with operations that
    /// end at once.
    pub fn new(initial: NodeCount, lead_secs: i64) -> Self {
        SimPool {
            lead_secs: lead_secs.max(0),
            operations: Operations::default(),
            now: i64::MIN,
            ready: initial.get(),
            pending: VecDeque::new(),
            pending_total: 0,
            busy_until: i64::MIN,
            started: 0,
        }
    }

    /// The same pool, whose scale operations run as long as `operations` says.
    pub fn with_operations(mut self, operations: Operations) -> Self {
        self.operations = Operations {
            scale_out_secs: operations.scale_out_secs.max(0),
            scale_in_secs: operations.scale_in_secs.max(0),
        };
        self
    }

    /// Whether an operation is running at the time the pool was advanced to.
    pub fn is_busy(&self) -> bool {
        self.now < self.busy_until
    }

    /// Scale operations started so far.
    pub fn operations_started(&self) -> usize {
        self.started
    }

    /// Set the requested count at the time the pool was advanced to, as one
    /// operation that keeps the pool busy for its duration; refused (busy,
    /// nothing changes) while another runs.
    pub fn operate(&mut self, target: NodeCount) -> Result<PoolChange, GroupError> {
        if self.is_busy() {
            return Err(GroupError::new(
                GroupErrorKind::Busy,
                "the simulated pool is Updating: another operation is running",
            ));
        }
        let change = self.set_target(target, self.now);
        let took = match change {
            PoolChange::None => None,
            PoolChange::Out { .. } => Some(self.operations.scale_out_secs),
            PoolChange::In { .. } => Some(self.operations.scale_in_secs),
        };
        if let Some(secs) = took {
            self.started += 1;
            self.busy_until = self.now.saturating_add(secs);
        }
        Ok(change)
    }

    /// Apply `decision` as a live `scale` run applies it to a target read as
    /// `before` ([`before_write`], then one operation): the outcome, what the
    /// pool did, and whether a change had to wait for a running operation.
    pub fn write(
        &mut self,
        before: &GroupState,
        decision: &Decision,
        fell_back: bool,
    ) -> (Outcome, PoolChange, bool) {
        let planned = decision.nodes().get();
        let wanted = Wanted::Count {
            nodes: planned,
            recommended: decision.recommended().get(),
            fell_back,
        };
        match before_write(&wanted, before, WriteRules::default()) {
            BeforeWrite::End { outcome, .. } => {
                let waited = outcome == Outcome::Held && !before.is_idle();
                (outcome, PoolChange::None, waited)
            }
            BeforeWrite::Write => {
                let change = self
                    .operate(NodeCount(planned))
                    .expect("an idle simulated pool takes any count");
                (Outcome::Applied, change, false)
            }
        }
    }

    /// Let every scale-out whose ready time is at or before `now` become ready.
    pub fn advance(&mut self, now: i64) {
        self.now = self.now.max(now);
        while let Some(&(at, n)) = self.pending.front() {
            if at > now {
                break;
            }
            self.pending.pop_front();
            self.pending_total -= n;
            self.ready += n;
        }
    }

    /// Nodes ready to serve.
    pub fn ready(&self) -> NodeCount {
        NodeCount(self.ready)
    }

    /// Nodes still provisioning.
    pub fn pending(&self) -> NodeCount {
        NodeCount(self.pending_total)
    }

    /// Nodes requested (ready and provisioning): what is billed.
    pub fn requested(&self) -> NodeCount {
        NodeCount(self.ready + self.pending_total)
    }

    /// Set the requested count to `target` at `now`.
    pub fn set_target(&mut self, target: NodeCount, now: i64) -> PoolChange {
        let cur = self.ready + self.pending_total;
        let target = target.get();
        if target > cur {
            let added = target - cur;
            self.pending.push_back((now + self.lead_secs, added));
            self.pending_total += added;
            // A zero lead time means ready at once.
            self.advance(now);
            PoolChange::Out { added }
        } else if target < cur {
            let mut excess = cur - target;
            let mut cancelled = 0;
            while excess > 0 {
                let Some(last) = self.pending.back_mut() else {
                    break;
                };
                let take = last.1.min(excess);
                last.1 -= take;
                excess -= take;
                cancelled += take;
                self.pending_total -= take;
                if last.1 == 0 {
                    self.pending.pop_back();
                }
            }
            self.ready -= excess;
            PoolChange::In {
                cancelled,
                removed: excess,
            }
        } else {
            PoolChange::None
        }
    }
}

impl NodeGroup for SimPool {
    fn describe(&self) -> String {
        "simulated pool".to_string()
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::COUNT
    }
    fn read(&mut self) -> Result<GroupState, GroupError> {
        let mut state = GroupState::idle(self.requested().get());
        state.ready = Some(self.ready);
        if self.is_busy() {
            state.provisioning_state = "Updating".into();
        }
        Ok(state)
    }
    /// Set the requested count at the time the pool was advanced to; busy
    /// while an operation runs (nothing changes then).
    fn set_count(&mut self, _read: &GroupState, n: u32) -> Result<Applied, GroupError> {
        let from = self.requested().get();
        self.operate(NodeCount(n))?;
        Ok(Applied {
            count: n,
            field: "count".into(),
            detail: format!("simulated: {from} -> {n}"),
        })
    }
}

/// The metrics of one policy over the scored buckets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyMetrics {
    pub policy: PolicyKind,
    /// Buckets scored.
    pub steps: usize,
    /// Requested nodes x time, in node-hours.
    pub node_hours: f64,
    /// `node_hours` divided by the oracle's, when the oracle ran.
    pub node_hours_vs_oracle: Option<f64>,
    /// Share of buckets whose demand exceeded the ready capacity, in percent.
    pub under_provisioned_pct: f64,
    /// Demand above the ready capacity as a share of all demand, in percent.
    pub unserved_pct: f64,
    pub scale_outs: usize,
    pub scale_ins: usize,
    /// `scale_outs + scale_ins`: the scale operations sent to the target.
    pub actions: usize,
    /// Decisions whose change had to wait because an operation was running
    /// (held, as a 409 holds the live controller).
    #[serde(default)]
    pub waited: usize,
    /// Served demand divided by the billed capacity (requested nodes x
    /// capacity), over the scored buckets.
    pub mean_utilisation: f64,
    /// How often each kind of [`crate::core::plan::Reason`] appeared in the
    /// scored decisions.
    pub reasons: BTreeMap<String, usize>,
}

impl PoolChange {
    /// The change in requested nodes: `+n` out, `-n` in (cancelled and
    /// removed), 0 none.
    pub fn nodes(self) -> i64 {
        match self {
            PoolChange::None => 0,
            PoolChange::Out { added } => i64::from(added),
            PoolChange::In { cancelled, removed } => -(i64::from(cancelled) + i64::from(removed)),
        }
    }
}

/// Whether `demand` exceeds `ready_cap` (beyond rounding): an
/// under-provisioned bucket.
pub fn short_of(demand: f64, ready_cap: f64) -> bool {
    demand > ready_cap * (1.0 + CAPACITY_TOLERANCE)
}

/// Running sums behind [`PolicyMetrics`].
#[derive(Debug, Clone, Default)]
pub struct Score {
    steps: usize,
    node_secs: f64,
    under: usize,
    demand: f64,
    unserved: f64,
    served: f64,
    billed: f64,
    scale_outs: usize,
    scale_ins: usize,
    waited: usize,
    reasons: BTreeMap<&'static str, usize>,
}

impl Score {
    /// Score one bucket of `step_secs`: `demand` served by `ready` nodes,
    /// `requested` nodes billed, `change` the action taken in it.
    pub fn add(
        &mut self,
        capacity: Capacity,
        step_secs: i64,
        demand: f64,
        ready: NodeCount,
        requested: NodeCount,
        change: PoolChange,
    ) {
        let cap = capacity.per_node();
        let ready_cap = f64::from(ready.get()) * cap;
        let demand = if demand.is_finite() {
            demand.max(0.0)
        } else {
            0.0
        };
        self.steps += 1;
        self.node_secs += f64::from(requested.get()) * step_secs as f64;
        if short_of(demand, ready_cap) {
            self.under += 1;
            self.unserved += demand - ready_cap;
        }
        self.demand += demand;
        self.served += demand.min(ready_cap);
        self.billed += f64::from(requested.get()) * cap;
        match change {
            PoolChange::Out { .. } => self.scale_outs += 1,
            PoolChange::In { .. } => self.scale_ins += 1,
            PoolChange::None => {}
        }
    }

    /// Count a decision whose change had to wait for a running operation.
    pub fn add_wait(&mut self) {
        self.waited += 1;
    }

    /// Tally the kinds of reasons of a scored decision.
    pub fn add_reasons(&mut self, decision: &Decision) {
        for r in decision.reasons() {
            *self.reasons.entry(r.kind()).or_default() += 1;
        }
    }

    /// The metrics so far (ratios are 0 when nothing was scored).
    pub fn metrics(&self, policy: PolicyKind) -> PolicyMetrics {
        let pct = |a: f64, b: f64| if b > 0.0 { 100.0 * a / b } else { 0.0 };
        PolicyMetrics {
            policy,
            steps: self.steps,
            node_hours: self.node_secs / 3_600.0,
            node_hours_vs_oracle: None,
            under_provisioned_pct: pct(self.under as f64, self.steps as f64),
            unserved_pct: pct(self.unserved, self.demand),
            scale_outs: self.scale_outs,
            scale_ins: self.scale_ins,
            actions: self.scale_outs + self.scale_ins,
            waited: self.waited,
            mean_utilisation: if self.billed > 0.0 {
                self.served / self.billed
            } else {
                0.0
            },
            reasons: self
                .reasons
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
        }
    }
}

/// One simulated bucket.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SimStep {
    /// Start of the bucket.
    pub time: i64,
    pub demand: f64,
    /// The demand the policy sized for, when it had a forecast of it.
    pub planned_demand: Option<f64>,
    /// Nodes requested after the decision of this bucket.
    pub target: NodeCount,
    /// Nodes ready after the decision of this bucket (they serve its demand).
    pub ready: NodeCount,
    pub change: PoolChange,
    /// The decision wanted a change that had to wait for a running operation.
    pub waited: bool,
}

/// A finished run of one policy.
#[derive(Debug, Clone, PartialEq)]
pub struct SimRun {
    pub policy: PolicyKind,
    /// One per bucket, in order.
    pub steps: Vec<SimStep>,
    /// Over the scored buckets.
    pub metrics: PolicyMetrics,
}

/// What a forecaster knows at one bucket, handed to a predictive policy
/// (ignored by the others).
#[derive(Debug, Clone, Copy, Default)]
pub struct ForecastContext<'a> {
    /// The forecast made at the bucket's start.
    pub forecast: Option<&'a Forecast>,
    /// Recent error relative to the forecaster's evaluated error.
    pub error_ratio: Option<f64>,
    /// Recent forecast peaks against actual peaks.
    pub calibration: Option<&'a Calibration>,
}

/// A run of one node-count controller over a demand series, one bucket at
/// a time (so that a caller can hand in each bucket's forecast as it
/// computes it), against the simulated pool. Each bucket goes through the
/// same steps as a live `scale` run: read the target, decide
/// ([`control::decide`]), write unless there is nothing to do or the target
/// is busy ([`before_write`]), and remember ([`control::remember`]).
pub struct Simulation<'a> {
    control: &'a NodeControl,
    start: i64,
    step: Step,
    demand: &'a [f64],
    pool: SimPool,
    memory: ControlMemory,
    steps: Vec<SimStep>,
    /// The controller's first decision (earlier buckets only hold the pool).
    begin: usize,
    score_from: usize,
    score: Score,
}

impl<'a> Simulation<'a> {
    /// A run of `control` over `demand` (bucket `i` starts at
    /// `start + i * step`), starting from `initial` ready nodes (clamped to
    /// the policy's bounds) on a pool whose operations run as `operations`
    /// says, scoring buckets from index `score_from` on. The controller
    /// starts at the first bucket, as a live controller without a state file
    /// does (see [`Simulation::beginning_at`]).
    pub fn new(
        control: &'a NodeControl,
        start: i64,
        step: Step,
        demand: &'a [f64],
        initial: NodeCount,
        operations: Operations,
        score_from: usize,
    ) -> Self {
        let pool = control.strategy.pool();
        let initial = pool.clamp(initial);
        Simulation {
            control,
            start,
            step,
            demand,
            pool: SimPool::new(initial, pool.lead_secs()).with_operations(operations),
            memory: ControlMemory::default(),
            steps: Vec::with_capacity(demand.len()),
            begin: 0,
            score_from,
            score: Score::default(),
        }
    }

    /// The same run, whose controller makes its first decision at bucket
    /// `begin`: the buckets before only hold the pool at its initial count.
    pub fn beginning_at(mut self, begin: usize) -> Self {
        self.begin = begin;
        self
    }

    /// Index of the next bucket to simulate.
    pub fn next_index(&self) -> usize {
        self.steps.len()
    }

    /// Whether every bucket has been simulated.
    pub fn is_done(&self) -> bool {
        self.steps.len() >= self.demand.len()
    }

    /// Simulate the next bucket with what the forecaster knows at its start.
    /// `None` when done.
    pub fn step(&mut self, ctx: ForecastContext<'_>) -> Option<SimStep> {
        let i = self.steps.len();
        let &d = self.demand.get(i)?;
        let now = self.start + i as i64 * self.step.secs();
        let capacity = self.control.strategy.pool().capacity();
        self.pool.advance(now);
        let before = self.pool.read().expect("a simulated pool always answers");
        if i < self.begin {
            return Some(self.hold_before_start(i, now, d, capacity));
        }
        if i == self.begin {
            // As a live controller without a state file starts.
            self.memory = ControlMemory::starting(now, before.count);
        }
        let known = Known {
            step: self.step,
            demand: &self.demand[..=i],
            forecast: ctx.forecast,
            error_ratio: ctx.error_ratio,
            calibration: ctx.calibration,
            future: &self.demand[i + 1..],
        };
        let decided = control::decide(self.control, &known, &before, &self.memory, now);
        let (outcome, change, waited) =
            self.pool
                .write(&before, &decided.decision, decided.fell_back);
        control::remember(
            self.control,
            &mut self.memory,
            &decided,
            outcome,
            &before,
            self.step,
            now,
        );
        let s = SimStep {
            time: now,
            demand: d,
            planned_demand: decided.decision.planned_demand(),
            target: self.pool.requested(),
            ready: self.pool.ready(),
            change,
            waited,
        };
        if i >= self.score_from {
            self.score
                .add(capacity, self.step.secs(), d, s.ready, s.target, change);
            self.score.add_reasons(&decided.decision);
            if waited {
                self.score.add_wait();
            }
        }
        self.steps.push(s);
        Some(s)
    }

    /// A bucket before the controller starts: the pool as it stands.
    fn hold_before_start(&mut self, i: usize, now: i64, d: f64, capacity: Capacity) -> SimStep {
        let s = SimStep {
            time: now,
            demand: d,
            planned_demand: None,
            target: self.pool.requested(),
            ready: self.pool.ready(),
            change: PoolChange::None,
            waited: false,
        };
        if i >= self.score_from {
            self.score.add(
                capacity,
                self.step.secs(),
                d,
                s.ready,
                s.target,
                PoolChange::None,
            );
        }
        self.steps.push(s);
        s
    }

    /// The run so far.
    pub fn finish(self) -> SimRun {
        let policy = self.control.strategy.kind();
        SimRun {
            policy,
            metrics: self.score.metrics(policy),
            steps: self.steps,
        }
    }
}

/// Run a controller that needs no forecast over the whole series.
pub fn simulate(
    control: &NodeControl,
    start: i64,
    step: Step,
    demand: &[f64],
    initial: NodeCount,
    operations: Operations,
    score_from: usize,
) -> SimRun {
    let mut sim = Simulation::new(
        control, start, step, demand, initial, operations, score_from,
    );
    while sim.step(ForecastContext::default()).is_some() {}
    sim.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scale_out_becomes_ready_after_the_lead_time_and_is_billed_from_the_request() {
        let mut p = SimPool::new(NodeCount(2), 600);
        assert_eq!(p.set_target(NodeCount(5), 0), PoolChange::Out { added: 3 });
        assert_eq!((p.ready(), p.requested()), (NodeCount(2), NodeCount(5)));
        p.advance(599);
        assert_eq!(p.ready(), NodeCount(2));
        p.advance(600);
        assert_eq!(p.ready(), NodeCount(5));
    }

    #[test]
    fn a_scale_in_cancels_provisioning_nodes_before_removing_ready_ones() {
        let mut p = SimPool::new(NodeCount(4), 600);
        let _ = p.set_target(NodeCount(6), 0);
        let _ = p.set_target(NodeCount(7), 60);
        assert_eq!(
            p.set_target(NodeCount(3), 120),
            PoolChange::In {
                cancelled: 3,
                removed: 1
            }
        );
        assert_eq!((p.ready(), p.pending()), (NodeCount(3), NodeCount(0)));
        p.advance(10_000);
        assert_eq!(p.ready(), NodeCount(3));
    }

    #[test]
    fn a_zero_lead_time_makes_new_nodes_ready_at_once() {
        let mut p = SimPool::new(NodeCount(1), 0);
        let _ = p.set_target(NodeCount(3), 0);
        assert_eq!(p.ready(), NodeCount(3));
    }
}
