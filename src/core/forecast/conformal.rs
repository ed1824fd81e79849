//! Calibrated forecast quantiles: split conformal prediction on out-of-sample
//! (walk-forward) errors, normalised by a noise model, by level bin and
//! weighted towards recent errors.
//!
//! A *target* is one thing the forecaster predicts at an origin: the load at
//! horizon `h`, or the peak (highest load) over horizons `1..=L`. For every
//! target, the walk-forward evaluation leaves out-of-sample pairs of a
//! forecast and what happened, both in model space (after the load
//! transform, e.g. `ln(1 + load)`). A [`Calibration`] turns them into
//! quantiles for new forecasts:
//!
//! 1. **Noise model** ([`NoiseModel`]): the spread of errors at a forecast
//!    level `μ` is `σ(μ) = sqrt(base + dispersion · v(μ))`, where `v(μ)` is
//!    the variance of Poisson counting noise at `μ` in model space (`1/(1+μ)`
//!    for `ln(1 + load)`, `μ` for the raw load). `base` is the part of the
//!    error that does not depend on the level (model error, bursts that scale
//!    with the load), `dispersion` the counting noise relative to Poisson
//!    (1 = Poisson; web requests are overdispersed). Both are fitted to the
//!    errors' spread in groups of forecast level. Loads of a few requests a
//!    step get wide intervals because the Poisson term dominates there, even
//!    where few errors at such levels were seen.
//! 2. **Scores** `(actual − forecast) / σ(forecast)`, in up to
//!    [`MAX_BINS`] bins of forecast level (Mondrian conformal: what the noise
//!    model misses about the level is calibrated per bin).
//! 3. **Recency weights**: an error `a` origins old weighs `0.5^(a / half_life)`,
//!    so that a change of regime (a quiet fortnight after busy weeks) moves
//!    the quantiles within days.
//! 4. **Weighted conformal quantile** of the scores at each level `q`: the
//!    smallest score whose cumulative weight reaches `q · (W + 1)`, `W` the
//!    total weight and 1 the weight of the new forecast (Tibshirani et al.,
//!    "Conformal prediction under covariate shift", 2019); past the largest
//!    score, the largest score.
//!
//! The quantile at level `q` of a new forecast `p` is then
//! `inverse(p + σ(p) · s_q(bin(p)))`: non-decreasing in `q` because `σ > 0`
//! and the score quantiles are sorted.

use super::model::Transform;
use serde::{Deserialize, Serialize};

/// Levels at which score quantiles are stored: [`crate::core::forecast::metrics::LEVELS`]
/// plus the levels a planner is likely to ask for between them.
pub const CAL_LEVELS: [f64; 18] = [
    0.01, 0.05, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.975, 0.99,
    0.995,
];

/// At most this many level bins.
pub const MAX_BINS: usize = 4;
/// A bin needs about this much effective weight (in errors) to stand alone.
pub const MIN_PER_BIN: f64 = 250.0;
/// Calibration sets larger than this are thinned evenly (quantiles of 16,384
/// draws are within a fraction of a percentile of the full set's).
pub const MAX_SAMPLES: usize = 16_384;

/// The spread of forecast errors as a function of the forecast level, in
/// model space: `σ(μ)² = base + dispersion · v(μ)` with `v` the Poisson
/// variance at `μ` in model space.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NoiseModel {
    /// Level-independent error variance (model space).
    pub base: f64,
    /// Counting noise relative to Poisson (1 = Poisson, > 1 overdispersed).
    pub dispersion: f64,
}

impl NoiseModel {
    /// A constant spread of 1: scores are plain residuals.
    pub const UNIT: NoiseModel = NoiseModel {
        base: 1.0,
        dispersion: 0.0,
    };

    /// `σ` at a model-space forecast `pred_t`.
    pub fn scale(&self, tf: Transform, pred_t: f64) -> f64 {
        (self.base + self.dispersion * poisson_variance(tf, pred_t)).sqrt()
    }

