//! The scaling profile: everything that shapes a scaling decision (policy
//! parameters, safety rules, fallback, drift, bounds), shared by `scale`,
//! `backtest` and `tune` with one set of flag names, TOML keys and defaults.
//!
//! A profile is plain checked data. [`ScalingProfile::from_args`] is the only
//! way in from the command line (and so from a config file, whose keys are
//! the flag names); [`ScalingProfile::to_toml`] writes it back in the same
//! names, so what `tune` chooses is what `scale --config` and
//! `backtest --config` read. Turning a profile into the core's checked
//! policies needs the pool's capacity and lead time, which may come from the
//! data: see [`ScalingProfile::strategy`].

use super::{
    at_least_one, non_negative, nonzero, open_unit, positive, utilisation, Result, SettingsError,
};
use crate::cli::{AlarmOnArg, FallbackArg, ProfileArgs};
use crate::core::plan::instances::ScaleIn;
use crate::core::plan::{
    Adjustment, CalibrationParams, Capacity, CheckedOracle, CheckedPool, CheckedSla, LeadWindow,
    PolicyError, PolicyKind, PoolParams, PredictiveParams, ReactiveFloor, SeasonalNaiveParams,
    SlaParams, Strategy, TargetTrackingParams, ThresholdParams,
};
use crate::core::time::Duration;
use std::fmt::Write as _;

/// Where the demand one node serves comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CapacitySource {
    /// Given (`--capacity-per-node`).
    PerNode(Capacity),
    /// Chosen so that the 99.9th percentile of the load needs this many nodes
    /// (`--p999-nodes`; simulated targets and backtests only).
    P999Nodes(u32),
}

/// The pool: capacity, bounds and lead time.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolProfile {
    pub capacity: CapacitySource,
    pub min_nodes: u32,
    pub max_nodes: u32,
    /// `None`: the model's lead time (10 minutes without a model).
    pub lead_time: Option<Duration>,
    /// Accept a lead time shorter than the data's step as one step.
    pub round_lead_up: bool,
    /// How long the target's scale-out operations run.
    pub scale_out_duration: Duration,
    /// How long the target's scale-in operations run.
    pub scale_in_duration: Duration,
}

impl PoolProfile {
    /// The lead time without a model to take it from.
    pub const DEFAULT_LEAD: Duration = Duration::minutes(10);

    /// How long a simulated target's operations run.
    pub fn operations(&self) -> crate::core::sim::pool::Operations {
        crate::core::sim::pool::Operations {
            scale_out_secs: self.scale_out_duration.secs(),
            scale_in_secs: self.scale_in_duration.secs(),
        }
    }

    /// The checked pool for a capacity and a lead time.
    pub fn checked(&self, capacity: Capacity, lead: Duration) -> Result<CheckedPool> {
        PoolParams {
            capacity_per_node: capacity.per_node(),
            min_nodes: self.min_nodes,
            max_nodes: self.max_nodes,
            lead_secs: lead.secs(),
        }
        .check()
        .map_err(|e| SettingsError::Combination(format!("pool settings: {e}")))
    }
}

/// What runs when the forecast cannot be trusted (missing, stale, drifted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// Size on the current load at the fallback utilisation; never scale in.
    Reactive,
    /// The alarm rule of the profile decides.
    Alarm,
}

/// The predictive policy and its safety rules.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictiveProfile {
    pub quantile: f64,
    pub target_utilisation: f64,
    pub scale_in_window: Duration,
    pub scale_out_cooldown: Duration,
    pub scale_in_cooldown: Duration,
    pub max_step_up: Option<u32>,
    pub max_step_down: Option<u32>,
    /// Scale in only by at least this share of the nodes (0: any drop).
    pub min_scale_in: f64,
    /// Scale out by at least this share of the nodes (0: as asked).
    pub min_scale_out: f64,
    /// `None`: no calibration by recent errors.
    pub calibration: Option<CalibrationProfile>,
    pub floor: FloorProfile,
    pub max_data_age: Duration,
    pub max_error_ratio: f64,
    /// 0: no drift check.
    pub drift_window: Duration,
    pub fallback: Fallback,
    pub fallback_utilisation: f64,
}

/// The calibration of planned peaks by the peaks that followed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CalibrationProfile {
    pub quantile: f64,
    pub window: Duration,
}

/// The reactive floor under the forecast.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FloorProfile {
    pub window: Duration,
    pub utilisation: f64,
    /// 0: no trend term.
    pub trend: Duration,
    pub trend_gain: f64,
}

