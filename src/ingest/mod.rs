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
//! - [`LongTable`] reads long tables (one row per time, series and value):
//!   Azure Monitor metric archives, Log Analytics data export, and long CSV /
//!   NDJSON, with filters, per-bucket combination and `--aggregate` across
//!   series.
//! - [`partition_span`] reads the time span of a file or blob from Azure's
//!   hourly partition names, so callers skip what a [`TimeRange`] excludes.
//! - [`timestamp`] holds the fast timestamp parser and formatter.
//!
//! Every reader streams and enforces the record limits of [`limits`]: a
//! file without newlines fails fast with [`IngestError::RecordTooLong`]
//! naming the file, the line and the limit, in bounded memory.
//!
//! Timestamps are `i64` seconds since the Unix epoch, UTC. Values are `f64`
//! and never negative or infinite; a missing value is `f64::NAN` and counted
//! in [`RawTable::missing_values`]. Every error is an [`IngestError`] whose
//! message names the source and, where it applies, the line or row, the
//! column and the offending text. Nothing here panics on bad input.

mod csv_table;
mod error;
mod jobs;
pub mod limits;
mod logs;
mod long;
mod long_parquet;
mod ndjson;
mod parquet_table;
mod polars_scan;
pub mod timestamp;
mod value;
mod wide_parquet;

pub use error::{ColumnRole, IngestError, Location, ValueProblem};
pub use jobs::{read_job_trace, JobTraceError, JobTraceStats, TraceRecord};
pub use logs::{aggregate_logs, LogOptions, LogStats, MAX_LINE_BYTES, MAX_LOG_INTERVALS};
pub use long::{Combine, Filter, LongSpec, LongStats, LongTable, MAX_BUCKETS, MAX_SERIES};
pub use long_parquet::ParquetPart;

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
    /// The first second wanted (epoch seconds UTC, inclusive); `None`: from
    /// the start of the data. Parts, row groups and rows before it are not
    /// read. `--since`, or what the command needs (`scale`: its recent window).
    pub since: Option<i64>,
    /// The last second wanted (inclusive); `None`: to the end. Reading stops
    /// after it (parts that start more than [`PARTITION_LATE_SECS`] after it
    /// are not opened).
    pub until: Option<i64>,
    /// Long tables: keep rows whose column has the value (`--filter`).
    pub filters: Vec<Filter>,
    /// Long tables: the columns that tell series apart (`--series-column`).
    pub series_columns: Vec<String>,
    /// Long tables: the numeric column (`--value-column`, or `--field` for
    /// an Azure Monitor metric archive: average, total, maximum, minimum, count).
    pub value_column: Option<String>,
    /// Long tables: combine series into one column per step (`--aggregate`).
    pub aggregate: Option<Combine>,
}

impl Default for ReadOptions {
    /// The flags' defaults: format from the names, time column auto, mean,
    /// linear gaps up to 1 h, the whole time range, a wide table.
    fn default() -> Self {
        use crate::core::forecast::series::{Aggregation, GapFill, GapPolicy};
        ReadOptions {
            format: None,
            time_column: "auto".into(),
            time_format: TimeFormat::Auto,
            step: None,
            agg: Aggregation::Mean,
            gaps: GapPolicy {
                fill: GapFill::Linear,
                max_gap_steps: 0,
            },
            max_gap_secs: 3_600,
            since: None,
            until: None,
            filters: Vec::new(),
            series_columns: Vec::new(),
            value_column: None,
            aggregate: None,
        }
    }
}

impl ReadOptions {
    /// `since` and `until` as a [`TimeRange`].
    pub fn range(&self) -> TimeRange {
        TimeRange {
            since: self.since,
            until: self.until,
        }
    }

