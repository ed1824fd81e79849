//! NDJSON: one JSON object per line, blank lines skipped.

use super::error::{missing_column, ColumnRole, IngestError, Location, ValueProblem};
use super::limits::{read_line_limited, TooLong, MAX_RECORD_BYTES};
use super::value::{check_value, parse_value_text, TableBuilder, TimeParser, TimeProblem};
use super::{RawTable, TableSpec, TimeRange};
use serde_json::{Map, Value};
use std::io::BufRead;

/// See [`read_table`](super::read_table). The columns are those of the first
/// object: with an empty metric list, its keys other than the time key; with
/// a metric list, each metric must be a key of the first object. A later
/// object without a metric key (or with `null`) has a missing value there;
/// keys that are not columns are ignored. Locations are `line N` (every
/// physical line counts, blank ones too).
pub(crate) fn read(source: &str, bytes: &[u8], spec: &TableSpec) -> Result<RawTable, IngestError> {
    read_from(source, bytes, spec, &TimeRange::ALL)
}

/// Streams NDJSON from `reader`, one line at a time: a line longer than
/// [`MAX_RECORD_BYTES`] fails at once. Rows outside `range` are skipped;
/// reading stops at the first row after `range.until`.
pub(crate) fn read_from<R: BufRead>(
    source: &str,
    mut reader: R,
    spec: &TableSpec,
    range: &TimeRange,
) -> Result<RawTable, IngestError> {
    let times = TimeParser::new(&spec.time_format, spec.step_secs);
    let mut table: Option<TableBuilder> = None;
    let mut buf = Vec::with_capacity(256);
    let mut line_no = 0u64;
    loop {
        line_no += 1;
        let read = read_line_limited(&mut reader, &mut buf, MAX_RECORD_BYTES, line_no)
            .map_err(|e| line_error(source, &e, "JSON line"))?;
        if read.is_none() {
            break;
        }
        let line = buf.trim_ascii();
        if line.is_empty() {
            continue;
        }
        let at = Location::Line(line_no);
        let object = parse_object(source, at, line)?;
        if table.is_none() {
            table = Some(first_table(source, spec, &object)?);
        }
        let Some(table) = table.as_mut() else {
            continue; // never: set just above
        };
        let t = match object.get(&spec.time_column) {
            None | Some(Value::Null) => Err(TimeProblem {
                text: String::new(),
                hint: "; the object has no time value".to_string(),
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
        .map_err(|p| table.time_error(at, p))?;
        if !range.contains(t) {
            if range.is_after(t) && table.rows() > 0 {
                break;
            }
            continue;
        }
        table.start_row(at, t)?;
        for k in 0..table.names().len() {
            let cell = object.get(&table.names()[k]);
            let v = match cell {
                None | Some(Value::Null) => Ok(f64::NAN),
                Some(Value::Number(n)) => check_value(n.as_f64().unwrap_or(f64::NAN)),
                Some(Value::String(s)) => parse_value_text(s),
                Some(_) => Err(ValueProblem::NotNumeric),
            };
            let v = v.map_err(|p| {
                let text = match cell {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => String::new(),
                };
                table.value_error(at, k, &text, p)
            })?;
            table.push_value(k, v);
        }
    }
    match table {
        Some(t) => t.finish_in(range),
        None => Err(IngestError::NoRows {
            file: source.to_string(),
        }),
    }
}

/// An I/O error of a line reader: `RecordTooLong` when the line was too long.
pub(crate) fn line_error(source: &str, e: &std::io::Error, what: &'static str) -> IngestError {
    match TooLong::find(e) {
        Some(t) => IngestError::RecordTooLong {
            file: source.to_string(),
            at: Location::Line(t.line),
            limit: t.limit,
            what,
        },
        None => IngestError::Io {
            file: source.to_string(),
            source: std::io::Error::new(e.kind(), e.to_string()),
        },
    }
}

pub(crate) fn parse_object(
    source: &str,
    at: Location,
    line: &[u8],
) -> Result<Map<String, Value>, IngestError> {
    let malformed = |message: String| IngestError::Malformed {
        file: source.to_string(),
        at,
        syntax: "JSON",
        message,
    };
    match serde_json::from_slice::<Value>(line) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(other) => Err(malformed(format!(
            "expected an object per line, found {}",
            kind(&other)
        ))),
        Err(e) => {
            // serde_json ends its message with " at line 1 column N"; within
            // one line only the column matters.
            let text = e.to_string();
            let text = text.split(" at line ").next().unwrap_or(&text);
            Err(malformed(format!("{text} (character {})", e.column())))
        }
    }
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn first_table<'a>(
    source: &'a str,
    spec: &'a TableSpec,
    first: &Map<String, Value>,
) -> Result<TableBuilder<'a>, IngestError> {
    let keys: Vec<String> = first.keys().cloned().collect();
    if !first.contains_key(&spec.time_column) {
        return Err(missing_column(
            source,
            &spec.time_column,
            ColumnRole::Time,
            keys,
        ));
    }
    let names = if spec.metrics.is_empty() {
        keys.iter()
            .filter(|k| **k != spec.time_column)
            .cloned()
            .collect()
    } else {
        if let Some(m) = spec.metrics.iter().find(|m| !first.contains_key(*m)) {
            return Err(missing_column(source, m, ColumnRole::Metric, keys));
        }
        spec.metrics.clone()
    };
    Ok(TableBuilder::new(source, &spec.time_column, names))
}

#[cfg(test)]
mod tests {
    use super::super::{read_table, Format, TimeFormat};
    use super::*;

    fn spec(time: &str, metrics: &[&str], tf: TimeFormat) -> TableSpec {
        TableSpec {
            time_column: time.into(),
            metrics: metrics.iter().map(|m| m.to_string()).collect(),
            time_format: tf,
            step_secs: 60,
        }
    }

    fn read_json(text: &str, spec: &TableSpec) -> Result<RawTable, IngestError> {
        read_table("m.ndjson", text.as_bytes(), Format::Ndjson, spec)
    }

    #[test]
    fn objects_per_line_read_with_string_times_and_null_values() {
        let text = "{\"ts\":\"2020-01-01T00:00:00Z\",\"cpu\":1.5,\"mem\":2}\n\n\
                    {\"ts\":\"2020-01-01T00:05:00Z\",\"cpu\":null,\"mem\":3,\"extra\":9}\r\n\
                    {\"ts\":\"2020-01-01T00:10:00Z\",\"mem\":4}\n";
        let t = read_json(text, &spec("ts", &[], TimeFormat::Auto)).unwrap();
        assert_eq!(
            t.timestamps,
            vec![1_577_836_800, 1_577_837_100, 1_577_837_400]
        );
        assert_eq!(t.columns.len(), 2);
        assert_eq!(t.columns[0].name, "cpu");
        assert_eq!(t.columns[0].values[0], 1.5);
        assert!(t.columns[0].values[1].is_nan() && t.columns[0].values[2].is_nan());
        assert_eq!(t.columns[1].values, vec![2.0, 3.0, 4.0]);
        assert_eq!(t.missing_values, 2);
    }

    #[test]
    fn numeric_times_follow_the_time_format() {
        let text = "{\"t\":1577836800,\"v\":1}\n{\"t\":1577836860.0,\"v\":2}\n";
        let t = read_json(text, &spec("t", &["v"], TimeFormat::Unix)).unwrap();
        assert_eq!(t.timestamps, vec![1_577_836_800, 1_577_836_860]);
        let e = read_json(text, &spec("t", &["v"], TimeFormat::Auto))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("m.ndjson: line 1, column 't': cannot parse timestamp \"1577836800\""),
            "{e}"
        );
        assert!(e.contains("--time-format unix"), "{e}");
    }

    #[test]
    fn json_errors_name_the_line() {
        let e = read_json(
            "{\"t\":\"2020-01-01\",\"v\":1}\n{\"t\":\n",
            &spec("t", &[], TimeFormat::Auto),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("m.ndjson: line 2: malformed JSON: "), "{e}");
        let e = read_json("[1,2]\n", &spec("t", &[], TimeFormat::Auto))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "m.ndjson: line 1: malformed JSON: expected an object per line, found an array"
        );
    }

    #[test]
    fn missing_keys_and_bad_values_are_named() {
        let s = spec("time", &[], TimeFormat::Auto);
        let e = read_json("{\"t\":\"2020-01-01\",\"v\":1}\n", &s)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "m.ndjson: no time column 'time'; the columns are 't', 'v'"
        );
        let s = spec("t", &["w"], TimeFormat::Auto);
        let e = read_json("{\"t\":\"2020-01-01\",\"v\":1}\n", &s)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("m.ndjson: no metric column 'w'; the columns are 't', 'v'"),
            "{e}"
        );
        let s = spec("t", &[], TimeFormat::Auto);
        let e = read_json(
            "{\"t\":\"2020-01-01\",\"v\":1}\n{\"t\":\"2020-01-02\",\"v\":-1}\n",
            &s,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "m.ndjson: line 2, column 'v': negative value (a load cannot be negative): \"-1\""
        );
        let e = read_json("{\"t\":\"2020-01-01\",\"v\":true}\n", &s)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "m.ndjson: line 1, column 'v': not a number: \"true\"");
        let e = read_json("{\"t\":\"2020-01-01\",\"v\":1}\n{\"v\":2}\n", &s)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("m.ndjson: line 2, column 't': cannot parse timestamp \"\""),
            "{e}"
        );
        let e = read_json(
            "{\"t\":\"2020-01-02\",\"v\":1}\n{\"t\":\"2020-01-01\",\"v\":2}\n",
            &s,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with(
                "m.ndjson: line 2, column 't': timestamp 2020-01-01T00:00:00Z is earlier"
            ),
            "{e}"
        );
    }

    #[test]
    fn blank_input_has_no_data_rows() {
        let e = read_json("\n  \n", &spec("t", &[], TimeFormat::Auto)).unwrap_err();
        assert_eq!(e.to_string(), "m.ndjson: no data rows");
    }
}
