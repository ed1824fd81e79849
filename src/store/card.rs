//! The model card: what a model is, what it was trained on, and how well it
//! did against the baselines. Published as JSON next to every artifact, and
//! embedded in the artifact itself.

use crate::core::forecast::gate::GateVerdict;
use crate::core::forecast::metrics::{Coverage, Metrics};
use crate::core::forecast::regression::RegressionEvaluation;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Everything a reviewer needs to trust (or not) a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    /// Registry name (one line of models, e.g. the metric).
    pub name: String,
    /// Unique id of this version (creation time and checksum).
    pub id: String,
    /// "forecast" or "regression".
    pub kind: String,
    pub mlscaler_version: String,
    pub format_version: u16,
    /// RFC 3339 UTC.
    pub created_at: String,
    pub source: SourceCard,
    /// First and last step of the data used, and the number of steps.
    pub window_from: String,
    pub window_to: String,
    pub window_steps: usize,
    /// Series step, e.g. "1m".
    pub step: String,
    /// The metric the model predicts.
    pub target: String,
    /// Regression inputs (empty for forecasters).
    pub inputs: Vec<String>,
    pub horizon_steps: usize,
    pub lead_steps: usize,
    /// Feature names, in coefficient order.
    pub features: Vec<String>,
    /// Training settings as (name, value), for the record.
    pub settings: BTreeMap<String, String>,
    pub evaluation: EvaluationCard,
    pub gate: GateVerdict,
    /// Published although the gate failed (`--force`).
    pub forced: bool,
}

/// Where the training data came from and what ingest did to it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceCard {
    /// The location as given, without secrets.
    pub location: String,
    /// The files or blobs read, in order.
    pub parts: Vec<String>,
    pub format: String,
    pub observations: usize,
    pub missing_values: usize,
    pub filled_steps: usize,
    pub longest_gap_steps: usize,
    pub aggregation: String,
    pub gap_policy: String,
    /// Counters from raw-log ingest, as (name, count).
    pub log_counters: BTreeMap<String, u64>,
}

/// Walk-forward metrics per horizon (forecasters) or hold-out metrics
/// (regressions).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvaluationCard {
    pub from: String,
    pub to: String,
    pub origins: usize,
    pub folds: usize,
    pub per_horizon: Vec<HorizonCard>,
    pub regression: Option<RegressionEvaluation>,
}

/// Model and baseline metrics at one horizon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HorizonCard {
    pub horizon: usize,
    /// Point metrics, and the central 80% interval's coverage (`coverage80`:
    /// share of actuals between the p10 and the p90) and pinball loss.
    pub model: Metrics,
    pub baselines: Vec<NamedMetrics>,
    /// How often the model's quantiles at this horizon held, out of sample
    /// (each walk-forward fold calibrated on earlier folds only): the share
    /// of actuals at or below the p50, p80, p90, p95 and p99. `None` in cards
    /// of artifact format 1.
    #[serde(default)]
    pub coverage: Option<Coverage>,
    /// The same for the peak over horizons `1..=horizon` (the highest actual
    /// against `Forecast::peak_quantile(horizon, q)`). `None` in cards of
    /// artifact format 1.
    #[serde(default)]
    pub peak_coverage: Option<Coverage>,
}

/// A baseline's metrics, by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedMetrics {
    pub name: String,
    pub metrics: Metrics,
}

#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;
    use crate::core::forecast::gate::{GateMetric, GateVerdict};
    use crate::core::forecast::regression::RegressionModel;
    use crate::store::artifact::{ArtifactPayload, Model, FORMAT_VERSION};

    /// A small but complete payload for format tests.
    pub(crate) fn payload(name: &str, id: &str) -> ArtifactPayload {
        let card = ModelCard {
            name: name.into(),
            id: id.into(),
            kind: "regression".into(),
            mlscaler_version: env!("CARGO_PKG_VERSION").into(),
            format_version: FORMAT_VERSION,
            created_at: "2026-11-22T00:00:00Z".into(),
            source: SourceCard::default(),
            window_from: "1970-01-01T00:00:00Z".into(),
            window_to: "1970-01-02T00:00:00Z".into(),
            window_steps: 2,
            step: "1d".into(),
            target: "y".into(),
            inputs: vec!["x".into()],
            horizon_steps: 0,
            lead_steps: 0,
            features: vec![],
            settings: BTreeMap::new(),
            evaluation: EvaluationCard::default(),
            gate: GateVerdict {
                passed: true,
                metric: GateMetric::Mae,
                horizon: 0,
                model_value: 1.0,
                baseline: "training_mean".into(),
                baseline_value: 2.0,
                margin: 0.0,
                reason: "test".into(),
            },
            forced: false,
        };
        let model = Model::Regression(RegressionModel {
            target: "y".into(),
            inputs: vec!["x".into()],
            intercept: 1.5,
            coef: vec![2.0],
            residual_quantiles: vec![0.0; 11],
        });
        ArtifactPayload { card, model }
    }
}
