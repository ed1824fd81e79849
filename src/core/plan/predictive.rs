//! mlscaler's own predictive policy ([`plan`]): size for the highest forecast
//! over the lead window, raised by the calibration and the reactive floor,
//! under the shared rules; fall back to the reactive rule (never scaling in)
//! when the forecast is missing, stale or drifted.

use super::calibration::CalibrationParams;
use super::decision::{Decision, FallbackCause, PlanInput, PoolState, Reason};
use super::rules::{
    check_duration, check_share, check_step, check_utilisation, finish, hold_without_data, Rules,
    Sizing,
};
use super::units::{CheckedPool, PolicyError};
use crate::core::forecast::model::Forecast;
use crate::core::time::Step;
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------
// The predictive policy.

/// Which forecast horizons the predictive policy sizes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeadWindow {
    /// The highest forecast over every horizon up to the lead time
    /// (`now + step ..= now + lead`): a scale-in now is immediate, so nothing
    /// needed before the lead time may be given up.
    Whole,
    /// Only the horizon at the lead time.
    AtLead,
}

/// The reactive floor: never plan below what the recent observed demand needs,
/// optionally extrapolating a rise over the lead time.
///
/// Floor demand = `max(highest demand over window_secs, d_now + trend_gain *
/// rise_per_step * lead_steps)`, where `rise_per_step` is
/// `(d_now - d_{now - trend_secs}) / trend_steps` when positive, else 0; it is
/// sized at `utilisation`. The trend term catches the start of a ramp that a
/// linear forecaster (fitted on all hours alike) follows only slowly.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReactiveFloor {
    /// Utilisation at which the floor sizes (1.0 = just enough for the demand).
    pub utilisation: f64,
    /// Look at the highest demand over this many seconds up to `now`, in whole
    /// steps rounded down (0, or less than a step: the current bucket only).
    pub window_secs: i64,
    /// Measure the rise over this many seconds, rounded up to whole steps
    /// (0 = no trend term).
    pub trend_secs: i64,
    /// How much of the recent rise to extrapolate over the lead time (1 = a
    /// straight line).
    pub trend_gain: f64,
}

impl ReactiveFloor {
    /// A floor on current demand at `utilisation`, without trend.
    pub fn current(utilisation: f64) -> Self {
        ReactiveFloor {
            utilisation,
            window_secs: 0,
            trend_secs: 0,
            trend_gain: 0.0,
        }
    }

    /// The floor demand from `demand` (oldest first, last = now), or `None`
    /// without a finite current demand.
    pub(super) fn demand(&self, demand: &[f64], step: Step, lead_steps: usize) -> Option<f64> {
        let &now = demand.last().filter(|d| d.is_finite())?;
        // A window shorter than a step covers the current bucket only; the
        // trend needs at least one step back.
        let back = (self.window_secs / step.secs()).max(0) as usize;
        let from = demand.len().saturating_sub(back + 1);
        let recent = demand[from..]
            .iter()
            .copied()
            .filter(|d| d.is_finite())
            .fold(now, f64::max);
        let k = step.steps_ceil(self.trend_secs);
        let trend = match demand.len().checked_sub(k + 1).map(|j| demand[j]) {
            Some(then) if k > 0 && then.is_finite() && now > then => {
                now + self.trend_gain * (now - then) / k as f64 * lead_steps as f64
            }
            _ => now,
        };
        Some(recent.max(trend))
    }

    /// Steps before the newest one that [`ReactiveFloor::demand`] reads at
    /// `step`: the window and the trend's start.
    pub fn history_steps(&self, step: Step) -> usize {
        let back = (self.window_secs / step.secs()).max(0) as usize;
        back.max(step.steps_ceil(self.trend_secs))
    }
}

/// Settings of the predictive policy (unchecked; see [`PredictiveParams::check`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PredictiveParams {
    /// Forecast quantile to size for (0.5 = the median forecast).
    pub quantile: f64,
    /// Horizons to take the highest forecast over.
    pub window: LeadWindow,
    /// Utilisation of each node the plan aims for.
    pub target_utilisation: f64,
    /// Floor on recent observed demand; `None` to trust the forecast alone.
    pub floor: Option<ReactiveFloor>,
    /// Scale in only to the highest recommendation of this many seconds
    /// (0 = scale in as soon as the forecast drops).
    pub scale_in_stabilisation_secs: i64,
    /// No scale-in for this long after a scale-out.
    pub scale_in_cooldown_secs: i64,
    /// No scale-out for this long after a scale-out.
    pub scale_out_cooldown_secs: i64,
    /// Most nodes added in one decision.
    pub max_step_up: Option<u32>,
    /// Most nodes removed in one decision.
    pub max_step_down: Option<u32>,
    /// A forecast whose origin is older than this is stale.
    pub max_forecast_age_secs: i64,
    /// Recent error above this multiple of the evaluated error means drift:
    /// fall back to the reactive rule. `None` disables the check.
    pub max_error_ratio: Option<f64>,
    /// Utilisation the reactive fallback sizes for.
    pub fallback_utilisation: f64,
    /// Raise the planned peak to what recent errors say it must be
    /// ([`PlanInput::calibration`]); never lowers the plan. `None`: off.
    pub calibration: Option<CalibrationParams>,
    /// Seconds a scale-out and a scale-in operation keep the target busy
    /// (it takes no other change meanwhile): a count set by one must also
    /// cover that long after the lead window. 0: operations end at once.
    pub busy_secs: (i64, i64),
    /// Scale in only by at least this share of the nodes (0: any drop).
    pub min_scale_in: f64,
    /// Scale out by at least this share of the nodes (0: as asked).
    pub min_scale_out: f64,
}

