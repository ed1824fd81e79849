//! The VM-size ladder simulation behind `backtest --mode vertical`: memory
//! demand per instance (GiB) replayed against a scale set that moves along an
//! ordered ladder of VM sizes, and the scoring of every policy side by side.
//! Pure: no I/O, no clock; every result is a function of the inputs.
//!
//! # The simulated scale set
//! At step `i`:
//! 1. a resize whose roll-out time has come is finished;
//! 2. the memory in effect is the memory of the size set on the scale set
//!    or, while a resize rolls out, the smaller of the old and the new size
//!    (instances restart one by one; conservative); the utilisation
//!    `demand[i] / memory in effect` becomes datapoint `i`;
//! 3. the policy decides from the datapoints `..= i` (the oracle alone also
//!    sees `demand[i]` before it is served, by design);
//! 4. a resize decided at `i` rolls out over the lead time: the new size is
//!    in effect from step `i + lead` on; until then the target is not idle
//!    and [`plan_vertical`] is told so (it holds, as it does live), so
//!    resizes are never stacked.
//!
//! # Policies
//! - `vertical`: [`plan_vertical`] on the observed utilisation, no forecast;
//! - `vertical_forecast`: the same with the forecast peak demand over the
//!   lead time (given by the caller, made causally) divided by the memory of
//!   the current size;
//! - `static_largest`: always the largest size ("pay for the peak");
//! - `oracle`: at every step the smallest size whose memory keeps the
//!   utilisation at or below the high threshold, switched instantly (the
//!   largest when none does): a lower bound, not achievable.
//!
//! # Scoring
//! Over the scored steps (from a fraction of the trace on): GiB-hours of
//! memory in effect (the cost proxy: within a VM family the price is
//! roughly proportional to memory), the share of steps over 100% memory
//! (out-of-memory risk) and over the high threshold, the resizes (each one
//! restarts every instance) and the share of time at each size.

use crate::core::plan::vertical::{
    plan_vertical, CheckedVertical, VerticalDecision, VerticalError, VerticalParams,
};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Relative tolerance of "utilisation exceeds a threshold" (float noise is not a breach).
const TOLERANCE: f64 = 1e-9;

/// The policies of the vertical backtest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VerticalPolicy {
    Vertical,
    VerticalForecast,
    StaticLargest,
    Oracle,
}

impl VerticalPolicy {
    /// Every policy, in report order.
    pub const ALL: [VerticalPolicy; 4] = [
        VerticalPolicy::Vertical,
        VerticalPolicy::VerticalForecast,
        VerticalPolicy::StaticLargest,
        VerticalPolicy::Oracle,
    ];

    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            VerticalPolicy::Vertical => "vertical",
            VerticalPolicy::VerticalForecast => "vertical_forecast",
            VerticalPolicy::StaticLargest => "static_largest",
            VerticalPolicy::Oracle => "oracle",
        }
    }
}

impl fmt::Display for VerticalPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for VerticalPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        VerticalPolicy::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let nodes = [
                    "predictive",
                    "reactive_threshold",
                    "target_tracking",
                    "seasonal_naive",
                ];
                let hint = if nodes.iter().any(|n| n.eq_ignore_ascii_case(s)) {
                    " (a policy of --mode nodes, which scales by node count)"
                } else {
                    ""
                };
                format!(
                    "unknown vertical policy '{s}'{hint}; the vertical policies are {}",
                    VerticalPolicy::ALL.map(VerticalPolicy::name).join(", ")
                )
            })
    }
}

/// Memory in GiB of common Azure VM sizes, from Azure's documented size
/// tables (general purpose Dsv5/Ddsv5/Dasv5/Dsv4/Dsv3/Dv3, memory optimised
/// Esv5/Edsv5/Easv5/Esv4/Esv3/Ev3, compute optimised Fsv2).
const SIZES: &[(&str, &[(u32, f64)])] = &[
    ("D{}s_v5", D_V5),
    ("D{}ds_v5", D_V5),
    ("D{}as_v5", D_V5),
    ("D{}ads_v5", D_V5),
    ("D{}_v5", D_V5),
    ("D{}d_v5", D_V5),
    ("D{}s_v4", D_V4),
    ("D{}ds_v4", D_V4),
    ("D{}_v4", D_V4),
    ("D{}d_v4", D_V4),
    ("D{}s_v3", D_V4),
    ("D{}_v3", D_V4),
    ("E{}s_v5", E_V5),
    ("E{}ds_v5", E_V5),
    ("E{}as_v5", E_V5),
    ("E{}_v5", E_V5),
    ("E{}s_v4", E_V4),
    ("E{}ds_v4", E_V4),
    ("E{}_v4", E_V4),
    ("E{}s_v3", E_V3),
    ("E{}_v3", E_V3),
    ("F{}s_v2", F_V2),
];
const D_V5: &[(u32, f64)] = &[
    (2, 8.0),
    (4, 16.0),
    (8, 32.0),
    (16, 64.0),
    (32, 128.0),
    (48, 192.0),
    (64, 256.0),
    (96, 384.0),
];
const D_V4: &[(u32, f64)] = &[
    (2, 8.0),
    (4, 16.0),
    (8, 32.0),
    (16, 64.0),
    (32, 128.0),
    (48, 192.0),
    (64, 256.0),
];
const E_V5: &[(u32, f64)] = &[
    (2, 16.0),
    (4, 32.0),
    (8, 64.0),
    (16, 128.0),
    (20, 160.0),
    (32, 256.0),
    (48, 384.0),
    (64, 512.0),
];
const E_V4: &[(u32, f64)] = &[
    (2, 16.0),
    (4, 32.0),
    (8, 64.0),
    (16, 128.0),
    (20, 160.0),
    (32, 256.0),
    (48, 384.0),
    (64, 504.0),
];
const E_V3: &[(u32, f64)] = &[
    (2, 16.0),
    (4, 32.0),
    (8, 64.0),
    (16, 128.0),
    (20, 160.0),
    (32, 256.0),
    (48, 384.0),
    (64, 432.0),
];
const F_V2: &[(u32, f64)] = &[
    (2, 4.0),
    (4, 8.0),
    (8, 16.0),
    (16, 32.0),
    (32, 64.0),
    (48, 96.0),
    (64, 128.0),
    (72, 144.0),
];

