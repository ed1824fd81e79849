//! What the table readers share: turning cells into timestamps and metric
//! values, and collecting rows while checking that time moves forward.

use super::error::{IngestError, Location, ValueProblem};
use super::timestamp::{parse_timestamp, parse_with_pattern};
use super::{RawColumn, RawTable, TimeFormat, TimeRange};

/// Why a time cell was refused; turned into [`IngestError::BadTimestamp`] by
/// [`TableBuilder::time_error`].
pub(crate) struct TimeProblem {
    /// The text as read (numbers are formatted).
    pub text: String,
    /// Starts with "; " when not empty.
    pub hint: String,
}

/// Converts time cells under one [`TimeFormat`].
pub(crate) struct TimeParser<'a> {
    format: &'a TimeFormat,
    step_secs: i64,
}

const AUTO_HINT: &str = "; expected \"YYYY-MM-DD HH:MM:SS\", RFC 3339 or \"YYYY-MM-DD\" \
    (use --time-format with a strftime pattern for other layouts)";
const INTEGER_HINT: &str = "; this is a number, not a date: use --time-format unix \
    (seconds since 1970), unix-ms (milliseconds) or index (steps after 1970-01-01; \
    a column of small integers like 0..364 is an index, not seconds)";

impl<'a> TimeParser<'a> {
    pub fn new(format: &'a TimeFormat, step_secs: i64) -> Self {
        TimeParser { format, step_secs }
    }

    /// A text cell (CSV cell, JSON string, Parquet string).
    pub fn text(&self, s: &str) -> Result<i64, TimeProblem> {
        let s = s.trim();
        let fail = |hint: &str| TimeProblem {
            text: s.to_string(),
            hint: hint.to_string(),
        };
        if s.is_empty() {
            return Err(fail("; the timestamp is empty"));
        }
        match self.format {
            TimeFormat::Auto => parse_timestamp(s).ok_or_else(|| {
                let looks_numeric = s.parse::<f64>().is_ok_and(f64::is_finite);
                fail(if looks_numeric {
                    INTEGER_HINT
                } else {
                    AUTO_HINT
                })
            }),
            TimeFormat::Pattern(p) => parse_with_pattern(s, p)
                .ok_or_else(|| fail(&format!("; expected the pattern \"{p}\""))),
            TimeFormat::Unix | TimeFormat::UnixMillis | TimeFormat::Index => {
                match s.parse::<i64>() {
                    Ok(i) => self.integer(i),
                    Err(_) => match s.parse::<f64>() {
                        Ok(f) => self.float(f),
                        Err(_) => Err(fail(&self.integer_hint())),
                    },
                }
            }
        }
    }

    /// An integer cell (JSON number, Parquet integer).
    pub fn integer(&self, i: i64) -> Result<i64, TimeProblem> {
        let fail = |hint: String| TimeProblem {
            text: i.to_string(),
            hint,
        };
        match self.format {
            TimeFormat::Unix => Ok(i),
            TimeFormat::UnixMillis => Ok(i.div_euclid(1000)),
            TimeFormat::Index => i
                .checked_mul(self.step_secs)
                .ok_or_else(|| fail("; the index times the step overflows".to_string())),
            TimeFormat::Auto => Err(fail(INTEGER_HINT.to_string())),
            TimeFormat::Pattern(p) => Err(fail(format!(
                "; expected text in the pattern \"{p}\", found a number"
            ))),
        }
    }

    /// A floating-point cell: accepted for the numeric formats when it holds
    /// an integer (`1404172800.0`).
    pub fn float(&self, f: f64) -> Result<i64, TimeProblem> {
        // Exactly representable integers only (|f| < 2^53).
        if f.is_finite() && f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
            return self.integer(f as i64);
        }
        let hint = match self.format {
            TimeFormat::Unix | TimeFormat::UnixMillis | TimeFormat::Index => self.integer_hint(),
            _ => INTEGER_HINT.to_string(),
        };
        Err(TimeProblem {
            text: f.to_string(),
            hint,
        })
    }

    fn integer_hint(&self) -> String {
        let what = match self.format {
            TimeFormat::Unix => "whole seconds since 1970-01-01 (--time-format unix)",
            TimeFormat::UnixMillis => "whole milliseconds since 1970-01-01 (--time-format unix-ms)",
            _ => "a whole number of steps (--time-format index)",
        };
        format!("; expected {what}")
    }
}

