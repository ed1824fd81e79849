//! [`LoadSeries`]: a regular, UTC, fixed-step series of one or more load
//! metrics, and [`resample`], which turns irregular observations into one
//! under an explicit aggregation and gap policy.

use crate::core::time::{rfc3339, Step};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A regular series: value `i` of every column belongs to the bucket
/// `[start + i*step, start + (i+1)*step)`. Values are finite and non-negative;
/// gaps were filled under an explicit [`GapPolicy`] (see [`ResampleReport`]).
#[derive(Debug, Clone, PartialEq)]
pub struct LoadSeries {
    start: i64,
    step: Step,
    names: Vec<String>,
    columns: Vec<Vec<f64>>,
}

/// Errors in building or using a series. Each carries the offending value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SeriesError {
    #[error("no observations to build a series from")]
    Empty,
    #[error("column '{name}' has {got} values but the series has {expected} timestamps")]
    Length {
        name: String,
        expected: usize,
        got: usize,
    },
    #[error("timestamps must be strictly increasing, but {next} follows {prev}")]
    Unsorted { prev: String, next: String },
    #[error("metric '{name}' has no value for {steps} consecutive steps from {from} to {to}, longer than the allowed gap of {max} steps (raise --max-gap or choose --gaps zero)")]
    GapTooLong {
        name: String,
        from: String,
        to: String,
        steps: usize,
        max: usize,
    },
    #[error("metric '{name}' has a gap from {from} to {to} and the gap policy is 'error'")]
    GapNotAllowed {
        name: String,
        from: String,
        to: String,
    },
    #[error("metric '{name}' has no value at all")]
    AllMissing { name: String },
    #[error("unknown metric '{name}'; the series has: {available}")]
    UnknownMetric { name: String, available: String },
    #[error("series step is {found} but {expected} is needed")]
    StepMismatch { expected: Step, found: Step },
    #[error("the next part starts at {next}, before the previous part ends at {prev_end}")]
    Overlap { prev_end: String, next: String },
}

impl LoadSeries {
    /// A series from complete, equal-length columns (no gaps).
    pub fn new(
        start: i64,
        step: Step,
        names: Vec<String>,
        columns: Vec<Vec<f64>>,
    ) -> Result<Self, SeriesError> {
        let len = columns.first().map(Vec::len).ok_or(SeriesError::Empty)?;
        if len == 0 {
            return Err(SeriesError::Empty);
        }
        for (name, col) in names.iter().zip(&columns) {
            if col.len() != len {
                return Err(SeriesError::Length {
                    name: name.clone(),
                    expected: len,
                    got: col.len(),
                });
            }
        }
        Ok(LoadSeries {
            start,
            step,
            names,
            columns,
        })
    }
    /// Start of the first bucket.
    pub fn start(&self) -> i64 {
        self.start
    }
    /// The fixed step.
    pub fn step(&self) -> Step {
        self.step
    }
    /// Number of steps.
    pub fn len(&self) -> usize {
        self.columns.first().map_or(0, Vec::len)
    }
    /// True when the series has no steps.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Start of the last bucket.
    pub fn end(&self) -> i64 {
        self.time_at(self.len().saturating_sub(1))
    }
    /// Start of bucket `i`.
    pub fn time_at(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step.secs()
    }
    /// The bucket that starts at `t`, if the series has one.
    pub fn index_of(&self, t: i64) -> Option<usize> {
        let d = t.checked_sub(self.start)?;
        let step = self.step.secs();
        (d >= 0 && d % step == 0)
            .then(|| (d / step) as usize)
            .filter(|&i| i < self.len())
    }
    /// Metric names, in column order.
    pub fn names(&self) -> &[String] {
        &self.names
    }
    /// The values of one metric, by name.
    pub fn column(&self, name: &str) -> Result<&[f64], SeriesError> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| self.columns[i].as_slice())
            .ok_or_else(|| SeriesError::UnknownMetric {
                name: name.to_string(),
                available: self.names.join(", "),
            })
    }
    /// The values of column `i`.
    pub fn column_at(&self, i: usize) -> &[f64] {
        &self.columns[i]
    }
    /// The last `n` steps (all of them if shorter).
    pub fn tail(&self, n: usize) -> LoadSeries {
        let skip = self.len().saturating_sub(n);
        LoadSeries {
            start: self.time_at(skip),
            step: self.step,
            names: self.names.clone(),
            columns: self.columns.iter().map(|c| c[skip..].to_vec()).collect(),
        }
    }
    /// The first `n` steps (all of them if shorter).
    pub fn head(&self, n: usize) -> LoadSeries {
        let n = n.min(self.len());
        LoadSeries {
            start: self.start,
            step: self.step,
            names: self.names.clone(),
            columns: self.columns.iter().map(|c| c[..n].to_vec()).collect(),
        }
    }
}

