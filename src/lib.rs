//! mlscaler: a predictive, ML-driven node scaler for AKS agent pools and Azure
//! VM Scale Sets.
//!
//! The crate is a functional core with an imperative shell:
//!
//! - [`core`]: pure code (series, features, models, evaluation). No I/O, no clock.
//! - [`ingest`]: turns bytes (CSV, Parquet, NDJSON, raw logs) into observations.
//! - [`store`]: the model artifact format and where artifacts live (files or Blob).
//! - [`azure`]: Azure adapters (Blob Storage, credentials).
//! - [`arm`]: typed Azure Resource Manager client (AKS agent pools, VM Scale Sets).
//! - [`report`]: plots and human/JSON output.
//! - [`app`]: the commands, wiring the pieces above together.
#![deny(unsafe_code)]

pub mod app;
pub mod arm;
pub mod azure;
pub mod cli;
pub mod config;
pub mod core;
pub mod ingest;
pub mod report;
pub mod store;