    /// Fit `base` and `dispersion` to the spread of `(pred_t, residual)`
    /// pairs: the pairs are grouped by forecast level (up to 10 groups of
    /// equal size), each group's spread is `1.2533 ·` its mean absolute
    /// deviation from its median (the standard deviation for normal errors,
    /// robust to a few outliers and never zero for counts), and a line
    /// `spread² = base + dispersion · v̄` is fitted by least squares with
    /// both coefficients non-negative. `dispersion` is at least
    /// `min_dispersion` (1 for count data: counting noise is at least
    /// Poisson's), `base` is at least a tiny positive number.
    pub fn fit(tf: Transform, pairs: &[(f64, f64)], min_dispersion: f64) -> NoiseModel {
        let mut sorted = pairs.to_vec();
        sorted.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        NoiseModel::fit_sorted(tf, &sorted, min_dispersion)
    }

    /// [`NoiseModel::fit`] on pairs sorted by forecast.
    fn fit_sorted(tf: Transform, pairs: &[(f64, f64)], min_dispersion: f64) -> NoiseModel {
        const TINY: f64 = 1e-12;
        if pairs.is_empty() {
            return NoiseModel::UNIT;
        }
        let by_level: Vec<(f64, f64)> = pairs
            .iter()
            .map(|&(p, r)| (poisson_variance(tf, p), r))
            .collect();
        let groups = (by_level.len() / 20).clamp(1, 10);
        let points: Vec<(f64, f64)> = (0..groups)
            .map(|g| {
                let part =
                    &by_level[g * by_level.len() / groups..(g + 1) * by_level.len() / groups];
                let mut r: Vec<f64> = part.iter().map(|x| x.1).collect();
                let mid = r.len() / 2;
                r.select_nth_unstable_by(mid, f64::total_cmp);
                let med = r[mid];
                let mad = r.iter().map(|x| (x - med).abs()).sum::<f64>() / r.len() as f64;
                let v = part.iter().map(|x| x.0).sum::<f64>() / part.len() as f64;
                (v, (1.2533 * mad).powi(2))
            })
            .collect();
        let n = points.len() as f64;
        let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
        let my = points.iter().map(|p| p.1).sum::<f64>() / n;
        let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
        let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        let mut dispersion = if sxx > 0.0 { (sxy / sxx).max(0.0) } else { 0.0 };
        let mut base = my - dispersion * mx;
        if base < 0.0 {
            // Through the origin: all of the spread is counting noise.
            base = 0.0;
            let sx2: f64 = points.iter().map(|p| p.0 * p.0).sum();
            let sxy0: f64 = points.iter().map(|p| p.0 * p.1).sum();
            dispersion = if sx2 > 0.0 { sxy0 / sx2 } else { 0.0 };
        }
        if dispersion < min_dispersion {
            // Refit the base with the dispersion held at its floor.
            dispersion = min_dispersion;
            base = (my - dispersion * mx).max(0.0);
        }
        NoiseModel {
            base: base.max(TINY),
            dispersion,
        }
    }
}

/// Variance of Poisson counts at the model-space forecast `pred_t`, in model
/// space: `μ` for the raw load, `1/(1+μ)` for `ln(1 + load)` (the delta
/// method's `1/μ` for large `μ`, kept finite at zero), with `μ` the forecast
/// in load units.
pub fn poisson_variance(tf: Transform, pred_t: f64) -> f64 {
    match tf {
        Transform::None => pred_t.max(0.0),
        Transform::Log1p => (-pred_t.max(0.0)).exp(),
    }
}

/// One out-of-sample error for calibration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// The forecast, model space.
    pub pred: f64,
    /// What happened, model space.
    pub actual: f64,
    /// How many origins before the calibration's end the forecast was made.
    pub age: usize,
}

/// How a calibration is fitted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CalibrationParams {
    /// Half-life of the recency weights, in origins (`f64::INFINITY`: none).
    pub half_life: f64,
    /// Floor of the fitted dispersion (1 for count data, else 0).
    pub min_dispersion: f64,
}

