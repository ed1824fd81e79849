//! mlscaler: a predictive, ML-driven node scaler for AKS agent pools and Azure
//! VM Scale Sets.
//!
//! The crate is a functional core with an imperative shell:
//!
//! - [`cli`]: the raw command line; [`settings`]: checked settings per
//!   command, built from it once (with the config file and the environment).
//! - [`core`]: pure code (forecasting, planning, outcomes, simulated targets). No I/O, no clock.
//! - [`ingest`]: turns bytes (CSV, Parquet, NDJSON, raw logs) into observations.
//! - [`store`]: the model artifact format and where artifacts live (files or Blob).
//! - [`azure`]: Azure adapters (Blob Storage, credentials).
//! - [`arm`]: typed Azure Resource Manager client (AKS agent pools, VM Scale Sets).
//! - [`report`]: everything for people: records as text, tables, plots, CSV.
//! - [`app`]: the commands, wiring the pieces above together.
#![deny(unsafe_code)]

pub mod app;
pub mod arm;
pub mod azure;
pub mod cli;
pub mod core;
pub mod ingest;
pub mod report;
pub mod settings;
pub mod store;
