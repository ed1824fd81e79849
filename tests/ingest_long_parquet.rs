//! Long tables in Parquet (read through polars) read exactly as the same
//! table in CSV (read row by row): built from three days of the bundled
//! WorldCup98 requests, spread over three hosts, with a second metric to
//! filter out, two rows per host and minute, and rows out of time order.

#[path = "support/azurite.rs"]
mod azurite;
#[path = "support/cli.rs"]
mod cli;

use cli::{data, no_storage, train_small_json};
use mlscaler::app::source::{self, DataSource, RawLoaded, ReadOptions};
use mlscaler::ingest::{Combine, Format};
use polars::prelude::*;
use std::path::{Path, PathBuf};

const HOSTS: [&str; 3] = ["web-0", "web-1", "web-2"];
/// 1998-06-29 00:00 UTC: three days of the World Cup's busiest weeks.
const START: i64 = 899_078_400;
const DAYS: i64 = 3;

/// Requests per minute of the bundled WorldCup98 trace in [START, START + DAYS).
fn worldcup() -> Vec<(i64, f64)> {
    let text = std::fs::read_to_string(data("worldcup98_requests_per_minute.csv")).unwrap();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let (t, v) = l.split_once(',')?;
            let t = chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S")
                .ok()?
                .and_utc()
                .timestamp();
            (START..START + DAYS * 86_400)
                .contains(&t)
                .then(|| (t, v.parse().unwrap()))
        })
        .collect()
}

/// One long row: time (epoch seconds), host, metric, value.
type Row = (i64, &'static str, &'static str, Option<f64>);

/// Per minute and host two rows (:00 and :30) that add up to the host's
/// share of the minute's requests (1/2, 1/3, 1/6), and an `errors` row.
/// Each hour's rows are written in reverse, and one value is missing.
fn long_rows() -> Vec<Row> {
    let mut rows = Vec::new();
    for (i, (t, v)) in worldcup().into_iter().enumerate() {
        for (h, share) in HOSTS.iter().zip([3.0, 2.0, 1.0]) {
            let mine = v * share / 6.0;
            let first = (mine * 0.4).floor();
            rows.push((t, *h, "requests", Some(first)));
            rows.push((t + 30, *h, "requests", Some(mine - first)));
            rows.push((t, *h, "errors", Some((i % 7) as f64)));
        }
    }
    for hour in rows.chunks_mut(60 * 9) {
        hour.reverse();
    }
    rows[100].3 = None;
    rows
}

fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn write_csv(path: &Path, rows: &[Row]) {
    let mut s = String::from("time,host,metric,value\n");
    for (t, h, m, v) in rows {
        let v = v.map(|v| v.to_string()).unwrap_or_default();
        s += &format!("{},{h},{m},{v}\n", rfc3339(*t));
    }
    std::fs::write(path, s).unwrap();
}

/// How the time column is written.
#[derive(Clone, Copy)]
enum Time {
    /// A timestamp without a time zone (milliseconds).
    Naive,
    /// A timestamp in UTC (microseconds), as pandas and pyarrow write one.
    Utc,
    /// RFC 3339 text.
    Text,
}

/// The rows as Parquet in row groups of a day's minutes, so that a time
/// range can skip some.
fn write_parquet(path: &Path, rows: &[Row], time: Time) {
    let ticks = |per_second: i64| -> Vec<i64> { rows.iter().map(|r| r.0 * per_second).collect() };
    let time = match time {
        Time::Text => Column::new(
            "time".into(),
            rows.iter().map(|r| rfc3339(r.0)).collect::<Vec<_>>(),
        ),
        Time::Naive => Int64Chunked::new("time".into(), &ticks(1_000))
            .into_datetime(TimeUnit::Milliseconds, None)
            .into_series()
            .into_column(),
        Time::Utc => Int64Chunked::new("time".into(), &ticks(1_000_000))
            .into_datetime(TimeUnit::Microseconds, Some("UTC".into()))
            .into_series()
            .into_column(),
    };
    let mut df = DataFrame::new(vec![
        time,
        Column::new("host".into(), rows.iter().map(|r| r.1).collect::<Vec<_>>()),
        Column::new(
            "metric".into(),
            rows.iter().map(|r| r.2).collect::<Vec<_>>(),
        ),
        Column::new("value".into(), rows.iter().map(|r| r.3).collect::<Vec<_>>()),
    ])
    .unwrap();
    let file = std::fs::File::create(path).unwrap();
    ParquetWriter::new(file)
        .with_row_group_size(Some(1_440 * 9))
        .finish(&mut df)
        .unwrap();
}

