//! `scale --policy jobs`: scale a VM scale set instance by instance for a
//! job scheduler ([`crate::core::plan::instances`]): read the jobs and nodes
//! documents, list the instances with their power state, plan, and start,
//! create, deallocate or delete exactly the planned instances through the
//! target ([`crate::arm::VmssInstances`]).

use super::inputs::{self, Lookback};
use crate::app::source::DataSource;
use crate::app::storage;
use crate::core::group::{Done, GroupState, NodeGroup};
use crate::core::plan::instances::{
    arrival_headroom, plan_instances, queue_demand, InstanceParams, Job, SchedulerNode,
};
use crate::core::plan::outcome::{before_write, BeforeWrite, Outcome, Wanted, WriteRules};
use crate::core::time::{format_duration_secs, rfc3339};
use crate::report::scale::{ArrivalForecast, JobsRecord};
use crate::settings::scale::ScaleSettings;
use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;

/// The column of mean job durations that raw logs produce (sessions excluded).
const DURATION_COLUMN: &str = "mean_job_duration_s";

/// How far back the mean job duration is averaged.
const DURATION_WINDOW_SECS: i64 = 3600;

/// The arrival forecast of `--model` (a forecast model of job arrivals per
/// step, e.g. trained on the `job_arrivals` column of raw logs) over the lead time.
fn forecast_arrivals(
    s: &ScaleSettings,
    name: &str,
    queue: &str,
    jobs: &[Job],
    clock: DateTime<Utc>,
    quiet: bool,
) -> Result<ArrivalForecast> {
    let src = DataSource::resolve(s.data.location.as_deref(), &s.data.storage)?;
    let (card, model) = inputs::latest_forecaster(s, name)?;
    let opts = inputs::read_options_for(s, &model)?;
    // The forecast's history, and the durations of the last hour.
    let step = model.spec.step();
    let lookback = model
        .spec
        .warmup()
        .max(step.steps_ceil(DURATION_WINDOW_SECS).max(1) - 1);
    let (series, _) = inputs::recent(s, &src, &opts, Lookback::Steps(lookback), quiet, clock)?;
    let f = model
        .forecast(&series)
        .with_context(|| format!("forecasting {} with model '{name}'", model.metric))?;
    let step = series.step().secs();
    let lead_secs = match s.profile.pool.lead_time {
        Some(l) => l.secs(),
        None => card.lead_steps as i64 * step,
    };
    let lead_steps = series.step().steps_ceil(lead_secs).clamp(1, f.horizon());
    let lead_secs = lead_steps as i64 * step;
    let expected_jobs: f64 = f.points[..lead_steps].iter().map(|v| v.max(0.0)).sum();
    let (sum, n) = jobs
        .iter()
        .filter(|j| j.queue == queue)
        .fold((0u64, 0u64), |(s, n), j| (s + u64::from(j.nodes), n + 1));
    let nodes_per_job = if n == 0 { 1.0 } else { sum as f64 / n as f64 };
    let mean_duration_secs = series.column(DURATION_COLUMN).ok().and_then(|d| {
        let recent = &d[d
            .len()
            .saturating_sub(series.step().steps_ceil(DURATION_WINDOW_SECS).max(1))..];
        let known: Vec<f64> = recent
            .iter()
            .copied()
            .filter(|v| v.is_finite() && *v > 0.0)
            .collect();
        (!known.is_empty()).then(|| known.iter().sum::<f64>() / known.len() as f64)
    });
    let demand = queue_demand(queue, jobs);
    let headroom = arrival_headroom(
        demand,
        expected_jobs * nodes_per_job / lead_secs as f64,
        lead_secs,
        mean_duration_secs,
    );
    Ok(ArrivalForecast {
        model: name.to_string(),
        metric: model.metric.clone(),
        lead_time: format_duration_secs(lead_secs),
        expected_jobs,
        nodes_per_job,
        mean_duration_secs,
        headroom,
    })
}

/// Read a JSON array or NDJSON document of `T` from a file or a blob.
fn read_documents<T: DeserializeOwned>(
    location: &str,
    s: &ScaleSettings,
    what: &str,
) -> Result<Vec<T>> {
    let bytes = storage::read_object(location, &s.data.storage)?.with_context(|| {
        format!(
            "{}: the {what} document does not exist",
            crate::store::Redacted(location)
        )
    })?;
    let text = String::from_utf8(bytes).with_context(|| format!("{location}: not UTF-8"))?;
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        return serde_json::from_str(trimmed)
            .with_context(|| format!("{location}: not a JSON array of {what}"));
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("{location}: line {}: not a {what} record", i + 1))
        })
        .collect()
}