    /// True when the input is read as a long table: `--format azure-monitor`
    /// or any of `--filter`, `--series-column`, `--value-column`, `--aggregate`.
    pub fn is_long(&self, format: Format) -> bool {
        format == Format::AzureMonitor
            || !self.filters.is_empty()
            || !self.series_columns.is_empty()
            || self.value_column.is_some()
            || self.aggregate.is_some()
    }
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
    /// Azure Monitor's own JSON lines: Diagnostic-settings metric archives
    /// (`insights-metrics-pt1m/.../PT1H.json`) and Log Analytics data export
    /// (`am-<table>/.../PT05M.json`), read as a long table ([`LongTable`]).
    AzureMonitor,
}

impl Format {
    /// The format of a file or blob name, from its extension (ASCII case
    /// ignored; a URL's `?query` or `#fragment` is ignored): `.csv` is
    /// [`Format::Csv`]; `.parquet`, `.pq` Parquet; `.ndjson`, `.jsonl`,
    /// `.json` NDJSON, except Azure's `PT1H.json` and `PT05M[_N].json`
    /// blobs, which are [`Format::AzureMonitor`]; `.txt`, `.log` Logs. `None`
    /// for anything else (including `.tsv`, which is not supported).
    ///
    /// ```
    /// use mlscaler::ingest::Format;
    /// assert_eq!(Format::from_name("data/x.CSV"), Some(Format::Csv));
    /// assert_eq!(Format::from_name("logs/2019-06-15.log"), Some(Format::Logs));
    /// assert_eq!(Format::from_name("x.xlsx"), None);
    /// assert_eq!(
    ///     Format::from_name("resourceId=/SUBSCRIPTIONS/S/y=2026/m=11/d=30/h=12/m=00/PT1H.json"),
    ///     Some(Format::AzureMonitor)
    /// );
    /// ```
    pub fn from_name(name: &str) -> Option<Format> {
        let name = name.split(['?', '#']).next().unwrap_or(name);
        let file = name.rsplit(['/', '\\']).next().unwrap_or(name);
        let (stem, ext) = file.rsplit_once('.')?;
        match ext.to_ascii_lowercase().as_str() {
            "csv" => Some(Format::Csv),
            "parquet" | "pq" => Some(Format::Parquet),
            "json" if stem == "PT1H" || stem.starts_with("PT05M") => Some(Format::AzureMonitor),
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
            Format::AzureMonitor => "azure-monitor",
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

    /// `csv`, `parquet`, `ndjson`, `logs` or `azure-monitor` (ASCII case ignored).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" => Ok(Format::Csv),
            "parquet" => Ok(Format::Parquet),
            "ndjson" => Ok(Format::Ndjson),
            "logs" => Ok(Format::Logs),
            "azure-monitor" => Ok(Format::AzureMonitor),
            _ => Err(ParseFormatError(format!(
                "unknown format '{s}' (expected csv, parquet, ndjson, logs or azure-monitor)"
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

/// The time range a command needs, in epoch seconds UTC, both ends
/// inclusive; `None` is open. Readers skip rows outside it, stop at the first
/// row after `until` (rows are in time order), skip Parquet row groups whose
/// time statistics lie outside it, and callers skip files and blobs whose
/// partition (`.../y=YYYY/m=MM/d=DD/h=HH/...`, see [`partition_span`]) lies
/// outside it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TimeRange {
    /// The first second wanted.
    pub since: Option<i64>,
    /// The last second wanted.
    pub until: Option<i64>,
}

impl TimeRange {
    /// Every time.
    pub const ALL: TimeRange = TimeRange {
        since: None,
        until: None,
    };

    /// True if neither end is set.
    pub fn is_all(&self) -> bool {
        self.since.is_none() && self.until.is_none()
    }

    /// True if `t` is in the range.
    #[inline]
    pub fn contains(&self, t: i64) -> bool {
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t <= u)
    }

    /// True if `t` is after the range (so, in time-ordered input, every
    /// later row is too).
    #[inline]
    pub fn is_after(&self, t: i64) -> bool {
        self.until.is_some_and(|u| t > u)
    }

    /// True if some second of `[first, last]` is in the range.
    pub fn overlaps(&self, first: i64, last: i64) -> bool {
        self.since.is_none_or(|s| last >= s) && self.until.is_none_or(|u| first <= u)
    }
}

impl fmt::Display for TimeRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let end = |t: Option<i64>| t.map_or_else(|| "...".to_string(), timestamp::format_timestamp);
        write!(f, "{} .. {}", end(self.since), end(self.until))
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

    /// Drop the rows outside `range` (and recount the missing values).
    pub fn keep_range(&mut self, range: &TimeRange) {
        if range.is_all() {
            return;
        }
        let keep: Vec<bool> = self.timestamps.iter().map(|&t| range.contains(t)).collect();
        let mut k = keep.iter();
        self.timestamps.retain(|_| *k.next().unwrap_or(&false));
        for c in &mut self.columns {
            let mut k = keep.iter();
            c.values.retain(|_| *k.next().unwrap_or(&false));
        }
        self.missing_values = self
            .columns
            .iter()
            .map(|c| c.values.iter().filter(|v| v.is_nan()).count())
            .sum();
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
        Format::AzureMonitor => {
            let mut t = LongTable::new(azure_monitor_spec(spec), TimeRange::ALL);
            t.read_json_lines(source, bytes)?;
            t.finish(source)
        }
        Format::Logs => {
            let (table, _) = aggregate_logs(source, bytes, spec.step_secs, &LogOptions::default())?;
            select_metrics(source, table, spec)
        }
    }
}

/// Read a metric table from a stream (CSV, NDJSON) or a file (Parquet,
/// which needs random access: pass a [`std::fs::File`]), keeping the rows in
/// `range`. Same contract as [`read_table`], plus:
///
/// - memory is the table, never the input: text is read record by record,
///   Parquet column chunk by column chunk;
/// - a CSV record or JSON line longer than [`limits::MAX_RECORD_BYTES`]
///   fails at once with [`IngestError::RecordTooLong`];
/// - rows outside `range` are skipped (Parquet: whole row groups, from their
///   statistics), reading stops at the first row after `range.until`, and
///   no row in the range is [`IngestError::NoRowsInRange`].
pub fn read_table_from(
    source: &str,
    input: TableInput<'_>,
    format: Format,
    spec: &TableSpec,
    range: &TimeRange,
) -> Result<RawTable, IngestError> {
    if spec.time_format == TimeFormat::Index && spec.step_secs <= 0 {
        return Err(IngestError::InvalidStep {
            file: source.to_string(),
            step: spec.step_secs,
        });
    }
    match (format, input) {
        (Format::Parquet, TableInput::File(f)) => {
            parquet_table::read_from(source, parquet_table::WideInput::File(f), spec, range)
        }
        (Format::Parquet, TableInput::Stream(mut r)) => {
            // No random access: buffer it, within the declared limits.
            let mut bytes = Vec::new();
            r.read_to_end(&mut bytes).map_err(|e| IngestError::Io {
                file: source.to_string(),
                source: e,
            })?;
            parquet_table::read_from(
                source,
                parquet_table::WideInput::Bytes(bytes::Bytes::from(bytes)),
                spec,
                range,
            )
        }
        (Format::Csv, input) => csv_table::read_from(source, input.into_reader(), spec, range),
        (Format::Ndjson, input) => ndjson::read_from(
            source,
            std::io::BufReader::with_capacity(1 << 16, input.into_reader()),
            spec,
            range,
        ),
        (Format::Logs, input) => {
            let reader = std::io::BufReader::with_capacity(1 << 16, input.into_reader());
            let (table, _) =
                aggregate_logs(source, reader, spec.step_secs, &LogOptions::default())?;
            let table = select_metrics(source, table, spec)?;
            retain_range(source, table, range)
        }
        (Format::AzureMonitor, input) => {
            let reader = std::io::BufReader::with_capacity(1 << 16, input.into_reader());
            let mut t = LongTable::new(azure_monitor_spec(spec), *range);
            t.read_json_lines(source, reader)?;
            t.finish(source)
        }
    }
}

/// A [`LongSpec`] for `read_table` on Azure Monitor JSON lines: the layout's
/// defaults, the time column if given, the first metric as the value column.
fn azure_monitor_spec(spec: &TableSpec) -> LongSpec {
    LongSpec {
        time_column: Some(spec.time_column.clone()).filter(|t| !t.is_empty()),
        value_column: spec.metrics.first().cloned(),
        time_format: spec.time_format.clone(),
        step_secs: spec.step_secs,
        ..LongSpec::default()
    }
}

/// Keep the columns `spec.metrics` names, in that order (all if empty).
fn select_metrics(
    source: &str,
    mut table: RawTable,
    spec: &TableSpec,
) -> Result<RawTable, IngestError> {
    if spec.metrics.is_empty() {
        return Ok(table);
    }
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
    Ok(table)
}

/// Drop the rows outside `range`.
fn retain_range(source: &str, mut t: RawTable, range: &TimeRange) -> Result<RawTable, IngestError> {
    t.keep_range(range);
    if t.timestamps.is_empty() {
        return Err(IngestError::NoRowsInRange {
            file: source.to_string(),
            range: *range,
        });
    }
    Ok(t)
}

/// Where [`read_table_from`] reads from.
pub enum TableInput<'a> {
    /// A local file: Parquet is read by random access, text streamed.
    File(std::fs::File),
    /// Any byte stream (a blob, stdin, a slice).
    Stream(Box<dyn std::io::Read + 'a>),
}

impl<'a> TableInput<'a> {
    fn into_reader(self) -> Box<dyn std::io::Read + 'a> {
        match self {
            TableInput::File(f) => Box::new(f),
            TableInput::Stream(r) => r,
        }
    }
}

/// The time span `[first, last]` (epoch seconds) of a file or blob named
/// with Azure's partition folders: `.../y=YYYY/m=MM/d=DD/h=HH/m=MM/NAME`
/// (Diagnostic-settings archives write `PT1H.json` per hour, Log Analytics
/// data export `PT05M.json` per 5 minutes). Fewer levels give a longer span
/// (`y=2026/m=11` is the month). `None` if the name has no such folders.
///
/// A blob holds what arrived in its span, so its records are never later
/// than its end; late arrivals can put earlier records in later blobs. So a
/// caller skips a part when `last < since` (nothing in it can be that
/// recent), and when `first > until + PARTITION_LATE_SECS`.
///
/// ```
/// use mlscaler::ingest::partition_span;
/// let name = "resourceId=/SUBSCRIPTIONS/S/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.COMPUTE/\
///             VIRTUALMACHINES/VM1/y=2026/m=11/d=30/h=12/m=00/PT1H.json";
/// let (first, last) = partition_span(name).unwrap();
/// assert_eq!(mlscaler::ingest::timestamp::format_timestamp(first), "2026-11-30T12:00:00Z");
/// assert_eq!(last - first, 3599);
/// assert_eq!(partition_span("data/2026-11-30.csv"), None);
/// ```
pub fn partition_span(name: &str) -> Option<(i64, i64)> {
    use chrono::{Datelike, NaiveDate};
    let name = name.split(['?', '#']).next().unwrap_or(name);
    let mut y: Option<i32> = None;
    let (mut mo, mut d, mut h, mut mi): (Option<u32>, Option<u32>, Option<u32>, Option<u32>) =
        (None, None, None, None);
    for seg in name.split('/') {
        let Some((k, v)) = seg.split_once('=') else {
            continue;
        };
        let num = v.parse::<u32>().ok();
        match k {
            "y" => {
                y = v.parse().ok();
                (mo, d, h, mi) = (None, None, None, None);
            }
            "m" if y.is_some() && mo.is_none() => mo = num,
            "d" if mo.is_some() => d = num,
            "h" if d.is_some() => h = num,
            "m" if h.is_some() => mi = num,
            _ => {}
        }
    }
    let y = y?;
    let file = name.rsplit('/').next().unwrap_or(name);
    let start_date = NaiveDate::from_ymd_opt(y, mo.unwrap_or(1), d.unwrap_or(1))?;
    let start = start_date
        .and_hms_opt(h.unwrap_or(0), mi.unwrap_or(0), 0)?
        .and_utc()
        .timestamp();
    let len: i64 = match (mo, d, h, mi) {
        (None, ..) => {
            let next = NaiveDate::from_ymd_opt(y + 1, 1, 1)?;
            (next - start_date).num_seconds()
        }
        (Some(_), None, ..) => {
            let (ny, nm) = if start_date.month() == 12 {
                (y + 1, 1)
            } else {
                (y, start_date.month() + 1)
            };
            (NaiveDate::from_ymd_opt(ny, nm, 1)? - start_date).num_seconds()
        }
        (Some(_), Some(_), None, _) => 86_400,
        (Some(_), Some(_), Some(_), Some(_)) if file.starts_with("PT05M") => 300,
        (Some(_), Some(_), Some(_), Some(m)) if file.starts_with("PT1M") => {
            let _ = m;
            60
        }
        _ => 3_600,
    };
    Some((start, start + len - 1))
}

/// How long after its partition's end a record may still arrive in a later
/// partition (Log Analytics exports by ingestion time): parts that start
/// more than this after `until` are skipped.
pub const PARTITION_LATE_SECS: i64 = 3_600;

/// True if a part named `name` may hold rows in `range` (always true for a
/// name without partition folders).
pub fn partition_may_overlap(name: &str, range: &TimeRange) -> bool {
    match partition_span(name) {
        None => true,
        Some((first, last)) => {
            range.since.is_none_or(|s| last >= s)
                && range
                    .until
                    .is_none_or(|u| first <= u.saturating_add(PARTITION_LATE_SECS))
        }
    }
}

/// The top-level column names of a Parquet file, in schema order (to pick a
/// time column before reading).
pub fn parquet_columns(source: &str, bytes: &[u8]) -> Result<Vec<String>, IngestError> {
    parquet_table::columns(source, bytes)
}

/// The top-level column names of a Parquet file (reads only its footer).
pub fn parquet_file_columns(source: &str, file: std::fs::File) -> Result<Vec<String>, IngestError> {
    parquet_table::columns_of(source, file)
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
            ("h=12/m=00/PT1H.json", Some(Format::AzureMonitor)),
            ("h=12/m=05/PT05M_2.json", Some(Format::AzureMonitor)),
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
        for f in [
            Format::Csv,
            Format::Parquet,
            Format::Ndjson,
            Format::Logs,
            Format::AzureMonitor,
        ] {
            assert_eq!(f.to_string().parse::<Format>(), Ok(f));
        }
        let e = "xlsx".parse::<Format>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown format 'xlsx' (expected csv, parquet, ndjson, logs or azure-monitor)"
        );
    }