impl PredictiveProfile {
    /// Fewest (planned, actual) pairs for a calibration factor.
    const CALIBRATION_MIN_SAMPLES: usize = 50;

    /// The core's (unchecked) settings of the predictive policy.
    pub fn params(&self) -> PredictiveParams {
        PredictiveParams {
            quantile: self.quantile,
            window: LeadWindow::Whole,
            target_utilisation: self.target_utilisation,
            floor: Some(ReactiveFloor {
                utilisation: self.floor.utilisation,
                window_secs: self.floor.window.secs(),
                trend_secs: self.floor.trend.secs(),
                trend_gain: self.floor.trend_gain,
            }),
            scale_in_stabilisation_secs: self.scale_in_window.secs(),
            scale_in_cooldown_secs: self.scale_in_cooldown.secs(),
            scale_out_cooldown_secs: self.scale_out_cooldown.secs(),
            max_step_up: self.max_step_up,
            max_step_down: self.max_step_down,
            max_forecast_age_secs: self.max_data_age.secs(),
            max_error_ratio: (!self.drift_window.is_zero()).then_some(self.max_error_ratio),
            fallback_utilisation: self.fallback_utilisation,
            calibration: self.calibration.map(|c| CalibrationParams {
                quantile: c.quantile,
                window_secs: c.window.secs(),
                min_samples: Self::CALIBRATION_MIN_SAMPLES,
            }),
            busy_secs: (0, 0),
            min_scale_in: self.min_scale_in,
            min_scale_out: self.min_scale_out,
        }
    }
}

/// What the alarm thresholds compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmOn {
    /// Load / (ready nodes x capacity per node).
    Utilisation,
    /// The metric itself.
    Metric,
}

/// The alarm rule (the reactive threshold policy).
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmProfile {
    pub on: AlarmOn,
    pub rule: ThresholdParams,
}

/// The SLA band on a predicted latency.
#[derive(Debug, Clone, PartialEq)]
pub struct SlaProfile {
    /// Required by the SLA mode; no default.
    pub target: Option<f64>,
    pub threshold: f64,
    pub increment: u32,
}

/// Scaling a scale set instance by instance for a job queue.
#[derive(Debug, Clone, PartialEq)]
pub struct JobsProfile {
    /// `None`: the scale set's name (live), every job (backtest).
    pub queue: Option<String>,
    pub headroom: u32,
    pub scale_in: ScaleIn,
    pub arrival_window: Duration,
}

/// Moving a scale set along a ladder of VM sizes.
#[derive(Debug, Clone, PartialEq)]
pub struct VerticalProfile {
    pub ladder: Vec<String>,
    /// Empty: the built-in table of common sizes.
    pub ladder_memory: Vec<f64>,
    pub memory_high: f64,
    pub memory_low: f64,
    pub memory_window: Duration,
}

/// Everything that shapes a decision, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingProfile {
    pub pool: PoolProfile,
    pub predictive: PredictiveProfile,
    pub alarm: AlarmProfile,
    pub tracking: TargetTrackingParams,
    pub seasonal: SeasonalNaiveParams,
    pub sla: SlaProfile,
    pub jobs: JobsProfile,
    pub vertical: VerticalProfile,
}

