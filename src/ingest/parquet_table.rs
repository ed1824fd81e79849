//! Parquet through the `parquet` crate's record API (no Arrow).
//!
//! Only the time and metric columns are decoded (a projection). They must be
//! top-level primitive columns. The record API panics on a few type
//! combinations it does not implement; those are refused up front by
//! [`check_type`], and a panic inside the decoder on a corrupt file is turned
//! into an [`IngestError::Parquet`] as well.

use super::error::{missing_column, ColumnRole, IngestError, Location, ValueProblem};
use super::value::{check_value, parse_value_text, TableBuilder, TimeParser, TimeProblem};
use super::{RawTable, TableSpec};
use bytes::Bytes;
use parquet::basic::{ConvertedType, LogicalType, Repetition, TimeUnit, Type as Physical};
use parquet::data_type::Decimal;
use parquet::errors::ParquetError;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use parquet::schema::types::{Type, TypePtr};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The top-level column names of a Parquet source, in schema order.
pub(crate) fn columns(source: &str, bytes: &[u8]) -> Result<Vec<String>, IngestError> {
    guarded(source, || {
        let reader = open(source, bytes)?;
        let schema = reader.metadata().file_metadata().schema_descr_ptr();
        Ok(schema
            .root_schema()
            .get_fields()
            .iter()
            .map(|f| f.name().to_string())
            .collect())
    })
}

/// See [`read_table`](super::read_table). Locations are `row N` (1-based).
pub(crate) fn read(source: &str, bytes: &[u8], spec: &TableSpec) -> Result<RawTable, IngestError> {
    guarded(source, || read_unguarded(source, bytes, spec))
}

/// Runs `f`, turning a panic of the Parquet decoder into an error.
fn guarded<T>(source: &str, f: impl FnOnce() -> Result<T, IngestError>) -> Result<T, IngestError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(IngestError::Parquet {
            file: source.to_string(),
            at: None,
            message: "the decoder failed on this file (corrupt, or an unsupported encoding)"
                .to_string(),
        })
    })
}

fn open(source: &str, bytes: &[u8]) -> Result<SerializedFileReader<Bytes>, IngestError> {
    SerializedFileReader::new(Bytes::copy_from_slice(bytes))
        .map_err(|e| parquet_error(source, None, e))
}

fn parquet_error(source: &str, at: Option<Location>, e: ParquetError) -> IngestError {
    IngestError::Parquet {
        file: source.to_string(),
        at,
        message: e.to_string(),
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

fn read_unguarded(source: &str, bytes: &[u8], spec: &TableSpec) -> Result<RawTable, IngestError> {
    let reader = open(source, bytes)?;
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
    let unit = match fields[time_i].get_basic_info().logical_type() {
        Some(LogicalType::Timestamp { unit, .. }) => match unit {
            TimeUnit::MILLIS(_) => Unit::Millis,
            TimeUnit::MICROS(_) => Unit::Micros,
            TimeUnit::NANOS(_) => Unit::Nanos,
        },
        _ => Unit::AsFormat,
    };

    // Decode only the columns needed, in schema order; find each in the row
    // by its position in the projection.
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

    let mut table = TableBuilder::new(
        source,
        &spec.time_column,
        metric_i.iter().map(|&i| names[i].clone()).collect(),
    );
    let times = TimeParser::new(&spec.time_format, spec.step_secs);
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
        table.start_row(at, t)?;
        for (k, &pos) in metric_pos.iter().enumerate() {
            let field = cell(pos);
            let v = value_of(field).map_err(|p| table.value_error(at, k, &field_text(field), p))?;
            table.push_value(k, v);
        }
    }
    table.finish()
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
    let scaled = |v: i64, per_sec: i64| Ok(v.div_euclid(per_sec));
    match *f {
        Field::TimestampMillis(v) => scaled(v, 1_000),
        Field::TimestampMicros(v) => scaled(v, 1_000_000),
        Field::Date(d) => Ok(i64::from(d) * 86_400),
        Field::Long(v) => match unit {
            Unit::AsFormat => times.integer(v),
            Unit::Millis => scaled(v, 1_000),
            Unit::Micros => scaled(v, 1_000_000),
            Unit::Nanos => scaled(v, 1_000_000_000),
        },
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
    use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int32Type, Int64Type};
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
        Str(Vec<&'static str>),
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

    #[test]
    fn decimals_convert_with_their_scale() {
        assert_eq!(
            decimal_to_f64(&Decimal::from_i32(12_345, 9, 2)),
            Some(123.45)
        );
        assert_eq!(decimal_to_f64(&Decimal::from_i64(-5, 9, 1)), Some(-0.5));
    }
}
