//! `mlscaler backtest --mode vertical` (being written).

use crate::cli::BacktestArgs;
use anyhow::{bail, Result};
use serde::Serialize;

/// What the vertical backtest did.
#[derive(Debug, Serialize)]
pub struct Summary {}

/// Run `backtest --mode vertical`.
pub fn run(_args: &BacktestArgs, _quiet: bool) -> Result<(i32, Summary)> {
    bail!("backtest --mode vertical is not available yet")
}

/// The summary as text for people.
pub fn render_text(_s: &Summary) -> String {
    String::new()
}
