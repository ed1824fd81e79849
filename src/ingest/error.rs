//! The one error type of ingest, [`IngestError`].
//!
//! Every message starts with the source (file or blob name) and, where it
//! applies, names the location (`line N` or `row N`, see [`Location`]) and the
//! column, then quotes the offending text.

use super::timestamp::format_timestamp;
use std::fmt;

/// Where in a source a problem is.
///
/// Text formats count physical lines from 1, so `line N` is what an editor
/// shows: in a CSV file the header is line 1 and the first data row is line 2;
/// in NDJSON and raw logs every line counts, blank ones included. Parquet has no
/// lines: `row N` is the 1-based data row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Location {
    /// 1-based physical line of a text source.
    Line(u64),
    /// 1-based data row of a binary (Parquet) source.
    Row(u64),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line(n) => write!(f, "line {n}"),
            Location::Row(n) => write!(f, "row {n}"),
        }
    }
}

/// What a column is read as, for messages about missing or mistyped columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnRole {
    /// The timestamp column ([`TableSpec::time_column`](super::TableSpec::time_column)).
    Time,
    /// A metric column ([`TableSpec::metrics`](super::TableSpec::metrics)).
    Metric,
}

impl fmt::Display for ColumnRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ColumnRole::Time => "time",
            ColumnRole::Metric => "metric",
        })
    }
}

/// Why a metric value was refused. Missing values (empty, null, NaN) are not
/// refused: they become `f64::NAN` and are counted in
/// [`RawTable::missing_values`](super::RawTable::missing_values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValueProblem {
    /// Not a number at all.
    NotNumeric,
    /// Below zero: a load cannot be negative.
    Negative,
    /// `inf` or `-inf`.
    Infinite,
}

impl fmt::Display for ValueProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueProblem::NotNumeric => "not a number",
            ValueProblem::Negative => "negative value (a load cannot be negative)",
            ValueProblem::Infinite => "infinite value",
        })
    }
}

/// Errors of reading observations. Each variant carries the source name and
/// whatever locates the problem; see the `Display` of each for the wording.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The reader failed (file system, network stream).
    #[error("{file}: read error: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },

    /// The bytes are not valid CSV or JSON (syntax, field count).
    #[error("{file}: {at}: malformed {syntax}: {message}")]
    Malformed {
        file: String,
        at: Location,
        /// "CSV" or "JSON".
        syntax: &'static str,
        message: String,
    },

    /// The Parquet reader refused the file (not Parquet, corrupt, unsupported).
    #[error("{file}: {}cannot read Parquet: {message}", at_prefix(.at))]
    Parquet {
        file: String,
        at: Option<Location>,
        message: String,
    },

    /// A requested column is not in the source.
    #[error("{file}: no {role} column '{column}'; {}", describe_available(.available, .suggestion.as_deref()))]
    MissingColumn {
        file: String,
        column: String,
        role: ColumnRole,
        /// The columns the source does have, in source order.
        available: Vec<String>,
        /// The closest existing name, if one is close.
        suggestion: Option<String>,
    },

    /// A column's type cannot be read in its role (Parquet: a boolean or nested
    /// metric, a binary time column, ...).
    #[error(
        "{file}: column '{column}' has type {found}, which cannot be read as the {role} column"
    )]
    UnsupportedType {
        file: String,
        column: String,
        role: ColumnRole,
        found: String,
    },

    /// A timestamp that does not parse in the chosen
    /// [`TimeFormat`](super::TimeFormat).
    #[error("{file}: {at}, column '{column}': cannot parse timestamp \"{text}\"{hint}")]
    BadTimestamp {
        file: String,
        at: Location,
        column: String,
        text: String,
        /// Starts with "; " when not empty: what was expected, or what to try.
        hint: String,
    },

    /// A timestamp equal to or earlier than the one before it.
    #[error(
        "{file}: {at}, column '{column}': timestamp {} is {} the previous row's {} ({previous_at}); timestamps must be strictly increasing",
        format_timestamp(*.current),
        if .current == .previous { "the same as" } else { "earlier than" },
        format_timestamp(*.previous)
    )]
    NotIncreasing {
        file: String,
        at: Location,
        column: String,
        previous_at: Location,
        /// Epoch seconds of the previous row.
        previous: i64,
        /// Epoch seconds of this row.
        current: i64,
    },

    /// A metric value that is present but unusable.
    #[error("{file}: {at}, column '{column}': {problem}: \"{text}\"")]
    BadValue {
        file: String,
        at: Location,
        column: String,
        text: String,
        problem: ValueProblem,
    },

    /// A record (CSV record, JSON line, log line) longer than the limit:
    /// reading stops there, so a file without newlines cannot fill memory.
    #[error(
        "{file}: {at}: a record longer than {limit} bytes (the limit of one {what}); \
         the input is probably not {what}s, or has no line breaks"
    )]
    RecordTooLong {
        file: String,
        /// Where the record starts.
        at: Location,
        limit: usize,
        /// "CSV record", "JSON line" or "log line".
        what: &'static str,
    },

    /// Long tables: more distinct series than the reader keeps apart.
    #[error(
        "{file}: {at}: more than {limit} distinct series (the limit); \
         narrow them with --filter or combine them with --aggregate"
    )]
    TooManySeries {
        file: String,
        at: Location,
        limit: usize,
    },

    /// Long tables: `--aggregate` would add up different metrics.
    #[error(
        "{file}: {at}: column '{column}' holds several values ({values}); \
         --aggregate would combine them: keep one with --filter {column}=VALUE"
    )]
    MixedSeries {
        file: String,
        at: Location,
        column: String,
        values: String,
    },

    /// The source has no data rows (or is empty).
    #[error("{file}: no data rows")]
    NoRows { file: String },

    /// The source has rows, but none in the time range asked for.
    #[error("{file}: no data rows in the time range {range}")]
    NoRowsInRange {
        file: String,
        range: super::TimeRange,
    },

    /// A step (interval or index step) that is zero or negative.
    #[error("{file}: the step must be a positive number of seconds, but is {step}")]
    InvalidStep { file: String, step: i64 },

    /// Raw logs: too many of the first lines are not in the workshop format.
    #[error(
        "{file}: {first_bad}: not the expected log format: \"{first_bad_text}\" \
         ({unknown} of the first {examined} lines are not \
         `timestamp<TAB>id<TAB>level<TAB>message` with a '... Session Start/End' \
         or '<Name>JobHandler.cs Job Start/End' message)"
    )]
    NotLogFormat {
        file: String,
        first_bad: Location,
        /// The first unrecognised line, shortened to at most 120 characters.
        first_bad_text: String,
        unknown: u64,
        examined: u64,
    },

    /// Raw logs: an event so far after the first one that the table would
    /// need more than `limit` intervals.
    #[error(
        "{file}: {at}: timestamp {} is too far after the first event {}: \
         more than {limit} intervals of {step_secs} s",
        format_timestamp(*.time),
        format_timestamp(*.first)
    )]
    TooManyIntervals {
        file: String,
        at: Location,
        first: i64,
        time: i64,
        step_secs: i64,
        limit: usize,
    },
}

