//! The commands: thin wiring of sources, the core and stores. Everything that
//! decides lives in [`crate::core`]; everything that talks to the outside
//! world lives in [`crate::ingest`], [`crate::store`] and [`crate::azure`].

pub mod backtest;
pub mod inspect;
pub mod source;
pub mod storage;
pub mod train;
pub mod ui;

/// Process exit codes, documented in the README.
pub mod exit {
    /// Success: the model was published (train).
    pub const OK: i32 = 0;
    /// Failure: bad input, bad configuration, I/O or Azure error. Nothing was changed.
    pub const FAILED: i32 = 1;
    /// Usage error (unknown flag, missing value): printed by the argument parser.
    pub const USAGE: i32 = 2;
    /// The quality gate refused the model; the previous model stays published.
    pub const GATE_REFUSED: i32 = 3;
}
