//! What the controller hands the predictive planner, computed from a model
//! and the load up to `now`: the forecast from the newest step, the drift
//! signal (recent error against the model's evaluated error) and the
//! calibration of planned peaks against the peaks that followed.
//!
//! One definition for the live controller and the replay: both go through a
//! [`SignalTracker`] of the model in use. `scale` builds one at each run and
//! asks it once ([`prepare`]); the backtest keeps one per model and asks it
//! at every step, so each past origin is forecast once and the calibration
//! window moves by one pair a step. The answers are the same to the last bit
//! (features do not depend on where the series starts, and the calibration
//! window is the same multiset of pairs, kept sorted).
//!
//! Pure: no I/O, no clock (the caller passes `now` to the planner).

use super::calibration::{Calibration, CalibrationParams, CalibrationWindow};
use super::predictive::CheckedPolicy;
use crate::core::forecast::features::FeatureBuilder;
use crate::core::forecast::model::{levels_around, Forecast, ForecastModel, ModelError};
use crate::core::forecast::series::LoadSeries;
use serde::{Deserialize, Serialize};

/// Inputs of the planner derived from the model and the recent load.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prepared {
    /// The forecast made at the newest step of the series.
    pub forecast: Forecast,
    /// How much worse the model did at the lead time over the drift window
    /// than in its walk-forward evaluation (1 = as good as evaluated; see
    /// [`SignalTracker`]); `None` when no forecast in the window can be
    /// checked yet.
    pub error_ratio: Option<f64>,
    /// Lead-time forecasts checked against what happened, for the drift signal.
    pub drift_samples: usize,
    /// Planned peaks against the peaks that followed; `None` when calibration
    /// is off or there were too few pairs.
    #[serde(skip)]
    pub calibration: Option<Calibration>,
    /// Pairs the calibration was fitted on (0 when none).
    pub calibration_samples: usize,
}

/// Fewest lead-time errors the drift ratio is measured over (a window of
/// fewer steps is widened to this many).
pub const MIN_DRIFT_SAMPLES: usize = 12;

/// The drift and calibration signals at one step.
#[derive(Debug, Clone, PartialEq)]
pub struct Signals {
    pub error_ratio: Option<f64>,
    pub drift_samples: usize,
    pub calibration: Option<Calibration>,
    pub calibration_samples: usize,
}

/// What one past origin's forecast contributes: its point forecast at the
/// lead time (drift) and its planned peak (calibration).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Origin {
    lead_point: f64,
    planned: Option<f64>,
}

/// The signals of one model over one load series, step by step.
///
/// At step `i` (the newest known bucket), origins `j` whose outcome is known
/// (`j + lead <= i`) and that lie in the drift window (the last
/// `drift_steps` of them) give the drift signal: the model's mean absolute
/// error at the lead time over the window, relative to the last-value
/// forecast's over the same origins, divided by the same ratio in the
/// model's evaluation (level-free: absolute errors grow with the load, so a
/// model evaluated on a quiet period would otherwise look drifted at every
/// busy hour); without the evaluation's last-value error, the mean error over
/// the evaluated one. Those in the calibration window give pairs (planned
/// peak, highest load from `j` to `j + lead`) for [`Calibration`].
pub struct SignalTracker<'m> {
    model: &'m ForecastModel,
    policy: CheckedPolicy,
    lead: usize,
    drift_steps: usize,
    calibration: Option<CalibrationParams>,
    calib_steps: usize,
    eval_mae: Option<f64>,
    eval_last_value_mae: Option<f64>,
    /// Per origin, from `first` on: what its forecast contributes.
    origins: Vec<Option<Origin>>,
    first: usize,
    window: Option<CalibrationWindow>,
    /// The next origin the calibration window has not considered.
    calib_next: usize,
    /// The quantile levels the policy's planned peak interpolates between.
    levels: &'static [f64],
    /// Past origins forecast by [`SignalTracker::at`] (not handed in).
    forecasts: usize,
}

