//! The replay of the SLA band behind `backtest --mode sla`: a regression
//! model's predicted latency, row by row, through [`sla_plan`] against the
//! simulated pool (one operation at a time), exactly as `scale --policy sla
//! --target sim --state S --now t` decides when it is run once per row.
//! Pure: no I/O, no clock.
//!
//! At row `i` (starting at `time[i]`):
//! 1. scale-outs whose ready time has come become ready;
//! 2. the band decides from `predicted[i]` (the model's prediction from
//!    row `i`'s inputs) and the requested count;
//! 3. the pool applies the decision as a live run applies it
//!    ([`SimPool::write`]): a change asked while an operation runs waits.
//!
//! # Scoring
//! The band does not size for a demand, so there is no under-provisioning
//! to score. Over the scored rows: node-hours (requested nodes, billed from
//! the request), the mean and largest requested count, the operations and
//! the changes that waited, how often the prediction was above and below
//! the band, how often the pool sat at its maximum, and, when the data has
//! the model's target column, how often the *recorded* value was above the
//! band and the prediction's mean absolute error against it. The recorded
//! value was measured on the pool that actually ran, not on the replayed
//! one: it says how often the band was broken, not whether the replayed
//! pool would have kept it.

use super::backtest::PlanLine;
use super::pool::{Operations, PoolChange, SimPool};
use crate::core::group::NodeGroup;
use crate::core::plan::{sla_plan, CheckedSla, NodeCount};
use serde::{Deserialize, Serialize};

/// The policy name of the SLA band in plans and reports.
pub const SLA_POLICY: &str = "sla_band";

/// What the replay reads at each row.
#[derive(Debug, Clone, Copy)]
pub struct SlaInput<'a> {
    /// Start of each row (epoch seconds), increasing.
    pub time: &'a [i64],
    /// The model's prediction from each row's inputs (not finite: hold).
    pub predicted: &'a [f64],
    /// The recorded value of the model's target, when the data has it.
    pub recorded: Option<&'a [f64]>,
}

/// How the simulated pool starts and runs.
#[derive(Debug, Clone, Copy)]
pub struct SlaPool {
    /// Requested (and ready) nodes before the first decision.
    pub initial: NodeCount,
    /// New nodes are ready this long after the request.
    pub lead_secs: i64,
    pub operations: Operations,
    /// The band's first decision (earlier rows hold the pool).
    pub begin: usize,
    /// Rows from this index on are scored.
    pub score_from: usize,
}

/// One replayed row.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SlaStep {
    pub time: i64,
    pub predicted: f64,
    pub recorded: Option<f64>,
    /// Nodes requested after the decision of this row.
    pub target: NodeCount,
    /// Nodes ready after the decision of this row.
    pub ready: NodeCount,
    pub change: PoolChange,
    /// The band wanted a change that had to wait for a running operation.
    pub waited: bool,
}

/// The SLA band's metrics over the scored rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlaMetrics {
    pub policy: String,
    pub steps: usize,
    /// Requested nodes x time, in node-hours.
    pub node_hours: f64,
    pub mean_nodes: f64,
    pub largest_nodes: u32,
    /// Share of rows with the pool at its maximum, in percent.
    pub at_max_pct: f64,
    pub scale_outs: usize,
    pub scale_ins: usize,
    pub actions: usize,
    pub waited: usize,
    /// Share of rows whose prediction was above / below the band, in percent.
    pub predicted_above_pct: f64,
    pub predicted_below_pct: f64,
    /// Share of rows whose recorded value was above the band, in percent.
    pub recorded_above_pct: Option<f64>,
    /// Mean absolute error of the prediction against the recorded value.
    pub prediction_mae: Option<f64>,
}

/// A finished replay.
#[derive(Debug, Clone, PartialEq)]
pub struct SlaRun {
    pub steps: Vec<SlaStep>,
    pub metrics: SlaMetrics,
}

