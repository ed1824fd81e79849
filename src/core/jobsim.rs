//! Job-queue simulation for `backtest --mode jobs` (being written).
