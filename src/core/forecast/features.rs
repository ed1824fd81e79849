//! Features for direct multi-step forecasting.
//!
//! For a forecast *origin* `i` (the last step whose value is known), one row of
//! features is built from data up to and including `i` plus things known in
//! advance (calendar terms, the event calendar). The same row serves every
//! horizon `h = 1..=H`; each horizon has its own coefficients. That is what
//! lets [`crate::core::forecast::model`] fit all horizons from one pass over the data.
//!
//! Row layout (see [`FeatureSpec::names`]):
//! 1. intercept (1.0),
//! 2. lags `y[i], y[i-1], ..., y[i-lags+1]`,
//! 3. for each season of period `P` steps, the window `y[i+1-P ..= i+H-P]`
//!    (for horizon `h` this holds "the same time one period before the target"),
//! 4. for each rolling window `w`: mean, standard deviation and max of `y[i-w+1 ..= i]`,
//! 5. Fourier terms of time of day and of week at the origin's timestamp
//!    (a linear model shifts their phase to the target's time by itself),
//! 6. event flags: the origin is in an event; an event starts within the horizon.
//!
//! Values derived from the load are divided by a scale (the training mean), so
//! all features are of order one and the normal equations stay well conditioned.

use crate::core::forecast::calendar::Calendar;
use crate::core::time::{Step, DAY_SECS, WEEK_SECS};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::f64::consts::TAU;

/// A seasonal period and the calendar-term order for it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Season {
    /// Period in seconds (a day, a week).
    pub period_secs: i64,
    /// Number of sine/cosine pairs (0 = none).
    pub fourier_order: usize,
    /// Whether to use the "same time one period ago" window (needs the period to
    /// be a whole number of steps, at least the horizon).
    pub seasonal_lags: bool,
}

/// Which features to build: checked, ready to use (build with [`FeatureParams`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSpec {
    step: Step,
    horizon: usize,
    lags: usize,
    /// Seasons with seasonal lags, as (period in steps).
    seasonal_periods: Vec<usize>,
    /// Fourier terms: (period in seconds, order).
    fourier: Vec<(i64, usize)>,
    rolling: Vec<usize>,
    events: bool,
}

/// Unchecked feature parameters (builder).
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureParams {
    pub lags: usize,
    pub seasons: Vec<Season>,
    pub rolling_secs: Vec<i64>,
    pub events: bool,
}

/// Invalid feature parameters, with the offending value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FeatureError {
    #[error("lags should be at least 1, but is {0}")]
    NoLags(usize),
    #[error("horizon should be at least 1 step, but is {0}")]
    NoHorizon(usize),
}

impl Default for FeatureParams {
    /// Lags over the last 12 steps, daily and weekly seasons (calendar terms
    /// and same-time-last-period windows), rolling windows of 1 hour and 1 day.
    fn default() -> Self {
        FeatureParams {
            lags: 12,
            seasons: vec![
                Season {
                    period_secs: DAY_SECS,
                    fourier_order: 4,
                    seasonal_lags: true,
                },
                Season {
                    period_secs: WEEK_SECS,
                    fourier_order: 3,
                    seasonal_lags: true,
                },
            ],
            rolling_secs: vec![3_600, DAY_SECS],
            events: false,
        }
    }
}

