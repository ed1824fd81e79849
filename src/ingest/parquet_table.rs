//! Wide Parquet tables (a time column and metric columns): the footer,
//! checked with the `parquet` crate, then the decode.
//!
//! The footer is read first, within the limits: a footer larger than
//! [`MAX_PARQUET_FOOTER_BYTES`] or a column chunk larger than
//! [`MAX_PARQUET_CHUNK_BYTES`] is refused before it is read, and so are
//! nested and repeated columns and types that cannot be a time or a metric
//! ([`check_type`]). Its row groups' time statistics give the rows a
//! [`TimeRange`] needs ([`row_span`]): the groups outside it are not decoded.
//!
//! The common types (32- and 64-bit integers, dates, timestamps, floats,
//! text) are then decoded by polars ([`super::wide_parquet`]): only the
//! time and metric columns (a projection), only the rows of the span (a
//! slice the scan pushes down to the row groups). The rarer types (INT96
//! times, decimals, fixed-length binary, 8- and 16-bit integers) go through
//! the `parquet` crate's record API, which panics on a few type combinations
//! it does not implement: those are refused up front by [`check_type`], and
//! a panic inside a decoder on a corrupt file is turned into an
//! [`IngestError::Parquet`] as well. The long-table reader
//! ([`super::long_parquet`]) uses the same footer checks and row spans.

use super::error::{missing_column, ColumnRole, IngestError, Location, ValueProblem};
use super::limits::{MAX_PARQUET_CHUNK_BYTES, MAX_PARQUET_FOOTER_BYTES};
use super::value::{check_value, parse_value_text, TableBuilder, TimeParser, TimeProblem};
use super::{RawTable, TableSpec, TimeRange};
use bytes::Bytes;
use parquet::basic::{ConvertedType, LogicalType, Repetition, TimeUnit, Type as Physical};
use parquet::data_type::Decimal;
use parquet::errors::ParquetError;
use parquet::file::reader::{ChunkReader, FileReader, SerializedFileReader};
use parquet::file::statistics::Statistics;
use parquet::record::Field;
use parquet::schema::types::{Type, TypePtr};
use polars_plan::plans::ScanSources;
use polars_utils::mmap::MemSlice;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The top-level column names of a Parquet source, in schema order.
pub(crate) fn columns(source: &str, bytes: &[u8]) -> Result<Vec<String>, IngestError> {
    columns_of(source, Bytes::copy_from_slice(bytes))
}

/// The top-level column names of a Parquet file or buffer, in schema order.
pub(crate) fn columns_of<C: ChunkReader + 'static>(
    source: &str,
    chunks: C,
) -> Result<Vec<String>, IngestError> {
    Ok(Footer::open(source, chunks)?.columns())
}

/// A Parquet file's footer, read within the limits: for checks before
/// another reader (polars, for long tables) decodes the file.
pub(super) struct Footer<C: ChunkReader>(SerializedFileReader<C>);

impl<C: ChunkReader + 'static> Footer<C> {
    /// Refuses a footer over [`MAX_PARQUET_FOOTER_BYTES`] before reading it.
    pub(super) fn open(source: &str, chunks: C) -> Result<Self, IngestError> {
        guarded(source, || open(source, chunks).map(Footer))
    }

    /// The top-level column names, in schema order.
    pub(super) fn columns(&self) -> Vec<String> {
        let schema = self.0.metadata().file_metadata().schema_descr_ptr();
        schema
            .root_schema()
            .get_fields()
            .iter()
            .map(|f| f.name().to_string())
            .collect()
    }

    /// The rows the time statistics of column `time` do not rule out for
    /// `range` (see [`row_span`]); the whole file if there is no such
    /// top-level column.
    pub(super) fn row_span(&self, time: &str, times: &TimeParser, range: &TimeRange) -> RowSpan {
        let schema = self.0.metadata().file_metadata().schema_descr_ptr();
        let field = schema
            .root_schema()
            .get_fields()
            .iter()
            .find(|f| f.name() == time);
        let leaf = (0..schema.num_columns()).find(|&i| schema.column(i).path().parts() == [time]);
        let column = leaf.zip(field).map(|(leaf, t)| (leaf, t.as_ref()));
        row_span(&self.0, column, times, range)
    }

    /// Refuses a chunk of one of these top-level columns whose declared
    /// size is over [`MAX_PARQUET_CHUNK_BYTES`].
    pub(super) fn check_chunk_sizes(
        &self,
        source: &str,
        columns: &[&str],
    ) -> Result<(), IngestError> {
        let schema = self.0.metadata().file_metadata().schema_descr_ptr();
        let leaves: Vec<usize> = (0..schema.num_columns())
            .filter(|&i| {
                let path = schema.column(i).path().parts().to_vec();
                path.first()
                    .is_some_and(|top| columns.contains(&top.as_str()))
            })
            .collect();
        check_chunk_sizes(source, &self.0, Some(&leaves))
    }
}

/// A Parquet file or blob to read a wide table from.
pub(crate) enum WideInput {
    /// A local file: the footer, then only the chunks wanted (random access).
    File(std::fs::File),
    /// Bytes already in memory (a downloaded blob, a buffered stream).
    Bytes(Bytes),
}

