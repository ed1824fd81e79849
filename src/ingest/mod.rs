//! Ingest: bytes in (CSV, Parquet, NDJSON, raw application logs),
//! observations out.
//!
//! - [`read_table`] reads a whole metric table: one time column and numeric
//!   metric columns, into a [`RawTable`] in row order.
//! - [`aggregate_logs`] streams raw logs (the workshop's tab-separated format)
//!   into a load table per interval: concurrent sessions and jobs, arrivals,
//!   completions, durations.
//! - [`read_job_trace`] reads a job trace (CSV, NDJSON or raw logs) into one
//!   record per job, for `backtest --mode jobs`.
//! - [`timestamp`] holds the fast timestamp parser and formatter.
//!
//! Timestamps are `i64` seconds since the Unix epoch, UTC. Values are `f64`
//! and never negative or infinite; a missing value is `f64::NAN` and counted
//! in [`RawTable::missing_values`]. Every error is an [`IngestError`] whose
//! message names the source and, where it applies, the line or row, the
//! column and the offending text. Nothing here panics on bad input.

mod csv_table;
mod error;
mod jobs;
mod logs;
mod ndjson;
mod parquet_table;
pub mod timestamp;
mod value;

pub use error::{ColumnRole, IngestError, Location, ValueProblem};
pub use jobs::{read_job_trace, JobTraceError, JobTraceStats, TraceRecord};
pub use logs::{aggregate_logs, LogOptions, LogStats, MAX_LINE_BYTES, MAX_LOG_INTERVALS};

use std::fmt;
use std::str::FromStr;

/// How to read and resample a source: the checked form of the reading
/// flags (built by [`crate::settings::data`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ReadOptions {
    /// `None`: from each file's extension.
    pub format: Option<Format>,
    /// The timestamp column, or `auto`.
    pub time_column: String,
    pub time_format: TimeFormat,
    /// `None`: the data's own step (5 minutes for raw logs).
    pub step: Option<crate::core::time::Step>,
    pub agg: crate::core::forecast::series::Aggregation,
    pub gaps: crate::core::forecast::series::GapPolicy,
    /// Gap length given as a duration; converted to steps once the step is known.
    pub max_gap_secs: i64,
}

/// Input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Format {
    /// Comma-separated values with a header row.
    Csv,
    /// Apache Parquet.
    Parquet,
    /// One JSON object per line.
    Ndjson,
    /// Raw application logs, aggregated by [`aggregate_logs`].
    Logs,
}

impl Format {
    /// The format of a file or blob name, from its extension (ASCII case
    /// ignored; a URL's `?query` or `#fragment` is ignored): `.csv` is
    /// [`Format::Csv`]; `.parquet`, `.pq` Parquet; `.ndjson`, `.jsonl`,
    /// `.json` NDJSON; `.txt`, `.log` Logs. `None` for anything else
    /// (including `.tsv`, which is not supported).
    ///
    /// ```
    /// use mlscaler::ingest::Format;
    /// assert_eq!(Format::from_name("data/x.CSV"), Some(Format::Csv));
    /// assert_eq!(Format::from_name("logs/2019-06-15.log"), Some(Format::Logs));
    /// assert_eq!(Format::from_name("x.xlsx"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Format> {
        let name = name.split(['?', '#']).next().unwrap_or(name);
        let file = name.rsplit(['/', '\\']).next().unwrap_or(name);
        let (_, ext) = file.rsplit_once('.')?;
        match ext.to_ascii_lowercase().as_str() {
            "csv" => Some(Format::Csv),
            "parquet" | "pq" => Some(Format::Parquet),
            "ndjson" | "jsonl" | "json" => Some(Format::Ndjson),
            "txt" | "log" => Some(Format::Logs),
            _ => None,
        }
    }

    /// The lowercase name, as accepted by `FromStr`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Parquet => "parquet",
            Format::Ndjson => "ndjson",
            Format::Logs => "logs",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `--format` or `--time-format` value that is not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseFormatError(String);

impl FromStr for Format {
    type Err = ParseFormatError;

