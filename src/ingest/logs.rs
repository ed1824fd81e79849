//! Streaming aggregation of raw application logs (the workshop's format) into
//! a load table: concurrent sessions and running jobs per interval, arrivals,
//! completions and durations.
//!
//! The format is tab-separated, one event per line:
//!
//! ```text
//! 2019-06-15 01:01:07<TAB>15ada221-cccb-4a47-8c4d-7a4ec40723cd<TAB>INFO<TAB>CreateUsersJobHandler.cs Job Start<TAB><TAB>
//! ```
//!
//! - field 1: a timestamp ([`parse_timestamp`](super::timestamp::parse_timestamp) layouts),
//! - field 2: the id that pairs a Start with its End (a UUID, or any text),
//! - field 3: the level (ignored),
//! - field 4: the message, ending in ` Start` or ` End`:
//!   - `<Role> Session Start|End` is a user session (`End User Session`,
//!     `Admin User Session`, `Config User Session` in the workshop's data),
//!   - `<Kind>JobHandler.cs Job Start|End` is a job of kind `<Kind>`,
//! - any further fields must be empty (the workshop's lines end in two tabs).
//!
//! Memory is O(open sessions and jobs + intervals), never O(file size): lines
//! are read one at a time into one reused buffer, and a line longer than
//! [`MAX_LINE_BYTES`] stops the read with [`IngestError::RecordTooLong`] as
//! soon as the limit is passed.

use super::error::{IngestError, Location};
use super::timestamp::parse_timestamp_bytes;
use super::{RawColumn, RawTable};
use memchr::memchr;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{BufRead, ErrorKind};

/// Options of [`aggregate_logs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOptions {
    /// Add a `jobs_<Kind>` column per job kind (default: true).
    pub per_kind_jobs: bool,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            per_kind_jobs: true,
        }
    }
}

/// Counters of one aggregation, for the model card and for diagnosing input.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogStats {
    /// Lines read, blank ones included.
    pub lines: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Session Starts accepted (duplicates not counted).
    pub sessions_started: u64,
    /// Job Starts accepted (duplicates not counted).
    pub jobs_started: u64,
    /// Ends that closed an open session or job.
    pub completed: u64,
    /// Ends whose id was not open (skipped).
    pub unmatched_ends: u64,
    /// Starts for an id that was already open (ignored).
    pub duplicate_starts: u64,
    /// Non-blank lines not in the format (skipped).
    pub unknown_lines: u64,
    /// The line numbers of the first (up to 5) unknown lines.
    pub first_unknown_lines: Vec<u64>,
    /// Sessions and jobs still open at the end of the input.
    pub open_at_end: u64,
    /// Events earlier than the event before them (taken as happening at the
    /// earlier event's time).
    pub out_of_order: u64,
}

/// The longest log line accepted: a longer one fails the read at once (a
/// file without newlines cannot exhaust memory or time).
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// The most intervals a log may span (about 47 years of 5-minute intervals);
/// beyond it [`aggregate_logs`] fails with [`IngestError::TooManyIntervals`]
/// rather than allocate without bound because of one wild timestamp.
pub const MAX_LOG_INTERVALS: usize = 5_000_000;

/// If more than half of the first this many non-blank lines are not in the
/// format, the input is probably something else and reading it fails.
const SNIFF_LINES: u64 = 1_000;

/// How many unknown line numbers [`LogStats::first_unknown_lines`] keeps.
const KEEP_UNKNOWN: usize = 5;

