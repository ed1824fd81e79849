//! Choosing a scaling policy and its parameters on a team's own history:
//! replay every candidate of a grid over a tuning window, walk-forward and
//! causally, and pick the cheapest that meets the objective.
//!
//! Forecasts do not depend on the planner's parameters, so they are made
//! once per retrain ([`crate::core::sim::backtest::forecast_tape`]) and only
//! the planner is replayed per candidate, against the same simulated target
//! as the backtest (one operation at a time). The replay of a candidate makes
//! the decisions the backtest makes with the same profile over the same
//! window.
//!
//! The rule that picks ([`choose`]): among the candidates that meet the
//! objective (under-provisioned at most a share of the scored steps, overall
//! and in every week of the window (every day when it holds less than two
//! weeks), and at most so many scale operations an hour), the one with the
//! fewest
//! node-hours; when none meets it, the least under-provisioned (then the
//! cheapest). Reactive rules compete on equal terms: when no predictive
//! candidate beats the best reactive one, the reactive one is chosen, and the
//! choice says so. Pure: no I/O, no clock.

use super::backtest::Tape;
use super::pool::{short_of, ForecastContext, Operations, PolicyMetrics, SimStep, Simulation};
use crate::core::plan::control::NodeControl;
use crate::core::plan::{Capacity, NodeCount, PolicyKind, Strategy};
use crate::core::time::Step;
use serde::Serialize;

/// One candidate: a policy and the parameters the search varies (the rest
/// of the profile stays as given).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "policy", rename_all = "snake_case")]
pub enum Candidate {
    Predictive {
        quantile: f64,
        target_utilisation: f64,
        /// The calibration quantile; `None`: no calibration.
        calibration: Option<f64>,
        scale_in_window_secs: i64,
        /// Scale in and out only by at least this share of the nodes
        /// (fewer, larger operations).
        min_step: f64,
    },
    ReactiveThreshold {
        out_at: f64,
        in_at: f64,
        /// Nodes added per scale-out, as a share of the count (at least one).
        out_step_pct: f64,
    },
    TargetTracking {
        utilisation: f64,
        window_secs: i64,
    },
    SeasonalNaive {
        margin: f64,
    },
}

impl Candidate {
    /// The policy this candidate runs.
    pub fn kind(&self) -> PolicyKind {
        match self {
            Candidate::Predictive { .. } => PolicyKind::Predictive,
            Candidate::ReactiveThreshold { .. } => PolicyKind::ReactiveThreshold,
            Candidate::TargetTracking { .. } => PolicyKind::TargetTracking,
            Candidate::SeasonalNaive { .. } => PolicyKind::SeasonalNaive,
        }
    }

    /// Whether the candidate reads a forecast.
    pub fn is_predictive(&self) -> bool {
        self.kind() == PolicyKind::Predictive
    }

    /// A short description for reports and plots.
    pub fn label(&self) -> String {
        match self {
            Candidate::Predictive {
                quantile,
                target_utilisation,
                calibration,
                scale_in_window_secs,
                min_step,
            } => format!(
                "predictive q{:.0} u{:.2} cal {} in {}m step {:.0}%",
                quantile * 100.0,
                target_utilisation,
                calibration.map_or("off".into(), |c| format!("q{:.0}", c * 100.0)),
                scale_in_window_secs / 60,
                min_step * 100.0
            ),
            Candidate::ReactiveThreshold {
                out_at,
                in_at,
                out_step_pct,
            } => format!("threshold out {out_at:.2} in {in_at:.2} step {out_step_pct:.0}%"),
            Candidate::TargetTracking {
                utilisation,
                window_secs,
            } => format!("tracking u{utilisation:.2} in {}m", window_secs / 60),
            Candidate::SeasonalNaive { margin } => {
                format!("seasonal +{:.0}%", margin * 100.0)
            }
        }
    }
}

