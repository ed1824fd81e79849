//! Direct multi-step forecasting with ridge regression, walk-forward
//! evaluation against naive baselines, and calibrated quantiles (per horizon
//! and of the peak over the lead window) from walk-forward errors.
//!
//! # How the fit works
//! Every horizon `h = 1..=H` has its own linear model on the same feature row
//! (see [`crate::core::forecast::features`]). The normal equations `(X'X + Λ) B = X'Y`
//! therefore share `X'X`: one streaming pass over the history accumulates
//! `X'X` (p×p) and `X'Y` (p×H) in blocks (a matrix product per block), and one
//! Cholesky factorisation (linfa-linalg) solves every horizon at once. Memory
//! is O(p² + p·H) beyond the series itself, and a year of one-minute data is a
//! single pass. With `ridge = 0` this is ordinary least squares; a test checks
//! it against linfa-linear's `LinearRegression` on the same rows.
//!
//! # Walk-forward (rolling-origin) evaluation
//! The last `eval_fraction` of the forecast origins is cut into `folds` blocks.
//! For each block the model is refit on the rows whose targets were all known
//! at the block's first origin, then forecasts every origin of the block. The
//! same origins are forecast by the naive baselines. Quantiles for block `k`
//! are calibrated on the errors of blocks `< k` whose targets were known at
//! block `k`'s first origin (see [`crate::core::forecast::conformal`]), so
//! coverage and pinball loss are scored out of sample (block 0 gets point
//! metrics only). The published model is calibrated on every block.

use crate::core::forecast::calendar::Calendar;
use crate::core::forecast::conformal::{
    peak_values, peak_values_at, Calibration, CalibrationParams, PathSample, PeakCalibration,
    Sample, CAL_LEVELS, MAX_SAMPLES,
};
use crate::core::forecast::features::{FeatureBuilder, FeatureError, FeatureParams, FeatureSpec};
use crate::core::forecast::metrics::{
    quantiles_at_levels, Coverage, CoverageAcc, Metrics, MetricsAcc, CENTRAL_80, COVERAGE_LEVELS,
    LEVELS,
};
use crate::core::forecast::series::LoadSeries;
use crate::core::time::{Step, DAY_SECS, WEEK_SECS};
use linfa_linalg::cholesky::SolveCInplace;
use ndarray::{linalg::general_mat_mul, s, Array2};
use serde::{Deserialize, Serialize};

/// Unchecked forecaster parameters (builder style).
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastParams {
    pub features: FeatureParams,
    /// Forecast horizon, in steps.
    pub horizon: usize,
    /// The provisioning lead time, in steps (the horizon the quality gate looks at).
    pub lead: usize,
    /// Ridge penalty on standardised coefficients (0 = least squares).
    pub ridge: f64,
    /// Share of the forecast origins used for walk-forward evaluation.
    pub eval_fraction: f64,
    /// Number of walk-forward folds (refits).
    pub folds: usize,
    /// Transform of the load before fitting.
    pub transform: Transform,
}

/// A transform of the load values applied before fitting and undone after
/// forecasting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Transform {
    /// Fit the load as it is.
    None,
    /// Fit `ln(1 + load)`: daily shapes and bursts that scale with the level
    /// of traffic become additive, and intervals widen with the load.
    Log1p,
}

impl Transform {
    /// Into model space.
    pub fn forward(self, v: f64) -> f64 {
        match self {
            Transform::None => v,
            Transform::Log1p => v.ln_1p(),
        }
    }
    /// Back to load units (never below zero).
    pub fn inverse(self, v: f64) -> f64 {
        match self {
            Transform::None => v,
            Transform::Log1p => v.exp_m1(),
        }
        .max(0.0)
    }
}

impl std::str::FromStr for Transform {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Transform::None),
            "log1p" | "log" => Ok(Transform::Log1p),
            _ => Err(format!("unknown transform '{s}': expected none or log1p")),
        }
    }
}

impl ForecastParams {
    /// Defaults for a lead time of `lead` steps: horizon = lead, ridge 1e-4,
    /// the last 20% of the history in 5 folds.
    pub fn new(lead: usize) -> Self {
        ForecastParams {
            features: FeatureParams::default(),
            horizon: lead,
            lead,
            ridge: 1e-4,
            eval_fraction: 0.2,
            folds: 5,
            transform: Transform::Log1p,
        }
    }

    /// Validate for a series step.
    pub fn check(&self, step: Step) -> Result<CheckedForecastParams, ModelError> {
        if self.lead == 0 || self.lead > self.horizon {
            return Err(ModelError::Lead {
                lead: self.lead,
                horizon: self.horizon,
            });
        }
        if !(self.ridge >= 0.0 && self.ridge.is_finite()) {
            return Err(ModelError::Ridge(self.ridge));
        }
        if !(self.eval_fraction > 0.0 && self.eval_fraction < 1.0) {
            return Err(ModelError::EvalFraction(self.eval_fraction));
        }
        if self.folds == 0 {
            return Err(ModelError::Folds(self.folds));
        }
        let spec = self.features.check(step, self.horizon)?;
        Ok(CheckedForecastParams {
            spec,
            lead: self.lead,
            ridge: self.ridge,
            eval_fraction: self.eval_fraction,
            folds: self.folds,
            transform: self.transform,
        })
    }
}

/// Checked forecaster parameters: the only input [`train_forecaster`] accepts.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedForecastParams {
    spec: FeatureSpec,
    lead: usize,
    ridge: f64,
    eval_fraction: f64,
    folds: usize,
    transform: Transform,
}

impl CheckedForecastParams {
    /// The load transform.
    pub fn transform(&self) -> Transform {
        self.transform
    }
    /// The feature spec.
    pub fn spec(&self) -> &FeatureSpec {
        &self.spec
    }
    /// Lead time in steps.
    pub fn lead(&self) -> usize {
        self.lead
    }
    /// Ridge penalty.
    pub fn ridge(&self) -> f64 {
        self.ridge
    }
    /// Walk-forward folds.
    pub fn folds(&self) -> usize {
        self.folds
    }
    /// Share of origins evaluated.
    pub fn eval_fraction(&self) -> f64 {
        self.eval_fraction
    }
}

/// Errors of fitting, evaluating and using a forecaster.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    #[error(transparent)]
    Features(#[from] FeatureError),
    #[error("lead time should be between 1 and the horizon ({horizon}) steps, but is {lead}")]
    Lead { lead: usize, horizon: usize },
    #[error("ridge penalty should be a non-negative number, but is {0}")]
    Ridge(f64),
    #[error("evaluation fraction should be between 0 and 1, but is {0}")]
    EvalFraction(f64),
    #[error("walk-forward folds should be at least 1, but is {0}")]
    Folds(usize),
    #[error("history of {have} steps is too short: features need {warmup} steps of warm-up, the horizon {horizon} steps, and training and evaluation at least {need_more} more; need at least {need} steps (a longer history, fewer/shorter seasons or lags, or a coarser --step)")]
    TooShort {
        have: usize,
        warmup: usize,
        horizon: usize,
        need_more: usize,
        need: usize,
    },
    #[error(
        "the normal equations are singular even with a ridge penalty (is the series constant?)"
    )]
    Singular,
    #[error("the model needs the last {need} steps of '{metric}', but only {have} are given")]
    NotEnoughRecentData {
        metric: String,
        need: usize,
        have: usize,
    },
    #[error("the model was trained at a step of {model}, but the data has a step of {data}")]
    StepMismatch { model: Step, data: Step },
    #[error(
        "the model forecasts '{model}', but the data has no such metric (it has: {available})"
    )]
    MetricMismatch { model: String, available: String },
    #[error("the series '{0}' is zero everywhere: there is nothing to forecast")]
    AllZero(String),
}

