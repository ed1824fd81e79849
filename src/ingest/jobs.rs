//! Job traces for `backtest --mode jobs`: one record per job with its submit
//! time, its run time and optionally its nodes, queue and id.
//!
//! - CSV (header row) or NDJSON (one object per line) with the fields
//!   `submit` (a timestamp, read like every other time column: see
//!   [`TimeFormat`]), `duration` (seconds, >= 0) or `end` (a timestamp, not
//!   before `submit`), and optional `nodes` (a whole number >= 1), `queue`
//!   and `id`. Field names are matched ignoring ASCII case. An empty or null
//!   optional field is absent.
//! - Raw application logs (the workshop format of [`super::aggregate_logs`],
//!   read with the same line parser): each `<Kind>JobHandler.cs Job Start`
//!   paired by id with its `Job End` is one job: submit = Start, duration =
//!   End - Start, queue = `<Kind>`. Session lines are skipped; Ends without a
//!   Start, Starts without an End, repeated Starts and unknown lines are
//!   counted in [`JobTraceStats`], not fatal (unless most lines are unknown:
//!   then the input is not a log).
//!
//! Every error names the source, the line and the field.

use super::error::{IngestError, Location};
use super::logs::{parse_line, read_line};
use super::value::TimeParser;
use super::{Format, TimeFormat};
use std::collections::HashMap;

/// One job as the trace gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceRecord {
    /// The `id` field, the log's id, or `line N` when the trace has none.
    pub id: String,
    pub queue: Option<String>,
    /// Epoch seconds.
    pub submit: i64,
    /// Whole seconds (a fractional `duration` is rounded to the nearest).
    pub duration_secs: i64,
    pub nodes: Option<u32>,
}

/// What reading a trace found besides the jobs.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct JobTraceStats {
    /// Lines read (CSV: the header included).
    pub lines: u64,
    pub jobs: u64,
    /// Logs: `Job End` lines whose id had no open `Job Start` (skipped).
    pub unmatched_ends: u64,
    /// Logs: `Job Start` lines never ended (skipped).
    pub unmatched_starts: u64,
    /// Logs: a second `Job Start` for an open id (ignored).
    pub duplicate_starts: u64,
    /// Logs: an End earlier than its Start (taken as a zero-length job).
    pub end_before_start: u64,
    /// Logs: session lines (not jobs; skipped).
    pub session_lines: u64,
    /// Logs: non-blank lines not in the format (skipped).
    pub unknown_lines: u64,
    /// The line numbers of the first (up to 5) unknown lines.
    pub first_unknown_lines: Vec<u64>,
}

/// Why a trace cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobTraceError {
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// A field that is present but unusable.
    #[error("{file}: {at}, field '{field}': {problem}: \"{text}\"{hint}")]
    BadField {
        file: String,
        at: Location,
        field: &'static str,
        text: String,
        problem: &'static str,
        /// Starts with "; " when not empty.
        hint: String,
    },
    /// A required field that is absent.
    #[error("{file}: {at}: no '{field}' field{}", describe(.available))]
    MissingField {
        file: String,
        at: Location,
        field: &'static str,
        available: Vec<String>,
    },
    #[error("{file}: no jobs (a job trace needs {what})")]
    NoJobs { file: String, what: &'static str },
    #[error("{file}: {format} is not a job trace format (use CSV, NDJSON or raw logs)")]
    Unsupported { file: String, format: Format },
}

fn describe(available: &[String]) -> String {
    if available.is_empty() {
        return String::new();
    }
    let names: Vec<String> = available.iter().map(|c| format!("'{c}'")).collect();
    format!(
        " (the fields are {}; a job trace needs 'submit' and 'duration' or 'end')",
        names.join(", ")
    )
}

