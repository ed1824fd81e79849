//! Long tables: one row per time, series and value, as Azure writes them
//! (Diagnostic-settings metric archives, Log Analytics data export) and as
//! many teams keep their metrics (`time,host,cpu`). Rows are filtered,
//! grouped per time bucket and series, combined within a series, and either
//! kept one column per series (long to wide) or combined across series into
//! one column (`--aggregate`, e.g. the sum of per-VM CPU).
//!
//! A [`LongTable`] accumulates any number of parts (hourly blobs, files) in
//! any order, then [`LongTable::finish`] turns them into a [`RawTable`] with
//! one row per bucket. Memory is O(buckets x series), never O(input): rows
//! are read one at a time through the same record limits as every other
//! reader.
//!
//! Known layouts (chosen from the first record when the columns are not
//! given):
//!
//! | layout | time | value | series |
//! | --- | --- | --- | --- |
//! | metric archive (`insights-metrics-pt1m`) | `time` | `average` (or `--field`) | `metricName`, `resourceId` |
//! | Log Analytics `Perf` | `TimeGenerated` | `CounterValue` | `CounterName`, `Computer` |
//! | Log Analytics `InsightsMetrics` | `TimeGenerated` | `Val` | `Name`, `Computer` |

use super::error::{missing_column, ColumnRole, IngestError, Location, ValueProblem};
use super::limits::{read_line_limited, RecordLimit, TooLong, MAX_RECORD_BYTES};
use super::ndjson::{line_error, parse_object};
use super::value::{check_value, parse_value_text, TimeParser, TimeProblem};
use super::{RawColumn, RawTable, TimeFormat, TimeRange};
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use std::io::{BufRead, Read};
use std::str::FromStr;

/// The most distinct series a long table keeps apart.
pub const MAX_SERIES: usize = 10_000;

/// The most time buckets a long table keeps (about 19 years of minutes).
pub const MAX_BUCKETS: usize = 10_000_000;

/// How values are combined: within one series and bucket (several rows of
/// one VM in a 5-minute step), or across series (`--aggregate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Combine {
    Sum,
    Mean,
    Max,
    Min,
    /// How many values there are (e.g. how many VMs reported).
    Count,
    /// The value of the latest row (within a series only).
    Last,
}

impl Combine {
    pub fn as_str(self) -> &'static str {
        match self {
            Combine::Sum => "sum",
            Combine::Mean => "mean",
            Combine::Max => "max",
            Combine::Min => "min",
            Combine::Count => "count",
            Combine::Last => "last",
        }
    }
}

impl fmt::Display for Combine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Combine {
    type Err = String;

    /// `sum`, `mean`, `max`, `min`, `count` or `last` (ASCII case ignored;
    /// `avg`/`average` mean `mean`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "sum" | "total" => Combine::Sum,
            "mean" | "avg" | "average" => Combine::Mean,
            "max" | "maximum" => Combine::Max,
            "min" | "minimum" => Combine::Min,
            "count" => Combine::Count,
            "last" => Combine::Last,
            _ => {
                return Err(format!(
                    "unknown aggregation '{s}' (expected sum, mean, max, min or count)"
                ))
            }
        })
    }
}

/// `COLUMN=VALUE`: keep rows whose column has this value (ASCII case
/// ignored: Azure upper-cases resource ids in its archives). Several filters
/// on one column keep a row matching any of them; filters on different
/// columns must all match.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Filter {
    pub column: String,
    pub value: String,
}

impl FromStr for Filter {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('=') {
            Some((c, v)) if !c.trim().is_empty() => Ok(Filter {
                column: c.trim().to_string(),
                value: v.trim().to_string(),
            }),
            _ => Err(format!(
                "'{s}' is not COLUMN=VALUE (e.g. metricName=Percentage CPU)"
            )),
        }
    }
}