impl Default for ScalingProfile {
    /// The one set of defaults of `scale`, `backtest` and `tune` (see the
    /// README's table). The predictive settings are the core's
    /// ([`PredictiveParams::default`]) with the drift check on at 3x; the
    /// alarm is the cloud step-scaling rule on utilisation; the bounds are 1
    /// and 1,000 nodes (Azure's limit per AKS pool or scale set: set your
    /// budget cap with --max-nodes).
    fn default() -> Self {
        let p = PredictiveParams::default();
        let floor = p.floor.expect("the default predictive policy has a floor");
        let cal = p
            .calibration
            .expect("the default predictive policy is calibrated");
        ScalingProfile {
            pool: PoolProfile {
                capacity: CapacitySource::P999Nodes(40),
                min_nodes: 1,
                max_nodes: 1000,
                lead_time: None,
                round_lead_up: false,
                scale_out_duration: Duration::minutes(3),
                scale_in_duration: Duration::minutes(1),
            },
            predictive: PredictiveProfile {
                quantile: p.quantile,
                target_utilisation: p.target_utilisation,
                scale_in_window: secs(p.scale_in_stabilisation_secs),
                scale_out_cooldown: secs(p.scale_out_cooldown_secs),
                scale_in_cooldown: secs(p.scale_in_cooldown_secs),
                max_step_up: p.max_step_up,
                max_step_down: p.max_step_down,
                min_scale_in: p.min_scale_in,
                min_scale_out: p.min_scale_out,
                calibration: Some(CalibrationProfile {
                    quantile: cal.quantile,
                    window: secs(cal.window_secs),
                }),
                floor: FloorProfile {
                    window: secs(floor.window_secs),
                    utilisation: floor.utilisation,
                    trend: secs(floor.trend_secs),
                    trend_gain: floor.trend_gain,
                },
                max_data_age: secs(p.max_forecast_age_secs),
                max_error_ratio: 3.0,
                drift_window: Duration::hours(1),
                fallback: Fallback::Reactive,
                fallback_utilisation: p.fallback_utilisation,
            },
            alarm: AlarmProfile {
                on: AlarmOn::Utilisation,
                rule: ThresholdParams::default(),
            },
            tracking: TargetTrackingParams::default(),
            seasonal: SeasonalNaiveParams::default(),
            sla: SlaProfile {
                target: None,
                threshold: 0.0,
                increment: 1,
            },
            jobs: JobsProfile {
                queue: None,
                headroom: 0,
                scale_in: ScaleIn::Deallocate,
                arrival_window: Duration::hours(1),
            },
            vertical: VerticalProfile {
                ladder: Vec::new(),
                ladder_memory: Vec::new(),
                memory_high: 0.8,
                memory_low: 0.4,
                memory_window: Duration::minutes(30),
            },
        }
    }
}

fn secs(s: i64) -> Duration {
    Duration::from_secs(s).expect("default durations are not negative")
}

impl ScalingProfile {
    /// The profile of the command line (which holds the config file's
    /// settings as flags the user did not set): defaults overlaid with what
    /// was given, every value checked.
    pub fn from_args(a: &ProfileArgs) -> Result<ScalingProfile> {
        let mut p = ScalingProfile::default();
        p.pool = pool(a, &p.pool)?;
        predictive(a, &mut p.predictive)?;
        alarm(a, &mut p.alarm)?;
        if let Some(u) = a.tracking_utilisation {
            p.tracking.target_utilisation = utilisation("tracking-utilisation", u)?;
        }
        if let Some(w) = a.tracking_window {
            p.tracking.scale_in_stabilisation_secs = w.secs();
        }
        if let Some(d) = a.seasonal_period {
            p.seasonal.period_secs = nonzero("seasonal-period", d)?.secs();
        }
        if let Some(m) = a.seasonal_margin {
            p.seasonal.margin = non_negative("seasonal-margin", m)?;
        }
        if let Some(t) = a.sla_target {
            p.sla.target = Some(positive("sla-target", t)?);
        }
        if let Some(t) = a.sla_threshold {
            p.sla.threshold = non_negative("sla-threshold", t)?;
        }
        if let Some(i) = a.sla_increment {
            p.sla.increment = at_least_one("sla-increment", i)?;
        }
        if let (Some(t), th) = (p.sla.target, p.sla.threshold) {
            if th >= t {
                return Err(SettingsError::Combination(format!(
                    "--sla-threshold {th} reaches below zero from --sla-target {t}: the band must stay above 0"
                )));
            }
        }
        p.jobs.queue = a.queue.clone().filter(|q| !q.trim().is_empty());
        if let Some(h) = a.headroom {
            p.jobs.headroom = h;
        }
        if a.scale_in_delete {
            p.jobs.scale_in = ScaleIn::Delete;
        }
        if let Some(w) = a.arrival_window {
            p.jobs.arrival_window = nonzero("arrival-window", w)?;
        }
        vertical(a, &mut p.vertical)?;
        Ok(p)
    }

    /// The SLA band on data of `step`-long rows, as `scale --policy sla` and
    /// `backtest --mode sla` both run it: the band of the profile on a pool
    /// whose new nodes are ready `--lead-time` after the request (default:
    /// one row), with no capacity per node (the band sizes on a prediction,
    /// not on a demand). `predicts` says what the model predicts from what,
    /// for the error when no `--sla-target` was given.
    pub fn sla_band(&self, step: Duration, predicts: &str) -> Result<CheckedSla> {
        let target = self.sla.target.ok_or_else(|| {
            SettingsError::Combination(format!(
                "{predicts}: the SLA mode needs --sla-target (and --sla-threshold)"
            ))
        })?;
        let lead = self.pool.lead_time.unwrap_or(step);
        let pool = self
            .pool
            .checked(Capacity::new(1.0).expect("positive"), lead)?;
        SlaParams {
            target,
            threshold: self.sla.threshold,
            increment: self.sla.increment,
        }
        .check(&pool)
        .map_err(|e| SettingsError::Combination(format!("SLA settings: {e}")))
    }

