//! Forecast accuracy metrics, accumulated one prediction at a time.

use serde::{Deserialize, Serialize};

/// Quantile levels at which prediction intervals are stored and scored.
pub const LEVELS: [f64; 11] = [0.01, 0.05, 0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9, 0.95, 0.99];
/// Index of the 10% and 90% levels in [`LEVELS`]: the central 80% interval.
pub const CENTRAL_80: (usize, usize) = (2, 8);

/// Accuracy of one forecaster at one horizon.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Number of forecasts scored.
    pub n: usize,
    /// Mean absolute error.
    pub mae: f64,
    /// Root mean squared error.
    pub rmse: f64,
    /// Symmetric mean absolute percentage error, in percent (0..200).
    pub smape: f64,
    /// Share of actuals inside the central 80% interval (ideal: 0.8); NaN when
    /// no interval was scored.
    pub coverage80: f64,
    /// Mean pinball (quantile) loss over [`LEVELS`]; NaN when no interval was scored.
    pub pinball: f64,
}

/// Levels at which the calibration of quantile forecasts is reported.
pub const COVERAGE_LEVELS: [f64; 6] = [0.1, 0.5, 0.8, 0.9, 0.95, 0.99];

/// How often actuals stayed at or below the forecast quantiles, at
/// [`COVERAGE_LEVELS`]: a calibrated `q`-quantile has a share of `q`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    /// Number of forecasts scored.
    pub n: usize,
    /// The quantile levels.
    pub levels: Vec<f64>,
    /// `share[j]`: share of actuals at or below the quantile at `levels[j]`
    /// (NaN when nothing was scored).
    pub share: Vec<f64>,
}

impl Coverage {
    /// The share at level `q`, if it is one of `levels`.
    pub fn at(&self, q: f64) -> Option<f64> {
        self.levels
            .iter()
            .position(|l| (l - q).abs() < 1e-9)
            .map(|j| self.share[j])
    }
}

/// Running counts behind [`Coverage`].
#[derive(Debug, Clone, Default)]
pub struct CoverageAcc {
    n: usize,
    below: [usize; COVERAGE_LEVELS.len()],
}

impl CoverageAcc {
    /// Score one forecast: `quantile(q)` is its quantile at level `q`.
    pub fn add(&mut self, actual: f64, quantile: impl Fn(f64) -> f64) {
        self.n += 1;
        for (b, &q) in self.below.iter_mut().zip(&COVERAGE_LEVELS) {
            if actual <= quantile(q) {
                *b += 1;
            }
        }
    }

    /// The coverage so far.
    pub fn finish(&self) -> Coverage {
        Coverage {
            n: self.n,
            levels: COVERAGE_LEVELS.to_vec(),
            share: self
                .below
                .iter()
                .map(|b| {
                    if self.n > 0 {
                        *b as f64 / self.n as f64
                    } else {
                        f64::NAN
                    }
                })
                .collect(),
        }
    }
}

/// Running sums behind [`Metrics`].
#[derive(Debug, Clone, Default)]
pub struct MetricsAcc {
    n: usize,
    abs: f64,
    sq: f64,
    smape: f64,
    smape_n: usize,
    n_int: usize,
    covered: usize,
    pinball: f64,
}

impl MetricsAcc {
    /// Score a point forecast.
    pub fn add_point(&mut self, actual: f64, predicted: f64) {
        let e = actual - predicted;
        self.n += 1;
        self.abs += e.abs();
        self.sq += e * e;
        let denom = actual.abs() + predicted.abs();
        if denom > 0.0 {
            self.smape += 2.0 * e.abs() / denom;
            self.smape_n += 1;
        } else {
            // 0 forecast for 0 actual: a perfect forecast, counted as 0 error.
            self.smape_n += 1;
        }
    }

    /// Score a quantile forecast: `q[j]` is the forecast at level `LEVELS[j]`.
    pub fn add_quantiles(&mut self, actual: f64, q: &[f64]) {
        debug_assert_eq!(q.len(), LEVELS.len());
        self.n_int += 1;
        let (lo, hi) = CENTRAL_80;
        if actual >= q[lo] && actual <= q[hi] {
            self.covered += 1;
        }
        let mut loss = 0.0;
        for (&tau, &qv) in LEVELS.iter().zip(q) {
            loss += pinball(actual, qv, tau);
        }
        self.pinball += loss / LEVELS.len() as f64;
    }

    /// The metrics so far.
    pub fn finish(&self) -> Metrics {
        let n = self.n.max(1) as f64;
        let ni = self.n_int as f64;
        Metrics {
            n: self.n,
            mae: self.abs / n,
            rmse: (self.sq / n).sqrt(),
            smape: 100.0 * self.smape / self.smape_n.max(1) as f64,
            coverage80: if self.n_int > 0 {
                self.covered as f64 / ni
            } else {
                f64::NAN
            },
            pinball: if self.n_int > 0 {
                self.pinball / ni
            } else {
                f64::NAN
            },
        }
    }
}

/// Pinball loss of forecast `q` at level `tau` for `actual`.
pub fn pinball(actual: f64, q: f64, tau: f64) -> f64 {
    let d = actual - q;
    if d >= 0.0 {
        tau * d
    } else {
        (tau - 1.0) * d
    }
}