impl FeatureParams {
    /// Validate against a step and horizon. Seasonal parts that cannot apply at
    /// this step (a daily season on daily data has no time-of-day shape; a
    /// period that is not a whole number of steps has no same-time lag) are
    /// dropped rather than refused, and [`FeatureSpec::names`] shows what is left.
    pub fn check(&self, step: Step, horizon: usize) -> Result<FeatureSpec, FeatureError> {
        if self.lags == 0 {
            return Err(FeatureError::NoLags(self.lags));
        }
        if horizon == 0 {
            return Err(FeatureError::NoHorizon(horizon));
        }
        let mut seasonal_periods = Vec::new();
        let mut fourier = Vec::new();
        for s in &self.seasons {
            if s.seasonal_lags {
                if let Some(p) = step.steps_exact(s.period_secs) {
                    if p >= horizon && p > 1 && !seasonal_periods.contains(&p) {
                        seasonal_periods.push(p);
                    }
                }
            }
            // Calendar terms need at least 4 samples per period to mean anything.
            if s.fourier_order > 0 && s.period_secs >= 4 * step.secs() {
                let max_order = (s.period_secs / step.secs() / 2) as usize;
                fourier.push((s.period_secs, s.fourier_order.min(max_order.max(1))));
            }
        }
        let mut rolling = Vec::new();
        for &secs in &self.rolling_secs {
            // A window of fewer than two steps has no spread: it is dropped.
            let w = step.steps_ceil(secs);
            if w >= 2 && !rolling.contains(&w) {
                rolling.push(w);
            }
        }
        Ok(FeatureSpec {
            step,
            horizon,
            lags: self.lags,
            seasonal_periods,
            fourier,
            rolling,
            events: self.events,
        })
    }
}

impl FeatureSpec {
    /// Series step the spec was checked for.
    pub fn step(&self) -> Step {
        self.step
    }
    /// Forecast horizon in steps.
    pub fn horizon(&self) -> usize {
        self.horizon
    }
    /// Number of columns of a feature row (including the intercept).
    pub fn width(&self) -> usize {
        1 + self.lags
            + self.seasonal_periods.len() * self.horizon
            + 3 * self.rolling.len()
            + self.fourier.iter().map(|f| 2 * f.1).sum::<usize>()
            + if self.events { 2 } else { 0 }
    }
    /// Steps of history needed before the first origin: the first usable origin
    /// index is `warmup()`.
    pub fn warmup(&self) -> usize {
        let lag = self.lags - 1;
        let season = self
            .seasonal_periods
            .iter()
            .map(|p| p - 1)
            .max()
            .unwrap_or(0);
        let roll = self.rolling.iter().map(|w| w - 1).max().unwrap_or(0);
        lag.max(season).max(roll)
    }
    /// Whether event flags are part of the row.
    pub fn uses_events(&self) -> bool {
        self.events
    }
    /// Column names, in row order (for the model card).
    pub fn names(&self) -> Vec<String> {
        let mut n = vec!["intercept".to_string()];
        n.extend((0..self.lags).map(|k| format!("lag_{k}")));
        for p in &self.seasonal_periods {
            n.extend((1..=self.horizon).map(|h| format!("season{p}_h{h}")));
        }
        for w in &self.rolling {
            n.extend(
                ["mean", "std", "max"]
                    .iter()
                    .map(|s| format!("roll{w}_{s}")),
            );
        }
        for (p, order) in &self.fourier {
            for k in 1..=*order {
                n.push(format!("sin{k}_{p}s"));
                n.push(format!("cos{k}_{p}s"));
            }
        }
        if self.events {
            n.push("event_now".to_string());
            n.push("event_ahead".to_string());
        }
        n
    }
}

/// Steps per block of the rolling sums (see [`FeatureBuilder`]).
const BLOCK: i64 = 32;

/// Builds feature rows over one load column. Precomputes block sums and
/// rolling maxima once (O(n) memory, O(w / BLOCK + BLOCK) per rolling window
/// and row).
///
/// A row's value depends only on the data its window covers, never on where
/// the series starts: rolling sums add whole blocks aligned to the epoch
/// (each summed from its own values) and the values of partial blocks one by
/// one, always in the same order. So the live controller, which forecasts
/// from the recent window it read, and the backtest, which forecasts from
/// the whole trace, compute the same features to the last bit (prefix sums
/// from the series start would not).
pub struct FeatureBuilder<'a> {
    spec: &'a FeatureSpec,
    y: &'a [f64],
    inv_scale: f64,
    start: i64,
    calendar: Option<&'a Calendar>,
    /// The epoch-aligned index of bucket 0.
    abs0: i64,
    /// Sums of scaled values and of their squares per whole block inside
    /// the data, by block index from `first_block`.
    first_block: i64,
    block_sum: Vec<f64>,
    block_sq: Vec<f64>,
    roll_max: Vec<Vec<f64>>,
    /// Per Fourier season: sin/cos values for every step-aligned phase
    /// (`table[phase * 2 * order ..]`), when the period is a whole number of steps.
    fourier_tables: Vec<Option<Vec<f64>>>,
}