    /// The checked node-count policy `kind` for `pool`.
    pub fn strategy(&self, kind: PolicyKind, pool: &CheckedPool) -> Result<Strategy> {
        let checked =
            |e: PolicyError| SettingsError::Combination(format!("{} settings: {e}", kind.name()));
        Ok(match kind {
            PolicyKind::Predictive => {
                let mut params = self.predictive.params();
                params.busy_secs = (
                    self.pool.scale_out_duration.secs(),
                    self.pool.scale_in_duration.secs(),
                );
                Strategy::Predictive(params.check(pool).map_err(checked)?)
            }
            PolicyKind::ReactiveThreshold => {
                Strategy::ReactiveThreshold(self.alarm.rule.check(pool).map_err(checked)?)
            }
            PolicyKind::TargetTracking => {
                Strategy::TargetTracking(self.tracking.check(pool).map_err(checked)?)
            }
            PolicyKind::SeasonalNaive => {
                Strategy::SeasonalNaive(self.seasonal.check(pool).map_err(checked)?)
            }
            PolicyKind::Oracle => Strategy::Oracle(CheckedOracle::new(pool)),
        })
    }

    /// This profile with what a tuning candidate varies set as it says.
    pub fn with_candidate(&self, c: &crate::core::sim::tune::Candidate) -> ScalingProfile {
        use crate::core::sim::tune::Candidate as C;
        let mut p = self.clone();
        match *c {
            C::Predictive {
                quantile,
                target_utilisation,
                calibration,
                scale_in_window_secs,
                min_step,
            } => {
                let pr = &mut p.predictive;
                pr.quantile = quantile;
                pr.target_utilisation = target_utilisation;
                let window = self
                    .predictive
                    .calibration
                    .map_or(Duration::days(14), |c| c.window);
                pr.calibration =
                    calibration.map(|quantile| CalibrationProfile { quantile, window });
                pr.scale_in_window = secs(scale_in_window_secs);
                pr.min_scale_in = min_step;
                pr.min_scale_out = min_step;
            }
            C::ReactiveThreshold {
                out_at,
                in_at,
                out_step_pct,
            } => {
                p.alarm.on = AlarmOn::Utilisation;
                p.alarm.rule.scale_out_at = out_at;
                p.alarm.rule.scale_in_at = in_at;
                p.alarm.rule.step_out = Adjustment::Percent(out_step_pct);
            }
            C::TargetTracking {
                utilisation,
                window_secs,
            } => {
                p.tracking.target_utilisation = utilisation;
                p.tracking.scale_in_stabilisation_secs = window_secs;
            }
            C::SeasonalNaive { margin } => p.seasonal.margin = margin,
            C::ConfiguredThreshold => {}
        }
        p
    }

