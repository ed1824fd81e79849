//! Where data comes from and how it is read: the checked form of
//! `--data`, the Blob Storage flags and the reading flags.

use super::{Result, SettingsError};
use crate::azure::Secret;
use crate::cli::{DataArgs, StorageArgs, StorageAuthArg};
use crate::core::forecast::series::{Aggregation, GapFill, GapPolicy};
use crate::core::time::{Duration, Step};
use crate::ingest::{Format, ReadOptions, TimeFormat};
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
    })
}