/// Aggregate raw logs into one row per interval of `step_secs`.
///
/// Intervals are aligned to multiples of `step_secs` since the epoch and run
/// from the interval of the first event to that of the last, without gaps
/// (an interval without events is real zeros, not missing data). Columns, in
/// this order:
///
/// - `sessions`: time-weighted mean number of open sessions in the interval
///   (a session open for half the interval counts 0.5),
/// - `jobs`: the same for running jobs of all kinds,
/// - `jobs_<Kind>`: the same per job kind, kinds sorted by name (only with
///   [`LogOptions::per_kind_jobs`]),
/// - `session_arrivals`, `job_arrivals`: Starts in the interval,
/// - `completions`: Ends (sessions and jobs) that closed something in the interval,
/// - `mean_duration_s`: mean duration of the sessions and jobs that ended in
///   the interval; NaN (counted in [`RawTable::missing_values`]) if none did,
/// - `mean_job_duration_s`: the same for jobs alone (what a job queue's
///   forecast of the nodes it needs one lead time ahead uses).
///
/// Time is only observed up to the last event: the last interval's means
/// divide what was seen until then by the full step.
///
/// Pairing is by id: an End closes whatever its id opened. An End without an
/// open Start is counted in [`LogStats::unmatched_ends`] and skipped; a second
/// Start for an open id in [`LogStats::duplicate_starts`] and ignored. An
/// event earlier than the one before it is counted in
/// [`LogStats::out_of_order`] and taken to happen at the earlier event's time.
/// Lines that are not in the format are counted in [`LogStats::unknown_lines`]
/// and skipped, unless more than half of the first 1,000 non-blank lines are
/// such: then the input is refused with [`IngestError::NotLogFormat`].
///
/// Errors: `InvalidStep` for `step_secs <= 0`, `Io` if the reader fails,
/// `NoRows` for an input without events, `NotLogFormat` as above,
/// `TooManyIntervals` beyond [`MAX_LOG_INTERVALS`]. Never panics on bad input.
pub fn aggregate_logs<R: BufRead>(
    source: &str,
    mut reader: R,
    step_secs: i64,
    opts: &LogOptions,
) -> Result<(RawTable, LogStats), IngestError> {
    if step_secs <= 0 {
        return Err(IngestError::InvalidStep {
            file: source.to_string(),
            step: step_secs,
        });
    }
    let mut agg = Aggregator::new(step_secs, opts.per_kind_jobs);
    let mut stats = LogStats::default();
    let mut sniff = Sniff::default();
    let mut buf = Vec::with_capacity(256);
    loop {
        buf.clear();
        let (read, complete) =
            read_line(&mut reader, &mut buf).map_err(|source_err| IngestError::Io {
                file: source.to_string(),
                source: source_err,
            })?;
        if read == 0 {
            break;
        }
        stats.lines += 1;
        stats.bytes += read as u64;
        if !complete {
            return Err(IngestError::RecordTooLong {
                file: source.to_string(),
                at: Location::Line(stats.lines),
                limit: MAX_LINE_BYTES,
                what: "log line",
            });
        }
        let line = buf.trim_ascii_end();
        if line.is_empty() {
            continue;
        }
        let event = parse_line(line);
        match event {
            Some(ev) => {
                agg.apply(&ev, &mut stats)
                    .map_err(|limit| IngestError::TooManyIntervals {
                        file: source.to_string(),
                        at: Location::Line(stats.lines),
                        first: agg.origin,
                        time: ev.time,
                        step_secs,
                        limit,
                    })?
            }
            None => {
                stats.unknown_lines += 1;
                if stats.first_unknown_lines.len() < KEEP_UNKNOWN {
                    stats.first_unknown_lines.push(stats.lines);
                }
                if sniff.first_bad.is_none() {
                    sniff.first_bad = Some((stats.lines, shorten(line)));
                }
            }
        }
        if sniff.examined < SNIFF_LINES {
            sniff.examined += 1;
            sniff.unknown += u64::from(event.is_none());
            if sniff.unknown * 2 > SNIFF_LINES {
                return Err(sniff.error(source));
            }
        }
    }
    if sniff.unknown * 2 > sniff.examined {
        return Err(sniff.error(source));
    }
    if agg.events == 0 {
        return Err(IngestError::NoRows {
            file: source.to_string(),
        });
    }
    stats.open_at_end = agg.open.len() as u64;
    Ok((agg.finish(source), stats))
}

/// The unknown-line count over the first [`SNIFF_LINES`] non-blank lines.
#[derive(Default)]
struct Sniff {
    examined: u64,
    unknown: u64,
    first_bad: Option<(u64, String)>,
}

impl Sniff {
    fn error(&self, source: &str) -> IngestError {
        let (line, text) = self.first_bad.clone().unwrap_or_default();
        IngestError::NotLogFormat {
            file: source.to_string(),
            first_bad: Location::Line(line),
            first_bad_text: text,
            unknown: self.unknown,
            examined: self.examined,
        }
    }
}

fn shorten(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    match text.char_indices().nth(120) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.into_owned(),
    }
}

/// Read one line (through `\n`) into `buf`, keeping at most
/// [`MAX_LINE_BYTES`] of it. Returns the bytes consumed (0 at the end) and
/// whether the line was kept whole; a line over the limit returns as soon as
/// the limit is passed (`false`), the rest of it unread.
pub(super) fn read_line<R: BufRead>(
    reader: &mut R,
    buf: &mut Vec<u8>,
) -> std::io::Result<(usize, bool)> {
    let mut read = 0;
    loop {
        let available = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok((read, read <= MAX_LINE_BYTES));
        }
        let (used, done) = match memchr(b'\n', available) {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        let room = (MAX_LINE_BYTES + 1).saturating_sub(buf.len());
        buf.extend_from_slice(&available[..used.min(room)]);
        reader.consume(used);
        read += used;
        if done {
            // A kept line is at most MAX_LINE_BYTES plus its newline.
            return Ok((read, read <= MAX_LINE_BYTES + 1));
        }
        if read > MAX_LINE_BYTES + 1 {
            return Ok((read, false));
        }
    }
}

/// What a known line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Event<'a> {
    pub time: i64,
    pub id: &'a [u8],
    pub start: bool,
    /// `None` for a session, the kind name for a job.
    pub job: Option<&'a [u8]>,
}

const JOB_SUFFIX: &[u8] = b"JobHandler.cs Job";
const SESSION_SUFFIX: &[u8] = b"Session";