impl Default for PredictiveParams {
    /// The settings tuned on the three bundled traces (see
    /// `examples/backtest_traces.rs` and the module docs of
    /// [`crate::core::sim::backtest`]): the median forecast at 83% utilisation
    /// (20% headroom), raised by a calibration at the 98th percentile of
    /// recent peak errors; a floor on the last two minutes of demand and its
    /// ten-minute trend, at 83%; no step limits or cooldowns. Scale-in after
    /// ten minutes of lower recommendations: the stabilisation target
    /// tracking and the cluster autoscaler (`scale-down-unneeded-time`) use
    /// by default. Not fitted: on a pool that runs one operation at a time,
    /// the two minutes tuned before that pool existed changed the pool so
    /// often that changes queued behind running ones.
    fn default() -> Self {
        PredictiveParams {
            quantile: 0.5,
            window: LeadWindow::Whole,
            target_utilisation: 0.83,
            floor: Some(ReactiveFloor {
                utilisation: 0.833,
                window_secs: 120,
                trend_secs: 600,
                trend_gain: 1.5,
            }),
            scale_in_stabilisation_secs: 600,
            scale_in_cooldown_secs: 0,
            scale_out_cooldown_secs: 0,
            max_step_up: None,
            max_step_down: None,
            max_forecast_age_secs: 900,
            max_error_ratio: None,
            fallback_utilisation: 0.7,
            calibration: Some(CalibrationParams {
                quantile: 0.98,
                window_secs: 14 * crate::core::time::DAY_SECS,
                min_samples: 50,
            }),
            busy_secs: (0, 0),
            min_scale_in: 0.0,
            min_scale_out: 0.0,
        }
    }
}

/// Checked predictive policy: the only form [`plan`] accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckedPolicy {
    pub(super) pool: CheckedPool,
    pub(super) quantile: f64,
    pub(super) window: LeadWindow,
    pub(super) target_utilisation: f64,
    pub(super) floor: Option<ReactiveFloor>,
    pub(super) rules: Rules,
    pub(super) max_forecast_age_secs: i64,
    pub(super) max_error_ratio: Option<f64>,
    pub(super) fallback_utilisation: f64,
    pub(super) calibration: Option<CalibrationParams>,
    pub(super) busy_secs: (i64, i64),
}

impl PredictiveParams {
    /// Validate for a pool.
    pub fn check(&self, pool: &CheckedPool) -> Result<CheckedPolicy, PolicyError> {
        if !(self.quantile > 0.0 && self.quantile < 1.0) {
            return Err(PolicyError::Quantile(self.quantile));
        }
        let target_utilisation = check_utilisation("target utilisation", self.target_utilisation)?;
        let fallback_utilisation =
            check_utilisation("fallback utilisation", self.fallback_utilisation)?;
        if let Some(f) = &self.floor {
            check_utilisation("reactive floor utilisation", f.utilisation)?;
            check_duration("reactive floor window", f.window_secs)?;
            check_duration("reactive floor trend window", f.trend_secs)?;
            if !(f.trend_gain >= 0.0 && f.trend_gain.is_finite()) {
                return Err(PolicyError::TrendGain(f.trend_gain));
            }
        }
        if let Some(r) = self.max_error_ratio {
            if r.is_nan() || r <= 0.0 {
                return Err(PolicyError::ErrorRatio(r));
            }
        }
        if let Some(c) = &self.calibration {
            if !(c.quantile > 0.0 && c.quantile < 1.0) {
                return Err(PolicyError::Quantile(c.quantile));
            }
            if c.window_secs <= 0 {
                return Err(PolicyError::Duration {
                    name: "calibration window",
                    secs: c.window_secs,
                });
            }
        }
        Ok(CheckedPolicy {
            pool: *pool,
            quantile: self.quantile,
            window: self.window,
            target_utilisation,
            floor: self.floor,
            rules: Rules {
                stabilisation_secs: check_duration(
                    "scale-in stabilisation window",
                    self.scale_in_stabilisation_secs,
                )?,
                scale_in_cooldown_secs: check_duration(
                    "scale-in cooldown",
                    self.scale_in_cooldown_secs,
                )?,
                scale_out_cooldown_secs: check_duration(
                    "scale-out cooldown",
                    self.scale_out_cooldown_secs,
                )?,
                max_step_up: check_step("max step up", self.max_step_up)?,
                max_step_down: check_step("max step down", self.max_step_down)?,
                min_scale_in: check_share("least scale-in", self.min_scale_in)?,
                min_scale_out: check_share("least scale-out", self.min_scale_out)?,
            },
            max_forecast_age_secs: check_duration("max forecast age", self.max_forecast_age_secs)?,
            max_error_ratio: self.max_error_ratio,
            fallback_utilisation,
            calibration: self.calibration,
            busy_secs: (
                check_duration("scale-out operation", self.busy_secs.0)?,
                check_duration("scale-in operation", self.busy_secs.1)?,
            ),
        })
    }
}

