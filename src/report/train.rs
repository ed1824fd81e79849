//! What `train` did, for people (text) and pipelines (JSON), and the
//! evaluation plots.

use super::plot::{Band, Chart, Line};
use super::table;
use crate::core::forecast::metrics::Coverage;
use crate::core::forecast::model::Trained;
use crate::core::forecast::regression;
use crate::core::time::{format_duration_secs, Step};
use crate::store::card::ModelCard;
use crate::store::registry::Published;
use anyhow::Result;
use serde::Serialize;
use std::collections::BTreeMap;

/// What `train` did, for people (text) and pipelines (JSON).
#[derive(Debug, Serialize)]
pub struct TrainSummary {
    /// "published", "forced" (published although the gate failed) or "refused".
    pub status: &'static str,
    pub card: ModelCard,
    pub published: Option<Published>,
    /// Where the card of a refused model was kept.
    pub rejected_card: Option<String>,
    pub plot: Option<String>,
    /// Wall-clock seconds of each stage.
    pub seconds: BTreeMap<String, f64>,
}

/// The walk-forward evaluation's last three days (all of it when shorter),
/// where single steps can be told apart: the actual load, the forecast made
/// a lead time earlier, its 80% interval shaded, and the absolute error.
pub fn forecast_plot(t: &Trained, name: &str, step: Step, lead: usize) -> String {
    let tr = &t.trace;
    let last = tr.times.last().copied().unwrap_or(0);
    let from = tr
        .times
        .iter()
        .position(|&x| x > last - PLOT_SPAN_SECS)
        .unwrap_or(0);
    let error: Vec<f64> = tr.actual[from..]
        .iter()
        .zip(&tr.forecast[from..])
        .map(|(a, f)| (f - a).abs())
        .collect();
    let title = format!(
        "{name}: actual vs forecast {} ahead, {} of the walk-forward evaluation",
        format_duration_secs(step.secs() * lead as i64),
        if from > 0 { "the last 3 days" } else { "all" }
    );
    Chart {
        title: &title,
        y_label: name,
        times: &tr.times[from..],
        lines: vec![
            Line {
                name: "actual",
                color: "#222222",
                values: &tr.actual[from..],
                width: 1.5,
            },
            Line {
                name: "forecast",
                color: "#ff7f0e",
                values: &tr.forecast[from..],
                width: 1.2,
            },
            Line {
                name: "|forecast - actual|",
                color: "#d62728",
                values: &error,
                width: 0.8,
            },
        ],
        bands: vec![Band {
            name: "80% interval",
            color: "#1f77b4",
            lo: &tr.lo80[from..],
            hi: &tr.hi80[from..],
        }],
    }
    .to_svg()
}

/// How much of the evaluation the forecast plot shows.
const PLOT_SPAN_SECS: i64 = 3 * 86_400;

pub fn regression_plot(
    m: &regression::RegressionModel,
    series: &crate::core::forecast::series::LoadSeries,
    inputs: &[String],
    target: &str,
    from: usize,
    name: &str,
) -> Result<String> {
    let cols: Vec<&[f64]> = inputs
        .iter()
        .map(|i| series.column(i).map_err(anyhow::Error::msg))
        .collect::<Result<_>>()?;
    let actual = series.column(target).map_err(anyhow::Error::msg)?;
    let times: Vec<i64> = (from..series.len()).map(|i| series.time_at(i)).collect();
    let mut pred = Vec::with_capacity(times.len());
    for i in from..series.len() {
        let x: Vec<f64> = cols.iter().map(|c| c[i]).collect();
        pred.push(m.predict(&x)?);
    }
    let title = format!("{name}: actual vs predicted {target} on the hold-out rows");
    Ok(Chart {
        title: &title,
        y_label: target,
        times: &times,
        lines: vec![
            Line {
                name: "actual",
                color: "#222222",
                values: &actual[from..],
                width: 1.0,
            },
            Line {
                name: "predicted",
                color: "#d62728",
                values: &pred,
                width: 1.0,
            },
        ],
        bands: vec![],
    }
    .to_svg())
}