/// Calibrated quantiles of one forecast target (a horizon, or the peak over a
/// lead window). Plain data, stored in the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// The spread of errors by forecast level.
    pub noise: NoiseModel,
    /// Bin boundaries on the model-space forecast, increasing: bin `b` holds
    /// forecasts `p` with `edges[b-1] <= p < edges[b]`; `edges.len() + 1` bins.
    pub edges: Vec<f64>,
    /// Levels of the score quantiles, increasing.
    pub levels: Vec<f64>,
    /// `scores[bin][j]`: score quantile at `levels[j]`, non-decreasing in `j`.
    pub scores: Vec<Vec<f64>>,
    /// Errors the calibration was fitted on.
    pub samples: usize,
}

impl Calibration {
    /// Residual quantiles at `levels` with no noise model and one bin: how
    /// models of artifact format 1 made their intervals.
    pub fn from_residual_quantiles(levels: &[f64], residual_quantiles: &[f64]) -> Calibration {
        Calibration {
            noise: NoiseModel::UNIT,
            edges: vec![],
            levels: levels.to_vec(),
            scores: vec![residual_quantiles.to_vec()],
            samples: 0,
        }
    }

    /// Fit on out-of-sample errors. `None` without any sample.
    pub fn fit(tf: Transform, samples: &[Sample], p: &CalibrationParams) -> Option<Calibration> {
        if samples.is_empty() {
            return None;
        }
        let stride = samples.len().div_ceil(MAX_SAMPLES);
        let mut s: Vec<Sample> = samples.iter().step_by(stride).copied().collect();
        // One sort by level serves the noise model's groups and the bins.
        s.sort_unstable_by(|a, b| a.pred.total_cmp(&b.pred));
        let pairs: Vec<(f64, f64)> = s.iter().map(|x| (x.pred, x.actual - x.pred)).collect();
        let noise = NoiseModel::fit_sorted(tf, &pairs, p.min_dispersion);
        let w: Vec<f64> = s
            .iter()
            .map(|x| recency_weight(p.half_life, x.age))
            .collect();
        let edges = level_bins(&s, &w);
        let mut per_bin: Vec<Vec<(f64, f64)>> = vec![Vec::new(); edges.len() + 1];
        for (x, wi) in s.iter().zip(&w) {
            let score = (x.actual - x.pred) / noise.scale(tf, x.pred);
            per_bin[bin_of(&edges, x.pred)].push((score, *wi));
        }
        let scores = per_bin
            .iter_mut()
            .map(|b| weighted_conformal_quantiles(b, &CAL_LEVELS))
            .collect();
        Some(Calibration {
            noise,
            edges,
            levels: CAL_LEVELS.to_vec(),
            scores,
            samples: s.len(),
        })
    }

    /// The quantile at level `q` (interpolated between stored levels and
    /// clamped to the outermost ones) in model space, for the model-space
    /// forecast `pred_t`.
    pub fn quantile_t(&self, tf: Transform, pred_t: f64, q: f64) -> f64 {
        let s = &self.scores[bin_of(&self.edges, pred_t)];
        pred_t + self.noise.scale(tf, pred_t) * super::model::interpolate_level(&self.levels, s, q)
    }

    /// Quantiles at `levels` in load units (never below zero), for the
    /// model-space forecast `pred_t`, each interpolated as
    /// [`Calibration::quantile_t`] does; non-decreasing when `levels` is.
    pub fn quantiles(&self, tf: Transform, pred_t: f64, levels: &[f64]) -> Vec<f64> {
        let s = &self.scores[bin_of(&self.edges, pred_t)];
        let sigma = self.noise.scale(tf, pred_t);
        if !levels.windows(2).all(|w| w[0] <= w[1]) {
            let at = |q: f64| super::model::interpolate_level(&self.levels, s, q);
            return levels
                .iter()
                .map(|&q| tf.inverse(pred_t + sigma * at(q)))
                .collect();
        }
        let mut out = Vec::with_capacity(levels.len());
        // Both level lists are increasing: walk them together.
        let mut j = 0;
        for &q in levels {
            while j < self.levels.len() && self.levels[j] < q {
                j += 1;
            }
            let score = if j == 0 {
                s[0]
            } else if j == self.levels.len() {
                s[j - 1]
            } else if self.levels[j] == q {
                s[j]
            } else {
                let f = (q - self.levels[j - 1]) / (self.levels[j] - self.levels[j - 1]);
                s[j - 1] + f * (s[j] - s[j - 1])
            };
            out.push(tf.inverse(pred_t + sigma * score));
        }
        out
    }
}