impl<'a> FeatureBuilder<'a> {
    /// Prepare rows over `y` (bucket `i` starts at `start + i*step`), scaling
    /// load-derived values by `1/scale`.
    pub fn new(
        spec: &'a FeatureSpec,
        y: &'a [f64],
        start: i64,
        scale: f64,
        calendar: Option<&'a Calendar>,
    ) -> Self {
        let inv_scale = 1.0 / scale;
        let abs0 = start.div_euclid(spec.step.secs());
        // Whole blocks inside the data: [first_block, last_block).
        let first_block = (abs0 + BLOCK - 1).div_euclid(BLOCK);
        let last_block = (abs0 + y.len() as i64).div_euclid(BLOCK);
        let blocks = (last_block - first_block).max(0) as usize;
        let mut block_sum = Vec::with_capacity(blocks);
        let mut block_sq = Vec::with_capacity(blocks);
        for b in 0..blocks as i64 {
            let from = ((first_block + b) * BLOCK - abs0) as usize;
            let (mut s, mut s2) = (0.0, 0.0);
            for &v in &y[from..from + BLOCK as usize] {
                let v = v * inv_scale;
                s += v;
                s2 += v * v;
            }
            block_sum.push(s);
            block_sq.push(s2);
        }
        let roll_max = spec.rolling.iter().map(|&w| rolling_max(y, w)).collect();
        let step = spec.step.secs();
        let fourier_tables = spec
            .fourier
            .iter()
            .map(|&(period, order)| {
                (period % step == 0 && start % step == 0).then(|| {
                    let phases = (period / step) as usize;
                    let mut t = Vec::with_capacity(phases * 2 * order);
                    for ph in 0..phases {
                        fourier_terms(ph as i64 * step, period, order, &mut t);
                    }
                    t
                })
            })
            .collect();
        FeatureBuilder {
            spec,
            y,
            inv_scale,
            start,
            calendar,
            abs0,
            first_block,
            block_sum,
            block_sq,
            roll_max,
            fourier_tables,
        }
    }

    /// Sum of scaled values and of their squares over `a..b`: partial blocks
    /// value by value, whole blocks from their sums, in one fixed order.
    fn window_sums(&self, a: usize, b: usize) -> (f64, f64) {
        let s = self.inv_scale;
        let (mut sum, mut sq) = (0.0, 0.0);
        let mut j = a;
        let add = |j: usize, sum: &mut f64, sq: &mut f64| {
            let v = self.y[j] * s;
            *sum += v;
            *sq += v * v;
        };
        while j < b && (self.abs0 + j as i64).rem_euclid(BLOCK) != 0 {
            add(j, &mut sum, &mut sq);
            j += 1;
        }
        while j + BLOCK as usize <= b {
            let k = ((self.abs0 + j as i64).div_euclid(BLOCK) - self.first_block) as usize;
            sum += self.block_sum[k];
            sq += self.block_sq[k];
            j += BLOCK as usize;
        }
        while j < b {
            add(j, &mut sum, &mut sq);
            j += 1;
        }
        (sum, sq)
    }

