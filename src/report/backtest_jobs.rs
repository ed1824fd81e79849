//! What `backtest --mode jobs` found: the summary, its text, the plan CSV
//! and the plot.

use super::plot::{Chart, Line};
use super::table;
use crate::core::plan::instances::ScaleIn;
use crate::core::sim::jobs::{JobPolicy, JobSim, JobSimParams, JobSimReport};
use crate::core::time::{format_duration_secs, rfc3339};
use crate::ingest::{Format, JobTraceStats};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// What the jobs backtest did, for people (text) and pipelines (JSON).
#[derive(Debug, Serialize)]
pub struct Summary {
    /// The trace as given (no secrets).
    pub source: String,
    pub format: Format,
    /// What reading the trace found besides the jobs.
    pub trace: JobTraceStats,
    /// `--queue`, when only one queue's jobs were replayed.
    pub queue: Option<String>,
    /// Jobs replayed (after --queue).
    pub jobs: usize,
    /// Jobs per queue in the trace, before --queue.
    pub queues: BTreeMap<String, usize>,
    pub settings: Settings,
    pub report: JobSimReport,
    /// Files written.
    pub files: BTreeMap<String, String>,
    pub seconds: BTreeMap<String, f64>,
}

/// The settings of the run, as used.
#[derive(Debug, Serialize)]
pub struct Settings {
    pub create_lead_secs: i64,
    pub start_lead_secs: i64,
    pub decision_every_secs: i64,
    pub arrival_window_secs: i64,
    pub min_nodes: u32,
    pub max_nodes: u32,
    pub nodes_per_job: u32,
    pub scale_in: ScaleIn,
    pub score_from: f64,
}

pub const PLAN_HEADER: &str = "timestamp,policy,queued_nodes,running_nodes,headroom,target,ready,booting,busy,deallocated,start,create,scale_in\n";

/// One row per controller tick and policy.
pub fn plan_csv(sim: &JobSim, which: Option<JobPolicy>) -> String {
    let mut out = String::from(PLAN_HEADER);
    for rows in &sim.rows {
        for r in rows.iter().filter(|r| which.is_none_or(|p| p == r.policy)) {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{},{},{}",
                rfc3339(r.time),
                r.policy,
                r.queued_nodes,
                r.running_nodes,
                r.headroom,
                r.target.map_or(String::new(), |t| t.to_string()),
                r.ready,
                r.booting,
                r.busy,
                r.deallocated,
                r.start,
                r.create,
                r.scale_in
            );
        }
    }
    out
}

const COLORS: [&str; 3] = ["#7f7f7f", "#1f77b4", "#d62728"];

/// Node demand (queued + running nodes, as static_peak sees it: it never
/// queues, so this is the trace's own demand when it ran) and the instances
/// each policy pays for, over the scored part.
pub fn plot(sim: &JobSim, p: &JobSimParams) -> String {
    let from = sim.report.scored_from;
    let scored: Vec<Vec<&crate::core::sim::jobs::JobSimRow>> = sim
        .rows
        .iter()
        .map(|rows| rows.iter().filter(|r| r.time >= from).collect())
        .collect();
    let n = scored.iter().map(Vec::len).min().unwrap_or(0);
    let Some(first) = scored.first() else {
        return String::new();
    };
    let times: Vec<i64> = first[..n].iter().map(|r| r.time).collect();
    let demand_rows = sim
        .report
        .policies
        .iter()
        .position(|m| m.policy == JobPolicy::StaticPeak)
        .unwrap_or(0);
    let demand: Vec<f64> = scored[demand_rows][..n]
        .iter()
        .map(|r| f64::from(r.queued_nodes + r.running_nodes))
        .collect();
    let paid: Vec<(String, Vec<f64>)> = sim
        .report
        .policies
        .iter()
        .zip(&scored)
        .map(|(m, rows)| {
            (
                format!("{} instances paid", m.policy),
                rows[..n]
                    .iter()
                    .map(|r| f64::from(r.ready + r.booting))
                    .collect(),
            )
        })
        .collect();
    let mut lines = vec![Line {
        name: "node demand (queued + running)",
        color: "#222222",
        values: &demand,
        width: 1.2,
    }];
    for (i, (name, values)) in paid.iter().enumerate() {
        lines.push(Line {
            name,
            color: COLORS[i % COLORS.len()],
            values,
            width: 0.8,
        });
    }
    let title = format!(
        "jobs: scored part, instances paid per policy (create {}, start {}, every {})",
        format_duration_secs(p.create_lead_secs),
        format_duration_secs(p.start_lead_secs),
        format_duration_secs(p.decision_every_secs)
    );
    Chart {
        title: &title,
        y_label: "nodes",
        times: &times,
        lines,
        bands: vec![],
    }
    .to_svg()
}