impl CheckedPolicy {
    /// The pool the policy was checked for.
    pub fn pool(&self) -> &CheckedPool {
        &self.pool
    }
    /// Steps before the newest one that [`plan`] reads of the load at
    /// `step` (its reactive floor; the forecast signals are counted by
    /// [`crate::core::plan::signals::history_steps`]).
    pub fn history_steps(&self, step: Step) -> usize {
        self.floor.map_or(0, |f| f.history_steps(step))
    }
    /// The forecast quantile sized for.
    pub fn quantile(&self) -> f64 {
        self.quantile
    }
    /// The calibration settings, when calibration is on.
    pub fn calibration(&self) -> Option<&CalibrationParams> {
        self.calibration.as_ref()
    }
    /// The planned peak of a fresh forecast (made at `now`): the highest
    /// value at the policy's quantile over the lead window, as [`plan`]
    /// sizes it before calibration. `None` when the forecast is too short
    /// or not a number.
    pub fn planned_peak(&self, f: &Forecast) -> Option<f64> {
        let lead = self.pool.lead_steps(f.step);
        if lead == 0 || lead > f.horizon() || f.quantiles.len() < f.horizon() {
            return None;
        }
        let from = match self.window {
            LeadWindow::Whole => 1,
            LeadWindow::AtLead => lead,
        };
        let peak = (from..=lead)
            .map(|h| f.quantile(h, self.quantile))
            .fold(f64::NEG_INFINITY, f64::max);
        peak.is_finite().then_some(peak.max(0.0))
    }
}

/// Plan the pool's size from a forecast: mlscaler's predictive policy.
///
/// In order, each step adding a [`Reason`]:
/// 1. check the forecast (present, same step, not stale, not from the future,
///    long enough to reach `now + lead`, numbers, not drifted); if it fails,
///    size reactively on the current demand at the fallback utilisation and
///    **never scale in** ([`Reason::NoScaleInWithoutForecast`]);
/// 2. otherwise take the highest forecast at the chosen quantile over the lead
///    window and divide by capacity x target utilisation;
/// 3. raise to the reactive floor (recent observed demand);
/// 4. clamp to `[min, max]`: this is the recommendation the memory keeps;
/// 5. scale in only to the highest recommendation within the stabilisation
///    window, not within the scale-in cooldown, by at most the step limit;
///    scale out unless within the scale-out cooldown, by at most the step limit;
/// 6. clamp to `[min, max]` again (bounds win over cooldowns and step limits).
///
/// Without any usable current demand and forecast it holds.
pub fn plan(
    input: &PlanInput<'_>,
    state: &PoolState,
    policy: &CheckedPolicy,
    now: i64,
) -> Decision {
    let pool = &policy.pool;
    let Some(mut sizing) = size(input, policy, now, 0) else {
        return hold_without_data(pool, state);
    };
    // A change keeps the target busy for its operation: then the count must
    // also cover until a change asked after it could be ready.
    let cur = state.requested;
    let busy = match sizing.nodes.cmp(&cur) {
        std::cmp::Ordering::Greater => policy.busy_secs.0,
        std::cmp::Ordering::Less => policy.busy_secs.1,
        std::cmp::Ordering::Equal => 0,
    };
    let extra = input.step.steps_busy(busy);
    if !sizing.blind && extra > 0 {
        if let Some(mut wider) = size(input, policy, now, extra) {
            if wider.nodes > sizing.nodes {
                wider
                    .reasons
                    .insert(0, Reason::OperationWindow { busy_secs: busy });
                // Covering the operation never turns a scale-in into a scale-out.
                if sizing.nodes < cur {
                    wider.nodes = wider.nodes.min(cur);
                }
                sizing = wider;
            }
        }
    }
    finish(pool, &policy.rules, state, now, sizing)
}

