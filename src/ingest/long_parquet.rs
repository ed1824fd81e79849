//! Long tables in Parquet, through polars' lazy engine.
//!
//! One lazy query per part: the scan reads only the columns the table needs
//! (time, value, series and filter columns: a projection), skips the row
//! groups whose time statistics lie outside the [`TimeRange`] (a slice of
//! the rows the footer's statistics do not rule out, pushed down to the
//! scan), keeps the rows in the range (compared on the raw time column where
//! it can be) and that pass the filters, and groups them per time bucket and series
//! into sums, counts, minima, maxima and the latest value. Only those groups
//! reach [`LongTable`], which combines them with the other parts and turns
//! them into one column per series, or one across series (long to wide):
//! the same [`LongTable::finish`] as CSV and JSON lines, so a table reads the
//! same whatever its format.
//!
//! Rows are checked as every reader checks them: a negative or infinite
//! value, or a time that does not parse, is an error naming its 1-based row.

use super::error::{missing_column, ColumnRole, IngestError, Location, ValueProblem};
use super::long::{Acc, Combine, LongTable, Resolved};
use super::parquet_table::{guarded, Footer, RowSpan};
use super::polars_scan::{polars_error, raw_of, scan, ticks_per_second, time_range};
use super::value::TimeParser;
use super::TimeFormat;
use polars::prelude::*;
use polars_plan::plans::ScanSources;
use polars_utils::mmap::MemSlice;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Where a Parquet part is: a local file (scanned by random access) or bytes
/// already downloaded (a blob).
pub enum ParquetPart {
    File(PathBuf),
    Bytes(Vec<u8>),
}

// Columns the query adds; prefixed so that they cannot meet a table's own.
const ROW: &str = "__mlscaler_row";
const T: &str = "__mlscaler_t";
const BUCKET: &str = "__mlscaler_bucket";
const V: &str = "__mlscaler_v";
const T_HAS: &str = "__mlscaler_t_has";
const ROW_HAS: &str = "__mlscaler_row_has";
const BAD: &str = "__mlscaler_bad";

/// The first time text that did not parse (`None`: a null time) and the
/// parser's hint, kept by the query's parse step for the error.
type BadTime = Arc<Mutex<Option<(Option<String>, String)>>>;

fn series_alias(i: usize) -> String {
    format!("__mlscaler_s{i}")
}

impl LongTable {
    /// Read one Parquet part (see the module docs). Like
    /// [`read_csv`](LongTable::read_csv), the first part read fixes the
    /// columns (`--value-column`, the known layouts); a later part must have
    /// the time and value columns.
    pub fn read_parquet(&mut self, source: &str, part: ParquetPart) -> Result<(), IngestError> {
        // A panic inside polars (a corrupt file) is an error of this file.
        guarded(source, || self.read_parquet_unguarded(source, part))
    }