/// The memory in GiB of a VM size from the built-in table (case-insensitive,
/// with or without the `Standard_` prefix); `None` for a size not in it.
pub fn builtin_memory_gib(size: &str) -> Option<f64> {
    let s = size.trim();
    let s = match s.get(..9) {
        Some(p) if p.eq_ignore_ascii_case("standard_") => &s[9..],
        _ => s,
    };
    SIZES.iter().find_map(|(pattern, table)| {
        let (head, tail) = pattern.split_once("{}")?;
        table.iter().find_map(|(vcpus, gib)| {
            let name = format!("{head}{vcpus}{tail}");
            name.eq_ignore_ascii_case(s).then_some(*gib)
        })
    })
}

/// Errors of the vertical simulation's settings and inputs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VertSimError {
    #[error(transparent)]
    Vertical(#[from] VerticalError),
    #[error("the VM size '{0}' is not in the built-in table of memory sizes; give the memory of every ladder size with --ladder-memory (GiB, comma-separated, in ladder order)")]
    UnknownSize(String),
    #[error("the ladder has {sizes} sizes but --ladder-memory gives {values} values: give one per size, in ladder order")]
    MemoryCount { sizes: usize, values: usize },
    #[error("the memory of {size} should be a positive number of GiB, but is {value}")]
    BadMemory { size: String, value: f64 },
    #[error("the ladder should go from the smallest to the largest memory, but {size} ({gib} GiB) follows {previous} ({previous_gib} GiB)")]
    NotIncreasing {
        size: String,
        gib: f64,
        previous: String,
        previous_gib: f64,
    },
    #[error("the GiB per unit of the metric should be a positive number, but is {0}")]
    MemoryPerUnit(f64),
    #[error("the share of the largest size that the 99.9th percentile of demand fills should be in (0, 1], but is {0}")]
    Fill(f64),
    #[error("the demand is zero everywhere: no memory per unit makes its 99.9th percentile fill the largest size")]
    ZeroDemand,
    #[error("the time a resize takes to roll out should be at least one step")]
    Lead,
    #[error("the scored part should start inside the trace (0 <= fraction < 1), but the fraction is {0}")]
    ScoreFrom(f64),
    #[error("the first decision is at step {start}, but the trace has {steps} steps")]
    StartAfterEnd { start: usize, steps: usize },
    #[error("no policy to run")]
    NoPolicies,
    #[error("the trace has no steps")]
    Empty,
    #[error("step {step}: memory demand should be a finite number >= 0, but is {value}")]
    BadDemand { step: usize, value: f64 },
    #[error("vertical_forecast needs a forecast with one value (or none) per step: {got} for {steps} steps")]
    Forecast { got: usize, steps: usize },
}

/// The memory of each ladder size: `given` (GiB, in ladder order) or, when
/// empty, the built-in table. Must increase along the ladder.
pub fn ladder_memory(ladder: &[String], given: &[f64]) -> Result<Vec<f64>, VertSimError> {
    let memory: Vec<f64> = if given.is_empty() {
        ladder
            .iter()
            .map(|s| builtin_memory_gib(s).ok_or_else(|| VertSimError::UnknownSize(s.clone())))
            .collect::<Result<_, _>>()?
    } else if given.len() != ladder.len() {
        return Err(VertSimError::MemoryCount {
            sizes: ladder.len(),
            values: given.len(),
        });
    } else {
        given.to_vec()
    };
    for (i, (size, &gib)) in ladder.iter().zip(&memory).enumerate() {
        if !(gib.is_finite() && gib > 0.0) {
            return Err(VertSimError::BadMemory {
                size: size.clone(),
                value: gib,
            });
        }
        if i > 0 && gib <= memory[i - 1] {
            return Err(VertSimError::NotIncreasing {
                size: size.clone(),
                gib,
                previous: ladder[i - 1].clone(),
                previous_gib: memory[i - 1],
            });
        }
    }
    Ok(memory)
}