/// The search space: every candidate the tuner replays (200). The
/// predictive policy over its quantile, target utilisation, calibration,
/// scale-in window and least step; the reactive rules over their
/// thresholds, targets and windows. Wide on purpose: no point of it was
/// picked to suit one trace.
pub fn grid() -> Vec<Candidate> {
    let mut out = Vec::new();
    for quantile in [0.5, 0.9] {
        for target_utilisation in [0.7, 0.8, 0.9] {
            for calibration in [None, Some(0.9), Some(0.98)] {
                for scale_in_window_secs in [120, 600, 1800] {
                    for min_step in [0.0, 0.1, 0.25] {
                        out.push(Candidate::Predictive {
                            quantile,
                            target_utilisation,
                            calibration,
                            scale_in_window_secs,
                            min_step,
                        });
                    }
                }
            }
        }
    }
    for out_at in [0.6, 0.7, 0.8] {
        for in_at in [0.2, 0.4] {
            for out_step_pct in [10.0, 20.0, 50.0] {
                out.push(Candidate::ReactiveThreshold {
                    out_at,
                    in_at,
                    out_step_pct,
                });
            }
        }
    }
    for utilisation in [0.5, 0.6, 0.7, 0.8, 0.9] {
        for window_secs in [300, 600, 1800] {
            out.push(Candidate::TargetTracking {
                utilisation,
                window_secs,
            });
        }
    }
    for margin in [0.1, 0.2, 0.4, 0.8, 1.2] {
        out.push(Candidate::SeasonalNaive { margin });
    }
    out
}

/// What the choice must meet on the tuning window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Objective {
    /// Under-provisioned at most this share of the scored steps, in percent.
    pub max_under_pct: f64,
    /// At most this many scale operations per hour (`None`: no limit).
    pub max_ops_per_hour: Option<f64>,
}

/// A candidate's result on the tuning window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scored {
    pub candidate: Candidate,
    pub label: String,
    pub node_hours: f64,
    /// Node-hours relative to the oracle's on the same window.
    pub node_hours_vs_oracle: Option<f64>,
    pub under_provisioned_pct: f64,
    /// Scale operations per hour of the scored window.
    pub ops_per_hour: f64,
    pub waited: usize,
    /// The under-provisioned share of each block (week or day) of the
    /// tuning window, in percent, oldest first.
    pub blocks: Vec<f64>,
    pub feasible: bool,
}

impl Scored {
    /// The result of `candidate` from its replay's metrics over `hours`.
    pub fn new(
        candidate: Candidate,
        r: &Replayed,
        hours: f64,
        oracle_hours: Option<f64>,
        objective: &Objective,
    ) -> Scored {
        let m = &r.metrics;
        let ops_per_hour = if hours > 0.0 {
            m.actions as f64 / hours
        } else {
            0.0
        };
        // A number that is not one never meets anything. The share short
        // must hold in every block (week or day), not only on average: a
        // candidate that is short in the busiest week and idle in the
        // others would be short again when the next busy week comes.
        let feasible = m.under_provisioned_pct.is_finite()
            && m.node_hours.is_finite()
            && m.under_provisioned_pct <= objective.max_under_pct
            && r.blocks.iter().all(|b| *b <= objective.max_under_pct)
            && objective.max_ops_per_hour.is_none_or(|x| ops_per_hour <= x);
        Scored {
            label: candidate.label(),
            candidate,
            node_hours: m.node_hours,
            node_hours_vs_oracle: oracle_hours.filter(|h| *h > 0.0).map(|h| m.node_hours / h),
            under_provisioned_pct: m.under_provisioned_pct,
            ops_per_hour,
            waited: m.waited,
            blocks: r.blocks.clone(),
            feasible,
        }
    }
}

/// What [`choose`] picked, and why, in words.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Choice {
    /// Index into the scored candidates.
    pub index: usize,
    /// A reactive rule won: no predictive candidate met the objective more
    /// cheaply.
    pub reactive: bool,
    pub why: String,
}