    fn read_parquet_unguarded(
        &mut self,
        source: &str,
        part: ParquetPart,
    ) -> Result<(), IngestError> {
        let (r, span, scan_sources) = match part {
            ParquetPart::File(path) => {
                let file = std::fs::File::open(&path).map_err(|e| IngestError::Io {
                    file: source.to_string(),
                    source: e,
                })?;
                let (r, span) = self.checked_columns(source, Footer::open(source, file)?)?;
                (r, span, ScanSources::Paths([path].into()))
            }
            ParquetPart::Bytes(bytes) => {
                let bytes = bytes::Bytes::from(bytes);
                let (r, span) =
                    self.checked_columns(source, Footer::open(source, bytes.clone())?)?;
                (
                    r,
                    span,
                    ScanSources::Buffers([MemSlice::from_bytes(bytes)].into()),
                )
            }
        };
        let pe = |e: PolarsError| polars_error(source, e);
        let mut scan = scan(source, scan_sources, Some(ROW))?;
        let schema = scan.collect_schema().map_err(pe)?;
        let query = Query::new(self, source, &r, &schema)?;
        // Only the row groups the time statistics do not rule out (the row
        // index keeps counting from the file's first row).
        if !span.is_whole() {
            scan = scan.slice(
                i64::try_from(span.first).unwrap_or(i64::MAX),
                IdxSize::try_from(span.count).unwrap_or(IdxSize::MAX),
            );
        }

        // Rows in all (from the footer), and in the time range (before the
        // filters): for the counts only.
        let count = |lf: LazyFrame| -> Result<u64, IngestError> {
            let df = lf.select([len()]).collect().map_err(pe)?;
            Ok(first_u64(&df).unwrap_or(0))
        };
        let rows = span.total;
        let (ranged, in_range) = match &query.range {
            Some(keep) => {
                let ranged = scan.clone().filter(keep.clone());
                let n = count(ranged.clone()).map_err(|e| query.explain(e, &scan))?;
                (ranged, n)
            }
            None => (scan.clone(), rows),
        };

        // Every aggregation is one polars computes per group without
        // materialising the group (sum, count, len, min, max, last): what
        // depends on whether a value is there (the latest time and the first
        // row with a value, a bad value) is a column before the group-by.
        let has = col(V).is_not_null();
        let mut rows_of = ranged
            .filter(query.filter.clone())
            .select(
                [
                    col(ROW),
                    query.time.clone().alias(T),
                    query.value.clone().alias(V),
                ]
                .into_iter()
                .chain(query.series.iter().cloned())
                .collect::<Vec<_>>(),
            )
            .with_columns([
                self.bucket_expr(col(T)).alias(BUCKET),
                when(has.clone())
                    .then(col(T))
                    .otherwise(lit(Null {}))
                    .alias(T_HAS),
                when(has.clone())
                    .then(col(ROW))
                    .otherwise(lit(Null {}))
                    .alias(ROW_HAS),
                (col(V).lt(lit(0.0)).or(col(V).is_infinite()))
                    .fill_null(lit(false))
                    .cast(DataType::UInt32)
                    .alias(BAD),
            ]);
        let latest = self.spec().within == Combine::Last;
        if latest {
            // Rows without a value first, then by time and row: the last row
            // of a group is its latest value (polars keeps the rows' order
            // within a group).
            rows_of =
                rows_of.sort_by_exprs([has, col(T), col(ROW)], SortMultipleOptions::default());
        }
        let mut aggs = vec![
            col(V).sum().alias("sum"),
            col(V).count().alias("n"),
            len().alias("len"),
            col(V).max().alias("max"),
            col(V).min().alias("min"),
            col(T_HAS).max().alias("last_t"),
            col(ROW_HAS).min().alias("first"),
            col(BAD).max().alias("bad"),
        ];
        if latest {
            aggs.push(col(V).last().alias("last"));
        }
        let grouped = rows_of
            .group_by(
                std::iter::once(col(BUCKET))
                    .chain((0..query.series.len()).map(|i| col(series_alias(i))))
                    .collect::<Vec<_>>(),
            )
            .agg(aggs)
            .collect()
            .map_err(|e| query.explain(polars_error(source, e), &scan))?;
        self.take_groups(source, &grouped, &query, &scan, rows, in_range)
    }