/// One origin's out-of-sample forecast path and what happened, for the
/// peak calibration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PathSample<'a> {
    /// Forecasts for horizons `1..=H`, model space.
    pub pred: &'a [f64],
    /// What happened at horizons `1..=k` (`k <= H`: those known at the
    /// calibration's end), model space.
    pub actual: &'a [f64],
    /// How many origins before the calibration's end the forecast was made.
    pub age: usize,
}

/// Calibrated quantiles of the peak over horizons `1..=l` (one lead `l`).
///
/// The score of an origin is the largest normalised error over the window,
/// `max_{h<=l} (actual_h − forecast_h) / σ_h(forecast_h)`, with `σ_h` the
/// noise model of horizon `h`'s [`Calibration`]. Its weighted conformal
/// quantile `s_q` gives a band `forecast_h + σ_h · s_q` that holds at every
/// horizon of the window at once with probability `q`; the peak quantile is
/// the band's highest value, `max_{h<=l} inverse(forecast_h + σ_h · s_q)`, so
/// the highest actual over the window stays below it at least as often. The
/// score follows the shape of the forecast path (a rising forecast peaks at
/// its end, a flat one anywhere), which is why it stays calibrated when the
/// mix of shapes changes, where the error of the highest forecast against the
/// highest actual does not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeakCalibration {
    /// Levels of the score quantiles, increasing.
    pub levels: Vec<f64>,
    /// Score quantiles at `levels`, non-decreasing.
    pub scores: Vec<f64>,
    /// Origins the calibration was fitted on.
    pub samples: usize,
}

