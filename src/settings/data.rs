//! Where data comes from and how it is read: the checked form of
//! `--data`, the Blob Storage flags and the reading flags.

use super::{Result, SettingsError};
use crate::azure::Secret;
use crate::cli::{DataArgs, StorageArgs, StorageAuthArg};
use crate::core::forecast::series::{Aggregation, GapFill, GapPolicy};
use crate::core::time::{Duration, Step};
use crate::ingest::{Combine, Filter, Format, ReadOptions, TimeFormat};
use std::path::PathBuf;

/// How to authenticate to Blob Storage when no key, SAS or connection
/// string is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageAuth {
    /// The environment's service principal, workload identity or managed
    /// identity when one is configured; anonymous otherwise.
    Auto,
    ClientSecret,
    WorkloadIdentity,
    ManagedIdentity,
    AzureCli,
    /// No credential (public containers, a SAS in the URL).
    Anonymous,
}

/// Blob Storage access: account, secrets (never printed) and the data's
/// container and prefix when no URL is given.
#[derive(Clone)]
pub struct StorageAccess {
    pub account: Option<String>,
    pub account_key: Option<Secret>,
    pub connection_string: Option<Secret>,
    pub container: Option<String>,
    pub prefix: Option<String>,
    pub auth: StorageAuth,
}

impl std::fmt::Debug for StorageAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageAccess")
            .field("account", &self.account)
            .field("account_key", &self.account_key.as_ref().map(|_| "***"))
            .field(
                "connection_string",
                &self.connection_string.as_ref().map(|_| "***"),
            )
            .field("container", &self.container)
            .field("prefix", &self.prefix)
            .field("auth", &self.auth)
            .finish()
    }
}

impl StorageAccess {
    /// From the storage flags (and their environment variables).
    pub fn from_args(st: &StorageArgs) -> StorageAccess {
        let nonempty = |v: &Option<String>| v.as_ref().filter(|s| !s.trim().is_empty()).cloned();
        StorageAccess {
            account: nonempty(&st.account),
            account_key: nonempty(&st.account_key).map(Secret::new),
            connection_string: nonempty(&st.connection_string).map(Secret::new),
            container: nonempty(&st.container),
            prefix: nonempty(&st.prefix),
            auth: match st.storage_auth {
                StorageAuthArg::Auto => StorageAuth::Auto,
                StorageAuthArg::ClientSecret => StorageAuth::ClientSecret,
                StorageAuthArg::WorkloadIdentity => StorageAuth::WorkloadIdentity,
                StorageAuthArg::ManagedIdentity => StorageAuth::ManagedIdentity,
                StorageAuthArg::AzureCli => StorageAuth::AzureCli,
                StorageAuthArg::Anonymous => StorageAuth::Anonymous,
            },
        }
    }
}

/// The data a command reads, checked.
#[derive(Debug, Clone)]
pub struct DataSettings {
    /// `--data`: a file, a folder or a Blob URL; `None` with `--container`
    /// (or for the bundled sample).
    pub location: Option<String>,
    pub storage: StorageAccess,
    pub read: ReadOptions,
    /// `--metric`: the column to forecast (or predict).
    pub metric: Option<String>,
    /// `--calendar`: special days and events.
    pub calendar: Option<PathBuf>,
}

impl DataSettings {
    /// From the data flags.
    pub fn from_args(args: &DataArgs) -> Result<DataSettings> {
        Ok(DataSettings {
            location: args.data.clone().filter(|d| !d.trim().is_empty()),
            storage: StorageAccess::from_args(&args.storage),
            read: read_options(args)?,
            metric: args.metric.clone(),
            calendar: args.calendar.clone(),
        })
    }

    /// Whether the bundled sample is read (no `--data`, no `--container`).
    pub fn is_sample(&self) -> bool {
        self.location.is_none() && self.storage.container.is_none()
    }
}