    /// `csv`, `parquet`, `ndjson` or `logs` (ASCII case ignored).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" => Ok(Format::Csv),
            "parquet" => Ok(Format::Parquet),
            "ndjson" => Ok(Format::Ndjson),
            "logs" => Ok(Format::Logs),
            _ => Err(ParseFormatError(format!(
                "unknown format '{s}' (expected csv, parquet, ndjson or logs)"
            ))),
        }
    }
}

/// How the time column is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeFormat {
    /// Detect per value: "YYYY-MM-DD HH:MM:SS[.fff]",
    /// "YYYY-MM-DDTHH:MM:SS[.fff][Z|±HH:MM]", "YYYY-MM-DD" (midnight UTC); see
    /// [`timestamp::parse_timestamp`]. Integers are rejected, with an error
    /// that suggests `--time-format unix|unix-ms|index` (a column of small
    /// integers like 0..364 is an index, not seconds).
    Auto,
    /// Integer seconds since 1970-01-01T00:00:00Z.
    Unix,
    /// Integer milliseconds since 1970-01-01T00:00:00Z (rounded down to seconds).
    UnixMillis,
    /// Integer i means `i` steps after 1970-01-01T00:00:00Z (step given in
    /// [`TableSpec::step_secs`]).
    Index,
    /// chrono strftime pattern; naive times are UTC, a date alone is midnight UTC.
    Pattern(String),
}

impl FromStr for TimeFormat {
    type Err = ParseFormatError;

    /// `auto`, `unix`, `unix-ms`, `index`; anything else is a strftime
    /// pattern, refused if empty or if chrono does not understand it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "auto" => TimeFormat::Auto,
            "unix" => TimeFormat::Unix,
            "unix-ms" => TimeFormat::UnixMillis,
            "index" => TimeFormat::Index,
            pattern => {
                use chrono::format::{Item, StrftimeItems};
                if pattern.trim().is_empty()
                    || StrftimeItems::new(pattern).any(|i| matches!(i, Item::Error))
                {
                    return Err(ParseFormatError(format!(
                        "'{pattern}' is not auto, unix, unix-ms, index or a valid strftime \
                         pattern (e.g. \"%d/%m/%Y %H:%M\")"
                    )));
                }
                TimeFormat::Pattern(pattern.to_string())
            }
        })
    }
}

impl fmt::Display for TimeFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeFormat::Auto => "auto",
            TimeFormat::Unix => "unix",
            TimeFormat::UnixMillis => "unix-ms",
            TimeFormat::Index => "index",
            TimeFormat::Pattern(p) => p,
        })
    }
}

/// What to read from a metric table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    /// The time column, e.g. "timestamp" (exact name, case matters).
    pub time_column: String,
    /// Columns to read, in this order; EMPTY = every column except the time
    /// column, in source order.
    pub metrics: Vec<String>,
    /// How the time column is read.
    pub time_format: TimeFormat,
    /// Seconds per index step; only used by [`TimeFormat::Index`] (and as the
    /// interval of [`Format::Logs`] in [`read_table`]).
    pub step_secs: i64,
}

/// Observations as read, in row order. Timestamps are epoch seconds UTC.
#[derive(Debug, Clone, PartialEq)]
pub struct RawTable {
    /// The source name given to the reader.
    pub source: String,
    /// Strictly increasing.
    pub timestamps: Vec<i64>,
    /// Each as long as `timestamps`.
    pub columns: Vec<RawColumn>,
    /// Values that were missing (empty cell, null, "NaN", "nan"), kept as
    /// f64::NAN in `values`. Counted per table.
    pub missing_values: usize,
}

/// One metric column of a [`RawTable`].
#[derive(Debug, Clone, PartialEq)]
pub struct RawColumn {
    pub name: String,
    /// Finite and >= 0, or NaN for a missing value.
    pub values: Vec<f64>,
}

impl RawTable {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.timestamps.len()
    }

    /// True if there are no rows (never for a table returned by this module).
    pub fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }

    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&RawColumn> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// Read a whole metric table (CSV with header, NDJSON one object per line, or
