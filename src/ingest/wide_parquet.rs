//! Wide tables in Parquet (one time column, one column per metric), through
//! polars' lazy scan.
//!
//! The scan decodes only the time and metric columns (a projection) and
//! only the rows of a [`RowSpan`]: the row groups whose time statistics may
//! overlap the [`TimeRange`] (a slice pushed down to the scan, so that the
//! others are not decoded; rows keep their numbers in the file). Every cell
//! then goes through the checks every reader makes, row by row in file
//! order, so that the first bad cell is the one a row-by-row read meets: a
//! time that does not parse, a time not after the previous row's, a
//! negative, infinite or non-numeric value, each named by its 1-based row.
//!
//! The caller ([`super::parquet_table`]) has checked the footer (its size,
//! the column types, the column chunks' declared sizes) before this runs.

use super::error::{ColumnRole, IngestError, Location, ValueProblem};
use super::parquet_table::RowSpan;
use super::polars_scan::{polars_error, scan};
use super::value::{check_value, parse_value_text, TableBuilder, TimeParser, TimeProblem};
use super::{RawTable, TableSpec, TimeRange};
use polars::prelude::*;
use polars_plan::plans::ScanSources;

/// Reads the time column and `metrics` (table order; a name may repeat) of
/// one file or blob into a table: the rows of `span` (the row groups the
/// statistics do not rule out), keeping those in `range`.
pub(super) fn read(
    source: &str,
    sources: ScanSources,
    spec: &TableSpec,
    metrics: &[String],
    span: RowSpan,
    range: &TimeRange,
) -> Result<RawTable, IngestError> {
    let pe = |e: PolarsError| polars_error(source, e);
    let time = spec.time_column.as_str();
    let mut names: Vec<&str> = vec![time];
    for m in metrics {
        if !names.contains(&m.as_str()) {
            names.push(m);
        }
    }
    let mut frame = scan(source, sources, None)?;
    if !span.is_whole() {
        frame = frame.slice(
            i64::try_from(span.first).unwrap_or(i64::MAX),
            IdxSize::try_from(span.count).unwrap_or(IdxSize::MAX),
        );
    }
    let df = frame
        .select(names.iter().map(|&n| col(n)).collect::<Vec<_>>())
        .collect()
        .map_err(pe)?;
    let series = |name: &str| -> Result<Series, IngestError> {
        Ok(df
            .column(name)
            .map_err(pe)?
            .as_materialized_series()
            .clone())
    };
    let at = |i: usize| Location::Row(span.first + i as u64 + 1);

    let times = TimeParser::new(&spec.time_format, spec.step_secs);
    let time_series = series(time)?;
    // The common cells inline; the others (and every refusal) by the full
    // conversions, which build the error's text.
    let seconds = Converted::new(source, &time_series, ColumnRole::Time, |cell| match cell {
        Cell::Seconds(t) => Some(t),
        other => time_of(other, &times).ok(),
    })?;
    let mut columns: Vec<(usize, Series, Converted<f64>)> = Vec::new();
    for (k, m) in metrics.iter().enumerate() {
        let s = series(m)?;
        let values = Converted::new(source, &s, ColumnRole::Metric, |cell| match cell {
            Cell::Float(x) => check_value(x).ok(),
            Cell::Null => Some(f64::NAN),
            other => value_of(other).ok(),
        })?;
        columns.push((k, s, values));
    }

    let mut table = TableBuilder::new(source, time, metrics.to_vec());
    table.reserve(df.height());
    for i in 0..df.height() {
        let Some(t) = seconds.get(i) else {
            let problem = nth_cell(&time_series, i, |cell| time_of(cell, &times).err());
            return Err(table.time_error(at(i), problem.unwrap_or_else(null_time)));
        };
        if !range.contains(t) {
            continue;
        }
        table.start_row(at(i), t)?;
        for (k, s, values) in &columns {
            let Some(v) = values.get(i) else {
                let (problem, text) = nth_cell(s, i, |cell| value_of(cell).err())
                    .unwrap_or((ValueProblem::NotNumeric, String::new()));
                return Err(table.value_error(at(i), *k, &text, problem));
            };
            table.push_value(*k, v);
        }
    }
    table.finish_in(range)
}

/// One column converted cell by cell; the rows whose cell was refused are
/// listed (their problem is worked out again for the error, cell alone).
struct Converted<T> {
    values: Vec<T>,
    refused: Vec<usize>,
}