    /// The profile as TOML, in the flag names `scale --config` and
    /// `backtest --config` read (top-level keys, so both commands take them).
    /// Settings at their default are written too, so the file says
    /// everything the decisions depend on.
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        let mut kv = |k: &str, v: String| {
            let _ = writeln!(out, "{k} = {v}");
        };
        let q = |d: Duration| format!("\"{d}\"");
        let f = |x: f64| {
            let s = format!("{x}");
            if s.contains(['.', 'e', 'E']) || !x.is_finite() {
                s
            } else {
                format!("{s}.0")
            }
        };
        match self.pool.capacity {
            CapacitySource::PerNode(c) => kv("capacity-per-node", f(c.per_node())),
            CapacitySource::P999Nodes(n) => kv("p999-nodes", n.to_string()),
        }
        kv("min-nodes", self.pool.min_nodes.to_string());
        kv("max-nodes", self.pool.max_nodes.to_string());
        if let Some(l) = self.pool.lead_time {
            kv("lead-time", q(l));
        }
        if self.pool.round_lead_up {
            kv("round-lead-up", "true".into());
        }
        kv("scale-out-duration", q(self.pool.scale_out_duration));
        kv("scale-in-duration", q(self.pool.scale_in_duration));
        let p = &self.predictive;
        kv("quantile", f(p.quantile));
        kv("target-utilisation", f(p.target_utilisation));
        kv("scale-in-window", q(p.scale_in_window));
        kv("scale-out-cooldown", q(p.scale_out_cooldown));
        kv("scale-in-cooldown", q(p.scale_in_cooldown));
        if let Some(s) = p.max_step_up {
            kv("max-step-up", s.to_string());
        }
        if let Some(s) = p.max_step_down {
            kv("max-step-down", s.to_string());
        }
        kv("min-scale-in", f(p.min_scale_in));
        kv("min-scale-out", f(p.min_scale_out));
        match p.calibration {
            Some(c) => {
                kv("calibration-quantile", f(c.quantile));
                kv("calibration-window", q(c.window));
            }
            None => kv("no-calibration", "true".into()),
        }
        kv("floor-window", q(p.floor.window));
        kv("floor-utilisation", f(p.floor.utilisation));
        kv("floor-trend", q(p.floor.trend));
        kv("floor-trend-gain", f(p.floor.trend_gain));
        kv("max-data-age", q(p.max_data_age));
        kv("max-error-ratio", f(p.max_error_ratio));
        kv("drift-window", q(p.drift_window));
        kv(
            "fallback",
            match p.fallback {
                Fallback::Reactive => "\"reactive\"",
                Fallback::Alarm => "\"alarm\"",
            }
            .into(),
        );
        kv("fallback-utilisation", f(p.fallback_utilisation));
        let a = &self.alarm;
        kv(
            "alarm-on",
            match a.on {
                AlarmOn::Utilisation => "\"utilisation\"",
                AlarmOn::Metric => "\"metric\"",
            }
            .into(),
        );
        let r = &a.rule;
        kv("alarm-out-at", f(r.scale_out_at));
        kv(
            "alarm-out-of",
            format!("\"{}/{}\"", r.scale_out_m, r.scale_out_n),
        );
        kv("alarm-in-at", f(r.scale_in_at));
        kv(
            "alarm-in-of",
            format!("\"{}/{}\"", r.scale_in_m, r.scale_in_n),
        );
        kv("alarm-out-step", format!("\"{}\"", step_text(r.step_out)));
        kv("alarm-in-step", format!("\"{}\"", step_text(r.step_in)));
        kv("alarm-cooldown", q(secs(r.cooldown_secs)));
        kv("tracking-utilisation", f(self.tracking.target_utilisation));
        kv(
            "tracking-window",
            q(secs(self.tracking.scale_in_stabilisation_secs)),
        );
        kv("seasonal-period", q(secs(self.seasonal.period_secs)));
        kv("seasonal-margin", f(self.seasonal.margin));
        if let Some(t) = self.sla.target {
            kv("sla-target", f(t));
        }
        kv("sla-threshold", f(self.sla.threshold));
        kv("sla-increment", self.sla.increment.to_string());
        let j = &self.jobs;
        if let Some(qn) = &j.queue {
            kv("queue", toml_string(qn));
        }
        kv("headroom", j.headroom.to_string());
        if j.scale_in == ScaleIn::Delete {
            kv("scale-in-delete", "true".into());
        }
        kv("arrival-window", q(j.arrival_window));
        let v = &self.vertical;
        if !v.ladder.is_empty() {
            let sizes: Vec<String> = v.ladder.iter().map(|s| toml_string(s)).collect();
            kv("ladder", format!("[{}]", sizes.join(", ")));
        }
        if !v.ladder_memory.is_empty() {
            let m: Vec<String> = v.ladder_memory.iter().map(|x| f(*x)).collect();
            kv("ladder-memory", format!("[{}]", m.join(", ")));
        }
        kv("memory-high", f(v.memory_high));
        kv("memory-low", f(v.memory_low));
        kv("memory-window", q(v.memory_window));
        out
    }
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn step_text(a: Adjustment) -> String {
    match a {
        Adjustment::Nodes(n) => n.to_string(),
        Adjustment::Percent(p) => format!("{p}%"),
    }
}