/// What to read from a long table. Columns left `None` (or empty) are taken
/// from the known layout of the first record (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LongSpec {
    /// The time column; `None` or `"auto"`: the layout's, else the first of
    /// `time`, `timestamp`, `TimeGenerated`, ... that exists.
    pub time_column: Option<String>,
    /// The numeric column; for a metric archive one of `average`, `total`,
    /// `maximum`, `minimum`, `count` (`--field`).
    pub value_column: Option<String>,
    /// The columns whose values tell series apart; empty: the layout's (none
    /// for an unknown layout: every row is one series). With two or more,
    /// the first names the metric and `--aggregate` refuses to combine
    /// different values of it.
    pub series_columns: Vec<String>,
    pub filters: Vec<Filter>,
    /// Combine the series into one column per bucket; `None` keeps one
    /// column per series.
    pub aggregate: Option<Combine>,
    /// How the rows of one series in one bucket combine (`--agg`).
    pub within: Combine,
    /// Bucket width in seconds (the step); `None`: every distinct time.
    pub bucket_secs: Option<i64>,
    pub time_format: TimeFormat,
    /// Seconds per index step for [`TimeFormat::Index`].
    pub step_secs: i64,
}

impl Default for LongSpec {
    fn default() -> Self {
        LongSpec {
            time_column: None,
            value_column: None,
            series_columns: Vec::new(),
            filters: Vec::new(),
            aggregate: None,
            within: Combine::Mean,
            bucket_secs: None,
            time_format: TimeFormat::Auto,
            step_secs: 60,
        }
    }
}

/// Counts of one long read, for the model card and for messages.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LongStats {
    /// Records read (all parts).
    pub rows: u64,
    /// Records dropped by a filter.
    pub filtered_out: u64,
    /// Records outside the time range.
    pub out_of_range: u64,
    /// Records whose value was missing (null, empty): not combined.
    pub missing_values: u64,
    /// Distinct series kept.
    pub series: usize,
}

/// The columns of one layout, resolved against the first record.
#[derive(Debug, Clone)]
pub(super) struct Resolved {
    pub(super) time: String,
    pub(super) value: String,
    pub(super) series: Vec<String>,
}

/// The rows of one series in one bucket, combined so far.
#[derive(Debug, Clone, Copy)]
pub(super) struct Acc {
    pub(super) sum: f64,
    pub(super) n: u32,
    pub(super) max: f64,
    pub(super) min: f64,
    /// The value of the latest row (the later row of two at one time).
    pub(super) last: f64,
    pub(super) last_t: i64,
}

impl Acc {
    fn new(v: f64, t: i64) -> Self {
        Acc {
            sum: v,
            n: 1,
            max: v,
            min: v,
            last: v,
            last_t: t,
        }
    }

    fn add(&mut self, v: f64, t: i64) {
        self.merge(&Acc::new(v, t));
    }

    /// Combine with the rows of `other`, read after these.
    fn merge(&mut self, other: &Acc) {
        self.sum += other.sum;
        self.n += other.n;
        self.max = self.max.max(other.max);
        self.min = self.min.min(other.min);
        if other.last_t >= self.last_t {
            self.last = other.last;
            self.last_t = other.last_t;
        }
    }

    fn get(&self, how: Combine) -> f64 {
        match how {
            Combine::Sum => self.sum,
            Combine::Mean => self.sum / f64::from(self.n),
            Combine::Max => self.max,
            Combine::Min => self.min,
            Combine::Count => f64::from(self.n),
            Combine::Last => self.last,
        }
    }
}

/// A long table being read (see the module docs).
#[derive(Debug)]
pub struct LongTable {
    spec: LongSpec,
    range: TimeRange,
    resolved: Option<Resolved>,
    series: HashMap<Vec<String>, u32>,
    series_names: Vec<Vec<String>>,
    cells: HashMap<(i64, u32), Acc>,
    /// Where the first series' first row was, for messages.
    first_at: Option<(String, Location)>,
    stats: LongStats,
}

/// One record, whatever the format: its cells by column name.
trait Record {
    /// The cell as text (numbers formatted), `None` if absent or null.
    fn text(&self, column: &str) -> Option<String>;
    /// The time cell.
    fn time(&self, column: &str, times: &TimeParser) -> Result<i64, TimeProblem>;
    /// The value cell: NaN if missing.
    fn value(&self, column: &str) -> Result<f64, (ValueProblem, String)>;
    /// The column names (for messages and layout detection).
    fn columns(&self) -> Vec<String>;
}

struct JsonRecord<'a>(&'a serde_json::Map<String, Value>);

