//! `mlscaler backtest --mode jobs`: replay a job trace through a simulated
//! FIFO scheduler and VM scale set ([`crate::core::jobsim`]) under the live
//! instance planner and its alternatives, and report cost and waits side by side.

use super::{exit, storage, write_atomic};
use crate::cli::BacktestArgs;
use crate::core::instances::ScaleIn;
use crate::core::jobsim::{simulate, JobPolicy, JobSim, JobSimParams, JobSimReport, TraceJob};
use crate::core::time::{format_duration_secs, parse_duration_secs, rfc3339};
use crate::ingest::{read_job_trace, Format, JobTraceStats, TimeFormat};
use crate::report::plot::{Chart, Line};
use crate::report::table;
use crate::store::Redacted;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Instant;

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

/// Run `backtest --mode jobs`.
pub fn run(args: &BacktestArgs, quiet: bool) -> Result<(i32, Summary)> {
    let t0 = Instant::now();
    let mut seconds = BTreeMap::new();
    let input = &args.input;
    let Some(location) = input.data.as_deref() else {
        bail!("--mode jobs needs --data: a job trace (CSV or NDJSON with submit and duration or end, or raw application logs), a file or a Blob Storage URL");
    };
    let shown = Redacted(location).to_string();
    let format = match &input.format {
        Some(f) => f
            .parse::<Format>()
            .map_err(|e| anyhow::anyhow!("--format: {e}"))?,
        None => Format::from_name(location).with_context(|| {
            format!("{shown}: unknown file type; pass --format csv|ndjson|logs")
        })?,
    };
    let time_format: TimeFormat = input
        .time_format
        .parse()
        .map_err(|e| anyhow::anyhow!("--time-format: {e}"))?;
    let bytes = storage::read_object(location, &input.storage)?
        .with_context(|| format!("{shown}: the job trace does not exist"))?;
    let (records, trace) = read_job_trace(&shown, &bytes, format, &time_format)?;
    seconds.insert("ingest".into(), t0.elapsed().as_secs_f64());

    let j = &args.jobs;
    if j.nodes_per_job == 0 {
        bail!("--nodes-per-job must be at least 1");
    }
    let mut queues = BTreeMap::new();
    for r in &records {
        *queues
            .entry(r.queue.clone().unwrap_or_else(|| "-".into()))
            .or_insert(0) += 1;
    }
    let jobs: Vec<TraceJob> = records
        .into_iter()
        .map(|r| TraceJob {
            id: r.id,
            queue: r.queue.unwrap_or_else(|| "-".into()),
            submit: r.submit,
            duration_secs: r.duration_secs,
            nodes: r.nodes.unwrap_or(j.nodes_per_job),
        })
        .filter(|t| j.queue.as_ref().is_none_or(|q| &t.queue == q))
        .collect();
    if jobs.is_empty() {
        let names: Vec<&str> = queues.keys().map(String::as_str).collect();
        bail!(
            "{shown}: no jobs in queue '{}' (the queues are {})",
            j.queue.as_deref().unwrap_or_default(),
            names.join(", ")
        );
    }
    let dur = |flag: &str, v: &str| parse_duration_secs(v).with_context(|| format!("--{flag}"));
    let params = JobSimParams {
        min_nodes: args.min_nodes,
        max_nodes: args.max_nodes,
        create_lead_secs: dur("lead-time", &args.lead_time)?,
        start_lead_secs: dur("start-lead-time", &j.start_lead_time)?,
        decision_every_secs: dur("decision-every", &j.decision_every)?,
        scale_in: if j.scale_in_delete {
            ScaleIn::Delete
        } else {
            ScaleIn::Deallocate
        },
        arrival_window_secs: dur("arrival-window", &j.arrival_window)?,
        score_from_fraction: args.score_from,
        policies: policies(&args.policy)?,
    };
    let plan_policy = plan_policy(&args.plan_policy, &params.policies)?;

    let t1 = Instant::now();
    if !quiet {
        eprintln!(
            "replaying {} jobs through {} polic{}",
            jobs.len(),
            params.policies.len(),
            if params.policies.len() == 1 {
                "y"
            } else {
                "ies"
            }
        );
    }
    let sim = simulate(&jobs, &params).with_context(|| format!("{shown}: backtest --mode jobs"))?;
    seconds.insert("replay".into(), t1.elapsed().as_secs_f64());

    let mut files = BTreeMap::new();
    if let Some(p) = &args.plan_out {
        write_atomic(p, plan_csv(&sim, plan_policy).as_bytes())?;
        files.insert("plan".into(), p.display().to_string());
    }
    if let Some(p) = &args.plot {
        write_atomic(p, plot(&sim, &params).as_bytes())?;
        files.insert("plot".into(), p.display().to_string());
    }
    let unsafe_runs = sim
        .report
        .policies
        .iter()
        .any(|m| m.busy_removed > 0 || m.invalid_actions > 0);
    let mut summary = Summary {
        source: shown,
        format,
        trace,
        queue: j.queue.clone(),
        jobs: jobs.len(),
        queues,
        settings: Settings {
            create_lead_secs: params.create_lead_secs,
            start_lead_secs: params.start_lead_secs,
            decision_every_secs: params.decision_every_secs,
            arrival_window_secs: params.arrival_window_secs,
            min_nodes: params.min_nodes,
            max_nodes: params.max_nodes,
            nodes_per_job: j.nodes_per_job,
            scale_in: params.scale_in,
            score_from: params.score_from_fraction,
        },
        report: sim.report,
        files,
        seconds,
    };
    if let Some(p) = &args.report {
        summary
            .files
            .insert("report".into(), p.display().to_string());
        write_atomic(p, &serde_json::to_vec_pretty(&summary)?)?;
    }
    summary
        .seconds
        .insert("total".into(), t0.elapsed().as_secs_f64());
    // A plan that removed a busy instance is a safety failure, whatever it saved.
    Ok((if unsafe_runs { exit::FAILED } else { exit::OK }, summary))
}

