//! Ingest throughput: raw application logs (the workshop's format) turned into
//! load series per 5-minute step, and a metric CSV read into columns.
//!
//! `cargo bench --bench ingest`
//!
//! With `MLSCALER_BENCH_PARQUET=FILE` (the wide file of
//! `benches/make_wide_parquet.py`: a `timestamp` and nine metrics) it also
//! reads two of its columns, as `scale` and `train` do, and the same two
//! through a bare polars lazy scan for comparison. With
//! `MLSCALER_BENCH_ONCE=FILE` the binary reads that file once, prints the
//! rows and its peak RSS, and exits (for `/usr/bin/time -v`; see
//! `benches/compare_ingest.sh`).
//!
//! `ingest/long_{csv,parquet}_three_hosts` read the same long table (the
//! whole WorldCup98 trace spread over three hosts, with a second metric to
//! filter out: 751,800 rows) as CSV, row by row, and as Parquet, through
//! polars' lazy engine, into the sum of the hosts' requests per minute.
//!
//! The log input is the bundled 20,000-line log repeated 20 times, each copy a
//! day later with its own ids (400,000 lines, ~38 MB), so sessions pair up as
//! in a real multi-day file. Criterion reports bytes/s; rows/s is that divided
//! by the mean line length (printed once at start).

use criterion::{criterion_group, Criterion, Throughput};
use mlscaler::ingest::{
    aggregate_logs, read_table, read_table_from, Combine, Format, LogOptions, LongSpec, LongTable,
    ParquetPart, RawTable, TableInput, TableSpec, TimeFormat, TimeRange,
};
use std::fmt::Write as _;

const LOGS: &str = include_str!("../data/agilethought_logs.txt");
const WORLDCUP: &[u8] = include_bytes!("../data/worldcup98_requests_per_minute.csv");
const COPIES: i64 = 20;

/// The bundled log repeated `COPIES` times, one day apart, ids made unique.
fn many_days_of_logs() -> Vec<u8> {
    let mut out = String::with_capacity(LOGS.len() * COPIES as usize + 1024);
    for day in 0..COPIES {
        for line in LOGS.lines() {
            let mut fields = line.splitn(3, '\t');
            let (Some(ts), Some(id), Some(rest)) = (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let t = chrono::NaiveDateTime::parse_from_str(ts, "%Y-%m-%d %H:%M:%S")
                .expect("bundled timestamps parse")
                + chrono::Duration::days(day);
            let _ = writeln!(out, "{}\t{id}-{day}\t{rest}", t.format("%Y-%m-%d %H:%M:%S"));
        }
    }
    out.into_bytes()
}

fn bench_logs(c: &mut Criterion) {
    let logs = many_days_of_logs();
    let lines = logs.iter().filter(|b| **b == b'\n').count();
    eprintln!(
        "raw logs: {lines} lines, {} bytes, {:.1} bytes/line",
        logs.len(),
        logs.len() as f64 / lines as f64
    );
    let mut g = c.benchmark_group("ingest");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(logs.len() as u64));
    g.bench_function("raw_logs_5m", |b| {
        b.iter(|| {
            aggregate_logs("bench", &logs[..], 300, &LogOptions::default())
                .expect("the logs aggregate")
        })
    });
    g.throughput(Throughput::Bytes(WORLDCUP.len() as u64));
    let spec = TableSpec {
        time_column: "period".into(),
        metrics: Vec::new(),
        time_format: TimeFormat::Auto,
        step_secs: 60,
    };
    g.bench_function("metric_csv_worldcup98", |b| {
        b.iter(|| read_table("bench", WORLDCUP, Format::Csv, &spec).expect("the CSV reads"))
    });
    g.finish();
}

fn parquet_spec() -> TableSpec {
    TableSpec {
        time_column: "timestamp".into(),
        metrics: vec!["m0".into()],
        time_format: TimeFormat::Auto,
        step_secs: 60,
    }
}

/// Two columns of the wide Parquet file, the way the command line reads a
/// file: by random access (the footer, then the two columns' chunks).
fn read_parquet_two_columns(path: &str, range: &TimeRange) -> usize {
    let file = std::fs::File::open(path).expect("the Parquet file opens");
    read_table_from(
        "bench",
        TableInput::File(file),
        Format::Parquet,
        &parquet_spec(),
        range,
    )
    .expect("the Parquet file parses")
    .len()
}

fn bench_parquet(c: &mut Criterion) {
    let Ok(path) = std::env::var("MLSCALER_BENCH_PARQUET") else {
        eprintln!("note: MLSCALER_BENCH_PARQUET is not set: the Parquet benchmark is skipped");
        return;
    };
    let size = std::fs::metadata(&path)
        .expect("the Parquet file exists")
        .len();
    let mut g = c.benchmark_group("ingest");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(size));
    g.bench_function("parquet_two_of_ten_columns", |b| {
        b.iter(|| read_parquet_two_columns(&path, &TimeRange::ALL))
    });
    // What `scale` reads: the last day (one row group of the file's nine is
    // decoded, the others ruled out by their time statistics).
    let file = std::fs::File::open(&path).expect("the Parquet file opens");
    let all = read_table_from(
        "bench",
        TableInput::File(file),
        Format::Parquet,
        &parquet_spec(),
        &TimeRange::ALL,
    )
    .expect("the Parquet file parses");
    let last = *all.timestamps.last().expect("the file has rows");
    let last_day = TimeRange {
        since: Some(last - 86_399),
        until: None,
    };
    g.bench_function("parquet_two_of_ten_columns_last_day", |b| {
        b.iter(|| read_parquet_two_columns(&path, &last_day))
    });
    // The same two columns through polars' lazy scan alone (no checks, no
    // conversion to a table): what the wide reader would cost at least if
    // it went through polars.
    g.bench_function("parquet_two_of_ten_columns_polars_scan", |b| {
        b.iter(|| polars_two_columns(&path))
    });
    g.finish();
}

