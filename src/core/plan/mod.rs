//! Planning: pure functions of (what is known now, the target's state, the
//! checked settings, the time) to a decision that carries every step that
//! produced it as a typed [`Reason`].
//!
//! - [`units`]: node counts, capacity per node, the pool's bounds and lead;
//! - [`decision`]: what a policy reads ([`PlanInput`], [`PoolState`]) and
//!   returns ([`Decision`] with its [`Reason`]s);
//! - [`rules`]: bounds, stabilisation, cooldowns and step limits shared by
//!   the policies that size from a demand figure;
//! - [`calibration`]: forecast peaks against the peaks that followed;
//! - [`predictive`]: mlscaler's own policy ([`plan`]);
//! - [`reactive`]: the threshold alarm, target tracking, seasonal naive and
//!   the oracle;
//! - [`strategy`]: every node-count policy behind one enum ([`Strategy`]);
//! - [`sla`]: the workshop's SLA band on a predicted latency;
//! - [`control`]: one decision of the node-count controller and its memory,
//!   the same in `scale` and `backtest`;
//! - [`signals`]: forecast, drift and calibration from a model and the
//!   recent load, as the controller hands them to the planner;
//! - [`instances`]: scale by instance for job schedulers;
//! - [`vertical`]: move along a ladder of VM sizes on memory pressure;
//! - [`outcome`]: how a run ends, for every policy and mode, and its exit code.
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

pub mod calibration;
pub mod control;
pub mod decision;
pub mod instances;
pub mod outcome;
pub mod predictive;
pub mod reactive;
pub mod rules;
pub mod signals;
pub mod sla;
pub mod strategy;
pub mod units;
pub mod vertical;

#[cfg(test)]
mod tests;

pub use calibration::{Calibration, CalibrationParams, CALIBRATION_BINS};
pub use decision::{Decision, FallbackCause, PlanInput, PlannerMemory, PoolState, Reason};
pub use predictive::{plan, CheckedPolicy, LeadWindow, PredictiveParams, ReactiveFloor};
pub use reactive::{
    Adjustment, CheckedOracle, CheckedSeasonalNaive, CheckedTargetTracking, CheckedThreshold,
    SeasonalNaiveParams, TargetTrackingParams, ThresholdParams,
};
pub use sla::{sla_plan, CheckedSla, SlaParams};
pub use strategy::{PolicyKind, Strategy};
pub use units::{Capacity, CheckedPool, NodeCount, PolicyError, PoolParams};