    /// The columns of this part (resolved with the first part's), checked
    /// against the footer: the time and value columns are there, and no
    /// chunk of a column read is over the size limit; and the rows to read.
    fn checked_columns<C: parquet::file::reader::ChunkReader + 'static>(
        &mut self,
        source: &str,
        footer: Footer<C>,
    ) -> Result<(Resolved, RowSpan), IngestError> {
        let cols = footer.columns();
        let r = self.resolve_once(source, &cols)?;
        for (c, role) in [(&r.time, ColumnRole::Time), (&r.value, ColumnRole::Metric)] {
            if !cols.contains(c) {
                return Err(missing_column(source, c, role, cols.clone()));
            }
        }
        let mut read: Vec<&str> = vec![r.time.as_str(), r.value.as_str()];
        read.extend(r.series.iter().map(String::as_str));
        read.extend(self.spec().filters.iter().map(|f| f.column.as_str()));
        footer.check_chunk_sizes(source, &read)?;
        let spec = self.spec();
        let times = TimeParser::new(&spec.time_format, spec.step_secs);
        let span = footer.row_span(&r.time, &times, self.range());
        Ok((r, span))
    }

    fn bucket_expr(&self, t: Expr) -> Expr {
        match self.spec().bucket_secs {
            Some(b) if b > 0 => t.floor_div(lit(b)) * lit(b),
            _ => t,
        }
    }

    /// Add the groups of one part, series in order of their first row.
    fn take_groups(
        &mut self,
        source: &str,
        df: &DataFrame,
        query: &Query,
        scan: &LazyFrame,
        rows: u64,
        in_range: u64,
    ) -> Result<(), IngestError> {
        let pe = |e: PolarsError| polars_error(source, e);
        let get = |name: &str| -> Result<Series, IngestError> {
            Ok(df
                .column(name)
                .map_err(pe)?
                .as_materialized_series()
                .clone())
        };
        let bad = get("bad")?.cast(&DataType::UInt32).map_err(pe)?;
        if bad.u32().map_err(pe)?.max().unwrap_or(0) > 0 {
            return Err(query.bad_value(source, scan));
        }
        let bucket = get(BUCKET)?.cast(&DataType::Int64).map_err(pe)?;
        let bucket = bucket.i64().map_err(pe)?;
        let f64s = |name: &str| -> Result<Series, IngestError> {
            get(name)?.cast(&DataType::Float64).map_err(pe)
        };
        // `last` only when it is asked for (`--agg last`): NaN otherwise.
        let last = match df.column("last") {
            Ok(_) => f64s("last")?,
            Err(_) => Series::full_null("last".into(), df.height(), &DataType::Float64),
        };
        let (sum, max, min) = (f64s("sum")?, f64s("max")?, f64s("min")?);
        let (sum, max, min, last) = (
            sum.f64().map_err(pe)?,
            max.f64().map_err(pe)?,
            min.f64().map_err(pe)?,
            last.f64().map_err(pe)?,
        );
        let ints = |name: &str| -> Result<Series, IngestError> {
            get(name)?.cast(&DataType::Int64).map_err(pe)
        };
        let (n, all, last_t, first) = (ints("n")?, ints("len")?, ints("last_t")?, ints("first")?);
        let (n, all, last_t, first) = (
            n.i64().map_err(pe)?,
            all.i64().map_err(pe)?,
            last_t.i64().map_err(pe)?,
            first.i64().map_err(pe)?,
        );
        let mut keys: Vec<Series> = Vec::with_capacity(query.series.len());
        for i in 0..query.series.len() {
            keys.push(get(&series_alias(i))?);
        }
        let keys: Vec<&StringChunked> = keys
            .iter()
            .map(|s| s.str().map_err(pe))
            .collect::<Result<_, _>>()?;
        // Groups with values, by first row: series get their ids in the
        // order a row-by-row read meets them.
        let mut order: Vec<(i64, usize)> = Vec::with_capacity(df.height());
        let mut kept = 0u64;
        let mut missing = 0u64;
        for i in 0..df.height() {
            let (values, rows) = (n.get(i).unwrap_or(0), all.get(i).unwrap_or(0));
            kept += rows as u64;
            missing += (rows - values) as u64;
            if let (true, Some(at)) = (values > 0, first.get(i)) {
                order.push((at, i));
            }
        }
        order.sort_unstable();
        self.count(
            rows,
            in_range.saturating_sub(kept),
            rows.saturating_sub(in_range),
            missing,
        );
        for (at, i) in order {
            let key: Vec<String> = keys
                .iter()
                .map(|k| k.get(i).unwrap_or_default().to_string())
                .collect();
            let acc = Acc {
                sum: sum.get(i).unwrap_or(0.0),
                n: u32::try_from(n.get(i).unwrap_or(0)).unwrap_or(u32::MAX),
                max: max.get(i).unwrap_or(f64::NAN),
                min: min.get(i).unwrap_or(f64::NAN),
                last: last.get(i).unwrap_or(f64::NAN),
                last_t: last_t.get(i).unwrap_or(i64::MIN),
            };
            let bucket = bucket.get(i).unwrap_or(0);
            self.add_cell(source, Location::Row(at as u64 + 1), key, bucket, acc)?;
        }
        Ok(())
    }
}

