//! `mlscaler scale --policy jobs`: scale a VM scale set instance by instance
//! for a job scheduler ([`crate::core::instances`]): read the jobs and nodes
//! documents, list the instances with their power state, plan, and start,
//! create, deallocate or delete exactly the planned instances.

use super::source::DataSource;
use super::{exit, storage};
use crate::arm::{ArmClient, Blocking, InstanceAction, ProtectionPolicy, TargetId, VmssId, VmssVm};
use crate::cli::ScaleArgs;
use crate::core::instances::{
    arrival_headroom, plan_instances, queue_demand, Instance, InstanceParams, InstancePlan, Job,
    Power, ScaleIn, SchedulerNode,
};
use crate::core::time::{format_duration_secs, parse_duration_secs, rfc3339};
use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// One run of the jobs policy, printed and appended to the decision log.
#[derive(Debug, Serialize)]
pub struct JobsRecord {
    pub mlscaler_version: &'static str,
    pub now: String,
    pub target: String,
    pub queue: String,
    pub dry_run: bool,
    /// "applied", "would_apply", "nothing_to_do", "limited" (fewer instances
    /// created than planned: the vCPU quota; exit 5), or "failed" (an ARM
    /// operation failed part way: `actions` lists what was done before, `error` why).
    pub outcome: &'static str,
    pub jobs: usize,
    pub scheduler_nodes: usize,
    pub instances: Vec<Instance>,
    /// The forecast of job arrivals behind the headroom (with --model).
    pub arrivals: Option<ArrivalForecast>,
    pub plan: InstancePlan,
    /// What was done, in order.
    pub actions: Vec<String>,
    /// Why an ARM operation failed (outcome "failed").
    pub error: Option<String>,
    /// Why fewer instances were created than planned (outcome "limited": the vCPU quota).
    pub short_of_plan: Option<String>,
}

/// Headroom from forecast job arrivals ([`arrival_headroom`]): the nodes the
/// queue is expected to need one lead time from now (a new instance is not
/// ready sooner) beyond what it needs now, from the jobs a model expects to
/// arrive within the lead time, the mean nodes per job of the queue, and the
/// mean job duration when the data has it (`mean_job_duration_s`, as raw logs do;
/// without it every arrival counts on top: an upper bound).
#[derive(Debug, Clone, Serialize)]
pub struct ArrivalForecast {
    pub model: String,
    pub metric: String,
    pub lead_time: String,
    /// Jobs expected to arrive within the lead time.
    pub expected_jobs: f64,
    /// Mean nodes per job of the queue's current jobs (1 when there are none).
    pub nodes_per_job: f64,
    /// Mean duration of recent jobs (the last hour of `mean_job_duration_s`), if known.
    pub mean_duration_secs: Option<f64>,
    /// Nodes added on top of the queue's demand.
    pub headroom: u32,
}

/// The column of mean job durations that raw logs produce (sessions excluded).
const DURATION_COLUMN: &str = "mean_job_duration_s";