/// How values that fall into one bucket are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregation {
    /// Mean of the observations (rates and gauges keep their unit).
    Mean,
    /// Sum (event counts per bucket).
    Sum,
    /// Maximum (peak-sensitive sizing).
    Max,
    /// The last observation in the bucket.
    Last,
}

impl FromStr for Aggregation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mean" => Ok(Aggregation::Mean),
            "sum" => Ok(Aggregation::Sum),
            "max" => Ok(Aggregation::Max),
            "last" => Ok(Aggregation::Last),
            _ => Err(format!(
                "unknown aggregation '{s}': expected mean, sum, max or last"
            )),
        }
    }
}

impl fmt::Display for Aggregation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Aggregation::Mean => "mean",
            Aggregation::Sum => "sum",
            Aggregation::Max => "max",
            Aggregation::Last => "last",
        })
    }
}

/// What to do with buckets that have no observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GapFill {
    /// Straight line between the neighbours (the default: monitoring outages).
    Linear,
    /// Repeat the previous value.
    Previous,
    /// Zero (event counts: no event, no row).
    Zero,
    /// Any gap is an error.
    Error,
}

impl FromStr for GapFill {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "linear" => Ok(GapFill::Linear),
            "previous" => Ok(GapFill::Previous),
            "zero" => Ok(GapFill::Zero),
            "error" => Ok(GapFill::Error),
            _ => Err(format!(
                "unknown gap policy '{s}': expected linear, previous, zero or error"
            )),
        }
    }
}

impl fmt::Display for GapFill {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GapFill::Linear => "linear",
            GapFill::Previous => "previous",
            GapFill::Zero => "zero",
            GapFill::Error => "error",
        })
    }
}

/// The explicit policy for gaps: how to fill, and the longest gap (in steps)
/// that may be filled at all. Gaps longer than that are an error (except under
/// [`GapFill::Zero`], which is a statement about the data, not a guess).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GapPolicy {
    pub fill: GapFill,
    pub max_gap_steps: usize,
}

/// What resampling did, for the model card and the user.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResampleReport {
    /// Observations read.
    pub observations: usize,
    /// Observations whose value was missing (NaN) and so ignored.
    pub missing_values: usize,
    /// Buckets filled by the gap policy, per metric.
    pub filled_steps: Vec<(String, usize)>,
    /// The longest gap filled, in steps.
    pub longest_gap_steps: usize,
}