/// Parse one line (without its newline); `None` if it is not in the format.
pub(super) fn parse_line(line: &[u8]) -> Option<Event<'_>> {
    let t1 = memchr(b'\t', line)?;
    let rest = &line[t1 + 1..];
    let t2 = memchr(b'\t', rest)?;
    let id = rest[..t2].trim_ascii();
    let rest = &rest[t2 + 1..];
    let t3 = memchr(b'\t', rest)?;
    let rest = &rest[t3 + 1..];
    let (message, extra) = match memchr(b'\t', rest) {
        Some(t4) => (&rest[..t4], &rest[t4..]),
        None => (rest, &rest[rest.len()..]),
    };
    if id.is_empty() || !extra.iter().all(|&b| b == b'\t' || b == b' ') {
        return None;
    }
    let message = message.trim_ascii();
    let (body, start) = if let Some(b) = message.strip_suffix(b" Start") {
        (b, true)
    } else {
        (message.strip_suffix(b" End")?, false)
    };
    let job = if let Some(kind) = body.strip_suffix(JOB_SUFFIX) {
        if kind.is_empty() || std::str::from_utf8(kind).is_err() {
            return None;
        }
        Some(kind)
    } else if body.ends_with(SESSION_SUFFIX) {
        None
    } else {
        return None;
    };
    let time = parse_timestamp_bytes(&line[..t1])?;
    Some(Event {
        time,
        id,
        start,
        job,
    })
}

/// The key of an id: a UUID's 128 bits (case-insensitive), else a 128-bit
/// FNV-1a hash of the text.
fn id_key(id: &[u8]) -> u128 {
    uuid_bits(id).unwrap_or_else(|| {
        let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
        for &b in id {
            h ^= u128::from(b);
            h = h.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013B);
        }
        h
    })
}

fn uuid_bits(id: &[u8]) -> Option<u128> {
    if id.len() != 36 {
        return None;
    }
    let mut v: u128 = 0;
    for (i, &b) in id.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if b != b'-' {
                return None;
            }
            continue;
        }
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return None,
        };
        v = (v << 4) | u128::from(d);
    }
    Some(v)
}