/// Read a job trace. `time_format` applies to `submit` and `end` (CSV and
/// NDJSON; raw logs have their own layout). Jobs come out in input order
/// (logs: in the order of their Ends).
pub fn read_job_trace(
    source: &str,
    bytes: &[u8],
    format: Format,
    time_format: &TimeFormat,
) -> Result<(Vec<TraceRecord>, JobTraceStats), JobTraceError> {
    let (jobs, stats) = match format {
        Format::Csv => read_csv(source, bytes, time_format)?,
        Format::Ndjson => read_ndjson(source, bytes, time_format)?,
        Format::Logs => read_logs(source, bytes)?,
        Format::Parquet | Format::AzureMonitor => {
            return Err(JobTraceError::Unsupported {
                file: source.to_string(),
                format,
            })
        }
    };
    if jobs.is_empty() {
        return Err(JobTraceError::NoJobs {
            file: source.to_string(),
            what: if format == Format::Logs {
                "'<Kind>JobHandler.cs Job Start' lines with their 'Job End'"
            } else {
                "rows with 'submit' and 'duration' or 'end'"
            },
        });
    }
    Ok((jobs, stats))
}

/// The fields of one CSV row or JSON object, by lowercase name.
struct Fields<'a> {
    file: &'a str,
    at: Location,
    times: &'a TimeParser<'a>,
}

impl Fields<'_> {
    fn bad(&self, field: &'static str, text: &str, problem: &'static str) -> JobTraceError {
        JobTraceError::BadField {
            file: self.file.to_string(),
            at: self.at,
            field,
            text: text.to_string(),
            problem,
            hint: String::new(),
        }
    }

    fn time(&self, field: &'static str, text: &str) -> Result<i64, JobTraceError> {
        self.times.text(text).map_err(|p| JobTraceError::BadField {
            file: self.file.to_string(),
            at: self.at,
            field,
            text: p.text,
            problem: "cannot parse timestamp",
            hint: p.hint,
        })
    }

    /// One record from `get(field)` (`None`: absent or empty).
    fn record<'v>(
        &self,
        get: impl Fn(&str) -> Option<&'v str>,
        available: &[String],
    ) -> Result<TraceRecord, JobTraceError> {
        let missing = |field| JobTraceError::MissingField {
            file: self.file.to_string(),
            at: self.at,
            field,
            available: available.to_vec(),
        };
        let submit_text = get("submit").ok_or_else(|| missing("submit"))?;
        let submit = self.time("submit", submit_text)?;
        let duration_secs = match (get("duration"), get("end")) {
            (Some(d), _) => {
                let v: f64 = d
                    .parse()
                    .map_err(|_| self.bad("duration", d, "not a number of seconds"))?;
                if !v.is_finite() || v > 1e12 {
                    return Err(self.bad("duration", d, "not a finite number of seconds"));
                }
                if v < 0.0 {
                    return Err(self.bad(
                        "duration",
                        d,
                        "negative duration (a job cannot take negative time)",
                    ));
                }
                v.round() as i64
            }
            (None, Some(e)) => {
                let end = self.time("end", e)?;
                if end < submit {
                    return Err(self.bad("end", e, "end before submit"));
                }
                end - submit
            }
            (None, None) => return Err(missing("duration")),
        };
        let nodes = match get("nodes") {
            None => None,
            Some(n) => Some(
                n.parse::<u32>()
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or_else(|| self.bad("nodes", n, "not a whole number of nodes >= 1"))?,
            ),
        };
        Ok(TraceRecord {
            id: get("id").map_or_else(|| self.at.to_string(), str::to_string),
            queue: get("queue").map(str::to_string),
            submit,
            duration_secs,
            nodes,
        })
    }
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

