//! Where training data comes from: a file, a folder, Blob Storage, or the
//! bundled sample; and turning it into a [`LoadSeries`].
//!
//! The command takes the checked [`ReadOptions`] from its settings
//! ([`crate::settings::data`]: the reading flags, `--since` and `--until`),
//! narrows the time range to what it needs (`scale`: the recent window of
//! [`crate::app::scale::inputs::recent`]), then calls [`load`] or
//! [`load_raw`]. Reading honours the range everywhere it can: files and
//! blobs named in Azure's hourly partitions (`.../y=/m=/d=/h=/...`) outside
//! it are not opened (blobs not downloaded), Parquet row groups outside it
//! are not decoded, and text stops at the first row after `until`.

use super::storage;
use crate::core::forecast::calendar::Calendar;
use crate::core::forecast::series::{self, Aggregation, GapPolicy, LoadSeries, ResampleReport};
use crate::core::time::Step;
pub use crate::ingest::ReadOptions;
use crate::ingest::{
    self, Combine, Format, LogOptions, LogStats, LongSpec, LongStats, LongTable, ParquetPart,
    RawTable, TableInput, TableSpec, TimeRange,
};
use crate::settings::data::StorageAccess;
use crate::store::ObjectStore;
use anyhow::{bail, Context, Result};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// The bundled sample: WorldCup98 requests per minute (see data/README.md).
pub const SAMPLE_NAME: &str = "bundled:worldcup98_requests_per_minute.csv";
const SAMPLE: &[u8] = include_bytes!("../../data/worldcup98_requests_per_minute.csv");

/// One file or blob of the input, read in name order.
enum Part {
    File(PathBuf),
    Object(String),
    Embedded(&'static str, &'static [u8]),
}

/// A resolved data source.
pub struct DataSource {
    /// The location as the user gave it, without secrets.
    pub location: String,
    parts: Vec<Part>,
    store: Option<Box<dyn ObjectStore>>,
    /// The parts the last load read (those in its time range).
    read: std::sync::Mutex<Option<Vec<String>>>,
}

impl DataSource {
    /// Resolve `--data` (or the storage flags, or the bundled sample).
    pub fn resolve(data: Option<&str>, st: &StorageAccess) -> Result<DataSource> {
        match data {
            None if st.container.is_none() => Ok(DataSource {
                location: SAMPLE_NAME.to_string(),
                parts: vec![Part::Embedded(SAMPLE_NAME, SAMPLE)],
                store: None,
                read: Default::default(),
            }),
            Some(d) if !storage::is_url(d) => Self::local(Path::new(d)),
            _ => {
                let (store, prefix) = storage::open_data(data, st)?;
                let names = store.list(&prefix).with_context(|| {
                    format!("listing blobs under '{prefix}' in {}", store.describe())
                })?;
                // A name that matches exactly is one blob; otherwise every blob under the prefix.
                let names: Vec<String> = if names.contains(&prefix) {
                    vec![prefix.clone()]
                } else {
                    names.into_iter().filter(|n| !n.ends_with('/')).collect()
                };
                if names.is_empty() {
                    bail!("no blobs found under '{prefix}' in {}", store.describe());
                }
                Ok(DataSource {
                    location: format!("{}/{}", store.describe(), prefix),
                    parts: names.into_iter().map(Part::Object).collect(),
                    store: Some(store),
                    read: Default::default(),
                })
            }
        }
    }

    fn local(path: &Path) -> Result<DataSource> {
        let meta = std::fs::metadata(path)
            .with_context(|| format!("{}: cannot read the data source", path.display()))?;
        let mut parts = Vec::new();
        if meta.is_dir() {
            let mut files = Vec::new();
            data_files(path, false, &mut files)?;
            files.sort();
            if files.is_empty() {
                bail!("{}: the folder holds no data files (.csv, .parquet, .ndjson, .jsonl, .txt, .log)", path.display());
            }
            parts.extend(files.into_iter().map(Part::File));
        } else {
            parts.push(Part::File(path.to_path_buf()));
        }
        Ok(DataSource {
            location: path.display().to_string(),
            parts,
            store: None,
            read: Default::default(),
        })
    }

    /// Names of the parts, in reading order: after a load, those it read
    /// (a time range skips partitions outside it), before, all of them.
    pub fn part_names(&self) -> Vec<String> {
        if let Ok(read) = self.read.lock() {
            if let Some(r) = read.as_ref() {
                return r.clone();
            }
        }
        self.parts.iter().map(part_name).collect()
    }