/// The sizing steps over the lead window and `extra` steps after it.
fn size(input: &PlanInput<'_>, policy: &CheckedPolicy, now: i64, extra: usize) -> Option<Sizing> {
    let pool = &policy.pool;
    let cap = pool.capacity;
    let mut reasons = Vec::with_capacity(6);
    let window = pool.lead_steps(input.step) + extra;
    let (demand, utilisation, blind) = match forecast_demand(input, policy, now, extra) {
        Ok((demand, from_h, to_h)) => {
            reasons.push(Reason::Forecast {
                quantile: policy.quantile,
                from_horizon: from_h,
                to_horizon: to_h,
                demand,
            });
            (demand, policy.target_utilisation, false)
        }
        // Without a trusted forecast, size on what the reactive floor sees
        // coming (the recent peak and the rise over the lead time), or on
        // the current load without a floor.
        Err(cause) => {
            let current = input.current_demand()?;
            let d = policy
                .floor
                .and_then(|f| f.demand(input.demand, input.step, window))
                .map_or(current, |f| f.max(current));
            reasons.push(Reason::Fallback { cause, demand: d });
            (d, policy.fallback_utilisation, true)
        }
    };
    let mut nodes = cap.nodes_for(demand, utilisation);
    reasons.push(Reason::Sized {
        demand,
        capacity: cap.per_node(),
        utilisation,
        nodes,
    });
    if let (false, Some(_), Some(c)) = (blind, &policy.calibration, input.calibration) {
        let calibrated = c.calibrated(demand);
        let factor = if demand > 0.0 {
            calibrated / demand
        } else {
            1.0
        };
        let calibrated_nodes = cap.nodes_for(calibrated, 1.0);
        if calibrated_nodes > nodes {
            nodes = calibrated_nodes;
            reasons.push(Reason::Calibrated {
                factor,
                demand: calibrated,
                nodes,
            });
        }
    }
    if let (false, Some(floor)) = (blind, &policy.floor) {
        if let Some(fd) = floor.demand(input.demand, input.step, window) {
            let floor_nodes = cap.nodes_for(fd, floor.utilisation);
            if floor_nodes > nodes {
                nodes = floor_nodes;
                reasons.push(Reason::ReactiveFloor {
                    demand: fd,
                    utilisation: floor.utilisation,
                    nodes,
                });
            }
        }
    }
    Some(Sizing {
        nodes,
        blind,
        planned_demand: (!blind).then_some(demand),
        reasons,
    })
}

/// The highest forecast over the lead window at the policy's quantile, with
/// the horizons used; or why the forecast cannot be used.
fn forecast_demand(
    input: &PlanInput<'_>,
    policy: &CheckedPolicy,
    now: i64,
    extra: usize,
) -> Result<(f64, usize, usize), FallbackCause> {
    let f = input.forecast.ok_or(FallbackCause::Missing)?;
    if f.step != input.step {
        return Err(FallbackCause::StepMismatch {
            forecast: f.step.secs(),
            series: input.step.secs(),
        });
    }
    let age = now - f.origin;
    if age < 0 {
        return Err(FallbackCause::FromTheFuture {
            origin: f.origin,
            now,
        });
    }
    if age > policy.max_forecast_age_secs {
        return Err(FallbackCause::Stale {
            age_secs: age,
            max_age_secs: policy.max_forecast_age_secs,
        });
    }
    if let (Some(limit), Some(ratio)) = (policy.max_error_ratio, input.error_ratio) {
        // A ratio that is not a number cannot show the model is fine: fail closed.
        if ratio.is_nan() || ratio > limit {
            return Err(FallbackCause::Drifted {
                error_ratio: ratio,
                limit,
            });
        }
    }
    // Horizons of the forecast that cover (now, now + lead].
    let shift = (age / f.step.secs()) as usize;
    let lead = policy.pool.lead_steps(f.step);
    if shift + lead > f.horizon() || f.quantiles.len() < f.horizon() {
        return Err(FallbackCause::TooShort {
            horizon: f.horizon(),
            needed: shift + lead,
        });
    }
    // After the lead window, as far as the forecast reaches.
    let to_h = (shift + lead + extra).min(f.horizon());
    let from_h = match policy.window {
        LeadWindow::Whole => shift + 1,
        LeadWindow::AtLead => to_h,
    };
    let mut best = f64::NEG_INFINITY;
    for h in from_h..=to_h {
        let v = f.quantile(h, policy.quantile);
        if !v.is_finite() {
            return Err(FallbackCause::Invalid);
        }
        best = best.max(v);
    }
    Ok((best.max(0.0), from_h, to_h))
}