impl PeakCalibration {
    /// Fit the peak calibration of every lead `1..=horizons.len()` on the
    /// paths (those whose window is not known yet are left out of a lead).
    pub fn fit_all(
        tf: Transform,
        horizons: &[Calibration],
        paths: &[PathSample<'_>],
        p: &CalibrationParams,
    ) -> Vec<PeakCalibration> {
        let stride = paths.len().div_ceil(MAX_SAMPLES).max(1);
        let mut scored: Vec<Vec<(f64, f64)>> = vec![Vec::new(); horizons.len()];
        for path in paths.iter().step_by(stride) {
            let w = recency_weight(p.half_life, path.age);
            let mut score = f64::NEG_INFINITY;
            for (h, (a, f)) in path.actual.iter().zip(path.pred).enumerate() {
                let Some(c) = horizons.get(h) else { break };
                score = score.max((a - f) / c.noise.scale(tf, *f));
                scored[h].push((score, w));
            }
        }
        scored
            .iter_mut()
            .map(|s| PeakCalibration {
                levels: CAL_LEVELS.to_vec(),
                samples: s.len(),
                scores: weighted_conformal_quantiles(s, &CAL_LEVELS),
            })
            .collect()
    }
}

/// Quantiles of the peak over horizons `1..=l` for every lead `l`
/// (`out[l-1][j]`, at `peaks[l-1].levels[j]`), in load units, from the
/// model-space forecasts: `max_{h<=l} inverse(pred_h + σ_h(pred_h) · s_j)`,
/// made non-decreasing in the lead (each lead is calibrated on its own).
pub fn peak_values(
    tf: Transform,
    pred: &[f64],
    horizons: &[Calibration],
    peaks: &[PeakCalibration],
) -> Vec<Vec<f64>> {
    let scores: Vec<&[f64]> = peaks.iter().map(|p| p.scores.as_slice()).collect();
    peak_values_at(tf, pred, horizons, &scores)
}

/// [`peak_values`] from the score quantiles of each lead at chosen levels
/// (`scores[l-1][j]`); every lead must have the same levels.
pub fn peak_values_at(
    tf: Transform,
    pred: &[f64],
    horizons: &[Calibration],
    scores: &[&[f64]],
) -> Vec<Vec<f64>> {
    let n = scores.len().min(pred.len()).min(horizons.len());
    let sigma: Vec<f64> = (0..n)
        .map(|h| horizons[h].noise.scale(tf, pred[h]))
        .collect();
    let mut out: Vec<Vec<f64>> = Vec::with_capacity(n);
    for l in 0..n {
        let mut row = Vec::with_capacity(scores[l].len());
        for (j, &s) in scores[l].iter().enumerate() {
            let mut top = f64::NEG_INFINITY;
            for h in 0..=l {
                let v = pred[h] + sigma[h] * s;
                if v > top {
                    top = v;
                }
            }
            let mut v = tf.inverse(top);
            if l > 0 {
                v = v.max(out[l - 1][j]);
            }
            row.push(v);
        }
        out.push(row);
    }
    out
}

/// Bin boundaries on the forecast level: up to [`MAX_BINS`] bins holding
/// equal shares of the recency weight (so that every bin is calibrated on
/// recent errors, not on a level last seen weeks ago), each with an
/// effective sample size `(Σw)² / Σw²` of at least [`MIN_PER_BIN`] (a bin
/// short of it is merged into a neighbour).
/// `s` is sorted by forecast.
fn level_bins(s: &[Sample], w: &[f64]) -> Vec<f64> {
    let by_level: Vec<(f64, f64)> = s.iter().zip(w).map(|(x, w)| (x.pred, *w)).collect();
    let n_eff = |part: &[(f64, f64)]| {
        let (a, b) = part
            .iter()
            .fold((0.0, 0.0), |(a, b), x| (a + x.1, b + x.1 * x.1));
        if b > 0.0 {
            a * a / b
        } else {
            0.0
        }
    };
    let bins = ((n_eff(&by_level) / MIN_PER_BIN) as usize).clamp(1, MAX_BINS);
    let total: f64 = by_level.iter().map(|x| x.1).sum();
    // Cut indices at equal shares of the weight.
    let mut cuts: Vec<usize> = Vec::with_capacity(bins + 1);
    cuts.push(0);
    let mut cum = 0.0;
    for (i, x) in by_level.iter().enumerate() {
        if cuts.len() < bins && cum >= total * cuts.len() as f64 / bins as f64 {
            cuts.push(i);
        }
        cum += x.1;
    }
    cuts.push(by_level.len());
    cuts.dedup();
    // Merge the weakest bin into its smaller neighbour while one is too small.
    loop {
        let sizes: Vec<f64> = cuts
            .windows(2)
            .map(|c| n_eff(&by_level[c[0]..c[1]]))
            .collect();
        let Some((j, smallest)) = sizes
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(b.1))
            .map(|(j, v)| (j, *v))
        else {
            break;
        };
        if sizes.len() <= 1 || smallest >= MIN_PER_BIN {
            break;
        }
        let merge_left = j + 1 == sizes.len() || (j > 0 && sizes[j - 1] <= sizes[j + 1]);
        cuts.remove(if merge_left { j } else { j + 1 });
    }
    let mut edges: Vec<f64> = cuts[1..cuts.len() - 1]
        .iter()
        .map(|&i| by_level[i].0)
        .collect();
    edges.dedup();
    edges
}

fn recency_weight(half_life: f64, age: usize) -> f64 {
    if half_life.is_finite() {
        0.5f64.powf(age as f64 / half_life)
    } else {
        1.0
    }
}

fn bin_of(edges: &[f64], pred: f64) -> usize {
    edges.partition_point(|e| *e <= pred)
}

