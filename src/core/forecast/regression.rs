//! The workshop's second model kind: regress one metric on others, e.g. the
//! average request completion time on the number of admin, config and end
//! users. The controller can then size for an SLA on a predicted latency.
//!
//! Fitted with linfa-linear's ordinary least squares; evaluated on a
//! chronological split (the last `test_fraction` of the rows), never shuffled.

use crate::core::forecast::metrics::{quantiles_at_levels, r_squared, Metrics, MetricsAcc, LEVELS};
use crate::core::forecast::model::interpolate_level;
use linfa::prelude::*;
use linfa_linear::LinearRegression;
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

/// A fitted linear model `target ≈ intercept + Σ coef_j · input_j`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionModel {
    pub target: String,
    pub inputs: Vec<String>,
    pub intercept: f64,
    pub coef: Vec<f64>,
    /// Quantiles (at [`LEVELS`]) of the hold-out residuals (actual − predicted).
    pub residual_quantiles: Vec<f64>,
}

/// Hold-out evaluation of a regression model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionEvaluation {
    pub train_rows: usize,
    pub test_rows: usize,
    /// R² on the hold-out rows.
    pub r2: f64,
    pub model: Metrics,
    /// Predicting the training mean: the naive baseline.
    pub mean_baseline: Metrics,
}

/// Errors of the regression model kind.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RegressionError {
    #[error("test fraction should be between 0 and 1, but is {0}")]
    TestFraction(f64),
    #[error(
        "need at least {need} rows to fit {inputs} inputs and hold out a test set, but have {have}"
    )]
    TooFewRows {
        need: usize,
        have: usize,
        inputs: usize,
    },
    #[error("no input metrics given: name at least one with --inputs")]
    NoInputs,
    #[error("the least-squares fit failed: {0}")]
    Fit(String),
    #[error("expected {expected} input values ({names}), got {got}")]
    Arity {
        expected: usize,
        got: usize,
        names: String,
    },
}

impl RegressionModel {
    /// Point prediction for one row of inputs (in `inputs` order).
    pub fn predict(&self, x: &[f64]) -> Result<f64, RegressionError> {
        if x.len() != self.coef.len() {
            return Err(RegressionError::Arity {
                expected: self.coef.len(),
                got: x.len(),
                names: self.inputs.join(", "),
            });
        }
        Ok(self.intercept + self.coef.iter().zip(x).map(|(c, v)| c * v).sum::<f64>())
    }

    /// Prediction at quantile `q` (point + residual quantile).
    pub fn predict_quantile(&self, x: &[f64], q: f64) -> Result<f64, RegressionError> {
        Ok(self.predict(x)? + interpolate_level(&LEVELS, &self.residual_quantiles, q))
    }
}

/// Fit `target` on `inputs` (columns of equal length), holding out the last
/// `test_fraction` of rows for evaluation, then refit on all rows.
pub fn train_regression(
    input_names: &[String],
    inputs: &[&[f64]],
    target_name: &str,
    target: &[f64],
    test_fraction: f64,
) -> Result<(RegressionModel, RegressionEvaluation), RegressionError> {
    if inputs.is_empty() {
        return Err(RegressionError::NoInputs);
    }
    if !(test_fraction > 0.0 && test_fraction < 1.0) {
        return Err(RegressionError::TestFraction(test_fraction));
    }
    let n = target.len();
    let k = inputs.len();
    let n_test = ((n as f64) * test_fraction).round() as usize;
    let n_train = n.saturating_sub(n_test);
    let need = 2 * (k + 1) + 2;
    if n_test < 2 || n_train < 2 * (k + 1) {
        return Err(RegressionError::TooFewRows {
            need: need.max(((need as f64) / (1.0 - test_fraction)).ceil() as usize),
            have: n,
            inputs: k,
        });
    }
    let x = Array2::from_shape_fn((n, k), |(i, j)| inputs[j][i]);
    let y = Array1::from(target.to_vec());
    let fit = |rows: std::ops::Range<usize>| {
        let ds = Dataset::new(
            x.slice(ndarray::s![rows.clone(), ..]).to_owned(),
            y.slice(ndarray::s![rows]).to_owned(),
        );
        LinearRegression::new()
            .fit(&ds)
            .map_err(|e| RegressionError::Fit(e.to_string()))
    };
    let held = fit(0..n_train)?;
    let test_x = x.slice(ndarray::s![n_train.., ..]).to_owned();
    let pred = held.predict(&test_x);
    let actual = &target[n_train..];
    let mean = target[..n_train].iter().sum::<f64>() / n_train as f64;
    let (mut m, mut b) = (MetricsAcc::default(), MetricsAcc::default());
    let residuals: Vec<f64> = actual.iter().zip(pred.iter()).map(|(a, p)| a - p).collect();
    for (a, p) in actual.iter().zip(pred.iter()) {
        m.add_point(*a, *p);
        b.add_point(*a, mean);
    }
    let eval = RegressionEvaluation {
        train_rows: n_train,
        test_rows: n - n_train,
        r2: r_squared(actual, pred.as_slice().expect("contiguous")),
        model: m.finish(),
        mean_baseline: b.finish(),
    };
    let all = fit(0..n)?;
    let model = RegressionModel {
        target: target_name.to_string(),
        inputs: input_names.to_vec(),
        intercept: all.intercept(),
        coef: all.params().to_vec(),
        residual_quantiles: quantiles_at_levels(&residuals),
    };
    Ok((model, eval))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exact_linear_relation_is_recovered() {
        let a: Vec<f64> = (0..50).map(|i| (i * 7 % 13) as f64).collect();
        let b: Vec<f64> = (0..50).map(|i| (i * 3 % 11) as f64).collect();
        let y: Vec<f64> = a
            .iter()
            .zip(&b)
            .map(|(a, b)| 2.0 + 3.0 * a - 0.5 * b)
            .collect();
        let names = vec!["a".to_string(), "b".to_string()];
        let (m, e) = train_regression(&names, &[&a, &b], "y", &y, 0.2).unwrap();
        assert!((m.intercept - 2.0).abs() < 1e-8);
        assert!((m.coef[0] - 3.0).abs() < 1e-8 && (m.coef[1] + 0.5).abs() < 1e-8);
        assert!(e.r2 > 0.999999);
        assert_eq!((e.train_rows, e.test_rows), (40, 10));
        assert!((m.predict(&[1.0, 2.0]).unwrap() - 4.0).abs() < 1e-8);
        assert!(matches!(
            m.predict(&[1.0]),
            Err(RegressionError::Arity {
                expected: 2,
                got: 1,
                ..
            })
        ));
    }

    #[test]
    fn too_few_rows_is_an_error_not_a_panic() {
        let a = [1.0, 2.0, 3.0];
        let err = train_regression(&["a".into()], &[&a], "y", &a, 0.2).unwrap_err();
        assert!(
            matches!(err, RegressionError::TooFewRows { have: 3, .. }),
            "{err}"
        );
    }
}