/// GiB per unit of the metric such that the 99.9th percentile of `units`
/// (linear interpolation between order statistics) fills `fill` of `top_gib`.
/// Returns (GiB per unit, the 99.9th percentile in units).
pub fn memory_per_unit_for_p999(
    units: &[f64],
    top_gib: f64,
    fill: f64,
) -> Result<(f64, f64), VertSimError> {
    if !(fill > 0.0 && fill <= 1.0) {
        return Err(VertSimError::Fill(fill));
    }
    let mut v: Vec<f64> = units.iter().copied().filter(|d| d.is_finite()).collect();
    if v.is_empty() {
        return Err(VertSimError::Empty);
    }
    v.sort_by(f64::total_cmp);
    let p = crate::core::forecast::metrics::quantile_sorted(&v, 0.999);
    if p.is_nan() || p <= 0.0 {
        return Err(VertSimError::ZeroDemand);
    }
    Ok((fill * top_gib / p, p))
}

/// Vertical simulation settings (unchecked).
#[derive(Debug, Clone, PartialEq)]
pub struct VertSimParams {
    /// VM sizes, smallest first.
    pub ladder: Vec<String>,
    /// Memory of each size in GiB (see [`ladder_memory`]).
    pub memory_gib: Vec<f64>,
    /// One size up at this utilisation.
    pub high: f64,
    /// One size down after a whole window at or below this.
    pub low: f64,
    /// The stabilisation window, in steps.
    pub window_steps: usize,
    /// Steps a resize takes to roll out (at least 1).
    pub lead_steps: usize,
    /// Score from this fraction of the trace on.
    pub score_from_fraction: f64,
    /// The first step the planning policies decide at (`backtest --start`):
    /// before it the data is history only and the scale set holds at the
    /// size that fits this step's demand, as a first live run creates it.
    pub start_step: usize,
    /// Policies, in report order.
    pub policies: Vec<VerticalPolicy>,
}

/// Checked settings: the only form [`run_vertsim`] accepts.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedVertSim {
    plan: CheckedVertical,
    ladder: Vec<String>,
    memory: Vec<f64>,
    high: f64,
    window: usize,
    lead: usize,
    score_from_fraction: f64,
    start_step: usize,
    policies: Vec<VerticalPolicy>,
}

impl VertSimParams {
    pub fn check(self) -> Result<CheckedVertSim, VertSimError> {
        if self.memory_gib.len() != self.ladder.len() {
            return Err(VertSimError::MemoryCount {
                sizes: self.ladder.len(),
                values: self.memory_gib.len(),
            });
        }
        let memory = ladder_memory(&self.ladder, &self.memory_gib)?;
        let plan = VerticalParams {
            ladder: self.ladder.clone(),
            high: self.high,
            low: self.low,
            window: self.window_steps,
            memory_gib: Some(memory.clone()),
        }
        .check()?;
        if self.lead_steps == 0 {
            return Err(VertSimError::Lead);
        }
        if !(self.score_from_fraction >= 0.0 && self.score_from_fraction < 1.0) {
            return Err(VertSimError::ScoreFrom(self.score_from_fraction));
        }
        let mut policies = Vec::new();
        for p in self.policies {
            if !policies.contains(&p) {
                policies.push(p);
            }
        }
        if policies.is_empty() {
            return Err(VertSimError::NoPolicies);
        }
        Ok(CheckedVertSim {
            plan,
            ladder: self.ladder,
            memory,
            high: self.high,
            window: self.window_steps,
            lead: self.lead_steps,
            score_from_fraction: self.score_from_fraction,
            start_step: self.start_step,
            policies,
        })
    }
}

impl CheckedVertSim {
    /// The ladder, smallest first.
    pub fn ladder(&self) -> &[String] {
        &self.ladder
    }
    /// Memory of each size in GiB.
    pub fn memory_gib(&self) -> &[f64] {
        &self.memory
    }
    /// The policies, in report order.
    pub fn policies(&self) -> &[VerticalPolicy] {
        &self.policies
    }
    /// Steps a resize takes to roll out.
    pub fn lead_steps(&self) -> usize {
        self.lead
    }
    /// One size up at this utilisation.
    pub fn high(&self) -> f64 {
        self.high
    }
    /// The stabilisation window, in steps.
    pub fn window_steps(&self) -> usize {
        self.window
    }
    /// The smallest size whose memory keeps `demand` at or below the high
    /// threshold; the largest when none does.
    pub fn fitting_size(&self, demand: f64) -> usize {
        fitting_size(&self.memory, self.high, demand)
    }
}