/// See [`read_table`](super::read_table). Locations are `row N` (1-based).
pub(crate) fn read(source: &str, bytes: &[u8], spec: &TableSpec) -> Result<RawTable, IngestError> {
    read_from(
        source,
        WideInput::Bytes(Bytes::copy_from_slice(bytes)),
        spec,
        &TimeRange::ALL,
    )
}

/// Reads without loading a file whole: the footer, then only the chunks of
/// the wanted columns in the row groups that overlap `range`; rows outside
/// `range` are dropped.
pub(crate) fn read_from(
    source: &str,
    input: WideInput,
    spec: &TableSpec,
    range: &TimeRange,
) -> Result<RawTable, IngestError> {
    guarded(source, || match input {
        WideInput::File(file) => {
            let footer = file.try_clone().map_err(|e| IngestError::Io {
                file: source.to_string(),
                source: e,
            })?;
            let scan = ScanSources::Files([file].into());
            read_unguarded(source, footer, scan, spec, range)
        }
        WideInput::Bytes(bytes) => {
            let scan = ScanSources::Buffers([MemSlice::from_bytes(bytes.clone())].into());
            read_unguarded(source, bytes, scan, spec, range)
        }
    })
}

/// Runs `f`, turning a panic of the Parquet decoder into an error.
pub(super) fn guarded<T>(
    source: &str,
    f: impl FnOnce() -> Result<T, IngestError>,
) -> Result<T, IngestError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(IngestError::Parquet {
            file: source.to_string(),
            at: None,
            message: "the decoder failed on this file (corrupt, or an unsupported encoding)"
                .to_string(),
        })
    })
}

fn open<C: ChunkReader + 'static>(
    source: &str,
    chunks: C,
) -> Result<SerializedFileReader<C>, IngestError> {
    let len = chunks.len();
    if len >= 8 {
        let tail = chunks
            .get_bytes(len - 8, 8)
            .map_err(|e| parquet_error(source, None, e))?;
        check_footer(source, &tail)?;
    }
    SerializedFileReader::new(chunks).map_err(|e| parquet_error(source, None, e))
}

/// Refuse a file whose footer (the length in the 4 bytes before the closing
/// magic, given the last 8 bytes) is larger than [`MAX_PARQUET_FOOTER_BYTES`],
/// before a reader allocates it.
fn check_footer(source: &str, tail: &[u8]) -> Result<(), IngestError> {
    if tail.len() == 8 && &tail[4..] == b"PAR1" {
        let footer = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
        if footer > MAX_PARQUET_FOOTER_BYTES {
            return Err(IngestError::Parquet {
                file: source.to_string(),
                at: None,
                message: format!(
                    "the footer declares {footer} bytes, more than the limit of \
                     {MAX_PARQUET_FOOTER_BYTES} bytes"
                ),
            });
        }
    }
    Ok(())
}

fn parquet_error(source: &str, at: Option<Location>, e: ParquetError) -> IngestError {
    IngestError::Parquet {
        file: source.to_string(),
        at,
        message: e.to_string(),
    }
}

/// How an INT64 time column's plain integers are scaled, from its type.
fn unit_of(t: &Type) -> Unit {
    match t.get_basic_info().logical_type() {
        Some(LogicalType::Timestamp { unit, .. }) => match unit {
            TimeUnit::MILLIS(_) => Unit::Millis,
            TimeUnit::MICROS(_) => Unit::Micros,
            TimeUnit::NANOS(_) => Unit::Nanos,
        },
        _ => match t.get_basic_info().converted_type() {
            ConvertedType::TIMESTAMP_MILLIS => Unit::Millis,
            ConvertedType::TIMESTAMP_MICROS => Unit::Micros,
            _ => Unit::AsFormat,
        },
    }
}

/// Rows of a file, as `first` (0-based) and `count`: the span the polars
/// scans read (a slice the scan pushes down, so that row groups outside it
/// are not decoded; polars 0.46 prunes no row group by statistics when the
/// scan has a row index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RowSpan {
    pub first: u64,
    pub count: u64,
    /// Rows in the whole file.
    pub total: u64,
}

impl RowSpan {
    pub fn is_whole(&self) -> bool {
        self.first == 0 && self.count == self.total
    }
}

/// The rows from the first to the last row group whose time statistics
/// (of the time column: its leaf index and type) may overlap `range`: a file
/// in time order is read only where the range is. A group without usable
/// statistics (text times, whose order need not be time order) may overlap.
pub(super) fn row_span<C: ChunkReader + 'static>(
    reader: &SerializedFileReader<C>,
    time: Option<(usize, &Type)>,
    times: &TimeParser,
    range: &TimeRange,
) -> RowSpan {
    let meta = reader.metadata();
    let mut first_row = 0u64;
    let mut span: Option<(u64, u64)> = None;
    for g in meta.row_groups() {
        let rows = u64::try_from(g.num_rows()).unwrap_or(0);
        let base = first_row;
        // Saturating: a corrupt footer may declare any counts.
        first_row = first_row.saturating_add(rows);
        let overlaps = range.is_all()
            || time.is_none_or(|(leaf, t)| {
                g.columns().get(leaf).is_none_or(|c| {
                    time_bounds(c.statistics(), t, unit_of(t), times)
                        .is_none_or(|(lo, hi)| range.overlaps(lo, hi))
                })
            });
        if overlaps && rows > 0 {
            span = Some((span.map_or(base, |s| s.0), first_row));
        }
    }
    let (first, end) = span.unwrap_or((0, 0));
    RowSpan {
        first,
        count: end.saturating_sub(first),
        total: first_row,
    }
}