/// The summary as text for people.
pub fn render_text(s: &TrainSummary) -> String {
    let c = &s.card;
    let mut out = String::new();
    out.push_str(&format!(
        "model {} ({}) of '{}' from {} ({} part{}, {})\n",
        c.name,
        c.kind,
        c.target,
        c.source.location,
        c.source.parts.len(),
        if c.source.parts.len() == 1 { "" } else { "s" },
        c.source.format
    ));
    out.push_str(&format!(
        "data: {} .. {}, {} steps of {}; {} observations, {} missing values, {} steps filled ({})\n",
        c.window_from, c.window_to, c.window_steps, c.step, c.source.observations, c.source.missing_values, c.source.filled_steps, c.source.gap_policy
    ));
    if !c.source.log_counters.is_empty() {
        let parts: Vec<String> = c
            .source
            .log_counters
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        out.push_str(&format!("log lines: {}\n", parts.join(" ")));
    }
    if let Some(r) = &c.evaluation.regression {
        out.push_str(&format!(
            "hold-out: last {} of {} rows; R^2 = {:.3}\n\n",
            r.test_rows,
            r.train_rows + r.test_rows,
            r.r2
        ));
        let rows = vec![
            vec![
                "predictor".into(),
                "MAE".into(),
                "RMSE".into(),
                "sMAPE%".into(),
            ],
            vec![
                "model".into(),
                f(r.model.mae),
                f(r.model.rmse),
                f2(r.model.smape),
            ],
            vec![
                "training_mean".into(),
                f(r.mean_baseline.mae),
                f(r.mean_baseline.rmse),
                f2(r.mean_baseline.smape),
            ],
        ];
        out.push_str(&table::render(&rows));
    } else {
        let e = &c.evaluation;
        out.push_str(&format!(
            "walk-forward: {} origins from {} to {}, {} refits; horizon {} steps, lead time {} steps\n\n",
            e.origins, e.from, e.to, e.folds, c.horizon_steps, c.lead_steps
        ));
        if let Some(hc) = e.per_horizon.get(c.lead_steps.saturating_sub(1)) {
            let mut rows = vec![vec![
                format!("at lead time (h={})", hc.horizon),
                "MAE".into(),
                "RMSE".into(),
                "sMAPE%".into(),
                "cover80".into(),
                "pinball".into(),
            ]];
            let mut push = |n: &str, m: &crate::core::forecast::metrics::Metrics| {
                rows.push(vec![
                    n.to_string(),
                    f(m.mae),
                    f(m.rmse),
                    f2(m.smape),
                    f2(m.coverage80),
                    f(m.pinball),
                ]);
            };
            push("model", &hc.model);
            for b in &hc.baselines {
                push(&b.name, &b.metrics);
            }
            out.push_str(&table::render(&rows));
        }
        let maes: Vec<String> = e.per_horizon.iter().map(|h| f(h.model.mae)).collect();
        out.push_str(&format!("\nmodel MAE by horizon: {}\n", maes.join(" ")));
        out.push_str(&coverage_table(c));
    }
    let g = &c.gate;
    out.push_str(&format!(
        "\nquality gate: {} - {}\n",
        if g.passed { "PASSED" } else { "FAILED" },
        g.reason
    ));
    match (s.status, &s.published, &s.rejected_card) {
        (_, Some(p), _) => {
            out.push_str(&format!("{}: {}/{} (latest: {}/{})\n", s.status, p.location, p.artifact, p.location, p.pointer));
            out.push_str(&format!("card: {}/{}\n", p.location, p.card));
            if let Some(profile) = &p.profile {
                out.push_str(&format!(
                    "profile: {}/{profile} (same version)\n",
                    p.location
                ));
            }
        }
        (_, None, Some(r)) => out.push_str(&format!(
            "not published: the previous model (and its profile, if any) stays latest; card kept at {r}; use --force to publish anyway\n"
        )),
        _ => {}
    }
    if let Some(p) = &s.plot {
        out.push_str(&format!("plot: {p}\n"));
    }
    out
}

/// Out-of-sample coverage by quantile level at the first horizon, the lead
/// time and the horizon, and of the peak over the lead window and over the
/// horizon; empty for cards without it (artifact format 1).
pub fn coverage_table(c: &ModelCard) -> String {
    let ph = &c.evaluation.per_horizon;
    let (lead, horizon) = (c.lead_steps, ph.len());
    let Some(levels) = ph
        .first()
        .and_then(|h| h.coverage.as_ref())
        .map(|c| c.levels.clone())
    else {
        return String::new();
    };
    let mut header = vec!["coverage".to_string()];
    header.extend(levels.iter().map(|l| format!("p{}", (l * 100.0).round())));
    let mut rows = vec![header];
    let mut push = |name: String, cov: Option<&Coverage>| {
        if let Some(cv) = cov {
            let mut r = vec![name];
            r.extend(cv.share.iter().map(|v| f2(*v)));
            rows.push(r);
        }
    };
    let mark = |h: usize| match (h == lead, h == horizon) {
        (true, true) => " (lead, horizon)",
        (true, false) => " (lead)",
        (false, true) => " (horizon)",
        _ => "",
    };
    let mut hs = vec![1, lead, horizon];
    hs.dedup();
    for &h in &hs {
        push(
            format!("h={h}{}", mark(h)),
            ph.get(h - 1).and_then(|x| x.coverage.as_ref()),
        );
    }
    let mut ls = vec![lead, horizon];
    ls.dedup();
    for &l in &ls {
        push(
            format!("peak over h=1..{l}{}", mark(l)),
            ph.get(l - 1).and_then(|x| x.peak_coverage.as_ref()),
        );
    }
    let n = ph
        .first()
        .and_then(|h| h.coverage.as_ref())
        .map_or(0, |c| c.n);
    format!(
        "\nquantiles out of sample ({n} forecasts after the first fold): share of actuals at or below each (ideal: its level)\n{}",
        table::render(&rows)
    )
}

fn f(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

fn f2(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else {
        format!("{v:.2}")
    }
}