    #[test]
    fn partition_names_give_the_span_of_a_blob() {
        let span =
            |n: &str| partition_span(n).map(|(a, b)| (timestamp::format_timestamp(a), b - a + 1));
        let vm = "insights-metrics-pt1m/resourceId=/SUBSCRIPTIONS/S/RESOURCEGROUPS/RG/PROVIDERS/\
                  MICROSOFT.COMPUTE/VIRTUALMACHINES/VM1";
        assert_eq!(
            span(&format!("{vm}/y=2026/m=11/d=30/h=12/m=00/PT1H.json")),
            Some(("2026-11-30T12:00:00Z".into(), 3_600))
        );
        let ws = "WorkspaceResourceId=/subscriptions/s/resourcegroups/rg/providers/\
                  microsoft.operationalinsights/workspaces/ws";
        assert_eq!(
            span(&format!(
                "{ws}/y=2026/m=11/d=30/h=12/m=55/PT05M_3.json?sv=x&sig=y"
            )),
            Some(("2026-11-30T12:55:00Z".into(), 300))
        );
        assert_eq!(
            span("x/y=2026/m=02/d=03/"),
            Some(("2026-02-03T00:00:00Z".into(), 86_400))
        );
        assert_eq!(
            span("y=2024/m=02"),
            Some(("2024-02-01T00:00:00Z".into(), 29 * 86_400))
        );
        assert_eq!(span("y=2026/m=13/d=01/h=00/PT1H.json"), None);
        assert_eq!(span("data/m=5/load.csv"), None);
    }