/// Pick the cheapest candidate that meets the objective; when none does, the
/// least under-provisioned (then the cheapest). `None` without candidates.
pub fn choose(scored: &[Scored]) -> Option<Choice> {
    let cheapest = |pred: &dyn Fn(&Scored) -> bool| {
        scored
            .iter()
            .enumerate()
            .filter(|(_, s)| pred(s))
            .min_by(|a, b| a.1.node_hours.total_cmp(&b.1.node_hours))
            .map(|(i, _)| i)
    };
    let best = cheapest(&|s| s.feasible);
    let best_predictive = cheapest(&|s| s.feasible && s.candidate.is_predictive());
    let best_reactive = cheapest(&|s| s.feasible && !s.candidate.is_predictive());
    let Some(index) = best else {
        let index = scored
            .iter()
            .enumerate()
            .min_by(|a, b| {
                a.1.under_provisioned_pct
                    .total_cmp(&b.1.under_provisioned_pct)
                    .then(a.1.node_hours.total_cmp(&b.1.node_hours))
            })
            .map(|(i, _)| i)?;
        let s = &scored[index];
        return Some(Choice {
            index,
            reactive: !s.candidate.is_predictive(),
            why: format!(
                "no candidate met the objective on the tuning window; the least under-provisioned is {} ({:.3}% of steps short)",
                s.label, s.under_provisioned_pct
            ),
        });
    };
    let s = &scored[index];
    let why = match (s.candidate.is_predictive(), best_predictive, best_reactive) {
        (true, _, Some(r)) => format!(
            "{} meets the objective with {:.1} node-hours, fewer than the best reactive rule ({}: {:.1})",
            s.label, s.node_hours, scored[r].label, scored[r].node_hours
        ),
        (true, _, None) => format!(
            "{} meets the objective; no reactive rule does",
            s.label
        ),
        (false, Some(p), _) => format!(
            "no predictive candidate beats the best reactive rule: {} meets the objective with {:.1} node-hours, the best predictive ({}) needs {:.1}",
            s.label, s.node_hours, scored[p].label, scored[p].node_hours
        ),
        (false, None, _) => format!(
            "no predictive candidate meets the objective on the tuning window: the reactive rule {} does",
            s.label
        ),
    };
    Some(Choice {
        index,
        reactive: !s.candidate.is_predictive(),
        why,
    })
}

/// A candidate's replay over the tuning window.
#[derive(Debug, Clone, PartialEq)]
pub struct Replayed {
    pub metrics: PolicyMetrics,
    /// The under-provisioned share of each block of the scored window (see
    /// [`block_steps`]), in percent, oldest first.
    pub blocks: Vec<f64>,
}

/// The length of the blocks a tuning window is judged on, in steps: a week
/// when the scored window holds at least two, else a day (at least one
/// step). A weekly rhythm is then whole in every block.
pub fn block_steps(step: Step, scored_steps: usize) -> usize {
    let per = |secs: i64| (secs / step.secs()).max(1) as usize;
    let week = per(7 * 86_400);
    if scored_steps >= 2 * week {
        week
    } else {
        per(86_400)
    }
}

/// The under-provisioned share of each block of `block` steps of `steps`,
/// in percent; a last block shorter than half a block joins the one before.
pub fn block_shares(steps: &[SimStep], capacity: Capacity, block: usize) -> Vec<f64> {
    let block = block.max(1);
    let mut bounds: Vec<(usize, usize)> = (0..steps.len())
        .step_by(block)
        .map(|a| (a, (a + block).min(steps.len())))
        .collect();
    if bounds.len() > 1 {
        let (a, b) = bounds[bounds.len() - 1];
        if (b - a) * 2 < block {
            bounds.pop();
            bounds.last_mut().expect("more than one").1 = b;
        }
    }
    let cap = capacity.per_node();
    bounds
        .into_iter()
        .map(|(a, b)| {
            let short = steps[a..b]
                .iter()
                .filter(|s| short_of(s.demand.max(0.0), f64::from(s.ready.get()) * cap))
                .count();
            100.0 * short as f64 / (b - a) as f64
        })
        .collect()
}

