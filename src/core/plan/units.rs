//! Units of the planner: [`NodeCount`], [`Capacity`] (demand one node
//! serves) and the node pool's bounds and lead time ([`PoolParams`] ->
//! [`CheckedPool`]), with [`PolicyError`], the one error type of settings that
//! cannot work.

use crate::core::time::Step;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Relative tolerance when turning demand into whole nodes: demand of
/// `3.0000000001` nodes' worth is three nodes, not four.
const NODE_TOLERANCE: f64 = 1e-9;

/// A whole number of nodes.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct NodeCount(pub u32);

impl NodeCount {
    /// The count as a plain number.
    pub fn get(self) -> u32 {
        self.0
    }
    /// `self + n`, saturating.
    pub fn plus(self, n: u32) -> NodeCount {
        NodeCount(self.0.saturating_add(n))
    }
    /// `self - n`, saturating at zero.
    pub fn minus(self, n: u32) -> NodeCount {
        NodeCount(self.0.saturating_sub(n))
    }
}

impl fmt::Display for NodeCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Errors in policy settings. Each carries the offending value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    #[error("capacity per node should be a positive, finite amount of demand, but is {0}")]
    Capacity(f64),
    #[error("max nodes should be at least 1, but is {0}")]
    MaxNodes(u32),
    #[error("min nodes ({min}) should not exceed max nodes ({max})")]
    Bounds { min: u32, max: u32 },
    #[error("lead time should be a positive number of seconds, but is {0}")]
    Lead(i64),
    #[error("{name} should be in (0, 1], but is {value}")]
    Utilisation { name: &'static str, value: f64 },
    #[error("forecast quantile should be between 0 and 1, but is {0}")]
    Quantile(f64),
    #[error("{name} should not be negative, but is {secs} s")]
    Duration { name: &'static str, secs: i64 },
    #[error("{name} should be at least 1 node when set, but is {value}")]
    StepSize { name: &'static str, value: u32 },
    #[error("{name} should be a positive percentage, but is {value}")]
    Percent { name: &'static str, value: f64 },
    #[error(
        "{name} should need between 1 and N breaching datapoints out of N >= 1, but is {m} of {n}"
    )]
    MofN {
        name: &'static str,
        m: usize,
        n: usize,
    },
    #[error("{name} should be a positive, finite utilisation, but is {value}")]
    Threshold { name: &'static str, value: f64 },
    #[error(
        "the scale-in threshold ({scale_in}) should be below the scale-out threshold ({scale_out})"
    )]
    ThresholdOrder { scale_out: f64, scale_in: f64 },
    #[error("margin should be a finite number >= 0, but is {0}")]
    Margin(f64),
    #[error("trend gain should be a finite number >= 0, but is {0}")]
    TrendGain(f64),
    #[error("error ratio limit should be a positive number, but is {0}")]
    ErrorRatio(f64),
    #[error("seasonal period should be a positive number of seconds, but is {0}")]
    Period(i64),
    #[error("the SLA target should be a positive number and the threshold a number >= 0 below it, but they are {target} and {threshold}")]
    SlaBand { target: f64, threshold: f64 },
}

/// Demand one node serves at full utilisation, in the load's unit per step
/// (always positive and finite).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Capacity(f64);

impl Capacity {
    /// A capacity of `per_node`; an error unless it is positive and finite.
    pub fn new(per_node: f64) -> Result<Capacity, PolicyError> {
        if per_node > 0.0 && per_node.is_finite() {
            Ok(Capacity(per_node))
        } else {
            Err(PolicyError::Capacity(per_node))
        }
    }
    /// Demand per node at full utilisation.
    pub fn per_node(self) -> f64 {
        self.0
    }
    /// Nodes needed to serve `demand` at `utilisation` (0..=1) of each node:
    /// `ceil(demand / (capacity * utilisation))`, saturating. Demand that is
    /// zero, negative or not a number needs no node.
    pub fn nodes_for(self, demand: f64, utilisation: f64) -> NodeCount {
        let x = demand / (self.0 * utilisation);
        if x.is_nan() || x <= 0.0 {
            return NodeCount(0);
        }
        // `as` saturates at u32::MAX (and maps +inf there too).
        NodeCount((x * (1.0 - NODE_TOLERANCE)).ceil() as u32)
    }
    /// Utilisation of `nodes` serving `demand` (above 1 when overloaded;
    /// infinite for demand on no node, 0 for no demand).
    pub fn utilisation(self, demand: f64, nodes: NodeCount) -> f64 {
        if demand <= 0.0 {
            0.0
        } else if nodes.0 == 0 {
            f64::INFINITY
        } else {
            demand / (self.0 * f64::from(nodes.0))
        }
    }
}

impl TryFrom<f64> for Capacity {
    type Error = PolicyError;
    fn try_from(v: f64) -> Result<Self, Self::Error> {
        Capacity::new(v)
    }
}

impl From<Capacity> for f64 {
    fn from(c: Capacity) -> f64 {
        c.0
    }
}

/// The node pool as the planner sees it (unchecked).
#[derive(Debug, Clone, PartialEq)]
pub struct PoolParams {
    /// Demand one node serves at full utilisation.
    pub capacity_per_node: f64,
    pub min_nodes: u32,
    pub max_nodes: u32,
    /// Seconds from requesting a node until it serves load.
    pub lead_secs: i64,
}

/// The node pool, checked: positive capacity, `1 <= max`, `min <= max`, a
/// positive lead time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CheckedPool {
    pub(super) capacity: Capacity,
    pub(super) min: NodeCount,
    pub(super) max: NodeCount,
    pub(super) lead_secs: i64,
}

impl PoolParams {
    /// Validate.
    pub fn check(&self) -> Result<CheckedPool, PolicyError> {
        let capacity = Capacity::new(self.capacity_per_node)?;
        if self.max_nodes == 0 {
            return Err(PolicyError::MaxNodes(self.max_nodes));
        }
        if self.min_nodes > self.max_nodes {
            return Err(PolicyError::Bounds {
                min: self.min_nodes,
                max: self.max_nodes,
            });
        }
        if self.lead_secs <= 0 {
            return Err(PolicyError::Lead(self.lead_secs));
        }
        Ok(CheckedPool {
            capacity,
            min: NodeCount(self.min_nodes),
            max: NodeCount(self.max_nodes),
            lead_secs: self.lead_secs,
        })
    }
}

impl CheckedPool {
    /// Demand per node.
    pub fn capacity(&self) -> Capacity {
        self.capacity
    }
    /// Fewest nodes.
    pub fn min(&self) -> NodeCount {
        self.min
    }
    /// Most nodes.
    pub fn max(&self) -> NodeCount {
        self.max
    }
    /// Provisioning lead time in seconds.
    pub fn lead_secs(&self) -> i64 {
        self.lead_secs
    }
    /// The lead time in whole steps of `step`, rounded up (at least 1): a
    /// node requested at bucket `i` first serves bucket `i + lead_steps`.
    pub fn lead_steps(&self, step: Step) -> usize {
        step.steps_ceil(self.lead_secs).max(1)
    }
    /// `n` clamped to `[min, max]`.
    pub fn clamp(&self, n: NodeCount) -> NodeCount {
        n.clamp(self.min, self.max)
    }
}