impl<'m> SignalTracker<'m> {
    /// The signals of `model` for `policy` (whose pool sets the lead time
    /// and whose calibration settings the window), over a drift window of
    /// `drift_secs` (0: no drift signal). `eval_last_value_mae` is the
    /// last-value baseline's MAE at the lead time in the model's evaluation.
    pub fn new(
        model: &'m ForecastModel,
        policy: &CheckedPolicy,
        drift_secs: i64,
        eval_last_value_mae: Option<f64>,
    ) -> Self {
        let step = model.spec.step();
        let lead = policy.pool().lead_steps(step).min(model.horizon()).max(1);
        let calibration = policy.calibration().copied();
        let positive = |v: f64| (v > 0.0 && v.is_finite()).then_some(v);
        SignalTracker {
            model,
            policy: policy.clone(),
            lead,
            // A ratio of mean errors needs a few of them: coarse data gets a
            // longer window than `drift_secs` rather than a ratio of two.
            drift_steps: match step.steps_ceil(drift_secs.max(0)) {
                0 => 0,
                k => k.max(MIN_DRIFT_SAMPLES),
            },
            calibration,
            calib_steps: calibration.map_or(0, |c| step.steps_ceil(c.window_secs)),
            eval_mae: model.eval_mae.get(lead - 1).copied().and_then(positive),
            eval_last_value_mae: eval_last_value_mae.and_then(positive),
            origins: Vec::new(),
            first: 0,
            window: calibration.map(|c| {
                CalibrationWindow::new(policy.pool().capacity(), c.quantile, c.min_samples)
            }),
            calib_next: 0,
            levels: levels_around(policy.quantile()),
            forecasts: 0,
        }
    }

    /// How many origins before the newest step the signals look back over.
    pub fn lookback(&self) -> usize {
        self.drift_steps.max(self.calib_steps) + self.lead
    }

    /// Hand in the forecast made at origin `j` (the backtest makes it
    /// anyway, to plan), so it is not made again when `j` enters a window.
    pub fn remember(&mut self, j: usize, f: &Forecast) {
        self.remember_origin(j, self.origin_of(f));
    }

    /// Hand in what origin `j` contributes, made earlier (by this replay, or
    /// kept by an earlier run).
    fn remember_origin(&mut self, j: usize, o: Origin) {
        self.slot(j).get_or_insert(o);
    }

    /// What kept results of past origins must match to be reused here.
    fn kept_key(&self, model_id: &str) -> String {
        // The pool's own lead too: the planned peak reads it, and a lead
        // under one step (none planned) has the same `lead` as one step.
        let pool_lead = self.policy.pool().lead_steps(self.model.spec.step());
        format!(
            "{model_id} lead={} pool_lead={pool_lead} q={:?} window={:?} levels={:?}",
            self.lead, self.policy.quantile, self.policy.window, self.levels
        )
    }

    fn origin_of(&self, f: &Forecast) -> Origin {
        Origin {
            lead_point: f.points.get(self.lead - 1).copied().unwrap_or(f64::NAN),
            planned: self.policy.planned_peak(f),
        }
    }

    fn slot(&mut self, j: usize) -> &mut Option<Origin> {
        if j < self.first {
            let more = self.first - j;
            self.origins.splice(0..0, std::iter::repeat_n(None, more));
            self.first = j;
        }
        let k = j - self.first;
        if k >= self.origins.len() {
            self.origins.resize(k + 1, None);
        }
        &mut self.origins[k]
    }