/// The cell texts that mean "no value": empty, `NaN`, `null`, `NA`, `N/A`
/// (ASCII case ignored).
pub(crate) fn is_missing_text(s: &str) -> bool {
    s.is_empty()
        || ["nan", "null", "na", "n/a"]
            .iter()
            .any(|m| s.eq_ignore_ascii_case(m))
}

/// A metric cell as text: missing -> `Ok(NaN)`; a finite number >= 0 -> the
/// number (`-0` becomes `0`); anything else -> the problem.
pub(crate) fn parse_value_text(s: &str) -> Result<f64, ValueProblem> {
    let s = s.trim();
    if is_missing_text(s) {
        return Ok(f64::NAN);
    }
    match s.parse::<f64>() {
        Ok(v) => check_value(v),
        Err(_) => Err(ValueProblem::NotNumeric),
    }
}

/// A metric value already numeric: NaN is missing, negative and infinite
/// values are refused.
#[inline]
pub(crate) fn check_value(v: f64) -> Result<f64, ValueProblem> {
    if v.is_nan() {
        Ok(f64::NAN)
    } else if v.is_infinite() {
        Err(ValueProblem::Infinite)
    } else if v < 0.0 {
        Err(ValueProblem::Negative)
    } else {
        Ok(v + 0.0) // -0.0 + 0.0 == +0.0
    }
}

/// Collects rows into a [`RawTable`]: checks that timestamps strictly
/// increase and builds the errors that name the source, location and column.
pub(crate) struct TableBuilder<'a> {
    pub source: &'a str,
    pub time_column: &'a str,
    names: Vec<String>,
    timestamps: Vec<i64>,
    columns: Vec<Vec<f64>>,
    previous_at: Location,
}

impl<'a> TableBuilder<'a> {
    pub fn new(source: &'a str, time_column: &'a str, names: Vec<String>) -> Self {
        let columns = names.iter().map(|_| Vec::new()).collect();
        TableBuilder {
            source,
            time_column,
            names,
            timestamps: Vec::new(),
            columns,
            previous_at: Location::Line(0),
        }
    }

    /// Room for `rows` more rows.
    pub fn reserve(&mut self, rows: usize) {
        self.timestamps.reserve(rows);
        for c in &mut self.columns {
            c.reserve(rows);
        }
    }

    /// Rows started so far.
    pub fn rows(&self) -> usize {
        self.timestamps.len()
    }

    /// The metric names, in column order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Start a row at `at` with timestamp `t`; the caller then pushes exactly
    /// one value per column with [`TableBuilder::push_value`].
    #[inline]
    pub fn start_row(&mut self, at: Location, t: i64) -> Result<(), IngestError> {
        if let Some(&previous) = self.timestamps.last() {
            if t <= previous {
                return Err(self.not_increasing(at, previous, t));
            }
        }
        self.timestamps.push(t);
        self.previous_at = at;
        Ok(())
    }

    #[cold]
    fn not_increasing(&self, at: Location, previous: i64, current: i64) -> IngestError {
        IngestError::NotIncreasing {
            file: self.source.to_string(),
            at,
            column: self.time_column.to_string(),
            previous_at: self.previous_at,
            previous,
            current,
        }
    }

    #[inline]
    pub fn push_value(&mut self, column: usize, v: f64) {
        self.columns[column].push(v);
    }

    /// Error for a refused time cell.
    pub fn time_error(&self, at: Location, p: TimeProblem) -> IngestError {
        IngestError::BadTimestamp {
            file: self.source.to_string(),
            at,
            column: self.time_column.to_string(),
            text: p.text,
            hint: p.hint,
        }
    }