/// The arrival forecast of `--model` (a forecast model of job arrivals per
/// step, e.g. trained on the `job_arrivals` column of raw logs) over the lead time.
fn forecast_arrivals(
    args: &ScaleArgs,
    name: &str,
    queue: &str,
    jobs: &[Job],
    clock: DateTime<Utc>,
    quiet: bool,
) -> Result<ArrivalForecast> {
    let input = &args.input;
    let src = DataSource::resolve(input.data.as_deref(), &input.storage)?;
    let (card, model) = super::vertical::latest_forecaster(args, name)?;
    let opts = super::vertical::read_options_for(args, &model)?;
    let (series, _) = super::scale::recent(args, &src, &opts, false, quiet, clock)?;
    let f = model
        .forecast(&series)
        .with_context(|| format!("forecasting {} with model '{name}'", model.metric))?;
    let step = series.step().secs();
    let lead_secs = match &args.lead_time {
        Some(l) => parse_duration_secs(l).context("--lead-time")?,
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
            .saturating_sub(series.step().steps_ceil(3600).max(1))..];
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
    args: &ScaleArgs,
    what: &str,
) -> Result<Vec<T>> {
    let bytes = storage::read_object(location, &args.input.storage)?.with_context(|| {
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

fn instance_of(vm: &VmssVm) -> Instance {
    let id = vm.instance_id.clone().unwrap_or_default();
    let mut names: Vec<String> = vm.name.iter().cloned().collect();
    if let Some(cn) = vm
        .properties
        .as_ref()
        .and_then(|p| p.extra.get("osProfile"))
        .and_then(|o| o.get("computerName"))
        .and_then(|c| c.as_str())
    {
        names.push(cn.to_string());
    }
    let power = match vm.power_state() {
        Some("running" | "starting") => Power::Running,
        Some("deallocated" | "stopped") => Power::Deallocated,
        _ => Power::Other,
    };
    Instance {
        instance_id: id,
        names,
        power,
        protected_from_scale_in: vm.protection().protect_from_scale_in,
    }
}

/// Run the jobs policy once.
pub fn run(
    args: &ScaleArgs,
    clock: DateTime<Utc>,
    quiet: bool,
    client: impl FnOnce() -> Result<(ArmClient, Blocking)>,
) -> Result<(i32, JobsRecord)> {
    let (Some(jobs_loc), Some(nodes_loc)) = (&args.jobs, &args.nodes) else {
        bail!("--policy jobs needs --jobs (the scheduler's jobs: JSON array or NDJSON) and --nodes (its nodes)");
    };
    let id = match args.target.as_deref().map(TargetId::parse) {
        Some(Ok(TargetId::Vmss(id))) => id,
        Some(Ok(TargetId::AgentPool(_))) => bail!("--policy jobs scales VM scale set instances; an AKS pool is scaled by count (--policy predictive or alarm)"),
        Some(Err(e)) => return Err(e).context("--target"),
        None => bail!("--policy jobs needs --target with the ARM resource id of a VM scale set"),
    };
    let queue = args.queue.clone().unwrap_or_else(|| id.name.clone());
    let jobs: Vec<Job> = read_documents(jobs_loc, args, "jobs")?;
    let nodes: Vec<SchedulerNode> = read_documents(nodes_loc, args, "nodes")?;
    let arrivals = match &args.model {
        Some(_) if args.input.data.is_none() && args.input.storage.container.is_none() => bail!(
            "--policy jobs with --model forecasts job arrivals: --data should name their history (e.g. the scheduler's raw logs)"
        ),
        Some(name) => Some(forecast_arrivals(args, name, &queue, &jobs, clock, quiet)?),
        None => None,
    };
    let (client, rt) = client()?;
    let vms = rt
        .block_on(client.list_vmss_instances(&id, true))
        .with_context(|| format!("listing the instances of {id}"))?;
    let instances: Vec<Instance> = vms.iter().map(instance_of).collect();
    let params = InstanceParams {
        min_nodes: args.min_nodes,
        max_nodes: args.max_nodes,
        headroom: args.headroom + arrivals.as_ref().map_or(0, |a| a.headroom),
        scale_in: if args.scale_in_delete {
            ScaleIn::Delete
        } else {
            ScaleIn::Deallocate
        },
    };
    let mut plan = plan_instances(&queue, &jobs, &nodes, &instances, &params);
    if let Some(a) = &arrivals {
        plan.reasons.insert(
            1,
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
            ),
        );
    }
    let mut actions = Vec::new();
    let mut error = None;
    let mut short_of_plan = None;
    let outcome = if !plan.is_change() {
        "nothing_to_do"
    } else if args.dry_run {
        "would_apply"
    } else {
        // Several ARM operations: when one fails, what was already done stays
        // done and is recorded with the error (nothing is rolled back).
        match apply(&client, &rt, &id, &plan, &mut actions) {
            Ok(None) => "applied",
            Ok(Some(s)) => {
                short_of_plan = Some(s);
                "limited"
            }
            Err(e) => {
                error = Some(format!("{e:#}"));
                "failed"
            }
        }
    };
    let record = JobsRecord {
        mlscaler_version: env!("CARGO_PKG_VERSION"),
        now: rfc3339(clock.timestamp()),
        target: id.to_string(),
        queue,
        dry_run: args.dry_run,
        outcome,
        jobs: jobs.len(),
        scheduler_nodes: nodes.len(),
        arrivals,
        instances,
        plan,
        actions,
        error,
        short_of_plan,
    };
    super::scale::append_record(args, &record)?;
    let code = match outcome {
        "nothing_to_do" => exit::NOTHING_TO_DO,
        "failed" => exit::FAILED,
        "limited" => exit::HELD,
        _ => exit::OK,
    };
    Ok((code, record))
}

/// Protect busy instances first, then start, create, and scale in. Returns why
/// the plan was not reached in full (the vCPU quota), if it was not.
fn apply(
    client: &ArmClient,
    rt: &Blocking,
    id: &VmssId,
    plan: &InstancePlan,
    actions: &mut Vec<String>,
) -> Result<Option<String>> {
    let protect = ProtectionPolicy {
        protect_from_scale_in: true,
        protect_from_scale_set_actions: false,
    };
    for i in &plan.protect {
        rt.block_on(client.set_instance_protection(id, i, protect))
            .with_context(|| format!("protecting instance {i}"))?;
        actions.push(format!("protected instance {i} from scale-in"));
    }
    if !plan.start.is_empty() {
        rt.block_on(client.vmss_instance_action(id, InstanceAction::Start, &plan.start))
            .context("starting instances")?;
        actions.push(format!("started instances {}", plan.start.join(", ")));
    }
    let mut short = None;
    if plan.create > 0 {
        let vmss = rt.block_on(client.get_vmss(id))?;
        let capacity = vmss.sku.as_ref().and_then(|s| s.capacity).unwrap_or(0);
        let want = u64::from(plan.create);
        let mut to = capacity + want;
        if let Err(e) = rt.block_on(client.set_vmss_capacity(id, to, vmss.etag.as_deref())) {
            // Out of vCPU quota: create as many as it allows (more nodes for
            // the queue now beats none), say so.
            let fit = e.quota_numbers().map_or(0, |q| q.nodes_that_fit(want));
            if fit == 0 || fit >= want {
                return Err(e).with_context(|| format!("raising the capacity to {to}"));
            }
            to = capacity + fit;
            let etag = rt.block_on(client.get_vmss(id))?.etag;
            rt.block_on(client.set_vmss_capacity(id, to, etag.as_deref()))
                .with_context(|| {
                    format!("raising the capacity to {to} (as far as the quota allows)")
                })?;
            short = Some(format!(
                "the vCPU quota allows {fit} of the {want} new instances planned; ask for a quota increase ({e})"
            ));
        }
        actions.push(format!(
            "capacity {capacity} -> {to}: {} new instance(s)",
            to - capacity
        ));
    }
    for (ids, action, verb) in [
        (&plan.deallocate, InstanceAction::Deallocate, "deallocated"),
        (&plan.delete, InstanceAction::Delete, "deleted"),
    ] {
        if !ids.is_empty() {
            rt.block_on(client.vmss_instance_action(id, action, ids))
                .with_context(|| format!("{verb} instances"))?;
            actions.push(format!("{verb} instances {}", ids.join(", ")));
        }
    }
    Ok(short)
}

/// The record as text for people.
pub fn render_text(r: &JobsRecord) -> String {
    let p = &r.plan;
    let mut out = format!(
        "{}{} (queue '{}'): {} running -> {} ({})\n",
        if r.dry_run { "[dry run] " } else { "" },
        r.target,
        r.queue,
        p.running,
        p.target,
        r.outcome.replace('_', " ")
    );
    for reason in &p.reasons {
        out.push_str(&format!("  - {reason}\n"));
    }
    let list = |v: &[String]| {
        if v.is_empty() {
            "-".to_string()
        } else {
            v.join(", ")
        }
    };
    out.push_str(&format!(
        "  start: {}; create: {}; deallocate: {}; delete: {}; protect: {}\n",
        list(&p.start),
        p.create,
        list(&p.deallocate),
        list(&p.delete),
        list(&p.protect)
    ));
    for a in &r.actions {
        out.push_str(&format!("applied: {a}\n"));
    }
    if let Some(s) = &r.short_of_plan {
        out.push_str(&format!("short of plan: {s}\n"));
    }
    if let Some(e) = &r.error {
        out.push_str(&format!("failed: {e}\n"));
    }
    out
}