    /// The signals at step `i` over the load `y` (at least `i + 1` long),
    /// forecasting the origins not handed in yet from `b`, a feature builder
    /// over the *transformed* load that starts at `start`.
    pub fn at(&mut self, y: &[f64], i: usize, b: &FeatureBuilder<'_>, start: i64) -> Signals {
        let step = self.model.spec.step().secs();
        let lead = self.lead;
        let warm = self.model.spec.warmup();
        let n = i + 1;
        // Origins whose outcome (up to j + lead) is known: j + lead <= i.
        let last_known = n.checked_sub(1 + lead);
        let drift_from = warm.max(n.saturating_sub(self.drift_steps + lead));
        let calib_from = warm.max(n.saturating_sub(self.calib_steps + lead));
        let model = self.model;
        let levels = self.levels;
        let forecast = |j: usize| model.horizons_at(b, j, start + j as i64 * step, levels);
        let Some(last_known) = last_known.filter(|_| n > warm) else {
            return self.signals(0.0, 0.0, 0);
        };
        // Forecast what the windows need and is not known yet.
        let need_from = if self.drift_steps > 0 {
            drift_from.min(calib_from)
        } else {
            calib_from
        };
        let need_from = if self.calibration.is_some() || self.drift_steps > 0 {
            need_from
        } else {
            last_known + 1
        };
        for j in need_from..=last_known {
            if self.get(j).is_none() {
                let f = forecast(j);
                let o = self.origin_of(&f);
                *self.slot(j) = Some(o);
                self.forecasts += 1;
            }
        }
        // Drift: summed afresh over the window, in origin order.
        let (mut error_sum, mut naive_sum, mut samples) = (0.0, 0.0, 0);
        if self.drift_steps > 0 {
            for j in drift_from..=last_known {
                let p = self.get(j).map_or(f64::NAN, |o| o.lead_point);
                if p.is_finite() {
                    error_sum += (y[j + lead] - p).abs();
                    naive_sum += (y[j + lead] - y[j]).abs();
                    samples += 1;
                }
            }
        }
        // Calibration: the window moves on to [calib_from, last_known].
        if self.window.is_some() {
            let next = self.calib_next.max(calib_from);
            let planned: Vec<(usize, Option<f64>)> = (next..=last_known)
                .map(|j| (j, self.get(j).and_then(|o| o.planned)))
                .collect();
            if let Some(w) = self.window.as_mut() {
                w.drop_before(calib_from);
                w.push_all(planned.into_iter().filter_map(|(j, planned)| {
                    let actual = y[j..=j + lead].iter().copied().fold(0.0, f64::max);
                    planned.map(|p| (j, p, actual))
                }));
            }
            self.calib_next = last_known + 1;
        }
        // Keep only what a later step can still need.
        let keep_from = drift_from.min(calib_from);
        if keep_from > self.first && keep_from - self.first > 4096 {
            self.origins.drain(..keep_from - self.first);
            self.first = keep_from;
        }
        self.signals(error_sum, naive_sum, samples)
    }

    fn get(&self, j: usize) -> Option<Origin> {
        j.checked_sub(self.first)
            .and_then(|k| self.origins.get(k).copied().flatten())
    }

    fn signals(&self, error_sum: f64, naive_sum: f64, samples: usize) -> Signals {
        let positive = |v: f64| (v > 0.0 && v.is_finite()).then_some(v);
        let error_ratio = match (self.eval_mae, samples) {
            (Some(m), k) if k > 0 => match (self.eval_last_value_mae, positive(naive_sum)) {
                (Some(lv), Some(naive)) => Some((error_sum / naive) / (m / lv)),
                _ => Some(error_sum / k as f64 / m),
            },
            _ => None,
        };
        let calibration = self
            .window
            .as_ref()
            .and_then(CalibrationWindow::calibration);
        Signals {
            error_ratio,
            drift_samples: samples,
            calibration_samples: calibration.as_ref().map_or(0, Calibration::samples),
            calibration,
        }
    }
}

/// Steps before the newest one that [`prepare`] reads of the load: the
/// origins of the drift and calibration windows
/// ([`SignalTracker::lookback`], the oldest of them that many steps before
/// the newest) and, before the oldest, the history its features need (the
/// model's warm-up, which also covers the forecast from the newest step). A
/// series with at least this many steps before its newest one gives the same
/// forecast and signals as any longer one that ends at the same step.
pub fn history_steps(
    model: &ForecastModel,
    policy: &CheckedPolicy,
    drift_window_secs: i64,
) -> usize {
    let tracker = SignalTracker::new(model, policy, drift_window_secs, None);
    tracker.lookback() + model.spec.warmup() - 1
}

/// Forecast from the end of `series`, and the drift and calibration signals
/// over its recent part, for `policy` (whose pool sets the lead time):
/// what a live run hands the planner. `drift_window_secs` is how far back
/// lead-time forecasts are checked (0: no drift signal); the calibration
/// window comes from the policy; `eval_last_value_mae` is the last-value
/// baseline's MAE at the lead time in the model's evaluation.
pub fn prepare(
    model: &ForecastModel,
    series: &LoadSeries,
    policy: &CheckedPolicy,
    drift_window_secs: i64,
    eval_last_value_mae: Option<f64>,
) -> Result<Prepared, ModelError> {
    let past = Past {
        model_id: "",
        kept: None,
    };
    prepare_kept(
        model,
        series,
        policy,
        drift_window_secs,
        eval_last_value_mae,
        past,
    )
    .map(|k| k.prepared)
}

