//! What the controller (`mlscaler scale`) hands the planner, computed from a
//! published model and the recent load alone: the forecast from the newest
//! step, the drift signal (recent error against the model's evaluated error)
//! and the calibration of planned peaks against the peaks that followed.
//!
//! The backtest computes the same three things incrementally while it
//! replays a trace; here they are recomputed from the recent window at each
//! run, so a scheduled controller needs no state for them. Pure: no I/O, no
//! clock (the caller passes `now` to the planner).

use crate::core::forecast::features::FeatureBuilder;
use crate::core::forecast::model::{Forecast, ForecastModel, ModelError};
use crate::core::forecast::series::LoadSeries;
use crate::core::plan::{Calibration, CheckedPolicy};
use serde::Serialize;

/// Inputs of the planner derived from the model and the recent load.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prepared {
    /// The forecast made at the newest step of the series.
    pub forecast: Forecast,
    /// How much worse the model did at the lead time over the drift window
    /// than in its walk-forward evaluation (1 = as good as evaluated; see
    /// [`prepare`]); `None` when no forecast in the window can be checked yet.
    pub error_ratio: Option<f64>,
    /// Lead-time forecasts checked against what happened, for the drift signal.
    pub drift_samples: usize,
    /// Planned peaks against the peaks that followed; `None` when calibration
    /// is off or there were too few pairs.
    #[serde(skip)]
    pub calibration: Option<Calibration>,
    /// Pairs the calibration was fitted on (0 when none).
    pub calibration_samples: usize,
}