fn read_options(args: &DataArgs) -> Result<ReadOptions> {
    let format = match &args.format {
        Some(f) => Some(
            f.parse::<Format>()
                .map_err(|e| SettingsError::invalid("format", f, e.to_string()))?,
        ),
        None => None,
    };
    let time_format: TimeFormat = args
        .time_format
        .parse()
        .map_err(|e| SettingsError::invalid("time-format", &args.time_format, format!("{e}")))?;
    let step = match &args.step {
        Some(s) => Some(
            s.parse::<Step>()
                .map_err(|e| SettingsError::invalid("step", s, e.to_string()))?,
        ),
        None => None,
    };
    let agg: Aggregation = args
        .agg
        .parse()
        .map_err(|e: String| SettingsError::invalid("agg", &args.agg, e))?;
    let fill: GapFill = args
        .gaps
        .parse()
        .map_err(|e: String| SettingsError::invalid("gaps", &args.gaps, e))?;
    let max_gap: Duration = args
        .max_gap
        .parse()
        .map_err(|e| SettingsError::invalid("max-gap", &args.max_gap, format!("{e}")))?;
    let filters = args
        .filter
        .iter()
        .map(|f| {
            f.parse::<Filter>()
                .map_err(|e| SettingsError::invalid("filter", f, e))
        })
        .collect::<Result<Vec<_>>>()?;
    let aggregate = match &args.aggregate {
        Some(a) => Some(
            a.parse::<Combine>()
                .map_err(|e| SettingsError::invalid("aggregate", a, e))?,
        ),
        None => None,
    };
    if args.field.is_some() && args.value_column.is_some() {
        return Err(SettingsError::Combination(
            "--field and --value-column both name the value column; pass one".into(),
        ));
    }
    let since = time_flag("since", args.since.as_deref())?;
    let until = time_flag("until", args.until.as_deref())?;
    if let (Some(s), Some(u)) = (since, until) {
        if s > u {
            return Err(SettingsError::Combination(format!(
                "--since {} is after --until {}",
                args.since.as_deref().unwrap_or_default().trim(),
                args.until.as_deref().unwrap_or_default().trim()
            )));
        }
    }
    Ok(ReadOptions {
        format,
        time_column: args.time_column.clone(),
        time_format,
        step,
        agg,
        gaps: GapPolicy {
            fill,
            max_gap_steps: 0,
        },
        max_gap_secs: max_gap.secs(),
        since,
        until,
        filters,
        series_columns: args.series_column.clone(),
        value_column: args
            .field
            .map(|f| f.as_str().to_string())
            .or_else(|| args.value_column.clone()),
        aggregate,
    })
}

/// `--since` / `--until`: an RFC 3339 time, as epoch seconds.
fn time_flag(flag: &'static str, value: Option<&str>) -> Result<Option<i64>> {
    match value.map(str::trim) {
        None => Ok(None),
        Some(t) => crate::ingest::timestamp::parse_timestamp(t)
            .map(Some)
            .ok_or_else(|| {
                SettingsError::invalid(flag, t, "expected RFC 3339, e.g. 2026-11-30T12:00:00Z")
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser as _;

    fn data(flags: &[&str]) -> Result<DataSettings> {
        let argv = ["mlscaler", "train"].iter().chain(flags);
        let cli = Cli::try_parse_from(argv).expect("valid flags");
        let Command::Train(a) = &cli.command else {
            unreachable!("a train command")
        };
        DataSettings::from_args(&a.input)
    }

    #[test]
    fn long_table_flags_and_the_time_range_are_checked_once() {
        let d = data(&[
            "--filter",
            "metricName=Percentage CPU",
            "--filter",
            "resourceId=/SUBSCRIPTIONS/S/VM1",
            "--series-column",
            "resourceId",
            "--field",
            "maximum",
            "--aggregate",
            "sum",
            "--since",
            "2026-11-30T18:00:00Z",
            "--until",
            "2026-11-30T19:00:00Z",
        ])
        .unwrap();
        let r = &d.read;
        assert_eq!(r.filters.len(), 2);
        assert_eq!(r.filters[0].column, "metricName");
        assert_eq!(r.filters[0].value, "Percentage CPU");
        assert_eq!(r.series_columns, vec!["resourceId".to_string()]);
        assert_eq!(r.value_column.as_deref(), Some("maximum"));
        assert_eq!(r.aggregate, Some(Combine::Sum));
        assert_eq!(r.since, Some(1_796_061_600));
        assert_eq!(r.until, Some(1_796_065_200));
        assert!(r.is_long(Format::Csv));

        let plain = data(&[]).unwrap().read;
        assert_eq!(plain.range(), crate::ingest::TimeRange::ALL);
        assert!(!plain.is_long(Format::Csv));
        assert!(plain.is_long(Format::AzureMonitor));
    }

    #[test]
    fn bad_long_table_flags_and_time_ranges_name_the_flag() {
        let e = |flags: &[&str]| data(flags).unwrap_err().to_string();
        assert_eq!(
            e(&["--filter", "=x"]),
            "--filter '=x': '=x' is not COLUMN=VALUE (e.g. metricName=Percentage CPU)"
        );
        assert!(
            e(&["--since", "yesterday"]).starts_with("--since 'yesterday': expected RFC 3339"),
            "{}",
            e(&["--since", "yesterday"])
        );
        assert_eq!(
            e(&[
                "--since",
                "2026-11-30T19:00:00Z",
                "--until",
                "2026-11-30T18:00:00Z"
            ]),
            "--since 2026-11-30T19:00:00Z is after --until 2026-11-30T18:00:00Z"
        );
        assert!(
            e(&["--field", "average", "--value-column", "v"]).contains("pass one"),
            "field and value-column"
        );
    }
}
