//! Fast timestamp parsing and formatting, epoch seconds UTC.
//!
//! The common layouts are parsed by hand, without allocation, with full range
//! checks (month 1-12, day within the month, leap years, hour 0-23, minute and
//! second 0-59). Anything else falls back to chrono. Fractions of a second are
//! dropped (rounded towards the past), so results are whole seconds.

use chrono::{DateTime, NaiveDate, NaiveDateTime};

/// Seconds in a day.
const DAY: i64 = 86_400;

/// Parse a timestamp in one of the automatically recognised layouts to epoch
/// seconds UTC:
///
/// - `YYYY-MM-DD HH:MM:SS[.fff]` (naive, taken as UTC),
/// - `YYYY-MM-DDTHH:MM:SS[.fff][Z|±HH:MM|±HHMM]` (RFC 3339; a zone may also
///   follow the space form),
/// - the two above without seconds (`YYYY-MM-DD HH:MM`),
/// - `YYYY-MM-DD` (midnight UTC).
///
/// Leading and trailing whitespace is ignored. Returns `None` for anything
/// else, including plain integers: whether `1404172800` is seconds,
/// milliseconds or a row index is for the caller to say.
///
/// ```
/// use mlscaler::ingest::timestamp::parse_timestamp;
/// assert_eq!(parse_timestamp("1998-04-30 21:30:00"), Some(893_971_800));
/// assert_eq!(parse_timestamp("1998-04-30T23:30:00+02:00"), Some(893_971_800));
/// assert_eq!(parse_timestamp("1998-13-01 00:00"), None);
/// ```
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    parse_fast(s.as_bytes()).or_else(|| parse_slow(s))
}

/// [`parse_timestamp`] on bytes (for callers that have not checked UTF-8).
pub fn parse_timestamp_bytes(b: &[u8]) -> Option<i64> {
    let b = b.trim_ascii();
    match parse_fast(b) {
        Some(t) => Some(t),
        None => std::str::from_utf8(b).ok().and_then(parse_slow),
    }
}