fn pool(a: &ProfileArgs, d: &PoolProfile) -> Result<PoolProfile> {
    let capacity = match (a.capacity_per_node, a.p999_nodes) {
        (Some(c), _) => CapacitySource::PerNode(
            Capacity::new(c)
                .map_err(|e| SettingsError::invalid("capacity-per-node", c, e.to_string()))?,
        ),
        (None, Some(n)) => CapacitySource::P999Nodes(at_least_one("p999-nodes", n)?),
        (None, None) => d.capacity,
    };
    let min_nodes = a.min_nodes.unwrap_or(d.min_nodes);
    let max_nodes = at_least_one("max-nodes", a.max_nodes.unwrap_or(d.max_nodes))?;
    if min_nodes > max_nodes {
        return Err(SettingsError::Combination(format!(
            "--min-nodes, --max-nodes: the fewest nodes ({min_nodes}) is more than the most ({max_nodes})"
        )));
    }
    let lead_time = match a.lead_time {
        Some(l) => Some(nonzero("lead-time", l)?),
        None => d.lead_time,
    };
    Ok(PoolProfile {
        capacity,
        min_nodes,
        max_nodes,
        lead_time,
        round_lead_up: a.round_lead_up || d.round_lead_up,
        scale_out_duration: a.scale_out_duration.unwrap_or(d.scale_out_duration),
        scale_in_duration: a.scale_in_duration.unwrap_or(d.scale_in_duration),
    })
}

fn predictive(a: &ProfileArgs, p: &mut PredictiveProfile) -> Result<()> {
    if let Some(q) = a.quantile {
        p.quantile = open_unit("quantile", q)?;
    }
    if let Some(u) = a.target_utilisation {
        p.target_utilisation = utilisation("target-utilisation", u)?;
    }
    if let Some(w) = a.scale_in_window {
        p.scale_in_window = w;
    }
    if let Some(c) = a.scale_out_cooldown {
        p.scale_out_cooldown = c;
    }
    if let Some(c) = a.scale_in_cooldown {
        p.scale_in_cooldown = c;
    }
    if let Some(s) = a.max_step_up {
        p.max_step_up = Some(at_least_one("max-step-up", s)?);
    }
    if let Some(s) = a.max_step_down {
        p.max_step_down = Some(at_least_one("max-step-down", s)?);
    }
    if let Some(v) = a.min_scale_in {
        p.min_scale_in = share("min-scale-in", v)?;
    }
    if let Some(v) = a.min_scale_out {
        p.min_scale_out = share("min-scale-out", v)?;
    }
    if a.no_calibration {
        p.calibration = None;
    } else if let Some(c) = &mut p.calibration {
        if let Some(q) = a.calibration_quantile {
            c.quantile = open_unit("calibration-quantile", q)?;
        }
        if let Some(w) = a.calibration_window {
            c.window = nonzero("calibration-window", w)?;
        }
    }
    if let Some(w) = a.floor_window {
        p.floor.window = w;
    }
    if let Some(u) = a.floor_utilisation {
        p.floor.utilisation = utilisation("floor-utilisation", u)?;
    }
    if let Some(t) = a.floor_trend {
        p.floor.trend = t;
    }
    if let Some(g) = a.floor_trend_gain {
        p.floor.trend_gain = non_negative("floor-trend-gain", g)?;
    }
    if let Some(d) = a.max_data_age {
        p.max_data_age = nonzero("max-data-age", d)?;
    }
    if let Some(r) = a.max_error_ratio {
        p.max_error_ratio = positive("max-error-ratio", r)?;
    }
    if let Some(w) = a.drift_window {
        p.drift_window = w;
    }
    if let Some(f) = a.fallback {
        p.fallback = match f {
            FallbackArg::Reactive => Fallback::Reactive,
            FallbackArg::Alarm => Fallback::Alarm,
        };
    }
    if let Some(u) = a.fallback_utilisation {
        p.fallback_utilisation = utilisation("fallback-utilisation", u)?;
    }
    Ok(())
}

fn alarm(a: &ProfileArgs, p: &mut AlarmProfile) -> Result<()> {
    if let Some(on) = a.alarm_on {
        p.on = match on {
            AlarmOnArg::Utilisation => AlarmOn::Utilisation,
            AlarmOnArg::Metric => AlarmOn::Metric,
        };
    }
    let r = &mut p.rule;
    if let Some(v) = a.alarm_out_at {
        r.scale_out_at = positive("alarm-out-at", v)?;
    }
    if let Some(v) = a.alarm_in_at {
        r.scale_in_at = positive("alarm-in-at", v)?;
    }
    if r.scale_in_at >= r.scale_out_at {
        return Err(SettingsError::Combination(format!(
            "--alarm-in-at {} should be below --alarm-out-at {}: otherwise both alarms fire together",
            r.scale_in_at, r.scale_out_at
        )));
    }
    if let Some(v) = &a.alarm_out_of {
        (r.scale_out_m, r.scale_out_n) = m_of_n("alarm-out-of", v)?;
    }
    if let Some(v) = &a.alarm_in_of {
        (r.scale_in_m, r.scale_in_n) = m_of_n("alarm-in-of", v)?;
    }
    if let Some(v) = &a.alarm_out_step {
        r.step_out = step("alarm-out-step", v)?;
    }
    if let Some(v) = &a.alarm_in_step {
        r.step_in = step("alarm-in-step", v)?;
    }
    if let Some(c) = a.alarm_cooldown {
        r.cooldown_secs = c.secs();
    }
    Ok(())
}