/// The `[min, max]` seconds of a row group's integer time column (of type
/// `t`), from its statistics; `None` when they are missing or the column is
/// not an integer time.
fn time_bounds(
    stats: Option<&Statistics>,
    t: &Type,
    unit: Unit,
    times: &TimeParser,
) -> Option<(i64, i64)> {
    use ConvertedType as C;
    let pair =
        |lo: Result<i64, TimeProblem>, hi: Result<i64, TimeProblem>| Some((lo.ok()?, hi.ok()?));
    let converted = t.get_basic_info().converted_type();
    match stats? {
        Statistics::Int64(s) if converted != C::UINT_64 => pair(
            int_time(*s.min_opt()?, unit, times),
            int_time(*s.max_opt()?, unit, times),
        ),
        Statistics::Int32(s) if converted == C::DATE => Some((
            i64::from(*s.min_opt()?) * 86_400,
            i64::from(*s.max_opt()?) * 86_400 + 86_399,
        )),
        Statistics::Int32(s) if matches!(converted, C::NONE | C::INT_8 | C::INT_16 | C::INT_32) => {
            pair(
                times.integer(i64::from(*s.min_opt()?)),
                times.integer(i64::from(*s.max_opt()?)),
            )
        }
        _ => None,
    }
}

/// Epoch seconds of an INT64 time cell.
fn int_time(v: i64, unit: Unit, times: &TimeParser) -> Result<i64, TimeProblem> {
    match unit {
        Unit::AsFormat => times.integer(v),
        Unit::Millis => Ok(v.div_euclid(1_000)),
        Unit::Micros => Ok(v.div_euclid(1_000_000)),
        Unit::Nanos => Ok(v.div_euclid(1_000_000_000)),
    }
}

/// How an INT64 time column's plain integers are scaled.
#[derive(Clone, Copy)]
enum Unit {
    /// Per the [`TimeFormat`](super::TimeFormat).
    AsFormat,
    Millis,
    Micros,
    Nanos,
}

/// The footer's checks, then polars for the common column types (see
/// [`super::wide_parquet`]) or the record API for the rare ones.
fn read_unguarded<C: ChunkReader + 'static>(
    source: &str,
    chunks: C,
    scan: ScanSources,
    spec: &TableSpec,
    range: &TimeRange,
) -> Result<RawTable, IngestError> {
    let reader = open(source, chunks)?;
    let schema = reader.metadata().file_metadata().schema_descr_ptr();
    let root = schema.root_schema();
    let fields: &[TypePtr] = root.get_fields();
    let names: Vec<String> = fields.iter().map(|f| f.name().to_string()).collect();
    let find = |want: &str, role| {
        names
            .iter()
            .position(|n| n == want)
            .ok_or_else(|| missing_column(source, want, role, names.clone()))
    };
    let time_i = find(&spec.time_column, ColumnRole::Time)?;
    let metric_i: Vec<usize> = if spec.metrics.is_empty() {
        (0..fields.len()).filter(|&i| i != time_i).collect()
    } else {
        spec.metrics
            .iter()
            .map(|m| find(m, ColumnRole::Metric))
            .collect::<Result<_, _>>()?
    };
    check_type(source, &fields[time_i], ColumnRole::Time)?;
    for &i in &metric_i {
        check_type(source, &fields[i], ColumnRole::Metric)?;
    }
    // Leaf (column chunk) index of each top-level field.
    let leaf = |i: usize| {
        schema.columns().iter().position(|c| {
            let parts = c.path().parts();
            parts.len() == 1 && parts[0] == names[i]
        })
    };
    let leaves: Option<Vec<usize>> = std::iter::once(time_i)
        .chain(metric_i.iter().copied())
        .map(|i| leaf(i).filter(|_| polars_reads(&fields[i])))
        .collect();
    let metric_names: Vec<String> = metric_i.iter().map(|&i| names[i].clone()).collect();
    if let Some(leaves) = leaves {
        check_chunk_sizes(source, &reader, Some(&leaves))?;
        let times = TimeParser::new(&spec.time_format, spec.step_secs);
        let span = row_span(&reader, Some((leaves[0], &fields[time_i])), &times, range);
        return super::wide_parquet::read(source, scan, spec, &metric_names, span, range);
    }

    let unit = unit_of(&fields[time_i]);
    let mut table = TableBuilder::new(source, &spec.time_column, metric_names);
    let times = TimeParser::new(&spec.time_format, spec.step_secs);

    // The record API: decode only the columns needed, in schema order; find
    // each in the row by its position in the projection.
    let mut selected: Vec<usize> = metric_i.iter().copied().chain([time_i]).collect();
    selected.sort_unstable();
    selected.dedup();
    let position = |i: usize| selected.binary_search(&i).unwrap_or_else(|p| p);
    let time_pos = position(time_i);
    let metric_pos: Vec<usize> = metric_i.iter().map(|&i| position(i)).collect();
    let projection = Type::group_type_builder(root.name())
        .with_fields(selected.iter().map(|&i| fields[i].clone()).collect())
        .build()
        .map_err(|e| parquet_error(source, None, e))?;
    check_chunk_sizes(source, &reader, None)?;
    let rows = reader
        .get_row_iter(Some(projection))
        .map_err(|e| parquet_error(source, None, e))?;
    for (r, row) in rows.enumerate() {
        let at = Location::Row(r as u64 + 1);
        let row = row
            .map_err(|e| parquet_error(source, Some(at), e))?
            .into_columns();
        let cell = |pos: usize| row.get(pos).map_or(&Field::Null, |(_, f)| f);
        let t = time_of(cell(time_pos), unit, &times).map_err(|p| table.time_error(at, p))?;
        if !range.contains(t) {
            continue;
        }
        table.start_row(at, t)?;
        for (k, &pos) in metric_pos.iter().enumerate() {
            let field = cell(pos);
            let v = value_of(field).map_err(|p| table.value_error(at, k, &field_text(field), p))?;
            table.push_value(k, v);
        }
    }
    table.finish_in(range)
}