/// A naive forecaster the model must beat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Baseline {
    /// `y[t+h] = y[t]`.
    LastValue,
    /// `y[t+h] = y[t+h-P·ceil(h/P)]`: the same time one period (a day, a week) earlier.
    Seasonal {
        period_steps: usize,
        period_secs: i64,
    },
}

impl Baseline {
    /// Name for reports ("last_value", "same_time_yesterday", "same_time_last_week").
    pub fn name(&self) -> String {
        match self {
            Baseline::LastValue => "last_value".to_string(),
            Baseline::Seasonal {
                period_secs: DAY_SECS,
                ..
            } => "same_time_yesterday".to_string(),
            Baseline::Seasonal {
                period_secs: WEEK_SECS,
                ..
            } => "same_time_last_week".to_string(),
            Baseline::Seasonal { period_secs, .. } => format!("same_time_{period_secs}s_ago"),
        }
    }

    /// Forecast of `y[i+h]` made at origin `i`; `None` when it would look
    /// before the start of the data.
    pub fn predict(&self, y: &[f64], i: usize, h: usize) -> Option<f64> {
        match *self {
            Baseline::LastValue => y.get(i).copied(),
            Baseline::Seasonal {
                period_steps: p, ..
            } => {
                let back = p * h.div_ceil(p);
                (i + h).checked_sub(back).map(|j| y[j])
            }
        }
    }

    /// The baselines that make sense at a step: last value, and same time
    /// yesterday / last week where those periods are whole numbers of steps.
    pub fn standard_set(step: Step) -> Vec<Baseline> {
        let mut v = vec![Baseline::LastValue];
        for period_secs in [DAY_SECS, WEEK_SECS] {
            if let Some(p) = step.steps_exact(period_secs) {
                if p > 1 {
                    v.push(Baseline::Seasonal {
                        period_steps: p,
                        period_secs,
                    });
                }
            }
        }
        v
    }
}

/// A fitted direct multi-step forecaster. Plain data: serializable, and
/// forecasting is a pure function of it and the recent series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecastModel {
    /// The metric (column) the model forecasts.
    pub metric: String,
    /// Features, including step and horizon.
    pub spec: FeatureSpec,
    /// Transform applied to load values before the features.
    pub transform: Transform,
    /// Transformed load values are divided by this before entering the features.
    pub scale: f64,
    /// Coefficients, one row per horizon (`coef[h-1][feature]`), in scaled units.
    pub coef: Vec<Vec<f64>>,
    /// Calibrated intervals per horizon (`intervals[h-1]`), from the
    /// walk-forward errors (see [`crate::core::forecast::conformal`]).
    pub intervals: Vec<Calibration>,
    /// Calibrated quantiles of the peak over the lead window, per lead
    /// (`peak[l-1]`: the highest load over horizons `1..=l`), on top of the
    /// per-horizon noise models of `intervals`. Empty for models of artifact
    /// format 1.
    pub peak: Vec<PeakCalibration>,
    /// Walk-forward MAE per horizon: the yardstick for drift detection.
    pub eval_mae: Vec<f64>,
    /// The event calendar the model was trained with (its features need it).
    pub calendar: Calendar,
}

/// A forecast: plain data. Point values and quantiles per horizon step, and
/// quantiles of the peak over every lead window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// Start of the origin bucket (the last known step).
    pub origin: i64,
    /// Step between horizons.
    pub step: Step,
    /// Point forecast for horizons 1..=H.
    pub points: Vec<f64>,
    /// Quantile levels of `quantiles`.
    pub levels: Vec<f64>,
    /// `quantiles[h-1][j]`: forecast at level `levels[j]`; never below zero.
    pub quantiles: Vec<Vec<f64>>,
    /// Calibrated quantiles of the peak over the lead window (see
    /// [`Forecast::peak_quantile`]); `None` for forecasts of models without a
    /// peak calibration (artifact format 1) and for hand-made forecasts.
    #[serde(default)]
    pub peak: Option<PeakQuantiles>,
}

/// Quantiles of the highest load over horizons `1..=l`, for every lead `l`
/// up to the forecast's horizon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeakQuantiles {
    /// Quantile levels of `values`, increasing.
    pub levels: Vec<f64>,
    /// `values[l-1][j]`: the quantile at `levels[j]` of `max(y[t+1..=t+l])`,
    /// in load units, never below zero, non-decreasing in `j`.
    pub values: Vec<Vec<f64>>,
}

impl Forecast {
    /// Number of horizon steps.
    pub fn horizon(&self) -> usize {
        self.points.len()
    }
    /// Forecast at horizon `h` (1-based) and quantile `q`, interpolated
    /// linearly between stored levels and clamped to the outermost ones.
    pub fn quantile(&self, h: usize, q: f64) -> f64 {
        interpolate_level(&self.levels, &self.quantiles[h - 1], q)
    }

    /// The `q`-quantile of the **peak demand over the lead window**: the
    /// highest load over horizons `1..=lead` (from the step after the
    /// origin to `origin + lead` steps), in load units, never below zero.
    ///
    /// This is what a planner that must cover the highest demand until new
    /// capacity is ready should size for: provisioning `peak_quantile(lead,
    /// 0.9)` leaves the whole window covered about 90% of the time, while the
    /// highest of the per-horizon `quantile(h, 0.9)` covers it less often
    /// (each horizon can be exceeded at a different step).
    ///
    /// How it is calibrated (see [`crate::core::forecast::conformal`]): from
    /// the walk-forward evaluation's out-of-sample errors of the peak (the
    /// highest actual over the window against the highest point forecast
    /// over it, in model space, i.e. as a log ratio for the default
    /// `ln(1 + load)` transform), normalised by a noise model with a Poisson
    /// term (wider at low counts), per bin of forecast level, weighted
    /// towards recent errors, as weighted split-conformal quantiles. The
    /// training report and the model card give the coverage this achieved
    /// out of sample (each walk-forward fold calibrated on earlier folds
    /// only).
    ///
    /// `q` is interpolated linearly between the stored levels (0.01 to
    /// 0.995) and clamped to the outermost ones. The result is
    /// non-decreasing in `q` and in `lead`.
    ///
    /// A forecast made `k` steps ago covers (now, now + lead] with
    /// `peak_quantile(k + lead, q)`, a window that also holds the `k` steps
    /// already past, so it is not lower.
    ///
    /// `None` when `lead` is 0 or beyond the horizon, or when the forecast
    /// has no peak calibration (models of artifact format 1, hand-made
    /// forecasts): fall back to the highest per-horizon quantile then.
    pub fn peak_quantile(&self, lead: usize, q: f64) -> Option<f64> {
        let p = self.peak.as_ref()?;
        if lead == 0 || lead > p.values.len() {
            return None;
        }
        let v = interpolate_level(&p.levels, &p.values[lead - 1], q);
        v.is_finite().then_some(v)
    }
}