impl<T: Copy + Default> Converted<T> {
    fn new(
        source: &str,
        s: &Series,
        role: ColumnRole,
        convert: impl Fn(Cell<'_>) -> Option<T>,
    ) -> Result<Self, IngestError> {
        let mut out = Converted {
            values: Vec::with_capacity(s.len()),
            refused: Vec::new(),
        };
        let supported = each_cell(s, |cell| match convert(cell) {
            Some(v) => out.values.push(v),
            None => {
                out.refused.push(out.values.len());
                out.values.push(T::default());
            }
        })
        .map_err(|e| polars_error(source, e))?;
        if !supported {
            return Err(IngestError::UnsupportedType {
                file: source.to_string(),
                column: s.name().to_string(),
                role,
                found: s.dtype().to_string(),
            });
        }
        Ok(out)
    }

    /// The converted cell of row `i`, `None` if it was refused.
    #[inline]
    fn get(&self, i: usize) -> Option<T> {
        if !self.refused.is_empty() && self.refused.binary_search(&i).is_ok() {
            return None;
        }
        self.values.get(i).copied()
    }
}

/// A cell as the checks see it, whatever the column's type.
#[derive(Clone, Copy)]
enum Cell<'a> {
    Null,
    /// Already seconds: a timestamp or a date.
    Seconds(i64),
    Int(i64),
    UInt(u64),
    Float(f64),
    Text(&'a str),
    Binary(&'a [u8]),
}

/// Calls `f` with every cell of `s`, in order; `false` for a type no
/// reader takes as a time or a metric.
fn each_cell(s: &Series, mut f: impl FnMut(Cell<'_>)) -> PolarsResult<bool> {
    match s.dtype() {
        // A constant divisor per unit: a multiplication, not a division.
        DataType::Datetime(unit, _) => {
            let ticks = s.datetime()?.physical();
            match unit {
                TimeUnit::Nanoseconds => each_number(ticks, &mut f, |x| {
                    Cell::Seconds(x.div_euclid(1_000_000_000))
                }),
                TimeUnit::Microseconds => {
                    each_number(ticks, &mut f, |x| Cell::Seconds(x.div_euclid(1_000_000)))
                }
                TimeUnit::Milliseconds => {
                    each_number(ticks, &mut f, |x| Cell::Seconds(x.div_euclid(1_000)))
                }
            }
        }
        DataType::Date => {
            each_number(s.date()?.physical(), &mut f, |d| {
                Cell::Seconds(i64::from(d) * 86_400)
            });
        }
        DataType::UInt64 => each_number(s.u64()?, &mut f, Cell::UInt),
        DataType::UInt32 => each_number(s.u32()?, &mut f, |x| Cell::UInt(u64::from(x))),
        DataType::Int64 => each_number(s.i64()?, &mut f, Cell::Int),
        DataType::Int32 => each_number(s.i32()?, &mut f, |x| Cell::Int(i64::from(x))),
        DataType::Float64 => each_number(s.f64()?, &mut f, Cell::Float),
        DataType::Float32 => each_number(s.f32()?, &mut f, |x| Cell::Float(f64::from(x))),
        DataType::String => {
            for v in s.str()? {
                f(v.map_or(Cell::Null, Cell::Text));
            }
        }
        DataType::Binary => {
            for v in s.binary()? {
                f(v.map_or(Cell::Null, Cell::Binary));
            }
        }
        DataType::Null => {
            for _ in 0..s.len() {
                f(Cell::Null);
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// [`each_cell`] of a numeric column, chunk by chunk: a chunk without nulls
/// as a plain slice.
fn each_number<T: PolarsNumericType>(
    ca: &ChunkedArray<T>,
    f: &mut impl FnMut(Cell<'_>),
    cell: impl Fn(T::Native) -> Cell<'static>,
) {
    for arr in ca.downcast_iter() {
        if arr.validity().is_none_or(|v| v.unset_bits() == 0) {
            for &x in arr.values().iter() {
                f(cell(x));
            }
        } else {
            for v in arr.iter() {
                f(v.map_or(Cell::Null, |&x| cell(x)));
            }
        }
    }
}

/// `f` of the cell of row `i` (for an error: once per read).
fn nth_cell<T>(s: &Series, i: usize, f: impl Fn(Cell<'_>) -> Option<T>) -> Option<T> {
    let mut row = 0;
    let mut out = None;
    let _ = each_cell(s, |cell| {
        if row == i {
            out = f(cell);
        }
        row += 1;
    });
    out
}

fn null_time() -> TimeProblem {
    TimeProblem {
        text: String::new(),
        hint: "; the timestamp is null".to_string(),
    }
}

/// Seconds of a time cell, by the [`TimeParser`] every reader uses.
fn time_of(cell: Cell<'_>, times: &TimeParser) -> Result<i64, TimeProblem> {
    match cell {
        Cell::Null => Err(null_time()),
        Cell::Seconds(s) => Ok(s),
        Cell::Int(x) => times.integer(x),
        Cell::UInt(x) => match i64::try_from(x) {
            Ok(x) => times.integer(x),
            Err(_) => times.float(x as f64),
        },
        Cell::Float(x) => times.float(x),
        Cell::Text(s) => times.text(s),
        Cell::Binary(b) => match std::str::from_utf8(b) {
            Ok(s) => times.text(s),
            Err(_) => Err(TimeProblem {
                text: String::from_utf8_lossy(b).into_owned(),
                hint: "; binary data, not text".to_string(),
            }),
        },
    }
}

/// A metric value (NaN: missing), or the problem and the cell as text.
fn value_of(cell: Cell<'_>) -> Result<f64, (ValueProblem, String)> {
    let checked = |v: f64| check_value(v).map_err(|p| (p, v.to_string()));
    match cell {
        Cell::Null => Ok(f64::NAN),
        // Unsigned integers cannot be negative.
        Cell::UInt(x) => Ok(x as f64),
        Cell::Int(x) | Cell::Seconds(x) => checked(x as f64),
        Cell::Float(x) => checked(x),
        Cell::Text(s) => parse_value_text(s).map_err(|p| (p, s.to_string())),
        Cell::Binary(b) => std::str::from_utf8(b)
            .map_err(|_| ValueProblem::NotNumeric)
            .and_then(parse_value_text)
            .map_err(|p| (p, String::from_utf8_lossy(b).into_owned())),
    }
}
