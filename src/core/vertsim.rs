//! VM-size ladder simulation for `backtest --mode vertical` (being written).