/// Parquet) from `bytes`; `source` names it in errors and in the result.
///
/// Contract:
/// - the time column and every requested metric must exist, else
///   [`IngestError::MissingColumn`] names the column and lists those that do;
/// - every timestamp must parse under `spec.time_format`
///   ([`IngestError::BadTimestamp`]) and be later than the one before
///   ([`IngestError::NotIncreasing`], naming both times);
/// - a metric value that is empty, null or NaN (also "null", "NA", "N/A" as
///   text) becomes NaN and is counted in [`RawTable::missing_values`]; a
///   negative or infinite value, or text that is not a number, is an
///   [`IngestError::BadValue`];
/// - no data rows is [`IngestError::NoRows`].
///
/// Errors are located as `line N` in CSV (the header is line 1) and NDJSON,
/// and as `row N` (1-based data row) in Parquet.
///
/// Per format:
/// - CSV: comma-separated, a header row, the same number of fields on every
///   row, cells trimmed, a UTF-8 byte-order mark ignored;
/// - NDJSON: blank lines skipped; the first object's keys are the columns;
///   times are strings or numbers, values numbers or null (numeric strings
///   are accepted too); a later object without a metric key has a missing
///   value there;
/// - Parquet: top-level columns; the time column is a string, a timestamp
///   (millis, micros or nanos; INT96), a date, or an integer read per
///   `time_format`; metrics any numeric type (integers, floats, decimals);
/// - Logs: the input is aggregated with [`aggregate_logs`] at
///   `spec.step_secs` with default options; `time_column` and `time_format`
///   are ignored, `metrics` selects columns of the aggregate.
pub fn read_table(
    source: &str,
    bytes: &[u8],
    format: Format,
    spec: &TableSpec,
) -> Result<RawTable, IngestError> {
    if spec.time_format == TimeFormat::Index && spec.step_secs <= 0 {
        return Err(IngestError::InvalidStep {
            file: source.to_string(),
            step: spec.step_secs,
        });
    }
    match format {
        Format::Csv => csv_table::read(source, bytes, spec),
        Format::Ndjson => ndjson::read(source, bytes, spec),
        Format::Parquet => parquet_table::read(source, bytes, spec),
        Format::Logs => {
            let (mut table, _) =
                aggregate_logs(source, bytes, spec.step_secs, &LogOptions::default())?;
            if !spec.metrics.is_empty() {
                let available: Vec<String> = table.columns.iter().map(|c| c.name.clone()).collect();
                let mut picked = Vec::with_capacity(spec.metrics.len());
                for m in &spec.metrics {
                    let i = available.iter().position(|c| c == m).ok_or_else(|| {
                        error::missing_column(source, m, ColumnRole::Metric, available.clone())
                    })?;
                    picked.push(table.columns[i].clone());
                }
                table.columns = picked;
                table.missing_values = table
                    .columns
                    .iter()
                    .map(|c| c.values.iter().filter(|v| v.is_nan()).count())
                    .sum();
            }
            Ok(table)
        }
    }
}

/// The top-level column names of a Parquet file, in schema order (to pick a
/// time column before reading).
pub fn parquet_columns(source: &str, bytes: &[u8]) -> Result<Vec<String>, IngestError> {
    parquet_table::columns(source, bytes)
}

