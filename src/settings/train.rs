//! The settings of `mlscaler train`, checked.

use super::data::DataSettings;
use super::{nonzero, Result, SettingsError};
use crate::cli::{GateMetricArg, ModelKind, SeasonArg, TrainArgs, TransformArg};
use crate::core::forecast::features::{FeatureParams, Season};
use crate::core::forecast::gate::GateMetric;
use crate::core::forecast::model::{ForecastParams, Transform};
use crate::core::time::{Duration, Step, DAY_SECS, WEEK_SECS};
use std::path::PathBuf;

/// What kind of model to fit.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelSpec {
    /// Forecast the metric over a horizon.
    Forecast(ForecastSpec),
    /// Predict the metric from `inputs` (e.g. latency from user counts).
    Regression { inputs: Vec<String> },
}

/// The forecaster's settings (steps are fixed once the data's step is known).
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastSpec {
    pub lead_time: Duration,
    /// `None`: the lead time.
    pub horizon: Option<Duration>,
    pub lags: usize,
    pub seasons: Vec<Season>,
    /// Rolling-statistics windows (none are zero).
    pub rolling: Vec<Duration>,
    pub transform: Transform,
    pub ridge: f64,
}

impl ForecastSpec {
    /// The lead time and horizon in steps of `step` (rounded up).
    pub fn steps(&self, step: Step) -> (usize, usize) {
        let lead = step.steps_ceil(self.lead_time.secs());
        let horizon = self.horizon.map_or(lead, |h| step.steps_ceil(h.secs()));
        (lead, horizon)
    }

    /// The core's forecaster parameters for data at `step`.
    pub fn params(
        &self,
        step: Step,
        eval_fraction: f64,
        folds: usize,
        events: bool,
    ) -> ForecastParams {
        let (lead, horizon) = self.steps(step);
        let seasons = self.seasons.clone();
        ForecastParams {
            features: FeatureParams {
                lags: self.lags,
                seasons,
                rolling_secs: self.rolling.iter().map(|d| d.secs()).collect(),
                events,
            },
            horizon,
            lead,
            ridge: self.ridge,
            eval_fraction,
            folds,
            transform: self.transform,
        }
    }

    /// The settings as the model card records them.
    pub fn card_settings(&self) -> Vec<(&'static str, String)> {
        let join = |v: Vec<String>| v.join(",");
        vec![
            ("lead_time", self.lead_time.to_string()),
            ("ridge", self.ridge.to_string()),
            (
                "transform",
                match self.transform {
                    Transform::Log1p => "log1p",
                    Transform::None => "none",
                }
                .to_string(),
            ),
            ("lags", self.lags.to_string()),
            ("seasons", {
                let names: Vec<String> = self
                    .seasons
                    .iter()
                    .map(|s| match s.period_secs {
                        DAY_SECS => "day".to_string(),
                        WEEK_SECS => "week".to_string(),
                        p => Duration::from_secs(p).unwrap_or_default().to_string(),
                    })
                    .collect();
                if names.is_empty() {
                    "none".to_string()
                } else {
                    join(names)
                }
            }),
            (
                "rolling",
                join(self.rolling.iter().map(|d| d.to_string()).collect()),
            ),
        ]
    }
}

/// Everything `train` needs, checked.
#[derive(Debug, Clone)]
pub struct TrainSettings {
    pub data: DataSettings,
    pub model: ModelSpec,
    /// Share of the history for the walk-forward evaluation (hold-out share for regression).
    pub eval_fraction: f64,
    pub folds: usize,
    pub gate_metric: GateMetric,
    pub gate_margin: f64,
    pub force: bool,
    /// The registry: a folder or a Blob URL.
    pub models: String,
    /// Registry name (default: the metric).
    pub name: Option<String>,
    pub plot: Option<PathBuf>,
    /// A scaling profile (TOML) to publish with the model, in the same version.
    pub publish_profile: Option<PathBuf>,
}