/// The past-origin results an earlier run kept, and the model version they
/// were computed with (see [`PastOrigins`]).
#[derive(Debug, Clone, Copy)]
pub struct Past<'a> {
    /// Identifies the model's version (its registry id): results of another
    /// version are never reused.
    pub model_id: &'a str,
    pub kept: Option<&'a PastOrigins>,
}

/// What [`prepare_kept`] returns: the planner's inputs, the past-origin
/// results to keep for the next run, and how many were reused.
#[derive(Debug, Clone)]
pub struct PreparedKept {
    pub prepared: Prepared,
    pub keep: PastOrigins,
    /// Past origins whose kept result was reused.
    pub reused: usize,
    /// Past origins forecast by this run.
    pub forecast: usize,
}

/// As [`prepare`], reusing the results of past origins that an earlier run
/// kept (`past`) and returning those to keep for the next run.
///
/// A kept result is reused only when it was made by the same model version
/// for the same lead time and planned-peak quantile, for an origin at the
/// same time, and the load its features read (the model's warm-up before the
/// origin, up to the origin) is the same to the bit (a 61-bit polynomial hash
/// of the values): a value revised since, a gap filled differently or
/// another model all mean the origin is forecast again. So the answer is the
/// same to the last bit as without `past` (tested), whatever was kept.
pub fn prepare_kept(
    model: &ForecastModel,
    series: &LoadSeries,
    policy: &CheckedPolicy,
    drift_window_secs: i64,
    eval_last_value_mae: Option<f64>,
    past: Past<'_>,
) -> Result<PreparedKept, ModelError> {
    // Checks the step, the metric and the length once, with clear errors.
    let forecast = model.forecast(series)?;
    let y = series
        .column(&model.metric)
        .map_err(|_| ModelError::MetricMismatch {
            model: model.metric.clone(),
            available: series.names().join(", "),
        })?;
    let ty: Vec<f64> = y.iter().map(|v| model.transform.forward(*v)).collect();
    let b = FeatureBuilder::new(
        &model.spec,
        &ty,
        series.start(),
        model.scale,
        Some(&model.calendar),
    );
    let mut tracker = SignalTracker::new(model, policy, drift_window_secs, eval_last_value_mae);
    let key = tracker.kept_key(past.model_id);
    let step = model.spec.step().secs();
    let n = y.len();
    let warm = model.spec.warmup();
    let lead = tracker.lead;
    // The origins this run looks at: from the oldest the windows reach to
    // the newest whose outcome is known.
    let from = warm.max(n.saturating_sub(tracker.lookback()));
    let to = n.checked_sub(1 + lead);
    let hashes = WindowHash::new(y, warm + 1);
    let mut reused = 0;
    if let (Some(kept), Some(to)) = (past.kept.filter(|k| k.key == key && k.step == step), to) {
        for (k, e) in kept.entries.iter().enumerate() {
            let t = kept.first + k as i64 * step;
            let Some(j) = series.index_of(t) else {
                continue;
            };
            if (from..=to).contains(&j) && hashes.ending_at(j) == e.inputs {
                tracker.remember_origin(j, e.origin);
                reused += 1;
            }
        }
    }
    let s = tracker.at(y, n - 1, &b, series.start());
    let mut keep = PastOrigins {
        key,
        step,
        first: series.time_at(from),
        entries: Vec::new(),
    };
    if let Some(to) = to {
        for j in from..=to {
            match tracker.get(j) {
                Some(origin) => keep.entries.push(KeptOrigin {
                    origin,
                    inputs: hashes.ending_at(j),
                }),
                None if keep.entries.is_empty() => keep.first += step,
                None => break,
            }
        }
    }
    Ok(PreparedKept {
        prepared: Prepared {
            forecast,
            error_ratio: s.error_ratio,
            drift_samples: s.drift_samples,
            calibration: s.calibration,
            calibration_samples: s.calibration_samples,
        },
        keep,
        reused,
        forecast: tracker.forecasts,
    })
}

/// Results of past origins that a live run keeps for the next one (in its
/// state file), so that each run forecasts only the origins that are new
/// since the last: the drift and calibration windows look back over about
/// 20,000 origins of one-minute data and move by one a minute.
#[derive(Debug, Clone, PartialEq)]
pub struct PastOrigins {
    /// Model version, lead time and planned-peak quantile they were made for.
    key: String,
    /// Step and time (Unix seconds) of the first origin.
    step: i64,
    first: i64,
    entries: Vec<KeptOrigin>,
}

