//! CSV with a header row, through the `csv` crate's `ByteRecord` fast path.

use super::error::{missing_column, ColumnRole, IngestError, Location};
use super::limits::{RecordLimit, TooLong, MAX_RECORD_BYTES};
use super::value::{parse_value_text, TableBuilder, TimeParser, TimeProblem};
use super::{RawTable, TableSpec, TimeRange};
use csv::{ByteRecord, ReaderBuilder, Trim};
use std::io::{BufRead, BufReader, Read};

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The header names of a CSV source, trimmed, in order.
pub(crate) fn header(source: &str, bytes: &[u8]) -> Result<Vec<String>, IngestError> {
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    let mut rdr = ReaderBuilder::new().has_headers(true).from_reader(bytes);
    let headers = rdr.byte_headers().map_err(|e| csv_error(source, e))?;
    Ok(headers
        .iter()
        .map(|h| String::from_utf8_lossy(h).trim().to_string())
        .collect())
}

/// See [`read_table`](super::read_table). Locations are `line N`, the header
/// being line 1.
pub(crate) fn read(source: &str, bytes: &[u8], spec: &TableSpec) -> Result<RawTable, IngestError> {
    read_from(source, bytes, spec, &TimeRange::ALL)
}

/// Streams CSV from `reader`: memory is the table, never the input, and a
/// record longer than [`MAX_RECORD_BYTES`] fails at once. Rows outside
/// `range` are skipped; reading stops at the first row after `range.until`.
pub(crate) fn read_from<R: Read>(
    source: &str,
    reader: R,
    spec: &TableSpec,
    range: &TimeRange,
) -> Result<RawTable, IngestError> {
    let mut input = BufReader::with_capacity(1 << 16, RecordLimit::csv(reader, MAX_RECORD_BYTES));
    skip_bom(source, &mut input)?;
    let mut rdr = ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .trim(Trim::All)
        .from_reader(input);
    let names: Vec<String> = rdr
        .byte_headers()
        .map_err(|e| csv_error(source, e))?
        .iter()
        .map(|h| String::from_utf8_lossy(h).into_owned())
        .collect();
    if names.iter().all(|n| n.is_empty()) {
        return Err(IngestError::NoRows {
            file: source.to_string(),
        });
    }
    let find = |want: &str, role| {
        names
            .iter()
            .position(|n| n == want)
            .ok_or_else(|| missing_column(source, want, role, names.clone()))
    };
    let time_idx = find(&spec.time_column, ColumnRole::Time)?;
    let metric_idx: Vec<usize> = if spec.metrics.is_empty() {
        (0..names.len()).filter(|&i| i != time_idx).collect()
    } else {
        spec.metrics
            .iter()
            .map(|m| find(m, ColumnRole::Metric))
            .collect::<Result<_, _>>()?
    };
    let metric_names = metric_idx.iter().map(|&i| names[i].clone()).collect();
    let mut table = TableBuilder::new(source, &spec.time_column, metric_names);
    let times = TimeParser::new(&spec.time_format, spec.step_secs);

    let mut record = ByteRecord::new();
    while rdr
        .read_byte_record(&mut record)
        .map_err(|e| csv_error(source, e))?
    {
        let at = Location::Line(record.position().map_or(0, |p| p.line()));
        let cell = record.get(time_idx).unwrap_or_default();
        let t = match std::str::from_utf8(cell) {
            Ok(s) => times.text(s),
            Err(_) => Err(TimeProblem {
                text: String::from_utf8_lossy(cell).into_owned(),
                hint: "; the text is not UTF-8".to_string(),
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
        for (k, &i) in metric_idx.iter().enumerate() {
            let cell = record.get(i).unwrap_or_default();
            let v = std::str::from_utf8(cell)
                .map_err(|_| super::error::ValueProblem::NotNumeric)
                .and_then(parse_value_text)
                .map_err(|p| table.value_error(at, k, &String::from_utf8_lossy(cell), p))?;
            table.push_value(k, v);
        }
    }
    table.finish_in(range)
}

/// Skip a UTF-8 byte-order mark at the start of `input`.
fn skip_bom<R: BufRead>(source: &str, input: &mut R) -> Result<(), IngestError> {
    let head = input.fill_buf().map_err(|e| io_error(source, &e))?;
    if head.starts_with(UTF8_BOM) {
        input.consume(UTF8_BOM.len());
    }
    Ok(())
}

fn io_error(source: &str, e: &std::io::Error) -> IngestError {
    match TooLong::find(e) {
        Some(t) => IngestError::RecordTooLong {
            file: source.to_string(),
            at: Location::Line(t.line),
            limit: t.limit,
            what: "CSV record",
        },
        None => IngestError::Io {
            file: source.to_string(),
            source: std::io::Error::new(e.kind(), e.to_string()),
        },
    }
}

fn csv_error(source: &str, e: csv::Error) -> IngestError {
    let line = e.position().map_or(1, |p| p.line());
    let message = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("expected {expected_len} fields like the header, found {len}"),
        csv::ErrorKind::Io(io) => return io_error(source, io),
        _ => e.to_string(),
    };
    IngestError::Malformed {
        file: source.to_string(),
        at: Location::Line(line),
        syntax: "CSV",
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{read_table, Format, TimeFormat};
    use super::*;

    fn spec(time: &str, metrics: &[&str]) -> TableSpec {
        TableSpec {
            time_column: time.into(),
            metrics: metrics.iter().map(|m| m.to_string()).collect(),
            time_format: TimeFormat::Auto,
            step_secs: 60,
        }
    }

    fn read_csv(text: &str, spec: &TableSpec) -> Result<RawTable, IngestError> {
        read_table("data/x.csv", text.as_bytes(), Format::Csv, spec)
    }

    fn err(text: &str, spec: &TableSpec) -> String {
        read_csv(text, spec).unwrap_err().to_string()
    }

    #[test]
    fn a_csv_with_a_header_reads_into_columns_in_row_order() {
        let t = read_csv(
            "\u{feff}period,count,users\n1998-04-30 21:30:00, 2 ,5\n1998-04-30 21:31:00,11,\n",
            &spec("period", &[]),
        )
        .unwrap();
        assert_eq!(t.source, "data/x.csv");
        assert_eq!(t.timestamps, vec![893_971_800, 893_971_860]);
        assert_eq!(t.columns.len(), 2);
        assert_eq!(t.columns[0].name, "count");
        assert_eq!(t.columns[0].values, vec![2.0, 11.0]);
        assert_eq!(t.columns[1].name, "users");
        assert_eq!(t.columns[1].values[0], 5.0);
        assert!(t.columns[1].values[1].is_nan());
        assert_eq!(t.missing_values, 1);
    }

    #[test]
    fn only_the_requested_metrics_are_read_in_the_requested_order() {
        let t = read_csv(
            "a,timestamp,b,c\n1,2020-01-01,2,x\n3,2020-01-02,4,y\n",
            &spec("timestamp", &["b", "a"]),
        )
        .unwrap();
        let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["b", "a"]);
        assert_eq!(t.columns[1].values, vec![1.0, 3.0]);
    }

    #[test]
    fn nan_null_and_empty_cells_are_missing_values_not_errors() {
        let t = read_csv(
            "t,v\n2020-01-01,NaN\n2020-01-02,nan\n2020-01-03,\n2020-01-04,null\n2020-01-05,7\n",
            &spec("t", &["v"]),
        )
        .unwrap();
        assert_eq!(t.missing_values, 4);
        assert_eq!(t.columns[0].values[4], 7.0);
    }

    #[test]
    fn a_missing_time_column_names_it_and_lists_the_columns() {
        let e = err(
            "period,count\n1998-04-30 21:30:00,2\n",
            &spec("timestamp", &[]),
        );
        assert_eq!(
            e,
            "data/x.csv: no time column 'timestamp'; the columns are 'period', 'count'"
        );
    }

    #[test]
    fn a_missing_metric_column_names_it_and_suggests_a_near_miss() {
        let e = err(
            "period,count\n1998-04-30 21:30:00,2\n",
            &spec("period", &["cout"]),
        );
        assert!(e.starts_with("data/x.csv: no metric column 'cout';"), "{e}");
        assert!(e.contains("'period', 'count'"), "{e}");
        assert!(e.contains("did you mean 'count'?"), "{e}");
    }

    #[test]
    fn an_unparsable_timestamp_names_the_line_column_and_text() {
        let e = err(
            "period,count\n1998-04-30 21:30:00,2\n1998-13-01 00:00,3\n",
            &spec("period", &[]),
        );
        assert!(
            e.starts_with(
                "data/x.csv: line 3, column 'period': cannot parse timestamp \"1998-13-01 00:00\""
            ),
            "{e}"
        );
    }

    #[test]
    fn integer_timestamps_in_auto_mode_suggest_a_time_format() {
        let e = err("day,users\n0,5\n1,6\n", &spec("day", &[]));
        assert!(e.contains("line 2, column 'day'"), "{e}");
        assert!(e.contains("--time-format unix"), "{e}");
        let mut s = spec("day", &[]);
        s.time_format = TimeFormat::Index;
        s.step_secs = 86_400;
        let t = read_csv("day,users\n0,5\n1,6\n", &s).unwrap();
        assert_eq!(t.timestamps, vec![0, 86_400]);
    }

    #[test]
    fn a_duplicate_timestamp_names_the_line_and_both_times() {
        let e = err(
            "t,v\n2020-01-01 00:00:00,1\n2020-01-01 00:01:00,2\n2020-01-01 00:01:00,3\n",
            &spec("t", &[]),
        );
        assert_eq!(
            e,
            "data/x.csv: line 4, column 't': timestamp 2020-01-01T00:01:00Z is the same as \
             the previous row's 2020-01-01T00:01:00Z (line 3); timestamps must be strictly increasing"
        );
    }

    #[test]
    fn an_earlier_timestamp_is_an_error() {
        let e = err("t,v\n2020-01-02,1\n2020-01-01,2\n", &spec("t", &[]));
        assert!(e.contains("line 3"), "{e}");
        assert!(
            e.contains(
                "2020-01-01T00:00:00Z is earlier than the previous row's 2020-01-02T00:00:00Z"
            ),
            "{e}"
        );
    }

    #[test]
    fn negative_infinite_and_text_values_name_line_column_and_value() {
        let e = err("t,count\n2020-01-01,1\n2020-01-02,-3\n", &spec("t", &[]));
        assert_eq!(
            e,
            "data/x.csv: line 3, column 'count': negative value (a load cannot be negative): \"-3\""
        );
        let e = err("t,count\n2020-01-01,inf\n", &spec("t", &[]));
        assert_eq!(
            e,
            "data/x.csv: line 2, column 'count': infinite value: \"inf\""
        );
        let e = err("t,count\n2020-01-01,lots\n", &spec("t", &[]));
        assert_eq!(
            e,
            "data/x.csv: line 2, column 'count': not a number: \"lots\""
        );
    }

    #[test]
    fn a_header_without_rows_or_an_empty_file_has_no_data_rows() {
        assert_eq!(err("t,v\n", &spec("t", &[])), "data/x.csv: no data rows");
        assert_eq!(err("", &spec("t", &[])), "data/x.csv: no data rows");
        assert_eq!(err(" \n\n", &spec("t", &[])), "data/x.csv: no data rows");
    }

    #[test]
    fn a_row_with_the_wrong_number_of_fields_names_its_line() {
        let e = err("t,v\n2020-01-01,1\n2020-01-02,2,3\n", &spec("t", &[]));
        assert_eq!(
            e,
            "data/x.csv: line 3: malformed CSV: expected 2 fields like the header, found 3"
        );
    }

    #[test]
    fn the_header_lists_trimmed_names() {
        assert_eq!(
            header("x.csv", b"\xEF\xBB\xBFperiod, count\n1,2\n").unwrap(),
            vec!["period".to_string(), "count".to_string()]
        );
    }
}
