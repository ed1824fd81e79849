//! `mlscaler backtest`: replay a load history through every policy against a
//! simulated pool ([`crate::core::backtest`]) and report them side by side.

use super::source::{self, DataSource};
use super::{exit, ui, write_atomic};
use crate::cli::BacktestArgs;
use crate::core::backtest::{
    capacity_for_p999, run_backtest, Backtest, BacktestParams, BacktestReport, PolicyPlan, Trace,
};
use crate::core::policy::{Capacity, PolicyKind, PoolParams};
use crate::core::series::GapFill;
use crate::core::time::{format_duration_secs, parse_duration_secs, rfc3339};
use crate::ingest::Format;
use crate::report::plot::{Chart, Line};
use crate::report::table;
use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Instant;

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

/// The acceptance targets of a predictive policy: under-provisioned at most
/// 0.5% of the scored steps and no more than the reactive threshold, and at
/// most 1.25x the oracle's node-hours.
#[derive(Debug, Serialize)]
pub struct Targets {
    pub under_provisioned_ok: bool,
    pub no_worse_than_threshold: bool,
    pub node_hours_ok: bool,
    pub met: bool,
}

/// Run `backtest`.
pub fn run(args: &BacktestArgs, quiet: bool) -> Result<(i32, BacktestSummary)> {
    let t0 = Instant::now();
    let mut seconds = BTreeMap::new();
    let LoadedTrace {
        src,
        format,
        metric,
        trace,
        calendar,
    } = load_trace(args, quiet)?;
    seconds.insert("ingest".into(), t0.elapsed().as_secs_f64());
    let step = trace.step();

    let (capacity, capacity_source) = match args.capacity_per_node {
        Some(c) => (
            Capacity::new(c).context("--capacity-per-node")?,
            format!("--capacity-per-node {c}"),
        ),
        None => {
            let c = capacity_for_p999(trace.demand(), args.p999_nodes).context("--p999-nodes")?;
            (
                c,
                format!(
                    "the 99.9th percentile of demand needs {} nodes (--p999-nodes)",
                    args.p999_nodes
                ),
            )
        }
    };
    let params = params(args, capacity)?;
    let checked = params.check(step).with_context(|| {
        if format == Format::Logs {
            "backtest settings (raw logs)".to_string()
        } else {
            "backtest settings".to_string()
        }
    })?;

    let t1 = Instant::now();
    let pb = ui::progress_bar(quiet, trace.demand().len() as u64, "replaying");
    let mut progress = |done: usize, total: usize| {
        pb.set_length(total as u64);
        pb.set_position(done as u64);
    };
    let bt = run_backtest(&trace, &checked, calendar.as_ref(), &mut progress)?;
    pb.finish_and_clear();
    seconds.insert("replay".into(), t1.elapsed().as_secs_f64());

    let mut files = BTreeMap::new();
    if let Some(p) = &args.plan_out {
        let text = plan_csv(&bt, &args.plan_policy)?;
        write_atomic(p, text.as_bytes())?;
        files.insert("plan".into(), p.display().to_string());
    }
    if let Some(p) = &args.plot {
        let svg = plot(&bt, &metric, capacity.per_node(), false);
        write_atomic(p, svg.as_bytes())?;
        files.insert("plot".into(), p.display().to_string());
        let zoom = p.with_file_name(format!(
            "{}-busiest-day.svg",
            p.file_stem()
                .map_or("backtest".into(), |s| s.to_string_lossy())
        ));
        write_atomic(
            &zoom,
            plot(&bt, &metric, capacity.per_node(), true).as_bytes(),
        )?;
        files.insert("plot_busiest_day".into(), zoom.display().to_string());
    }
    let targets = targets(&bt.report);
    let summary = BacktestSummary {
        source: src.location.clone(),
        metric,
        capacity_source,
        report: bt.report,
        targets,
        files,
        seconds,
    };
    if let Some(p) = &args.report {
        let json = serde_json::to_vec_pretty(&summary)?;
        write_atomic(p, &json)?;
    }
    let mut summary = summary;
    if let Some(p) = &args.report {
        summary
            .files
            .insert("report".into(), p.display().to_string());
    }
    summary
        .seconds
        .insert("total".into(), t0.elapsed().as_secs_f64());
    Ok((exit::OK, summary))
}

