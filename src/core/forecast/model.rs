//! Direct multi-step forecasting with ridge regression, walk-forward
//! evaluation against naive baselines, and prediction intervals from
//! walk-forward residuals.
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
//! same origins are forecast by the naive baselines. Intervals for block `k`
//! come from the residuals of blocks `< k`, so coverage and pinball loss are
//! scored out of sample (block 0 gets point metrics only).

use crate::core::forecast::calendar::Calendar;
use crate::core::forecast::features::{FeatureBuilder, FeatureError, FeatureParams, FeatureSpec};
use crate::core::forecast::metrics::{quantiles_at_levels, Metrics, MetricsAcc, LEVELS};
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
    /// Quantiles of walk-forward residuals (actual − forecast), per horizon,
    /// at [`LEVELS`], in transformed units.
    pub residual_quantiles: Vec<Vec<f64>>,
    /// Walk-forward MAE per horizon: the yardstick for drift detection.
    pub eval_mae: Vec<f64>,
    /// The event calendar the model was trained with (its features need it).
    pub calendar: Calendar,
}

/// A forecast: plain data. Point values and quantiles per horizon step.
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
}

/// Interpolate a value at level `q` from values at sorted `levels`.
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
        let mut row = vec![0.0; self.spec.width()];
        b.row(i, &mut row);
        let tf = self.transform;
        let model_space: Vec<f64> = self
            .coef
            .iter()
            .map(|c| dot(c, &row) * self.scale)
            .collect();
        let points: Vec<f64> = model_space.iter().map(|p| tf.inverse(*p)).collect();
        let quantiles = model_space
            .iter()
            .zip(&self.residual_quantiles)
            .map(|(p, rq)| rq.iter().map(|r| tf.inverse(p + r)).collect())
            .collect();
        Forecast {
            origin: origin_time,
            step: self.spec.step(),
            points,
            levels: LEVELS.to_vec(),
            quantiles,
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
/// actual value at the lead time and the forecast (point and 80% band).
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
/// each baseline's metrics and residuals (the model's in model space), and
/// the lead-time trace for plots.
struct WalkForward {
    model_acc: Vec<MetricsAcc>,
    base_acc: Vec<Vec<MetricsAcc>>,
    model_res: Vec<Vec<f64>>,
    base_res: Vec<Vec<Vec<f64>>>,
    trace: EvalTrace,
}

impl WalkForward {
    fn new(h_max: usize, baselines: usize) -> Self {
        WalkForward {
            model_acc: vec![MetricsAcc::default(); h_max],
            base_acc: vec![vec![MetricsAcc::default(); h_max]; baselines],
            model_res: vec![Vec::new(); h_max],
            base_res: vec![vec![Vec::new(); h_max]; baselines],
            trace: EvalTrace::default(),
        }
    }
}

/// Everything a fold's forecasts are made from.
struct FoldInputs<'a> {
    builder: &'a FeatureBuilder<'a>,
    y: &'a [f64],
    ty: &'a [f64],
    scale: f64,
    transform: Transform,
    lead: usize,
    baselines: &'a [Baseline],
    series: &'a LoadSeries,
}

/// Refit on `snapshot`, forecast the fold's origins with the model and the
/// baselines, score them (intervals from the residuals of earlier folds
/// only), and add the fold's residuals for the next.
fn evaluate_fold(
    f: &FoldInputs<'_>,
    snapshot: &NormalEquations,
    ridge: f64,
    origins: std::ops::Range<usize>,
    first: bool,
    wf: &mut WalkForward,
) -> Result<(), ModelError> {
    let coef = snapshot.solve(ridge)?;
    let h_max = wf.model_res.len();
    let tf = f.transform;
    // Interval offsets from earlier folds' residuals (none for fold 0).
    let model_q: Option<Vec<Vec<f64>>> =
        (!first).then(|| wf.model_res.iter().map(|r| fold_quantiles(r)).collect());
    let model_q_exp: Option<Vec<Vec<f64>>> = model_q.as_ref().map(|q| {
        q.iter()
            .map(|per_h| per_h.iter().map(|r| r.exp()).collect())
            .collect()
    });
    let base_q: Option<Vec<Vec<Vec<f64>>>> = (!first).then(|| {
        wf.base_res
            .iter()
            .map(|per_h| per_h.iter().map(|r| fold_quantiles(r)).collect())
            .collect()
    });
    let mut new_model_res: Vec<Vec<f64>> = vec![Vec::new(); h_max];
    let mut new_base_res: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); h_max]; f.baselines.len()];
    let mut row = vec![0.0; coef.ncols()];
    for i in origins {
        f.builder.row(i, &mut row);
        for h in 1..=h_max {
            let actual = f.y[i + h];
            let pred_t = dot(coef.row(h - 1).as_slice().expect("contiguous"), &row) * f.scale;
            let pred = tf.inverse(pred_t);
            wf.model_acc[h - 1].add_point(actual, pred);
            new_model_res[h - 1].push(f.ty[i + h] - pred_t);
            if let (Some(q), Some(qe)) = (&model_q, &model_q_exp) {
                let mut qs = [0.0; LEVELS.len()];
                match tf {
                    // expm1(p + r) = e^p * e^r - 1: one exp per origin, not one per level.
                    Transform::Log1p => {
                        let e = pred_t.exp();
                        for (o, er) in qs.iter_mut().zip(&qe[h - 1]) {
                            *o = (e * er - 1.0).max(0.0);
                        }
                    }
                    Transform::None => {
                        for (o, r) in qs.iter_mut().zip(&q[h - 1]) {
                            *o = tf.inverse(pred_t + r);
                        }
                    }
                }
                wf.model_acc[h - 1].add_quantiles(actual, &qs);
                if h == f.lead {
                    wf.trace.lo80.push(qs[2]);
                    wf.trace.hi80.push(qs[8]);
                }
            } else if h == f.lead {
                wf.trace.lo80.push(f64::NAN);
                wf.trace.hi80.push(f64::NAN);
            }
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
    for (all, new) in wf.model_res.iter_mut().zip(&mut new_model_res) {
        all.append(new);
    }
    for (per_baseline, new) in wf.base_res.iter_mut().zip(&mut new_base_res) {
        for (all, new_h) in per_baseline.iter_mut().zip(new) {
            all.append(new_h);
        }
    }
    Ok(())
}

/// Fit on `metric` of `series`, evaluate walk-forward against the baselines,
/// and refit on everything for the published model.
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
        ty: &ty,
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
    };

    let coef = ne.solve(params.ridge)?;
    let model = ForecastModel {
        metric: metric.to_string(),
        spec: spec.clone(),
        transform: tf,
        scale,
        coef: coef.rows().into_iter().map(|r| r.to_vec()).collect(),
        residual_quantiles: wf
            .model_res
            .iter()
            .map(|r| quantiles_at_levels(r))
            .collect(),
        eval_mae: model_metrics.iter().map(|m| m.mae).collect(),
        calendar: calendar.clone(),
    };
    Ok(Trained {
        model,
        evaluation,
        trace: wf.trace,
        train_rows: ne.n,
    })
}

/// Residual quantiles for the next fold's intervals: from at most
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
