//! Calibration of forecast peaks against the peaks that followed them.

use super::units::Capacity;
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------
// Calibration of forecast peaks.

/// Number of level bins of a [`Calibration`]: planned peaks of `[0, 2)`,
/// `[2, 4)`, `[4, 8)`, ... nodes, the last bin open-ended.
pub const CALIBRATION_BINS: usize = 8;

/// How forecast peaks compared with what followed: for each level of the
/// planned peak (in nodes), the `quantile` of `actual peak / planned peak`
/// over recent decisions, where the actual peak is the highest demand from the
/// decision to a lead time later. Multiplying a new planned peak by its
/// factor gives a peak that recent history covered with that probability.
///
/// It exists because the forecaster's own intervals describe one horizon at a
/// time over the whole history, while the pool has to cover the *highest*
/// demand of the lead window, and errors differ by level (quiet nights and
/// busy evenings): a level-binned empirical quantile corrects both, from data
/// the caller has already seen. Plain data; fitted by [`Calibration::fit`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    capacity: Capacity,
    quantile: f64,
    /// Per level bin, the factor when the bin had enough samples.
    factors: Vec<Option<f64>>,
    /// The factor over all samples (used for bins with too few).
    overall: f64,
    samples: usize,
}

impl Calibration {
    /// Fit from `(planned peak, actual peak)` pairs. Pairs with a planned
    /// peak that is not a positive number, or an actual peak that is not a
    /// number, are skipped. `None` with fewer than `min_samples` usable pairs
    /// (or a quantile outside (0, 1)).
    pub fn fit(
        pairs: impl IntoIterator<Item = (f64, f64)>,
        capacity: Capacity,
        quantile: f64,
        min_samples: usize,
    ) -> Option<Calibration> {
        if !(quantile > 0.0 && quantile < 1.0) {
            return None;
        }
        let mut bins: Vec<Vec<f64>> = vec![Vec::new(); CALIBRATION_BINS];
        for (planned, actual) in pairs {
            if planned > 0.0 && planned.is_finite() && actual.is_finite() {
                bins[Self::bin(capacity, planned)].push(actual.max(0.0) / planned);
            }
        }
        let samples: usize = bins.iter().map(Vec::len).sum();
        if samples < min_samples.max(1) {
            return None;
        }
        let mut all: Vec<f64> = bins.iter().flatten().copied().collect();
        all.sort_by(f64::total_cmp);
        let overall = crate::core::forecast::metrics::quantile_sorted(&all, quantile);
        let factors = bins
            .iter_mut()
            .map(|b| {
                (b.len() >= min_samples.max(1)).then(|| {
                    b.sort_by(f64::total_cmp);
                    crate::core::forecast::metrics::quantile_sorted(b, quantile)
                })
            })
            .collect();
        Some(Calibration {
            capacity,
            quantile,
            factors,
            overall,
            samples,
        })
    }

    /// The factor for a planned peak of `planned` (its bin's, or the overall
    /// one when the bin had too few samples).
    pub fn factor(&self, planned: f64) -> f64 {
        self.bin_factor(Self::bin(self.capacity, planned))
    }

    /// The calibrated peak for a planned peak: `planned * factor`, but never
    /// below the calibrated peak at the top of a lower bin, so that a higher
    /// forecast never gets a lower plan.
    pub fn calibrated(&self, planned: f64) -> f64 {
        if planned.is_nan() || planned <= 0.0 {
            return planned.max(0.0);
        }
        let bin = Self::bin(self.capacity, planned);
        let cap = self.capacity.per_node();
        (0..bin)
            .map(|b| {
                // Top of bin b: 2^(b+1) nodes.
                let top = cap * f64::from(1u32 << (b + 1));
                top * self.bin_factor(b)
            })
            .fold(planned * self.bin_factor(bin), f64::max)
    }

    fn bin_factor(&self, bin: usize) -> f64 {
        self.factors
            .get(bin)
            .copied()
            .flatten()
            .unwrap_or(self.overall)
    }

    /// The quantile the factors are at.
    pub fn quantile(&self) -> f64 {
        self.quantile
    }

    /// Pairs the calibration was fitted on.
    pub fn samples(&self) -> usize {
        self.samples
    }

    fn bin(capacity: Capacity, planned: f64) -> usize {
        let nodes = planned / capacity.per_node();
        if nodes >= 2.0 {
            (nodes.log2().floor() as usize).min(CALIBRATION_BINS - 1)
        } else {
            0
        }
    }
}

/// Settings of the calibration a predictive policy uses (see [`Calibration`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CalibrationParams {
    /// Share of recent peaks the calibrated peak must cover.
    pub quantile: f64,
    /// Fit on the decisions of this many recent seconds.
    pub window_secs: i64,
    /// Fewest pairs for a factor (per bin, and overall).
    pub min_samples: usize,
}