fn read_csv(
    source: &str,
    bytes: &[u8],
    time_format: &TimeFormat,
) -> Result<(Vec<TraceRecord>, JobTraceStats), JobTraceError> {
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let malformed = |e: csv::Error| {
        JobTraceError::Ingest(IngestError::Malformed {
            file: source.to_string(),
            at: Location::Line(e.position().map_or(1, |p| p.line())),
            syntax: "CSV",
            message: match e.kind() {
                csv::ErrorKind::UnequalLengths {
                    expected_len, len, ..
                } => format!("expected {expected_len} fields like the header, found {len}"),
                _ => e.to_string(),
            },
        })
    };
    let names: Vec<String> = rdr
        .headers()
        .map_err(malformed)?
        .iter()
        .map(str::to_string)
        .collect();
    let lower: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
    let times = TimeParser::new(time_format, 1);
    let mut jobs = Vec::new();
    let mut stats = JobTraceStats {
        lines: 1,
        ..Default::default()
    };
    let mut row = csv::StringRecord::new();
    while rdr.read_record(&mut row).map_err(malformed)? {
        let line = row.position().map_or(0, |p| p.line());
        stats.lines = line;
        let fields = Fields {
            file: source,
            at: Location::Line(line),
            times: &times,
        };
        let get = |name: &str| {
            lower
                .iter()
                .position(|n| n == name)
                .and_then(|i| row.get(i))
                .filter(|v| !v.is_empty())
        };
        jobs.push(fields.record(get, &names)?);
    }
    stats.jobs = jobs.len() as u64;
    Ok((jobs, stats))
}

fn read_ndjson(
    source: &str,
    bytes: &[u8],
    time_format: &TimeFormat,
) -> Result<(Vec<TraceRecord>, JobTraceStats), JobTraceError> {
    let times = TimeParser::new(time_format, 1);
    let mut jobs = Vec::new();
    let mut stats = JobTraceStats::default();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let at = Location::Line(i as u64 + 1);
        if line.trim_ascii().is_empty() {
            continue;
        }
        stats.lines = i as u64 + 1;
        let malformed = |message: String| {
            JobTraceError::Ingest(IngestError::Malformed {
                file: source.to_string(),
                at,
                syntax: "JSON",
                message,
            })
        };
        let v: serde_json::Value =
            serde_json::from_slice(line).map_err(|e| malformed(e.to_string()))?;
        let obj = v
            .as_object()
            .ok_or_else(|| malformed("expected one object per line".into()))?;
        // Numbers and strings as text; null and empty strings are absent.
        let texts: Vec<(String, String)> = obj
            .iter()
            .filter_map(|(k, v)| {
                let t = match v {
                    serde_json::Value::String(s) => s.trim().to_string(),
                    serde_json::Value::Number(n) => n.to_string(),
                    serde_json::Value::Bool(b) => b.to_string(),
                    _ => return None,
                };
                (!t.is_empty()).then(|| (k.to_ascii_lowercase(), t))
            })
            .collect();
        let names: Vec<String> = obj.keys().cloned().collect();
        let get = |name: &str| {
            texts
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, t)| t.as_str())
        };
        let fields = Fields {
            file: source,
            at,
            times: &times,
        };
        jobs.push(fields.record(get, &names)?);
    }
    stats.jobs = jobs.len() as u64;
    Ok((jobs, stats))
}

/// How many unknown line numbers [`JobTraceStats::first_unknown_lines`] keeps.
const KEEP_UNKNOWN: usize = 5;