/// Turn observations (strictly increasing `timestamps`, one value per column
/// per timestamp, NaN for a missing value) into a regular series at `step`.
///
/// Buckets are aligned to multiples of `step` since the epoch. Several
/// observations in one bucket are combined with `agg`; buckets with none are
/// gaps and are filled under `gaps` (or rejected).
pub fn resample(
    timestamps: &[i64],
    names: &[String],
    columns: &[Vec<f64>],
    step: Step,
    agg: Aggregation,
    gaps: GapPolicy,
) -> Result<(LoadSeries, ResampleReport), SeriesError> {
    let n = timestamps.len();
    if n == 0 || names.is_empty() {
        return Err(SeriesError::Empty);
    }
    for (name, col) in names.iter().zip(columns) {
        if col.len() != n {
            return Err(SeriesError::Length {
                name: name.clone(),
                expected: n,
                got: col.len(),
            });
        }
    }
    for w in timestamps.windows(2) {
        if w[1] <= w[0] {
            return Err(SeriesError::Unsorted {
                prev: rfc3339(w[0]),
                next: rfc3339(w[1]),
            });
        }
    }
    let start = step.floor(timestamps[0]);
    let last = step.floor(timestamps[n - 1]);
    let len = ((last - start) / step.secs()) as usize + 1;
    let mut report = ResampleReport {
        observations: n,
        ..Default::default()
    };
    let mut out_cols = Vec::with_capacity(columns.len());
    for (name, col) in names.iter().zip(columns) {
        let mut acc = vec![f64::NAN; len];
        let mut count = vec![0u32; len];
        for (&t, &v) in timestamps.iter().zip(col) {
            if v.is_nan() {
                report.missing_values += 1;
                continue;
            }
            let b = ((step.floor(t) - start) / step.secs()) as usize;
            let a = &mut acc[b];
            let c = count[b];
            *a = match (agg, c) {
                (_, 0) => v,
                (Aggregation::Mean | Aggregation::Sum, _) => *a + v,
                (Aggregation::Max, _) => a.max(v),
                (Aggregation::Last, _) => v,
            };
            count[b] = c + 1;
        }
        if agg == Aggregation::Mean {
            for (a, &c) in acc.iter_mut().zip(&count) {
                if c > 1 {
                    *a /= c as f64;
                }
            }
        }
        let filled = fill_gaps(
            name,
            &mut acc,
            start,
            step,
            gaps,
            &mut report.longest_gap_steps,
        )?;
        report.filled_steps.push((name.clone(), filled));
        out_cols.push(acc);
    }
    let series = LoadSeries::new(start, step, names.to_vec(), out_cols)?;
    Ok((series, report))
}

/// Fill NaN runs in place; returns how many steps were filled.
fn fill_gaps(
    name: &str,
    v: &mut [f64],
    start: i64,
    step: Step,
    gaps: GapPolicy,
    longest: &mut usize,
) -> Result<usize, SeriesError> {
    let mut filled = 0;
    let mut i = 0;
    let n = v.len();
    if v.iter().all(|x| x.is_nan()) {
        return Err(SeriesError::AllMissing {
            name: name.to_string(),
        });
    }
    while i < n {
        if !v[i].is_nan() {
            i += 1;
            continue;
        }
        let a = i;
        while i < n && v[i].is_nan() {
            i += 1;
        }
        let b = i; // gap is [a, b)
        let steps = b - a;
        let from = rfc3339(start + a as i64 * step.secs());
        let to = rfc3339(start + (b as i64 - 1) * step.secs());
        if gaps.fill == GapFill::Error {
            return Err(SeriesError::GapNotAllowed {
                name: name.to_string(),
                from,
                to,
            });
        }
        if gaps.fill != GapFill::Zero && steps > gaps.max_gap_steps {
            return Err(SeriesError::GapTooLong {
                name: name.to_string(),
                from,
                to,
                steps,
                max: gaps.max_gap_steps,
            });
        }
        let before = a.checked_sub(1).map(|k| v[k]);
        let after = (b < n).then(|| v[b]);
        for (k, slot) in v.iter_mut().enumerate().take(b).skip(a) {
            *slot = match gaps.fill {
                GapFill::Zero => 0.0,
                GapFill::Previous => before.or(after).unwrap_or(0.0),
                GapFill::Linear => match (before, after) {
                    (Some(x), Some(y)) => x + (y - x) * ((k - a + 1) as f64) / ((steps + 1) as f64),
                    (Some(x), None) => x,
                    (None, Some(y)) => y,
                    (None, None) => 0.0,
                },
                GapFill::Error => unreachable!("handled above"),
            };
        }
        filled += steps;
        *longest = (*longest).max(steps);
    }
    Ok(filled)
}