    /// A blob's bytes (the store has no streaming read: blobs come whole).
    fn object(&self, name: &str) -> Result<Vec<u8>> {
        let store = self
            .store
            .as_ref()
            .context("internal: a blob part without a store")?;
        Ok(store.get(name)?)
    }

    /// The part as a stream (local files are never read whole).
    fn reader(&self, part: &Part) -> Result<Box<dyn Read + '_>> {
        match part {
            Part::File(p) => {
                Ok(Box::new(std::fs::File::open(p).with_context(|| {
                    format!("{}: cannot open", p.display())
                })?))
            }
            Part::Object(n) => Ok(Box::new(std::io::Cursor::new(self.object(n)?))),
            Part::Embedded(_, b) => Ok(Box::new(*b)),
        }
    }

    /// The part as a table input: a local file by random access (Parquet
    /// reads only its footer and the chunks it needs), anything else as a
    /// stream.
    fn input(&self, part: &Part) -> Result<TableInput<'_>> {
        match part {
            Part::File(p) => Ok(TableInput::File(
                std::fs::File::open(p).with_context(|| format!("{}: cannot open", p.display()))?,
            )),
            _ => Ok(TableInput::Stream(self.reader(part)?)),
        }
    }
}

/// The data files in `dir` (known extensions), and those anywhere under its
/// partition folders (a folder named `key=value` and everything below it)
/// and Azure Monitor container folders (`insights-*`, `am-*`): e.g. a local
/// copy of a metric archive,
/// `insights-metrics-pt1m/resourceId=/SUBSCRIPTIONS/.../y=2026/m=11/d=30/h=12/m=00/PT1H.json`.
fn data_files(dir: &Path, partitioned: bool, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot list the folder", dir.display()))?;
    for p in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let azure = name.contains('=') || name.starts_with("insights-") || name.starts_with("am-");
        if p.is_dir() && (partitioned || azure) {
            data_files(&p, true, out)?;
        } else if p.is_file() && Format::from_name(&name).is_some() {
            out.push(p);
        }
    }
    Ok(())
}

fn part_name(p: &Part) -> String {
    match p {
        Part::File(p) => p.display().to_string(),
        Part::Object(n) => n.clone(),
        Part::Embedded(n, _) => n.to_string(),
    }
}

/// Nothing of the data lies in the time range read.
#[derive(Debug)]
pub struct NothingInRange {
    pub location: String,
    pub range: TimeRange,
    /// `Some(n)`: no part was read, all `n` are partitions outside the
    /// range; `None`: parts were read, without a row in the range.
    pub partitions_outside: Option<usize>,
}

impl std::fmt::Display for NothingInRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (location, range) = (&self.location, &self.range);
        match self.partitions_outside {
            Some(n) => write!(
                f,
                "{location}: no file or blob in the time range {range} (all {n} are partitions outside it)"
            ),
            None => write!(f, "{location}: no data rows in the time range {range}"),
        }
    }
}

impl std::error::Error for NothingInRange {}

impl NothingInRange {
    fn rows(src: &DataSource, range: TimeRange) -> NothingInRange {
        NothingInRange {
            location: src.location.clone(),
            range,
            partitions_outside: None,
        }
    }

    /// Whether `e` says that nothing lies in the time range (from the
    /// source layer or from a reader).
    pub fn is_cause_of(e: &anyhow::Error) -> bool {
        e.chain().any(|c| {
            c.is::<NothingInRange>()
                || matches!(
                    c.downcast_ref::<ingest::IngestError>(),
                    Some(ingest::IngestError::NoRowsInRange { .. })
                )
        })
    }
}

/// What was read, for the model card.
pub struct Loaded {
    pub series: LoadSeries,
    pub format: Format,
    pub report: ResampleReport,
    pub log_stats: Option<LogStats>,
}

/// The rows as read, before resampling.
pub struct RawLoaded {
    pub table: RawTable,
    pub format: Format,
    /// `--step`, or the data's own step (5 minutes for raw logs).
    pub step: Step,
    pub log_stats: Option<LogStats>,
    /// Long tables: what was read, filtered and kept.
    pub long_stats: Option<LongStats>,
    /// Parts not opened because their partition lies outside the time range.
    pub parts_skipped: usize,
}