struct Pair {
    _dir: tempfile::TempDir,
    csv: PathBuf,
    parquet: PathBuf,
    text_time: PathBuf,
    utc: PathBuf,
}

fn pair() -> Pair {
    let dir = tempfile::tempdir().unwrap();
    let rows = long_rows();
    let csv = dir.path().join("long.csv");
    let parquet = dir.path().join("long.parquet");
    let text_time = dir.path().join("text-time.parquet");
    let utc = dir.path().join("utc.parquet");
    write_csv(&csv, &rows);
    write_parquet(&parquet, &rows, Time::Naive);
    write_parquet(&text_time, &rows, Time::Text);
    write_parquet(&utc, &rows, Time::Utc);
    Pair {
        _dir: dir,
        csv,
        parquet,
        text_time,
        utc,
    }
}

fn load(path: &Path, opts: &ReadOptions) -> anyhow::Result<RawLoaded> {
    let src = DataSource::resolve(Some(path.to_str().unwrap()), &no_storage())?;
    source::load_raw(&src, opts)
}

fn requests(aggregate: Option<Combine>) -> ReadOptions {
    ReadOptions {
        filters: vec!["metric=REQUESTS".parse().unwrap()],
        series_columns: vec!["host".into()],
        value_column: Some("value".into()),
        aggregate,
        step: Some("1m".parse().unwrap()),
        agg: "sum".parse().unwrap(),
        ..ReadOptions::default()
    }
}

/// Same times, names and values (to rounding: polars sums in another order).
fn assert_same(a: &RawLoaded, b: &RawLoaded) {
    assert_eq!(a.step, b.step);
    assert_eq!(a.table.timestamps, b.table.timestamps);
    let names = |t: &RawLoaded| {
        t.table
            .columns
            .iter()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(a), names(b));
    for (x, y) in a.table.columns.iter().zip(&b.table.columns) {
        for (i, (p, q)) in x.values.iter().zip(&y.values).enumerate() {
            assert!(
                (p.is_nan() && q.is_nan()) || (p - q).abs() <= 1e-9 * p.abs().max(1.0),
                "{} at {i}: {p} vs {q}",
                x.name
            );
        }
    }
    assert_eq!(a.table.missing_values, b.table.missing_values);
}

#[test]
fn a_long_parquet_table_reads_as_the_same_table_in_csv() {
    let p = pair();
    let truth = worldcup();

    // The sum across hosts is the trace itself, minute by minute.
    let csv = load(&p.csv, &requests(Some(Combine::Sum))).unwrap();
    let parquet = load(&p.parquet, &requests(Some(Combine::Sum))).unwrap();
    assert_eq!(parquet.format, Format::Parquet);
    assert_same(&csv, &parquet);
    assert_eq!(parquet.table.len(), truth.len());
    assert_eq!(parquet.step.secs(), 60);
    let stats = parquet.long_stats.clone().unwrap();
    assert_eq!(stats, csv.long_stats.clone().unwrap());
    assert_eq!(stats.rows, truth.len() as u64 * 9);
    assert_eq!(stats.filtered_out, truth.len() as u64 * 3);
    assert_eq!(stats.missing_values, 1);
    assert_eq!(stats.series, 3);
    let mut off = 0;
    for (i, (t, v)) in truth.iter().enumerate() {
        assert_eq!(parquet.table.timestamps[i], *t);
        let got = parquet.table.columns[0].values[i];
        if (got - v).abs() > 1e-6 {
            off += 1;
        }
    }
    // Only the minute whose row is missing (web-2's :30 row of 00:48)
    // differs from the trace.
    assert_eq!(off, 1);

    // One column per host, named by it; the same with the time as text or
    // as a UTC timestamp.
    let each = load(&p.parquet, &requests(None)).unwrap();
    assert_same(&load(&p.csv, &requests(None)).unwrap(), &each);
    assert_same(&load(&p.text_time, &requests(None)).unwrap(), &each);
    assert_same(&load(&p.utc, &requests(None)).unwrap(), &each);
    let names: Vec<&str> = each.table.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        HOSTS.iter().rev().copied().collect::<Vec<_>>(),
        "first seen first"
    );

    // Five-minute steps, the latest value within a step and host, and the
    // mean across hosts.
    for (agg, across) in [
        ("last", Some(Combine::Mean)),
        ("max", Some(Combine::Max)),
        ("sum", None),
    ] {
        let opts = ReadOptions {
            step: Some("5m".parse().unwrap()),
            agg: agg.parse().unwrap(),
            ..requests(across)
        };
        let a = load(&p.csv, &opts).unwrap();
        let b = load(&p.parquet, &opts).unwrap();
        assert_eq!(b.table.len(), truth.len() / 5, "{agg}");
        assert_same(&a, &b);
    }
}

