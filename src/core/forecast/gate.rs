//! The quality gate: a model is published only if it beats the best naive
//! baseline at the lead-time horizon by a margin.

use crate::core::forecast::metrics::Metrics;
use crate::core::forecast::model::Evaluation;
use crate::core::forecast::regression::RegressionEvaluation;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The metric the gate compares (lower is better for all of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GateMetric {
    Mae,
    Rmse,
    Smape,
    Pinball,
}

impl GateMetric {
    fn of(self, m: &Metrics) -> f64 {
        match self {
            GateMetric::Mae => m.mae,
            GateMetric::Rmse => m.rmse,
            GateMetric::Smape => m.smape,
            GateMetric::Pinball => m.pinball,
        }
    }
}

impl FromStr for GateMetric {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mae" => Ok(GateMetric::Mae),
            "rmse" => Ok(GateMetric::Rmse),
            "smape" => Ok(GateMetric::Smape),
            "pinball" => Ok(GateMetric::Pinball),
            _ => Err(format!(
                "unknown gate metric '{s}': expected mae, rmse, smape or pinball"
            )),
        }
    }
}

impl fmt::Display for GateMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GateMetric::Mae => "mae",
            GateMetric::Rmse => "rmse",
            GateMetric::Smape => "smape",
            GateMetric::Pinball => "pinball",
        })
    }
}

/// The gate's verdict, with the numbers behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateVerdict {
    pub passed: bool,
    pub metric: GateMetric,
    /// Horizon judged, in steps.
    pub horizon: usize,
    pub model_value: f64,
    /// The best baseline at that horizon and its value.
    pub baseline: String,
    pub baseline_value: f64,
    /// Required relative improvement (0.02 = 2% better than the baseline).
    pub margin: f64,
    /// One sentence for the user.
    pub reason: String,
}

/// Judge a forecaster's walk-forward evaluation at its lead time.
pub fn judge_forecast(eval: &Evaluation, metric: GateMetric, margin: f64) -> GateVerdict {
    let h = eval.lead;
    let model_value = metric.of(&eval.model[h - 1]);
    let best = eval
        .baselines
        .iter()
        .map(|b| (b.name.clone(), metric.of(&b.per_horizon[h - 1])))
        .filter(|(_, v)| v.is_finite())
        .min_by(|a, b| a.1.total_cmp(&b.1));
    match best {
        None => GateVerdict {
            passed: false,
            metric,
            horizon: h,
            model_value,
            baseline: "none".into(),
            baseline_value: f64::NAN,
            margin,
            reason: format!("no baseline could be scored for {metric} at horizon {h}, so the model cannot be shown to beat one"),
        },
        Some((name, base)) => verdict(metric, h, model_value, name, base, margin),
    }
}

/// Judge a regression model against predicting the training mean.
pub fn judge_regression(
    eval: &RegressionEvaluation,
    metric: GateMetric,
    margin: f64,
) -> GateVerdict {
    let model_value = metric.of(&eval.model);
    let base = metric.of(&eval.mean_baseline);
    verdict(metric, 0, model_value, "training_mean".into(), base, margin)
}

fn verdict(
    metric: GateMetric,
    h: usize,
    model_value: f64,
    baseline: String,
    base: f64,
    margin: f64,
) -> GateVerdict {
    let limit = base * (1.0 - margin);
    let passed = model_value.is_finite() && model_value <= limit;
    let at = if h > 0 {
        format!(" at horizon {h}")
    } else {
        String::new()
    };
    let reason = if passed {
        format!(
            "{metric} {model_value:.4}{at} beats the best baseline ({baseline}: {base:.4}) by {:.1}% (required: {:.1}%)",
            100.0 * (1.0 - model_value / base),
            100.0 * margin
        )
    } else {
        format!(
            "{metric} {model_value:.4}{at} does not beat the best baseline ({baseline}: {base:.4}) by the required {:.1}% (needs <= {limit:.4})",
            100.0 * margin
        )
    };
    GateVerdict {
        passed,
        metric,
        horizon: h,
        model_value,
        baseline,
        baseline_value: base,
        margin,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::forecast::model::BaselineEvaluation;

    fn m(mae: f64) -> Metrics {
        Metrics {
            n: 10,
            mae,
            rmse: mae,
            smape: 1.0,
            coverage80: 0.8,
            pinball: mae / 2.0,
        }
    }

    fn eval(model: f64, bases: &[(&str, f64)]) -> Evaluation {
        Evaluation {
            from: 0,
            to: 0,
            origins: 10,
            folds: 1,
            lead: 2,
            model: vec![m(1.0), m(model)],
            baselines: bases
                .iter()
                .map(|(n, v)| BaselineEvaluation {
                    name: n.to_string(),
                    per_horizon: vec![m(0.1), m(*v)],
                })
                .collect(),
            coverage: vec![],
            peak_coverage: vec![],
        }
    }

    #[test]
    fn the_gate_compares_against_the_best_baseline_at_the_lead_horizon() {
        let v = judge_forecast(
            &eval(9.0, &[("last_value", 10.0), ("same_time_yesterday", 20.0)]),
            GateMetric::Mae,
            0.05,
        );
        assert!(v.passed, "{}", v.reason);
        assert_eq!(v.baseline, "last_value");
        let v = judge_forecast(&eval(9.6, &[("last_value", 10.0)]), GateMetric::Mae, 0.05);
        assert!(!v.passed);
        assert!(v.reason.contains("does not beat"), "{}", v.reason);
    }

    #[test]
    fn without_any_baseline_the_gate_fails_closed() {
        assert!(!judge_forecast(&eval(1.0, &[]), GateMetric::Mae, 0.0).passed);
    }
}
