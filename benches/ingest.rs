//! Ingest throughput: raw application logs (the workshop's format) turned into
//! load series per 5-minute step, and a metric CSV read into columns.
//!
//! `cargo bench --bench ingest`
//!
//! With `MLSCALER_BENCH_PARQUET=FILE` (the wide file of
//! `benches/make_wide_parquet.py`: a `timestamp` and nine metrics) it also
//! reads two of its columns, as `scale` and `train` do. With
//! `MLSCALER_BENCH_ONCE=FILE` the binary reads that file once, prints the
//! rows and its peak RSS, and exits (for `/usr/bin/time -v`; see
//! `benches/compare_ingest.sh`).
//!
//! The log input is the bundled 20,000-line log repeated 20 times, each copy a
//! day later with its own ids (400,000 lines, ~38 MB), so sessions pair up as
//! in a real multi-day file. Criterion reports bytes/s; rows/s is that divided
//! by the mean line length (printed once at start).

use criterion::{criterion_group, Criterion, Throughput};
use mlscaler::ingest::{
    aggregate_logs, read_table, read_table_from, Format, LogOptions, TableInput, TableSpec,
    TimeFormat, TimeRange,
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
fn read_parquet_two_columns(path: &str) -> usize {
    let file = std::fs::File::open(path).expect("the Parquet file opens");
    read_table_from(
        "bench",
        TableInput::File(file),
        Format::Parquet,
        &parquet_spec(),
        &TimeRange::ALL,
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
        b.iter(|| read_parquet_two_columns(&path))
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

criterion_group!(benches, bench_logs, bench_parquet);

fn main() {
    if let Ok(path) = std::env::var("MLSCALER_BENCH_ONCE") {
        let t0 = std::time::Instant::now();
        let rows = read_parquet_two_columns(&path);
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