/// The summary as text for people.
pub fn render_text(s: &Summary) -> String {
    let r = &s.report;
    let st = &s.settings;
    let mut out = format!(
        "jobs backtest of {} ({}): {} jobs{} from {} to {}, peak {} nodes at once\n",
        s.source,
        s.format,
        s.jobs,
        s.queue
            .as_deref()
            .map_or(String::new(), |q| format!(" of queue '{q}'")),
        rfc3339(r.first_submit),
        rfc3339(r.trace_end),
        r.peak_concurrent_nodes
    );
    let t = &s.trace;
    let skipped = [
        (t.unmatched_ends, "Job End(s) without a Start"),
        (t.unmatched_starts, "Job Start(s) without an End"),
        (t.duplicate_starts, "repeated Job Start(s)"),
        (t.end_before_start, "End(s) before their Start"),
        (t.unknown_lines, "unknown line(s)"),
    ];
    let skipped: Vec<String> = skipped
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
    if !skipped.is_empty() {
        let _ = writeln!(out, "skipped: {}", skipped.join(", "));
    }
    let _ = writeln!(
        out,
        "instances: create {} / start {} to ready, decisions every {}, {}..{} instances, scale-in by {}; jobs_forecast rate over the last {}",
        format_duration_secs(st.create_lead_secs),
        format_duration_secs(st.start_lead_secs),
        format_duration_secs(st.decision_every_secs),
        st.min_nodes,
        st.max_nodes,
        match st.scale_in {
            ScaleIn::Deallocate => "deallocate",
            ScaleIn::Delete => "delete",
        },
        format_duration_secs(st.arrival_window_secs)
    );
    let _ = writeln!(
        out,
        "scored {} .. {} ({} jobs); static_peak pool {} nodes; lower bound (the jobs' own node-hours) {:.1}\n",
        rfc3339(r.scored_from),
        rfc3339(r.scored_to),
        r.jobs_scored,
        r.static_peak_nodes,
        r.lower_bound_instance_hours
    );
    let mut rows = vec![vec![
        "policy".to_string(),
        "instance-h".into(),
        "vs static".into(),
        "util".into(),
        "wait mean s".into(),
        "p95 s".into(),
        "max s".into(),
        "waited >1m %".into(),
        "starts".into(),
        "creates".into(),
        "scale-ins".into(),
        "busy removed".into(),
    ]];
    for m in &r.policies {
        rows.push(vec![
            m.policy.to_string(),
            format!("{:.1}", m.instance_hours),
            m.cost_vs_static_peak
                .map_or("-".into(), |x| format!("{x:.3}")),
            format!("{:.3}", m.utilisation),
            format!("{:.1}", m.wait_mean_s),
            format!("{:.0}", m.wait_p95_s),
            format!("{:.0}", m.wait_max_s),
            format!("{:.1}", m.waited_over_1m_pct),
            m.starts.to_string(),
            m.creates.to_string(),
            m.scale_ins.to_string(),
            m.busy_removed.to_string(),
        ]);
    }
    out.push_str(&table::render(&rows));
    let bad: BTreeSet<String> = r
        .policies
        .iter()
        .filter(|m| m.busy_removed > 0 || m.invalid_actions > 0)
        .map(|m| m.policy.to_string())
        .collect();
    if !bad.is_empty() {
        let _ = writeln!(
            out,
            "\nSAFETY: the planner chose busy or non-ready instances under {}",
            bad.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    for (k, v) in &s.files {
        let _ = writeln!(out, "{k}: {v}");
    }
    out
}
