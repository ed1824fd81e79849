//! Where training data comes from: a file, a folder, Blob Storage, or the
//! bundled sample; and turning it into a [`LoadSeries`].

use super::storage;
use crate::core::forecast::calendar::Calendar;
use crate::core::forecast::series::{self, Aggregation, GapPolicy, LoadSeries, ResampleReport};
use crate::core::time::Step;
pub use crate::ingest::ReadOptions;
use crate::ingest::{self, Format, LogOptions, LogStats, RawTable, TableSpec};
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
}

impl DataSource {
    /// Resolve `--data` (or the storage flags, or the bundled sample).
    pub fn resolve(data: Option<&str>, st: &StorageAccess) -> Result<DataSource> {
        match data {
            None if st.container.is_none() => Ok(DataSource {
                location: SAMPLE_NAME.to_string(),
                parts: vec![Part::Embedded(SAMPLE_NAME, SAMPLE)],
                store: None,
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
                })
            }
        }
    }

    fn local(path: &Path) -> Result<DataSource> {
        let meta = std::fs::metadata(path)
            .with_context(|| format!("{}: cannot read the data source", path.display()))?;
        let mut parts = Vec::new();
        if meta.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("{}: cannot list the folder", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| Format::from_name(&n.to_string_lossy()).is_some())
                })
                .collect();
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
        })
    }

    /// Names of the parts, in reading order.
    pub fn part_names(&self) -> Vec<String> {
        self.parts.iter().map(part_name).collect()
    }

    fn bytes(&self, part: &Part) -> Result<Vec<u8>> {
        match part {
            Part::File(p) => {
                std::fs::read(p).with_context(|| format!("{}: cannot read", p.display()))
            }
            Part::Object(n) => Ok(self
                .store
                .as_ref()
                .expect("objects come with a store")
                .get(n)?),
            Part::Embedded(_, b) => Ok(b.to_vec()),
        }
    }

    fn reader(&self, part: &Part) -> Result<Box<dyn Read + '_>> {
        match part {
            Part::File(p) => {
                Ok(Box::new(std::fs::File::open(p).with_context(|| {
                    format!("{}: cannot open", p.display())
                })?))
            }
            Part::Object(_) => Ok(Box::new(std::io::Cursor::new(self.bytes(part)?))),
            Part::Embedded(_, b) => Ok(Box::new(*b)),
        }
    }
}

fn part_name(p: &Part) -> String {
    match p {
        Part::File(p) => p.display().to_string(),
        Part::Object(n) => n.clone(),
        Part::Embedded(n, _) => n.to_string(),
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
}

/// Read every part and join them in order (raw logs become one row per step).
pub fn load_raw(src: &DataSource, opts: &ReadOptions) -> Result<RawLoaded> {
    let formats: Vec<Format> = src
        .parts
        .iter()
        .map(|p| {
            let name = part_name(p);
            opts.format
                .or_else(|| Format::from_name(&name))
                .with_context(|| {
                    format!("{name}: unknown file type; pass --format csv|parquet|ndjson|logs")
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
    if format == Format::Logs {
        let step = opts.step.unwrap_or(Step::from_secs(300).expect("positive"));
        // All parts as one stream, so sessions that span files still pair up.
        let mut chained: Box<dyn Read + '_> = Box::new(std::io::empty());
        for p in &src.parts {
            chained = Box::new(chained.chain(src.reader(p)?));
        }
        let reader = BufReader::with_capacity(1 << 16, chained);
        let (table, stats) =
            ingest::aggregate_logs(&src.location, reader, step.secs(), &LogOptions::default())?;
        return Ok(RawLoaded {
            table,
            format,
            step,
            log_stats: Some(stats),
        });
    }
    let mut tables = Vec::with_capacity(src.parts.len());
    for p in &src.parts {
        let name = part_name(p);
        let bytes = src.bytes(p)?;
        let time_column = if opts.time_column == "auto" {
            detect_time_column(&name, &bytes, format)?
        } else {
            opts.time_column.clone()
        };
        let spec = TableSpec {
            time_column,
            metrics: Vec::new(),
            time_format: opts.time_format.clone(),
            step_secs: opts.step.map_or(60, Step::secs),
        };
        tables.push(ingest::read_table(&name, &bytes, format, &spec)?);
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
const TIME_NAMES: [&str; 7] = [
    "timestamp",
    "time",
    "period",
    "datetime",
    "date",
    "day",
    "ts",
];

fn detect_time_column(source: &str, bytes: &[u8], format: Format) -> Result<String> {
    let columns: Vec<String> = match format {
        Format::Csv => {
            let mut r = csv::ReaderBuilder::new()
                .has_headers(true)
                .from_reader(bytes);
            r.headers()
                .with_context(|| format!("{source}: cannot read the CSV header"))?
                .iter()
                .map(|h| h.trim().to_string())
                .collect()
        }
        Format::Ndjson => {
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
        Format::Parquet => ingest::parquet_columns(source, bytes)?,
        Format::Logs => return Ok(String::new()),
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