/// One step of a policy run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SimStep {
    /// Memory demand (GiB).
    pub demand: f64,
    /// The forecast peak demand over the lead time the policy was given (GiB).
    pub forecast: Option<f64>,
    /// The size set on the scale set after the decision at this step (ladder index).
    pub size: usize,
    /// The size whose memory served this step (ladder index): the smaller one while a resize rolls.
    pub effective: usize,
    /// Memory that served this step (GiB).
    pub memory: f64,
    /// `demand / memory`.
    pub utilisation: f64,
    /// A resize was decided at this step.
    pub resized: bool,
}

/// Share of the scored time spent at one size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SizeShare {
    pub size: String,
    pub memory_gib: f64,
    pub pct: f64,
}

/// The score of one policy over the scored steps.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerticalMetrics {
    pub policy: VerticalPolicy,
    /// Memory in effect x time: the cost proxy.
    pub gib_hours: f64,
    /// `gib_hours` relative to the oracle's (when it ran).
    pub gib_hours_vs_oracle: Option<f64>,
    /// % of steps with demand above the memory in effect (out-of-memory risk).
    pub over_memory_pct: f64,
    /// % of steps with utilisation above the high threshold.
    pub over_high_pct: f64,
    pub mean_utilisation: f64,
    pub max_utilisation: f64,
    /// Resizes decided (or, for the oracle, size changes) in the scored part;
    /// each one restarts every instance.
    pub resizes: usize,
    /// Share of the scored time at each size, in ladder order.
    pub sizes: Vec<SizeShare>,
}

/// One policy's run.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyRun {
    pub policy: VerticalPolicy,
    pub steps: Vec<SimStep>,
    pub metrics: VerticalMetrics,
}

/// A finished vertical simulation.
#[derive(Debug, Clone, PartialEq)]
pub struct VertSim {
    /// First scored step.
    pub score_from: usize,
    /// One run per policy, in report order.
    pub runs: Vec<PolicyRun>,
}

impl VertSim {
    pub fn run(&self, policy: VerticalPolicy) -> Option<&PolicyRun> {
        self.runs.iter().find(|r| r.policy == policy)
    }
}

/// Run every policy of `params` over `demand` (GiB per step). `forecast`
/// (the peak demand over the lead time, made at each step from data up to
/// it; `None` where there was none) is needed for `vertical_forecast`.
pub fn run_vertsim(
    params: &CheckedVertSim,
    step_secs: i64,
    demand: &[f64],
    forecast: Option<&[Option<f64>]>,
) -> Result<VertSim, VertSimError> {
    let n = demand.len();
    if n == 0 {
        return Err(VertSimError::Empty);
    }
    if let Some((step, &value)) = demand
        .iter()
        .enumerate()
        .find(|(_, v)| !v.is_finite() || **v < 0.0)
    {
        return Err(VertSimError::BadDemand { step, value });
    }
    if params.policies.contains(&VerticalPolicy::VerticalForecast) {
        let got = forecast.map_or(0, <[_]>::len);
        if got != n {
            return Err(VertSimError::Forecast { got, steps: n });
        }
    }
    if params.start_step >= n {
        return Err(VertSimError::StartAfterEnd {
            start: params.start_step,
            steps: n,
        });
    }
    let score_from = ((n as f64 * params.score_from_fraction).ceil() as usize)
        .max(params.start_step)
        .min(n - 1);
    let mut runs: Vec<PolicyRun> = params
        .policies
        .iter()
        .map(|&policy| {
            let steps = match policy {
                VerticalPolicy::Vertical => simulate_plan(params, step_secs, demand, None),
                VerticalPolicy::VerticalForecast => {
                    simulate_plan(params, step_secs, demand, forecast)
                }
                VerticalPolicy::StaticLargest => {
                    simulate_fixed(params, demand, |_| params.memory.len() - 1)
                }
                VerticalPolicy::Oracle => {
                    simulate_fixed(params, demand, |d| params.fitting_size(d))
                }
            };
            let metrics = score(params, policy, &steps[score_from..], step_secs);
            PolicyRun {
                policy,
                steps,
                metrics,
            }
        })
        .collect();
    let oracle = runs
        .iter()
        .find(|r| r.policy == VerticalPolicy::Oracle)
        .map(|r| r.metrics.gib_hours)
        .filter(|h| *h > 0.0);
    for r in &mut runs {
        r.metrics.gib_hours_vs_oracle = oracle.map(|o| r.metrics.gib_hours / o);
    }
    Ok(VertSim { score_from, runs })
}

/// A policy that sets a size at every step, in effect at once.
fn simulate_fixed(
    params: &CheckedVertSim,
    demand: &[f64],
    size: impl Fn(f64) -> usize,
) -> Vec<SimStep> {
    let mut prev: Option<usize> = None;
    demand
        .iter()
        .map(|&d| {
            let s = size(d);
            let memory = params.memory[s];
            let resized = prev.is_some_and(|p| p != s);
            prev = Some(s);
            SimStep {
                demand: d,
                forecast: None,
                size: s,
                effective: s,
                memory,
                utilisation: d / memory,
                resized,
            }
        })
        .collect()
}