/// The header names of a CSV file, trimmed, in order.
pub fn csv_columns(source: &str, bytes: &[u8]) -> Result<Vec<String>, IngestError> {
    csv_table::header(source, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_follow_the_extension() {
        for (name, f) in [
            ("a.csv", Some(Format::Csv)),
            ("dir.v2/a.CSV", Some(Format::Csv)),
            ("a.parquet", Some(Format::Parquet)),
            ("a.pq", Some(Format::Parquet)),
            ("a.ndjson", Some(Format::Ndjson)),
            ("a.jsonl", Some(Format::Ndjson)),
            ("a.json", Some(Format::Ndjson)),
            ("a.txt", Some(Format::Logs)),
            ("a.log", Some(Format::Logs)),
            (
                "https://acct.blob.core.windows.net/c/a.csv?sv=1&sig=x",
                Some(Format::Csv),
            ),
            ("a.tsv", None),
            ("dir.csv/readme", None),
            ("csv", None),
        ] {
            assert_eq!(Format::from_name(name), f, "{name}");
        }
    }

    #[test]
    fn format_names_parse_and_unknown_ones_say_what_is_expected() {
        for f in [Format::Csv, Format::Parquet, Format::Ndjson, Format::Logs] {
            assert_eq!(f.to_string().parse::<Format>(), Ok(f));
        }
        let e = "xlsx".parse::<Format>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown format 'xlsx' (expected csv, parquet, ndjson or logs)"
        );
    }

    #[test]
    fn time_formats_parse_and_bad_patterns_are_refused() {
        assert_eq!("auto".parse(), Ok(TimeFormat::Auto));
        assert_eq!("unix".parse(), Ok(TimeFormat::Unix));
        assert_eq!("unix-ms".parse(), Ok(TimeFormat::UnixMillis));
        assert_eq!("index".parse(), Ok(TimeFormat::Index));
        assert_eq!(
            "%d/%m/%Y %H:%M".parse(),
            Ok(TimeFormat::Pattern("%d/%m/%Y %H:%M".into()))
        );
        assert!("".parse::<TimeFormat>().is_err());
        assert!("%Q".parse::<TimeFormat>().is_err());
    }

    #[test]
    fn an_index_time_format_needs_a_positive_step() {
        let spec = TableSpec {
            time_column: "day".into(),
            metrics: vec![],
            time_format: TimeFormat::Index,
            step_secs: 0,
        };
        let e = read_table("d.csv", b"day,v\n0,1\n", Format::Csv, &spec).unwrap_err();
        assert_eq!(
            e.to_string(),
            "d.csv: the step must be a positive number of seconds, but is 0"
        );
    }

    #[test]
    fn the_bundled_csv_files_read_without_errors() {
        let spec = |time: &str, tf: TimeFormat| TableSpec {
            time_column: time.into(),
            metrics: vec![],
            time_format: tf,
            step_secs: 86_400,
        };
        let wc = include_bytes!("../../data/worldcup98_requests_per_minute.csv");
        let t = read_table("wc.csv", wc, Format::Csv, &spec("period", TimeFormat::Auto)).unwrap();
        assert_eq!(t.len(), 125_300);
        assert_eq!(
            timestamp::format_timestamp(t.timestamps[0]),
            "1998-04-30T21:30:00Z"
        );
        assert_eq!(t.columns[0].name, "count");
        let daily = include_bytes!("../../data/agilethought_log_data_daily.csv");
        let t = read_table(
            "daily.csv",
            daily,
            Format::Csv,
            &spec("day", TimeFormat::Index),
        )
        .unwrap();
        assert_eq!(t.len(), 365);
        assert_eq!(t.columns.len(), 4);
        assert_eq!(t.timestamps[364], 364 * 86_400);
    }

    #[test]
    fn logs_through_read_table_select_metrics_by_name() {
        let text = "2019-06-15 01:01:07\tid-1\tINFO\tEnd User Session Start\t\t\n\
                    2019-06-15 01:03:07\tid-1\tINFO\tEnd User Session End\t\t\n";
        let mut spec = TableSpec {
            time_column: String::new(),
            metrics: vec!["completions".into(), "sessions".into()],
            time_format: TimeFormat::Auto,
            step_secs: 300,
        };
        let t = read_table("l.txt", text.as_bytes(), Format::Logs, &spec).unwrap();
        assert_eq!(t.columns.len(), 2);
        assert_eq!(t.columns[0].values, vec![1.0]);
        assert!((t.columns[1].values[0] - 120.0 / 300.0).abs() < 1e-12);
        assert_eq!(t.missing_values, 0);
        spec.metrics = vec!["session".into()];
        let e = read_table("l.txt", text.as_bytes(), Format::Logs, &spec).unwrap_err();
        assert!(e.to_string().contains("did you mean 'sessions'?"), "{e}");
    }
}