fn at_prefix(at: &Option<Location>) -> String {
    at.map(|l| format!("{l}: ")).unwrap_or_default()
}

fn describe_available(available: &[String], suggestion: Option<&str>) -> String {
    let mut s = if available.is_empty() {
        "the source has no columns".to_string()
    } else {
        let names: Vec<String> = available.iter().map(|c| format!("'{c}'")).collect();
        format!("the columns are {}", names.join(", "))
    };
    if let Some(sug) = suggestion {
        s.push_str(&format!(" (did you mean '{sug}'?)"));
    }
    s
}

/// The existing name closest to `wanted`: equal ignoring case, or within a
/// small edit distance (about a third of the name). `None` if nothing is close.
pub(crate) fn closest<'a>(wanted: &str, available: &'a [String]) -> Option<&'a str> {
    let wanted_lc = wanted.to_lowercase();
    if let Some(c) = available.iter().find(|c| c.to_lowercase() == wanted_lc) {
        return Some(c);
    }
    let limit = (wanted.chars().count() / 3).max(1);
    available
        .iter()
        .map(|c| (edit_distance(&wanted_lc, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.as_str())
}

/// Optimal-string-alignment distance: insertions, deletions, substitutions
/// and swaps of two neighbours each cost 1.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        for j in 0..=b.len() {
            d[i * w + j] = if i == 0 || j == 0 {
                i + j
            } else {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut best = (d[(i - 1) * w + j - 1] + cost)
                    .min(d[(i - 1) * w + j] + 1)
                    .min(d[i * w + j - 1] + 1);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    best = best.min(d[(i - 2) * w + j - 2] + 1);
                }
                best
            };
        }
    }
    d[a.len() * w + b.len()]
}

/// A `MissingColumn` error with the suggestion filled in.
pub(crate) fn missing_column(
    file: &str,
    column: &str,
    role: ColumnRole,
    available: Vec<String>,
) -> IngestError {
    let suggestion = closest(column, &available).map(str::to_string);
    IngestError::MissingColumn {
        file: file.to_string(),
        column: column.to_string(),
        role,
        available,
        suggestion,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_near_miss_column_name_is_suggested() {
        let cols = vec!["timestamp".to_string(), "count".to_string()];
        assert_eq!(closest("timestmp", &cols), Some("timestamp"));
        assert_eq!(closest("COUNT", &cols), Some("count"));
        assert_eq!(closest("period", &cols), None);
    }

    #[test]
    fn a_missing_column_message_lists_the_columns_and_a_suggestion() {
        let e = missing_column(
            "x.csv",
            "coutn",
            ColumnRole::Metric,
            vec!["period".into(), "count".into()],
        );
        assert_eq!(
            e.to_string(),
            "x.csv: no metric column 'coutn'; the columns are 'period', 'count' (did you mean 'count'?)"
        );
    }
}