/// [`plan_vertical`] against the simulated scale set (see the module docs),
/// one [`SimScaleSet`] step per demand value.
fn simulate_plan(
    params: &CheckedVertSim,
    step_secs: i64,
    demand: &[f64],
    forecast: Option<&[Option<f64>]>,
) -> Vec<SimStep> {
    let start = params.start_step;
    let mut set = SimScaleSet::new(params.ladder.clone(), params.fitting_size(demand[start]));
    let lead_secs = params.lead as i64 * step_secs;
    let mut steps = Vec::with_capacity(demand.len());
    for (i, &d) in demand.iter().enumerate() {
        let t = i as i64 * step_secs;
        let seen = set.observe(t, d, &params.memory, params.window);
        let f = forecast.and_then(|f| f[i]).filter(|f| f.is_finite());
        // Before the start the data is history only: no decision.
        let resized = i >= start
            && matches!(
                set.decide(&params.plan, &params.memory, t, f, lead_secs),
                VerticalDecision::Resize { .. }
            );
        steps.push(SimStep {
            demand: d,
            forecast: f,
            size: set.size,
            effective: seen.effective,
            memory: seen.memory,
            utilisation: seen.utilisation,
            resized,
        });
    }
    steps
}

/// The smallest size whose memory (GiB, smallest first) keeps `demand` (GiB)
/// at or below the `high` utilisation; the largest when none does.
pub fn fitting_size(memory: &[f64], high: f64, demand: f64) -> usize {
    memory
        .iter()
        .position(|m| demand <= high * m * (1.0 + TOLERANCE))
        .unwrap_or(memory.len() - 1)
}

/// The simulated scale set of the policies that plan with [`plan_vertical`],
/// one step at a time (see the module docs): what the backtest keeps from
/// one step to the next, and what `scale --policy vertical --target sim`
/// keeps from one run to the next in its state file, so that a run per
/// step makes the backtest's decisions. Times are seconds; sizes are
/// indexes into its ladder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimScaleSet {
    /// The ladder it moves along, smallest first.
    ladder: Vec<String>,
    /// The size set (the new one while a resize rolls out).
    size: usize,
    /// While a resize rolls out: the size it started from, and the time its
    /// new size is in effect.
    rolling: Option<(usize, i64)>,
    /// The times and utilisation datapoints of the latest steps, oldest
    /// first: at most the stabilisation window.
    times: Vec<i64>,
    utilisation: Vec<f64>,
}

/// What served one observed step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observed {
    /// The size in effect (ladder index).
    pub effective: usize,
    /// Its memory (GiB).
    pub memory: f64,
    /// Demand / memory.
    pub utilisation: f64,
}

impl SimScaleSet {
    /// A scale set at `size` (an index into `ladder`), idle, with no datapoints.
    pub fn new(ladder: Vec<String>, size: usize) -> SimScaleSet {
        let size = size.min(ladder.len().saturating_sub(1));
        SimScaleSet {
            ladder,
            size,
            rolling: None,
            times: Vec::new(),
            utilisation: Vec::new(),
        }
    }

    /// The ladder it moves along.
    pub fn ladder(&self) -> &[String] {
        &self.ladder
    }

    /// The size set (the new one while a resize rolls out).
    pub fn size(&self) -> &str {
        &self.ladder[self.size]
    }

    /// Whether no resize is rolling out (the target takes a change).
    pub fn is_idle(&self) -> bool {
        self.rolling.is_none()
    }

    /// When the rolling resize's new size is in effect.
    pub fn rolling_until(&self) -> Option<i64> {
        self.rolling.map(|(_, until)| until)
    }

    /// The time of the newest observed step.
    pub fn newest(&self) -> Option<i64> {
        self.times.last().copied()
    }

    /// The step at time `t` with `demand` GiB (steps in increasing time): a
    /// resize whose roll-out time has come is finished, then the utilisation
    /// at the size in effect (the smaller of the old and the new size while
    /// one rolls out) becomes the newest datapoint; `window` datapoints are kept.
    pub fn observe(&mut self, t: i64, demand: f64, memory: &[f64], window: usize) -> Observed {
        if self.rolling.is_some_and(|(_, until)| t >= until) {
            self.rolling = None;
        }
        let effective = self
            .rolling
            .map_or(self.size, |(from, _)| from.min(self.size));
        let m = memory[effective];
        let utilisation = demand / m;
        self.times.push(t);
        self.utilisation.push(utilisation);
        let excess = self.times.len().saturating_sub(window.max(1));
        self.times.drain(..excess);
        self.utilisation.drain(..excess);
        Observed {
            effective,
            memory: m,
            utilisation,
        }
    }