/// The format of the parts: `--format`, or each part's name; one for all.
fn parts_format(src: &DataSource, opts: &ReadOptions) -> Result<Format> {
    let formats: Vec<Format> = src
        .parts
        .iter()
        .map(|p| {
            let name = part_name(p);
            opts.format
                .or_else(|| Format::from_name(&name))
                .with_context(|| {
                    format!(
                        "{name}: unknown file type; pass --format csv|parquet|ndjson|logs|azure-monitor"
                    )
                })
        })
        .collect::<Result<_>>()?;
    let format = formats[0];
    if let Some((i, f)) = formats.iter().enumerate().find(|(_, f)| **f != format) {
        bail!(
            "{}: format {} differs from {} of {}; read one format at a time",
            part_name(&src.parts[i]),
            f.as_str(),
            format.as_str(),
            part_name(&src.parts[0])
        );
    }
    Ok(format)
}

/// Read every part and join them in order (raw logs become one row per
/// step; long tables one row per step and series, or per step with
/// `--aggregate`), keeping only `opts.since ..= opts.until`.
pub fn load_raw(src: &DataSource, opts: &ReadOptions) -> Result<RawLoaded> {
    let range = opts.range();
    let format = parts_format(src, opts)?;
    // Skip what the partition names put outside the range, before opening
    // (or downloading) anything. Raw logs are read whole: a session that
    // started before the range still counts in it.
    let parts: Vec<&Part> = src
        .parts
        .iter()
        .filter(|p| format == Format::Logs || ingest::partition_may_overlap(&part_name(p), &range))
        .collect();
    let parts_skipped = src.parts.len() - parts.len();
    if let Ok(mut read) = src.read.lock() {
        *read = Some(parts.iter().map(|p| part_name(p)).collect());
    }
    if parts.is_empty() {
        return Err(NothingInRange {
            location: src.location.clone(),
            range,
            partitions_outside: Some(src.parts.len()),
        }
        .into());
    }
    if format == Format::Logs {
        let step = opts.step.unwrap_or(Step::from_secs(300).expect("positive"));
        // All parts as one stream, so sessions that span files still pair up.
        let mut chained: Box<dyn Read + '_> = Box::new(std::io::empty());
        for p in &parts {
            chained = Box::new(chained.chain(src.reader(p)?));
        }
        let reader = BufReader::with_capacity(1 << 16, chained);
        let (mut table, stats) =
            ingest::aggregate_logs(&src.location, reader, step.secs(), &LogOptions::default())?;
        if !range.is_all() {
            table.keep_range(&range);
            if table.is_empty() {
                return Err(NothingInRange::rows(src, range).into());
            }
        }
        return Ok(RawLoaded {
            table,
            format,
            step,
            log_stats: Some(stats),
            long_stats: None,
            parts_skipped,
        });
    }
    if opts.is_long(format) {
        return load_long(src, &parts, format, opts, parts_skipped);
    }
    let mut tables = Vec::with_capacity(parts.len());
    for p in &parts {
        let name = part_name(p);
        // A blob is downloaded once, for the header and the rows.
        let blob = match p {
            Part::Object(n) => Some(src.object(n)?),
            _ => None,
        };
        let time_column = if opts.time_column == "auto" {
            detect_time_column(src, p, format, blob.as_deref())?
        } else {
            opts.time_column.clone()
        };
        let input = match &blob {
            Some(b) => TableInput::Stream(Box::new(&b[..])),
            None => src.input(p)?,
        };
        let spec = TableSpec {
            time_column,
            metrics: Vec::new(),
            time_format: opts.time_format.clone(),
            step_secs: opts.step.map_or(60, Step::secs),
        };
        match ingest::read_table_from(&name, input, format, &spec, &range) {
            Ok(t) => tables.push(t),
            // A part without rows in the range adds nothing.
            Err(ingest::IngestError::NoRowsInRange { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if tables.is_empty() {
        return Err(NothingInRange::rows(src, range).into());
    }
    let table = concat(tables)?;
    let step = match opts.step {
        Some(s) => s,
        None => infer_step(&table)?,
    };
    Ok(RawLoaded {
        table,
        format,
        step,
        log_stats: None,
        long_stats: None,
        parts_skipped,
    })
}

/// Long tables: every part into one [`LongTable`] (parts need not be in time
/// order: Azure's blobs are per resource and hour), bucketed at the step.
fn load_long(
    src: &DataSource,
    parts: &[&Part],
    format: Format,
    opts: &ReadOptions,
    parts_skipped: usize,
) -> Result<RawLoaded> {
    let within: Combine = match opts.agg {
        Aggregation::Sum => Combine::Sum,
        Aggregation::Max => Combine::Max,
        Aggregation::Last => Combine::Last,
        _ => Combine::Mean,
    };
    let spec = LongSpec {
        time_column: Some(opts.time_column.clone()).filter(|t| t != "auto"),
        value_column: opts.value_column.clone(),
        series_columns: opts.series_columns.clone(),
        filters: opts.filters.clone(),
        aggregate: opts.aggregate,
        within,
        bucket_secs: opts.step.map(Step::secs),
        time_format: opts.time_format.clone(),
        step_secs: opts.step.map_or(60, Step::secs),
    };
    let mut long = LongTable::new(spec, opts.range());
    for p in parts {
        let name = part_name(p);
        match format {
            Format::Csv => long.read_csv(&name, src.reader(p)?)?,
            Format::Ndjson | Format::AzureMonitor => {
                long.read_json_lines(&name, BufReader::with_capacity(1 << 16, src.reader(p)?))?
            }
            Format::Parquet => long.read_parquet(
                &name,
                match p {
                    Part::File(path) => ParquetPart::File(path.clone()),
                    Part::Object(n) => ParquetPart::Bytes(src.object(n)?),
                    Part::Embedded(_, b) => ParquetPart::Bytes(b.to_vec()),
                },
            )?,
            other => bail!(
                "{name}: a long table (--filter, --series-column, --value-column, --aggregate) \
                 must be CSV, NDJSON, Parquet or azure-monitor JSON lines, not {other}"
            ),
        }
    }
    let stats = long.stats().clone();
    tracing::debug!(
        location = %src.location,
        format = ?format,
        rows = stats.rows,
        filtered_out = stats.filtered_out,
        out_of_range = stats.out_of_range,
        missing_values = stats.missing_values,
        series = stats.series,
        "long table read: rows kept per series and bucket"
    );
    let table = long.finish(&src.location)?;
    let step = match opts.step {
        Some(s) => s,
        None => infer_step(&table)?,
    };
    Ok(RawLoaded {
        table,
        format,
        step,
        log_stats: None,
        long_stats: Some(stats),
        parts_skipped,
    })
}

/// Read every part, join them in order and resample to a regular series.
pub fn load(src: &DataSource, opts: &ReadOptions) -> Result<Loaded> {
    let raw = load_raw(src, opts)?;
    let step = raw.step;
    // Log counts are already one row per step.
    let agg = if raw.format == Format::Logs {
        Aggregation::Mean
    } else {
        opts.agg
    };
    let gaps = GapPolicy {
        max_gap_steps: step.steps_ceil(opts.max_gap_secs),
        ..opts.gaps
    };
    let (series, report) = resample_table(&raw.table, step, agg, gaps)?;
    tracing::debug!(
        location = %src.location,
        format = ?raw.format,
        range = %opts.range(),
        parts = src.parts.len(),
        parts_skipped = raw.parts_skipped,
        rows = raw.table.timestamps.len(),
        columns = series.names().len(),
        step = %step,
        steps = series.len(),
        "data read"
    );
    Ok(Loaded {
        series,
        format: raw.format,
        report,
        log_stats: raw.log_stats,
    })
}

/// The calendar of special days given with --calendar.
pub fn read_calendar(path: Option<&Path>) -> Result<Option<Calendar>> {
    match path {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("{}: cannot read the calendar", p.display()))?;
            Ok(Some(
                Calendar::parse(&text).with_context(|| format!("{}", p.display()))?,
            ))
        }
        None => Ok(None),
    }
}

/// The metric to use: --metric, the only metric column, or `sessions` for raw logs.
pub fn choose_metric(requested: Option<&str>, names: &[String], format: Format) -> Result<String> {
    if let Some(m) = requested {
        return Ok(m.to_string());
    }
    if format == Format::Logs {
        return Ok("sessions".to_string());
    }
    match names {
        [one] => Ok(one.clone()),
        _ => bail!(
            "the data has several metrics ({}); choose one with --metric",
            names.join(", ")
        ),
    }
}

fn resample_table(
    t: &RawTable,
    step: Step,
    agg: Aggregation,
    gaps: GapPolicy,
) -> Result<(LoadSeries, ResampleReport)> {
    let names: Vec<String> = t.columns.iter().map(|c| c.name.clone()).collect();
    let cols: Vec<Vec<f64>> = t.columns.iter().map(|c| c.values.clone()).collect();
    let (s, mut r) = series::resample(&t.timestamps, &names, &cols, step, agg, gaps)
        .with_context(|| t.source.clone())?;
    r.missing_values = r.missing_values.max(t.missing_values);
    Ok((s, r))
}

/// Join tables read from several parts: same columns, strictly later in time.
fn concat(mut tables: Vec<RawTable>) -> Result<RawTable> {
    let mut out = tables.remove(0);
    let names: Vec<String> = out.columns.iter().map(|c| c.name.clone()).collect();
    for t in tables {
        let these: Vec<String> = t.columns.iter().map(|c| c.name.clone()).collect();
        if these != names {
            bail!(
                "{}: columns [{}] differ from [{}] in {}",
                t.source,
                these.join(", "),
                names.join(", "),
                out.source
            );
        }
        if let (Some(&prev), Some(&next)) = (out.timestamps.last(), t.timestamps.first()) {
            series::check_parts_in_order(&[(prev, prev), (next, next)])
                .with_context(|| format!("{} follows {}", t.source, out.source))?;
        }
        out.timestamps.extend_from_slice(&t.timestamps);
        for (c, tc) in out.columns.iter_mut().zip(t.columns) {
            c.values.extend(tc.values);
        }
        out.missing_values += t.missing_values;
    }
    Ok(out)
}

/// The data's own step: the median spacing of the first timestamps.
fn infer_step(t: &RawTable) -> Result<Step> {
    let mut d: Vec<i64> = t
        .timestamps
        .windows(2)
        .take(10_000)
        .map(|w| w[1] - w[0])
        .collect();
    if d.is_empty() {
        bail!("{}: a single row has no step; pass --step", t.source);
    }
    d.sort_unstable();
    Step::from_secs(d[d.len() / 2])
        .with_context(|| format!("{}: cannot infer the step; pass --step", t.source))
}

/// Common names of timestamp columns, tried in order by `--time-column auto`.
const TIME_NAMES: [&str; 8] = [
    "timestamp",
    "time",
    "period",
    "datetime",
    "date",
    "day",
    "ts",
    "TimeGenerated",
];

/// The first bytes of a part, at most 1 MiB (enough for a header or a
/// first JSON line).
fn head(src: &DataSource, part: &Part, blob: Option<&[u8]>) -> Result<Vec<u8>> {
    let limit = ingest::limits::MAX_RECORD_BYTES + 2;
    if let Some(b) = blob {
        return Ok(b[..b.len().min(limit)].to_vec());
    }
    let mut buf = Vec::new();
    src.reader(part)?
        .take(limit as u64)
        .read_to_end(&mut buf)
        .with_context(|| format!("{}: cannot read", part_name(part)))?;
    Ok(buf)
}

/// `--time-column auto`: the first of [`TIME_NAMES`] in the part's columns,
/// else its first column. `blob`: the part's bytes when already downloaded.
fn detect_time_column(
    src: &DataSource,
    part: &Part,
    format: Format,
    blob: Option<&[u8]>,
) -> Result<String> {
    let source = &part_name(part);
    let columns: Vec<String> = match format {
        Format::Csv => {
            let bytes = head(src, part, blob)?;
            ingest::csv_columns(source, &bytes)?
        }
        Format::Ndjson => {
            let bytes = head(src, part, blob)?;
            let first = bytes
                .split(|b| *b == b'\n')
                .find(|l| !l.iter().all(u8::is_ascii_whitespace))
                .with_context(|| format!("{source}: no data rows"))?;
            let v: serde_json::Value = serde_json::from_slice(first)
                .with_context(|| format!("{source}: line 1 is not JSON"))?;
            v.as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default()
        }
        Format::Parquet => match (part, blob) {
            (_, Some(b)) => ingest::parquet_columns(source, b)?,
            (Part::File(p), None) => ingest::parquet_file_columns(
                source,
                std::fs::File::open(p).with_context(|| format!("{}: cannot open", p.display()))?,
            )?,
            (Part::Object(n), None) => ingest::parquet_columns(source, &src.object(n)?)?,
            (Part::Embedded(_, b), None) => ingest::parquet_columns(source, b)?,
        },
        Format::Logs | Format::AzureMonitor => return Ok(String::new()),
    };
    for want in TIME_NAMES {
        if let Some(c) = columns.iter().find(|c| c.eq_ignore_ascii_case(want)) {
            return Ok(c.clone());
        }
    }
    columns
        .first()
        .cloned()
        .with_context(|| format!("{source}: no columns"))
}