/// A hasher for the id and kind maps: a mix of the 128-bit id (already
/// uniformly distributed for UUIDs), FNV-1a for byte strings.
#[derive(Default)]
struct FastHasher(u64);

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0 ^ 0xcbf2_9ce4_8422_2325;
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }

    fn write_u128(&mut self, v: u128) {
        // splitmix64's finaliser over the folded halves.
        let mut z = (v as u64) ^ ((v >> 64) as u64).rotate_left(29);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        self.0 = z ^ (z >> 31);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// What an open id is.
#[derive(Clone, Copy)]
struct Open {
    start: i64,
    what: What,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum What {
    Session,
    /// A job; the kind index when kinds are tracked.
    Job(Option<u32>),
}

/// A level (number open) integrated over time into per-interval sums of
/// level-seconds. Integration is lazy: only when the level changes, and once
/// at the end.
#[derive(Default)]
struct Gauge {
    level: i64,
    since: i64,
    area: Vec<i64>,
}

impl Gauge {
    /// Integrate the current level from `since` up to `t` (`t >= since`).
    fn advance(&mut self, t: i64, origin: i64, step: i64) {
        if self.level != 0 {
            let mut s = self.since;
            while s < t {
                let idx = ((s - origin) / step) as usize;
                let end = (origin + (idx as i64 + 1) * step).min(t);
                if self.area.len() <= idx {
                    self.area.resize(idx + 1, 0);
                }
                self.area[idx] += self.level * (end - s);
                s = end;
            }
        }
        self.since = t;
    }

    fn change(&mut self, t: i64, delta: i64, origin: i64, step: i64) {
        self.advance(t, origin, step);
        self.level += delta;
    }

    /// Mean level per interval, `n` intervals.
    fn means(mut self, end: i64, origin: i64, step: i64, n: usize) -> Vec<f64> {
        self.advance(end, origin, step);
        self.area.resize(n, 0);
        self.area.iter().map(|&a| a as f64 / step as f64).collect()
    }
}

/// Per-interval event counts.
#[derive(Default)]
struct Counts {
    session_arrivals: Vec<u32>,
    job_arrivals: Vec<u32>,
    completions: Vec<u32>,
    duration_sum: Vec<i64>,
    job_completions: Vec<u32>,
    job_duration_sum: Vec<i64>,
}

fn bump<T: Copy + Default + std::ops::AddAssign>(v: &mut Vec<T>, idx: usize, by: T) {
    if v.len() <= idx {
        v.resize(idx + 1, T::default());
    }
    v[idx] += by;
}

struct Aggregator {
    step: i64,
    per_kind: bool,
    /// Start of the first interval; set by the first event.
    origin: i64,
    /// Time of the last event (after clamping).
    last: i64,
    events: u64,
    open: FastMap<u128, Open>,
    sessions: Gauge,
    jobs: Gauge,
    kinds: FastMap<Box<[u8]>, u32>,
    kind_gauges: Vec<Gauge>,
    counts: Counts,
}

impl Aggregator {
    fn new(step: i64, per_kind: bool) -> Self {
        Aggregator {
            step,
            per_kind,
            origin: 0,
            last: 0,
            events: 0,
            open: FastMap::default(),
            sessions: Gauge::default(),
            jobs: Gauge::default(),
            kinds: FastMap::default(),
            kind_gauges: Vec::new(),
            counts: Counts::default(),
        }
    }

    /// Apply one event; `Err(limit)` if it lies beyond [`MAX_LOG_INTERVALS`].
    fn apply(&mut self, ev: &Event<'_>, stats: &mut LogStats) -> Result<(), usize> {
        let t = if self.events == 0 {
            self.origin = ev.time.div_euclid(self.step) * self.step;
            for g in [&mut self.sessions, &mut self.jobs] {
                g.since = self.origin;
            }
            ev.time
        } else if ev.time < self.last {
            stats.out_of_order += 1;
            self.last
        } else {
            ev.time
        };
        // t >= origin, and the difference cannot overflow: both lie within
        // what the timestamp parser produces (years 0..=9999).
        let idx = (t - self.origin) / self.step;
        if idx >= MAX_LOG_INTERVALS as i64 {
            return Err(MAX_LOG_INTERVALS);
        }
        let idx = idx as usize;
        self.events += 1;
        self.last = t;
        let (origin, step) = (self.origin, self.step);
        let key = id_key(ev.id);
        if ev.start {
            let what = match ev.job {
                None => What::Session,
                Some(kind) if self.per_kind => What::Job(Some(self.kind_index(kind))),
                Some(_) => What::Job(None),
            };
            match self.open.entry(key) {
                Entry::Occupied(_) => {
                    stats.duplicate_starts += 1;
                    return Ok(());
                }
                Entry::Vacant(v) => {
                    v.insert(Open { start: t, what });
                }
            }
            self.gauges(what, |g| g.change(t, 1, origin, step));
            if what == What::Session {
                stats.sessions_started += 1;
                bump(&mut self.counts.session_arrivals, idx, 1);
            } else {
                stats.jobs_started += 1;
                bump(&mut self.counts.job_arrivals, idx, 1);
            }
        } else {
            let Some(open) = self.open.remove(&key) else {
                stats.unmatched_ends += 1;
                return Ok(());
            };
            self.gauges(open.what, |g| g.change(t, -1, origin, step));
            stats.completed += 1;
            bump(&mut self.counts.completions, idx, 1);
            bump(&mut self.counts.duration_sum, idx, t - open.start);
            if open.what != What::Session {
                bump(&mut self.counts.job_completions, idx, 1);
                bump(&mut self.counts.job_duration_sum, idx, t - open.start);
            }
        }
        Ok(())
    }

    fn kind_index(&mut self, kind: &[u8]) -> u32 {
        if let Some(&i) = self.kinds.get(kind) {
            return i;
        }
        let i = self.kind_gauges.len() as u32;
        self.kinds.insert(kind.into(), i);
        self.kind_gauges.push(Gauge {
            since: self.origin,
            ..Gauge::default()
        });
        i
    }

    /// Run `f` on every gauge an item of kind `what` moves.
    fn gauges(&mut self, what: What, mut f: impl FnMut(&mut Gauge)) {
        match what {
            What::Session => f(&mut self.sessions),
            What::Job(kind) => {
                f(&mut self.jobs);
                if let Some(g) = kind.and_then(|k| self.kind_gauges.get_mut(k as usize)) {
                    f(g);
                }
            }
        }
    }

    fn finish(self, source: &str) -> RawTable {
        let (origin, step, end) = (self.origin, self.step, self.last);
        let n = ((end - origin) / step) as usize + 1;
        let timestamps: Vec<i64> = (0..n as i64).map(|i| origin + i * step).collect();
        let mut columns = vec![
            RawColumn {
                name: "sessions".into(),
                values: self.sessions.means(end, origin, step, n),
            },
            RawColumn {
                name: "jobs".into(),
                values: self.jobs.means(end, origin, step, n),
            },
        ];
        let mut gauges = self.kind_gauges;
        let mut kinds: Vec<(String, usize)> = self
            .kinds
            .into_iter()
            .map(|(name, i)| (String::from_utf8_lossy(&name).into_owned(), i as usize))
            .collect();
        kinds.sort_unstable();
        for (name, i) in kinds {
            if let Some(g) = gauges.get_mut(i) {
                columns.push(RawColumn {
                    name: format!("jobs_{name}"),
                    values: std::mem::take(g).means(end, origin, step, n),
                });
            }
        }
        let counts = |mut v: Vec<u32>| {
            v.resize(n, 0);
            v.into_iter().map(f64::from).collect::<Vec<f64>>()
        };
        let mut c = self.counts;
        let completions = counts(std::mem::take(&mut c.completions));
        c.duration_sum.resize(n, 0);
        let mean_duration: Vec<f64> = c
            .duration_sum
            .iter()
            .zip(&completions)
            .map(|(&s, &k)| if k > 0.0 { s as f64 / k } else { f64::NAN })
            .collect();
        let job_completions = counts(std::mem::take(&mut c.job_completions));
        c.job_duration_sum.resize(n, 0);
        let mean_job_duration: Vec<f64> = c
            .job_duration_sum
            .iter()
            .zip(&job_completions)
            .map(|(&s, &k)| if k > 0.0 { s as f64 / k } else { f64::NAN })
            .collect();
        let missing_values = mean_duration
            .iter()
            .chain(&mean_job_duration)
            .filter(|v| v.is_nan())
            .count();
        columns.push(RawColumn {
            name: "session_arrivals".into(),
            values: counts(c.session_arrivals),
        });
        columns.push(RawColumn {
            name: "job_arrivals".into(),
            values: counts(c.job_arrivals),
        });
        columns.push(RawColumn {
            name: "completions".into(),
            values: completions,
        });
        columns.push(RawColumn {
            name: "mean_duration_s".into(),
            values: mean_duration,
        });
        columns.push(RawColumn {
            name: "mean_job_duration_s".into(),
            values: mean_job_duration,
        });
        RawTable {
            source: source.to_string(),
            timestamps,
            columns,
            missing_values,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::timestamp::{format_timestamp, parse_timestamp};

    const T0: &str = "2019-06-15 01:00:00";

    /// A log line `secs` after [`T0`].
    fn line(secs: i64, id: &str, message: &str) -> String {
        let t = parse_timestamp(T0).unwrap() + secs;
        let ts = format_timestamp(t).replace('T', " ").replace('Z', "");
        format!("{ts}\t{id}\tINFO\t{message}\t\t\n")
    }

    fn run(text: &str, step: i64, opts: LogOptions) -> (RawTable, LogStats) {
        aggregate_logs("app.log", text.as_bytes(), step, &opts).unwrap()
    }

    fn col<'a>(t: &'a RawTable, name: &str) -> &'a [f64] {
        &t.column(name)
            .unwrap_or_else(|| panic!("no column {name}"))
            .values
    }

    fn names(t: &RawTable) -> Vec<&str> {
        t.columns.iter().map(|c| c.name.as_str()).collect()
    }

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
    }

    const U1: &str = "15ada221-cccb-4a47-8c4d-7a4ec40723cd";
    const U2: &str = "d1daf73b-b8df-4890-8dfb-d8220f0e96ff";
    const U3: &str = "b038e3c2-255f-42c4-b06e-2d4e02c24ebb";

    #[test]
    fn a_session_open_for_half_an_interval_counts_one_half() {
        let text = line(15, U1, "End User Session Start") + &line(45, U1, "End User Session End");
        let (t, s) = run(&text, 60, LogOptions::default());
        assert_eq!(t.timestamps, vec![parse_timestamp(T0).unwrap()]);
        assert!(close(col(&t, "sessions"), &[0.5]));
        assert!(close(col(&t, "jobs"), &[0.0]));
        assert_eq!(col(&t, "session_arrivals"), [1.0]);
        assert_eq!(col(&t, "completions"), [1.0]);
        assert_eq!(col(&t, "mean_duration_s"), [30.0]);
        assert_eq!((s.sessions_started, s.completed, s.lines), (1, 1, 2));
        assert_eq!(s.bytes, text.len() as u64);
    }

    #[test]
    fn concurrency_is_time_weighted_across_intervals_and_kinds() {
        // Session A: 0:30..2:30; session B: 1:00..1:30; job (CreateUsers) 0:00..3:00.
        let text = [
            line(0, U3, "CreateUsersJobHandler.cs Job Start"),
            line(30, U1, "End User Session Start"),
            line(60, U2, "Admin User Session Start"),
            line(90, U2, "Admin User Session End"),
            line(150, U1, "End User Session End"),
            line(180, U3, "CreateUsersJobHandler.cs Job End"),
        ]
        .concat();
        let (t, s) = run(&text, 60, LogOptions::default());
        assert_eq!(t.len(), 4, "0:00, 1:00, 2:00, 3:00");
        assert!(
            close(col(&t, "sessions"), &[0.5, 1.5, 0.5, 0.0]),
            "{:?}",
            col(&t, "sessions")
        );
        assert!(close(col(&t, "jobs"), &[1.0, 1.0, 1.0, 0.0]));
        assert!(close(col(&t, "jobs_CreateUsers"), &[1.0, 1.0, 1.0, 0.0]));
        assert_eq!(col(&t, "session_arrivals"), [1.0, 1.0, 0.0, 0.0]);
        assert_eq!(col(&t, "job_arrivals"), [1.0, 0.0, 0.0, 0.0]);
        assert_eq!(col(&t, "completions"), [0.0, 1.0, 1.0, 1.0]);
        let d = col(&t, "mean_duration_s");
        assert!(d[0].is_nan());
        assert_eq!(&d[1..], [30.0, 120.0, 180.0]);
        // Jobs alone: the one job (0..180) ended in the last interval.
        let j = col(&t, "mean_job_duration_s");
        assert!(j[..3].iter().all(|v| v.is_nan()) && j[3] == 180.0, "{j:?}");
        assert_eq!(t.missing_values, 1 + 3);
        assert_eq!((s.sessions_started, s.jobs_started, s.completed), (2, 1, 3));
    }

    #[test]
    fn intervals_are_aligned_to_the_step_and_empty_ones_are_zeros() {
        // Events at 01:07:10 and 01:21:40 with 5-minute steps: 01:05 .. 01:20.
        let text =
            line(430, U1, "End User Session Start") + &line(1300, U1, "End User Session End");
        let (t, _) = run(&text, 300, LogOptions::default());
        let times: Vec<String> = t.timestamps.iter().map(|&s| format_timestamp(s)).collect();
        assert_eq!(
            times,
            [
                "2019-06-15T01:05:00Z",
                "2019-06-15T01:10:00Z",
                "2019-06-15T01:15:00Z",
                "2019-06-15T01:20:00Z"
            ]
        );
        assert!(close(
            col(&t, "sessions"),
            &[170.0 / 300.0, 1.0, 1.0, 100.0 / 300.0]
        ));
        assert_eq!(col(&t, "completions"), [0.0, 0.0, 0.0, 1.0]);
        assert_eq!(
            t.missing_values,
            3 + 4,
            "three intervals without completions, four without a job's"
        );
    }

    #[test]
    fn starts_and_ends_pair_by_id_and_strays_are_counted() {
        let text = [
            line(0, U1, "End User Session End"), // unmatched
            line(10, U1, "End User Session Start"),
            line(20, U1, "End User Session Start"), // duplicate, ignored
            line(40, U1, "End User Session End"),
            line(50, U1, "End User Session End"), // unmatched again
            line(55, U2, "ExportSiteJobHandler.cs Job Start"), // open at the end
        ]
        .concat();
        let (t, s) = run(&text, 60, LogOptions::default());
        assert_eq!(s.unmatched_ends, 2);
        assert_eq!(s.duplicate_starts, 1);
        assert_eq!(s.sessions_started, 1);
        assert_eq!(s.completed, 1);
        assert_eq!(s.open_at_end, 1);
        assert_eq!(col(&t, "mean_duration_s"), [30.0], "from the first Start");
        assert!(close(col(&t, "sessions"), &[0.5]));
        assert_eq!(col(&t, "session_arrivals"), [1.0]);
        assert_eq!(col(&t, "completions"), [1.0]);
    }

    #[test]
    fn an_end_closes_what_its_id_opened_whatever_its_message() {
        let text =
            line(0, U1, "IndexSiteJobHandler.cs Job Start") + &line(30, U1, "End User Session End");
        let (t, s) = run(&text, 60, LogOptions::default());
        assert_eq!(s.completed, 1);
        assert!(close(col(&t, "jobs"), &[0.5]));
        assert!(close(col(&t, "sessions"), &[0.0]));
    }

    #[test]
    fn per_kind_columns_are_sorted_by_name_and_optional() {
        let text = [
            line(0, U1, "UpdateSiteJobHandler.cs Job Start"),
            line(0, U2, "CreateUsersJobHandler.cs Job Start"),
            line(0, U3, "ExportSiteJobHandler.cs Job Start"),
            line(30, U1, "UpdateSiteJobHandler.cs Job End"),
            line(60, U2, "CreateUsersJobHandler.cs Job End"),
        ]
        .concat();
        let (t, _) = run(&text, 60, LogOptions::default());
        assert_eq!(
            names(&t),
            [
                "sessions",
                "jobs",
                "jobs_CreateUsers",
                "jobs_ExportSite",
                "jobs_UpdateSite",
                "session_arrivals",
                "job_arrivals",
                "completions",
                "mean_duration_s",
                "mean_job_duration_s"
            ]
        );
        assert!(close(col(&t, "jobs"), &[2.5, 0.0]));
        assert!(close(col(&t, "jobs_CreateUsers"), &[1.0, 0.0]));
        assert!(close(col(&t, "jobs_ExportSite"), &[1.0, 0.0]));
        assert!(close(col(&t, "jobs_UpdateSite"), &[0.5, 0.0]));
        let (t, _) = run(
            &text,
            60,
            LogOptions {
                per_kind_jobs: false,
            },
        );
        assert_eq!(
            names(&t),
            [
                "sessions",
                "jobs",
                "session_arrivals",
                "job_arrivals",
                "completions",
                "mean_duration_s",
                "mean_job_duration_s"
            ]
        );
        assert!(close(col(&t, "jobs"), &[2.5, 0.0]));
    }

    #[test]
    fn an_out_of_order_event_happens_at_the_previous_events_time() {
        let text = [
            line(0, U1, "End User Session Start"),
            line(40, U2, "End User Session Start"),
            line(20, U1, "End User Session End"), // taken as 0:40
            line(50, U2, "End User Session End"),
        ]
        .concat();
        let (t, s) = run(&text, 60, LogOptions::default());
        assert_eq!(s.out_of_order, 1);
        assert!(close(col(&t, "sessions"), &[(40.0 + 10.0) / 60.0]));
        assert_eq!(col(&t, "mean_duration_s"), [(40.0 + 10.0) / 2.0]);
    }

    #[test]
    fn unknown_lines_are_counted_with_their_first_line_numbers() {
        let mut text = String::new();
        for i in 0..10 {
            text += &line(i, &format!("id-{i}"), "End User Session Start");
        }
        let bad = [
            "not a log line\n".to_string(),
            "2019-06-15 01:00:20\tid-x\tINFO\n".to_string(), // too few fields
            line(21, "id-y", "Something Else Start"),
            line(22, "id-y", "End User Session Paused"),
            line(23, "id-y", "End User Session Start").replace("2019-06-15", "2019-06-35"),
            "2019-06-15 01:00:24\tid-z\tINFO\tEnd User Session Start\textra\t\n".to_string(),
            line(25, "", "End User Session Start"),
            line(26, "id-y", "JobHandler.cs Job Start"),
        ];
        text += "\n\r\n"; // blank lines are not unknown
        for b in &bad {
            text += b;
        }
        let (_, s) = run(&text, 60, LogOptions::default());
        assert_eq!(s.unknown_lines, bad.len() as u64);
        assert_eq!(s.first_unknown_lines, vec![13, 14, 15, 16, 17]);
        assert_eq!(s.lines, 10 + 2 + bad.len() as u64);
        assert_eq!(s.sessions_started, 10);
        assert_eq!(s.open_at_end, 10);
    }

    #[test]
    fn mostly_unknown_first_lines_mean_a_different_format() {
        // 501 bad lines among the first 1,000: refused, naming the first bad line.
        let mut text = String::new();
        for i in 0..1000 {
            if i % 2 == 1 || i == 0 {
                text += &format!("{i},some,csv\n");
            } else {
                text += &line(i, &format!("id-{i}"), "End User Session Start");
            }
        }
        let e = aggregate_logs("data.csv", text.as_bytes(), 60, &LogOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("data.csv: line 1: not the expected log format: \"0,some,csv\""),
            "{e}"
        );
        assert!(e.contains("501 of the first 1000 lines"), "{e}");

        // Exactly half is still accepted.
        let mut text = String::new();
        for i in 0..1000 {
            if i % 2 == 1 {
                text += "junk\n";
            } else {
                text += &line(i, &format!("id-{i}"), "End User Session Start");
            }
        }
        let (_, s) = run(&text, 60, LogOptions::default());
        assert_eq!(s.unknown_lines, 500);

        // A short file is judged on all its lines.
        let text = line(0, U1, "End User Session Start") + "a\nb\n";
        let e = aggregate_logs("short.txt", text.as_bytes(), 60, &LogOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("short.txt: line 2: not the expected log format: \"a\""),
            "{e}"
        );
        assert!(e.contains("2 of the first 3 lines"), "{e}");
    }

    #[test]
    fn an_empty_log_has_no_data_rows() {
        for text in ["", "\n\n", "  \r\n"] {
            let e = aggregate_logs("empty.log", text.as_bytes(), 60, &LogOptions::default())
                .unwrap_err();
            assert_eq!(e.to_string(), "empty.log: no data rows");
        }
    }

    #[test]
    fn a_step_that_is_not_positive_is_refused() {
        let e = aggregate_logs("a.log", &b""[..], 0, &LogOptions::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "a.log: the step must be a positive number of seconds, but is 0"
        );
    }

    #[test]
    fn a_wild_timestamp_cannot_make_the_table_unbounded() {
        let text = line(0, U1, "End User Session Start")
            + &line(0, U1, "End User Session End").replace("2019-06-15", "9999-06-15");
        let e = aggregate_logs("a.log", text.as_bytes(), 1, &LogOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("a.log: line 2: timestamp 9999-06-15T01:00:00Z is too far after the first event 2019-06-15T01:00:00Z"),
            "{e}"
        );
    }

    #[test]
    fn a_huge_line_fails_fast_and_is_not_buffered_whole() {
        let mut text = line(0, U1, "End User Session Start");
        text += &"x".repeat(3 * MAX_LINE_BYTES);
        text += "\n";
        text += &line(30, U1, "End User Session End");
        let mut reader = std::io::BufReader::with_capacity(4096, text.as_bytes());
        let mut buf = Vec::new();
        read_line(&mut reader, &mut buf).unwrap();
        buf.clear();
        let (n, complete) = read_line(&mut reader, &mut buf).unwrap();
        assert!(!complete);
        assert!(
            n <= MAX_LINE_BYTES + 4096,
            "stops soon after the limit: {n}"
        );
        assert!(buf.len() <= MAX_LINE_BYTES + 1);
        let e = aggregate_logs("l.txt", text.as_bytes(), 300, &LogOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!(
                "l.txt: line 2: a record longer than {MAX_LINE_BYTES} bytes"
            )),
            "{e}"
        );
    }

    #[test]
    fn lines_split_across_small_read_buffers_give_the_same_result() {
        let text = [
            line(0, U1, "End User Session Start"),
            line(30, U2, "ImportSiteJobHandler.cs Job Start"),
            line(45, U1, "End User Session End"),
            line(100, U2, "ImportSiteJobHandler.cs Job End"),
        ]
        .concat();
        let whole = run(&text, 60, LogOptions::default());
        let small = std::io::BufReader::with_capacity(7, text.as_bytes());
        let split = aggregate_logs("app.log", small, 60, &LogOptions::default()).unwrap();
        assert_eq!(format!("{whole:?}"), format!("{split:?}"));
        // Without the final newline, and with CRLF line ends.
        let crlf = text.replace('\n', "\r\n");
        let crlf = crlf.trim_end();
        let (t, s) = run(crlf, 60, LogOptions::default());
        assert_eq!(s.completed, 2);
        assert_eq!(format!("{:?}", t.columns), format!("{:?}", whole.0.columns));
    }

    #[test]
    fn a_failing_reader_is_an_io_error_naming_the_source() {
        struct Failing;
        impl std::io::Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("connection reset"))
            }
        }
        let e = aggregate_logs(
            "blob://c/x.log",
            std::io::BufReader::new(Failing),
            60,
            &LogOptions::default(),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "blob://c/x.log: read error: connection reset"
        );
    }

    #[test]
    fn lines_parse_into_events() {
        let ev = parse_line(b"2019-06-15 01:01:07\t15ada221-cccb-4a47-8c4d-7a4ec40723cd\tINFO\tCreateUsersJobHandler.cs Job Start\t\t")
            .unwrap();
        assert_eq!(ev.time, parse_timestamp("2019-06-15 01:01:07").unwrap());
        assert_eq!(ev.id, U1.as_bytes());
        assert!(ev.start);
        assert_eq!(ev.job, Some(&b"CreateUsers"[..]));
        let ev = parse_line(b"2019-06-15T01:01:07Z\tabc\t\tConfig User Session End").unwrap();
        assert!(!ev.start);
        assert_eq!(ev.job, None);
        assert_eq!(
            parse_line(b"2019-06-15 01:01:07\tabc\tINFO\tUser Session Stop\t\t"),
            None
        );
        assert_eq!(parse_line(b"2019-06-15 01:01:07\tabc\tINFO"), None);
    }

    #[test]
    fn uuids_key_by_their_bits_and_other_ids_by_a_hash() {
        assert_eq!(
            id_key(U1.as_bytes()),
            0x15ada221_cccb_4a47_8c4d_7a4ec40723cd
        );
        assert_eq!(id_key(U1.to_uppercase().as_bytes()), id_key(U1.as_bytes()));
        assert_eq!(id_key(b"job-17"), id_key(b"job-17"));
        assert_ne!(id_key(b"job-17"), id_key(b"job-71"));
        assert_eq!(uuid_bits(b"15ada221-cccb-4a47-8c4d-7a4ec40723cx"), None);
        assert_eq!(uuid_bits(b"15ada221xcccb-4a47-8c4d-7a4ec40723cd"), None);
    }

    #[test]
    fn the_workshop_log_aggregates_to_its_known_totals() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/agilethought_logs.txt");
        let file = std::fs::File::open(path).unwrap();
        let reader = std::io::BufReader::new(file);
        let (t, s) =
            aggregate_logs("agilethought_logs.txt", reader, 300, &LogOptions::default()).unwrap();
        assert_eq!(s.lines, 20_000);
        assert_eq!(s.bytes, std::fs::metadata(path).unwrap().len());
        // 3,937 end-user sessions plus 46 admin and 17 config user sessions.
        assert_eq!(s.sessions_started, 4_000);
        assert_eq!(s.jobs_started, 6_000);
        assert_eq!(s.completed, 10_000);
        assert_eq!(
            (
                s.unmatched_ends,
                s.duplicate_starts,
                s.unknown_lines,
                s.open_at_end,
                s.out_of_order
            ),
            (0, 0, 0, 0, 0)
        );
        assert_eq!(format_timestamp(t.timestamps[0]), "2019-06-15T01:00:00Z");
        assert_eq!(
            format_timestamp(*t.timestamps.last().unwrap()),
            "2019-06-16T00:10:00Z"
        );
        assert_eq!(t.len(), 279);
        let sum = |name: &str| col(&t, name).iter().sum::<f64>();
        assert_eq!(sum("session_arrivals"), 4_000.0);
        assert_eq!(sum("job_arrivals"), 6_000.0);
        assert_eq!(sum("completions"), 10_000.0);
        let kinds: Vec<&str> = names(&t)
            .into_iter()
            .filter(|n| n.starts_with("jobs_"))
            .collect();
        assert_eq!(kinds.len(), 25);
        assert!(kinds.windows(2).all(|w| w[0] < w[1]));
        assert!(kinds.contains(&"jobs_CreateUsers") && kinds.contains(&"jobs_UpdateEngagement"));
        // The kinds add up to all jobs in every interval.
        for i in 0..t.len() {
            let by_kind: f64 = kinds.iter().map(|k| col(&t, k)[i]).sum();
            assert!((by_kind - col(&t, "jobs")[i]).abs() < 1e-9, "interval {i}");
        }
        // Everything closed, so the open time integrated per interval equals
        // the sum of the durations of what ended.
        let open_secs = (sum("sessions") + sum("jobs")) * 300.0;
        let durations: f64 = col(&t, "mean_duration_s")
            .iter()
            .zip(col(&t, "completions"))
            .filter(|(d, _)| !d.is_nan())
            .map(|(d, k)| d * k)
            .sum();
        assert!(
            (open_secs - durations).abs() < 1e-6 * durations,
            "{open_secs} vs {durations}"
        );
        let nan = |name: &str| col(&t, name).iter().filter(|v| v.is_nan()).count();
        assert_eq!(
            t.missing_values,
            nan("mean_duration_s") + nan("mean_job_duration_s")
        );
    }
}