/// Interpolate a value at level `q` from values at sorted `levels`.
/// The levels of [`LEVELS`] that [`interpolate_level`] reads for `q`: the
/// two around it, or the outermost one when `q` is beyond it. Interpolating
/// at `q` over just these gives exactly the number it gives over all.
pub fn levels_around(q: f64) -> &'static [f64] {
    if q <= LEVELS[0] {
        return &LEVELS[..1];
    }
    match LEVELS.iter().position(|l| q <= *l) {
        Some(j) => &LEVELS[j - 1..=j],
        None => &LEVELS[LEVELS.len() - 1..],
    }
}

pub fn interpolate_level(levels: &[f64], values: &[f64], q: f64) -> f64 {
    if q <= levels[0] {
        return values[0];
    }
    for j in 1..levels.len() {
        if q <= levels[j] {
            let f = (q - levels[j - 1]) / (levels[j] - levels[j - 1]);
            return values[j - 1] + f * (values[j] - values[j - 1]);
        }
    }
    values[values.len() - 1]
}

impl ForecastModel {
    /// Forecast horizon in steps.
    pub fn horizon(&self) -> usize {
        self.spec.horizon()
    }
    /// Steps of recent data [`ForecastModel::forecast`] needs.
    pub fn required_history(&self) -> usize {
        self.spec.warmup() + 1
    }

    /// Forecast from the end of `series` (its last step is the origin).
    pub fn forecast(&self, series: &LoadSeries) -> Result<Forecast, ModelError> {
        if series.step() != self.spec.step() {
            return Err(ModelError::StepMismatch {
                model: self.spec.step(),
                data: series.step(),
            });
        }
        let y = series
            .column(&self.metric)
            .map_err(|_| ModelError::MetricMismatch {
                model: self.metric.clone(),
                available: series.names().join(", "),
            })?;
        let need = self.required_history();
        if y.len() < need {
            return Err(ModelError::NotEnoughRecentData {
                metric: self.metric.clone(),
                need,
                have: y.len(),
            });
        }
        let ty: Vec<f64> = y[y.len() - need..]
            .iter()
            .map(|v| self.transform.forward(*v))
            .collect();
        let start = series.time_at(y.len() - need);
        let b = FeatureBuilder::new(&self.spec, &ty, start, self.scale, Some(&self.calendar));
        Ok(self.forecast_at(&b, need - 1, series.time_at(y.len() - 1)))
    }

    /// Forecast at origin `i` of a builder prepared over *transformed* values
    /// (backtests call this for every step; `origin_time` is the start of bucket `i`).
    pub fn forecast_at(&self, b: &FeatureBuilder<'_>, i: usize, origin_time: i64) -> Forecast {
        self.forecast_at_with(b, i, origin_time, &LEVELS, true)
    }

    /// As [`ForecastModel::forecast_at`], with quantiles at `levels` only (a
    /// subset of [`LEVELS`], increasing) and without the lead-window peak
    /// quantiles (`peak: None`): for past origins, whose points and one
    /// quantile per horizon are all the drift and calibration signals read.
    /// Each quantile is the value [`ForecastModel::forecast_at`] gives at its
    /// level; [`Forecast::quantile`] gives the same number as there for any
    /// `q` that [`levels_around`]`(q)` returned the levels for.
    pub fn horizons_at(
        &self,
        b: &FeatureBuilder<'_>,
        i: usize,
        origin_time: i64,
        levels: &[f64],
    ) -> Forecast {
        self.forecast_at_with(b, i, origin_time, levels, false)
    }

    fn forecast_at_with(
        &self,
        b: &FeatureBuilder<'_>,
        i: usize,
        origin_time: i64,
        levels: &[f64],
        with_peak: bool,
    ) -> Forecast {
        let mut row = vec![0.0; self.spec.width()];
        b.row(i, &mut row);
        let tf = self.transform;
        let model_space: Vec<f64> = self
            .coef
            .iter()
            .map(|c| dot(c, &row) * self.scale)
            .collect();
        let points: Vec<f64> = model_space.iter().map(|p| tf.inverse(*p)).collect();
        let quantiles = horizon_quantiles(tf, &model_space, &self.intervals, levels);
        let peak = (with_peak && !self.peak.is_empty()).then(|| PeakQuantiles {
            levels: CAL_LEVELS.to_vec(),
            values: peak_values(tf, &model_space, &self.intervals, &self.peak),
        });
        Forecast {
            origin: origin_time,
            step: self.spec.step(),
            points,
            levels: levels.to_vec(),
            quantiles,
            peak,
        }
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Results of the walk-forward evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// First and last evaluated origin (bucket starts).
    pub from: i64,
    pub to: i64,
    /// Number of evaluated origins and folds.
    pub origins: usize,
    pub folds: usize,
    /// The lead time in steps: the horizon the quality gate judges.
    pub lead: usize,
    /// Model metrics per horizon (index h-1).
    pub model: Vec<Metrics>,
    /// Baseline metrics per horizon.
    pub baselines: Vec<BaselineEvaluation>,
    /// How often the model's quantiles per horizon held out of sample
    /// (index h-1): the share of actuals at or below the quantile.
    pub coverage: Vec<Coverage>,
    /// The same for the peak over the lead window, per lead (index l-1: the
    /// highest actual over horizons 1..=l against [`Forecast::peak_quantile`]).
    pub peak_coverage: Vec<Coverage>,
}

/// One baseline's walk-forward metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineEvaluation {
    pub name: String,
    pub per_horizon: Vec<Metrics>,
}

impl Evaluation {
    /// The baseline with the lowest MAE at horizon `h` (1-based).
    pub fn best_baseline_at(&self, h: usize) -> Option<&BaselineEvaluation> {
        self.baselines.iter().min_by(|a, b| {
            a.per_horizon[h - 1]
                .mae
                .total_cmp(&b.per_horizon[h - 1].mae)
        })
    }
}

/// The evaluation window as a trace, for plots: per evaluated origin, the
/// actual value at the lead time and the forecast (point and 80% band, NaN
/// in the first fold, which has no earlier errors to calibrate on).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalTrace {
    /// Target times (origin + lead).
    pub times: Vec<i64>,
    pub actual: Vec<f64>,
    pub forecast: Vec<f64>,
    pub lo80: Vec<f64>,
    pub hi80: Vec<f64>,
}

/// A trained forecaster with its evaluation.
#[derive(Debug, Clone)]
pub struct Trained {
    pub model: ForecastModel,
    pub evaluation: Evaluation,
    pub trace: EvalTrace,
    /// Rows the final model was fitted on.
    pub train_rows: usize,
    /// The walk-forward forecasts, for calibration studies.
    pub out_of_sample: OutOfSample,
}

/// The walk-forward (out-of-sample) forecasts of the model, in model space.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutOfSample {
    /// Series index of the first evaluated origin; origins are contiguous.
    pub first: usize,
    /// Fold boundaries as series indices: fold k covers `cuts[k]..cuts[k+1]`.
    pub cuts: Vec<usize>,
    /// Horizon H.
    pub horizon: usize,
    /// `pred[(i - first) * H + h - 1]`: forecast of `ty[i + h]` at origin `i`.
    pub pred: Vec<f64>,
}