/// The expressions of one part's query.
struct Query {
    time_column: String,
    value_column: String,
    /// Epoch seconds (UTC) of a row.
    time: Expr,
    /// The value as f64, NaN as null (missing).
    value: Expr,
    /// The series columns as text, null as empty, aliased `series_alias(i)`.
    series: Vec<Expr>,
    /// The filters (true when there are none).
    filter: Expr,
    /// The time range on the rows (on the raw time column where it can be),
    /// `None` for the whole history.
    range: Option<Expr>,
    /// A time text that did not parse (string time columns).
    bad_time: BadTime,
}

impl Query {
    fn new(
        table: &LongTable,
        source: &str,
        r: &Resolved,
        schema: &Schema,
    ) -> Result<Query, IngestError> {
        let spec = table.spec();
        let dtype = |c: &str| schema.get(c).cloned().unwrap_or(DataType::Null);
        let unsupported = |column: &str, role, found: &DataType| IngestError::UnsupportedType {
            file: source.to_string(),
            column: column.to_string(),
            role,
            found: found.to_string(),
        };
        let bad_time = Arc::new(Mutex::new(None));
        let t_col = col(r.time.as_str());
        let t_type = dtype(&r.time);
        // Seconds from the raw column, per type.
        let time = match &t_type {
            DataType::Datetime(unit, _) => t_col
                .clone()
                .cast(DataType::Int64)
                .floor_div(lit(ticks_per_second(*unit))),
            DataType::Date => t_col.clone().cast(DataType::Int64) * lit(86_400i64),
            dt if dt.is_integer() => match spec.time_format {
                TimeFormat::Unix => t_col.clone().cast(DataType::Int64),
                TimeFormat::UnixMillis => {
                    t_col.clone().cast(DataType::Int64).floor_div(lit(1_000i64))
                }
                TimeFormat::Index => t_col.clone().cast(DataType::Int64) * lit(spec.step_secs),
                _ => parsed_time(t_col.clone(), spec, &bad_time),
            },
            DataType::String | DataType::Float32 | DataType::Float64 => {
                parsed_time(t_col.clone(), spec, &bad_time)
            }
            other => return Err(unsupported(&r.time, ColumnRole::Time, other)),
        };
        let raw = raw_of(&t_type, &spec.time_format);
        let range = time_range(table.range(), &time, &t_col, raw.as_deref());
        let v_type = dtype(&r.value);
        if !(v_type.is_integer() || v_type.is_float()) {
            return Err(unsupported(&r.value, ColumnRole::Metric, &v_type));
        }
        let value = col(r.value.as_str())
            .cast(DataType::Float64)
            .fill_nan(lit(Null {}));
        let text = |c: &str| -> Expr {
            if schema.contains(c) {
                col(c).cast(DataType::String).fill_null(lit(""))
            } else {
                lit("")
            }
        };
        let series = r
            .series
            .iter()
            .enumerate()
            .map(|(i, c)| text(c).alias(series_alias(i)))
            .collect();
        // Every column must match one of its values, ASCII case ignored: the
        // rule of the CSV and JSON lines readers (polars' `to_lowercase`
        // is Unicode's, and allocates a lower-cased copy of every cell).
        let mut by_column: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for f in &spec.filters {
            by_column
                .entry(f.column.as_str())
                .or_default()
                .push(f.value.clone());
        }
        let mut filter = lit(true);
        for (column, values) in by_column {
            filter = filter.and(matches_any(text(column), values));
        }
        Ok(Query {
            time_column: r.time.clone(),
            value_column: r.value.clone(),
            time,
            value,
            series,
            filter,
            range,
            bad_time,
        })
    }

    /// A query error from a time that did not parse becomes that time's
    /// error, naming its row; others pass.
    fn explain(&self, e: IngestError, scan: &LazyFrame) -> IngestError {
        let bad = self.bad_time.lock().ok().and_then(|mut b| b.take());
        let Some((text, hint)) = bad else {
            return e;
        };
        let file = match &e {
            IngestError::Parquet { file, .. } => file.clone(),
            _ => return e,
        };
        let c = col(self.time_column.as_str());
        let which = match &text {
            Some(t) => c.cast(DataType::String).eq(lit(t.clone())),
            None => c.is_null(),
        };
        let at = first_row(scan, which);
        IngestError::BadTimestamp {
            file,
            at: Location::Row(at),
            column: self.time_column.clone(),
            text: text.unwrap_or_default(),
            hint,
        }
    }

