//! Time units of the core: a fixed series [`Step`], a [`Duration`] for
//! settings, and parsing of human durations ("90s", "5m", "1h", "1d", "1w").
//!
//! Timestamps everywhere in the core are `i64` seconds since the Unix epoch, UTC.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Seconds in a day and a week; calendar terms and seasonal baselines use them.
pub const DAY_SECS: i64 = 86_400;
/// Seconds in a week.
pub const WEEK_SECS: i64 = 7 * DAY_SECS;

/// Errors when parsing a duration or step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    #[error(
        "duration '{0}' is not a number followed by a unit (s, m, h, d, w), e.g. 30s, 5m, 1h, 1d"
    )]
    Syntax(String),
    #[error("duration '{0}' must be positive")]
    NotPositive(String),
}

/// Parse a human duration into whole seconds: `90s`, `5m`, `1h`, `1d`, `1w`,
/// also `1h30m`. A bare number is seconds.
pub fn parse_duration_secs(text: &str) -> Result<i64, DurationError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(DurationError::Syntax(text.to_string()));
    }
    if let Ok(n) = s.parse::<i64>() {
        return if n > 0 {
            Ok(n)
        } else {
            Err(DurationError::NotPositive(text.to_string()))
        };
    }
    let mut total: i64 = 0;
    let mut num = String::new();
    let mut saw_unit = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => DAY_SECS,
            'w' => WEEK_SECS,
            _ => return Err(DurationError::Syntax(text.to_string())),
        };
        let n: i64 = num
            .parse()
            .map_err(|_| DurationError::Syntax(text.to_string()))?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| DurationError::Syntax(text.to_string()))?;
        num.clear();
        saw_unit = true;
    }
    if !num.is_empty() || !saw_unit {
        return Err(DurationError::Syntax(text.to_string()));
    }
    if total <= 0 {
        return Err(DurationError::NotPositive(text.to_string()));
    }
    Ok(total)
}

/// Format whole seconds the way [`parse_duration_secs`] reads them, using the
/// largest unit that divides evenly ("5m", "1d", "90s").
pub fn format_duration_secs(secs: i64) -> String {
    for (unit, name) in [(WEEK_SECS, "w"), (DAY_SECS, "d"), (3_600, "h"), (60, "m")] {
        if secs != 0 && secs % unit == 0 {
            return format!("{}{}", secs / unit, name);
        }
    }
    format!("{secs}s")
}

/// A length of time in whole seconds, never negative: cooldowns, windows,
/// lead times and deadlines in settings. Reads as people write it (`0`,
/// `90s`, `5m`, `1h30m`, `1d`) and prints the same way, in flags, TOML and
/// JSON alike.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(i64);

impl Duration {
    /// No time at all (a cooldown that is off).
    pub const ZERO: Duration = Duration(0);

    /// `secs` seconds; `None` when negative.
    pub const fn from_secs(secs: i64) -> Option<Duration> {
        if secs >= 0 {
            Some(Duration(secs))
        } else {
            None
        }
    }
    /// `n` minutes.
    pub const fn minutes(n: i64) -> Duration {
        Duration(n * 60)
    }
    /// `n` hours.
    pub const fn hours(n: i64) -> Duration {
        Duration(n * 3_600)
    }
    /// `n` days.
    pub const fn days(n: i64) -> Duration {
        Duration(n * DAY_SECS)
    }
    /// The length in seconds.
    pub const fn secs(self) -> i64 {
        self.0
    }
    /// Whether this is no time at all.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }
    /// As a standard library duration (for sleeping and timeouts in the shell).
    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_secs(self.0.max(0) as u64)
    }
}

impl FromStr for Duration {
    type Err = DurationError;
    /// `0`, `0s` (and `none`) are zero; anything else as [`parse_duration_secs`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "0" | "0s" | "0m" | "none" => Ok(Duration::ZERO),
            t => parse_duration_secs(t).map(Duration),
        }
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            f.write_str("0s")
        } else {
            f.write_str(&format_duration_secs(self.0))
        }
    }
}

impl Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    /// A string as people write it ("5m"), or a number of seconds.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Secs(i64),
        }
        match Raw::deserialize(d)? {
            Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
            Raw::Secs(n) => Duration::from_secs(n).ok_or_else(|| {
                serde::de::Error::custom(format!("a duration cannot be negative, but is {n} s"))
            }),
        }
    }
}

/// The fixed step of a regular series, in seconds (always > 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Step(i64);