fn polars_two_columns(path: &str) -> usize {
    use polars::prelude::*;
    LazyFrame::scan_parquet(path, ScanArgsParquet::default())
        .expect("the scan starts")
        .select([col("timestamp"), col("m0")])
        .collect()
        .expect("the Parquet file reads")
        .height()
}

/// The long table: (epoch seconds, host, metric, value) per minute, host
/// and metric, as CSV bytes and as Parquet bytes (row groups of a day).
fn long_table() -> (Vec<u8>, Vec<u8>) {
    use polars::prelude::*;
    let (mut t, mut host, mut metric, mut value) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut csv = String::from("time,host,metric,value\n");
    for line in std::str::from_utf8(WORLDCUP)
        .expect("UTF-8")
        .lines()
        .skip(1)
    {
        let Some((ts, v)) = line.split_once(',') else {
            continue;
        };
        let at = chrono::NaiveDateTime::parse_from_str(ts, "%Y-%m-%d %H:%M:%S")
            .expect("bundled timestamps parse")
            .and_utc();
        let v: f64 = v.parse().expect("bundled counts parse");
        for (h, share) in ["web-0", "web-1", "web-2"].into_iter().zip([0.5, 0.3, 0.2]) {
            for (m, x) in [
                ("requests", v * share),
                ("errors", (v * share * 0.01).floor()),
            ] {
                let _ = writeln!(csv, "{},{h},{m},{x}", at.format("%Y-%m-%dT%H:%M:%SZ"));
                t.push(at.timestamp_millis());
                host.push(h);
                metric.push(m);
                value.push(x);
            }
        }
    }
    let mut df = DataFrame::new(vec![
        Int64Chunked::new("time".into(), &t)
            .into_datetime(TimeUnit::Milliseconds, None)
            .into_series()
            .into_column(),
        Column::new("host".into(), host),
        Column::new("metric".into(), metric),
        Column::new("value".into(), value),
    ])
    .expect("the columns have one length");
    let mut parquet = Vec::new();
    ParquetWriter::new(&mut parquet)
        .with_row_group_size(Some(1_440 * 6))
        .finish(&mut df)
        .expect("the table writes");
    (csv.into_bytes(), parquet)
}

fn long_spec() -> LongSpec {
    LongSpec {
        value_column: Some("value".into()),
        series_columns: vec!["host".into()],
        filters: vec!["metric=requests".parse().expect("a filter")],
        aggregate: Some(Combine::Sum),
        bucket_secs: Some(60),
        ..LongSpec::default()
    }
}

fn read_long(csv: Option<&[u8]>, parquet: Option<&[u8]>) -> RawTable {
    let mut t = LongTable::new(long_spec(), TimeRange::ALL);
    if let Some(bytes) = csv {
        t.read_csv("bench", bytes).expect("the CSV reads");
    }
    if let Some(bytes) = parquet {
        t.read_parquet("bench", ParquetPart::Bytes(bytes.to_vec()))
            .expect("the Parquet reads");
    }
    t.finish("bench").expect("rows")
}

fn bench_long(c: &mut Criterion) {
    let (csv, parquet) = long_table();
    eprintln!(
        "long table: {} bytes of CSV, {} bytes of Parquet",
        csv.len(),
        parquet.len()
    );
    let a = read_long(Some(&csv), None);
    let b = read_long(None, Some(&parquet));
    assert_eq!(
        (&a.timestamps, &a.columns),
        (&b.timestamps, &b.columns),
        "both formats read the same table"
    );
    let mut g = c.benchmark_group("ingest");
    g.sample_size(10);
    g.bench_function("long_csv_three_hosts", |b| {
        b.iter(|| read_long(Some(&csv), None))
    });
    g.bench_function("long_parquet_three_hosts", |b| {
        b.iter(|| read_long(None, Some(&parquet)))
    });
    g.finish();
}

/// Peak resident memory of this process (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

criterion_group!(benches, bench_logs, bench_long, bench_parquet);

fn main() {
    if let Ok(path) = std::env::var("MLSCALER_BENCH_ONCE") {
        let t0 = std::time::Instant::now();
        let rows = read_parquet_two_columns(&path, &TimeRange::ALL);
        eprintln!(
            "read {rows} rows of 2 columns in {:.3} s, peak RSS {} KiB",
            t0.elapsed().as_secs_f64(),
            peak_rss_kib()
        );
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
