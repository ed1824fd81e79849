//! The rules shared by every policy that sizes from a demand figure, applied
//! after the sizing step: clamp to the bounds, scale-in stabilisation,
//! cooldowns, step limits, and "never scale in blind".

use super::decision::{Decision, PoolState, Reason};
use super::units::{CheckedPool, NodeCount, PolicyError};
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------
// Rules shared by the policies that size from a demand figure.

/// The outcome of a sizing step, before the rules.
pub(super) struct Sizing {
    pub(super) nodes: NodeCount,
    /// No forecast backs the count: never scale in on it.
    pub(super) blind: bool,
    pub(super) planned_demand: Option<f64>,
    pub(super) reasons: Vec<Reason>,
}

/// How changes are rate-limited after the sizing step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(super) struct Rules {
    pub(super) stabilisation_secs: i64,
    pub(super) scale_in_cooldown_secs: i64,
    pub(super) scale_out_cooldown_secs: i64,
    pub(super) max_step_up: Option<u32>,
    pub(super) max_step_down: Option<u32>,
    /// Scale in only when it removes at least this share of the nodes
    /// (at least one); smaller drops are held. 0: any drop.
    #[serde(default)]
    pub(super) min_scale_in: f64,
    /// Scale out by at least this share of the nodes (at least one). 0: as
    /// many as asked.
    #[serde(default)]
    pub(super) min_scale_out: f64,
}

impl Rules {
    pub(super) const NONE: Rules = Rules {
        stabilisation_secs: 0,
        scale_in_cooldown_secs: 0,
        scale_out_cooldown_secs: 0,
        max_step_up: None,
        max_step_down: None,
        min_scale_in: 0.0,
        min_scale_out: 0.0,
    };
}

/// The smallest step `share` of `cur` nodes allows: at least one node.
fn least_step(cur: NodeCount, share: f64) -> u32 {
    ((f64::from(cur.get()) * share).ceil() as u32).max(1)
}

/// Clamp the recommendation to the bounds (with a reason), apply the rules
/// relative to the requested count, clamp again, and build the decision.
/// `blind` means no forecast backs the recommendation: then it never scales in.
pub(super) fn finish(
    pool: &CheckedPool,
    rules: &Rules,
    state: &PoolState,
    now: i64,
    sizing: Sizing,
) -> Decision {
    let Sizing {
        nodes: raw,
        blind,
        planned_demand,
        mut reasons,
    } = sizing;
    let recommended = clamp_with_reason(pool, raw, &mut reasons);
    let cur = state.requested;
    let mem = &state.memory;
    let mut target = recommended;
    if recommended < cur {
        if blind {
            target = cur;
            reasons.push(Reason::NoScaleInWithoutForecast);
        } else {
            if rules.stabilisation_secs > 0 {
                if let Some(hi) = mem.highest_after(now - rules.stabilisation_secs) {
                    if hi > target {
                        target = hi.min(cur);
                        reasons.push(Reason::Stabilising {
                            window_secs: rules.stabilisation_secs,
                            highest: hi,
                        });
                    }
                }
            }
            if target < cur && rules.scale_in_cooldown_secs > 0 {
                if let Some(last) = mem.last_scale_out {
                    let remaining = last + rules.scale_in_cooldown_secs - now;
                    if remaining > 0 {
                        target = cur;
                        reasons.push(Reason::ScaleInCooldown {
                            remaining_secs: remaining,
                        });
                    }
                }
            }
            if let Some(step) = rules.max_step_down {
                if target < cur.minus(step) {
                    reasons.push(Reason::StepDownLimited {
                        max_step: step,
                        wanted: target,
                    });
                    target = cur.minus(step);
                }
            }
            if target < cur && rules.min_scale_in > 0.0 {
                let least = least_step(cur, rules.min_scale_in);
                if cur.get() - target.get() < least {
                    reasons.push(Reason::ScaleInTooSmall {
                        least,
                        wanted: target,
                    });
                    target = cur;
                }
            }
        }
    } else if recommended > cur {
        if rules.scale_out_cooldown_secs > 0 {
            if let Some(last) = mem.last_scale_out {
                let remaining = last + rules.scale_out_cooldown_secs - now;
                if remaining > 0 {
                    target = cur;
                    reasons.push(Reason::ScaleOutCooldown {
                        remaining_secs: remaining,
                    });
                }
            }
        }
        if target > cur && rules.min_scale_out > 0.0 {
            let least = least_step(cur, rules.min_scale_out);
            if target.get() - cur.get() < least {
                reasons.push(Reason::ScaleOutRoundedUp {
                    least,
                    wanted: target,
                });
                target = cur.plus(least);
            }
        }
        if let Some(step) = rules.max_step_up {
            if target > cur.plus(step) {
                reasons.push(Reason::StepUpLimited {
                    max_step: step,
                    wanted: target,
                });
                target = cur.plus(step);
            }
        }
    }
    // The bounds win over cooldowns and step limits (a pool found outside
    // them is brought back at once).
    let target = clamp_with_reason(pool, target, &mut reasons);
    decide(cur, target, recommended, planned_demand, reasons)
}

pub(super) fn clamp_with_reason(
    pool: &CheckedPool,
    n: NodeCount,
    reasons: &mut Vec<Reason>,
) -> NodeCount {
    if n < pool.min {
        reasons.push(Reason::ClampedToMin { min: pool.min });
        pool.min
    } else if n > pool.max {
        reasons.push(Reason::ClampedToMax { max: pool.max });
        pool.max
    } else {
        n
    }
}

pub(super) fn decide(
    cur: NodeCount,
    target: NodeCount,
    recommended: NodeCount,
    planned_demand: Option<f64>,
    reasons: Vec<Reason>,
) -> Decision {
    if target == cur {
        Decision::Hold {
            nodes: cur,
            recommended,
            planned_demand,
            reasons,
        }
    } else {
        Decision::ScaleTo {
            from: cur,
            nodes: target,
            recommended,
            planned_demand,
            reasons,
        }
    }
}

/// Hold because there is nothing to size for.
pub(super) fn hold_without_data(pool: &CheckedPool, state: &PoolState) -> Decision {
    let mut reasons = vec![Reason::NoDemandData];
    let target = clamp_with_reason(pool, state.requested, &mut reasons);
    decide(state.requested, target, state.requested, None, reasons)
}

pub(super) fn check_duration(name: &'static str, secs: i64) -> Result<i64, PolicyError> {
    if secs < 0 {
        Err(PolicyError::Duration { name, secs })
    } else {
        Ok(secs)
    }
}

pub(super) fn check_utilisation(name: &'static str, value: f64) -> Result<f64, PolicyError> {
    if value > 0.0 && value <= 1.0 {
        Ok(value)
    } else {
        Err(PolicyError::Utilisation { name, value })
    }
}

pub(super) fn check_share(name: &'static str, value: f64) -> Result<f64, PolicyError> {
    if (0.0..1.0).contains(&value) {
        Ok(value)
    } else {
        Err(PolicyError::Utilisation { name, value })
    }
}

pub(super) fn check_step(
    name: &'static str,
    value: Option<u32>,
) -> Result<Option<u32>, PolicyError> {
    match value {
        Some(0) => Err(PolicyError::StepSize { name, value: 0 }),
        v => Ok(v),
    }
}
