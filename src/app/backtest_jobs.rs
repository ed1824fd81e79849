//! `mlscaler backtest --mode jobs`: replay a job trace through a simulated
//! FIFO scheduler and VM scale set ([`crate::core::sim::jobs`]) under the live
//! instance planner and its alternatives, and report cost and waits side by side.

use super::{exit, storage, write_atomic};
use crate::core::sim::jobs::{simulate, JobPolicy, JobSimParams, TraceJob};
use crate::ingest::{read_job_trace, Format};
use crate::report::backtest_jobs::{plan_csv, plot, Settings, Summary};
use crate::settings::backtest::{BacktestSettings, Mode, PlanPolicy};
use crate::store::Redacted;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::time::Instant;

/// Run `backtest --mode jobs`.
pub fn run(s: &BacktestSettings, quiet: bool) -> Result<(i32, Summary)> {
    let Mode::Jobs(policies) = &s.mode else {
        bail!("backtest_jobs::run replays job policies")
    };
    // The job replay retrains its arrival forecast walk-forward and starts at
    // the first job: a published model or a start would be silently ignored.
    for (given, flag) in [
        (s.walk_forward.model.is_some(), "--model"),
        (s.walk_forward.start.is_some(), "--start"),
    ] {
        if given {
            bail!("{flag} is not taken by --mode jobs: its replay forecasts arrivals walk-forward from the first job on (it is taken by --mode nodes, vertical and sla)");
        }
    }
    let t0 = Instant::now();
    let mut seconds = BTreeMap::new();
    let loaded = load_jobs(s)?;
    seconds.insert("ingest".into(), t0.elapsed().as_secs_f64());
    let (j, profile) = (&s.jobs, &s.profile.jobs);
    let Loaded {
        shown,
        format,
        trace,
        queues,
        jobs,
    } = loaded;
    let params = JobSimParams {
        min_nodes: s.profile.pool.min_nodes,
        max_nodes: s.profile.pool.max_nodes,
        create_lead_secs: s.lead_time().secs(),
        start_lead_secs: j.start_lead_time.secs(),
        decision_every_secs: j.decision_every.secs(),
        scale_in: profile.scale_in,
        arrival_window_secs: profile.arrival_window.secs(),
        score_from_fraction: s.score_from,
        policies: policies.clone(),
    };
    let plan_policy = plan_policy(&s.plan_policy, &params.policies)?;

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
    if let Some(p) = &s.plan_out {
        write_atomic(p, plan_csv(&sim, plan_policy).as_bytes())?;
        files.insert("plan".into(), p.display().to_string());
    }
    if let Some(p) = &s.plot {
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
        queue: profile.queue.clone(),
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
    super::finish(&mut summary, s.report.as_deref(), t0)?;
    // A plan that removed a busy instance is a safety failure, whatever it saved.
    Ok((if unsafe_runs { exit::FAILED } else { exit::OK }, summary))
}

/// The job trace of `--data`, with its queues, as the replay takes it.
struct Loaded {
    /// The location, safe to print.
    shown: String,
    format: Format,
    trace: crate::ingest::JobTraceStats,
    /// Jobs per queue in the trace, before `--queue`.
    queues: BTreeMap<String, usize>,
    /// The jobs replayed (after `--queue`).
    jobs: Vec<TraceJob>,
}

fn load_jobs(s: &BacktestSettings) -> Result<Loaded> {
    let Some(location) = s.data.location.as_deref() else {
        bail!("--mode jobs needs --data: a job trace (CSV or NDJSON with submit and duration or end, or raw application logs), a file or a Blob Storage URL");
    };
    let shown = Redacted(location).to_string();
    let format = match s.data.read.format {
        Some(f) => f,
        None => Format::from_name(location).with_context(|| {
            format!("{shown}: unknown file type; pass --format csv|ndjson|logs")
        })?,
    };
    let bytes = storage::read_object(location, &s.data.storage)?
        .with_context(|| format!("{shown}: the job trace does not exist"))?;
    let (records, trace) = read_job_trace(&shown, &bytes, format, &s.data.read.time_format)?;
    let queue = &s.profile.jobs.queue;
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
            nodes: r.nodes.unwrap_or(s.jobs.nodes_per_job),
        })
        .filter(|t| queue.as_ref().is_none_or(|q| &t.queue == q))
        .collect();
    if jobs.is_empty() {
        let names: Vec<&str> = queues.keys().map(String::as_str).collect();
        bail!(
            "{shown}: no jobs in queue '{}' (the queues are {})",
            queue.as_deref().unwrap_or_default(),
            names.join(", ")
        );
    }
    Ok(Loaded {
        shown,
        format,
        trace,
        queues,
        jobs,
    })
}

/// `--plan-policy`: a jobs policy, or "all". Its default (`predictive`, a
/// nodes-mode policy) means every policy here.
fn plan_policy(which: &PlanPolicy, ran: &[JobPolicy]) -> Result<Option<JobPolicy>> {
    let name = match which {
        PlanPolicy::All => return Ok(None),
        PlanPolicy::One(n) if n == "predictive" => return Ok(None),
        PlanPolicy::One(n) => n.as_str(),
    };
    let p: JobPolicy = name
        .parse()
        .map_err(|e| anyhow::anyhow!("--plan-policy: {e}"))?;
    if !ran.contains(&p) {
        bail!("--plan-policy {name}: that policy was not run (see --policy)");
    }
    Ok(Some(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_policy_is_a_jobs_policy_that_ran_or_every_one() {
        let one = |n: &str| PlanPolicy::One(n.to_string());
        assert_eq!(
            plan_policy(&one("predictive"), &[JobPolicy::Jobs]).unwrap(),
            None
        );
        assert_eq!(
            plan_policy(&one("jobs"), &[JobPolicy::Jobs]).unwrap(),
            Some(JobPolicy::Jobs)
        );
        assert!(plan_policy(&one("jobs_forecast"), &[JobPolicy::Jobs]).is_err());
    }
}