#[test]
fn a_time_range_reads_the_same_rows_and_counts_the_rest_as_out_of_range() {
    let p = pair();
    let since = START + 86_400 + 3_600;
    let until = START + 2 * 86_400 - 1;
    let opts = ReadOptions {
        since: Some(since),
        until: Some(until),
        ..requests(Some(Combine::Sum))
    };
    let csv = load(&p.csv, &opts).unwrap();
    for path in [&p.parquet, &p.text_time, &p.utc] {
        let parquet = load(path, &opts).unwrap();
        assert_same(&csv, &parquet);
        assert_eq!(parquet.table.timestamps.first(), Some(&since));
        assert_eq!(parquet.table.timestamps.last(), Some(&(until - 59)));
        let stats = parquet.long_stats.unwrap();
        // Every row outside the range counts as out of range here, whatever
        // its metric (the CSV reader filters first).
        assert_eq!(stats.rows, 3 * 1_440 * 9);
        assert_eq!(stats.out_of_range, (3 * 1_440 - 23 * 60) * 9);
        assert_eq!(stats.filtered_out, 23 * 60 * 3);
    }
}

/// Row groups the time range rules out are never decoded: with the first
/// day's pages overwritten, the whole file fails and the second day reads as
/// from the intact file.
#[test]
fn row_groups_outside_the_range_are_never_decoded() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let p = pair();
    for path in [&p.parquet, &p.utc] {
        let mut bytes = std::fs::read(path).unwrap();
        let meta = SerializedFileReader::new(bytes::Bytes::from(bytes.clone()))
            .unwrap()
            .metadata()
            .clone();
        assert_eq!(meta.num_row_groups(), DAYS as usize, "a row group per day");
        for c in meta.row_group(0).columns() {
            let at = usize::try_from(c.data_page_offset()).unwrap();
            bytes[at..at + 8].fill(0xFF);
        }
        let dir = tempfile::tempdir().unwrap();
        let corrupt = dir.path().join("corrupt.parquet");
        std::fs::write(&corrupt, &bytes).unwrap();
        let opts = ReadOptions {
            since: Some(START + 86_400 + 3_600),
            until: Some(START + 2 * 86_400 - 1),
            ..requests(Some(Combine::Sum))
        };
        assert!(load(&corrupt, &requests(Some(Combine::Sum))).is_err());
        let intact = load(path, &opts).unwrap();
        let read = load(&corrupt, &opts).unwrap();
        assert_same(&intact, &read);
        assert_eq!(read.long_stats, intact.long_stats);
    }
}

/// Filters ignore ASCII case only, in every format: `Ärger` matches `ÄRGER`
/// but not `ärger` (a Unicode lower-casing would match neither).
#[test]
fn filters_ignore_ascii_case_only_as_in_csv() {
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<Row> = vec![
        (START, "web-0", "Ärger", Some(1.0)),
        (START, "web-0", "ärger", Some(10.0)),
        (START + 60, "web-0", "ÄRGER", Some(4.0)),
        (START + 60, "web-0", "Ärger", Some(2.0)),
        (START + 60, "web-0", "other", Some(100.0)),
    ];
    let csv = dir.path().join("umlaut.csv");
    let parquet = dir.path().join("umlaut.parquet");
    write_csv(&csv, &rows);
    write_parquet(&parquet, &rows, Time::Naive);
    let opts = ReadOptions {
        filters: vec!["metric=Ärger".parse().unwrap()],
        ..requests(Some(Combine::Sum))
    };
    let a = load(&csv, &opts).unwrap();
    let b = load(&parquet, &opts).unwrap();
    assert_same(&a, &b);
    assert_eq!(b.table.timestamps, vec![START, START + 60]);
    assert_eq!(b.table.columns[0].values, vec![1.0, 6.0]);
    assert_eq!(b.long_stats.unwrap().filtered_out, 2);
}

