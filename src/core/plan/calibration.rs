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
        let mut w = CalibrationWindow::new(capacity, quantile, min_samples);
        for (k, (planned, actual)) in pairs.into_iter().enumerate() {
            w.push(k, planned, actual);
        }
        w.calibration()
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

/// A sliding window of (planned peak, actual peak) pairs, by origin, kept
/// sorted per level bin so that the calibration of the window is at hand
/// after each pair that enters or leaves it ([`Calibration::fit`] over the
/// same pairs gives the same calibration, to the last bit: it is this
/// window, filled at once). The backtest moves it one origin per step; the
/// live controller fills it from its recent history at each run.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrationWindow {
    capacity: Capacity,
    quantile: f64,
    min_samples: usize,
    /// Usable pairs in the window: (origin, bin, actual / planned).
    pairs: std::collections::VecDeque<(usize, usize, f64)>,
    bins: Vec<Vec<f64>>,
    all: Vec<f64>,
}

impl CalibrationWindow {
    /// An empty window.
    pub fn new(capacity: Capacity, quantile: f64, min_samples: usize) -> Self {
        CalibrationWindow {
            capacity,
            quantile,
            min_samples,
            pairs: std::collections::VecDeque::new(),
            bins: vec![Vec::new(); CALIBRATION_BINS],
            all: Vec::new(),
        }
    }

    /// Add the pair of `origin` (origins must increase); an unusable pair
    /// (planned peak not a positive number, actual not a number) is skipped.
    pub fn push(&mut self, origin: usize, planned: f64, actual: f64) {
        self.push_all(std::iter::once((origin, planned, actual)));
    }

    /// [`CalibrationWindow::push`] for each `(origin, planned, actual)` in
    /// order, with the same result; many at once (a `scale` run fills the
    /// whole window in one go) are sorted in once, not inserted one by one.
    pub fn push_all(&mut self, pairs: impl IntoIterator<Item = (usize, f64, f64)>) {
        let first_new = self.pairs.len();
        for (origin, planned, actual) in pairs {
            if planned > 0.0 && planned.is_finite() && actual.is_finite() {
                let bin = Calibration::bin(self.capacity, planned);
                self.pairs
                    .push_back((origin, bin, actual.max(0.0) / planned));
            }
        }
        let new = self.pairs.len() - first_new;
        if new <= BULK_INSERT {
            for k in first_new..self.pairs.len() {
                let (_, bin, ratio) = self.pairs[k];
                insert_sorted(&mut self.bins[bin], ratio);
                insert_sorted(&mut self.all, ratio);
            }
            return;
        }
        // Sorted by the same total order as `insert_sorted`: the same vectors.
        for k in first_new..self.pairs.len() {
            let (_, bin, ratio) = self.pairs[k];
            self.bins[bin].push(ratio);
            self.all.push(ratio);
        }
        for v in self.bins.iter_mut().chain(std::iter::once(&mut self.all)) {
            v.sort_unstable_by(f64::total_cmp);
        }
    }

    /// Drop the pairs of origins before `origin`.
    pub fn drop_before(&mut self, origin: usize) {
        while let Some(&(o, bin, ratio)) = self.pairs.front() {
            if o >= origin {
                break;
            }
            remove_sorted(&mut self.bins[bin], ratio);
            remove_sorted(&mut self.all, ratio);
            self.pairs.pop_front();
        }
    }

    /// The newest origin in the window, if any.
    pub fn last_origin(&self) -> Option<usize> {
        self.pairs.back().map(|p| p.0)
    }

    /// Usable pairs in the window.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether the window holds no usable pair.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The calibration of the pairs in the window: `None` with fewer than
    /// `min_samples` (or a quantile outside (0, 1)).
    pub fn calibration(&self) -> Option<Calibration> {
        if !(self.quantile > 0.0 && self.quantile < 1.0) {
            return None;
        }
        let min = self.min_samples.max(1);
        if self.all.len() < min {
            return None;
        }
        let q = |v: &[f64]| crate::core::forecast::metrics::quantile_sorted(v, self.quantile);
        Some(Calibration {
            capacity: self.capacity,
            quantile: self.quantile,
            factors: self
                .bins
                .iter()
                .map(|b| (b.len() >= min).then(|| q(b)))
                .collect(),
            overall: q(&self.all),
            samples: self.all.len(),
        })
    }
}

/// Up to this many new pairs are inserted one by one; more are sorted in.
const BULK_INSERT: usize = 64;

fn insert_sorted(v: &mut Vec<f64>, x: f64) {
    let at = v.partition_point(|y| y.total_cmp(&x).is_lt());
    v.insert(at, x);
}

fn remove_sorted(v: &mut Vec<f64>, x: f64) {
    let at = v.partition_point(|y| y.total_cmp(&x).is_lt());
    debug_assert!(at < v.len() && v[at].total_cmp(&x).is_eq());
    v.remove(at);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_sorted_in_at_once_give_the_window_they_give_one_by_one() {
        let capacity = Capacity::new(100.0).unwrap();
        // Planned peaks over several bins, actuals around them, some unusable
        // pairs and some repeated ratios.
        let mut x: u64 = 7;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 10_000) as f64 / 10.0
        };
        let pairs: Vec<(usize, f64, f64)> = (0..3_000)
            .map(|j| match j % 97 {
                0 => (j, 0.0, 5.0),
                1 => (j, 50.0, f64::NAN),
                2 => (j, 40.0, -3.0),
                _ => (j, 1.0 + next(), next()),
            })
            .collect();
        for (initial, later) in [(0, 3_000), (1_000, 2_000), (2_990, 10)] {
            let mut one = CalibrationWindow::new(capacity, 0.98, 10);
            let mut bulk = one.clone();
            for &(j, p, a) in &pairs[..initial] {
                one.push(j, p, a);
            }
            bulk.push_all(pairs[..initial].iter().copied());
            assert_eq!(one, bulk);
            for &(j, p, a) in &pairs[initial..initial + later] {
                one.push(j, p, a);
            }
            bulk.push_all(pairs[initial..initial + later].iter().copied());
            let bits =
                |w: &CalibrationWindow| -> Vec<u64> { w.all.iter().map(|v| v.to_bits()).collect() };
            assert_eq!(bits(&one), bits(&bulk));
            assert_eq!(one, bulk);
            assert_eq!(one.calibration(), bulk.calibration());
            one.drop_before(1_500);
            bulk.drop_before(1_500);
            assert_eq!(one, bulk);
        }
    }
}
