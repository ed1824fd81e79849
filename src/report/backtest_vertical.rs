//! What `backtest --mode vertical` found: the summary, its text, the plan
//! CSV and the plot.

use super::plot::{Chart, Line};
use super::table;
use crate::core::sim::backtest::Trace;
use crate::core::sim::vertical::{VertSim, VerticalMetrics, VerticalPolicy};
use crate::core::time::{format_duration_secs, rfc3339, Step};
use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// What the vertical backtest did, for people (text) and pipelines (JSON).
#[derive(Debug, Serialize)]
pub struct Summary {
    /// The data as given (no secrets).
    pub source: String,
    pub metric: String,
    /// How the GiB per unit of the metric was chosen.
    pub memory_per_unit_source: String,
    /// Settings that make the result suspect (e.g. a ladder whose steps make the size flap).
    pub warnings: Vec<String>,
    pub report: VerticalReport,
    /// Files written.
    pub files: BTreeMap<String, String>,
    pub seconds: BTreeMap<String, f64>,
}

/// The run and the per-policy results.
#[derive(Debug, Serialize)]
pub struct VerticalReport {
    /// Input rows, and steps of the regular series (rows plus filled gaps).
    pub rows: usize,
    pub steps: usize,
    pub filled_steps: usize,
    pub step: Step,
    /// The time a resize takes to roll out, as given and in whole steps.
    pub lead_secs: i64,
    pub lead_steps: usize,
    pub ladder: Vec<LadderSize>,
    pub memory_high: f64,
    pub memory_low: f64,
    pub memory_window_steps: usize,
    /// GiB of memory per unit of the metric.
    pub memory_per_unit: f64,
    /// The 99.9th percentile and the highest memory demand, in GiB.
    pub demand_p999_gib: f64,
    pub demand_max_gib: f64,
    /// The scored steps: from, to (step starts, inclusive) and how many.
    pub scored_from: i64,
    pub scored_to: i64,
    pub scored_steps: usize,
    /// The forecaster behind vertical_forecast (when it ran).
    pub forecast: Option<ForecastInfo>,
    pub policies: Vec<VerticalMetrics>,
}

/// One size of the ladder.
#[derive(Debug, Serialize)]
pub struct LadderSize {
    pub size: String,
    pub memory_gib: f64,
}

/// The forecaster of vertical_forecast: walk-forward, or a published model.
#[derive(Debug, Serialize)]
pub struct ForecastInfo {
    /// The published model replayed (`--model`), as `name` or `name@version`;
    /// `None`: retrained walk-forward.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub warmup_secs: i64,
    pub retrain_every_secs: i64,
    pub retrains: usize,
    /// Retrains that produced a model (the others kept the previous one).
    pub trained: usize,
    /// % of the scored steps with a forecast (the others decide on observed memory alone).
    pub scored_with_forecast_pct: f64,
}

/// The per-step plan of one policy (or all) as CSV: one row per input row,
/// in input order.
pub fn plan_csv(sim: &VertSim, trace: &Trace, ladder: &[String], which: &str) -> Result<String> {
    let runs: Vec<_> = match which.trim() {
        "all" => sim.runs.iter().collect(),
        // The default of --plan-policy names the node mode's forecast policy:
        // here, the forecast policy if it ran, else the first one.
        "predictive" => vec![sim
            .run(VerticalPolicy::VerticalForecast)
            .or(sim.runs.first())
            .context("no policy ran")?],
        name => {
            let p: VerticalPolicy = name
                .parse()
                .map_err(|e| anyhow::anyhow!("--plan-policy: {e}"))?;
            vec![sim.run(p).with_context(|| {
                format!("--plan-policy {name}: that policy was not run (see --policy)")
            })?]
        }
    };
    let mut out = String::with_capacity(80 * trace.rows().len() * runs.len() + 80);
    out.push_str("timestamp,demand_gib,forecast_gib,size,memory_gib,utilisation,resized,policy\n");
    for r in runs {
        for row in trace.rows() {
            let s = &r.steps[row.bucket];
            let _ = write!(out, "{},{:.4},", rfc3339(row.time), s.demand);
            if let Some(f) = s.forecast {
                let _ = write!(out, "{f:.4}");
            }
            let _ = writeln!(
                out,
                ",{},{},{:.4},{},{}",
                ladder[s.size], s.memory, s.utilisation, s.resized, r.policy
            );
        }
    }
    Ok(out)
}

const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#7f7f7f"];