/// Replay the band over every row of `input`.
pub fn replay_sla(input: SlaInput<'_>, band: &CheckedSla, pool: SlaPool) -> SlaRun {
    let mut sim = SimPool::new(band.pool().clamp(pool.initial), pool.lead_secs)
        .with_operations(pool.operations);
    let mut steps = Vec::with_capacity(input.time.len());
    for (i, (&now, &predicted)) in input.time.iter().zip(input.predicted).enumerate() {
        sim.advance(now);
        let before = sim.read().expect("a simulated pool always answers");
        let (change, waited) = if i < pool.begin {
            (PoolChange::None, false)
        } else {
            let decision = sla_plan(predicted, NodeCount(before.count), band);
            let (_, change, waited) = sim.write(&before, &decision, false);
            (change, waited)
        };
        steps.push(SlaStep {
            time: now,
            predicted,
            recorded: input.recorded.map(|r| r[i]),
            target: sim.requested(),
            ready: sim.ready(),
            change,
            waited,
        });
    }
    let metrics = score(&steps, band, pool.score_from);
    SlaRun { steps, metrics }
}

fn score(steps: &[SlaStep], band: &CheckedSla, from: usize) -> SlaMetrics {
    let scored = &steps[from.min(steps.len())..];
    let n = scored.len();
    let pct = |k: usize| {
        if n > 0 {
            100.0 * k as f64 / n as f64
        } else {
            0.0
        }
    };
    let count = |f: &dyn Fn(&SlaStep) -> bool| scored.iter().filter(|s| f(s)).count();
    let (lo, hi) = band.band();
    let max = band.pool().max();
    // Each row lasts until the next; the last as long as the one before it.
    let secs: Vec<f64> = (0..steps.len())
        .map(
            |i| match (steps.get(i + 1), i.checked_sub(1).map(|j| &steps[j])) {
                (Some(next), _) => (next.time - steps[i].time) as f64,
                (None, Some(prev)) => (steps[i].time - prev.time) as f64,
                (None, None) => 0.0,
            },
        )
        .collect();
    let node_secs: f64 = scored
        .iter()
        .zip(&secs[from.min(steps.len())..])
        .map(|(s, d)| f64::from(s.target.get()) * d)
        .sum();
    let recorded: Vec<(f64, f64)> = scored
        .iter()
        .filter_map(|s| s.recorded.map(|r| (r, s.predicted)))
        .filter(|(r, p)| r.is_finite() && p.is_finite())
        .collect();
    let has_recorded = scored.iter().any(|s| s.recorded.is_some());
    let outs = count(&|s| matches!(s.change, PoolChange::Out { .. }));
    let ins = count(&|s| matches!(s.change, PoolChange::In { .. }));
    SlaMetrics {
        policy: SLA_POLICY.to_string(),
        steps: n,
        node_hours: node_secs / 3_600.0,
        mean_nodes: if n > 0 {
            scored
                .iter()
                .map(|s| f64::from(s.target.get()))
                .sum::<f64>()
                / n as f64
        } else {
            0.0
        },
        largest_nodes: scored.iter().map(|s| s.target.get()).max().unwrap_or(0),
        at_max_pct: pct(count(&|s| s.target >= max)),
        scale_outs: outs,
        scale_ins: ins,
        actions: outs + ins,
        waited: count(&|s| s.waited),
        predicted_above_pct: pct(count(&|s| s.predicted > hi)),
        predicted_below_pct: pct(count(&|s| s.predicted < lo)),
        recorded_above_pct: has_recorded
            .then(|| pct(count(&|s| s.recorded.is_some_and(|r| r > hi)))),
        prediction_mae: (!recorded.is_empty()).then(|| {
            recorded.iter().map(|(r, p)| (r - p).abs()).sum::<f64>() / recorded.len() as f64
        }),
    }
}