/// The metric of `--data` as a trace a causal replay can run on (gaps filled
/// with the previous value), with its source, format, metric name and calendar.
pub(super) struct LoadedTrace {
    pub src: DataSource,
    pub format: Format,
    pub metric: String,
    pub trace: Trace,
    pub calendar: Option<crate::core::calendar::Calendar>,
}

/// Read `--data` for a backtest (every mode that replays one metric).
pub(super) fn load_trace(args: &BacktestArgs, quiet: bool) -> Result<LoadedTrace> {
    let input = &args.input;
    let mut opts = source::read_options(input)?;
    // A linear fill looks at the next row, which a causal replay must not.
    if opts.gaps.fill == GapFill::Linear {
        opts.gaps.fill = GapFill::Previous;
    }
    let calendar = source::read_calendar(input)?;
    let src = DataSource::resolve(input.data.as_deref(), &input.storage)?;
    if src.location == source::SAMPLE_NAME && !quiet {
        eprintln!(
            "note: no --data given: backtesting on the bundled sample ({})",
            source::SAMPLE_NAME
        );
    }
    let raw = source::load_raw(&src, &opts)?;
    let names: Vec<String> = raw.table.columns.iter().map(|c| c.name.clone()).collect();
    let metric = source::choose_metric(input.metric.as_deref(), &names, raw.format)?;
    let column = raw
        .table
        .columns
        .iter()
        .find(|c| c.name == metric)
        .with_context(|| {
            format!(
                "{}: no metric column '{metric}' (columns: {})",
                src.location,
                names.join(", ")
            )
        })?;
    let step = raw.step;
    let gaps = crate::core::series::GapPolicy {
        max_gap_steps: step.steps_ceil(opts.max_gap_secs),
        ..opts.gaps
    };
    let trace = Trace::from_rows(&raw.table.timestamps, &column.values, step, gaps)
        .with_context(|| format!("{}: column '{metric}'", src.location))?;
    Ok(LoadedTrace {
        src,
        format: raw.format,
        metric,
        trace,
        calendar,
    })
}

fn params(args: &BacktestArgs, capacity: Capacity) -> Result<BacktestParams> {
    let dur = |flag: &str, v: &str| parse_duration_secs(v).with_context(|| format!("--{flag}"));
    let mut p = BacktestParams::new(PoolParams {
        capacity_per_node: capacity.per_node(),
        min_nodes: args.min_nodes,
        max_nodes: args.max_nodes,
        lead_secs: dur("lead-time", &args.lead_time)?,
    });
    p.allow_lead_below_step = args.round_lead_up;
    p.warmup_secs = dur("warmup", &args.warmup)?;
    p.retrain_every_secs = dur("retrain-every", &args.retrain_every)?;
    p.train_window_secs = args
        .train_window
        .as_deref()
        .map(|w| dur("train-window", w))
        .transpose()?;
    p.score_from_fraction = args.score_from;
    p.policies = policies(&args.policy)?;
    if let Some(q) = args.quantile {
        p.predictive.quantile = q;
    }
    if let Some(u) = args.target_utilisation {
        p.predictive.target_utilisation = u;
    }
    if let Some(w) = &args.scale_in_window {
        p.predictive.scale_in_stabilisation_secs = dur("scale-in-window", w)?;
    }
    if args.no_calibration {
        p.predictive.calibration = None;
    }
    if let Some(v) = args.threshold_out {
        p.threshold.scale_out_at = v;
    }
    if let Some(v) = args.threshold_in {
        p.threshold.scale_in_at = v;
    }
    if let Some(v) = &args.threshold_cooldown {
        p.threshold.cooldown_secs = dur("threshold-cooldown", v)?;
    }
    if let Some(v) = &args.threshold_out_of {
        (p.threshold.scale_out_m, p.threshold.scale_out_n) =
            super::parse_m_of_n("threshold-out-of", v)?;
    }
    if let Some(v) = &args.threshold_in_of {
        (p.threshold.scale_in_m, p.threshold.scale_in_n) =
            super::parse_m_of_n("threshold-in-of", v)?;
    }
    if let Some(v) = &args.threshold_out_step {
        p.threshold.step_out = super::parse_step("threshold-out-step", v)?;
    }
    if let Some(v) = &args.threshold_in_step {
        p.threshold.step_in = super::parse_step("threshold-in-step", v)?;
    }
    if let Some(v) = args.tracking_utilisation {
        p.target_tracking.target_utilisation = v;
    }
    if let Some(v) = &args.tracking_window {
        p.target_tracking.scale_in_stabilisation_secs = dur("tracking-window", v)?;
    }
    if let Some(v) = &args.seasonal_period {
        p.seasonal_naive.period_secs = dur("seasonal-period", v)?;
    }
    if let Some(v) = args.seasonal_margin {
        p.seasonal_naive.margin = v;
    }
    Ok(p)
}