/// Memory demand, the forecast of vertical_forecast and the memory in effect
/// of every policy over the scored part.
pub fn plot(sim: &VertSim, trace: &Trace, metric: &str, lead_secs: i64) -> String {
    let Some(first) = sim.runs.first() else {
        return String::new();
    };
    let from = sim.score_from;
    let times: Vec<i64> = (from..first.steps.len())
        .map(|i| trace.start() + i as i64 * trace.step().secs())
        .collect();
    let demand: Vec<f64> = first.steps[from..].iter().map(|s| s.demand).collect();
    let forecast: Option<Vec<f64>> = sim.run(VerticalPolicy::VerticalForecast).map(|r| {
        r.steps[from..]
            .iter()
            .map(|s| s.forecast.unwrap_or(f64::NAN))
            .collect()
    });
    let memory: Vec<(String, Vec<f64>)> = sim
        .runs
        .iter()
        .map(|r| {
            (
                format!("{} memory", r.policy),
                r.steps[from..].iter().map(|s| s.memory).collect(),
            )
        })
        .collect();
    let mut lines = vec![Line {
        name: "memory demand",
        color: "#222222",
        values: &demand,
        width: 1.2,
    }];
    if let Some(f) = &forecast {
        lines.push(Line {
            name: "forecast peak (vertical_forecast)",
            color: "#ff7f0e",
            values: f,
            width: 0.8,
        });
    }
    for (i, (name, values)) in memory.iter().enumerate() {
        lines.push(Line {
            name,
            color: COLORS[i % COLORS.len()],
            values,
            width: 0.8,
        });
    }
    let title = format!(
        "{metric} as memory demand per instance (GiB): scored part, memory in effect per policy (resize {})",
        format_duration_secs(lead_secs)
    );
    Chart {
        title: &title,
        y_label: "GiB",
        times: &times,
        lines,
        bands: vec![],
    }
    .to_svg()
}

/// The summary as text for people.
pub fn render_text(s: &Summary) -> String {
    let r = &s.report;
    let mut out = format!(
        "vertical backtest of '{}' from {}: {} rows, {} steps of {} ({} filled), a resize rolls out in {} ({} step{})\n",
        s.metric,
        s.source,
        r.rows,
        r.steps,
        r.step,
        r.filled_steps,
        format_duration_secs(r.lead_secs),
        r.lead_steps,
        if r.lead_steps == 1 { "" } else { "s" }
    );
    let ladder: Vec<String> = r
        .ladder
        .iter()
        .map(|l| format!("{} ({} GiB)", l.size, l.memory_gib))
        .collect();
    let _ = writeln!(out, "ladder: {}", ladder.join(" < "));
    let _ = writeln!(
        out,
        "memory demand: {:.6} GiB per unit ({}); p99.9 {:.1} GiB, max {:.1} GiB",
        r.memory_per_unit, s.memory_per_unit_source, r.demand_p999_gib, r.demand_max_gib
    );
    let _ = writeln!(
        out,
        "up at >= {}, down after {} steps <= {}; scored {} .. {} ({} steps)",
        r.memory_high,
        r.memory_window_steps,
        r.memory_low,
        rfc3339(r.scored_from),
        rfc3339(r.scored_to),
        r.scored_steps
    );
    match &r.forecast {
        Some(f) if f.model.is_some() => {
            let _ = writeln!(
                out,
                "vertical_forecast: the published model {}; {:.1}% of the scored steps had a forecast",
                f.model.as_deref().unwrap_or_default(),
                f.scored_with_forecast_pct
            );
        }
        Some(f) => {
            let _ = writeln!(
                out,
                "vertical_forecast: {} of {} retrains produced a model; {:.1}% of the scored steps had a forecast",
                f.trained, f.retrains, f.scored_with_forecast_pct
            );
        }
        None => {}
    }
    for w in &s.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    out.push('\n');
    let mut rows = vec![vec![
        "policy".to_string(),
        "GiB-hours".into(),
        "vs oracle".into(),
        "over 100% %".into(),
        "over high %".into(),
        "resizes".into(),
        "mean util".into(),
        "time per size %".into(),
    ]];
    for m in &r.policies {
        rows.push(vec![
            m.policy.to_string(),
            format!("{:.0}", m.gib_hours),
            m.gib_hours_vs_oracle
                .map_or("-".into(), |x| format!("{x:.3}")),
            format!("{:.3}", m.over_memory_pct),
            format!("{:.3}", m.over_high_pct),
            m.resizes.to_string(),
            format!("{:.3}", m.mean_utilisation),
            m.sizes
                .iter()
                .map(|z| format!("{:.1}", z.pct))
                .collect::<Vec<_>>()
                .join("/"),
        ]);
    }
    out.push_str(&table::render(&rows));
    if !out.ends_with('\n') {
        out.push('\n');
    }
    for (k, v) in &s.files {
        let _ = writeln!(out, "{k}: {v}");
    }
    out
}