fn vertical(a: &ProfileArgs, v: &mut VerticalProfile) -> Result<()> {
    v.ladder = a
        .ladder
        .iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    // Checked against the ladder where it is used (the message names the sizes).
    v.ladder_memory = a.ladder_memory.clone();
    if let Some(h) = a.memory_high {
        v.memory_high = utilisation("memory-high", h)?;
    }
    if let Some(l) = a.memory_low {
        v.memory_low = utilisation("memory-low", l)?;
    }
    if v.memory_low >= v.memory_high {
        return Err(SettingsError::Combination(format!(
            "--memory-low {}, --memory-high {}: the thresholds should satisfy 0 < low < high",
            v.memory_low, v.memory_high
        )));
    }
    if let Some(w) = a.memory_window {
        v.memory_window = nonzero("memory-window", w)?;
    }
    Ok(())
}

/// A share in `[0, 1)`.
fn share(flag: &'static str, v: f64) -> Result<f64> {
    if (0.0..1.0).contains(&v) {
        Ok(v)
    } else {
        Err(SettingsError::invalid(flag, v, "should be in [0, 1)"))
    }
}

/// An alarm's "M/N" (M breaching datapoints of the last N).
pub fn m_of_n(flag: &'static str, v: &str) -> Result<(usize, usize)> {
    let bad = |why: &str| SettingsError::invalid(flag, v, why);
    let (m, n) = v
        .split_once('/')
        .ok_or_else(|| bad("expected M/N, e.g. 2/2"))?;
    let num = |x: &str| {
        x.trim()
            .parse::<usize>()
            .map_err(|_| bad("expected M/N, e.g. 2/2"))
    };
    let (m, n) = (num(m)?, num(n)?);
    if m == 0 || m > n {
        return Err(bad(&format!(
            "breaching datapoints M of the last N need 1 <= M <= N, but are {m} of {n}"
        )));
    }
    Ok((m, n))
}