/// Progress of a long fit, for a progress bar: (done, total) rows.
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize);

/// Where the walk-forward evaluation sits in a series of `n` steps.
struct Windows {
    /// The last origin whose every target is known (`n - 1 - H`).
    last_origin: usize,
    /// The first evaluated origin and how many are evaluated.
    eval_start: usize,
    eval_len: usize,
    /// Fold cut points: fold k covers origins `[cuts[k], cuts[k+1])`.
    cuts: Vec<usize>,
}

impl Windows {
    /// The windows, or why the series is too short for the features, a
    /// minimal training set and a minimal evaluation.
    fn of(n: usize, params: &CheckedForecastParams) -> Result<Windows, ModelError> {
        let spec = &params.spec;
        let (h_max, warm, p) = (spec.horizon(), spec.warmup(), spec.width());
        // Origins with every target known: warm ..= n-1-H.
        let min_train = (4 * p).max(50);
        let min_eval = (10 * params.folds).max(20);
        let need = warm + h_max + min_train + min_eval + h_max;
        let too_short = |need| ModelError::TooShort {
            have: n,
            warmup: warm,
            horizon: h_max,
            need_more: min_train + min_eval,
            need,
        };
        if n < need {
            return Err(too_short(need));
        }
        let last_origin = n - 1 - h_max;
        let origins = last_origin + 1 - warm;
        let eval_len = ((origins as f64 * params.eval_fraction) as usize).max(min_eval);
        let eval_start = last_origin + 1 - eval_len;
        if eval_start < warm + min_train + h_max {
            return Err(too_short(need + (warm + min_train + h_max - eval_start)));
        }
        let folds = params.folds;
        let cuts = (0..=folds)
            .map(|k| eval_start + k * eval_len / folds)
            .collect();
        Ok(Windows {
            last_origin,
            eval_start,
            eval_len,
            cuts,
        })
    }
}

/// One pass over the rows: the normal equations of every origin, and a
/// snapshot at each fold's cut (a row trains fold k only if all its targets,
/// up to `i + H`, are known at cut k).
fn accumulate(
    builder: &FeatureBuilder<'_>,
    ty: &[f64],
    scale: f64,
    spec: &FeatureSpec,
    w: &Windows,
    progress: Progress<'_>,
) -> (NormalEquations, Vec<NormalEquations>) {
    let (h_max, warm, p) = (spec.horizon(), spec.warmup(), spec.width());
    let folds = w.cuts.len() - 1;
    let mut ne = NormalEquations::new(p, h_max);
    let mut snapshots: Vec<NormalEquations> = Vec::with_capacity(folds);
    const BLOCK: usize = 1024;
    let mut xb = Array2::<f64>::zeros((BLOCK, p));
    let mut yb = Array2::<f64>::zeros((BLOCK, h_max));
    let mut filled = 0;
    let inv = 1.0 / scale;
    let total = w.last_origin + 1 - warm;
    for i in warm..=w.last_origin {
        while snapshots.len() < folds && i + h_max > w.cuts[snapshots.len()] {
            ne.add_block(xb.slice(s![..filled, ..]), yb.slice(s![..filled, ..]));
            filled = 0;
            snapshots.push(ne.clone());
        }
        builder.row(
            i,
            xb.row_mut(filled).as_slice_mut().expect("standard layout"),
        );
        for h in 1..=h_max {
            yb[[filled, h - 1]] = ty[i + h] * inv;
        }
        filled += 1;
        if filled == BLOCK {
            ne.add_block(xb.view(), yb.view());
            filled = 0;
            progress(i + 1 - warm, total);
        }
    }
    ne.add_block(xb.slice(s![..filled, ..]), yb.slice(s![..filled, ..]));
    while snapshots.len() < folds {
        snapshots.push(ne.clone());
    }
    progress(total, total);
    (ne, snapshots)
}

/// What the walk-forward evaluation accumulates: per horizon, the model's and
/// each baseline's point metrics, the baselines' residuals (for their
/// intervals), the model's out-of-sample forecasts (for its calibration), and
/// the lead-time trace for plots.
struct WalkForward {
    model_acc: Vec<MetricsAcc>,
    base_acc: Vec<Vec<MetricsAcc>>,
    base_res: Vec<Vec<Vec<f64>>>,
    trace: EvalTrace,
    /// The model's forecasts in model space, origin-major (`H` per origin).
    oos_pred: Vec<f64>,
}

impl WalkForward {
    fn new(h_max: usize, baselines: usize) -> Self {
        WalkForward {
            model_acc: vec![MetricsAcc::default(); h_max],
            base_acc: vec![vec![MetricsAcc::default(); h_max]; baselines],
            base_res: vec![vec![Vec::new(); h_max]; baselines],
            trace: EvalTrace::default(),
            oos_pred: Vec::new(),
        }
    }
}

/// Everything a fold's forecasts are made from.
struct FoldInputs<'a> {
    builder: &'a FeatureBuilder<'a>,
    y: &'a [f64],
    scale: f64,
    transform: Transform,
    lead: usize,
    baselines: &'a [Baseline],
    series: &'a LoadSeries,
}

/// Refit on `snapshot`, forecast the fold's origins with the model and the
/// baselines, score the points and the baselines' intervals (from the
/// residuals of earlier folds only), and keep the model's forecasts for its
/// calibration ([`score_intervals`]).
fn evaluate_fold(
    f: &FoldInputs<'_>,
    snapshot: &NormalEquations,
    ridge: f64,
    origins: std::ops::Range<usize>,
    first: bool,
    wf: &mut WalkForward,
) -> Result<(), ModelError> {
    let coef = snapshot.solve(ridge)?;
    let h_max = wf.model_acc.len();
    let tf = f.transform;
    let base_q: Option<Vec<Vec<Vec<f64>>>> = (!first).then(|| {
        wf.base_res
            .iter()
            .map(|per_h| per_h.iter().map(|r| fold_quantiles(r)).collect())
            .collect()
    });
    let mut new_base_res: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); h_max]; f.baselines.len()];
    let mut row = vec![0.0; coef.ncols()];
    for i in origins {
        f.builder.row(i, &mut row);
        for h in 1..=h_max {
            let actual = f.y[i + h];
            let pred_t = dot(coef.row(h - 1).as_slice().expect("contiguous"), &row) * f.scale;
            let pred = tf.inverse(pred_t);
            wf.oos_pred.push(pred_t);
            wf.model_acc[h - 1].add_point(actual, pred);
            if h == f.lead {
                wf.trace.times.push(f.series.time_at(i + h));
                wf.trace.actual.push(actual);
                wf.trace.forecast.push(pred);
            }
            for (bi, b) in f.baselines.iter().enumerate() {
                let bp = b
                    .predict(f.y, i, h)
                    .expect("baseline filtered to have history");
                wf.base_acc[bi][h - 1].add_point(actual, bp);
                new_base_res[bi][h - 1].push(actual - bp);
                if let Some(q) = &base_q {
                    let mut qs = [0.0; LEVELS.len()];
                    for (o, r) in qs.iter_mut().zip(&q[bi][h - 1]) {
                        *o = (bp + r).max(0.0);
                    }
                    wf.base_acc[bi][h - 1].add_quantiles(actual, &qs);
                }
            }
        }
    }
    for (per_baseline, new) in wf.base_res.iter_mut().zip(&mut new_base_res) {
        for (all, new_h) in per_baseline.iter_mut().zip(new) {
            all.append(new_h);
        }
    }
    Ok(())
}