/// Refuses a column chunk (of `leaves`, or of every column) whose declared
/// size is over [`MAX_PARQUET_CHUNK_BYTES`].
fn check_chunk_sizes<C: ChunkReader + 'static>(
    source: &str,
    reader: &SerializedFileReader<C>,
    leaves: Option<&[usize]>,
) -> Result<(), IngestError> {
    let meta = reader.metadata();
    for (g, rg) in meta.row_groups().iter().enumerate() {
        for (i, c) in rg.columns().iter().enumerate() {
            if leaves.is_some_and(|l| !l.contains(&i)) {
                continue;
            }
            let size = c.compressed_size().max(c.uncompressed_size());
            if !(0..=MAX_PARQUET_CHUNK_BYTES).contains(&size) {
                return Err(IngestError::Parquet {
                    file: source.to_string(),
                    at: None,
                    message: format!(
                        "column '{}' in row group {} declares {size} bytes, \
                         more than the limit of {MAX_PARQUET_CHUNK_BYTES} bytes per column chunk",
                        c.column_path(),
                        g + 1
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Whether polars decodes a (checked) primitive column as the checks need
/// it: 32- and 64-bit integers, dates, millisecond and microsecond
/// timestamps, floats and text. 8- and 16-bit integers, INT96 times,
/// decimals, fixed-length binary and times of day stay with the record API.
fn polars_reads(t: &Type) -> bool {
    use ConvertedType as C;
    let info = t.get_basic_info();
    if matches!(info.logical_type(), Some(LogicalType::Decimal { .. })) {
        return false;
    }
    let converted = info.converted_type();
    match t.get_physical_type() {
        // 8- and 16-bit integers: polars is built without those types.
        Physical::INT32 => matches!(converted, C::NONE | C::INT_32 | C::UINT_32 | C::DATE),
        Physical::INT64 => matches!(
            converted,
            C::NONE | C::INT_64 | C::UINT_64 | C::TIMESTAMP_MILLIS | C::TIMESTAMP_MICROS
        ),
        Physical::FLOAT | Physical::DOUBLE => true,
        Physical::BYTE_ARRAY => matches!(converted, C::NONE | C::UTF8 | C::ENUM | C::JSON),
        _ => false,
    }
}

/// Refuses nested and repeated columns, types that cannot be a time or a
/// metric, and the type combinations the record API does not implement.
fn check_type(source: &str, t: &Type, role: ColumnRole) -> Result<(), IngestError> {
    let info = t.get_basic_info();
    let refuse = |found: String| IngestError::UnsupportedType {
        file: source.to_string(),
        column: t.name().to_string(),
        role,
        found,
    };
    if !t.is_primitive() {
        return Err(refuse("group (nested)".to_string()));
    }
    if info.has_repetition() && info.repetition() == Repetition::REPEATED {
        return Err(refuse("repeated (list)".to_string()));
    }
    let physical = t.get_physical_type();
    let converted = info.converted_type();
    let name = if converted == ConvertedType::NONE {
        physical.to_string()
    } else {
        format!("{physical} ({converted})")
    };
    use ConvertedType as C;
    let decodable = match physical {
        Physical::BOOLEAN => false,
        Physical::INT32 => matches!(
            converted,
            C::NONE
                | C::INT_8
                | C::INT_16
                | C::INT_32
                | C::UINT_8
                | C::UINT_16
                | C::UINT_32
                | C::DATE
                | C::TIME_MILLIS
                | C::DECIMAL
        ),
        Physical::INT64 => matches!(
            converted,
            C::NONE
                | C::INT_64
                | C::UINT_64
                | C::TIMESTAMP_MILLIS
                | C::TIMESTAMP_MICROS
                | C::DECIMAL
        ),
        Physical::INT96 | Physical::FLOAT | Physical::DOUBLE => true,
        Physical::BYTE_ARRAY => matches!(
            converted,
            C::NONE | C::UTF8 | C::ENUM | C::JSON | C::BSON | C::DECIMAL
        ),
        Physical::FIXED_LEN_BYTE_ARRAY => matches!(converted, C::NONE | C::DECIMAL),
    };
    let is_time_type = physical == Physical::INT96
        || matches!(
            converted,
            C::DATE | C::TIME_MILLIS | C::TIMESTAMP_MILLIS | C::TIMESTAMP_MICROS
        )
        || matches!(
            info.logical_type(),
            Some(LogicalType::Timestamp { .. } | LogicalType::Date | LogicalType::Time { .. })
        );
    if !decodable || (role == ColumnRole::Metric && is_time_type) {
        return Err(refuse(name));
    }
    Ok(())
}

fn time_of(f: &Field, unit: Unit, times: &TimeParser) -> Result<i64, TimeProblem> {
    match *f {
        Field::TimestampMillis(v) => int_time(v, Unit::Millis, times),
        Field::TimestampMicros(v) => int_time(v, Unit::Micros, times),
        Field::Date(d) => Ok(i64::from(d) * 86_400),
        Field::Long(v) => int_time(v, unit, times),
        Field::Byte(v) => times.integer(v.into()),
        Field::Short(v) => times.integer(v.into()),
        Field::Int(v) => times.integer(v.into()),
        Field::UByte(v) => times.integer(v.into()),
        Field::UShort(v) => times.integer(v.into()),
        Field::UInt(v) => times.integer(v.into()),
        Field::ULong(v) => match i64::try_from(v) {
            Ok(v) => times.integer(v),
            Err(_) => times.float(v as f64),
        },
        Field::Float16(v) => times.float(v.to_f64()),
        Field::Float(v) => times.float(v.into()),
        Field::Double(v) => times.float(v),
        Field::Decimal(ref d) => times.float(decimal_to_f64(d).unwrap_or(f64::NAN)),
        Field::Str(ref s) => times.text(s),
        Field::Bytes(ref b) => match std::str::from_utf8(b.data()) {
            Ok(s) => times.text(s),
            Err(_) => Err(TimeProblem {
                text: field_text(f),
                hint: "; binary data, not text".to_string(),
            }),
        },
        Field::Null => Err(TimeProblem {
            text: String::new(),
            hint: "; the timestamp is null".to_string(),
        }),
        _ => Err(TimeProblem {
            text: field_text(f),
            hint: "; expected a timestamp, date, string or integer".to_string(),
        }),
    }
}

fn value_of(f: &Field) -> Result<f64, ValueProblem> {
    match *f {
        Field::Null => Ok(f64::NAN),
        Field::Byte(v) => check_value(v.into()),
        Field::Short(v) => check_value(v.into()),
        Field::Int(v) => check_value(v.into()),
        Field::Long(v) => check_value(v as f64),
        Field::UByte(v) => Ok(v.into()),
        Field::UShort(v) => Ok(v.into()),
        Field::UInt(v) => Ok(v.into()),
        Field::ULong(v) => Ok(v as f64),
        Field::Float16(v) => check_value(v.to_f64()),
        Field::Float(v) => check_value(v.into()),
        Field::Double(v) => check_value(v),
        Field::Decimal(ref d) => {
            decimal_to_f64(d).map_or(Err(ValueProblem::NotNumeric), check_value)
        }
        Field::Str(ref s) => parse_value_text(s),
        Field::Bytes(ref b) => std::str::from_utf8(b.data())
            .map_err(|_| ValueProblem::NotNumeric)
            .and_then(parse_value_text),
        _ => Err(ValueProblem::NotNumeric),
    }
}

/// A field as text for messages (strings unquoted).
fn field_text(f: &Field) -> String {
    match f {
        Field::Str(s) => s.clone(),
        Field::Bytes(b) => String::from_utf8_lossy(b.data()).into_owned(),
        // Field's own Display writes floats in scientific notation.
        Field::Double(v) => v.to_string(),
        Field::Float(v) => v.to_string(),
        Field::Float16(v) => v.to_f64().to_string(),
        other => other.to_string(),
    }
}

/// A Parquet decimal (big-endian two's complement, up to 16 bytes) as f64.
fn decimal_to_f64(d: &Decimal) -> Option<f64> {
    let data = d.data();
    if data.is_empty() || data.len() > 16 {
        return None;
    }
    let mut v: i128 = if data[0] & 0x80 != 0 { -1 } else { 0 };
    for &b in data {
        v = (v << 8) | i128::from(b);
    }
    Some(v as f64 / 10f64.powi(d.scale()))
}

#[cfg(test)]
mod tests {
    use super::super::{read_table, Format, TimeFormat};
    use super::*;
    use parquet::data_type::{
        ByteArray, ByteArrayType, DoubleType, FloatType, Int32Type, Int64Type, Int96, Int96Type,
    };
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;
    use std::sync::Arc;

    /// Column data for [`write`]: values (nulls left out) and, for optional
    /// columns, definition levels.
    enum Col {
        I64(Vec<i64>),
        I32(Vec<i32>),
        F64(Vec<f64>, Option<Vec<i16>>),
        F32(Vec<f32>),
        Str(Vec<&'static str>),
        I96(Vec<Int96>),
    }

    fn write(schema: &str, cols: Vec<Col>) -> Vec<u8> {
        let schema = Arc::new(parse_message_type(schema).unwrap());
        let props = Arc::new(WriterProperties::builder().build());
        let mut buf = Vec::new();
        let mut w = SerializedFileWriter::new(&mut buf, schema, props).unwrap();
        let mut rg = w.next_row_group().unwrap();
        let mut cols = cols.into_iter();
        while let Some(mut c) = rg.next_column().unwrap() {
            match cols.next().unwrap() {
                Col::I64(v) => c.typed::<Int64Type>().write_batch(&v, None, None),
                Col::I32(v) => c.typed::<Int32Type>().write_batch(&v, None, None),
                Col::F32(v) => c.typed::<FloatType>().write_batch(&v, None, None),
                Col::I96(v) => c.typed::<Int96Type>().write_batch(&v, None, None),
                Col::F64(v, def) => c
                    .typed::<DoubleType>()
                    .write_batch(&v, def.as_deref(), None),
                Col::Str(v) => {
                    let v: Vec<ByteArray> = v.into_iter().map(ByteArray::from).collect();
                    c.typed::<ByteArrayType>().write_batch(&v, None, None)
                }
            }
            .unwrap();
            c.close().unwrap();
        }
        rg.close().unwrap();
        w.close().unwrap();
        buf
    }

    fn spec(time: &str, metrics: &[&str], tf: TimeFormat) -> TableSpec {
        TableSpec {
            time_column: time.into(),
            metrics: metrics.iter().map(|m| m.to_string()).collect(),
            time_format: tf,
            step_secs: 300,
        }
    }

    const T0: i64 = 1_577_836_800; // 2020-01-01T00:00:00Z

    fn sample() -> Vec<u8> {
        write(
            "message m { REQUIRED INT64 ts (TIMESTAMP(MILLIS,true)); OPTIONAL DOUBLE cpu; \
             REQUIRED INT32 users; REQUIRED BYTE_ARRAY host (UTF8); }",
            vec![
                Col::I64(vec![T0 * 1000, (T0 + 300) * 1000 + 999, (T0 + 600) * 1000]),
                Col::F64(vec![0.5, 0.75], Some(vec![1, 0, 1])),
                Col::I32(vec![3, 4, 5]),
                Col::Str(vec!["a", "b", "c"]),
            ],
        )
    }

    #[test]
    fn a_parquet_file_with_a_millisecond_timestamp_reads_back() {
        let t = read_table(
            "m.parquet",
            &sample(),
            Format::Parquet,
            &spec("ts", &["users", "cpu"], TimeFormat::Auto),
        )
        .unwrap();
        assert_eq!(t.timestamps, vec![T0, T0 + 300, T0 + 600]);
        assert_eq!(t.columns[0].name, "users");
        assert_eq!(t.columns[0].values, vec![3.0, 4.0, 5.0]);
        assert_eq!(t.columns[1].name, "cpu");
        assert_eq!(t.columns[1].values[0], 0.5);
        assert!(t.columns[1].values[1].is_nan());
        assert_eq!(t.columns[1].values[2], 0.75);
        assert_eq!(t.missing_values, 1);
        assert_eq!(
            columns("m.parquet", &sample()).unwrap(),
            vec!["ts", "cpu", "users", "host"]
        );
    }

    #[test]
    fn a_text_metric_column_is_refused_by_its_values_and_a_missing_one_by_name() {
        let e = read_table(
            "m.parquet",
            &sample(),
            Format::Parquet,
            &spec("ts", &[], TimeFormat::Auto),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(e, "m.parquet: row 1, column 'host': not a number: \"a\"");
        let e = read_table(
            "m.parquet",
            &sample(),
            Format::Parquet,
            &spec("ts", &["user"], TimeFormat::Auto),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "m.parquet: no metric column 'user'; the columns are 'ts', 'cpu', 'users', 'host' \
             (did you mean 'users'?)"
        );
    }

    #[test]
    fn a_timestamp_column_cannot_be_a_metric() {
        let e = read_table(
            "m.parquet",
            &sample(),
            Format::Parquet,
            &spec("users", &["ts"], TimeFormat::Index),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "m.parquet: column 'ts' has type INT64 (TIMESTAMP_MILLIS), which cannot be read as the metric column"
        );
    }

    #[test]
    fn string_nanosecond_and_integer_time_columns_follow_their_types() {
        let bytes = write(
            "message m { REQUIRED BYTE_ARRAY t (UTF8); REQUIRED INT64 n (TIMESTAMP(NANOS,false)); \
             REQUIRED INT64 i; REQUIRED DOUBLE v; }",
            vec![
                Col::Str(vec!["2020-01-01 00:00:00", "2020-01-01 00:05:00"]),
                Col::I64(vec![T0 * 1_000_000_000, (T0 + 300) * 1_000_000_000]),
                Col::I64(vec![0, 1]),
                Col::F64(vec![1.0, 2.0], None),
            ],
        );
        for (time, tf, expect) in [
            ("t", TimeFormat::Auto, [T0, T0 + 300]),
            ("n", TimeFormat::Auto, [T0, T0 + 300]),
            ("i", TimeFormat::Index, [0, 300]),
        ] {
            let t = read_table(
                "m.parquet",
                &bytes,
                Format::Parquet,
                &spec(time, &["v"], tf),
            )
            .unwrap();
            assert_eq!(t.timestamps, expect, "{time}");
            assert_eq!(t.columns[0].values, vec![1.0, 2.0]);
        }
        let e = read_table(
            "m.parquet",
            &bytes,
            Format::Parquet,
            &spec("i", &["v"], TimeFormat::Auto),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("m.parquet: row 1, column 'i': cannot parse timestamp \"0\""),
            "{e}"
        );
        assert!(e.contains("index"), "{e}");
    }

    #[test]
    fn negative_values_and_decreasing_times_name_the_row() {
        let bytes = write(
            "message m { REQUIRED INT64 t; REQUIRED DOUBLE v; }",
            vec![
                Col::I64(vec![10, 20, 15]),
                Col::F64(vec![1.0, -2.0, 3.0], None),
            ],
        );
        let e = read_table(
            "m.parquet",
            &bytes,
            Format::Parquet,
            &spec("t", &[], TimeFormat::Unix),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "m.parquet: row 2, column 'v': negative value (a load cannot be negative): \"-2\""
        );
        let bytes = write(
            "message m { REQUIRED INT64 t; REQUIRED DOUBLE v; }",
            vec![
                Col::I64(vec![10, 20, 15]),
                Col::F64(vec![1.0, 2.0, 3.0], None),
            ],
        );
        let e = read_table(
            "m.parquet",
            &bytes,
            Format::Parquet,
            &spec("t", &[], TimeFormat::Unix),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("m.parquet: row 3, column 't': timestamp 1970-01-01T00:00:15Z is earlier than the previous row's 1970-01-01T00:00:20Z (row 2)"), "{e}");
    }

    #[test]
    fn an_empty_or_foreign_file_is_an_error_not_a_panic() {
        let bytes = write(
            "message m { REQUIRED INT64 t; REQUIRED DOUBLE v; }",
            vec![Col::I64(vec![]), Col::F64(vec![], None)],
        );
        let e = read_table(
            "m.parquet",
            &bytes,
            Format::Parquet,
            &spec("t", &[], TimeFormat::Unix),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "m.parquet: no data rows");
        let e = read_table(
            "m.parquet",
            b"t,v\n1,2\n",
            Format::Parquet,
            &spec("t", &[], TimeFormat::Unix),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("m.parquet: cannot read Parquet: "), "{e}");
        // A truncated file.
        let good = sample();
        for cut in [good.len() / 2, good.len() - 9, 4] {
            let mut bad = good[..cut].to_vec();
            bad.extend_from_slice(&good[good.len() - 8..]);
            let r = read_table(
                "m.parquet",
                &bad,
                Format::Parquet,
                &spec("ts", &["cpu"], TimeFormat::Auto),
            );
            assert!(r.is_err());
        }
    }

    /// `groups` row groups of `per` rows each: a millisecond time one minute
    /// apart from T0 and a value equal to the row index.
    fn grouped(groups: usize, per: usize) -> Vec<u8> {
        let schema = Arc::new(
            parse_message_type(
                "message m { REQUIRED INT64 ts (TIMESTAMP(MILLIS,true)); REQUIRED DOUBLE v; OPTIONAL BYTE_ARRAY s (UTF8); }",
            )
            .unwrap(),
        );
        let props = Arc::new(WriterProperties::builder().build());
        let mut buf = Vec::new();
        let mut w = SerializedFileWriter::new(&mut buf, schema, props).unwrap();
        for g in 0..groups {
            let rows: Vec<i64> = (0..per).map(|i| (g * per + i) as i64).collect();
            let mut rg = w.next_row_group().unwrap();
            let mut c = rg.next_column().unwrap().unwrap();
            let ts: Vec<i64> = rows.iter().map(|r| (T0 + r * 60) * 1000).collect();
            c.typed::<Int64Type>().write_batch(&ts, None, None).unwrap();
            c.close().unwrap();
            let mut c = rg.next_column().unwrap().unwrap();
            let v: Vec<f64> = rows.iter().map(|&r| r as f64).collect();
            c.typed::<DoubleType>().write_batch(&v, None, None).unwrap();
            c.close().unwrap();
            let mut c = rg.next_column().unwrap().unwrap();
            c.typed::<ByteArrayType>()
                .write_batch(
                    &[ByteArray::from("x")],
                    Some(
                        &vec![0; per - 1]
                            .into_iter()
                            .chain([1])
                            .collect::<Vec<i16>>(),
                    ),
                    None,
                )
                .unwrap();
            c.close().unwrap();
            rg.close().unwrap();
        }
        w.close().unwrap();
        buf
    }

    #[test]
    fn row_groups_outside_the_range_are_skipped_and_rows_keep_their_numbers() {
        let bytes = grouped(4, 10);
        let range = TimeRange {
            since: Some(T0 + 25 * 60),
            until: Some(T0 + 31 * 60),
        };
        let t = read_from(
            "g.parquet",
            WideInput::Bytes(Bytes::from(bytes.clone())),
            &spec("ts", &["v"], TimeFormat::Auto),
            &range,
        )
        .unwrap();
        assert_eq!(t.timestamps.first(), Some(&(T0 + 25 * 60)));
        assert_eq!(
            t.columns[0].values,
            vec![25.0, 26.0, 27.0, 28.0, 29.0, 30.0, 31.0]
        );
        // A bad value in a skipped row group is never decoded into an error;
        // one in a read group names its row across groups.
        let e = read_from(
            "g.parquet",
            WideInput::Bytes(Bytes::from(bytes)),
            &spec("ts", &["s"], TimeFormat::Auto),
            &range,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(e, "g.parquet: row 30, column 's': not a number: \"x\"");
    }

    #[test]
    fn a_corrupt_row_group_outside_the_range_is_never_decoded() {
        // Overwrite the page headers of the first row group's time and value
        // chunks: any decode of that group fails.
        let mut bytes = grouped(4, 10);
        let meta = SerializedFileReader::new(Bytes::from(bytes.clone()))
            .unwrap()
            .metadata()
            .clone();
        for c in 0..2 {
            let at = usize::try_from(meta.row_group(0).column(c).data_page_offset()).unwrap();
            bytes[at..at + 8].fill(0xFF);
        }
        let spec = spec("ts", &["v"], TimeFormat::Auto);
        let read = |range: &TimeRange| {
            read_from(
                "g.parquet",
                WideInput::Bytes(Bytes::from(bytes.clone())),
                &spec,
                range,
            )
        };
        let e = read(&TimeRange::ALL).unwrap_err().to_string();
        assert!(e.starts_with("g.parquet: cannot read Parquet: "), "{e}");
        let t = read(&TimeRange {
            since: Some(T0 + 10 * 60),
            until: None,
        })
        .unwrap();
        assert_eq!(t.timestamps.len(), 30);
        assert_eq!(t.columns[0].values[0], 10.0);
    }

    #[test]
    fn small_unsigned_date_and_binary_columns_read_as_their_values() {
        let bytes = write(
            "message m { REQUIRED INT32 d (DATE); REQUIRED INT32 b (INT_8); \
             REQUIRED INT32 u (UINT_16); REQUIRED BYTE_ARRAY x; REQUIRED FLOAT f; }",
            vec![
                Col::I32(vec![18_262, 18_263]),
                Col::I32(vec![7, -3]),
                Col::I32(vec![65_535, 1]),
                Col::Str(vec!["1.5", "2"]),
                Col::F32(vec![0.25, 4.0]),
            ],
        );
        let t = read_table(
            "m.parquet",
            &bytes,
            Format::Parquet,
            &spec("d", &["u", "x", "f"], TimeFormat::Auto),
        )
        .unwrap();
        assert_eq!(t.timestamps, vec![18_262 * 86_400, 18_263 * 86_400]);
        assert_eq!(t.columns[0].values, vec![65_535.0, 1.0]);
        assert_eq!(t.columns[1].values, vec![1.5, 2.0]);
        assert_eq!(t.columns[2].values, vec![0.25, 4.0]);
        // A negative INT_8 is refused by its row, the cell as a number.
        let e = read_table(
            "m.parquet",
            &bytes,
            Format::Parquet,
            &spec("d", &["b"], TimeFormat::Auto),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("m.parquet: row 2, column 'b': "), "{e}");
        assert!(e.contains("-3"), "{e}");
        // A date range keeps whole days: the second day only.
        let t = read_from(
            "m.parquet",
            WideInput::Bytes(Bytes::from(bytes)),
            &spec("d", &["u"], TimeFormat::Auto),
            &TimeRange {
                since: Some(18_262 * 86_400 + 1),
                until: None,
            },
        )
        .unwrap();
        assert_eq!(t.timestamps, vec![18_263 * 86_400]);
    }

    /// An INT96 time (Impala and Spark write these): nanoseconds of the day
    /// in the first eight bytes, the Julian day in the last four.
    fn int96(millis: i64) -> Int96 {
        const JULIAN_DAY_OF_EPOCH: i64 = 2_440_588;
        let day = millis.div_euclid(86_400_000) + JULIAN_DAY_OF_EPOCH;
        let nanos = millis.rem_euclid(86_400_000) * 1_000_000;
        Int96::from(vec![nanos as u32, (nanos >> 32) as u32, day as u32])
    }

    #[test]
    fn int96_times_read_as_seconds_rounded_down_and_filter_by_range() {
        // The parquet crate hands INT96 cells over as milliseconds: read as
        // microseconds they would land in January 1970, and half a second
        // before the epoch is second -1, not 0.
        let bytes = write(
            "message m { REQUIRED INT96 t; REQUIRED DOUBLE v; }",
            vec![
                Col::I96(vec![
                    int96(-500),
                    int96(T0 * 1000),
                    int96((T0 + 300) * 1000 + 999),
                ]),
                Col::F64(vec![1.0, 2.0, 3.0], None),
            ],
        );
        let t = read_table(
            "m.parquet",
            &bytes,
            Format::Parquet,
            &spec("t", &["v"], TimeFormat::Auto),
        )
        .unwrap();
        assert_eq!(t.timestamps, vec![-1, T0, T0 + 300]);
        assert_eq!(t.columns[0].values, vec![1.0, 2.0, 3.0]);
        let t = read_from(
            "m.parquet",
            WideInput::Bytes(Bytes::from(bytes)),
            &spec("t", &["v"], TimeFormat::Auto),
            &TimeRange {
                since: Some(T0),
                until: None,
            },
        )
        .unwrap();
        assert_eq!(t.timestamps, vec![T0, T0 + 300]);
        assert_eq!(t.columns[0].values, vec![2.0, 3.0]);
    }

    #[test]
    fn decimals_convert_with_their_scale() {
        assert_eq!(
            decimal_to_f64(&Decimal::from_i32(12_345, 9, 2)),
            Some(123.45)
        );
        assert_eq!(decimal_to_f64(&Decimal::from_i64(-5, 9, 1)), Some(-0.5));
    }
}