fn read_logs(
    source: &str,
    bytes: &[u8],
) -> Result<(Vec<TraceRecord>, JobTraceStats), JobTraceError> {
    let mut reader = bytes;
    let mut buf = Vec::with_capacity(256);
    let mut stats = JobTraceStats::default();
    let mut open: HashMap<Vec<u8>, (i64, String)> = HashMap::new();
    let mut jobs = Vec::new();
    let (mut non_blank, mut first_bad) = (0u64, None);
    loop {
        buf.clear();
        let (read, complete) = read_line(&mut reader, &mut buf).map_err(|e| IngestError::Io {
            file: source.to_string(),
            source: e,
        })?;
        if read == 0 {
            break;
        }
        stats.lines += 1;
        if !complete {
            return Err(IngestError::RecordTooLong {
                file: source.to_string(),
                at: Location::Line(stats.lines),
                limit: super::MAX_LINE_BYTES,
                what: "log line",
            }
            .into());
        }
        let line = buf.trim_ascii_end();
        if line.is_empty() {
            continue;
        }
        non_blank += 1;
        let Some(ev) = complete.then(|| parse_line(line)).flatten() else {
            stats.unknown_lines += 1;
            if stats.first_unknown_lines.len() < KEEP_UNKNOWN {
                stats.first_unknown_lines.push(stats.lines);
            }
            if first_bad.is_none() {
                let text = String::from_utf8_lossy(line);
                let text: String = text.chars().take(120).collect();
                first_bad = Some((stats.lines, text));
            }
            continue;
        };
        let Some(kind) = ev.job else {
            stats.session_lines += 1;
            continue;
        };
        if ev.start {
            if open.contains_key(ev.id) {
                stats.duplicate_starts += 1;
            } else {
                let kind = String::from_utf8_lossy(kind).into_owned();
                open.insert(ev.id.to_vec(), (ev.time, kind));
            }
        } else if let Some((start, kind)) = open.remove(ev.id) {
            if ev.time < start {
                stats.end_before_start += 1;
            }
            jobs.push(TraceRecord {
                id: String::from_utf8_lossy(ev.id).into_owned(),
                queue: Some(kind),
                submit: start,
                duration_secs: (ev.time - start).max(0),
                nodes: None,
            });
        } else {
            stats.unmatched_ends += 1;
        }
    }
    if stats.unknown_lines * 2 > non_blank {
        let (line, text) = first_bad.unwrap_or_default();
        return Err(IngestError::NotLogFormat {
            file: source.to_string(),
            first_bad: Location::Line(line),
            first_bad_text: text,
            unknown: stats.unknown_lines,
            examined: non_blank,
        }
        .into());
    }
    stats.unmatched_starts = open.len() as u64;
    stats.jobs = jobs.len() as u64;
    Ok((jobs, stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, format: Format) -> Result<Vec<TraceRecord>, String> {
        read_job_trace("t", text.as_bytes(), format, &TimeFormat::Auto)
            .map(|(j, _)| j)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_csv_trace_reads_duration_or_end_and_optional_fields() {
        let jobs = read(
            "Submit,duration,end,nodes,queue,id\n\
             2024-01-01 00:00:00,90,,2,gpu,a\n\
             2024-01-01T00:01:00Z,,2024-01-01 00:03:00,,,\n\
             2024-01-01 00:02:00,0.6,,,cpu,\n",
            Format::Csv,
        )
        .unwrap();
        assert_eq!(jobs.len(), 3);
        let t0 = super::super::timestamp::parse_timestamp("2024-01-01").unwrap();
        assert_eq!(
            jobs[0],
            TraceRecord {
                id: "a".into(),
                queue: Some("gpu".into()),
                submit: t0,
                duration_secs: 90,
                nodes: Some(2)
            }
        );
        assert_eq!(
            (jobs[1].submit, jobs[1].duration_secs, jobs[1].nodes),
            (t0 + 60, 120, None)
        );
        assert_eq!(jobs[1].id, "line 3");
        assert_eq!(jobs[2].duration_secs, 1);
    }

    #[test]
    fn bad_csv_fields_name_the_file_line_and_field() {
        let head = "submit,duration,nodes\n2024-01-01 00:00:00,60,1\n";
        let e = read(&format!("{head}yesterday,60,1\n"), Format::Csv).unwrap_err();
        assert!(
            e.starts_with(
                "t: line 3, field 'submit': cannot parse timestamp: \"yesterday\"; expected"
            ),
            "{e}"
        );
        let e = read(&format!("{head}2024-01-01 00:01:00,-5,1\n"), Format::Csv).unwrap_err();
        assert_eq!(
            e,
            "t: line 3, field 'duration': negative duration (a job cannot take negative time): \"-5\""
        );
        let e = read(&format!("{head}2024-01-01 00:01:00,5,0\n"), Format::Csv).unwrap_err();
        assert!(e.contains("line 3, field 'nodes'"), "{e}");
        let e = read(&format!("{head}2024-01-01 00:01:00,5\n"), Format::Csv).unwrap_err();
        assert!(e.contains("line 3: malformed CSV"), "{e}");
        let e = read("start,duration\n2024-01-01,5\n", Format::Csv).unwrap_err();
        assert!(
            e.contains("line 2: no 'submit' field (the fields are 'start', 'duration'"),
            "{e}"
        );
        let e = read(
            "submit,end\n2024-01-01 10:00,2024-01-01 09:00\n",
            Format::Csv,
        )
        .unwrap_err();
        assert!(e.contains("line 2, field 'end': end before submit"), "{e}");
        let e = read("submit,duration\n", Format::Csv).unwrap_err();
        assert!(e.contains("t: no jobs"), "{e}");
    }

    #[test]
    fn an_ndjson_trace_takes_strings_and_numbers() {
        let jobs = read(
            "{\"submit\":\"2024-01-01 00:00:00\",\"duration\":30,\"nodes\":3,\"queue\":\"q\"}\n\n\
             {\"submit\":\"2024-01-01 00:00:10\",\"end\":\"2024-01-01 00:01:10\",\"id\":7,\"nodes\":null}\n",
            Format::Ndjson,
        )
        .unwrap();
        assert_eq!(jobs.len(), 2);
        assert_eq!((jobs[0].nodes, jobs[0].id.as_str()), (Some(3), "line 1"));
        assert_eq!((jobs[1].duration_secs, jobs[1].id.as_str()), (60, "7"));
        let e = read(
            "{\"submit\":\"2024-01-01\",\"duration\":\"soon\"}\n",
            Format::Ndjson,
        )
        .unwrap_err();
        assert!(
            e.starts_with("t: line 1, field 'duration': not a number"),
            "{e}"
        );
        let e = read("{\"submit\":1}\n[1]\n", Format::Ndjson).unwrap_err();
        assert!(e.contains("line 1, field 'submit'"), "{e}");
    }

    #[test]
    fn raw_logs_pair_job_starts_and_ends_and_count_the_rest() {
        let text = "2019-06-15 01:01:07\tj1\tINFO\tCreateUsersJobHandler.cs Job Start\t\t\n\
                    2019-06-15 01:01:11\ts1\tINFO\tEnd User Session Start\t\t\n\
                    2019-06-15 01:01:20\tj2\tINFO\tIndexUsersJobHandler.cs Job Start\t\t\n\
                    2019-06-15 01:01:21\tj2\tINFO\tIndexUsersJobHandler.cs Job Start\t\t\n\
                    2019-06-15 01:03:07\tj1\tINFO\tCreateUsersJobHandler.cs Job End\t\t\n\
                    2019-06-15 01:04:00\tj9\tINFO\tCreateUsersJobHandler.cs Job End\t\t\n\
                    something else\n";
        let (jobs, stats) =
            read_job_trace("l", text.as_bytes(), Format::Logs, &TimeFormat::Auto).unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].queue.as_deref(), Some("CreateUsers"));
        assert_eq!((jobs[0].id.as_str(), jobs[0].duration_secs), ("j1", 120));
        assert_eq!(
            (
                stats.unmatched_ends,
                stats.unmatched_starts,
                stats.duplicate_starts,
                stats.session_lines,
                stats.unknown_lines
            ),
            (1, 1, 1, 1, 1)
        );
        assert_eq!(stats.first_unknown_lines, [7]);
        let e = read("a\nb\n", Format::Logs).unwrap_err();
        assert!(e.contains("not the expected log format"), "{e}");
    }

    #[test]
    fn the_bundled_log_holds_6000_jobs_of_25_kinds() {
        let bytes = include_bytes!("../../data/agilethought_logs.txt");
        let (jobs, stats) = read_job_trace("logs", bytes, Format::Logs, &TimeFormat::Auto).unwrap();
        assert_eq!(jobs.len(), 6000);
        let kinds: std::collections::BTreeSet<_> = jobs.iter().map(|j| &j.queue).collect();
        assert_eq!(kinds.len(), 25);
        assert_eq!((stats.unmatched_ends, stats.unmatched_starts), (0, 0));
        let (lo, hi) = jobs.iter().fold((i64::MAX, 0), |(lo, hi), j| {
            (lo.min(j.duration_secs), hi.max(j.duration_secs))
        });
        assert_eq!((lo, hi), (62, 334), "about 1 to 5.5 minutes");
    }
}
