//! What `backtest --mode sla` found: the summary, its text and the plots.

use super::plot::{Chart, Line};
use super::table;
use crate::core::plan::CheckedSla;
use crate::core::sim::sla::{SlaMetrics, SlaRun};
use crate::core::time::{format_duration_secs, rfc3339};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The published model the band replayed.
#[derive(Debug, Serialize)]
pub struct ModelInfo {
    pub name: String,
    pub id: String,
}

/// What the SLA backtest did, for people (text) and pipelines (JSON).
#[derive(Debug, Serialize)]
pub struct Summary {
    /// The data as given (no secrets).
    pub source: String,
    pub model: ModelInfo,
    /// What the model predicts, and from what.
    pub target: String,
    pub inputs: Vec<String>,
    /// The prediction's quantile (`--quantile`).
    pub quantile: f64,
    /// The band: [target - threshold, target + threshold].
    pub band: [f64; 2],
    pub increment: u32,
    pub min_nodes: u32,
    pub max_nodes: u32,
    /// New nodes are ready this long after the request.
    pub lead_secs: i64,
    pub step: String,
    pub rows: usize,
    /// The band's first decision (`--start`) and the first scored row.
    pub start: i64,
    pub scored_from: i64,
    pub metrics: SlaMetrics,
    /// Files written.
    pub files: BTreeMap<String, String>,
    pub seconds: BTreeMap<String, f64>,
}

/// The summary as text for people.
pub fn render_text(s: &Summary) -> String {
    let m = &s.metrics;
    let mut out = format!(
        "SLA band backtest of the model '{}' ({}) on {}: {} rows of {}\n",
        s.model.name, s.model.id, s.source, s.rows, s.step
    );
    let _ = writeln!(
        out,
        "predicts {} at q{:.0} from {}; band {} .. {}, +-{} nodes per decision within {} .. {}, new nodes ready after {}",
        s.target,
        s.quantile * 100.0,
        s.inputs.join(", "),
        s.band[0],
        s.band[1],
        s.increment,
        s.min_nodes,
        s.max_nodes,
        format_duration_secs(s.lead_secs)
    );
    let _ = writeln!(
        out,
        "decisions from {}; scored from {} ({} rows)\n",
        rfc3339(s.start),
        rfc3339(s.scored_from),
        m.steps
    );
    let mut rows = vec![vec![
        "policy".to_string(),
        "node-hours".into(),
        "mean nodes".into(),
        "largest".into(),
        "at max %".into(),
        "operations".into(),
        "waited".into(),
        "predicted above %".into(),
        "predicted below %".into(),
        "recorded above %".into(),
        "prediction MAE".into(),
    ]];
    rows.push(vec![
        m.policy.clone(),
        format!("{:.1}", m.node_hours),
        format!("{:.2}", m.mean_nodes),
        m.largest_nodes.to_string(),
        format!("{:.1}", m.at_max_pct),
        format!("{} ({} out, {} in)", m.actions, m.scale_outs, m.scale_ins),
        m.waited.to_string(),
        format!("{:.1}", m.predicted_above_pct),
        format!("{:.1}", m.predicted_below_pct),
        m.recorded_above_pct
            .map_or("-".into(), |x| format!("{x:.1}")),
        m.prediction_mae.map_or("-".into(), |x| format!("{x:.3}")),
    ]);
    out.push_str(&table::render(&rows));
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(
        "The recorded value was measured on the pool that actually ran, not on the replayed one: \
         it shows how often the band was broken, not whether the replayed pool would have kept it.\n",
    );
    if m.at_max_pct >= 50.0 {
        let _ = writeln!(
            out,
            "warning: the pool sat at --max-nodes {} for {:.0}% of the scored rows: the prediction stays above the band whatever the pool does (the model's inputs do not include the node count)",
            s.max_nodes, m.at_max_pct
        );
    }
    for (k, v) in &s.files {
        let _ = writeln!(out, "{k}: {v}");
    }
    out
}

/// Two charts over the scored rows: the prediction, the recorded value and
/// the band; and the nodes requested and ready.
pub fn plot(run: &SlaRun, band: &CheckedSla, target: &str, from: usize) -> (String, String) {
    let steps = &run.steps[from.min(run.steps.len())..];
    let times: Vec<i64> = steps.iter().map(|s| s.time).collect();
    let predicted: Vec<f64> = steps.iter().map(|s| s.predicted).collect();
    let recorded: Vec<f64> = steps
        .iter()
        .map(|s| s.recorded.unwrap_or(f64::NAN))
        .collect();
    let (lo, hi) = band.band();
    let lo = vec![lo; steps.len()];
    let hi = vec![hi; steps.len()];
    let mut lines = vec![
        Line {
            name: "predicted",
            color: "#ff7f0e",
            values: &predicted,
            width: 1.2,
        },
        Line {
            name: "band high",
            color: "#d62728",
            values: &hi,
            width: 0.8,
        },
        Line {
            name: "band low",
            color: "#2ca02c",
            values: &lo,
            width: 0.8,
        },
    ];
    if steps.iter().any(|s| s.recorded.is_some()) {
        lines.insert(
            0,
            Line {
                name: "recorded",
                color: "#222222",
                values: &recorded,
                width: 1.2,
            },
        );
    }
    let title = format!("{target}: recorded, predicted and the SLA band (scored part)");
    let latency = Chart {
        title: &title,
        y_label: target,
        times: &times,
        lines,
        bands: vec![],
    }
    .to_svg();
    let requested: Vec<f64> = steps.iter().map(|s| f64::from(s.target.get())).collect();
    let ready: Vec<f64> = steps.iter().map(|s| f64::from(s.ready.get())).collect();
    let nodes = Chart {
        title: "sla_band: nodes requested and ready (scored part)",
        y_label: "nodes",
        times: &times,
        lines: vec![
            Line {
                name: "requested",
                color: "#1f77b4",
                values: &requested,
                width: 1.2,
            },
            Line {
                name: "ready",
                color: "#2ca02c",
                values: &ready,
                width: 0.8,
            },
        ],
        bands: vec![],
    }
    .to_svg();
    (latency, nodes)
}