/// Format epoch seconds as RFC 3339 UTC, e.g. `1998-04-30T21:30:00Z`.
/// Defined for every `i64` (years beyond 9999 or before 0 get more digits or
/// a sign).
pub fn format_timestamp(secs: i64) -> String {
    let days = secs.div_euclid(DAY);
    let rem = secs.rem_euclid(DAY);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`). `m` is 1-12, `d` 1-31; no range check.
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number since 1970-01-01 (inverse of [`days_from_civil`]).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[inline]
fn digit(b: u8) -> Option<i64> {
    let d = b.wrapping_sub(b'0');
    (d < 10).then_some(i64::from(d))
}

#[inline]
fn two(b: &[u8], i: usize) -> Option<i64> {
    Some(digit(*b.get(i)?)? * 10 + digit(*b.get(i + 1)?)?)
}

/// The hand-written parser; `None` sends the text to chrono.
fn parse_fast(b: &[u8]) -> Option<i64> {
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y = two(b, 0)? * 100 + two(b, 2)?;
    let (m, d) = (two(b, 5)?, two(b, 8)?);
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    let days = days_from_civil(y, m, d);
    if b.len() == 10 {
        return Some(days * DAY);
    }
    if !matches!(b[10], b' ' | b'T' | b't') || b.get(13) != Some(&b':') {
        return None;
    }
    let (hh, mm) = (two(b, 11)?, two(b, 14)?);
    let mut i = 16;
    let mut ss = 0;
    if b.get(i) == Some(&b':') {
        ss = two(b, i + 1)?;
        i += 3;
        if matches!(b.get(i), Some(b'.' | b',')) {
            i += 1;
            let start = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == start {
                return None;
            }
        }
    }
    if hh > 23 || mm > 59 || ss > 59 {
        return None; // a leap second (":60") is left to chrono
    }
    let offset = match b.get(i) {
        None => 0,
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) => {
            let oh = two(b, i + 1)?;
            let om = match b.len() - i {
                3 => 0,                                  // ±HH
                5 => two(b, i + 3)?,                     // ±HHMM
                6 if b[i + 3] == b':' => two(b, i + 4)?, // ±HH:MM
                _ => return None,
            };
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if sign == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    Some(days * DAY + hh * 3600 + mm * 60 + ss - offset)
}

/// chrono for the rarer spellings (leap seconds, other RFC 3339 forms).
fn parse_slow(s: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp());
    }
    for pattern in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, pattern) {
            return Some(t.and_utc().timestamp());
        }
    }
    None
}

/// Parse with a chrono strftime `pattern`: zoned if the pattern has a zone,
/// naive (UTC) otherwise, a date alone at midnight UTC.
pub(crate) fn parse_with_pattern(s: &str, pattern: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_str(s, pattern) {
        return Some(t.timestamp());
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(s, pattern) {
        return Some(t.and_utc().timestamp());
    }
    NaiveDate::parse_from_str(s, pattern).ok().map(|d| {
        d.and_hms_opt(0, 0, 0)
            .map_or(0, |t| t.and_utc().timestamp())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chrono_secs(s: &str) -> i64 {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
            .unwrap()
            .and_utc()
            .timestamp()
    }

    #[test]
    fn the_common_layouts_parse_to_the_same_instant() {
        let t = chrono_secs("1998-04-30 21:30:00");
        for s in [
            "1998-04-30 21:30:00",
            "1998-04-30T21:30:00",
            "1998-04-30T21:30:00Z",
            "1998-04-30t21:30:00z",
            "1998-04-30T21:30:00.999Z",
            "1998-04-30 21:30:00,5",
            "1998-04-30T23:30:00+02:00",
            "1998-04-30T23:30:00+0200",
            "1998-04-30T23:30:00+02",
            "1998-04-30T19:00:00-02:30",
            "1998-04-30 21:30",
            "  1998-04-30 21:30:00 ",
        ] {
            assert_eq!(parse_timestamp(s), Some(t), "{s}");
            assert_eq!(parse_timestamp_bytes(s.as_bytes()), Some(t), "{s}");
        }
        assert_eq!(parse_timestamp("1998-04-30"), Some(t - 21 * 3600 - 1800));
    }

    #[test]
    fn out_of_range_fields_are_rejected() {
        for s in [
            "1998-13-01 00:00:00",
            "1998-00-01 00:00:00",
            "1998-02-29 00:00:00",
            "1900-02-29",
            "1998-04-31",
            "1998-04-30 24:00:00",
            "1998-04-30 23:60:00",
            "1998-04-30 23:59:61",
            "1998-04-30T23:59:59+24:00",
            "1998-04-30T23:59:59.Z",
            "1998-04-30T23:59:59 Z",
            "1998-4-30",
            "",
            "1404172800",
            "yesterday",
        ] {
            assert_eq!(parse_timestamp(s), None, "{s}");
        }
        assert!(parse_timestamp("2000-02-29 12:00:00").is_some());
        assert!(parse_timestamp("2016-02-29").is_some());
    }

    #[test]
    fn a_leap_second_falls_back_to_chrono() {
        assert_eq!(
            parse_timestamp("2016-12-31T23:59:60Z"),
            Some(chrono_secs("2016-12-31 23:59:59"))
        );
    }

    #[test]
    fn fractions_round_towards_the_past_before_1970_too() {
        assert_eq!(parse_timestamp("1969-12-31 23:59:59.5"), Some(-1));
        assert_eq!(parse_timestamp("1970-01-01 00:00:00.5"), Some(0));
    }

    #[test]
    fn the_fast_path_agrees_with_chrono_over_four_centuries() {
        // Deterministic pseudo-random instants between 1800 and 2200.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let secs = (x >> 11) as i64 % (400 * 365 * DAY) - 170 * 365 * DAY;
            let dt = DateTime::from_timestamp(secs, 0).unwrap();
            let text = dt.format("%Y-%m-%d %H:%M:%S").to_string();
            assert_eq!(parse_fast(text.as_bytes()), Some(secs), "{text}");
            assert_eq!(
                format_timestamp(secs),
                dt.format("%Y-%m-%dT%H:%M:%SZ").to_string()
            );
        }
    }

    #[test]
    fn formatting_is_rfc3339_utc() {
        assert_eq!(format_timestamp(893_971_800), "1998-04-30T21:30:00Z");
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_timestamp(-1), "1969-12-31T23:59:59Z");
        // Never panics, even at the extremes.
        let _ = format_timestamp(i64::MAX);
        let _ = format_timestamp(i64::MIN);
    }

    #[test]
    fn patterns_handle_zoned_naive_and_date_only_text() {
        let t = chrono_secs("1998-04-30 21:30:00");
        assert_eq!(
            parse_with_pattern("30/04/1998 21:30", "%d/%m/%Y %H:%M"),
            Some(t)
        );
        assert_eq!(
            parse_with_pattern("30/04/1998 23:30 +0200", "%d/%m/%Y %H:%M %z"),
            Some(t)
        );
        assert_eq!(
            parse_with_pattern("30/04/1998", "%d/%m/%Y"),
            Some(t - 77_400)
        );
        assert_eq!(parse_with_pattern("1998-04-30", "%d/%m/%Y"), None);
    }
}