/// The recency half-life of calibration errors, in origins: a day of steps,
/// and at least 1,000 origins, so that coarse steps keep enough errors.
fn calibration_half_life(step: Step) -> f64 {
    step.steps_ceil(DAY_SECS).max(1_000) as f64
}

/// Calibration settings for a series: count data (every value a
/// non-negative integer) has at least Poisson noise.
fn calibration_params(y: &[f64], step: Step) -> CalibrationParams {
    let counts = y.iter().all(|v| *v >= 0.0 && v.fract() == 0.0);
    CalibrationParams {
        half_life: calibration_half_life(step),
        min_dispersion: if counts { 1.0 } else { 0.0 },
    }
}

/// The model's out-of-sample forecasts and what happened, and how they are
/// calibrated: the calibration of fold `k` uses only origins whose targets
/// were known at fold `k`'s first origin.
struct CalibrationData<'a> {
    /// Transformed actuals of the whole series.
    ty: &'a [f64],
    oos: &'a OutOfSample,
    transform: Transform,
    params: CalibrationParams,
}

impl CalibrationData<'_> {
    /// The model-space forecasts at the origin `i`.
    fn preds(&self, i: usize) -> &[f64] {
        let h = self.oos.horizon;
        let o = i - self.oos.first;
        &self.oos.pred[o * h..(o + 1) * h]
    }

    /// Calibrations per horizon and per lead-window peak, from the origins
    /// `first..` whose targets are known at origin `end` (i.e. `i + h <= end`),
    /// weighted by their age at `end`: those of the last six half-lives, and
    /// of more than [`MAX_SAMPLES`] of them an evenly spaced subset ending
    /// at the newest.
    fn calibrate(&self, end: usize) -> (Vec<Calibration>, Vec<PeakCalibration>) {
        let h_max = self.oos.horizon;
        let first = self.oos.first;
        let evaluated = first + self.oos.pred.len() / h_max;
        // Errors older than six half-lives weigh less than 1/64 each and
        // under 2% together.
        let window = if self.params.half_life.is_finite() {
            (6.0 * self.params.half_life) as usize
        } else {
            usize::MAX
        };
        let all = first.max(end.saturating_sub(window))..end.min(evaluated);
        let stride = all.len().div_ceil(MAX_SAMPLES).max(1);
        let origins: Vec<usize> = all.rev().step_by(stride).collect();
        let mut per_h: Vec<Vec<Sample>> = vec![Vec::new(); h_max];
        for &i in &origins {
            let p = self.preds(i);
            for h in 1..=h_max.min(end - i) {
                per_h[h - 1].push(Sample {
                    pred: p[h - 1],
                    actual: self.ty[i + h],
                    age: end - i,
                });
            }
        }
        let intervals: Vec<Calibration> = per_h
            .iter()
            .map(|v| {
                Calibration::fit(self.transform, v, &self.params).unwrap_or_else(|| {
                    Calibration::from_residual_quantiles(&LEVELS, &[0.0; LEVELS.len()])
                })
            })
            .collect();
        let paths: Vec<PathSample<'_>> = origins
            .iter()
            .map(|&i| PathSample {
                pred: self.preds(i),
                actual: &self.ty[i + 1..=i + h_max.min(end - i)],
                age: end - i,
            })
            .collect();
        let peak = PeakCalibration::fit_all(self.transform, &intervals, &paths, &self.params);
        (intervals, peak)
    }
}

/// Quantiles at [`LEVELS`] per horizon, in load units.
fn horizon_quantiles(
    tf: Transform,
    model_space: &[f64],
    cals: &[Calibration],
    levels: &[f64],
) -> Vec<Vec<f64>> {
    model_space
        .iter()
        .zip(cals)
        .map(|(p, c)| c.quantiles(tf, *p, levels))
        .collect()
}

/// Score the model's quantiles out of sample: fold `k >= 1` is forecast with
/// the calibrations fitted on earlier folds ([`CalibrationData::calibrate`]
/// at its first origin), exactly as [`ForecastModel::forecast_at`] makes
/// them. Adds interval metrics (80% coverage, pinball) to `model_acc`, fills
/// the trace's 80% band, and returns the coverage per horizon and per
/// lead-window peak.
fn score_intervals(
    cd: &CalibrationData<'_>,
    y: &[f64],
    lead: usize,
    model_acc: &mut [MetricsAcc],
    trace: &mut EvalTrace,
) -> (Vec<Coverage>, Vec<Coverage>) {
    let oos = cd.oos;
    let h_max = oos.horizon;
    let tf = cd.transform;
    let mut cov_h = vec![CoverageAcc::default(); h_max];
    let mut cov_l = vec![CoverageAcc::default(); h_max];
    trace.lo80 = vec![f64::NAN; trace.times.len()];
    trace.hi80 = vec![f64::NAN; trace.times.len()];
    let (lo, hi) = CENTRAL_80;
    for k in 1..oos.cuts.len() - 1 {
        let (cals_h, cals_l) = cd.calibrate(oos.cuts[k]);
        // The peak's scores at the reported levels only (all of them are
        // calibration levels, where `Forecast::peak_quantile` interpolates
        // nothing): the same values, a third of the work.
        let peak_scores: Vec<Vec<f64>> = cals_l
            .iter()
            .map(|c| {
                COVERAGE_LEVELS
                    .iter()
                    .map(|q| interpolate_level(&c.levels, &c.scores, *q))
                    .collect()
            })
            .collect();
        let peak_scores: Vec<&[f64]> = peak_scores.iter().map(Vec::as_slice).collect();
        for i in oos.cuts[k]..oos.cuts[k + 1] {
            let p = cd.preds(i);
            let qh = horizon_quantiles(tf, p, &cals_h, &LEVELS);
            let ql = peak_values_at(tf, p, &cals_h, &peak_scores);
            let mut peak = f64::NEG_INFINITY;
            for h in 1..=h_max {
                let actual = y[i + h];
                peak = peak.max(actual);
                model_acc[h - 1].add_quantiles(actual, &qh[h - 1]);
                cov_h[h - 1].add(actual, |q| interpolate_level(&LEVELS, &qh[h - 1], q));
                cov_l[h - 1].add(peak, |q| interpolate_level(&COVERAGE_LEVELS, &ql[h - 1], q));
                if h == lead {
                    let t = i - oos.first;
                    trace.lo80[t] = qh[h - 1][lo];
                    trace.hi80[t] = qh[h - 1][hi];
                }
            }
        }
    }
    (
        cov_h.iter().map(CoverageAcc::finish).collect(),
        cov_l.iter().map(CoverageAcc::finish).collect(),
    )
}

