//! What `backtest` (nodes mode) found, for people and pipelines: the
//! summary, its text, the plan CSV (the contract other tools read) and the
//! plots.

use super::plot::{Chart, Line};
use super::table;
use crate::core::plan::PolicyKind;
use crate::core::sim::backtest::{Backtest, BacktestReport, PolicyPlan, Targets};
use crate::core::time::{format_duration_secs, rfc3339};
use serde::Serialize;
use std::collections::BTreeMap;

/// What `backtest` did, for people (text) and pipelines (JSON).
#[derive(Debug, Serialize)]
pub struct BacktestSummary {
    /// The data as given (no secrets).
    pub source: String,
    pub metric: String,
    /// How the capacity per node was chosen.
    pub capacity_source: String,
    pub report: BacktestReport,
    /// Whether the predictive policy met the targets (when both it and the
    /// threshold baseline and the oracle ran).
    pub targets: Option<Targets>,
    /// Files written.
    pub files: BTreeMap<String, String>,
    pub seconds: BTreeMap<String, f64>,
}

/// Every plan, one after the other, under one header.
pub fn plans_csv(plans: &[PolicyPlan]) -> String {
    let mut out = String::new();
    for (i, p) in plans.iter().enumerate() {
        let csv = p.to_csv();
        out.push_str(if i == 0 {
            &csv
        } else {
            csv.split_once('\n').map_or("", |(_, body)| body)
        });
    }
    out
}

const COLORS: [&str; 5] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#7f7f7f"];

/// Demand, the predictive policy's planned demand and the ready capacity of
/// every policy (nodes x capacity per node), over the scored part of the
/// trace or, with `zoom`, over its busiest day.
pub fn plot(bt: &Backtest, metric: &str, per_node: f64, zoom: bool) -> String {
    let Some(first) = bt.plans.first() else {
        return String::new();
    };
    let n = first.rows.len();
    let scored_from = first
        .rows
        .iter()
        .position(|r| r.timestamp >= bt.report.scored_from)
        .unwrap_or(0);
    let (lo, hi) = if zoom {
        busiest_day(first, scored_from, bt.report.step.secs())
    } else {
        (scored_from, n)
    };
    let times: Vec<i64> = first.rows[lo..hi].iter().map(|r| r.timestamp).collect();
    let demand: Vec<f64> = first.rows[lo..hi].iter().map(|r| r.demand).collect();
    let forecast: Option<Vec<f64>> = bt.plan(PolicyKind::Predictive).map(|p| {
        p.rows[lo..hi]
            .iter()
            .map(|r| r.forecast.unwrap_or(f64::NAN))
            .collect()
    });
    let capacity: Vec<(String, Vec<f64>)> = bt
        .plans
        .iter()
        .map(|p| {
            (
                format!("{} capacity", p.policy),
                p.rows[lo..hi]
                    .iter()
                    .map(|r| f64::from(r.ready_nodes.get()) * per_node)
                    .collect(),
            )
        })
        .collect();
    let mut lines = vec![Line {
        name: "demand",
        color: "#222222",
        values: &demand,
        width: 1.2,
    }];
    if let Some(f) = &forecast {
        lines.push(Line {
            name: "planned demand (predictive)",
            color: "#ff7f0e",
            values: f,
            width: 0.8,
        });
    }
    for (i, (name, values)) in capacity.iter().enumerate() {
        lines.push(Line {
            name,
            color: COLORS[i % COLORS.len()],
            values,
            width: 0.8,
        });
    }
    let title = if zoom {
        format!(
            "{metric}: busiest day of the scored part, ready capacity per policy (lead {})",
            format_duration_secs(bt.report.lead_secs)
        )
    } else {
        format!(
            "{metric}: scored part, ready capacity per policy (lead {})",
            format_duration_secs(bt.report.lead_secs)
        )
    };
    Chart {
        title: &title,
        y_label: metric,
        times: &times,
        lines,
        bands: vec![],
    }
    .to_svg()
}

/// The one-day window of plan rows (from `from` on) with the highest demand sum.
pub fn busiest_day(plan: &PolicyPlan, from: usize, step_secs: i64) -> (usize, usize) {
    let rows = &plan.rows[from..];
    let width = ((86_400 / step_secs.max(1)) as usize).clamp(1, rows.len().max(1));
    if rows.len() <= width {
        return (from, plan.rows.len());
    }
    let mut sum: f64 = rows[..width].iter().map(|r| r.demand).sum();
    let (mut best, mut best_at) = (sum, 0);
    for i in width..rows.len() {
        sum += rows[i].demand - rows[i - width].demand;
        if sum > best {
            best = sum;
            best_at = i + 1 - width;
        }
    }
    (from + best_at, from + best_at + width)
}

/// The summary as text for people.
pub fn render_text(s: &BacktestSummary) -> String {
    let r = &s.report;
    let mut out = format!(
        "backtest of '{}' from {}: {} rows, {} steps of {} ({} filled), lead time {} ({} step{})\n",
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
    out.push_str(&format!(
        "pool: {:.3} per node ({}), {}..{} nodes; scored {} .. {} ({} steps); {} retrains\n\n",
        r.capacity_per_node,
        s.capacity_source,
        r.min_nodes,
        r.max_nodes,
        rfc3339(r.scored_from),
        rfc3339(r.scored_to),
        r.scored_steps,
        r.retrains.len()
    ));
    let mut rows = vec![vec![
        "policy".to_string(),
        "node-hours".into(),
        "vs oracle".into(),
        "under-prov %".into(),
        "unserved %".into(),
        "actions".into(),
        "mean util".into(),
    ]];
    for m in &r.policies {
        rows.push(vec![
            m.policy.to_string(),
            format!("{:.1}", m.node_hours),
            m.node_hours_vs_oracle
                .map_or("-".into(), |x| format!("{x:.3}")),
            format!("{:.3}", m.under_provisioned_pct),
            format!("{:.4}", m.unserved_pct),
            m.actions.to_string(),
            format!("{:.3}", m.mean_utilisation),
        ]);
    }
    out.push_str(&table::render(&rows));
    if let Some(t) = &s.targets {
        let mark = |b: bool| if b { "yes" } else { "NO" };
        out.push_str(&format!(
            "\npredictive targets: under-provisioned <= 0.5%: {}; no worse than reactive_threshold: {}; <= 1.25x oracle node-hours: {} => {}\n",
            mark(t.under_provisioned_ok),
            mark(t.no_worse_than_threshold),
            mark(t.node_hours_ok),
            if t.met { "MET" } else { "NOT MET" }
        ));
        if !t.met {
            out.push_str("(these are the settings given, not ones fitted to this load: `mlscaler tune` chooses the policy and its settings on this history, and keeps the reactive rule when nothing predictive beats it)\n");
        }
    }
    let unused = r
        .retrains
        .iter()
        .filter(|x| {
            !matches!(
                x.outcome,
                crate::core::sim::backtest::RetrainOutcome::Trained { .. }
            )
        })
        .count();
    if unused > 0 {
        out.push_str(&format!("{unused} of {} retrains produced no model (the previous one, or the reactive fallback, stayed in use)\n", r.retrains.len()));
    }
    for (k, v) in &s.files {
        out.push_str(&format!("{k}: {v}\n"));
    }
    out
}
