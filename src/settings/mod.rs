//! Checked settings, one type per command, built in one place from the raw
//! command line ([`crate::cli`]): flags > environment > TOML file
//! ([`file`]) > defaults. Everything is parsed and range-checked here, once;
//! every error names the flag and the value. Below this module no function
//! sees a clap type or an unparsed string.
//!
//! - [`profile`]: the scaling profile shared by `scale`, `backtest` and
//!   `tune` (policy parameters, safety rules, fallback, drift, bounds);
//! - [`data`]: where data comes from and how it is read;
//! - [`train`], [`backtest`], [`scale`], [`tune`]: the other settings of each command;
//! - [`file`]: the TOML config file, applied as flags the user did not set.

pub mod backtest;
pub mod data;
pub mod file;
pub mod profile;
pub mod scale;
pub mod train;
pub mod tune;

use crate::cli::{Cli, LogFormat, OutputFormat};

/// How results and logs are printed (the global flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Output {
    /// Only errors on standard error; no summary for people.
    pub quiet: bool,
    /// JSON on standard output instead of text.
    pub json: bool,
    /// JSON log lines on standard error instead of text.
    pub json_logs: bool,
    /// 0: warnings; 1: debug; 2: trace.
    pub verbose: u8,
}

/// `inspect`: the card of an artifact file or of the latest model of a name.
#[derive(Debug, Clone)]
pub struct InspectSettings {
    /// An artifact file (.mlsm), or a model name in `models`.
    pub model: String,
    pub models: String,
    pub storage: data::StorageAccess,
}

/// A command with its checked settings.
#[derive(Debug, Clone)]
pub enum Command {
    Train(Box<train::TrainSettings>),
    Backtest(Box<backtest::BacktestSettings>),
    Scale(Box<scale::ScaleSettings>),
    Tune(Box<tune::TuneSettings>),
    Inspect(InspectSettings),
    /// `config check`: the config file, validated, and every effective setting.
    ConfigCheck(Option<file::ConfigFile>),
    /// `config role`: the least-privilege custom role, for these scopes.
    ConfigRole(Vec<String>),
}

impl Command {
    /// The checked settings of the parsed command line (`None` for shell
    /// completions, which need nothing checked). `file` is the config file
    /// already applied to the command line.
    pub fn from_cli(cli: &Cli, file: Option<&file::ConfigFile>) -> Result<Option<Command>> {
        use crate::cli::Command as C;
        Ok(Some(match &cli.command {
            C::Train(a) => Command::Train(Box::new(train::TrainSettings::from_args(a)?)),
            C::Backtest(a) => {
                Command::Backtest(Box::new(backtest::BacktestSettings::from_args(a)?))
            }
            C::Scale(a) => Command::Scale(Box::new(scale::ScaleSettings::from_args(a)?)),
            C::Tune(a) => Command::Tune(Box::new(tune::TuneSettings::from_args(a)?)),
            C::Inspect(a) => Command::Inspect(InspectSettings {
                model: a.model.clone(),
                models: a.models.clone(),
                storage: data::StorageAccess::from_args(&a.storage),
            }),
            C::Config(crate::cli::ConfigArgs {
                action: crate::cli::ConfigAction::Role { scopes },
            }) => Command::ConfigRole(scopes.clone()),
            C::Config(_) => Command::ConfigCheck(file.cloned()),
            C::Completions { .. } => return Ok(None),
        }))
    }
}

impl Output {
    /// The global flags.
    pub fn from_cli(cli: &Cli) -> Output {
        Output {
            quiet: cli.quiet,
            json: cli.output == OutputFormat::Json,
            json_logs: cli.log_format == LogFormat::Json,
            verbose: cli.verbose,
        }
    }
}

/// A setting that cannot work, naming the flag and the value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// A value out of range or malformed.
    #[error("--{flag} '{value}': {reason}")]
    Invalid {
        flag: &'static str,
        value: String,
        reason: String,
    },
    /// A combination of settings that cannot work, or a missing one.
    #[error("{0}")]
    Combination(String),
}

impl SettingsError {
    /// `--flag value: reason`.
    pub fn invalid(flag: &'static str, value: impl ToString, reason: impl Into<String>) -> Self {
        SettingsError::Invalid {
            flag,
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

/// Result of building settings.
pub type Result<T> = std::result::Result<T, SettingsError>;

/// A share in `(0, 1]` (a utilisation).
pub(crate) fn utilisation(flag: &'static str, v: f64) -> Result<f64> {
    if v > 0.0 && v <= 1.0 {
        Ok(v)
    } else {
        Err(SettingsError::invalid(flag, v, "should be in (0, 1]"))
    }
}

/// A probability in `(0, 1)` (a quantile).
pub(crate) fn open_unit(flag: &'static str, v: f64) -> Result<f64> {
    if v > 0.0 && v < 1.0 {
        Ok(v)
    } else {
        Err(SettingsError::invalid(flag, v, "should be in (0, 1)"))
    }
}

/// A finite number `>= 0`.
pub(crate) fn non_negative(flag: &'static str, v: f64) -> Result<f64> {
    if v >= 0.0 && v.is_finite() {
        Ok(v)
    } else {
        Err(SettingsError::invalid(
            flag,
            v,
            "should be a finite number >= 0",
        ))
    }
}

/// A finite number `> 0`.
pub(crate) fn positive(flag: &'static str, v: f64) -> Result<f64> {
    if v > 0.0 && v.is_finite() {
        Ok(v)
    } else {
        Err(SettingsError::invalid(
            flag,
            v,
            "should be a positive finite number",
        ))
    }
}

/// A whole number `>= 1`.
pub(crate) fn at_least_one(flag: &'static str, v: u32) -> Result<u32> {
    if v >= 1 {
        Ok(v)
    } else {
        Err(SettingsError::invalid(flag, v, "should be at least 1"))
    }
}

/// A duration longer than zero.
pub(crate) fn nonzero(
    flag: &'static str,
    d: crate::core::time::Duration,
) -> Result<crate::core::time::Duration> {
    if d.is_zero() {
        Err(SettingsError::invalid(flag, d, "should be longer than 0s"))
    } else {
        Ok(d)
    }
}
