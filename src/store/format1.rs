//! Artifact format 1, frozen: the payload types as format 1 wrote them, so
//! that models already in registries keep loading after format 2 changed
//! the forecaster (calibrated intervals and the lead-window peak) and the
//! card (coverage per horizon).
//!
//! Only the types whose shape changed are copied here; the others are shared
//! with the current format. When one of those changes shape, copy it here as
//! it was before bumping the format again.

use crate::core::forecast::calendar::Calendar;
use crate::core::forecast::conformal::Calibration;
use crate::core::forecast::features::FeatureSpec;
use crate::core::forecast::gate::GateVerdict;
use crate::core::forecast::metrics::{Metrics, LEVELS};
use crate::core::forecast::model::{ForecastModel, Transform};
use crate::core::forecast::regression::{RegressionEvaluation, RegressionModel};
use crate::store::artifact;
use crate::store::card::{self, NamedMetrics, SourceCard};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The payload of a format-1 artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactPayload {
    pub card: ModelCard,
    pub model: Model,
}

/// [`artifact::Model`] of format 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Model {
    Forecast(ForecastModelV1),
    Regression(RegressionModel),
}

/// [`ForecastModel`] of format 1: intervals were the quantiles of the
/// walk-forward residuals per horizon, at [`LEVELS`], in model space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecastModelV1 {
    pub metric: String,
    pub spec: FeatureSpec,
    pub transform: Transform,
    pub scale: f64,
    pub coef: Vec<Vec<f64>>,
    pub residual_quantiles: Vec<Vec<f64>>,
    pub eval_mae: Vec<f64>,
    pub calendar: Calendar,
}

/// [`card::ModelCard`] of format 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    pub name: String,
    pub id: String,
    pub kind: String,
    pub mlscaler_version: String,
    pub format_version: u16,
    pub created_at: String,
    pub source: SourceCard,
    pub window_from: String,
    pub window_to: String,
    pub window_steps: usize,
    pub step: String,
    pub target: String,
    pub inputs: Vec<String>,
    pub horizon_steps: usize,
    pub lead_steps: usize,
    pub features: Vec<String>,
    pub settings: BTreeMap<String, String>,
    pub evaluation: EvaluationCard,
    pub gate: GateVerdict,
    pub forced: bool,
}

/// [`card::EvaluationCard`] of format 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationCard {
    pub from: String,
    pub to: String,
    pub origins: usize,
    pub folds: usize,
    pub per_horizon: Vec<HorizonCard>,
    pub regression: Option<RegressionEvaluation>,
}

/// [`card::HorizonCard`] of format 1 (no coverage by quantile level).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HorizonCard {
    pub horizon: usize,
    pub model: Metrics,
    pub baselines: Vec<NamedMetrics>,
}

impl From<ForecastModelV1> for ForecastModel {
    /// The same forecasts as format 1 made: its residual quantiles as a
    /// calibration with a unit noise model and one bin; no peak calibration
    /// ([`crate::core::forecast::model::Forecast::peak_quantile`] is `None`).
    fn from(m: ForecastModelV1) -> Self {
        ForecastModel {
            intervals: m
                .residual_quantiles
                .iter()
                .map(|rq| Calibration::from_residual_quantiles(&LEVELS, rq))
                .collect(),
            peak: vec![],
            metric: m.metric,
            spec: m.spec,
            transform: m.transform,
            scale: m.scale,
            coef: m.coef,
            eval_mae: m.eval_mae,
            calendar: m.calendar,
        }
    }
}

impl From<ModelCard> for card::ModelCard {
    fn from(c: ModelCard) -> Self {
        let e = c.evaluation;
        card::ModelCard {
            name: c.name,
            id: c.id,
            kind: c.kind,
            mlscaler_version: c.mlscaler_version,
            format_version: c.format_version,
            created_at: c.created_at,
            source: c.source,
            window_from: c.window_from,
            window_to: c.window_to,
            window_steps: c.window_steps,
            step: c.step,
            target: c.target,
            inputs: c.inputs,
            horizon_steps: c.horizon_steps,
            lead_steps: c.lead_steps,
            features: c.features,
            settings: c.settings,
            evaluation: card::EvaluationCard {
                from: e.from,
                to: e.to,
                origins: e.origins,
                folds: e.folds,
                per_horizon: e
                    .per_horizon
                    .into_iter()
                    .map(|h| card::HorizonCard {
                        horizon: h.horizon,
                        model: h.model,
                        baselines: h.baselines,
                        coverage: None,
                        peak_coverage: None,
                    })
                    .collect(),
                regression: e.regression,
            },
            gate: c.gate,
            forced: c.forced,
        }
    }
}

impl From<ArtifactPayload> for artifact::ArtifactPayload {
    fn from(p: ArtifactPayload) -> Self {
        artifact::ArtifactPayload {
            card: p.card.into(),
            model: match p.model {
                Model::Forecast(m) => artifact::Model::Forecast(m.into()),
                Model::Regression(m) => artifact::Model::Regression(m),
            },
        }
    }
}