fn policies(names: &[String]) -> Result<Vec<JobPolicy>> {
    if names.iter().any(|n| n.trim() == "all") {
        return Ok(JobPolicy::ALL.to_vec());
    }
    let mut out = Vec::new();
    for n in names {
        let p: JobPolicy = n.parse().map_err(|e| anyhow::anyhow!("--policy: {e}"))?;
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

/// `--plan-policy`: a jobs policy, or "all". Its default (`predictive`, a
/// nodes-mode policy) means every policy here.
fn plan_policy(name: &str, ran: &[JobPolicy]) -> Result<Option<JobPolicy>> {
    let name = name.trim();
    if name == "all" || name == "predictive" {
        return Ok(None);
    }
    let p: JobPolicy = name
        .parse()
        .map_err(|e| anyhow::anyhow!("--plan-policy: {e}"))?;
    if !ran.contains(&p) {
        bail!("--plan-policy {name}: that policy was not run (see --policy)");
    }
    Ok(Some(p))
}

const PLAN_HEADER: &str = "timestamp,policy,queued_nodes,running_nodes,headroom,target,ready,booting,busy,deallocated,start,create,scale_in\n";

/// One row per controller tick and policy.
fn plan_csv(sim: &JobSim, which: Option<JobPolicy>) -> String {
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
fn plot(sim: &JobSim, p: &JobSimParams) -> String {
    let from = sim.report.scored_from;
    let scored: Vec<Vec<&crate::core::jobsim::JobSimRow>> = sim
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_names_are_checked_and_all_means_every_policy() {
        assert_eq!(policies(&["all".into()]).unwrap(), JobPolicy::ALL.to_vec());
        assert_eq!(
            policies(&["jobs".into(), " static_peak".into(), "jobs".into()]).unwrap(),
            vec![JobPolicy::Jobs, JobPolicy::StaticPeak]
        );
        let e = policies(&["predictive".into()]).unwrap_err().to_string();
        assert!(e.contains("unknown jobs policy 'predictive'"), "{e}");
        assert_eq!(plan_policy("predictive", &[JobPolicy::Jobs]).unwrap(), None);
        assert_eq!(
            plan_policy("jobs", &[JobPolicy::Jobs]).unwrap(),
            Some(JobPolicy::Jobs)
        );
        assert!(plan_policy("jobs_forecast", &[JobPolicy::Jobs]).is_err());
    }
}