impl Record for JsonRecord<'_> {
    fn text(&self, column: &str) -> Option<String> {
        match self.0.get(column)? {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }

    fn time(&self, column: &str, times: &TimeParser) -> Result<i64, TimeProblem> {
        match self.0.get(column) {
            None | Some(Value::Null) => Err(TimeProblem {
                text: String::new(),
                hint: "; the record has no time value".to_string(),
            }),
            Some(Value::String(s)) => times.text(s),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) => times.integer(i),
                None => times.float(n.as_f64().unwrap_or(f64::NAN)),
            },
            Some(other) => Err(TimeProblem {
                text: other.to_string(),
                hint: "; expected a string or a number".to_string(),
            }),
        }
    }

    fn value(&self, column: &str) -> Result<f64, (ValueProblem, String)> {
        match self.0.get(column) {
            None | Some(Value::Null) => Ok(f64::NAN),
            Some(Value::Number(n)) => {
                let v = n.as_f64().unwrap_or(f64::NAN);
                check_value(v).map_err(|p| (p, n.to_string()))
            }
            Some(Value::String(s)) => parse_value_text(s).map_err(|p| (p, s.clone())),
            Some(other) => Err((ValueProblem::NotNumeric, other.to_string())),
        }
    }

    fn columns(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }
}

struct CsvRecord<'a> {
    names: &'a [String],
    row: &'a csv::StringRecord,
}

impl CsvRecord<'_> {
    fn cell(&self, column: &str) -> Option<&str> {
        let i = self.names.iter().position(|n| n == column)?;
        self.row.get(i)
    }
}

impl Record for CsvRecord<'_> {
    fn text(&self, column: &str) -> Option<String> {
        self.cell(column)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    fn time(&self, column: &str, times: &TimeParser) -> Result<i64, TimeProblem> {
        times.text(self.cell(column).unwrap_or_default())
    }

    fn value(&self, column: &str) -> Result<f64, (ValueProblem, String)> {
        let s = self.cell(column).unwrap_or_default();
        parse_value_text(s).map_err(|p| (p, s.to_string()))
    }

    fn columns(&self) -> Vec<String> {
        self.names.to_vec()
    }
}

/// Common names of time columns, tried in order.
const TIME_NAMES: [&str; 9] = [
    "time",
    "timestamp",
    "TimeGenerated",
    "datetime",
    "period",
    "date",
    "ts",
    "day",
    "minute",
];

fn has(cols: &[String], name: &str) -> bool {
    cols.iter().any(|c| c == name)
}

impl LongTable {
    /// An empty table reading `spec`, keeping rows in `range`.
    pub fn new(spec: LongSpec, range: TimeRange) -> Self {
        LongTable {
            spec,
            range,
            resolved: None,
            series: HashMap::new(),
            series_names: Vec::new(),
            cells: HashMap::new(),
            first_at: None,
            stats: LongStats::default(),
        }
    }

    /// What was read so far.
    pub fn stats(&self) -> &LongStats {
        &self.stats
    }