    /// Number of steps of data.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// True when there is no data.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// Write the row for origin `i` into `out` (length [`FeatureSpec::width`]).
    /// Requires `spec.warmup() <= i < len()`.
    pub fn row(&self, i: usize, out: &mut [f64]) {
        let spec = self.spec;
        debug_assert!(i >= spec.warmup() && i < self.y.len());
        debug_assert_eq!(out.len(), spec.width());
        let y = self.y;
        let s = self.inv_scale;
        let mut k = 0;
        out[k] = 1.0;
        k += 1;
        for lag in 0..spec.lags {
            out[k] = y[i - lag] * s;
            k += 1;
        }
        for &p in &spec.seasonal_periods {
            let from = i + 1 - p;
            for v in &y[from..from + spec.horizon] {
                out[k] = v * s;
                k += 1;
            }
        }
        for (w_idx, &w) in spec.rolling.iter().enumerate() {
            let (a, b) = (i + 1 - w, i + 1);
            let n = w as f64;
            let (sum, sq) = self.window_sums(a, b);
            let mean = sum / n;
            let var = (sq / n - mean * mean).max(0.0);
            out[k] = mean;
            out[k + 1] = var.sqrt();
            out[k + 2] = self.roll_max[w_idx][i] * s;
            k += 3;
        }
        let t = self.start + i as i64 * spec.step.secs();
        for (&(period, order), table) in spec.fourier.iter().zip(&self.fourier_tables) {
            let w = 2 * order;
            match table {
                Some(tab) => {
                    let ph = (t.rem_euclid(period) / spec.step.secs()) as usize;
                    out[k..k + w].copy_from_slice(&tab[ph * w..(ph + 1) * w]);
                }
                None => {
                    let mut v = Vec::with_capacity(w);
                    fourier_terms(t, period, order, &mut v);
                    out[k..k + w].copy_from_slice(&v);
                }
            }
            k += w;
        }
        if spec.events {
            let step = spec.step.secs();
            let (now, ahead) = match self.calendar {
                Some(c) => (
                    c.overlaps(t, t + step),
                    c.overlaps(t + step, t + (spec.horizon as i64 + 1) * step),
                ),
                None => (false, false),
            };
            out[k] = f64::from(u8::from(now));
            out[k + 1] = f64::from(u8::from(ahead));
            k += 2;
        }
        debug_assert_eq!(k, out.len());
    }
}

/// Append sin/cos of `j·2π·(t mod period)/period` for `j = 1..=order`.
fn fourier_terms(t: i64, period: i64, order: usize, out: &mut Vec<f64>) {
    let phase = TAU * (t.rem_euclid(period) as f64) / period as f64;
    for j in 1..=order {
        let (sin, cos) = (j as f64 * phase).sin_cos();
        out.push(sin);
        out.push(cos);
    }
}