impl TrainSettings {
    /// `train` with every default on the bundled sample, publishing to
    /// `models` (the demo trains its model this way).
    pub fn sample(models: &str) -> Result<TrainSettings> {
        use clap::Parser as _;
        let cli = crate::cli::Cli::try_parse_from(["mlscaler", "train", "--models", models])
            .map_err(|e| SettingsError::Combination(e.to_string()))?;
        let crate::cli::Command::Train(args) = cli.command else {
            unreachable!("parsed a train command")
        };
        TrainSettings::from_args(&args)
    }

    /// From the command line.
    pub fn from_args(a: &TrainArgs) -> Result<TrainSettings> {
        let model = match a.kind {
            ModelKind::Forecast => {
                let lead_time = nonzero("lead-time", a.lead_time)?;
                if let Some(h) = a.horizon {
                    if h < lead_time {
                        return Err(SettingsError::invalid(
                            "horizon",
                            h,
                            format!("should be at least the lead time ({lead_time})"),
                        ));
                    }
                }
                if a.lags == 0 {
                    return Err(SettingsError::invalid("lags", 0, "should be at least 1"));
                }
                if !(a.ridge >= 0.0 && a.ridge.is_finite()) {
                    return Err(SettingsError::invalid("ridge", a.ridge, "should be >= 0"));
                }
                ModelSpec::Forecast(ForecastSpec {
                    lead_time,
                    horizon: a.horizon,
                    lags: a.lags,
                    seasons: seasons(&a.seasons),
                    rolling: a.rolling.iter().copied().filter(|d| !d.is_zero()).collect(),
                    transform: match a.transform {
                        TransformArg::Log1p => Transform::Log1p,
                        TransformArg::None => Transform::None,
                    },
                    ridge: a.ridge,
                })
            }
            ModelKind::Regression => {
                let inputs: Vec<String> = a
                    .inputs
                    .iter()
                    .map(|i| i.trim().to_string())
                    .filter(|i| !i.is_empty())
                    .collect();
                if inputs.is_empty() {
                    return Err(SettingsError::Combination(
                        "--kind regression needs --inputs (comma-separated metric names), e.g. --inputs admin_users,config_users,end_users".into(),
                    ));
                }
                ModelSpec::Regression { inputs }
            }
        };
        if !(a.eval_fraction > 0.0 && a.eval_fraction < 1.0) {
            return Err(SettingsError::invalid(
                "eval-fraction",
                a.eval_fraction,
                "should be in (0, 1)",
            ));
        }
        if !(0.0..1.0).contains(&a.gate_margin) {
            return Err(SettingsError::invalid(
                "gate-margin",
                a.gate_margin,
                "should be in [0, 1)",
            ));
        }
        Ok(TrainSettings {
            data: DataSettings::from_args(&a.input)?,
            model,
            eval_fraction: a.eval_fraction,
            folds: a.folds,
            gate_metric: match a.gate_metric {
                GateMetricArg::Mae => GateMetric::Mae,
                GateMetricArg::Rmse => GateMetric::Rmse,
                GateMetricArg::Smape => GateMetric::Smape,
                GateMetricArg::Pinball => GateMetric::Pinball,
            },
            gate_margin: a.gate_margin,
            force: a.force,
            models: a.models.clone(),
            name: a.name.clone(),
            plot: a.plot.clone(),
            publish_profile: a.publish_profile.clone(),
        })
    }
}

fn seasons(given: &[SeasonArg]) -> Vec<Season> {
    let mut out: Vec<Season> = Vec::new();
    for s in given {
        let season = match s {
            SeasonArg::Day => Season {
                period_secs: DAY_SECS,
                fourier_order: 4,
                seasonal_lags: true,
            },
            SeasonArg::Week => Season {
                period_secs: WEEK_SECS,
                fourier_order: 3,
                seasonal_lags: true,
            },
            SeasonArg::None => continue,
        };
        if !out.contains(&season) {
            out.push(season);
        }
    }
    out
}
