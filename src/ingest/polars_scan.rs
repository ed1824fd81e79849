//! What the polars Parquet readers share: the scan of one file or blob, and
//! the time range as a predicate on the rows.
//!
//! Row groups are ruled out by the footer's statistics before the scan
//! ([`super::parquet_table::row_span`], a slice of the scan), not by a
//! predicate: polars 0.46 applies no statistics to a scan with a row index,
//! and the readers need the rows' numbers for their errors.

use super::error::IngestError;
use super::{TimeFormat, TimeRange};
use polars::io::{HiveOptions, RowIndex};
use polars::prelude::*;
use polars_plan::plans::ScanSources;

/// The raw time column's value of an epoch second.
pub(super) type RawOf = Box<dyn Fn(i64) -> Expr>;

/// A lazy scan of one Parquet file or blob, with a 0-based row index column
/// named `row_index` when given (the row's position in the file, whatever
/// a filter drops).
pub(super) fn scan(
    source: &str,
    sources: ScanSources,
    row_index: Option<&str>,
) -> Result<LazyFrame, IngestError> {
    let args = ScanArgsParquet {
        row_index: row_index.map(|name| RowIndex {
            name: name.into(),
            offset: 0,
        }),
        // The part is one file or blob, named as the user or the folder
        // listing named it: no glob patterns, no columns from `key=value`
        // folders (Azure's `y=/m=/d=` would clash with the table's own).
        glob: false,
        hive_options: HiveOptions {
            enabled: Some(false),
            ..HiveOptions::default()
        },
        ..ScanArgsParquet::default()
    };
    LazyFrame::scan_parquet_sources(sources, args).map_err(|e| polars_error(source, e))
}

/// Raw values of a polars timestamp per second.
pub(super) fn ticks_per_second(unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Nanoseconds => 1_000_000_000,
        TimeUnit::Microseconds => 1_000_000,
        TimeUnit::Milliseconds => 1_000,
    }
}

/// For a time column whose raw values map to seconds monotonically, the raw
/// value of a second `s`, such that `raw >= raw_of(s)` exactly when the
/// row's second is `>= s`: timestamps, dates, and signed integers read as
/// `unix` or `unix-ms`. `None` for the others (text, floats, indexes).
pub(super) fn raw_of(dtype: &DataType, format: &TimeFormat) -> Option<RawOf> {
    match dtype {
        DataType::Datetime(unit, _) => {
            let per = ticks_per_second(*unit);
            let raw_type = dtype.clone();
            Some(Box::new(move |s: i64| {
                lit(s.saturating_mul(per)).cast(raw_type.clone())
            }))
        }
        // A day d is the second d * 86400: d * 86400 >= s <=> d >= ceil(s / 86400).
        DataType::Date => Some(Box::new(|s: i64| {
            let day = s.div_euclid(86_400) + i64::from(s.rem_euclid(86_400) > 0);
            lit(i32::try_from(day).unwrap_or(if day < 0 { i32::MIN } else { i32::MAX }))
                .cast(DataType::Date)
        })),
        dt if dt.is_signed_integer() => match format {
            TimeFormat::Unix => Some(Box::new(|s: i64| lit(s))),
            TimeFormat::UnixMillis => Some(Box::new(|s: i64| lit(s.saturating_mul(1_000)))),
            _ => None,
        },
        _ => None,
    }
}

/// `range` on the rows: on the raw time column where its values map to
/// seconds monotonically (a comparison, no conversion), else on the parsed
/// seconds. `None` for the whole history.
pub(super) fn time_range(
    range: &TimeRange,
    seconds: &Expr,
    raw: &Expr,
    raw_of: Option<&dyn Fn(i64) -> Expr>,
) -> Option<Expr> {
    if range.is_all() {
        return None;
    }
    let mut keep = lit(true);
    match raw_of {
        // t >= since <=> raw >= raw(since); t <= until <=> raw < raw(until + 1).
        Some(raw_of) => {
            if let Some(s) = range.since {
                keep = keep.and(raw.clone().gt_eq(raw_of(s)));
            }
            if let Some(u) = range.until {
                keep = keep.and(raw.clone().lt(raw_of(u.saturating_add(1))));
            }
        }
        None => {
            if let Some(s) = range.since {
                keep = keep.and(seconds.clone().gt_eq(lit(s)));
            }
            if let Some(u) = range.until {
                keep = keep.and(seconds.clone().lt_eq(lit(u)));
            }
        }
    }
    Some(keep)
}

pub(super) fn polars_error(source: &str, e: PolarsError) -> IngestError {
    IngestError::Parquet {
        file: source.to_string(),
        at: None,
        message: e.to_string(),
    }
}