/// A scaling step: a node count, or a percentage like "20%".
pub fn step(flag: &'static str, v: &str) -> Result<Adjustment> {
    let bad = |why: &str| SettingsError::invalid(flag, v, why);
    match v.trim().strip_suffix('%') {
        Some(p) => {
            let p: f64 = p
                .trim()
                .parse()
                .map_err(|_| bad("nodes, or a percentage like 20%"))?;
            if p > 0.0 && p.is_finite() {
                Ok(Adjustment::Percent(p))
            } else {
                Err(bad("a percentage should be above 0"))
            }
        }
        None => match v.trim().parse::<u32>() {
            Ok(0) => Err(bad("should be at least 1 node")),
            Ok(n) => Ok(Adjustment::Nodes(n)),
            Err(_) => Err(bad("nodes, or a percentage like 20%")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser as _;
    use std::ffi::OsString;

    /// The profile of a command line, with the config file under it as
    /// `main` applies it.
    fn profile(args: &[&str]) -> Result<ScalingProfile> {
        let argv: Vec<OsString> = args.iter().map(OsString::from).collect();
        let (argv, _) = crate::settings::file::with_config(argv).expect("a valid config file");
        let cli = Cli::try_parse_from(argv).expect("valid flags");
        match &cli.command {
            Command::Scale(a) => ScalingProfile::from_args(&a.profile),
            Command::Backtest(a) => ScalingProfile::from_args(&a.profile),
            _ => unreachable!("scale or backtest"),
        }
    }

    const FLAGS: [&str; 34] = [
        "--capacity-per-node",
        "4000",
        "--min-nodes",
        "3",
        "--max-nodes",
        "60",
        "--lead-time",
        "15m",
        "--quantile",
        "0.7",
        "--target-utilisation",
        "0.75",
        "--scale-in-window",
        "10m",
        "--scale-in-cooldown",
        "5m",
        "--max-step-up",
        "8",
        "--calibration-quantile",
        "0.95",
        "--floor-trend",
        "0s",
        "--max-error-ratio",
        "2.5",
        "--fallback",
        "alarm",
        "--alarm-out-of",
        "3/4",
        "--alarm-out-step",
        "2",
        "--tracking-utilisation",
        "0.6",
        "--ladder",
        "Standard_D2s_v5,Standard_D4s_v5",
    ];

    const TOML: &str = r#"
capacity-per-node = 4000
min-nodes = 3
max-nodes = 60
lead-time = "15m"
quantile = 0.7
target-utilisation = 0.75
scale-in-window = "10m"
scale-in-cooldown = "5m"
max-step-up = 8
calibration-quantile = 0.95
floor-trend = "0s"
max-error-ratio = 2.5
fallback = "alarm"
alarm-out-of = "3/4"
alarm-out-step = "2"
tracking-utilisation = 0.6
ladder = ["Standard_D2s_v5", "Standard_D4s_v5"]
"#;

    #[test]
    fn a_profile_from_a_toml_file_equals_the_same_settings_given_as_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile.toml");
        std::fs::write(&path, TOML).unwrap();
        let path = path.to_str().unwrap();
        for command in ["scale", "backtest"] {
            let mut with_flags = vec!["mlscaler", command];
            with_flags.extend(FLAGS);
            let from_flags = profile(&with_flags).unwrap();
            let from_file = profile(&["mlscaler", command, "--config", path]).unwrap();
            assert_eq!(from_file, from_flags, "{command}");
            assert_ne!(from_file, ScalingProfile::default());
            assert_eq!(from_file.predictive.max_step_up, Some(8));
            assert_eq!(from_file.alarm.rule.scale_out_m, 3);
        }
        // One file, one profile: what scale reads is what backtest reads.
        assert_eq!(
            profile(&["mlscaler", "scale", "--config", path]).unwrap(),
            profile(&["mlscaler", "backtest", "--config", path]).unwrap()
        );
    }

    #[test]
    fn a_profile_written_as_toml_reads_back_as_the_same_profile() {
        let mut flags = vec!["mlscaler", "scale"];
        // Every flag but the calibration's quantile, which contradicts
        // --no-calibration (refused together).
        let at = FLAGS.iter().position(|f| *f == "--calibration-quantile");
        let at = at.expect("FLAGS sets the calibration quantile");
        flags.extend(FLAGS[..at].iter().chain(&FLAGS[at + 2..]));
        flags.extend([
            "--no-calibration",
            "--scale-in-delete",
            "--queue",
            "gpu \"a\"",
        ]);
        let original = profile(&flags).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("written.toml");
        std::fs::write(&path, original.to_toml()).unwrap();
        let path = path.to_str().unwrap();
        for command in ["scale", "backtest"] {
            let read = profile(&["mlscaler", command, "--config", path]).unwrap();
            assert_eq!(read, original, "{command}");
        }
        // The defaults, written, are the defaults.
        std::fs::write(
            dir.path().join("written.toml"),
            ScalingProfile::default().to_toml(),
        )
        .unwrap();
        assert_eq!(
            profile(&["mlscaler", "backtest", "--config", path]).unwrap(),
            ScalingProfile::default()
        );
    }

    #[test]
    fn flags_win_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile.toml");
        std::fs::write(&path, TOML).unwrap();
        let p = profile(&[
            "mlscaler",
            "scale",
            "--config",
            path.to_str().unwrap(),
            "--quantile",
            "0.9",
        ])
        .unwrap();
        assert_eq!(p.predictive.quantile, 0.9);
        assert_eq!(p.predictive.target_utilisation, 0.75);
    }

    #[test]
    fn settings_that_cannot_work_name_the_flag_and_the_value() {
        let e = |args: &[&str]| {
            let mut a = vec!["mlscaler", "backtest"];
            a.extend(args);
            profile(&a).unwrap_err().to_string()
        };
        assert_eq!(
            e(&["--quantile", "1.5"]),
            "--quantile '1.5': should be in (0, 1)"
        );
        assert!(e(&["--target-utilisation", "0"]).starts_with("--target-utilisation '0':"));
        assert!(e(&["--alarm-out-of", "3/2"]).contains("3 of 2"));
        assert!(e(&["--alarm-out-step", "0"]).starts_with("--alarm-out-step '0':"));
        assert!(e(&["--min-nodes", "5", "--max-nodes", "2"]).contains("--min-nodes, --max-nodes"));
        assert!(e(&["--alarm-in-at", "0.9"]).contains("--alarm-in-at 0.9"));
        assert!(e(&["--capacity-per-node=-1"]).starts_with("--capacity-per-node '-1':"));
    }
}