/// One replay of a controller over `demand[..until]`, scoring the buckets
/// from `score_from`, with the forecasts and signals of `tape` (group
/// `group`) when the policy reads a forecast.
#[allow(clippy::too_many_arguments)]
pub fn replay(
    control: &NodeControl,
    tape: &Tape,
    group: Option<usize>,
    demand: &[f64],
    until: usize,
    initial: NodeCount,
    operations: Operations,
    score_from: usize,
) -> Replayed {
    let step: Step = tape.step;
    let q = match &control.strategy {
        Strategy::Predictive(p) => Some(p.quantile()),
        _ => None,
    };
    let mut sim = Simulation::new(
        control,
        tape.start,
        step,
        &demand[..until],
        initial,
        operations,
        score_from,
    );
    for i in 0..until {
        let forecast = q.and_then(|q| tape.forecast(i, q));
        let signals = group.and_then(|g| tape.signals.get(g)?.get(i));
        sim.step(ForecastContext {
            forecast: forecast.as_ref(),
            error_ratio: signals.and_then(|s| s.error_ratio),
            calibration: signals.and_then(|s| s.calibration.as_ref()),
        });
    }
    let run = sim.finish();
    let scored = &run.steps[score_from.min(run.steps.len())..];
    Replayed {
        blocks: block_shares(
            scored,
            control.strategy.pool().capacity(),
            block_steps(step, scored.len()),
        ),
        metrics: run.metrics,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored(c: Candidate, hours: f64, under: f64, feasible: bool) -> Scored {
        Scored {
            label: c.label(),
            candidate: c,
            node_hours: hours,
            node_hours_vs_oracle: None,
            under_provisioned_pct: under,
            ops_per_hour: 1.0,
            waited: 0,
            blocks: vec![under],
            feasible,
        }
    }

    fn predictive() -> Candidate {
        Candidate::Predictive {
            quantile: 0.5,
            target_utilisation: 0.8,
            calibration: None,
            scale_in_window_secs: 120,
            min_step: 0.0,
        }
    }

    fn tracking() -> Candidate {
        Candidate::TargetTracking {
            utilisation: 0.7,
            window_secs: 600,
        }
    }

    #[test]
    fn the_grid_is_wide_and_every_candidate_has_its_own_label() {
        let g = grid();
        assert!(g.len() >= 200, "{}", g.len());
        let mut labels: Vec<String> = g.iter().map(Candidate::label).collect();
        labels.sort();
        labels.dedup();
        assert_eq!(labels.len(), g.len());
    }

    #[test]
    fn the_cheapest_candidate_that_meets_the_objective_wins() {
        let s = [
            scored(predictive(), 100.0, 0.1, true),
            scored(tracking(), 120.0, 0.0, true),
            scored(predictive(), 80.0, 3.0, false),
        ];
        let c = choose(&s).unwrap();
        assert_eq!((c.index, c.reactive), (0, false));
        assert!(c.why.contains("fewer than the best reactive"), "{}", c.why);
    }

    #[test]
    fn a_reactive_rule_wins_when_no_predictive_candidate_beats_it_and_says_so() {
        let s = [
            scored(predictive(), 130.0, 0.1, true),
            scored(tracking(), 120.0, 0.2, true),
        ];
        let c = choose(&s).unwrap();
        assert_eq!((c.index, c.reactive), (1, true));
        assert!(c.why.contains("no predictive candidate beats"), "{}", c.why);
    }

    #[test]
    fn without_a_feasible_candidate_the_least_under_provisioned_wins() {
        let s = [
            scored(predictive(), 90.0, 2.0, false),
            scored(tracking(), 150.0, 0.9, false),
        ];
        let c = choose(&s).unwrap();
        assert_eq!(c.index, 1);
        assert!(c.why.contains("no candidate met"), "{}", c.why);
        assert!(choose(&[]).is_none());
    }

    #[test]
    fn a_result_that_is_not_a_number_is_never_feasible() {
        let m = PolicyMetrics {
            policy: PolicyKind::Predictive,
            steps: 10,
            node_hours: f64::NAN,
            node_hours_vs_oracle: None,
            under_provisioned_pct: 0.0,
            unserved_pct: 0.0,
            scale_outs: 0,
            scale_ins: 0,
            actions: 0,
            waited: 0,
            mean_utilisation: f64::NAN,
            reasons: Default::default(),
        };
        let o = Objective {
            max_under_pct: 0.5,
            max_ops_per_hour: None,
        };
        let r = Replayed {
            metrics: m,
            blocks: vec![0.0],
        };
        assert!(!Scored::new(predictive(), &r, 10.0, None, &o).feasible);
    }

    fn metrics(under: f64) -> PolicyMetrics {
        PolicyMetrics {
            policy: PolicyKind::TargetTracking,
            steps: 100,
            node_hours: 10.0,
            node_hours_vs_oracle: None,
            under_provisioned_pct: under,
            unserved_pct: 0.0,
            scale_outs: 1,
            scale_ins: 1,
            actions: 2,
            waited: 0,
            mean_utilisation: 0.5,
            reasons: Default::default(),
        }
    }

    #[test]
    fn the_objective_must_hold_in_every_block_not_only_on_average() {
        let o = Objective {
            max_under_pct: 0.5,
            max_ops_per_hour: None,
        };
        let even = Replayed {
            metrics: metrics(0.3),
            blocks: vec![0.3, 0.4, 0.2],
        };
        let one_bad_week = Replayed {
            metrics: metrics(0.3),
            blocks: vec![0.0, 0.9, 0.0],
        };
        assert!(Scored::new(tracking(), &even, 10.0, None, &o).feasible);
        let s = Scored::new(tracking(), &one_bad_week, 10.0, None, &o);
        assert!(!s.feasible);
        assert_eq!(s.blocks, vec![0.0, 0.9, 0.0]);
    }

    #[test]
    fn blocks_are_weeks_with_two_weeks_of_data_else_days() {
        let minute = Step::from_secs(60).unwrap();
        assert_eq!(block_steps(minute, 2 * 7 * 1440), 7 * 1440);
        assert_eq!(block_steps(minute, 2 * 7 * 1440 - 1), 1440);
        let two_days = Step::from_secs(2 * 86_400).unwrap();
        assert_eq!(block_steps(two_days, 3), 1);
    }

    #[test]
    fn block_shares_count_short_steps_and_fold_a_short_tail_into_the_last_block() {
        use crate::core::sim::pool::PoolChange;
        let cap = Capacity::new(10.0).unwrap();
        let step = |demand: f64, ready: u32| SimStep {
            time: 0,
            demand,
            planned_demand: None,
            target: NodeCount(ready),
            ready: NodeCount(ready),
            change: PoolChange::None,
            waited: false,
        };
        // Blocks of 4: [short, ok, ok, ok] [ok, short, short, ok] + a tail of 1 (short).
        let steps = [
            step(11.0, 1),
            step(10.0, 1),
            step(0.0, 1),
            step(5.0, 1),
            step(9.0, 1),
            step(25.0, 2),
            step(30.0, 2),
            step(20.0, 2),
            step(31.0, 3),
        ];
        let b = block_shares(&steps, cap, 4);
        assert_eq!(b, vec![25.0, 60.0]);
        // A tail of at least half a block stands alone.
        assert_eq!(
            block_shares(&steps[..7], cap, 2),
            vec![50.0, 0.0, 50.0, 100.0]
        );
        assert!(block_shares(&[], cap, 4).is_empty());
    }
}