/// Fit on `metric` of `series`, evaluate walk-forward against the baselines,
/// calibrate the intervals and the lead-window peak on the walk-forward
/// errors, and refit on everything for the published model.
pub fn train_forecaster(
    params: &CheckedForecastParams,
    series: &LoadSeries,
    metric: &str,
    calendar: Option<&Calendar>,
    progress: Progress<'_>,
) -> Result<Trained, ModelError> {
    let spec = &params.spec;
    if series.step() != spec.step() {
        return Err(ModelError::StepMismatch {
            model: spec.step(),
            data: series.step(),
        });
    }
    let y = series
        .column(metric)
        .map_err(|_| ModelError::MetricMismatch {
            model: metric.to_string(),
            available: series.names().join(", "),
        })?;
    let n = y.len();
    let h_max = spec.horizon();
    let w = Windows::of(n, params)?;
    let tf = params.transform;
    let ty: Vec<f64> = y.iter().map(|v| tf.forward(*v)).collect();
    let mean = ty.iter().sum::<f64>() / n as f64;
    if mean <= 0.0 {
        return Err(ModelError::AllZero(metric.to_string()));
    }
    let scale = mean;
    let empty = Calendar::default();
    let calendar = calendar.unwrap_or(&empty);
    let builder = FeatureBuilder::new(spec, &ty, series.start(), scale, Some(calendar));
    let (ne, snapshots) = accumulate(&builder, &ty, scale, spec, &w, progress);

    // Walk forward: refit per fold, forecast its origins with model and baselines.
    let baselines: Vec<Baseline> = Baseline::standard_set(spec.step())
        .into_iter()
        .filter(|b| b.predict(y, w.eval_start, 1).is_some())
        .collect();
    let inputs = FoldInputs {
        builder: &builder,
        y,
        scale,
        transform: tf,
        lead: params.lead,
        baselines: &baselines,
        series,
    };
    let mut wf = WalkForward::new(h_max, baselines.len());
    for (k, snapshot) in snapshots.iter().enumerate() {
        let origins = w.cuts[k]..w.cuts[k + 1];
        evaluate_fold(&inputs, snapshot, params.ridge, origins, k == 0, &mut wf)?;
    }
    let oos = OutOfSample {
        first: w.eval_start,
        cuts: w.cuts.clone(),
        horizon: h_max,
        pred: std::mem::take(&mut wf.oos_pred),
    };
    let cd = CalibrationData {
        ty: &ty,
        oos: &oos,
        transform: tf,
        params: calibration_params(y, spec.step()),
    };
    let (coverage, peak_coverage) =
        score_intervals(&cd, y, params.lead, &mut wf.model_acc, &mut wf.trace);
    // The published model's calibration: every evaluated origin.
    let (intervals, peak) = cd.calibrate(w.last_origin + h_max + 1);

    let model_metrics: Vec<Metrics> = wf.model_acc.iter().map(MetricsAcc::finish).collect();
    let evaluation = Evaluation {
        from: series.time_at(w.eval_start),
        to: series.time_at(w.last_origin),
        origins: w.eval_len,
        folds: params.folds,
        lead: params.lead,
        model: model_metrics.clone(),
        baselines: baselines
            .iter()
            .zip(&wf.base_acc)
            .map(|(b, acc)| BaselineEvaluation {
                name: b.name(),
                per_horizon: acc.iter().map(MetricsAcc::finish).collect(),
            })
            .collect(),
        coverage,
        peak_coverage,
    };

    let coef = ne.solve(params.ridge)?;
    let model = ForecastModel {
        metric: metric.to_string(),
        spec: spec.clone(),
        transform: tf,
        scale,
        coef: coef.rows().into_iter().map(|r| r.to_vec()).collect(),
        intervals,
        peak,
        eval_mae: model_metrics.iter().map(|m| m.mae).collect(),
        calendar: calendar.clone(),
    };
    Ok(Trained {
        model,
        evaluation,
        trace: wf.trace,
        train_rows: ne.n,
        out_of_sample: oos,
    })
}

/// Residual quantiles for a baseline's next fold's intervals: from at most
/// `FOLD_SAMPLE` residuals, evenly spaced over the earlier folds (the
/// quantiles of 16,384 draws are within a fraction of a percentile of the
/// full set's, and a year of one-minute data has close to a million).
fn fold_quantiles(residuals: &[f64]) -> Vec<f64> {
    const FOLD_SAMPLE: usize = 16_384;
    if residuals.len() <= FOLD_SAMPLE {
        return quantiles_at_levels(residuals);
    }
    let stride = residuals.len().div_ceil(FOLD_SAMPLE);
    let sample: Vec<f64> = residuals.iter().step_by(stride).copied().collect();
    quantiles_at_levels(&sample)
}

/// Accumulated normal equations `X'X` and `X'Y` over the rows seen so far.
#[derive(Debug, Clone)]
struct NormalEquations {
    xtx: Array2<f64>,
    xty: Array2<f64>,
    n: usize,
}

impl NormalEquations {
    fn new(p: usize, h: usize) -> Self {
        NormalEquations {
            xtx: Array2::zeros((p, p)),
            xty: Array2::zeros((p, h)),
            n: 0,
        }
    }

    fn add_block(&mut self, x: ndarray::ArrayView2<'_, f64>, y: ndarray::ArrayView2<'_, f64>) {
        if x.nrows() == 0 {
            return;
        }
        general_mat_mul(1.0, &x.t(), &x, 1.0, &mut self.xtx);
        general_mat_mul(1.0, &x.t(), &y, 1.0, &mut self.xty);
        self.n += x.nrows();
    }