#[derive(Debug, Clone, Copy)]
struct KeptOrigin {
    origin: Origin,
    /// Hash of the load the origin's features read.
    inputs: u64,
}

impl PartialEq for KeptOrigin {
    /// Bitwise: a result that is NaN equals itself.
    fn eq(&self, o: &Self) -> bool {
        self.to_bytes() == o.to_bytes()
    }
}

/// `planned` when there is no planned peak (a NaN no planned peak has: they
/// are finite).
const NO_PLANNED: u64 = u64::MAX;

impl KeptOrigin {
    const BYTES: usize = 24;

    fn to_bytes(self) -> [u8; Self::BYTES] {
        let mut out = [0; Self::BYTES];
        out[..8].copy_from_slice(&self.origin.lead_point.to_bits().to_le_bytes());
        let planned = self.origin.planned.map_or(NO_PLANNED, f64::to_bits);
        out[8..16].copy_from_slice(&planned.to_le_bytes());
        out[16..].copy_from_slice(&self.inputs.to_le_bytes());
        out
    }

    fn from_bytes(b: &[u8]) -> Self {
        let word = |k: usize| u64::from_le_bytes(b[k..k + 8].try_into().expect("8 bytes"));
        KeptOrigin {
            origin: Origin {
                lead_point: f64::from_bits(word(0)),
                planned: (word(8) != NO_PLANNED).then(|| f64::from_bits(word(8))),
            },
            inputs: word(16),
        }
    }
}

impl PastOrigins {
    /// Origins held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// As kept in a state file: the results as base64 of 24 little-endian bytes
/// per origin (lead-time point, planned peak, input hash), bit for bit.
#[derive(Serialize, Deserialize)]
struct PastOriginsFile {
    key: String,
    step: i64,
    first: i64,
    results: String,
}

impl Serialize for PastOrigins {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use base64::Engine as _;
        let mut bytes = Vec::with_capacity(self.entries.len() * KeptOrigin::BYTES);
        for e in &self.entries {
            bytes.extend_from_slice(&e.to_bytes());
        }
        PastOriginsFile {
            key: self.key.clone(),
            step: self.step,
            first: self.first,
            results: base64::engine::general_purpose::STANDARD.encode(bytes),
        }
        .serialize(ser)
    }
}

impl<'de> Deserialize<'de> for PastOrigins {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        use base64::Engine as _;
        let f = PastOriginsFile::deserialize(de)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(f.results.as_bytes())
            .map_err(serde::de::Error::custom)?;
        if bytes.len() % KeptOrigin::BYTES != 0 {
            return Err(serde::de::Error::custom(format!(
                "past-origin results of {} bytes: not a multiple of {}",
                bytes.len(),
                KeptOrigin::BYTES
            )));
        }
        Ok(PastOrigins {
            key: f.key,
            step: f.step,
            first: f.first,
            entries: bytes
                .chunks_exact(KeptOrigin::BYTES)
                .map(KeptOrigin::from_bytes)
                .collect(),
        })
    }
}

/// Hashes of every window of `len` values of a series, in O(1) each after
/// one pass: a polynomial hash modulo the Mersenne prime 2^61 - 1 over the
/// values' bits (mixed by SplitMix64 first). Two different windows collide
/// with probability about `len` / 2^61.
struct WindowHash {
    prefix: Vec<u64>,
    len: usize,
    /// BASE^len.
    shift: u64,
}

const MERSENNE61: u64 = (1 << 61) - 1;
const BASE: u64 = 0x1d8e_4e27_c47d_124f % MERSENNE61;

fn mul_mod(a: u64, b: u64) -> u64 {
    let r = a as u128 * b as u128;
    let s = (r as u64 & MERSENNE61) + (r >> 61) as u64;
    let s = if s >= MERSENNE61 { s - MERSENNE61 } else { s };
    if s >= MERSENNE61 {
        s - MERSENNE61
    } else {
        s
    }
}

fn mix(v: f64) -> u64 {
    // SplitMix64's finaliser.
    let mut z = v.to_bits().wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) % MERSENNE61
}

impl WindowHash {
    fn new(y: &[f64], len: usize) -> Self {
        let mut prefix = Vec::with_capacity(y.len() + 1);
        prefix.push(0);
        let mut h = 0;
        for &v in y {
            h = (mul_mod(h, BASE) + mix(v)) % MERSENNE61;
            prefix.push(h);
        }
        let shift = (0..len).fold(1, |p, _| mul_mod(p, BASE));
        WindowHash { prefix, len, shift }
    }

