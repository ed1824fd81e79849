//! Every parser takes arbitrary bytes without panicking (issue 12): CSV,
//! NDJSON, Parquet, raw logs, Azure Monitor JSON lines, long tables and job
//! traces, fed random bytes and mutations of valid inputs. Each either reads
//! a table or returns an error; none panics.
//!
//! `PROPTEST_CASES=N` runs more cases (`scripts/fuzz-ingest` runs many in
//! release mode).

use mlscaler::ingest::{
    aggregate_logs, read_job_trace, read_table, read_table_from, Combine, Format, LogOptions,
    LongSpec, LongTable, TableInput, TableSpec, TimeFormat, TimeRange,
};
use proptest::prelude::*;

fn spec(time: &str, tf: TimeFormat) -> TableSpec {
    TableSpec {
        time_column: time.into(),
        metrics: Vec::new(),
        time_format: tf,
        step_secs: 60,
    }
}

const FORMATS: [Format; 5] = [
    Format::Csv,
    Format::Ndjson,
    Format::Parquet,
    Format::Logs,
    Format::AzureMonitor,
];

/// Every way of reading `bytes`: whole and streamed, every format, several
/// time formats, a long table, a job trace. Only panics matter.
fn read_every_way(bytes: &[u8]) {
    for format in FORMATS {
        for tf in [TimeFormat::Auto, TimeFormat::Unix, TimeFormat::Index] {
            let s = spec("t", tf);
            let _ = read_table("fuzz", bytes, format, &s);
            let range = TimeRange {
                since: Some(0),
                until: Some(2_000_000_000),
            };
            let _ = read_table_from(
                "fuzz",
                TableInput::Stream(Box::new(bytes)),
                format,
                &s,
                &range,
            );
        }
        let _ = read_job_trace("fuzz", bytes, format, &TimeFormat::Auto);
    }
    let _ = aggregate_logs("fuzz", bytes, 300, &LogOptions::default());
    for aggregate in [None, Some(Combine::Sum)] {
        let long = LongSpec {
            value_column: Some("v".into()),
            series_columns: vec!["s".into()],
            filters: vec!["k=x".parse().unwrap()],
            aggregate,
            bucket_secs: Some(300),
            ..LongSpec::default()
        };
        let mut t = LongTable::new(long.clone(), TimeRange::ALL);
        if t.read_json_lines("fuzz", bytes).is_ok() {
            let _ = t.finish("fuzz");
        }
        let mut t = LongTable::new(long, TimeRange::ALL);
        if t.read_csv("fuzz", bytes).is_ok() {
            let _ = t.finish("fuzz");
        }
    }
}

/// Valid inputs to mutate.
fn seeds() -> Vec<Vec<u8>> {
    let metric = r#"{"count":4,"total":40,"minimum":1,"maximum":19,"average":10,"resourceId":"/SUBSCRIPTIONS/S/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.COMPUTE/VIRTUALMACHINES/VM1","time":"2026-11-30T12:01:00.0000000Z","metricName":"Percentage CPU","timeGrain":"PT1M"}"#;
    vec![
        b"t,v\n2020-01-01 00:00:00,1\n2020-01-01 00:01:00,2.5\n2020-01-01 00:02:00,\n".to_vec(),
        b"{\"t\":\"2020-01-01T00:00:00Z\",\"v\":1,\"s\":\"a\",\"k\":\"x\"}\n{\"t\":1577836860,\"v\":null}\n"
            .to_vec(),
        format!("{metric}\n{metric}\n").into_bytes(),
        format!("{{\"records\":[{metric},{metric}]}}\n").into_bytes(),
        b"2019-06-15 01:01:07\tid-1\tINFO\tEnd User Session Start\t\t\n\
          2019-06-15 01:03:07\tid-1\tINFO\tEnd User Session End\t\t\n\
          2019-06-15 01:04:07\tj-1\tINFO\tCreateUsersJobHandler.cs Job Start\t\t\n"
            .to_vec(),
        b"submit,duration,nodes\n2020-01-01T00:00:00Z,60,1\n".to_vec(),
        parquet_seed(),
    ]
}

/// A small valid Parquet file: a millisecond timestamp and two metrics.
fn parquet_seed() -> Vec<u8> {
    use parquet::data_type::{DoubleType, Int64Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;
    use std::sync::Arc;
    let schema = Arc::new(
        parse_message_type(
            "message m { REQUIRED INT64 t (TIMESTAMP(MILLIS,true)); OPTIONAL DOUBLE v; REQUIRED INT64 n; }",
        )
        .unwrap(),
    );
    let mut buf = Vec::new();
    let mut w = SerializedFileWriter::new(
        &mut buf,
        schema,
        Arc::new(WriterProperties::builder().build()),
    )
    .unwrap();
    let mut rg = w.next_row_group().unwrap();
    let mut i = 0;
    while let Some(mut c) = rg.next_column().unwrap() {
        match i {
            0 => c.typed::<Int64Type>().write_batch(
                &[1_577_836_800_000, 1_577_836_860_000, 1_577_836_920_000],
                None,
                None,
            ),
            1 => c
                .typed::<DoubleType>()
                .write_batch(&[1.0, 3.0], Some(&[1, 0, 1]), None),
            _ => c.typed::<Int64Type>().write_batch(&[5, 6, 7], None, None),
        }
        .unwrap();
        c.close().unwrap();
        i += 1;
    }
    rg.close().unwrap();
    w.close().unwrap();
    buf
}

#[test]
fn the_seeds_are_valid_inputs() {
    let s = seeds();
    assert!(read_table("csv", &s[0], Format::Csv, &spec("t", TimeFormat::Auto)).is_ok());
    let t = read_table("pq", &s[6], Format::Parquet, &spec("t", TimeFormat::Auto)).unwrap();
    assert_eq!(t.len(), 3);
}

/// 64 per property, or `PROPTEST_CASES`.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        read_every_way(&bytes);
    }

    #[test]
    fn text_like_bytes_never_panic(text in "[0-9a-zA-Z:,.\\-\"{}\\[\\] \t\n=_/TZ]{0,600}") {
        read_every_way(text.as_bytes());
    }

    #[test]
    fn mutated_valid_inputs_never_panic(
        seed in 0usize..7,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..12),
    ) {
        let mut bytes = seeds()[seed].clone();
        for (at, byte, op) in edits {
            if bytes.is_empty() {
                bytes.push(byte);
                continue;
            }
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ => {
                    bytes.remove(i);
                }
            }
        }
        read_every_way(&bytes);
    }
}