    /// The layout of the first record: the spec's columns, else the known
    /// layouts' defaults.
    fn resolve(&self, source: &str, cols: &[String]) -> Result<Resolved, IngestError> {
        let spec = &self.spec;
        let metric_archive = has(cols, "metricName") && has(cols, "timeGrain");
        let perf = has(cols, "CounterName") && has(cols, "CounterValue");
        let insights = has(cols, "Namespace") && has(cols, "Name") && has(cols, "Val");
        let time = match spec.time_column.as_deref() {
            Some(t) if t != "auto" => t.to_string(),
            _ => {
                let wanted: &[&str] = if metric_archive {
                    &["time"]
                } else if perf || insights {
                    &["TimeGenerated"]
                } else {
                    &TIME_NAMES
                };
                wanted
                    .iter()
                    .find_map(|w| cols.iter().find(|c| c.eq_ignore_ascii_case(w)))
                    .cloned()
                    .ok_or_else(|| {
                        missing_column(source, wanted[0], ColumnRole::Time, cols.to_vec())
                    })?
            }
        };
        let value = match &spec.value_column {
            Some(v) => v.clone(),
            None if metric_archive => "average".to_string(),
            None if perf => "CounterValue".to_string(),
            None if insights => "Val".to_string(),
            None => {
                return Err(IngestError::Malformed {
                    file: source.to_string(),
                    at: Location::Line(1),
                    syntax: "long table",
                    message: format!(
                        "which column holds the values? pass --value-column (the columns are {})",
                        cols.iter()
                            .map(|c| format!("'{c}'"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })
            }
        };
        let series = if !spec.series_columns.is_empty() {
            spec.series_columns.clone()
        } else if metric_archive {
            vec!["metricName".into(), "resourceId".into()]
        } else if perf {
            vec!["CounterName".into(), "Computer".into()]
        } else if insights {
            vec!["Name".into(), "Computer".into()]
        } else {
            Vec::new()
        };
        for (c, role) in [(&time, ColumnRole::Time), (&value, ColumnRole::Metric)] {
            if !has(cols, c) {
                return Err(missing_column(source, c, role, cols.to_vec()));
            }
        }
        Ok(Resolved {
            time,
            value,
            series,
        })
    }

    /// The columns to read, resolved against the first part's columns
    /// (later parts are read with the same).
    pub(super) fn resolve_once(
        &mut self,
        source: &str,
        cols: &[String],
    ) -> Result<Resolved, IngestError> {
        if self.resolved.is_none() {
            self.resolved = Some(self.resolve(source, cols)?);
        }
        Ok(self.resolved.clone().expect("resolved above"))
    }

    pub(super) fn spec(&self) -> &LongSpec {
        &self.spec
    }

    pub(super) fn range(&self) -> &TimeRange {
        &self.range
    }

    /// Count rows a reader combined elsewhere (see [`LongStats`]).
    pub(super) fn count(&mut self, rows: u64, filtered_out: u64, out_of_range: u64, missing: u64) {
        self.stats.rows += rows;
        self.stats.filtered_out += filtered_out;
        self.stats.out_of_range += out_of_range;
        self.stats.missing_values += missing;
    }

    /// Take one record. `Ok(false)` once records are past `range.until` in a
    /// source that is in time order (not used: parts need not be ordered).
    fn take(
        &mut self,
        source: &str,
        at: Location,
        rec: &dyn Record,
        times: &TimeParser,
    ) -> Result<(), IngestError> {
        if self.resolved.is_none() {
            self.resolved = Some(self.resolve(source, &rec.columns())?);
        }
        let Some(r) = self.resolved.as_ref() else {
            return Ok(());
        };
        self.stats.rows += 1;
        // Filters: every column must match one of its values.
        let mut i = 0;
        let filters = &self.spec.filters;
        while i < filters.len() {
            let column = &filters[i].column;
            let cell = rec.text(column).unwrap_or_default();
            let mut ok = false;
            while i < filters.len() && &filters[i].column == column {
                ok |= cell.eq_ignore_ascii_case(&filters[i].value);
                i += 1;
            }
            if !ok {
                self.stats.filtered_out += 1;
                return Ok(());
            }
        }
        let t = rec
            .time(&r.time, times)
            .map_err(|p| IngestError::BadTimestamp {
                file: source.to_string(),
                at,
                column: r.time.clone(),
                text: p.text,
                hint: p.hint,
            })?;
        if !self.range.contains(t) {
            self.stats.out_of_range += 1;
            return Ok(());
        }
        let v = rec
            .value(&r.value)
            .map_err(|(problem, text)| IngestError::BadValue {
                file: source.to_string(),
                at,
                column: r.value.clone(),
                text,
                problem,
            })?;
        if v.is_nan() {
            self.stats.missing_values += 1;
            return Ok(());
        }
        let key: Vec<String> = r
            .series
            .iter()
            .map(|c| rec.text(c).unwrap_or_default())
            .collect();
        let bucket = self.bucket_of(t);
        self.add_cell(source, at, key, bucket, Acc::new(v, t))
    }

    /// The bucket a time falls in.
    pub(super) fn bucket_of(&self, t: i64) -> i64 {
        match self.spec.bucket_secs {
            Some(b) if b > 0 => t.div_euclid(b) * b,
            _ => t,
        }
    }

    /// Add rows of the series `key` in `bucket` (at least one value),
    /// first seen at `at`: the series is new if not seen before.
    pub(super) fn add_cell(
        &mut self,
        source: &str,
        at: Location,
        key: Vec<String>,
        bucket: i64,
        acc: Acc,
    ) -> Result<(), IngestError> {
        let n_columns = self.resolved.as_ref().map_or(0, |r| r.series.len());
        let series_column = |r: &Option<Resolved>| {
            r.as_ref()
                .and_then(|r| r.series.first().cloned())
                .unwrap_or_default()
        };
        let id = match self.series.get(&key) {
            Some(&id) => id,
            None => {
                if self.series.len() >= MAX_SERIES {
                    return Err(IngestError::TooManySeries {
                        file: source.to_string(),
                        at,
                        limit: MAX_SERIES,
                    });
                }
                if self.spec.aggregate.is_some() && n_columns >= 2 {
                    if let Some(first) = self.series_names.first() {
                        if !first[0].eq_ignore_ascii_case(&key[0]) {
                            let (f, a) = self.first_at.clone().unwrap_or_default_loc();
                            return Err(IngestError::MixedSeries {
                                file: source.to_string(),
                                at,
                                column: series_column(&self.resolved),
                                values: format!("'{}' ({f}, {a}) and '{}'", first[0], key[0]),
                            });
                        }
                    }
                }
                let id = self.series_names.len() as u32;
                if self.first_at.is_none() {
                    self.first_at = Some((source.to_string(), at));
                }
                self.series.insert(key.clone(), id);
                self.series_names.push(key);
                self.stats.series = self.series_names.len();
                id
            }
        };
        match self.cells.get_mut(&(bucket, id)) {
            Some(cell) => cell.merge(&acc),
            None => {
                if self.cells.len() >= MAX_BUCKETS {
                    return Err(IngestError::TooManySeries {
                        file: source.to_string(),
                        at,
                        limit: MAX_BUCKETS,
                    });
                }
                self.cells.insert((bucket, id), acc);
            }
        }
        Ok(())
    }

    /// Read JSON lines (Azure Monitor archives, Log Analytics export, NDJSON):
    /// one object per line; a line holding `{"records": [...]}` (the layout
    /// before November 2018) counts each record. Lines are at most
    /// [`MAX_RECORD_BYTES`].
    pub fn read_json_lines<R: BufRead>(
        &mut self,
        source: &str,
        mut reader: R,
    ) -> Result<(), IngestError> {
        let spec_tf = self.spec.time_format.clone();
        let times = TimeParser::new(&spec_tf, self.spec.step_secs);
        let mut buf = Vec::with_capacity(512);
        let mut line_no = 0u64;
        loop {
            line_no += 1;
            let read = read_line_limited(&mut reader, &mut buf, MAX_RECORD_BYTES, line_no)
                .map_err(|e| line_error(source, &e, "JSON line"))?;
            if read.is_none() {
                break;
            }
            let line = buf.trim_ascii();
            // A UTF-8 byte-order mark on the first line.
            let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            let at = Location::Line(line_no);
            let object = parse_object(source, at, line)?;
            if let (1, Some(Value::Array(records))) = (object.len(), object.get("records")) {
                for r in records {
                    match r {
                        Value::Object(o) => self.take(source, at, &JsonRecord(o), &times)?,
                        other => {
                            return Err(IngestError::Malformed {
                                file: source.to_string(),
                                at,
                                syntax: "JSON",
                                message: format!(
                                    "expected objects in \"records\", found {}",
                                    super::ndjson::kind(other)
                                ),
                            })
                        }
                    }
                }
                continue;
            }
            self.take(source, at, &JsonRecord(&object), &times)?;
        }
        Ok(())
    }

    /// Read CSV with a header row. Records are at most [`MAX_RECORD_BYTES`].
    pub fn read_csv<R: Read>(&mut self, source: &str, reader: R) -> Result<(), IngestError> {
        let spec_tf = self.spec.time_format.clone();
        let times = TimeParser::new(&spec_tf, self.spec.step_secs);
        let limited = RecordLimit::csv(reader, MAX_RECORD_BYTES);
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .trim(csv::Trim::All)
            .from_reader(limited);
        let csv_err = |e: csv::Error| -> IngestError {
            if let csv::ErrorKind::Io(io) = e.kind() {
                if let Some(t) = TooLong::find(io) {
                    return IngestError::RecordTooLong {
                        file: source.to_string(),
                        at: Location::Line(t.line),
                        limit: t.limit,
                        what: "CSV record",
                    };
                }
            }
            IngestError::Malformed {
                file: source.to_string(),
                at: Location::Line(e.position().map_or(1, |p| p.line())),
                syntax: "CSV",
                message: match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => format!("expected {expected_len} fields like the header, found {len}"),
                    _ => e.to_string(),
                },
            }
        };
        let names: Vec<String> = rdr
            .headers()
            .map_err(csv_err)?
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').to_string())
            .collect();
        let mut row = csv::StringRecord::new();
        while rdr.read_record(&mut row).map_err(csv_err)? {
            let at = Location::Line(row.position().map_or(0, |p| p.line()));
            let rec = CsvRecord {
                names: &names,
                row: &row,
            };
            self.take(source, at, &rec, &times)?;
        }
        Ok(())
    }

    /// The table: one row per bucket in time order. Without `aggregate`, one
    /// column per series (named by the series values that differ between
    /// series; a bucket where a series has no row is NaN); with it, one
    /// column of the combined series. A single column is named by the metric
    /// (the first of two or more series columns, e.g. `Percentage CPU`), else
    /// by the value column.
    pub fn finish(self, source: &str) -> Result<RawTable, IngestError> {
        if self.cells.is_empty() {
            return Err(if self.range.is_all() {
                IngestError::NoRows {
                    file: source.to_string(),
                }
            } else {
                IngestError::NoRowsInRange {
                    file: source.to_string(),
                    range: self.range,
                }
            });
        }
        let value_name = self
            .resolved
            .as_ref()
            .map_or_else(|| "value".to_string(), |r| r.value.clone());
        let n_series = self.series_names.len();
        let mut cells: Vec<((i64, u32), Acc)> = self.cells.into_iter().collect();
        cells.sort_unstable_by_key(|(k, _)| *k);
        let mut timestamps: Vec<i64> = Vec::new();
        let within = self.spec.within;
        // One column: named by the metric (the first of two or more series
        // columns), else by the value column.
        let single_name = || match self.series_names.first() {
            Some(first) if first.len() >= 2 && !first[0].is_empty() => first[0].clone(),
            _ => value_name.clone(),
        };
        let columns = match self.spec.aggregate {
            Some(across) => {
                let mut values: Vec<f64> = Vec::new();
                let mut i = 0;
                while i < cells.len() {
                    let bucket = cells[i].0 .0;
                    let mut acc: Option<Acc> = None;
                    while i < cells.len() && cells[i].0 .0 == bucket {
                        let v = cells[i].1.get(within);
                        match acc.as_mut() {
                            Some(a) => a.add(v, bucket),
                            None => acc = Some(Acc::new(v, bucket)),
                        }
                        i += 1;
                    }
                    timestamps.push(bucket);
                    values.push(acc.map_or(f64::NAN, |a| a.get(across)));
                }
                vec![RawColumn {
                    name: single_name(),
                    values,
                }]
            }
            None => {
                let mut values: Vec<Vec<f64>> = vec![Vec::new(); n_series];
                for ((bucket, id), acc) in &cells {
                    if timestamps.last() != Some(bucket) {
                        timestamps.push(*bucket);
                        for col in &mut values {
                            col.push(f64::NAN);
                        }
                    }
                    if let Some(v) = values[*id as usize].last_mut() {
                        *v = acc.get(within);
                    }
                }
                let names = if n_series == 1 {
                    vec![single_name()]
                } else {
                    series_column_names(&self.series_names)
                };
                names
                    .into_iter()
                    .zip(values)
                    .map(|(name, values)| RawColumn { name, values })
                    .collect()
            }
        };
        let missing_values = columns
            .iter()
            .map(|c| c.values.iter().filter(|v| v.is_nan()).count())
            .sum();
        Ok(RawTable {
            source: source.to_string(),
            timestamps,
            columns,
            missing_values,
        })
    }
}

trait OrDefaultLoc {
    fn unwrap_or_default_loc(self) -> (String, Location);
}

impl OrDefaultLoc for Option<(String, Location)> {
    fn unwrap_or_default_loc(self) -> (String, Location) {
        self.unwrap_or_else(|| (String::new(), Location::Line(0)))
    }
}

/// Column names for several series: the parts that differ between series,
/// joined with `|`, in the order of the series columns; series in order of
/// first appearance.
fn series_column_names(series: &[Vec<String>]) -> Vec<String> {
    let parts = series.first().map_or(0, Vec::len);
    let varying: Vec<usize> = (0..parts)
        .filter(|&p| series.iter().any(|s| s[p] != series[0][p]))
        .collect();
    let mut names: Vec<String> = series
        .iter()
        .map(|s| {
            varying
                .iter()
                .map(|&p| s[p].as_str())
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect();
    // Keys that only differ in case would collide: number them.
    let mut seen: HashMap<String, usize> = HashMap::new();
    for n in &mut names {
        let k = seen.entry(n.clone()).or_insert(0);
        *k += 1;
        if *k > 1 {
            n.push_str(&format!("#{k}"));
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    const VM1: &str = "/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.COMPUTE/VIRTUALMACHINES/VM1";
    const VM2: &str = "/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.COMPUTE/VIRTUALMACHINES/VM2";

    fn metric(vm: &str, time: &str, name: &str, average: f64) -> String {
        format!(
            "{{ \"count\": 4, \"total\": {t}, \"minimum\": {average}, \"maximum\": {average}, \"average\": {average}, \"resourceId\": \"{vm}\", \"time\": \"{time}\", \"metricName\": \"{name}\", \"timeGrain\": \"PT1M\"}}\n",
            t = average * 4.0
        )
    }

    fn archive() -> String {
        let mut s = String::new();
        for (m, a1, a2) in [("00", 10.0, 30.0), ("01", 20.0, 40.0)] {
            s += &metric(
                VM1,
                &format!("2026-11-30T12:{m}:00.0000000Z"),
                "Percentage CPU",
                a1,
            );
            s += &metric(
                VM2,
                &format!("2026-11-30T12:{m}:00.0000000Z"),
                "Percentage CPU",
                a2,
            );
            s += &metric(
                VM1,
                &format!("2026-11-30T12:{m}:00.0000000Z"),
                "Network In Total",
                5.0,
            );
        }
        s
    }

    fn read(spec: LongSpec, text: &str) -> Result<RawTable, IngestError> {
        let mut t = LongTable::new(spec, TimeRange::ALL);
        t.read_json_lines("PT1H.json", text.as_bytes())?;
        t.finish("PT1H.json")
    }

    const T0: i64 = 1_796_040_000; // 2026-11-30T12:00:00Z

    #[test]
    fn the_sum_of_per_vm_cpu_is_one_column() {
        let spec = LongSpec {
            filters: vec!["metricName=percentage cpu".parse().unwrap()],
            aggregate: Some(Combine::Sum),
            ..LongSpec::default()
        };
        let t = read(spec, &archive()).unwrap();
        assert_eq!(t.timestamps, vec![T0, T0 + 60]);
        assert_eq!(t.columns.len(), 1);
        assert_eq!(t.columns[0].name, "Percentage CPU");
        assert_eq!(t.columns[0].values, vec![40.0, 60.0]);
    }

    #[test]
    fn the_field_names_the_aggregation_and_count_counts_vms() {
        let spec = LongSpec {
            filters: vec!["metricName=Percentage CPU".parse().unwrap()],
            value_column: Some("total".into()),
            aggregate: Some(Combine::Max),
            ..LongSpec::default()
        };
        assert_eq!(
            read(spec, &archive()).unwrap().columns[0].values,
            vec![120.0, 160.0]
        );
        let spec = LongSpec {
            filters: vec!["metricName=Percentage CPU".parse().unwrap()],
            aggregate: Some(Combine::Count),
            ..LongSpec::default()
        };
        assert_eq!(
            read(spec, &archive()).unwrap().columns[0].values,
            vec![2.0, 2.0]
        );
    }

    #[test]
    fn without_aggregate_each_series_is_a_column_named_by_what_differs() {
        let t = read(LongSpec::default(), &archive()).unwrap();
        let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                format!("Percentage CPU|{VM1}"),
                format!("Percentage CPU|{VM2}"),
                format!("Network In Total|{VM1}")
            ]
        );
        let spec = LongSpec {
            filters: vec![
                "metricName=Percentage CPU".parse().unwrap(),
                format!("resourceId={}", VM2.to_lowercase())
                    .parse()
                    .unwrap(),
            ],
            ..LongSpec::default()
        };
        let t = read(spec, &archive()).unwrap();
        assert_eq!(t.columns.len(), 1);
        assert_eq!(t.columns[0].name, "Percentage CPU");
        assert_eq!(t.columns[0].values, vec![30.0, 40.0]);
    }

    #[test]
    fn aggregating_different_metrics_is_refused() {
        let spec = LongSpec {
            aggregate: Some(Combine::Sum),
            ..LongSpec::default()
        };
        let e = read(spec, &archive()).unwrap_err().to_string();
        assert!(e.starts_with("PT1H.json: line 3: column 'metricName' holds several values ('Percentage CPU' (PT1H.json, line 1) and 'Network In Total')"), "{e}");
        assert!(e.contains("--filter metricName=VALUE"), "{e}");
    }

    #[test]
    fn buckets_combine_rows_within_a_series_then_across() {
        let spec = LongSpec {
            filters: vec!["metricName=Percentage CPU".parse().unwrap()],
            aggregate: Some(Combine::Sum),
            bucket_secs: Some(300),
            ..LongSpec::default()
        };
        // VM1 mean 15, VM2 mean 35 over the 5-minute bucket.
        let t = read(spec, &archive()).unwrap();
        assert_eq!(t.timestamps, vec![T0]);
        assert_eq!(t.columns[0].values, vec![50.0]);
    }

    #[test]
    fn a_records_envelope_and_parts_in_any_order_read_the_same() {
        let text = archive();
        let lines: Vec<&str> = text.lines().collect();
        let envelope = format!("{{\"records\":[{}]}}\n", lines[3..].join(","));
        let spec = LongSpec {
            filters: vec!["metricName=Percentage CPU".parse().unwrap()],
            aggregate: Some(Combine::Sum),
            ..LongSpec::default()
        };
        let mut t = LongTable::new(spec, TimeRange::ALL);
        t.read_json_lines("h13.json", envelope.as_bytes()).unwrap();
        t.read_json_lines("h12.json", lines[..3].join("\n").as_bytes())
            .unwrap();
        let t = t.finish("all").unwrap();
        assert_eq!(t.columns[0].values, vec![40.0, 60.0]);
    }

    #[test]
    fn the_time_range_keeps_only_its_rows() {
        let spec = LongSpec {
            filters: vec!["metricName=Percentage CPU".parse().unwrap()],
            aggregate: Some(Combine::Sum),
            ..LongSpec::default()
        };
        let mut t = LongTable::new(
            spec,
            TimeRange {
                since: Some(T0 + 1),
                until: None,
            },
        );
        t.read_json_lines("x", archive().as_bytes()).unwrap();
        // The network rows were filtered out first.
        assert_eq!(t.stats().out_of_range, 2);
        let t = t.finish("x").unwrap();
        assert_eq!(t.timestamps, vec![T0 + 60]);
    }

    #[test]
    fn a_generic_csv_long_table_needs_its_value_column() {
        let text = "time,host,cpu\n2026-11-30T12:00:00Z,a,1\n2026-11-30T12:00:00Z,b,2\n2026-11-30T12:01:00Z,a,3\n";
        let mut t = LongTable::new(LongSpec::default(), TimeRange::ALL);
        let e = t
            .read_csv("m.csv", text.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains("pass --value-column"), "{e}");
        assert!(e.contains("'host'"), "{e}");
        let spec = LongSpec {
            value_column: Some("cpu".into()),
            series_columns: vec!["host".into()],
            aggregate: Some(Combine::Sum),
            ..LongSpec::default()
        };
        let mut t = LongTable::new(spec, TimeRange::ALL);
        t.read_csv("m.csv", text.as_bytes()).unwrap();
        let t = t.finish("m.csv").unwrap();
        assert_eq!(t.columns[0].name, "cpu");
        assert_eq!(t.columns[0].values, vec![3.0, 3.0]);
    }

    #[test]
    fn bad_cells_name_the_file_line_and_column() {
        let text = archive().replace("\"average\": 20", "\"average\": -20");
        let e = read(LongSpec::default(), &text).unwrap_err().to_string();
        assert_eq!(e, "PT1H.json: line 4, column 'average': negative value (a load cannot be negative): \"-20\"");
        let text = archive().replace("2026-11-30T12:01:00.0000000Z", "yesterday");
        let e = read(LongSpec::default(), &text).unwrap_err().to_string();
        assert!(
            e.starts_with("PT1H.json: line 4, column 'time': cannot parse timestamp \"yesterday\""),
            "{e}"
        );
        let spec = LongSpec {
            value_column: Some("avg".into()),
            ..LongSpec::default()
        };
        let e = read(spec, &archive()).unwrap_err().to_string();
        assert!(e.starts_with("PT1H.json: no metric column 'avg'"), "{e}");
    }

    #[test]
    fn filters_and_aggregations_parse() {
        assert_eq!(
            "metricName = Percentage CPU".parse::<Filter>(),
            Ok(Filter {
                column: "metricName".into(),
                value: "Percentage CPU".into()
            })
        );
        assert!("=x".parse::<Filter>().is_err());
        assert!("x".parse::<Filter>().is_err());
        assert_eq!("SUM".parse::<Combine>(), Ok(Combine::Sum));
        assert!("median".parse::<Combine>().is_err());
    }
}
