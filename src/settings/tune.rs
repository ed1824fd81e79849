//! The settings of `mlscaler tune`, checked.

use super::backtest::WalkForward;
use super::data::DataSettings;
use super::profile::ScalingProfile;
use super::{nonzero, Result, SettingsError};
use crate::cli::TuneArgs;
use crate::core::sim::tune::Objective;
use std::path::PathBuf;

/// Everything `tune` needs, checked.
#[derive(Debug, Clone)]
pub struct TuneSettings {
    pub data: DataSettings,
    /// The profile the search starts from.
    pub profile: ScalingProfile,
    /// Share of the history replayed; the rest scores the choice.
    pub tune_fraction: f64,
    pub objective: Objective,
    /// Whether the operations limit was given (else it is target tracking's).
    pub max_ops_given: bool,
    pub walk_forward: WalkForward,
    pub out: PathBuf,
    pub report: Option<PathBuf>,
    pub plot: Option<PathBuf>,
}

impl TuneSettings {
    /// `tune` with every default on the bundled sample, writing the profile
    /// to `out` (the demo tunes its profile this way).
    pub fn sample(out: &std::path::Path) -> Result<TuneSettings> {
        use clap::Parser as _;
        let cli = crate::cli::Cli::try_parse_from([
            std::ffi::OsStr::new("mlscaler"),
            "tune".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ])
        .map_err(|e| SettingsError::Combination(e.to_string()))?;
        let crate::cli::Command::Tune(args) = cli.command else {
            unreachable!("parsed a tune command")
        };
        TuneSettings::from_args(&args)
    }

    /// From the command line.
    pub fn from_args(a: &TuneArgs) -> Result<TuneSettings> {
        if !(a.tune_fraction > 0.0 && a.tune_fraction < 1.0) {
            return Err(SettingsError::invalid(
                "tune-fraction",
                a.tune_fraction,
                "should be in (0, 1): a part to tune on and a part held back",
            ));
        }
        if !(a.max_under_provisioned >= 0.0 && a.max_under_provisioned <= 100.0) {
            return Err(SettingsError::invalid(
                "max-under-provisioned",
                a.max_under_provisioned,
                "should be a percentage in [0, 100]",
            ));
        }
        if let Some(x) = a.max_operations_per_hour {
            if !(x > 0.0 && x.is_finite()) {
                return Err(SettingsError::invalid(
                    "max-operations-per-hour",
                    x,
                    "should be a positive number",
                ));
            }
        }
        Ok(TuneSettings {
            data: DataSettings::from_args(&a.input)?,
            profile: ScalingProfile::from_args(&a.profile)?,
            tune_fraction: a.tune_fraction,
            objective: Objective {
                max_under_pct: a.max_under_provisioned,
                max_ops_per_hour: a.max_operations_per_hour,
            },
            max_ops_given: a.max_operations_per_hour.is_some(),
            walk_forward: WalkForward {
                warmup: nonzero("warmup", a.warmup)?,
                retrain_every: nonzero("retrain-every", a.retrain_every)?,
                train_window: a
                    .train_window
                    .map(|w| nonzero("train-window", w))
                    .transpose()?,
                model: None,
                models: String::new(),
                model_version: None,
                start: None,
            },
            out: a.out.clone(),
            report: a.report.clone(),
            plot: a.plot.clone(),
        })
    }
}
