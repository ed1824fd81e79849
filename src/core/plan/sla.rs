//! The workshop controller: size on a predicted latency against an SLA band.

use super::decision::{Decision, Reason};
use super::units::{CheckedPool, NodeCount, PolicyError};
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------
// The workshop controller: size on a predicted latency against an SLA band.

/// The SLA-band controller of the original proactive-scaling workshop
/// (unchecked): when the predicted latency is above `target + threshold`, add
/// `increment` nodes; below `target - threshold`, remove `increment`; inside
/// the band, hold. Always within the pool's bounds (the workshop's "at
/// least N nodes" is the pool minimum).
#[derive(Debug, Clone, PartialEq)]
pub struct SlaParams {
    pub target: f64,
    pub threshold: f64,
    pub increment: u32,
}

/// Checked SLA-band settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckedSla {
    pool: CheckedPool,
    target: f64,
    threshold: f64,
    increment: u32,
}

impl SlaParams {
    /// Validate for a pool.
    pub fn check(&self, pool: &CheckedPool) -> Result<CheckedSla, PolicyError> {
        let ok = self.target > 0.0
            && self.target.is_finite()
            && self.threshold >= 0.0
            && self.threshold < self.target;
        if !ok {
            return Err(PolicyError::SlaBand {
                target: self.target,
                threshold: self.threshold,
            });
        }
        if self.increment == 0 {
            return Err(PolicyError::StepSize {
                name: "SLA increment",
                value: 0,
            });
        }
        Ok(CheckedSla {
            pool: *pool,
            target: self.target,
            threshold: self.threshold,
            increment: self.increment,
        })
    }
}

impl CheckedSla {
    /// The pool the band moves within.
    pub fn pool(&self) -> &CheckedPool {
        &self.pool
    }

    /// The band: (target - threshold, target + threshold).
    pub fn band(&self) -> (f64, f64) {
        (self.target - self.threshold, self.target + self.threshold)
    }
}

/// Plan from a predicted latency (a number that is not finite holds the pool:
/// no blind change).
pub fn sla_plan(predicted: f64, current: NodeCount, p: &CheckedSla) -> Decision {
    let hi = p.target + p.threshold;
    let lo = p.target - p.threshold;
    let wanted = if !predicted.is_finite() {
        current
    } else if predicted > hi {
        current.plus(p.increment)
    } else if predicted < lo {
        current.minus(p.increment)
    } else {
        current
    };
    let nodes = p.pool.clamp(wanted);
    let mut reasons = vec![Reason::SlaBand {
        predicted,
        target: p.target,
        threshold: p.threshold,
        change: i64::from(nodes.get()) - i64::from(current.get()),
    }];
    if nodes > wanted {
        reasons.push(Reason::ClampedToMin { min: p.pool.min });
    } else if nodes < wanted {
        reasons.push(Reason::ClampedToMax { max: p.pool.max });
    }
    if nodes == current {
        Decision::Hold {
            nodes,
            recommended: nodes,
            planned_demand: None,
            reasons,
        }
    } else {
        Decision::ScaleTo {
            from: current,
            nodes,
            recommended: nodes,
            planned_demand: None,
            reasons,
        }
    }
}

#[cfg(test)]
pub(crate) mod sla_tests {
    use super::*;
    use crate::core::plan::PoolParams;

    /// The band 180 +- 20, 2 nodes a step, on a pool of `min..=max`.
    pub(crate) fn sla(min: u32, max: u32) -> CheckedSla {
        let pool = PoolParams {
            capacity_per_node: 1.0,
            min_nodes: min,
            max_nodes: max,
            lead_secs: 60,
        }
        .check()
        .unwrap();
        SlaParams {
            target: 180.0,
            threshold: 20.0,
            increment: 2,
        }
        .check(&pool)
        .unwrap()
    }

    #[test]
    fn above_the_band_adds_the_increment_below_removes_it_inside_holds() {
        let p = sla(1, 20);
        assert_eq!(sla_plan(201.0, NodeCount(5), &p).nodes(), NodeCount(7));
        assert_eq!(sla_plan(159.0, NodeCount(5), &p).nodes(), NodeCount(3));
        let inside = sla_plan(200.0, NodeCount(5), &p);
        assert!(!inside.is_change());
        assert!(matches!(
            inside.reasons()[0],
            Reason::SlaBand { change: 0, .. }
        ));
    }

    #[test]
    fn the_pool_bounds_win_and_a_prediction_that_is_not_a_number_holds() {
        let p = sla(3, 6);
        assert_eq!(sla_plan(100.0, NodeCount(4), &p).nodes(), NodeCount(3));
        assert_eq!(sla_plan(100.0, NodeCount(3), &p).nodes(), NodeCount(3));
        assert_eq!(sla_plan(300.0, NodeCount(5), &p).nodes(), NodeCount(6));
        assert_eq!(sla_plan(f64::NAN, NodeCount(5), &p).nodes(), NodeCount(5));
    }

    #[test]
    fn a_band_that_reaches_zero_or_a_zero_increment_is_refused() {
        let pool = PoolParams {
            capacity_per_node: 1.0,
            min_nodes: 1,
            max_nodes: 5,
            lead_secs: 60,
        }
        .check()
        .unwrap();
        assert!(SlaParams {
            target: 10.0,
            threshold: 10.0,
            increment: 1
        }
        .check(&pool)
        .is_err());
        assert!(SlaParams {
            target: 10.0,
            threshold: 1.0,
            increment: 0
        }
        .check(&pool)
        .is_err());
    }
}
