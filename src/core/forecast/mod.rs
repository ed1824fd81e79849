//! Forecasting: regular load series, calendars, features, the ridge
//! forecaster and naive baselines, the regression model, error metrics and
//! the quality gate.
//!
//! - [`series`]: regular load series and resampling with an explicit gap policy;
//! - [`calendar`]: special days and events;
//! - [`conformal`]: calibrated quantiles (per horizon and of the lead-window peak);
//! - [`features`]: feature rows for direct multi-step forecasting;
//! - [`model`]: the ridge forecaster, naive baselines, walk-forward evaluation;
//! - [`regression`]: one metric on others (latency on user counts);
//! - [`metrics`]: MAE, RMSE, sMAPE, coverage, pinball loss, R²;
//! - [`gate`]: whether a model beats the baselines enough to be published.

pub mod calendar;
pub mod conformal;
pub mod features;
pub mod gate;
pub mod metrics;
pub mod model;
pub mod regression;
pub mod series;