/// Run the jobs policy once.
pub fn run(s: &ScaleSettings, clock: DateTime<Utc>, quiet: bool) -> Result<(i32, JobsRecord)> {
    let (jobs_loc, nodes_loc) = s
        .jobs_documents
        .as_ref()
        .context("--policy jobs needs --jobs (the scheduler's jobs: JSON array or NDJSON) and --nodes (its nodes)")?;
    let id = inputs::vmss_target(
        s,
        "jobs",
        "--policy jobs scales VM scale set instances; an AKS pool is scaled by count (--policy predictive or alarm)",
    )?;
    let queue = s
        .profile
        .jobs
        .queue
        .clone()
        .unwrap_or_else(|| id.name.clone());
    let jobs: Vec<Job> = read_documents(jobs_loc, s, "jobs")?;
    let nodes: Vec<SchedulerNode> = read_documents(nodes_loc, s, "nodes")?;
    let arrivals = match &s.model {
        Some(_) if s.data.is_sample() => bail!(
            "--policy jobs with --model forecasts job arrivals: --data should name their history (e.g. the scheduler's raw logs)"
        ),
        Some(name) => Some(forecast_arrivals(s, name, &queue, &jobs, clock, quiet)?),
        None => None,
    };
    let (client, rt) = inputs::arm_client(s)?;
    let mut target = crate::arm::VmssInstances::new(client, id.clone(), rt);
    let instances = target.instances().map_err(anyhow::Error::new)?;
    let params = InstanceParams {
        min_nodes: s.profile.pool.min_nodes,
        max_nodes: s.profile.pool.max_nodes,
        headroom: s.profile.jobs.headroom + arrivals.as_ref().map_or(0, |a| a.headroom),
        scale_in: s.profile.jobs.scale_in,
    };
    let mut plan = plan_instances(&queue, &jobs, &nodes, &instances, &params);
    if let Some(a) = &arrivals {
        plan.reasons.insert(1, headroom_reason(a));
    }
    let rules = WriteRules {
        dry_run: s.run.dry_run,
        refuse_autoscaler: false,
    };
    // The scheduler's view decides; instance actions do not wait on the
    // scale set's provisioning state (each is its own operation).
    let mut done = Done::default();
    let mut failure: Option<crate::core::group::GroupError> = None;
    let outcome = match before_write(
        &Wanted::Change(plan.is_change()),
        &GroupState::idle(0),
        rules,
    ) {
        BeforeWrite::End { outcome, .. } => outcome,
        // Several ARM operations: when one fails, what was already done stays
        // done and is recorded with the error (nothing is rolled back).
        BeforeWrite::Write => match target.apply_instances(&plan) {
            Ok(d) => {
                done = d;
                if done.short_of_plan.is_some() {
                    Outcome::Limited
                } else {
                    Outcome::Applied
                }
            }
            Err((d, e)) => {
                done = d;
                failure = Some(e);
                Outcome::Failed
            }
        },
    };
    let record = JobsRecord {
        mlscaler_version: env!("CARGO_PKG_VERSION"),
        now: rfc3339(clock.timestamp()),
        target: id.to_string(),
        queue,
        dry_run: s.run.dry_run,
        outcome,
        jobs: jobs.len(),
        scheduler_nodes: nodes.len(),
        arrivals,
        instances,
        plan,
        actions: done.actions,
        error: failure.as_ref().map(ToString::to_string),
        error_class: failure.as_ref().map(|e| e.kind.name()),
        short_of_plan: done.short_of_plan,
    };
    inputs::append_record(s, &record)?;
    Ok((outcome.exit_code(), record))
}

fn headroom_reason(a: &ArrivalForecast) -> String {
    format!(
        "headroom {}: model '{}' expects {:.1} job(s) to arrive within the lead time of {} ({:.1} node(s) per job{}); the 95th percentile of the demand then is {} node(s) above today's",
        a.headroom,
        a.model,
        a.expected_jobs,
        a.lead_time,
        a.nodes_per_job,
        a.mean_duration_secs
            .map_or(", duration unknown: every arrival counts".to_string(), |d| format!(", jobs of {d:.0} s on average")),
        a.headroom
    )
}
