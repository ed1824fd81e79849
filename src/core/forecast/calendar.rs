//! A calendar of special days or events (holidays, launches, match days):
//! closed-open UTC time ranges that the model gets as features, because the
//! load on those days does not follow the usual weekly shape.

use crate::core::time::DAY_SECS;
use serde::{Deserialize, Serialize};

/// Sorted, non-overlapping `[start, end)` ranges in epoch seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Calendar {
    ranges: Vec<(i64, i64)>,
    names: Vec<String>,
}

/// Errors in a calendar file; each names the 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CalendarError {
    #[error(
        "line {line}: cannot read date '{text}' (expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)"
    )]
    Date { line: usize, text: String },
    #[error("line {line}: the event ends ({end}) before it starts ({start})")]
    Reversed {
        line: usize,
        start: String,
        end: String,
    },
}

impl Calendar {
    /// Parse calendar text: one event a line, `date[,name]` (a whole UTC day)
    /// or `start,end[,name]` (dates or date-times; `end` is exclusive for
    /// date-times and inclusive for dates). Blank lines, `#` comments and a
    /// header line starting with `date` or `start` are skipped.
    pub fn parse(text: &str) -> Result<Calendar, CalendarError> {
        let mut events: Vec<(i64, i64, String)> = Vec::new();
        for (idx, raw) in text.lines().enumerate() {
            let line = idx + 1;
            let l = raw.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = l.split(',').map(str::trim).collect();
            if idx == 0
                && (fields[0].eq_ignore_ascii_case("date")
                    || fields[0].eq_ignore_ascii_case("start"))
            {
                continue;
            }
            let (start, _) = parse_point(fields[0]).ok_or_else(|| CalendarError::Date {
                line,
                text: fields[0].to_string(),
            })?;
            let second = fields.get(1).and_then(|f| parse_point(f));
            let (end, name) = match second {
                Some((e, is_date)) => (
                    if is_date { e + DAY_SECS } else { e },
                    fields.get(2).copied().unwrap_or(""),
                ),
                // A single point marks one day from that point.
                None => (start + DAY_SECS, fields.get(1).copied().unwrap_or("")),
            };
            if end <= start {
                return Err(CalendarError::Reversed {
                    line,
                    start: fields[0].to_string(),
                    end: fields[1].to_string(),
                });
            }
            events.push((start, end, name.to_string()));
        }
        events.sort_by_key(|e| e.0);
        let mut cal = Calendar::default();
        for (s, e, name) in events {
            match cal.ranges.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => {
                    cal.ranges.push((s, e));
                    cal.names.push(name);
                }
            }
        }
        Ok(cal)
    }

    /// True when no event is known.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Number of (merged) events.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// True when `[from, to)` intersects an event.
    pub fn overlaps(&self, from: i64, to: i64) -> bool {
        // First range that ends after `from`.
        let i = self.ranges.partition_point(|r| r.1 <= from);
        self.ranges.get(i).is_some_and(|r| r.0 < to)
    }
}

/// A date (midnight UTC, true) or an RFC 3339 date-time (false).
fn parse_point(s: &str) -> Option<(i64, bool)> {
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some((d.and_hms_opt(0, 0, 0)?.and_utc().timestamp(), true));
    }
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some((dt.timestamp(), false));
    }
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|dt| (dt.and_utc().timestamp(), false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_marks_the_whole_utc_day() {
        let cal = Calendar::parse("date,name\n2014-11-27,Thanksgiving\n").unwrap();
        let day = 1_417_046_400; // 2014-11-27T00:00:00Z
        assert!(cal.overlaps(day, day + 1));
        assert!(cal.overlaps(day + DAY_SECS - 1, day + DAY_SECS));
        assert!(!cal.overlaps(day + DAY_SECS, day + DAY_SECS + 60));
        assert!(!cal.overlaps(day - 60, day));
    }

    #[test]
    fn ranges_merge_and_inclusive_end_dates_cover_the_last_day() {
        let cal =
            Calendar::parse("2014-12-24,2014-12-26,Christmas\n2014-12-26,Boxing day\n").unwrap();
        assert_eq!(cal.len(), 1);
        let boxing = 1_419_552_000; // 2014-12-26
        assert!(cal.overlaps(boxing + 3_600, boxing + 7_200));
    }

    #[test]
    fn a_bad_date_names_its_line() {
        let err = Calendar::parse("2014-01-01\n\n2014-13-01\n").unwrap_err();
        assert_eq!(
            err,
            CalendarError::Date {
                line: 3,
                text: "2014-13-01".into()
            }
        );
    }
}