    /// Error for a refused metric value of column index `column`.
    pub fn value_error(
        &self,
        at: Location,
        column: usize,
        text: &str,
        problem: ValueProblem,
    ) -> IngestError {
        IngestError::BadValue {
            file: self.source.to_string(),
            at,
            column: self.names[column].clone(),
            text: text.to_string(),
            problem,
        }
    }

    /// The table; `NoRowsInRange` if no row was started and `range` is
    /// limited, else as [`TableBuilder::finish`].
    pub fn finish_in(self, range: &TimeRange) -> Result<RawTable, IngestError> {
        if self.timestamps.is_empty() && !range.is_all() {
            return Err(IngestError::NoRowsInRange {
                file: self.source.to_string(),
                range: *range,
            });
        }
        self.finish()
    }

    /// The table; `NoRows` if no row was started.
    pub fn finish(self) -> Result<RawTable, IngestError> {
        if self.timestamps.is_empty() {
            return Err(IngestError::NoRows {
                file: self.source.to_string(),
            });
        }
        debug_assert!(self
            .columns
            .iter()
            .all(|c| c.len() == self.timestamps.len()));
        let missing_values = self
            .columns
            .iter()
            .map(|c| c.iter().filter(|v| v.is_nan()).count())
            .sum();
        Ok(RawTable {
            source: self.source.to_string(),
            timestamps: self.timestamps,
            columns: self
                .names
                .into_iter()
                .zip(self.columns)
                .map(|(name, values)| RawColumn { name, values })
                .collect(),
            missing_values,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_markers_become_nan_and_bad_values_are_refused() {
        for s in ["", " ", "NaN", "nan", "NULL", "null", "NA", "n/a"] {
            assert!(parse_value_text(s).unwrap().is_nan(), "{s:?}");
        }
        assert_eq!(parse_value_text(" 12.5 "), Ok(12.5));
        assert_eq!(parse_value_text("1e3"), Ok(1000.0));
        assert!(parse_value_text("-0").unwrap().is_sign_positive());
        assert_eq!(parse_value_text("-3"), Err(ValueProblem::Negative));
        assert_eq!(parse_value_text("inf"), Err(ValueProblem::Infinite));
        assert_eq!(parse_value_text("-inf"), Err(ValueProblem::Infinite));
        assert_eq!(parse_value_text("12 users"), Err(ValueProblem::NotNumeric));
    }

    #[test]
    fn numeric_time_formats_convert_integers_and_integral_floats() {
        let unix = TimeFormat::Unix;
        let ms = TimeFormat::UnixMillis;
        let index = TimeFormat::Index;
        assert_eq!(
            TimeParser::new(&unix, 0).text("1404172800").ok(),
            Some(1_404_172_800)
        );
        assert_eq!(
            TimeParser::new(&unix, 0).text("1404172800.0").ok(),
            Some(1_404_172_800)
        );
        assert_eq!(TimeParser::new(&ms, 0).integer(-1).ok(), Some(-1));
        assert_eq!(TimeParser::new(&ms, 0).integer(1999).ok(), Some(1));
        assert_eq!(
            TimeParser::new(&index, 86_400).text("3").ok(),
            Some(3 * 86_400)
        );
        assert!(TimeParser::new(&index, 86_400).integer(i64::MAX).is_err());
        assert!(TimeParser::new(&unix, 0).text("1.5").is_err());
        assert!(TimeParser::new(&unix, 0).text("1998-04-30").is_err());
    }

    #[test]
    fn an_integer_in_auto_mode_suggests_the_numeric_time_formats() {
        let p = TimeParser::new(&TimeFormat::Auto, 60)
            .text("42")
            .err()
            .unwrap();
        assert!(p.hint.contains("--time-format unix"), "{}", p.hint);
        assert!(p.hint.contains("index"), "{}", p.hint);
    }
}