    /// Coefficients, one row per horizon. Column 0 must be the intercept,
    /// which is not penalised; the penalty on column j is `ridge · n · var_j`,
    /// i.e. ridge on standardised features, plus a tiny jitter so constant
    /// columns do not make the system singular.
    fn solve(&self, ridge: f64) -> Result<Array2<f64>, ModelError> {
        let n = self.n.max(1) as f64;
        let mut a = self.xtx.clone();
        let p = a.nrows();
        for j in 1..p {
            let mean = self.xtx[[0, j]] / n;
            let var = (self.xtx[[j, j]] / n - mean * mean).max(0.0);
            a[[j, j]] += n * (ridge * var + 1e-10);
        }
        let mut b = self.xty.clone();
        a.solvec_inplace(&mut b).map_err(|_| ModelError::Singular)?;
        if b.iter().any(|v| !v.is_finite()) {
            return Err(ModelError::Singular);
        }
        Ok(b.t().as_standard_layout().into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::forecast::features::Season;
    use linfa::prelude::*;
    use linfa_linear::LinearRegression;
    use ndarray::Array1;

    fn step(s: &str) -> Step {
        s.parse().unwrap()
    }

    /// Deterministic pseudo-noise in [-1, 1].
    fn noise(i: usize) -> f64 {
        let x = (i as u64)
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((x >> 33) as f64 / (1u64 << 31) as f64) - 1.0
    }

    /// Hourly load with a daily shape, a slow trend and noise.
    fn hourly_load(n: usize) -> LoadSeries {
        let y: Vec<f64> = (0..n)
            .map(|i| {
                let day = (i % 24) as f64 / 24.0 * std::f64::consts::TAU;
                100.0 + 0.05 * i as f64 + 40.0 * day.sin() + 5.0 * noise(i)
            })
            .collect();
        LoadSeries::new(0, step("1h"), vec!["load".into()], vec![y]).unwrap()
    }

    fn small_params(lead: usize) -> ForecastParams {
        ForecastParams {
            features: FeatureParams {
                lags: 3,
                seasons: vec![Season {
                    period_secs: DAY_SECS,
                    fourier_order: 2,
                    seasonal_lags: true,
                }],
                rolling_secs: vec![6 * 3_600],
                events: false,
            },
            horizon: lead,
            lead,
            ridge: 0.0,
            eval_fraction: 0.2,
            folds: 4,
            transform: Transform::None,
        }
    }

    #[test]
    fn least_squares_matches_linfa_linear_on_the_same_rows() {
        let series = hourly_load(24 * 40);
        let params = small_params(3).check(step("1h")).unwrap();
        let trained = train_forecaster(&params, &series, "load", None, &mut |_, _| {}).unwrap();
        let spec = params.spec();
        let y = series.column("load").unwrap();
        let b = FeatureBuilder::new(spec, y, 0, trained.model.scale, None);
        let (warm, last) = (spec.warmup(), y.len() - 1 - 3);
        let mut x = Array2::<f64>::zeros((last + 1 - warm, spec.width() - 1));
        let mut row = vec![0.0; spec.width()];
        for i in warm..=last {
            b.row(i, &mut row);
            x.row_mut(i - warm).assign(&Array1::from(row[1..].to_vec()));
        }
        for h in 1..=3 {
            let t: Array1<f64> = (warm..=last)
                .map(|i| y[i + h] / trained.model.scale)
                .collect();
            let fit = LinearRegression::new()
                .fit(&Dataset::new(x.clone(), t))
                .unwrap();
            // Lags, rolling means and seasonal windows are nearly collinear, so
            // compare fitted values rather than individual coefficients.
            let theirs = fit.predict(&x);
            let ours = &trained.model.coef[h - 1];
            for (r, want) in x.rows().into_iter().zip(theirs.iter()) {
                let got = ours[0] + r.iter().zip(&ours[1..]).map(|(a, b)| a * b).sum::<f64>();
                assert!(
                    (got - want).abs() < 1e-6 * want.abs().max(1.0),
                    "h={h}: {got} vs {want}"
                );
            }
        }
    }

    /// Pseudo-random noise in [-1, 1] without structure a lag can learn
    /// (splitmix64 of the index).
    fn hash_noise(i: usize) -> f64 {
        let mut z = (i as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }

    /// Hourly counts: a daily shape around `level` with Poisson-like noise.
    fn hourly_counts(n: usize, level: f64) -> LoadSeries {
        let y: Vec<f64> = (0..n)
            .map(|i| {
                let day = (i % 24) as f64 / 24.0 * std::f64::consts::TAU;
                let mu = level * (1.0 + 0.5 * day.sin());
                (mu + mu.sqrt() * 1.7 * hash_noise(i)).round().max(0.0)
            })
            .collect();
        LoadSeries::new(0, step("1h"), vec!["load".into()], vec![y]).unwrap()
    }

    fn log_params(lead: usize, horizon: usize) -> ForecastParams {
        ForecastParams {
            horizon,
            transform: Transform::Log1p,
            ..small_params(lead)
        }
    }

    #[test]
    fn a_past_origin_forecast_at_two_levels_gives_the_same_quantile_to_the_bit() {
        let series = hourly_counts(24 * 60, 40.0);
        let params = log_params(3, 5).check(step("1h")).unwrap();
        let model = train_forecaster(&params, &series, "load", None, &mut |_, _| {})
            .unwrap()
            .model;
        let y: Vec<f64> = series
            .column("load")
            .unwrap()
            .iter()
            .map(|v| model.transform.forward(*v))
            .collect();
        let b = FeatureBuilder::new(
            &model.spec,
            &y,
            series.start(),
            model.scale,
            Some(&model.calendar),
        );
        let qs = [
            0.001, 0.01, 0.03, 0.25, 0.3, 0.5, 0.77, 0.9, 0.93, 0.99, 0.999,
        ];
        for i in [24 * 30, 24 * 45 + 5, 24 * 60 - 1] {
            let t = series.time_at(i);
            let full = model.forecast_at(&b, i, t);
            for q in qs {
                let thin = model.horizons_at(&b, i, t, levels_around(q));
                assert!(thin.peak.is_none());
                assert!(thin.levels.len() <= 2);
                assert_eq!(thin.points, full.points);
                for h in 1..=full.horizon() {
                    assert_eq!(
                        thin.quantile(h, q).to_bits(),
                        full.quantile(h, q).to_bits(),
                        "q {q} h {h}"
                    );
                }
            }
        }
    }

    #[test]
    fn peak_quantiles_are_monotone_in_the_level_and_the_lead_and_above_the_horizons() {
        let series = hourly_counts(24 * 60, 40.0);
        let params = log_params(3, 5).check(step("1h")).unwrap();
        let model = train_forecaster(&params, &series, "load", None, &mut |_, _| {})
            .unwrap()
            .model;
        assert_eq!(model.peak.len(), 5);
        for end in [24 * 50, 24 * 55 + 7, 24 * 60] {
            let f = model.forecast(&series.head(end)).unwrap();
            let qs = [
                0.01, 0.05, 0.1, 0.3, 0.5, 0.77, 0.8, 0.9, 0.95, 0.97, 0.99, 0.995,
            ];
            for lead in 1..=5 {
                let v: Vec<f64> = qs
                    .iter()
                    .map(|q| f.peak_quantile(lead, *q).unwrap())
                    .collect();
                assert!(v.windows(2).all(|w| w[0] <= w[1]), "lead {lead}: {v:?}");
                assert!(v[0] >= 0.0);
                for (q, pv) in qs.iter().zip(&v) {
                    if lead > 1 {
                        assert!(*pv >= f.peak_quantile(lead - 1, *q).unwrap());
                    }
                }
            }
            // The peak's median is at least the highest point forecast's
            // neighbourhood, and the p90 of the peak over the window is at
            // least the p90 at any one horizon of it, less the bin noise.
            let top = f.points.iter().fold(0.0f64, |a, b| a.max(*b));
            assert!(f.peak_quantile(5, 0.9).unwrap() > top, "{f:?}");
            for h in 1..=5 {
                assert!(f.quantile(h, 0.1) <= f.quantile(h, 0.5));
                assert!(f.quantile(h, 0.5) <= f.quantile(h, 0.9));
            }
            assert_eq!(f.peak_quantile(0, 0.9), None);
            assert_eq!(f.peak_quantile(6, 0.9), None);
        }
    }

    #[test]
    fn a_forecast_without_a_peak_calibration_has_no_peak_quantile() {
        let series = hourly_counts(24 * 40, 40.0);
        let params = log_params(2, 2).check(step("1h")).unwrap();
        let mut model = train_forecaster(&params, &series, "load", None, &mut |_, _| {})
            .unwrap()
            .model;
        model.peak.clear();
        let f = model.forecast(&series).unwrap();
        assert_eq!(f.peak, None);
        assert_eq!(f.peak_quantile(2, 0.9), None);
    }

    #[test]
    fn a_fold_is_calibrated_only_on_errors_known_at_its_first_origin() {
        // 20 origins with horizon 3; errors of origins >= 10 are huge.
        let h_max = 3;
        let n = 40;
        let ty: Vec<f64> = (0..n).map(|i| if i >= 12 { 100.0 } else { 1.0 }).collect();
        let oos = OutOfSample {
            first: 0,
            cuts: vec![0, 10, 20],
            horizon: h_max,
            pred: vec![1.0; 20 * h_max],
        };
        let cd = CalibrationData {
            ty: &ty,
            oos: &oos,
            transform: Transform::None,
            params: CalibrationParams {
                half_life: f64::INFINITY,
                min_dispersion: 0.0,
            },
        };
        // At origin 10 the targets up to y[10] are known: origin i counts
        // for horizon h only if i + h <= 10.
        let (per_h, peak) = cd.calibrate(10);
        let counts: Vec<usize> = per_h.iter().map(|c| c.samples).collect();
        assert_eq!(counts, vec![10, 9, 8]);
        assert_eq!(
            peak.iter().map(|c| c.samples).collect::<Vec<_>>(),
            vec![10, 9, 8]
        );
        // None of them saw the errors of 99 that start at y[12].
        for c in &per_h {
            assert!(c.quantile_t(Transform::None, 1.0, 0.995) < 2.0, "{c:?}");
        }
        // At origin 12, horizon 1 includes the error at y[12]... not yet
        // (origin 11 forecasts y[12], known at 12): 12 samples, one huge.
        let (per_h, _) = cd.calibrate(12);
        assert_eq!(per_h[0].samples, 12);
        assert!(per_h[0].quantile_t(Transform::None, 1.0, 0.995) > 50.0);
    }

    #[test]
    fn coverage_is_scored_out_of_sample_so_a_change_of_regime_shows() {
        // Quiet noise, then ten times the noise from the start of the last
        // walk-forward fold: calibrated on earlier folds only, the last
        // fold's quantiles are far too narrow and the coverage says so.
        let n = 24 * 60;
        let params = small_params(2).check(step("1h")).unwrap();
        let w = Windows::of(n, &params).unwrap();
        let jump = w.cuts[3];
        let y: Vec<f64> = (0..n)
            .map(|i| {
                let day = (i % 24) as f64 / 24.0 * std::f64::consts::TAU;
                let amp = if i > jump { 50.0 } else { 2.0 };
                100.0 + 40.0 * day.sin() + amp * hash_noise(i)
            })
            .collect();
        let series = LoadSeries::new(0, step("1h"), vec!["load".into()], vec![y]).unwrap();
        let t = train_forecaster(&params, &series, "load", None, &mut |_, _| {}).unwrap();
        let cov = &t.evaluation.coverage[1];
        let scored = w.cuts[4] - w.cuts[1];
        assert_eq!(cov.n, scored);
        let p90 = cov.at(0.9).unwrap();
        // Folds 1 and 2 about 90%, fold 3 much less.
        assert!(p90 < 0.8, "p90 coverage {p90}");
        // The published model is calibrated on every fold, the last one
        // included: its upper quantiles are far beyond the quiet noise (±2).
        let f = t.model.forecast(&series).unwrap();
        assert!(f.quantile(2, 0.95) - f.points[1] > 10.0, "{f:?}");
    }

    #[test]
    fn a_daily_pattern_with_trend_is_forecast_better_than_every_baseline() {
        let series = hourly_load(24 * 60);
        let params = small_params(2).check(step("1h")).unwrap();
        let t = train_forecaster(&params, &series, "load", None, &mut |_, _| {}).unwrap();
        let ev = &t.evaluation;
        assert_eq!(
            ev.baselines
                .iter()
                .map(|b| b.name.as_str())
                .collect::<Vec<_>>(),
            ["last_value", "same_time_yesterday", "same_time_last_week"]
        );
        let best = ev.best_baseline_at(2).unwrap().per_horizon[1].mae;
        assert!(
            ev.model[1].mae < 0.8 * best,
            "model {} vs best baseline {}",
            ev.model[1].mae,
            best
        );
        // Noise is uniform in [-5, 5]: mean |e| = 2.5 at best.
        assert!(ev.model[1].mae < 3.5, "{}", ev.model[1].mae);
        let cov = ev.model[1].coverage80;
        assert!((0.65..=0.95).contains(&cov), "coverage {cov}");
        assert_eq!(t.trace.times.len(), ev.origins);
    }

    #[test]
    fn baselines_look_back_to_the_same_time_of_the_period() {
        let y: Vec<f64> = (0..30).map(f64::from).collect();
        let daily = Baseline::Seasonal {
            period_steps: 24,
            period_secs: DAY_SECS,
        };
        assert_eq!(Baseline::LastValue.predict(&y, 26, 3), Some(26.0));
        assert_eq!(daily.predict(&y, 26, 3), Some(5.0));
        assert_eq!(daily.predict(&y, 10, 3), None);
        assert_eq!(daily.name(), "same_time_yesterday");
    }

    #[test]
    fn a_history_too_short_for_warmup_horizon_and_evaluation_is_an_error() {
        let series = hourly_load(60);
        let params = small_params(3).check(step("1h")).unwrap();
        let err = train_forecaster(&params, &series, "load", None, &mut |_, _| {}).unwrap_err();
        assert!(
            matches!(err, ModelError::TooShort { have: 60, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("too short"));
    }

    #[test]
    fn forecasting_checks_step_metric_and_history_length() {
        let series = hourly_load(24 * 30);
        let params = small_params(2).check(step("1h")).unwrap();
        let model = train_forecaster(&params, &series, "load", None, &mut |_, _| {})
            .unwrap()
            .model;
        let f = model.forecast(&series).unwrap();
        assert_eq!(f.horizon(), 2);
        assert!(
            f.quantile(1, 0.1) <= f.quantile(1, 0.5) && f.quantile(1, 0.5) <= f.quantile(1, 0.9)
        );
        let short = series.tail(model.required_history() - 1);
        assert!(matches!(
            model.forecast(&short),
            Err(ModelError::NotEnoughRecentData { .. })
        ));
        let other =
            LoadSeries::new(0, step("30m"), vec!["load".into()], vec![vec![1.0; 2000]]).unwrap();
        assert!(matches!(
            model.forecast(&other),
            Err(ModelError::StepMismatch { .. })
        ));
        let renamed =
            LoadSeries::new(0, step("1h"), vec!["cpu".into()], vec![vec![1.0; 2000]]).unwrap();
        assert!(matches!(
            model.forecast(&renamed),
            Err(ModelError::MetricMismatch { .. })
        ));
    }

    #[test]
    fn invalid_parameters_are_refused_with_their_value() {
        let mut p = small_params(3);
        p.ridge = -1.0;
        assert_eq!(
            p.check(step("1h")).unwrap_err().to_string(),
            "ridge penalty should be a non-negative number, but is -1"
        );
        let mut p = small_params(3);
        p.lead = 4;
        assert!(matches!(
            p.check(step("1h")),
            Err(ModelError::Lead {
                lead: 4,
                horizon: 3
            })
        ));
    }
}