    /// The hash of the `len` values ending at `j` (inclusive); `j + 1 >= len`.
    fn ending_at(&self, j: usize) -> u64 {
        let (a, b) = (j + 1 - self.len, j + 1);
        (self.prefix[b] + MERSENNE61 - mul_mod(self.prefix[a], self.shift)) % MERSENNE61
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::forecast::model::{train_forecaster, ForecastParams};
    use crate::core::plan::{PoolParams, PredictiveParams};
    use crate::core::time::Step;

    /// A daily sine with a small trend, 1-minute steps, 20 days.
    fn series(days: usize, scale_last_hour: f64) -> LoadSeries {
        let n = days * 1440;
        let y: Vec<f64> = (0..n)
            .map(|i| {
                let day = (i % 1440) as f64 / 1440.0;
                let v = 1000.0
                    + 600.0 * (2.0 * std::f64::consts::PI * day).sin()
                    + (i % 7) as f64 * 5.0;
                if i >= n - 60 {
                    v * scale_last_hour
                } else {
                    v
                }
            })
            .collect();
        LoadSeries::new(
            0,
            Step::from_secs(60).unwrap(),
            vec!["load".into()],
            vec![y],
        )
        .unwrap()
    }

    fn policy() -> CheckedPolicy {
        let pool = PoolParams {
            capacity_per_node: 100.0,
            min_nodes: 1,
            max_nodes: 100,
            lead_secs: 600,
        }
        .check()
        .unwrap();
        PredictiveParams::default().check(&pool).unwrap()
    }

    fn model(s: &LoadSeries) -> ForecastModel {
        let params = ForecastParams::new(10).check(s.step()).unwrap();
        train_forecaster(&params, s, "load", None, &mut |_, _| {})
            .unwrap()
            .model
    }

    #[test]
    fn a_model_on_data_like_its_training_data_shows_no_drift_and_a_calibration() {
        let s = series(20, 1.0);
        let m = model(&s);
        let p = prepare(&m, &s, &policy(), 3600, None).unwrap();
        assert_eq!(p.forecast.origin, s.time_at(s.len() - 1));
        assert_eq!(p.drift_samples, 60);
        let r = p.error_ratio.unwrap();
        assert!(r < 3.0, "error ratio {r}");
        assert!(
            p.calibration.is_some() && p.calibration_samples > 1000,
            "{}",
            p.calibration_samples
        );
    }

    #[test]
    fn a_load_that_left_the_learned_pattern_shows_up_as_a_high_error_ratio() {
        let m = model(&series(20, 1.0));
        let shifted = series(20, 3.0);
        let calm = prepare(&m, &series(20, 1.0), &policy(), 3600, None)
            .unwrap()
            .error_ratio
            .unwrap();
        let drifted = prepare(&m, &shifted, &policy(), 3600, None)
            .unwrap()
            .error_ratio
            .unwrap();
        assert!(drifted > 5.0 * calm, "calm {calm}, drifted {drifted}");
    }

    #[test]
    fn the_history_the_signals_need_gives_what_the_whole_history_gives() {
        let m = model(&series(20, 1.0));
        let p = policy();
        let need = history_steps(&m, &p, 3600);
        // Lead 10, calibration 14 days of 1-minute steps, the weekly season.
        assert_eq!(need, 10 + 14 * 1440 + m.spec.warmup() - 1);
        let s = series(25, 1.2);
        assert!(s.len() > need + 1000);
        let whole = prepare(&m, &s, &p, 3600, Some(40.0)).unwrap();
        let recent = prepare(&m, &s.tail(need + 1), &p, 3600, Some(40.0)).unwrap();
        assert_eq!(recent, whole);
        assert!(whole.calibration.is_some() && whole.error_ratio.is_some());
        // One step fewer and the oldest calibration origin is lost.
        let short = prepare(&m, &s.tail(need), &p, 3600, Some(40.0)).unwrap();
        assert_ne!(short, whole);
    }

    #[test]
    fn too_little_recent_data_is_an_error_naming_what_is_needed() {
        let m = model(&series(20, 1.0));
        let short = series(2, 1.0);
        let e = prepare(&m, &short, &policy(), 3600, None).unwrap_err();
        assert!(matches!(e, ModelError::NotEnoughRecentData { .. }), "{e}");
    }

    /// The last `keep` steps of the load up to step `end` (exclusive), with
    /// `revise` added to the value at one step.
    fn window(y: &[f64], end: usize, keep: usize, revise: Option<(usize, f64)>) -> LoadSeries {
        let from = end - keep;
        let mut v = y[from..end].to_vec();
        if let Some((at, by)) = revise {
            v[at - from] += by;
        }
        LoadSeries::new(
            from as i64 * 60,
            Step::from_secs(60).unwrap(),
            vec!["load".into()],
            vec![v],
        )
        .unwrap()
    }

    /// A model, a policy and a load to run [`prepare_kept`] over minute by
    /// minute, `n` the first minute.
    struct Minutes {
        m: ForecastModel,
        p: CheckedPolicy,
        need: usize,
        y: Vec<f64>,
        n: usize,
    }

    impl Minutes {
        fn new() -> Self {
            let m = model(&series(20, 1.0));
            let p = policy();
            let need = history_steps(&m, &p, 3600) + 1;
            let s = series(25, 1.2);
            let y = s.column("load").unwrap().to_vec();
            let n = s.len() - 30;
            Minutes { m, p, need, y, n }
        }

        /// What a run at the end of minute `end` (exclusive) reads.
        fn at(&self, end: usize, revise: Option<(usize, f64)>) -> LoadSeries {
            window(&self.y, end, self.need, revise)
        }

        fn run(&self, w: &LoadSeries, id: &str, kept: Option<&PastOrigins>) -> PreparedKept {
            let past = Past { model_id: id, kept };
            prepare_kept(&self.m, w, &self.p, 3600, Some(40.0), past).unwrap()
        }

        fn afresh(&self, w: &LoadSeries) -> Prepared {
            prepare(&self.m, w, &self.p, 3600, Some(40.0)).unwrap()
        }
    }

    #[test]
    fn kept_past_origins_are_reused_and_give_the_same_answer_to_the_bit() {
        let t = Minutes::new();
        let first = t.run(&t.at(t.n, None), "v1", None);
        assert_eq!(first.reused, 0);
        assert_eq!(first.forecast, 14 * 1440);
        assert_eq!(first.keep.len(), first.forecast);
        // Kept in a state file and read back: bit for bit.
        let text = serde_json::to_string(&first.keep).unwrap();
        let kept: PastOrigins = serde_json::from_str(&text).unwrap();
        assert_eq!(kept, first.keep);

        // The next minute: one new origin; the oldest kept one is out of reach.
        let next = t.at(t.n + 1, None);
        let reused = t.run(&next, "v1", Some(&kept));
        assert_eq!(reused.forecast, 1);
        assert_eq!(reused.reused, kept.len() - 1);
        assert_eq!(reused.prepared, t.afresh(&next));
        assert_eq!(reused.keep, t.run(&next, "v1", None).keep);
        assert!(reused.prepared.calibration.is_some() && reused.prepared.error_ratio.is_some());

        // Ten minutes later, from what the first run kept.
        let later = t.at(t.n + 10, None);
        let r = t.run(&later, "v1", Some(&kept));
        assert_eq!((r.forecast, r.reused), (10, kept.len() - 10));
        assert_eq!(r.prepared, t.afresh(&later));

        // Another model version: nothing reused.
        let other = t.run(&next, "v2", Some(&kept));
        assert_eq!(other.reused, 0);
        assert_eq!(other.prepared, reused.prepared);
    }

    #[test]
    fn a_revised_value_makes_the_origins_that_read_it_forecast_again() {
        let t = Minutes::new();
        let first = t.run(&t.at(t.n, None), "v1", None);
        // A value 100 steps back, read by the last 100 known origins' features
        // (and by nothing older): it arrived late and was revised.
        let at = t.n - 100;
        let revised = t.at(t.n + 1, Some((at, 250.0)));
        let r = t.run(&revised, "v1", Some(&first.keep));
        let lead = 10;
        let reread = (at..t.n + 1 - lead).count();
        assert_eq!(r.forecast, reread);
        assert_eq!(r.reused, first.keep.len() - 1 - (reread - 1));
        assert_eq!(r.prepared, t.afresh(&revised));
        assert_ne!(r.prepared, t.afresh(&t.at(t.n + 1, None)));
    }
}