#[test]
fn bad_rows_are_named_by_file_and_row() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = long_rows();
    rows[41].3 = Some(-3.0);
    let path = dir.path().join("negative.parquet");
    write_parquet(&path, &rows, Time::Naive);
    let e = format!("{:#}", load(&path, &requests(None)).err().unwrap());
    assert!(
        e.contains("negative.parquet: row 42, column 'value'"),
        "{e}"
    );

    // A time that does not parse, in a text time column.
    let path = dir.path().join("bad-time.parquet");
    let mut df = df!(
        "time" => ["2026-11-30T12:00:00Z", "2026-11-30T12:01:00Z", "yesterday"],
        "host" => ["a", "a", "a"],
        "value" => [1.0, 2.0, 3.0],
    )
    .unwrap();
    ParquetWriter::new(std::fs::File::create(&path).unwrap())
        .finish(&mut df)
        .unwrap();
    let unfiltered = ReadOptions {
        filters: Vec::new(),
        ..requests(None)
    };
    let e = format!("{:#}", load(&path, &unfiltered).err().unwrap());
    assert!(
        e.contains("bad-time.parquet: row 3, column 'time': cannot parse timestamp \"yesterday\""),
        "{e}"
    );

    // A text value column, and a value column that is not there.
    let path = dir.path().join("text-value.parquet");
    let mut df = df!(
        "time" => ["2026-11-30T12:00:00Z"],
        "host" => ["a"],
        "value" => ["1.5"],
        "metric" => ["requests"],
    )
    .unwrap();
    ParquetWriter::new(std::fs::File::create(&path).unwrap())
        .finish(&mut df)
        .unwrap();
    let e = format!("{:#}", load(&path, &requests(None)).err().unwrap());
    assert!(
        e.contains("column 'value' has type str, which cannot be read as the metric column"),
        "{e}"
    );
    let e = format!(
        "{:#}",
        load(
            &path,
            &ReadOptions {
                value_column: Some("cpu".into()),
                ..requests(None)
            }
        )
        .err()
        .unwrap()
    );
    assert!(
        e.contains("text-value.parquet") && e.contains("'cpu'"),
        "{e}"
    );

    // Summing two metrics is refused, as in every format.
    let path = dir.path().join("long.parquet");
    write_parquet(&path, &long_rows(), Time::Naive);
    let e = format!(
        "{:#}",
        load(
            &path,
            &ReadOptions {
                filters: Vec::new(),
                series_columns: vec!["metric".into(), "host".into()],
                ..requests(Some(Combine::Sum))
            }
        )
        .err()
        .unwrap()
    );
    assert!(e.contains("column 'metric' holds several values"), "{e}");
}

/// `train` on a long Parquet table: the requests summed over the hosts.
fn train(dir: &Path, data: &str, env: &[(&str, &str)]) -> serde_json::Value {
    let args = [
        "--data",
        data,
        "--filter",
        "metric=requests",
        "--series-column",
        "host",
        "--value-column",
        "value",
        "--aggregate",
        "sum",
        "--step",
        "1m",
        "--agg",
        "sum",
        "--since",
        "1998-06-30T00:00:00Z",
    ];
    train_small_json(dir, &args, env)
}

#[test]
fn train_reads_a_long_parquet_table_from_a_file_and_from_blob_storage() {
    let dir = tempfile::tempdir().unwrap();
    // A folder named like a partition of the table's own column: its name
    // adds no column.
    let path = dir.path().join("host=all").join("long.parquet");
    std::fs::create_dir(path.parent().unwrap()).unwrap();
    write_parquet(&path, &long_rows(), Time::Naive);
    let local = train(dir.path(), path.to_str().unwrap(), &[]);
    assert_eq!(local["card"]["window_steps"], 2 * 1_440, "{local}");

    let Some(az) = azurite::Azurite::from_env() else {
        return;
    };
    let container = az.create_container("metrics");
    az.upload(
        &container,
        "web/long.parquet",
        &std::fs::read(&path).unwrap(),
    );
    let cs = az.connection_string();
    let url = az.url(&container, "web/long.parquet");
    let blob = train(
        dir.path(),
        &url,
        &[("AZURE_STORAGE_CONNECTION_STRING", cs.as_str())],
    );
    assert_eq!(blob["card"]["window_steps"], local["card"]["window_steps"]);
    assert_eq!(blob["card"]["metrics"], local["card"]["metrics"], "{blob}");
}
