//! The pure core: no I/O, no clock. Everything here is a function of its inputs,
//! so every result can be reproduced in a test.
//!
//! - [`time`]: steps and durations;
//! - [`forecast`]: series, features, models, metrics, the quality gate;
//! - [`group`]: the one interface of every scale target ([`group::NodeGroup`]);
//! - [`plan`]: units, decisions, every policy (node counts, instances, VM sizes)
//!   and how a run ends ([`plan::outcome`]);
//! - [`sim`]: simulated targets and the replays that score policies on history.

pub mod forecast;
pub mod group;
pub mod plan;
pub mod sim;
pub mod time;
