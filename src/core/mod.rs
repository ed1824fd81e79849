//! The pure core: no I/O, no clock. Everything here is a function of its inputs,
//! so every result can be reproduced in a test.
//!
//! - [`time`]: steps and durations;
//! - [`series`]: regular load series and resampling with an explicit gap policy;
//! - [`calendar`]: special days and events;
//! - [`features`]: feature rows for direct multi-step forecasting;
//! - [`model`]: the ridge forecaster, naive baselines, walk-forward evaluation;
//! - [`regression`]: one metric on others (latency on user counts);
//! - [`metrics`]: MAE, RMSE, sMAPE, coverage, pinball loss, R².

pub mod backtest;
pub mod calendar;
pub mod control;
pub mod features;
pub mod gate;
pub mod instances;
pub mod jobsim;
pub mod metrics;
pub mod model;
pub mod policy;
pub mod regression;
pub mod series;
pub mod sim;
pub mod time;
pub mod vertical;
pub mod vertsim;
