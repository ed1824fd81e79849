//! Everything for people: the records and summaries every command prints
//! (as text; the same values serialize to JSON for pipelines), tables,
//! plots (SVG) and the plan CSV files.
//!
//! - [`scale`]: the decision records of `scale` and the plan's plot;
//! - [`train`]: what `train` did, and the evaluation plots;
//! - [`backtest`], [`backtest_jobs`], [`backtest_vertical`], [`backtest_sla`]: what a replay
//!   found, its plan CSV and plots;
//! - [`tune`]: the candidates, the choice and its held-back score;
//! - [`inspect`]: a model card;
//! - [`plot`], [`table`]: the SVG charts and text tables they share.

pub mod backtest;
pub mod backtest_jobs;
pub mod backtest_sla;
pub mod backtest_vertical;
pub mod inspect;
pub mod plot;
pub mod scale;
pub mod table;
pub mod train;
pub mod tune;
