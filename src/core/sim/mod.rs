//! Simulated targets and replays: the node pool with its lead time
//! ([`pool`]), the walk-forward backtest of node-count policies
//! ([`backtest`]), the job-queue replay ([`jobs`]) and the VM-size ladder
//! replay ([`vertical`]), the SLA band's replay ([`sla`]), and the search for a team's profile ([`tune`]).

pub mod backtest;
pub mod jobs;
pub mod pool;
pub mod sla;
pub mod tune;
pub mod vertical;