/// Weighted split-conformal quantiles of `(score, weight)` at `levels`
/// (increasing): at level `q`, the smallest score whose cumulative weight
/// reaches `q · (W + 1)` (the new forecast weighs 1), or the largest score
/// when none does. An empty set gives zeros.
pub fn weighted_conformal_quantiles(scored: &mut [(f64, f64)], levels: &[f64]) -> Vec<f64> {
    if scored.is_empty() {
        return vec![0.0; levels.len()];
    }
    scored.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let total: f64 = scored.iter().map(|x| x.1).sum::<f64>() + 1.0;
    let mut out = Vec::with_capacity(levels.len());
    let (mut i, mut cum) = (0usize, 0.0);
    for &q in levels {
        let need = q * total;
        while i < scored.len() && cum + scored[i].1 < need {
            cum += scored[i].1;
            i += 1;
        }
        out.push(scored[i.min(scored.len() - 1)].0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever the errors, quantiles never decrease with the level, per
        /// horizon and for the peak, and the peak never decreases with the lead.
        #[test]
        fn quantiles_are_monotone_in_the_level_and_the_peak_in_the_lead(
            errors in proptest::collection::vec((0.0f64..12.0, -3.0f64..3.0, -2.0f64..2.0), 1..400),
            forecast in proptest::collection::vec(-1.0f64..13.0, 3),
            log in proptest::bool::ANY,
            half_life in prop_oneof![Just(f64::INFINITY), 5.0f64..500.0],
            counts in proptest::bool::ANY,
        ) {
            let tf = if log { Transform::Log1p } else { Transform::None };
            let p = CalibrationParams { half_life, min_dispersion: if counts { 1.0 } else { 0.0 } };
            let n = errors.len();
            let preds: Vec<[f64; 3]> = errors.iter().map(|(l, _, d)| [*l, l + d / 2.0, l + d]).collect();
            let actuals: Vec<[f64; 3]> = errors
                .iter()
                .zip(&preds)
                .map(|((_, r, _), p)| [p[0] + r, p[1] - r / 2.0, p[2] + r * r])
                .collect();
            let horizons: Vec<Calibration> = (0..3)
                .map(|h| {
                    let s: Vec<Sample> = (0..n)
                        .map(|i| Sample { pred: preds[i][h], actual: actuals[i][h], age: n - i })
                        .collect();
                    Calibration::fit(tf, &s, &p).unwrap()
                })
                .collect();
            let paths: Vec<PathSample<'_>> = (0..n)
                .map(|i| PathSample { pred: &preds[i], actual: &actuals[i], age: n - i })
                .collect();
            let peaks = PeakCalibration::fit_all(tf, &horizons, &paths, &p);
            let levels = [0.0, 0.01, 0.02, 0.1, 0.33, 0.5, 0.8, 0.9, 0.91, 0.99, 0.995, 1.0];
            for (c, f) in horizons.iter().zip(&forecast) {
                let q = c.quantiles(tf, *f, &levels);
                prop_assert!(q.windows(2).all(|w| w[0] <= w[1]), "{:?}", q);
                prop_assert!(q.iter().all(|v| *v >= 0.0 && v.is_finite()));
            }
            let v = peak_values(tf, &forecast, &horizons, &peaks);
            prop_assert_eq!(v.len(), 3);
            for l in 0..3 {
                prop_assert!(v[l].windows(2).all(|w| w[0] <= w[1]), "lead {}: {:?}", l + 1, v[l]);
                if l > 0 {
                    prop_assert!(v[l].iter().zip(&v[l - 1]).all(|(a, b)| a >= b));
                }
            }
        }
    }

    #[test]
    fn reported_levels_are_stored_levels() {
        // The walk-forward scores the peak at the reported levels directly.
        for q in crate::core::forecast::metrics::COVERAGE_LEVELS {
            assert!(CAL_LEVELS.contains(&q), "{q}");
        }
        for q in crate::core::forecast::metrics::LEVELS {
            assert!(CAL_LEVELS.contains(&q), "{q}");
        }
    }

    #[test]
    fn conformal_quantiles_of_equal_weights_count_the_new_point() {
        // 9 scores 1..=9 and the new point: the 90% quantile is the 9th
        // score (9 of 10 weights), the 50% one the 5th.
        let mut s: Vec<(f64, f64)> = (1..=9).map(|i| (f64::from(i), 1.0)).collect();
        let q = weighted_conformal_quantiles(&mut s, &[0.1, 0.5, 0.9, 0.99]);
        assert_eq!(q, vec![1.0, 5.0, 9.0, 9.0]);
    }

    #[test]
    fn recent_scores_weigh_more() {
        // Old scores are 0, recent ones 10: with a short half-life the
        // median is a recent score.
        let mut s: Vec<(f64, f64)> = (0..100)
            .map(|i| {
                let age = 100 - i;
                let w = 0.5f64.powf(age as f64 / 10.0);
                (if i >= 80 { 10.0 } else { 0.0 }, w)
            })
            .collect();
        assert_eq!(weighted_conformal_quantiles(&mut s, &[0.5])[0], 10.0);
    }

    #[test]
    fn a_level_last_seen_long_ago_is_calibrated_on_recent_errors_not_left_empty() {
        // Busy weeks long ago, a quiet recent fortnight: with a one-day
        // half-life the busy errors weigh next to nothing. A bin of busy
        // levels alone would hold no weight and its quantiles would all be
        // its largest error; the bins follow the weight instead.
        let mut samples = Vec::new();
        for i in 0..20_000usize {
            let (mu, age) = if i < 10_000 {
                (80_000.0, 40_000 - i)
            } else {
                (3_000.0, 20_000 - i)
            };
            let r = ((i * 7919) % 101) as f64 / 50.0 - 1.0;
            let big = if i == 5_000 { 5.0 } else { 0.0 };
            samples.push(Sample {
                pred: f64::ln_1p(mu),
                actual: f64::ln_1p(mu) + 0.05 * r + big,
                age,
            });
        }
        let p = CalibrationParams {
            half_life: 1_440.0,
            min_dispersion: 0.0,
        };
        let c = Calibration::fit(Transform::Log1p, &samples, &p).unwrap();
        let busy = f64::ln_1p(80_000.0);
        let q: Vec<f64> = [0.1, 0.5, 0.9]
            .iter()
            .map(|q| c.quantile_t(Transform::Log1p, busy, *q) - busy)
            .collect();
        assert!(q[0] < q[1] && q[1] < q[2], "{q:?} {c:?}");
        assert!(q[2] < 0.2, "{q:?}");
    }

    #[test]
    fn the_noise_model_finds_poisson_noise_in_poisson_counts() {
        // Residuals in log space of Poisson-like counts: spread 1/sqrt(1+mu).
        let mut pairs = Vec::new();
        let mut state = 7u64;
        for i in 0..20_000 {
            let mu = [3.0, 10.0, 30.0, 100.0, 1000.0][i % 5];
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (state >> 11) as f64 / (1u64 << 53) as f64;
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let v = (state >> 11) as f64 / (1u64 << 53) as f64;
            let z = (-2.0 * (u.max(1e-300)).ln()).sqrt() * (std::f64::consts::TAU * v).cos();
            let p = f64::ln_1p(mu);
            pairs.push((p, z / (1.0 + mu).sqrt()));
        }
        let m = NoiseModel::fit(Transform::Log1p, &pairs, 0.0);
        assert!((m.dispersion - 1.0).abs() < 0.1, "{m:?}");
        assert!(m.base < 1e-3, "{m:?}");
    }

    #[test]
    fn calibrated_quantiles_are_monotone_in_the_level_and_wider_at_low_counts() {
        let mut samples = Vec::new();
        for i in 0..5000usize {
            let mu = [5.0, 50.0, 500.0][i % 3];
            let r = ((i * 7919) % 101) as f64 / 50.0 - 1.0; // in [-1, 1]
            samples.push(Sample {
                pred: f64::ln_1p(mu),
                actual: f64::ln_1p(mu) + r / (1.0 + mu).sqrt(),
                age: 5000 - i,
            });
        }
        let p = CalibrationParams {
            half_life: 1000.0,
            min_dispersion: 1.0,
        };
        let c = Calibration::fit(Transform::Log1p, &samples, &p).unwrap();
        for mu in [0.0, 1.0, 5.0, 50.0, 500.0, 5000.0] {
            let qs = c.quantiles(Transform::Log1p, f64::ln_1p(mu), &CAL_LEVELS);
            assert!(qs.windows(2).all(|w| w[0] <= w[1]), "mu {mu}: {qs:?}");
        }
        // Relative width of the 90% quantile over the point: larger at 5 than at 500.
        let rel = |mu: f64| c.quantile_t(Transform::Log1p, f64::ln_1p(mu), 0.9) - f64::ln_1p(mu);
        assert!(
            rel(5.0) > 2.0 * rel(500.0),
            "{} vs {}",
            rel(5.0),
            rel(500.0)
        );
    }
}