/// Empirical quantile (linear interpolation between order statistics) of a
/// sorted slice; NaN for an empty slice.
pub fn quantile_sorted(sorted: &[f64], tau: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = tau.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

/// Quantiles of `values` at every level of [`LEVELS`], interpolated as
/// [`quantile_sorted`] does, without sorting: only the order statistics the
/// levels need are selected (O(n log k) instead of O(n log n); the
/// walk-forward evaluation calls this for every horizon and baseline).
pub fn quantiles_at_levels(values: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return vec![f64::NAN; LEVELS.len()];
    }
    let last = (v.len() - 1) as f64;
    let mut need: Vec<usize> = LEVELS
        .iter()
        .flat_map(|&t| {
            let pos = t.clamp(0.0, 1.0) * last;
            [pos.floor() as usize, pos.ceil() as usize]
        })
        .collect();
    need.sort_unstable();
    need.dedup();
    select_many(&mut v, &need, 0);
    LEVELS
        .iter()
        .map(|&t| {
            let pos = t.clamp(0.0, 1.0) * last;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
        })
        .collect()
}

/// Put the order statistics at the (sorted) absolute indices `idx` in place:
/// afterwards `v[i]` for `i` in `idx` is what a full sort would put there.
fn select_many(v: &mut [f64], idx: &[usize], offset: usize) {
    if idx.is_empty() || v.is_empty() {
        return;
    }
    let mid = idx.len() / 2;
    let k = idx[mid] - offset;
    v.select_nth_unstable_by(k, f64::total_cmp);
    let (left, right) = v.split_at_mut(k);
    select_many(left, &idx[..mid], offset);
    select_many(&mut right[1..], &idx[mid + 1..], offset + k + 1);
}

/// Coefficient of determination of `predicted` against `actual`.
pub fn r_squared(actual: &[f64], predicted: &[f64]) -> f64 {
    let n = actual.len() as f64;
    let mean = actual.iter().sum::<f64>() / n;
    let ss_tot: f64 = actual.iter().map(|a| (a - mean).powi(2)).sum();
    let ss_res: f64 = actual
        .iter()
        .zip(predicted)
        .map(|(a, p)| (a - p).powi(2))
        .sum();
    if ss_tot == 0.0 {
        f64::NAN
    } else {
        1.0 - ss_res / ss_tot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selected_quantiles_equal_those_of_a_full_sort() {
        let mut state = 12345u64;
        for n in [1usize, 2, 3, 10, 101, 1000, 4097] {
            let v: Vec<f64> = (0..n)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 1000.0
                })
                .collect();
            let mut sorted = v.clone();
            sorted.sort_by(f64::total_cmp);
            let want: Vec<f64> = LEVELS
                .iter()
                .map(|&t| quantile_sorted(&sorted, t))
                .collect();
            assert_eq!(quantiles_at_levels(&v), want, "n = {n}");
        }
        assert!(quantiles_at_levels(&[f64::NAN]).iter().all(|q| q.is_nan()));
    }

    #[test]
    fn point_metrics_match_a_hand_computation() {
        let mut acc = MetricsAcc::default();
        acc.add_point(10.0, 8.0); // e=2
        acc.add_point(0.0, 0.0); // perfect zero
        acc.add_point(4.0, 6.0); // e=-2
        let m = acc.finish();
        assert_eq!(m.n, 3);
        assert!((m.mae - 4.0 / 3.0).abs() < 1e-12);
        assert!((m.rmse - (8.0f64 / 3.0).sqrt()).abs() < 1e-12);
        let smape = 100.0 * (2.0 * 2.0 / 18.0 + 0.0 + 2.0 * 2.0 / 10.0) / 3.0;
        assert!((m.smape - smape).abs() < 1e-9);
        assert!(m.coverage80.is_nan());
    }

    #[test]
    fn pinball_loss_weighs_under_forecasts_by_the_level() {
        assert_eq!(pinball(10.0, 8.0, 0.9), 0.9 * 2.0);
        assert!((pinball(10.0, 12.0, 0.9) - 0.1 * 2.0).abs() < 1e-12);
    }

    #[test]
    fn quantiles_interpolate_between_order_statistics() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile_sorted(&v, 0.5), 3.0);
        assert_eq!(quantile_sorted(&v, 0.25), 2.0);
        assert!((quantile_sorted(&v, 0.1) - 1.4).abs() < 1e-12);
        assert!(quantile_sorted(&[], 0.5).is_nan());
    }

    #[test]
    fn coverage_counts_actuals_inside_the_80_percent_band() {
        let mut acc = MetricsAcc::default();
        let q: Vec<f64> = LEVELS.iter().map(|l| l * 100.0).collect(); // q10=10, q90=90
        acc.add_quantiles(50.0, &q);
        acc.add_quantiles(95.0, &q);
        assert_eq!(acc.finish().coverage80, 0.5);
    }

    #[test]
    fn r_squared_is_one_for_a_perfect_fit_and_zero_for_the_mean() {
        let a = [1.0, 2.0, 3.0];
        assert_eq!(r_squared(&a, &a), 1.0);
        assert_eq!(r_squared(&a, &[2.0, 2.0, 2.0]), 0.0);
    }
}