    #[test]
    fn a_range_skips_partitions_before_it_and_long_after_it() {
        let name = |h: u32| format!("r/y=2026/m=11/d=30/h={h:02}/m=00/PT1H.json");
        let t = |h: i64| 1_796_040_000 + (h - 12) * 3_600; // 2026-11-30Th:00Z
        let range = TimeRange {
            since: Some(t(12) + 1_800),
            until: Some(t(14)),
        };
        assert!(!partition_may_overlap(&name(11), &range));
        assert!(partition_may_overlap(&name(12), &range));
        assert!(partition_may_overlap(&name(14), &range));
        // Late arrivals: the hour after `until` may still hold its rows.
        assert!(partition_may_overlap(&name(15), &range));
        assert!(!partition_may_overlap(&name(16), &range));
        assert!(partition_may_overlap("plain.csv", &range));
        assert!(partition_may_overlap(&name(1), &TimeRange::ALL));
        assert_eq!(
            range.to_string(),
            "2026-11-30T12:30:00Z .. 2026-11-30T14:00:00Z"
        );
    }

    #[test]
    fn streamed_tables_keep_their_range_and_stop_after_it() {
        let spec = TableSpec {
            time_column: "t".into(),
            metrics: vec![],
            time_format: TimeFormat::Unix,
            step_secs: 60,
        };
        // Row 4 is bad but after the range: reading stops before it.
        let text = "t,v\n60,1\n120,2\n180,3\n240,x\n";
        let range = TimeRange {
            since: Some(100),
            until: Some(180),
        };
        for format in [Format::Csv, Format::Ndjson] {
            let text = if format == Format::Csv {
                text.to_string()
            } else {
                "{\"t\":60,\"v\":1}\n{\"t\":120,\"v\":2}\n{\"t\":180,\"v\":3}\n{\"t\":240,\"v\":\"x\"}\n"
                    .to_string()
            };
            let input = TableInput::Stream(Box::new(text.as_bytes()));
            let t = read_table_from("s", input, format, &spec, &range).unwrap();
            assert_eq!(t.timestamps, vec![120, 180], "{format}");
            let input = TableInput::Stream(Box::new(text.as_bytes()));
            let none = TimeRange {
                since: Some(1_000),
                until: None,
            };
            let e = read_table_from("s", input, format, &spec, &none).unwrap_err();
            assert!(matches!(e, IngestError::NoRowsInRange { .. }), "{e}");
        }
    }

    #[test]
    fn an_overlong_record_names_the_file_line_and_limit() {
        let spec = TableSpec {
            time_column: "t".into(),
            metrics: vec![],
            time_format: TimeFormat::Unix,
            step_secs: 60,
        };
        for (format, what, head) in [
            (Format::Csv, "CSV record", &b"t,v\n60,1\n"[..]),
            (Format::Ndjson, "JSON line", &b"{\"t\":60,\"v\":1}\n\n"[..]),
        ] {
            let mut text = head.to_vec();
            text.extend(std::iter::repeat_n(b'9', limits::MAX_RECORD_BYTES + 10));
            let input = TableInput::Stream(Box::new(&text[..]));
            let e = read_table_from("big", input, format, &spec, &TimeRange::ALL)
                .unwrap_err()
                .to_string();
            assert_eq!(
                e,
                format!(
                    "big: line 3: a record longer than {} bytes (the limit of one {what}); \
                     the input is probably not {what}s, or has no line breaks",
                    limits::MAX_RECORD_BYTES
                )
            );
        }
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