/// `out[i] = max(y[i-w+1 ..= i])` (over what exists for `i < w-1`), by a
/// monotonic deque in O(n).
fn rolling_max(y: &[f64], w: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(y.len());
    let mut dq: VecDeque<usize> = VecDeque::new();
    for (i, &v) in y.iter().enumerate() {
        while dq.back().is_some_and(|&j| y[j] <= v) {
            dq.pop_back();
        }
        dq.push_back(i);
        if dq.front().is_some_and(|&j| j + w <= i) {
            dq.pop_front();
        }
        out.push(y[*dq.front().expect("just pushed")]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(s: &str) -> Step {
        s.parse().unwrap()
    }

    #[test]
    fn a_row_does_not_depend_on_where_the_series_starts() {
        let params = FeatureParams {
            lags: 3,
            seasons: vec![],
            rolling_secs: vec![60 * 45, 60 * 100],
            events: false,
        };
        let spec = params.check(step("1m"), 2).unwrap();
        let y: Vec<f64> = (0..600)
            .map(|i| (i as f64 * 0.37).sin() * 1e3 + 1e3 + (i % 7) as f64 * 0.1)
            .collect();
        let full = FeatureBuilder::new(&spec, &y, 6_000, 123.4, None);
        let mut a = vec![0.0; spec.width()];
        let mut b = vec![0.0; spec.width()];
        for cut in [1, 17, 200] {
            let later = FeatureBuilder::new(&spec, &y[cut..], 6_000 + 60 * cut as i64, 123.4, None);
            for i in (cut + spec.warmup())..y.len() {
                full.row(i, &mut a);
                later.row(i - cut, &mut b);
                assert_eq!(a, b, "row {i}, series cut at {cut}");
            }
        }
    }

    #[test]
    fn rolling_max_matches_a_naive_scan() {
        let y = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0, 3.0];
        let fast = rolling_max(&y, 3);
        for i in 0..y.len() {
            let lo = i.saturating_sub(2);
            let naive = y[lo..=i].iter().cloned().fold(f64::MIN, f64::max);
            assert_eq!(fast[i], naive, "at {i}");
        }
    }

    #[test]
    fn a_row_holds_lags_seasonal_window_and_rolling_stats_in_order() {
        let params = FeatureParams {
            lags: 2,
            seasons: vec![Season {
                period_secs: 4 * 60,
                fourier_order: 0,
                seasonal_lags: true,
            }],
            rolling_secs: vec![180],
            events: false,
        };
        let spec = params.check(step("1m"), 2).unwrap();
        assert_eq!(
            spec.names(),
            vec![
                "intercept",
                "lag_0",
                "lag_1",
                "season4_h1",
                "season4_h2",
                "roll3_mean",
                "roll3_std",
                "roll3_max"
            ]
        );
        assert_eq!(spec.warmup(), 3);
        let y: Vec<f64> = (0..10).map(|v| v as f64 * 2.0).collect();
        let b = FeatureBuilder::new(&spec, &y, 0, 2.0, None);
        let mut row = vec![0.0; spec.width()];
        b.row(5, &mut row);
        // y/2 = index. lags: 5, 4. Season window (P=4): indices 2, 3. Rolling over 3,4,5.
        let expect_std = (2.0f64 / 3.0).sqrt();
        assert_eq!(&row[..6], &[1.0, 5.0, 4.0, 2.0, 3.0, 4.0]);
        assert!((row[6] - expect_std).abs() < 1e-12);
        assert_eq!(row[7], 5.0);
    }

    #[test]
    fn seasons_that_do_not_fit_the_step_are_dropped_not_refused() {
        // Daily data: no time-of-day terms, the weekly window needs 7 >= horizon.
        let spec = FeatureParams::default().check(step("1d"), 3).unwrap();
        let names = spec.names();
        assert!(!names.iter().any(|n| n.ends_with("_86400s")));
        assert!(names.iter().any(|n| n == "season7_h3"));
        assert!(names.iter().any(|n| n.ends_with("_604800s")));
    }

    #[test]
    fn tabulated_calendar_terms_equal_computed_ones() {
        let params = FeatureParams {
            lags: 1,
            seasons: FeatureParams::default().seasons,
            rolling_secs: vec![],
            events: false,
        };
        let spec = params.check(step("5m"), 2).unwrap();
        let y = vec![1.0; 3000];
        let tabulated = FeatureBuilder::new(&spec, &y, 1_000_200, 1.0, None);
        let mut row = vec![0.0; spec.width()];
        tabulated.row(2_500, &mut row);
        let t = 1_000_200 + 2_500 * 300;
        let mut want = Vec::new();
        fourier_terms(t, DAY_SECS, 4, &mut want);
        fourier_terms(t, WEEK_SECS, 3, &mut want);
        let got = &row[row.len() - want.len()..];
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-9, "{g} vs {w}");
        }
    }

    #[test]
    fn event_flags_come_from_the_calendar() {
        let params = FeatureParams {
            lags: 1,
            seasons: vec![],
            rolling_secs: vec![],
            events: true,
        };
        let spec = params.check(step("1h"), 3).unwrap();
        let cal = Calendar::parse("1970-01-02\n").unwrap();
        let y = vec![1.0; 48];
        let b = FeatureBuilder::new(&spec, &y, 0, 1.0, Some(&cal));
        let mut row = vec![0.0; spec.width()];
        b.row(21, &mut row); // 21:00 on day 1: the event starts in 3 hours
        assert_eq!(&row[2..], &[0.0, 1.0]);
        b.row(24, &mut row); // midnight of the event day
        assert_eq!(&row[2..], &[1.0, 1.0]);
    }
}