impl Step {
    /// A step of `secs` seconds; `None` unless `secs > 0`.
    pub fn from_secs(secs: i64) -> Option<Step> {
        (secs > 0).then_some(Step(secs))
    }
    /// The step in seconds.
    pub fn secs(self) -> i64 {
        self.0
    }
    /// How many whole steps fit in `secs`, rounding up (a lead time of 10m at a
    /// 3m step needs 4 steps to be covered).
    pub fn steps_ceil(self, secs: i64) -> usize {
        if secs <= 0 {
            0
        } else {
            ((secs + self.0 - 1) / self.0) as usize
        }
    }
    /// Steps after the next one before a target busy for `secs` takes a
    /// change again: a decision is made every step, so an operation that ends
    /// within one step costs nothing, a longer one holds the decisions of the
    /// steps it spans (`ceil(secs / step) - 1`).
    pub fn steps_busy(self, secs: i64) -> usize {
        self.steps_ceil(secs).saturating_sub(1)
    }
    /// `Some(n)` when `secs` is exactly `n` steps.
    pub fn steps_exact(self, secs: i64) -> Option<usize> {
        (secs > 0 && secs % self.0 == 0).then(|| (secs / self.0) as usize)
    }
    /// The start of the step-aligned bucket that holds `t` (buckets are aligned
    /// to multiples of the step since the Unix epoch).
    pub fn floor(self, t: i64) -> i64 {
        t.div_euclid(self.0) * self.0
    }
}

impl TryFrom<i64> for Step {
    type Error = String;
    fn try_from(v: i64) -> Result<Self, Self::Error> {
        Step::from_secs(v).ok_or_else(|| format!("step must be positive, but is {v}"))
    }
}

impl From<Step> for i64 {
    fn from(s: Step) -> i64 {
        s.0
    }
}

impl FromStr for Step {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_duration_secs(s).map(Step)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration_secs(self.0))
    }
}

/// Format epoch seconds as RFC 3339 UTC ("1998-04-30T21:30:00Z").
pub fn rfc3339(t: i64) -> String {
    match chrono::DateTime::from_timestamp(t, 0) {
        Some(dt) => dt.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => format!("@{t}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration_secs("90s"), Ok(90));
        assert_eq!(parse_duration_secs("5m"), Ok(300));
        assert_eq!(parse_duration_secs("1h30m"), Ok(5_400));
        assert_eq!(parse_duration_secs("1d"), Ok(86_400));
        assert_eq!(parse_duration_secs("2w"), Ok(1_209_600));
        assert_eq!(parse_duration_secs("45"), Ok(45));
    }

    #[test]
    fn malformed_or_non_positive_durations_are_rejected_with_the_text() {
        assert!(matches!(parse_duration_secs("5x"), Err(DurationError::Syntax(s)) if s == "5x"));
        assert!(parse_duration_secs("m").is_err());
        assert!(parse_duration_secs("5m3").is_err());
        assert!(matches!(
            parse_duration_secs("0m"),
            Err(DurationError::NotPositive(_))
        ));
        assert!(parse_duration_secs("-5").is_err());
        assert!(parse_duration_secs("").is_err());
    }

    #[test]
    fn a_duration_reads_and_prints_as_people_write_it_zero_included() {
        let d: Duration = "1h30m".parse().unwrap();
        assert_eq!((d.secs(), d.to_string()), (5_400, "90m".to_string()));
        assert_eq!("0".parse::<Duration>(), Ok(Duration::ZERO));
        assert_eq!(Duration::ZERO.to_string(), "0s");
        assert!("-5m".parse::<Duration>().is_err());
        let json = serde_json::to_string(&Duration::minutes(5)).unwrap();
        assert_eq!(json, "\"5m\"");
        assert_eq!(
            serde_json::from_str::<Duration>("300").unwrap(),
            Duration::minutes(5)
        );
        assert!(serde_json::from_str::<Duration>("-1").is_err());
    }

    #[test]
    fn a_step_formats_with_its_largest_even_unit() {
        assert_eq!("30m".parse::<Step>().unwrap().to_string(), "30m");
        assert_eq!("24h".parse::<Step>().unwrap().to_string(), "1d");
        assert_eq!("90s".parse::<Step>().unwrap().to_string(), "90s");
    }

    #[test]
    fn lead_time_in_steps_rounds_up() {
        let s = Step::from_secs(180).unwrap();
        assert_eq!(s.steps_ceil(600), 4);
        assert_eq!(s.steps_exact(600), None);
        assert_eq!(s.steps_exact(540), Some(3));
    }

    #[test]
    fn buckets_align_to_the_epoch_even_before_it() {
        let s = Step::from_secs(300).unwrap();
        assert_eq!(s.floor(601), 600);
        assert_eq!(s.floor(-1), -300);
    }
}