impl SlaRun {
    /// The plan as CSV, in the columns of every plan
    /// ([`super::backtest::PLAN_HEADER`]): `demand` is the recorded value
    /// (empty when the data has none), `forecast` the prediction (three
    /// decimals; empty when it was not a number), `policy` `sla_band`.
    pub fn to_csv(&self) -> String {
        let mut out = String::with_capacity(72 * (self.steps.len() + 1));
        out.push_str(super::backtest::PLAN_HEADER);
        out.push('\n');
        for s in &self.steps {
            PlanLine {
                timestamp: s.time,
                demand: s.recorded,
                forecast: s.predicted.is_finite().then_some(s.predicted),
                target_nodes: s.target,
                ready_nodes: s.ready,
                policy: SLA_POLICY,
                change: s.change.nodes(),
                waited: s.waited,
            }
            .write(&mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    /// The band 180 +- 20, 2 nodes a step, on a pool of `min..=max`.
    use crate::core::plan::sla::sla_tests::sla as band;

    fn pool(initial: u32, lead_secs: i64, busy: i64) -> SlaPool {
        SlaPool {
            initial: NodeCount(initial),
            lead_secs,
            operations: Operations {
                scale_out_secs: busy,
                scale_in_secs: busy,
            },
            begin: 0,
            score_from: 0,
        }
    }

    #[test]
    fn the_band_adds_above_removes_below_and_holds_inside_with_nodes_ready_a_lead_later() {
        let time = [0, 60, 120, 180, 240];
        let predicted = [210.0, 190.0, 150.0, 150.0, f64::NAN];
        let input = SlaInput {
            time: &time,
            predicted: &predicted,
            recorded: None,
        };
        let run = replay_sla(input, &band(1, 20), pool(4, 60, 0));
        let counts: Vec<(u32, u32)> = run
            .steps
            .iter()
            .map(|s| (s.target.get(), s.ready.get()))
            .collect();
        // +2 at 0 (ready at 60), hold, -2, -2, NaN holds.
        assert_eq!(counts, vec![(6, 4), (6, 6), (4, 4), (2, 2), (2, 2)]);
        let m = &run.metrics;
        assert_eq!((m.scale_outs, m.scale_ins, m.waited), (1, 2, 0));
        assert_eq!(m.predicted_above_pct, 20.0);
        assert_eq!(m.predicted_below_pct, 40.0);
        assert_eq!(m.largest_nodes, 6);
        assert!(m.recorded_above_pct.is_none());
        // 6+6+4+2+2 nodes for a minute each.
        assert!((m.node_hours - 20.0 / 60.0).abs() < 1e-12);
    }

    #[test]
    fn a_change_asked_while_an_operation_runs_waits_as_a_409_holds_the_live_run() {
        let time = [0, 60, 120, 180];
        let predicted = [210.0, 210.0, 210.0, 210.0];
        let recorded = [230.0, 150.0, 190.0, 250.0];
        let input = SlaInput {
            time: &time,
            predicted: &predicted,
            recorded: Some(&recorded),
        };
        // Each operation keeps the pool busy for 90 s.
        let run = replay_sla(input, &band(1, 7), pool(2, 0, 90));
        let targets: Vec<u32> = run.steps.iter().map(|s| s.target.get()).collect();
        assert_eq!(targets, vec![4, 4, 6, 6]);
        let waited: Vec<bool> = run.steps.iter().map(|s| s.waited).collect();
        assert_eq!(waited, vec![false, true, false, true]);
        let m = &run.metrics;
        assert_eq!(m.waited, 2);
        assert_eq!(m.recorded_above_pct, Some(50.0));
        assert!((m.prediction_mae.unwrap() - (20.0 + 60.0 + 20.0 + 40.0) / 4.0).abs() < 1e-12);
        let csv = run.to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], super::super::backtest::PLAN_HEADER);
        assert_eq!(
            lines[1],
            "1970-01-01T00:00:00Z,230,210.000,4,4,sla_band,+2,0"
        );
        assert_eq!(
            lines[2],
            "1970-01-01T00:01:00Z,150,210.000,4,4,sla_band,+0,1"
        );
    }

    #[test]
    fn rows_before_the_start_hold_the_pool_and_the_pool_max_is_never_passed() {
        let time = [0, 60, 120, 180];
        let predicted = [300.0; 4];
        let input = SlaInput {
            time: &time,
            predicted: &predicted,
            recorded: None,
        };
        let mut p = pool(3, 0, 0);
        p.begin = 2;
        p.score_from = 1;
        let run = replay_sla(input, &band(1, 6), p);
        let targets: Vec<u32> = run.steps.iter().map(|s| s.target.get()).collect();
        assert_eq!(targets, vec![3, 3, 5, 6]);
        assert_eq!(run.metrics.steps, 3);
        assert!((run.metrics.at_max_pct - 100.0 / 3.0).abs() < 1e-9);
    }
}