/// Join series parts read from several files or blobs (in name order) into one
/// set of observations. Parts must not overlap in time.
pub fn check_parts_in_order(parts: &[(i64, i64)]) -> Result<(), SeriesError> {
    for w in parts.windows(2) {
        if w[1].0 <= w[0].1 {
            return Err(SeriesError::Overlap {
                prev_end: rfc3339(w[0].1),
                next: rfc3339(w[1].0),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(s: &str) -> Step {
        s.parse().unwrap()
    }
    fn names() -> Vec<String> {
        vec!["load".to_string()]
    }
    const LINEAR: GapPolicy = GapPolicy {
        fill: GapFill::Linear,
        max_gap_steps: 3,
    };

    #[test]
    fn one_minute_counts_sum_into_five_minute_buckets() {
        let ts: Vec<i64> = (0..10).map(|i| 60 * i).collect();
        let v = vec![(1..=10).map(f64::from).collect::<Vec<_>>()];
        let (s, r) = resample(&ts, &names(), &v, step("5m"), Aggregation::Sum, LINEAR).unwrap();
        assert_eq!(s.column("load").unwrap(), &[15.0, 40.0]);
        assert_eq!(r.observations, 10);
    }

    #[test]
    fn mean_aggregation_keeps_the_unit_of_a_rate() {
        let ts = vec![0, 60, 120];
        let v = vec![vec![3.0, 6.0, 9.0]];
        let (s, _) = resample(&ts, &names(), &v, step("5m"), Aggregation::Mean, LINEAR).unwrap();
        assert_eq!(s.column("load").unwrap(), &[6.0]);
    }

    #[test]
    fn a_short_gap_is_filled_on_a_straight_line_and_counted() {
        let ts = vec![0, 60, 240];
        let v = vec![vec![1.0, 2.0, 5.0]];
        let (s, r) = resample(&ts, &names(), &v, step("1m"), Aggregation::Mean, LINEAR).unwrap();
        assert_eq!(s.column("load").unwrap(), &[1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(r.filled_steps, vec![("load".to_string(), 2)]);
        assert_eq!(r.longest_gap_steps, 2);
    }

    #[test]
    fn a_gap_longer_than_allowed_is_an_error_naming_where_it_is() {
        let ts = vec![0, 600];
        let v = vec![vec![1.0, 2.0]];
        let err = resample(&ts, &names(), &v, step("1m"), Aggregation::Mean, LINEAR).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("1970-01-01T00:01:00Z") && msg.contains("9 consecutive"),
            "{msg}"
        );
    }

    #[test]
    fn zero_fill_accepts_any_gap_length() {
        let ts = vec![0, 600];
        let v = vec![vec![1.0, 2.0]];
        let gaps = GapPolicy {
            fill: GapFill::Zero,
            max_gap_steps: 0,
        };
        let (s, _) = resample(&ts, &names(), &v, step("1m"), Aggregation::Sum, gaps).unwrap();
        assert_eq!(s.len(), 11);
        assert_eq!(s.column("load").unwrap()[5], 0.0);
    }

    #[test]
    fn missing_values_become_gaps_and_are_counted() {
        let ts = vec![0, 60, 120];
        let v = vec![vec![1.0, f64::NAN, 3.0]];
        let (s, r) = resample(&ts, &names(), &v, step("1m"), Aggregation::Mean, LINEAR).unwrap();
        assert_eq!(s.column("load").unwrap(), &[1.0, 2.0, 3.0]);
        assert_eq!(r.missing_values, 1);
    }

    #[test]
    fn unsorted_or_duplicate_timestamps_are_rejected() {
        let v = vec![vec![1.0, 2.0]];
        assert!(matches!(
            resample(
                &[60, 60],
                &names(),
                &v,
                step("1m"),
                Aggregation::Mean,
                LINEAR
            ),
            Err(SeriesError::Unsorted { .. })
        ));
        assert!(resample(
            &[120, 60],
            &names(),
            &v,
            step("1m"),
            Aggregation::Mean,
            LINEAR
        )
        .is_err());
    }

    #[test]
    fn the_error_policy_refuses_any_gap() {
        let gaps = GapPolicy {
            fill: GapFill::Error,
            max_gap_steps: 100,
        };
        let err = resample(
            &[0, 120],
            &names(),
            &[vec![1.0, 2.0]],
            step("1m"),
            Aggregation::Mean,
            gaps,
        )
        .unwrap_err();
        assert!(matches!(err, SeriesError::GapNotAllowed { .. }));
    }

    #[test]
    fn parts_that_overlap_in_time_are_rejected() {
        assert!(check_parts_in_order(&[(0, 100), (160, 200)]).is_ok());
        assert!(check_parts_in_order(&[(0, 100), (100, 200)]).is_err());
    }
}