fn policies(names: &[String]) -> Result<Vec<PolicyKind>> {
    if names.iter().any(|n| n.trim() == "all") {
        return Ok(PolicyKind::ALL.to_vec());
    }
    names
        .iter()
        .map(|n| {
            n.trim()
                .parse::<PolicyKind>()
                .map_err(|e| anyhow::anyhow!("--policy: {e}"))
        })
        .collect()
}

fn plan_csv(bt: &Backtest, which: &str) -> Result<String> {
    if which == "all" {
        let mut out = String::new();
        for (i, p) in bt.plans.iter().enumerate() {
            let csv = p.to_csv();
            // One header for the whole file.
            out.push_str(if i == 0 {
                &csv
            } else {
                csv.split_once('\n').map_or("", |(_, body)| body)
            });
        }
        return Ok(out);
    }
    let kind: PolicyKind = which
        .parse()
        .map_err(|e| anyhow::anyhow!("--plan-policy: {e}"))?;
    let plan: &PolicyPlan = bt.plan(kind).with_context(|| {
        format!("--plan-policy {which}: that policy was not run (see --policy)")
    })?;
    Ok(plan.to_csv())
}

fn targets(r: &BacktestReport) -> Option<Targets> {
    let p = r.policy(PolicyKind::Predictive)?;
    let t = r.policy(PolicyKind::ReactiveThreshold)?;
    let ratio = p.node_hours_vs_oracle?;
    let under_provisioned_ok = p.under_provisioned_pct <= 0.5;
    let no_worse_than_threshold = p.under_provisioned_pct <= t.under_provisioned_pct;
    let node_hours_ok = ratio <= 1.25;
    Some(Targets {
        under_provisioned_ok,
        no_worse_than_threshold,
        node_hours_ok,
        met: under_provisioned_ok && no_worse_than_threshold && node_hours_ok,
    })
}

const COLORS: [&str; 5] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#7f7f7f"];

/// Demand, the predictive policy's planned demand and the ready capacity of
/// every policy (nodes x capacity per node), over the scored part of the
/// trace or, with `zoom`, over its busiest day.
fn plot(bt: &Backtest, metric: &str, per_node: f64, zoom: bool) -> String {
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
fn busiest_day(plan: &PolicyPlan, from: usize, step_secs: i64) -> (usize, usize) {
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
    }
    let unused = r
        .retrains
        .iter()
        .filter(|x| {
            !matches!(
                x.outcome,
                crate::core::backtest::RetrainOutcome::Trained { .. }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::backtest::PlanRow;
    use crate::core::policy::NodeCount;

    fn plan(demand: &[f64]) -> PolicyPlan {
        PolicyPlan {
            policy: PolicyKind::Oracle,
            rows: demand
                .iter()
                .enumerate()
                .map(|(i, &d)| PlanRow {
                    timestamp: i as i64 * 3600,
                    demand: d,
                    forecast: None,
                    target_nodes: NodeCount(1),
                    ready_nodes: NodeCount(1),
                    policy: PolicyKind::Oracle,
                })
                .collect(),
        }
    }

    #[test]
    fn the_busiest_day_is_the_window_with_the_most_demand() {
        // Hourly steps: 24 per day; the peak day is rows 30..54.
        let mut d = vec![1.0; 80];
        for v in &mut d[30..54] {
            *v = 10.0;
        }
        assert_eq!(busiest_day(&plan(&d), 0, 3600), (30, 54));
        // Starting inside the peak, the window starts there.
        assert_eq!(busiest_day(&plan(&d), 50, 3600), (50, 74));
        // Less than a day left: all of it.
        assert_eq!(busiest_day(&plan(&d), 60, 3600), (60, 80));
    }

    #[test]
    fn policy_names_are_checked_and_all_means_every_policy() {
        assert_eq!(policies(&["all".into()]).unwrap(), PolicyKind::ALL.to_vec());
        assert_eq!(
            policies(&["oracle".into(), " predictive".into()]).unwrap(),
            vec![PolicyKind::Oracle, PolicyKind::Predictive]
        );
        let e = policies(&["magic".into()]).unwrap_err().to_string();
        assert!(e.contains("unknown policy 'magic'"), "{e}");
    }
}