    /// The first negative or infinite value, named by its row.
    fn bad_value(&self, source: &str, scan: &LazyFrame) -> IngestError {
        let v = col(self.value_column.as_str()).cast(DataType::Float64);
        let at = first_row(scan, v.clone().lt(lit(0.0)).or(v.clone().is_infinite()));
        let value = scan
            .clone()
            .filter(col(ROW).eq(lit((at - 1) as u32)))
            .select([v])
            .collect()
            .ok()
            .and_then(|df| {
                let s = df.get_columns().first()?.as_materialized_series().clone();
                s.f64().ok()?.get(0)
            })
            .unwrap_or(f64::NAN);
        IngestError::BadValue {
            file: source.to_string(),
            at: Location::Row(at),
            column: self.value_column.clone(),
            text: value.to_string(),
            problem: if value.is_infinite() {
                ValueProblem::Infinite
            } else {
                ValueProblem::Negative
            },
        }
    }
}

/// Times that need parsing (text, or numbers in another format than the
/// integer ones): each through the [`TimeParser`] every reader uses. The
/// first that fails is kept in `bad` and fails the query.
fn parsed_time(t: Expr, spec: &super::LongSpec, bad: &BadTime) -> Expr {
    let format = spec.time_format.clone();
    let step = spec.step_secs;
    let bad = Arc::clone(bad);
    t.map(
        move |c: Column| {
            let parser = TimeParser::new(&format, step);
            let fail = |text: Option<String>, hint: String| {
                if let Ok(mut b) = bad.lock() {
                    b.get_or_insert((text, hint));
                }
                polars_err!(ComputeError: "a time did not parse")
            };
            let s = c.as_materialized_series();
            let out: Int64Chunked = match s.dtype() {
                DataType::String => s
                    .str()?
                    .into_iter()
                    .map(|v| match v {
                        Some(text) => parser
                            .text(text)
                            .map(Some)
                            .map_err(|p| fail(Some(text.to_string()), p.hint)),
                        None => Err(fail(None, "; the record has no time value".to_string())),
                    })
                    .collect::<PolarsResult<_>>()?,
                _ => s
                    .cast(&DataType::Float64)?
                    .f64()?
                    .into_iter()
                    .map(|v| match v {
                        Some(f) => parser
                            .float(f)
                            .map(Some)
                            .map_err(|p| fail(Some(p.text), p.hint)),
                        None => Err(fail(None, "; the record has no time value".to_string())),
                    })
                    .collect::<PolarsResult<_>>()?,
            };
            Ok(Some(out.into_series().into_column()))
        },
        GetOutput::from_type(DataType::Int64),
    )
}

/// Whether a text cell equals one of `values`, ASCII case ignored.
fn matches_any(cell: Expr, values: Vec<String>) -> Expr {
    cell.map(
        move |c: Column| {
            let out: BooleanChunked = c
                .as_materialized_series()
                .str()?
                .into_iter()
                .map(|v| {
                    let v = v.unwrap_or("");
                    Some(values.iter().any(|x| x.eq_ignore_ascii_case(v)))
                })
                .collect();
            Ok(Some(out.into_series().into_column()))
        },
        GetOutput::from_type(DataType::Boolean),
    )
}

/// The 1-based row of the first row of `scan` where `which` holds (1 if none).
fn first_row(scan: &LazyFrame, which: Expr) -> u64 {
    scan.clone()
        .filter(which)
        .select([col(ROW).min()])
        .collect()
        .ok()
        .and_then(|df| first_u64(&df))
        .map_or(1, |r| r + 1)
}

fn first_u64(df: &DataFrame) -> Option<u64> {
    let s = df.get_columns().first()?.as_materialized_series().clone();
    let s = s.cast(&DataType::UInt64).ok()?;
    s.u64().ok()?.get(0)
}