/// Forecast from the end of `series`, and the drift and calibration signals
/// over its recent part, for `policy` (whose pool sets the lead time).
///
/// `drift_window_secs` is how far back lead-time forecasts are checked
/// (0: no drift signal). The calibration window comes from the policy.
///
/// The drift signal is level-free when `eval_last_value_mae` (the
/// last-value baseline's MAE at the lead time in the model's evaluation) is
/// given: the model's recent MAE relative to the last-value baseline's recent
/// MAE, over the same ratio in evaluation. Absolute errors grow with the
/// load, so a model evaluated on a quiet period would otherwise look drifted
/// at every busy hour. Without it, the recent MAE over the evaluated MAE.
pub fn prepare(
    model: &ForecastModel,
    series: &LoadSeries,
    policy: &CheckedPolicy,
    drift_window_secs: i64,
    eval_last_value_mae: Option<f64>,
) -> Result<Prepared, ModelError> {
    // Checks the step, the metric and the length once, with clear errors.
    let forecast = model.forecast(series)?;
    let y = series
        .column(&model.metric)
        .map_err(|_| ModelError::MetricMismatch {
            model: model.metric.clone(),
            available: series.names().join(", "),
        })?;
    let step = series.step();
    let n = y.len();
    let lead = policy.pool().lead_steps(step).min(model.horizon()).max(1);
    let calib = policy.calibration().copied();
    let drift_steps = step.steps_ceil(drift_window_secs.max(0));
    let calib_steps = calib.map_or(0, |c| step.steps_ceil(c.window_secs));
    // Origins whose outcome (up to j + lead) is known: j + lead <= n - 1.
    let warm = model.spec.warmup();
    let last_known = n.saturating_sub(1 + lead);
    let first = warm.max(n.saturating_sub(drift_steps.max(calib_steps) + lead));
    let mut error_sum = 0.0;
    let mut naive_sum = 0.0;
    let mut drift_samples = 0;
    let mut pairs = Vec::new();
    if first <= last_known && n > warm {
        let ty: Vec<f64> = y.iter().map(|v| model.transform.forward(*v)).collect();
        let b = FeatureBuilder::new(
            &model.spec,
            &ty,
            series.start(),
            model.scale,
            Some(&model.calendar),
        );
        let drift_from = n.saturating_sub(drift_steps + lead);
        let calib_from = n.saturating_sub(calib_steps + lead);
        for j in first..=last_known {
            let f = model.forecast_at(&b, j, series.time_at(j));
            if drift_steps > 0 && j >= drift_from {
                let p = f.points[lead - 1];
                if p.is_finite() {
                    error_sum += (y[j + lead] - p).abs();
                    naive_sum += (y[j + lead] - y[j]).abs();
                    drift_samples += 1;
                }
            }
            if calib.is_some() && j >= calib_from {
                if let Some(planned) = policy.planned_peak(&f) {
                    let actual = y[j..=j + lead].iter().copied().fold(0.0, f64::max);
                    pairs.push((planned, actual));
                }
            }
        }
    }
    let eval_mae = model
        .eval_mae
        .get(lead - 1)
        .copied()
        .filter(|m| *m > 0.0 && m.is_finite());
    let positive = |v: f64| (v > 0.0 && v.is_finite()).then_some(v);
    let error_ratio = match (eval_mae, drift_samples) {
        (Some(m), k) if k > 0 => {
            match (eval_last_value_mae.and_then(positive), positive(naive_sum)) {
                (Some(lv), Some(naive)) => Some((error_sum / naive) / (m / lv)),
                _ => Some(error_sum / k as f64 / m),
            }
        }
        _ => None,
    };
    let calibration_samples = pairs.len();
    let calibration = calib
        .and_then(|c| Calibration::fit(pairs, policy.pool().capacity(), c.quantile, c.min_samples));
    Ok(Prepared {
        forecast,
        error_ratio,
        drift_samples,
        calibration_samples: if calibration.is_some() {
            calibration_samples
        } else {
            0
        },
        calibration,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::forecast::model::{train_forecaster, ForecastParams};
    use crate::core::plan::{PoolParams, PredictiveParams};
    use crate::core::time::Step;

    /// A daily sine with a small trend, 1-minute steps, 20 days.
    fn series(days: usize, scale_last_hour: f64) -> LoadSeries {
        let n = days * 1440;
        let y: Vec<f64> = (0..n)
            .map(|i| {
                let day = (i % 1440) as f64 / 1440.0;
                let v = 1000.0
                    + 600.0 * (2.0 * std::f64::consts::PI * day).sin()
                    + (i % 7) as f64 * 5.0;
                if i >= n - 60 {
                    v * scale_last_hour
                } else {
                    v
                }
            })
            .collect();
        LoadSeries::new(
            0,
            Step::from_secs(60).unwrap(),
            vec!["load".into()],
            vec![y],
        )
        .unwrap()
    }

    fn policy() -> CheckedPolicy {
        let pool = PoolParams {
            capacity_per_node: 100.0,
            min_nodes: 1,
            max_nodes: 100,
            lead_secs: 600,
        }
        .check()
        .unwrap();
        PredictiveParams::default().check(&pool).unwrap()
    }

    fn model(s: &LoadSeries) -> ForecastModel {
        let params = ForecastParams::new(10).check(s.step()).unwrap();
        train_forecaster(&params, s, "load", None, &mut |_, _| {})
            .unwrap()
            .model
    }

    #[test]
    fn a_model_on_data_like_its_training_data_shows_no_drift_and_a_calibration() {
        let s = series(20, 1.0);
        let m = model(&s);
        let p = prepare(&m, &s, &policy(), 3600, None).unwrap();
        assert_eq!(p.forecast.origin, s.time_at(s.len() - 1));
        assert_eq!(p.drift_samples, 60);
        let r = p.error_ratio.unwrap();
        assert!(r < 3.0, "error ratio {r}");
        assert!(
            p.calibration.is_some() && p.calibration_samples > 1000,
            "{}",
            p.calibration_samples
        );
    }

    #[test]
    fn a_load_that_left_the_learned_pattern_shows_up_as_a_high_error_ratio() {
        let m = model(&series(20, 1.0));
        let shifted = series(20, 3.0);
        let calm = prepare(&m, &series(20, 1.0), &policy(), 3600, None)
            .unwrap()
            .error_ratio
            .unwrap();
        let drifted = prepare(&m, &shifted, &policy(), 3600, None)
            .unwrap()
            .error_ratio
            .unwrap();
        assert!(drifted > 5.0 * calm, "calm {calm}, drifted {drifted}");
    }

    #[test]
    fn too_little_recent_data_is_an_error_naming_what_is_needed() {
        let m = model(&series(20, 1.0));
        let short = series(2, 1.0);
        let e = prepare(&m, &short, &policy(), 3600, None).unwrap_err();
        assert!(matches!(e, ModelError::NotEnoughRecentData { .. }), "{e}");
    }
}