    /// Decide at time `t` (the newest observed step) with [`plan_vertical`]
    /// on the datapoints and the forecast peak demand (GiB) over the lead
    /// time, and start a resize it asks for: its new size is in effect
    /// `lead_secs` later.
    pub fn decide(
        &mut self,
        plan: &CheckedVertical,
        memory: &[f64],
        t: i64,
        forecast: Option<f64>,
        lead_secs: i64,
    ) -> VerticalDecision {
        let decision = plan_vertical(
            plan,
            &self.ladder[self.size],
            &self.utilisation,
            forecast.map(|f| f / memory[self.size]),
            self.rolling.is_none(),
        );
        if let VerticalDecision::Resize { to, .. } = &decision {
            if let Some(to) = self.ladder.iter().position(|s| s == to) {
                self.rolling = Some((self.size, t + lead_secs));
                self.size = to;
            }
        }
        decision
    }
}

fn score(
    params: &CheckedVertSim,
    policy: VerticalPolicy,
    steps: &[SimStep],
    step_secs: i64,
) -> VerticalMetrics {
    let n = steps.len().max(1) as f64;
    let hours = step_secs as f64 / 3600.0;
    let count = |f: &dyn Fn(&SimStep) -> bool| steps.iter().filter(|s| f(s)).count() as f64;
    let mut at = vec![0usize; params.ladder.len()];
    for s in steps {
        at[s.effective] += 1;
    }
    VerticalMetrics {
        policy,
        gib_hours: steps.iter().map(|s| s.memory).sum::<f64>() * hours,
        gib_hours_vs_oracle: None,
        over_memory_pct: 100.0 * count(&|s| s.utilisation > 1.0 + TOLERANCE) / n,
        over_high_pct: 100.0 * count(&|s| s.utilisation > params.high * (1.0 + TOLERANCE)) / n,
        mean_utilisation: steps.iter().map(|s| s.utilisation).sum::<f64>() / n,
        max_utilisation: steps.iter().map(|s| s.utilisation).fold(0.0, f64::max),
        resizes: steps.iter().filter(|s| s.resized).count(),
        sizes: params
            .ladder
            .iter()
            .zip(&params.memory)
            .zip(at)
            .map(|((size, &memory_gib), k)| SizeShare {
                size: size.clone(),
                memory_gib,
                pct: 100.0 * k as f64 / n,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEM: [f64; 4] = [8.0, 16.0, 32.0, 64.0];

    fn params(lead: usize, window: usize, policies: &[VerticalPolicy]) -> CheckedVertSim {
        VertSimParams {
            ladder: ["a", "b", "c", "d"].map(String::from).to_vec(),
            memory_gib: MEM.to_vec(),
            high: 0.8,
            low: 0.4,
            window_steps: window,
            lead_steps: lead,
            score_from_fraction: 0.0,
            start_step: 0,
            policies: policies.to_vec(),
        }
        .check()
        .unwrap()
    }

    fn run(p: &CheckedVertSim, demand: &[f64], policy: VerticalPolicy) -> PolicyRun {
        run_vertsim(p, 60, demand, None)
            .unwrap()
            .run(policy)
            .unwrap()
            .clone()
    }

    fn resize_steps(r: &PolicyRun) -> Vec<usize> {
        (0..r.steps.len()).filter(|&i| r.steps[i].resized).collect()
    }

    #[test]
    fn rising_demand_moves_up_one_size_per_lead_time_and_stops_at_the_top() {
        let p = params(3, 5, &[VerticalPolicy::Vertical]);
        // From 5 GiB to 200 GiB (beyond the largest size) in 40 steps.
        let demand: Vec<f64> = (0..60).map(|i| (5.0 + 5.0 * i as f64).min(200.0)).collect();
        let r = run(&p, &demand, VerticalPolicy::Vertical);
        let at = resize_steps(&r);
        assert_eq!(at.len(), 3, "a, b, c, d: three moves up, {at:?}");
        for w in at.windows(2) {
            assert!(w[1] - w[0] >= 3, "a resize every lead time at most: {at:?}");
        }
        let sizes: Vec<usize> = r.steps.iter().map(|s| s.size).collect();
        for w in sizes.windows(2) {
            assert!(
                w[1] == w[0] || w[1] == w[0] + 1,
                "one size at a time: {sizes:?}"
            );
        }
        assert_eq!(*sizes.last().unwrap(), 3);
        assert!(r.steps.iter().all(|s| s.size <= 3 && s.effective <= 3));
        // It stays at the top even though utilisation stays above 100%.
        assert!(r.steps.last().unwrap().utilisation > 1.0);
        assert!(r.metrics.over_memory_pct > 0.0);
        // Moving up, the memory in effect during the roll is the old (smaller) one.
        let first = at[0];
        assert_eq!(r.steps[first + 1].memory, MEM[0]);
        assert_eq!(r.steps[first + 3].memory, MEM[1]);
    }

    #[test]
    fn the_bottom_of_the_ladder_holds() {
        let p = params(2, 3, &[VerticalPolicy::Vertical]);
        let r = run(&p, &[0.5; 50], VerticalPolicy::Vertical);
        assert!(resize_steps(&r).is_empty());
        assert!(r.steps.iter().all(|s| s.size == 0));
        // Zero demand is fine too.
        let r = run(&p, &[0.0; 10], VerticalPolicy::Vertical);
        assert!(r.steps.iter().all(|s| s.size == 0 && s.utilisation == 0.0));
    }

    #[test]
    fn no_resize_is_stacked_while_one_rolls_out() {
        let p = params(5, 3, &[VerticalPolicy::Vertical]);
        // Far beyond every size from step 1 on.
        let mut demand = vec![1.0];
        demand.extend([100.0; 30]);
        let r = run(&p, &demand, VerticalPolicy::Vertical);
        assert_eq!(resize_steps(&r), vec![1, 6, 11]);
        assert_eq!(r.steps[5].size, 1, "decided at 1, rolling until 6");
        assert_eq!(r.steps[6].effective, 1);
        assert_eq!(r.steps[16].effective, 3);
    }

    #[test]
    fn a_calm_window_moves_down_exactly_once_after_the_window() {
        let p = params(2, 3, &[VerticalPolicy::Vertical]);
        // 20 GiB needs c (32 GiB: 0.625); then 10 GiB: 0.31 on c, 0.625 on b.
        let mut demand = vec![20.0];
        demand.extend([10.0; 40]);
        let r = run(&p, &demand, VerticalPolicy::Vertical);
        assert_eq!(r.steps[0].size, 2);
        assert_eq!(
            resize_steps(&r),
            vec![3],
            "steps 1, 2, 3 are the calm window"
        );
        assert_eq!(r.steps[3].size, 1);
        // Moving down, the smaller size is in effect from the first step of the roll.
        assert_eq!(r.steps[4].memory, MEM[1]);
        assert!(r.steps[4..].iter().all(|s| s.size == 1));
    }

    #[test]
    fn the_oracle_picks_the_smallest_fitting_size_and_static_largest_the_top() {
        let p = params(
            2,
            3,
            &[VerticalPolicy::Oracle, VerticalPolicy::StaticLargest],
        );
        let demand = [5.0, 7.0, 12.0, 30.0, 60.0, 100.0, 6.4];
        let sim = run_vertsim(&p, 3600, &demand, None).unwrap();
        let o = sim.run(VerticalPolicy::Oracle).unwrap();
        let sizes: Vec<usize> = o.steps.iter().map(|s| s.size).collect();
        assert_eq!(sizes, vec![0, 1, 1, 3, 3, 3, 0]);
        // 60 GiB is over 80% of the top, 100 GiB over 100%.
        assert!((o.metrics.over_high_pct - 200.0 / 7.0).abs() < 1e-9);
        assert!((o.metrics.over_memory_pct - 100.0 / 7.0).abs() < 1e-9);
        assert_eq!(o.metrics.resizes, 3);
        assert_eq!(o.metrics.gib_hours, 8.0 + 16.0 + 16.0 + 64.0 * 3.0 + 8.0);
        assert_eq!(o.metrics.gib_hours_vs_oracle, Some(1.0));
        let s = sim.run(VerticalPolicy::StaticLargest).unwrap();
        assert!(s.steps.iter().all(|s| s.size == 3));
        assert_eq!(s.metrics.gib_hours, 64.0 * 7.0);
        assert_eq!(s.metrics.resizes, 0);
        assert_eq!(s.metrics.sizes[3].pct, 100.0);
        let ratio = s.metrics.gib_hours_vs_oracle.unwrap();
        assert!((ratio - 448.0 / 240.0).abs() < 1e-12);
    }

    #[test]
    fn a_forecast_over_the_high_threshold_moves_up_before_the_observed_memory_does() {
        let p = params(
            2,
            3,
            &[VerticalPolicy::Vertical, VerticalPolicy::VerticalForecast],
        );
        // 5 GiB on a (0.625) for 10 steps, then 7 GiB (0.875): the forecast
        // knows it 2 steps early.
        let demand: Vec<f64> = (0..20).map(|i| if i < 10 { 5.0 } else { 7.0 }).collect();
        let forecast: Vec<Option<f64>> = (0..20)
            .map(|i| (i >= 3).then_some(if i >= 8 { 7.0 } else { 5.0 }))
            .collect();
        let sim = run_vertsim(&p, 60, &demand, Some(&forecast)).unwrap();
        let v = sim.run(VerticalPolicy::Vertical).unwrap();
        let f = sim.run(VerticalPolicy::VerticalForecast).unwrap();
        assert_eq!(resize_steps(v), vec![10]);
        assert_eq!(resize_steps(f), vec![8]);
        assert!(f.metrics.over_high_pct < v.metrics.over_high_pct);
        assert_eq!(f.metrics.over_high_pct, 0.0);
        // Without a forecast, vertical_forecast is refused.
        assert!(matches!(
            run_vertsim(&p, 60, &demand, None),
            Err(VertSimError::Forecast { got: 0, .. })
        ));
    }

    #[test]
    fn before_the_start_step_the_set_holds_at_the_size_fitting_the_start() {
        let mut p = params(1, 3, &[VerticalPolicy::Vertical]);
        p.start_step = 4;
        // 60 GiB before the start would move a (8 GiB) up at once; the set
        // starts at the size that fits the start's 20 GiB (c) and holds.
        let demand = [60.0, 60.0, 60.0, 60.0, 20.0, 20.0, 60.0, 60.0];
        let r = run(&p, &demand, VerticalPolicy::Vertical);
        let sizes: Vec<usize> = r.steps.iter().map(|s| s.size).collect();
        assert_eq!(sizes, vec![2, 2, 2, 2, 2, 2, 3, 3]);
        assert_eq!(resize_steps(&r), vec![6]);
        assert_eq!(run_vertsim(&p, 60, &demand, None).unwrap().score_from, 4);
        p.start_step = 8;
        assert!(matches!(
            run_vertsim(&p, 60, &demand, None),
            Err(VertSimError::StartAfterEnd { start: 8, steps: 8 })
        ));
    }

    #[test]
    fn only_the_scored_part_counts() {
        let mut p = params(1, 3, &[VerticalPolicy::StaticLargest]);
        p.score_from_fraction = 0.5;
        let sim = run_vertsim(&p, 1800, &[1.0; 10], None).unwrap();
        assert_eq!(sim.score_from, 5);
        assert_eq!(sim.runs[0].metrics.gib_hours, 64.0 * 5.0 * 0.5);
    }

    #[test]
    fn sizes_come_from_the_table_or_the_flag_and_bad_ones_are_named() {
        assert_eq!(builtin_memory_gib("Standard_D8s_v5"), Some(32.0));
        assert_eq!(builtin_memory_gib("standard_e16S_V5"), Some(128.0));
        assert_eq!(builtin_memory_gib("D2s_v5"), Some(8.0));
        assert_eq!(builtin_memory_gib("Standard_E64s_v3"), Some(432.0));
        assert_eq!(builtin_memory_gib("Standard_F8s_v2"), Some(16.0));
        assert_eq!(builtin_memory_gib("Standard_D3s_v5"), None);
        assert_eq!(builtin_memory_gib("Standard_M128s"), None);
        let ladder = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            ladder_memory(&ladder(&["Standard_D2s_v5", "Standard_E4s_v5"]), &[]).unwrap(),
            vec![8.0, 32.0]
        );
        let e = ladder_memory(&ladder(&["Standard_D2s_v5", "Custom_Big"]), &[]).unwrap_err();
        assert_eq!(e, VertSimError::UnknownSize("Custom_Big".into()));
        assert!(
            e.to_string().contains("'Custom_Big'") && e.to_string().contains("--ladder-memory")
        );
        assert_eq!(
            ladder_memory(&ladder(&["x", "Custom_Big"]), &[4.0, 9.5]).unwrap(),
            vec![4.0, 9.5]
        );
        assert_eq!(
            ladder_memory(&ladder(&["x", "y"]), &[4.0]),
            Err(VertSimError::MemoryCount {
                sizes: 2,
                values: 1
            })
        );
        assert!(matches!(
            ladder_memory(&ladder(&["x", "y"]), &[4.0, 0.0]),
            Err(VertSimError::BadMemory { .. })
        ));
        assert!(matches!(
            ladder_memory(&ladder(&["x", "y"]), &[8.0, 4.0]),
            Err(VertSimError::NotIncreasing { .. })
        ));
    }

    #[test]
    fn the_auto_scale_makes_the_p999_fill_the_share_of_the_largest_size() {
        let units: Vec<f64> = (1..=1000).map(f64::from).collect();
        let (per_unit, p) = memory_per_unit_for_p999(&units, 64.0, 0.7).unwrap();
        assert!((p - 999.001).abs() < 1e-9);
        assert!((per_unit * p - 0.7 * 64.0).abs() < 1e-9);
        assert_eq!(
            memory_per_unit_for_p999(&[0.0; 5], 64.0, 0.7),
            Err(VertSimError::ZeroDemand)
        );
        assert_eq!(
            memory_per_unit_for_p999(&units, 64.0, 1.5),
            Err(VertSimError::Fill(1.5))
        );
    }

    #[test]
    fn policy_names_parse_and_node_policies_are_pointed_at_their_mode() {
        assert_eq!(
            "vertical_forecast".parse::<VerticalPolicy>(),
            Ok(VerticalPolicy::VerticalForecast)
        );
        let e = "predictive".parse::<VerticalPolicy>().unwrap_err();
        assert!(
            e.contains("--mode nodes") && e.contains("static_largest"),
            "{e}"
        );
    }
}
