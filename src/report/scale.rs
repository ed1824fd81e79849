//! The decision records of `scale` (one per run, for every policy: node
//! counts, instances, VM sizes), as text for people, and the plan's plot.
//! The same records are the JSON lines of the decision log.

use crate::arm::WriteEvent;
use crate::core::group::{Applied, GroupState};
use crate::core::plan::instances::{Instance, InstancePlan};
use crate::core::plan::outcome::Outcome;
use crate::core::plan::vertical::VerticalDecision;
use crate::core::plan::{Decision, Reason};
use crate::core::time::format_duration_secs;
use serde::Serialize;

/// The recent data the forecast started from.
#[derive(Debug, Serialize)]
pub struct DataSummary {
    pub source: String,
    pub metric: String,
    pub step: String,
    pub steps: usize,
    /// Start of the newest step.
    pub newest: String,
    /// Seconds between the newest step and `now`.
    pub age_secs: i64,
    pub current_demand: f64,
}

/// The model that was used.
#[derive(Debug, Clone, Serialize)]
pub struct ModelSummary {
    pub name: String,
    pub id: String,
    pub created_at: String,
    pub location: String,
}

/// The forecast over the lead window, in load units.
#[derive(Debug, Serialize)]
pub struct ForecastSummary {
    pub lead_time: String,
    pub lead_steps: usize,
    /// Point forecast for horizons 1..=lead.
    pub points: Vec<f64>,
    /// The 10% and 90% quantiles for horizons 1..=lead.
    pub p10: Vec<f64>,
    pub p90: Vec<f64>,
    /// Recent lead-time error over the model's evaluated error (drift).
    pub error_ratio: Option<f64>,
    pub drift_samples: usize,
    pub calibration_samples: usize,
}

/// One run of `scale`: printed, and appended to the decision log.
#[derive(Debug, Serialize)]
pub struct ScaleRecord {
    pub mlscaler_version: &'static str,
    /// When the run planned (RFC 3339).
    pub now: String,
    pub target: String,
    pub dry_run: bool,
    pub outcome: Outcome,
    pub data: DataSummary,
    /// The model used (none for the alarm policy).
    pub model: Option<ModelSummary>,
    pub forecast: Option<ForecastSummary>,
    /// Units of the metric per node and step (forecast mode).
    pub capacity_per_node: Option<f64>,
    pub before: GroupState,
    pub decision: Decision,
    /// Every step of the decision, for people.
    pub explanation: Vec<String>,
    /// What the target reports after the change (not on dry runs or holds).
    pub after: Option<Applied>,
    /// Why nothing was written, when the target was not touched although the plan differed.
    pub held_because: Option<String>,
    /// Why the target is short of the plan (outcome `limited`: the vCPU quota).
    pub short_of_plan: Option<String>,
    pub duration_secs: f64,
}

/// One run of the jobs policy, printed and appended to the decision log.
#[derive(Debug, Serialize)]
pub struct JobsRecord {
    pub mlscaler_version: &'static str,
    pub now: String,
    pub target: String,
    pub queue: String,
    pub dry_run: bool,
    /// `limited`: fewer instances created than planned (the vCPU quota;
    /// exit 5); `failed`: an ARM operation failed part way (`actions` lists
    /// what was done before, `error` why).
    pub outcome: Outcome,
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
    /// The class of that failure (`busy`, `quota`, `timeout`, ...), as in
    /// every failed record.
    pub error_class: Option<&'static str>,
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

/// One run of the vertical policy, printed and appended to the decision log.
#[derive(Debug, Serialize)]
pub struct VerticalRecord {
    pub mlscaler_version: &'static str,
    pub now: String,
    pub target: String,
    pub dry_run: bool,
    pub outcome: Outcome,
    pub metric: String,
    /// The newest value of the metric (with `--target sim`, memory demand in
    /// the metric's units: times `memory_per_unit` it is GiB).
    pub memory_now: f64,
    /// GiB per unit of the metric (`--target sim` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_per_unit: Option<f64>,
    /// The forecast peak of the metric over the lead time (`--model`).
    pub forecast_peak: Option<f64>,
    /// Why `--model` gave no forecast peak (the run then decides on the
    /// observed memory alone, as its backtest does at such a step).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forecast_error: Option<String>,
    pub size_before: String,
    /// The memory of each ladder size (GiB), when given or in the built-in
    /// table; without it a move down is not checked against --memory-high.
    pub ladder_memory_gib: Option<Vec<f64>>,
    pub provisioning_state: String,
    pub upgrade_policy: String,
    pub decision: VerticalDecision,
    pub actions: Vec<String>,
    /// Why an ARM operation failed (outcome "failed"; `actions` lists what was done before).
    pub error: Option<String>,
    /// The class of that failure, as in every failed record.
    pub error_class: Option<&'static str>,
}

/// A run that failed before its policy could record it (reading the data or
/// the target, a write that failed, a signal, the deadline): outcome
/// `failed`, the class of the error, the error, and every write the run had
/// sent with what came of it.
#[derive(Debug, Serialize)]
pub struct FailedRecord {
    pub mlscaler_version: &'static str,
    /// When the run planned (RFC 3339): the clock, or `--now`.
    pub now: String,
    pub target: String,
    pub policy: String,
    pub dry_run: bool,
    /// Always `failed`.
    pub outcome: Outcome,
    /// `busy`, `changed`, `throttled`, `quota`, `not_found`, `auth`,
    /// `rejected`, `server`, `timeout`, `operation_failed`, `interrupted`,
    /// `clock_skew`, `storage` or `other`.
    pub error_class: &'static str,
    /// The error, with its causes (never a secret).
    pub error: String,
    /// What the run had done: every write sent, in order, with what came of it.
    pub writes: Vec<WriteEvent>,
    pub duration_secs: f64,
}

/// The record of one round, serialized exactly as the policy's own record.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Record {
    Nodes(Box<ScaleRecord>),
    Jobs(Box<JobsRecord>),
    Vertical(Box<VerticalRecord>),
    Failed(Box<FailedRecord>),
}

impl Record {
    /// The record as text for people.
    pub fn render_text(&self) -> String {
        match self {
            Record::Nodes(r) => render_nodes(r),
            Record::Jobs(r) => render_jobs(r),
            Record::Vertical(r) => render_vertical(r),
            Record::Failed(r) => render_failed(r),
        }
    }

    /// The outcome of the round.
    pub fn outcome_kind(&self) -> Outcome {
        match self {
            Record::Nodes(r) => r.outcome,
            Record::Jobs(r) => r.outcome,
            Record::Vertical(r) => r.outcome,
            Record::Failed(r) => r.outcome,
        }
    }

    /// The class of the error, when the round failed.
    pub fn error_class(&self) -> Option<&'static str> {
        match self {
            Record::Nodes(_) => None,
            Record::Jobs(r) => r.error_class,
            Record::Vertical(r) => r.error_class,
            Record::Failed(r) => Some(r.error_class),
        }
    }

    /// What the round did, in a few words for the logs.
    pub fn outcome(&self) -> String {
        match self {
            Record::Nodes(r) => format!(
                "{}: {} -> {} nodes",
                r.outcome.name(),
                r.before.count,
                r.decision.nodes().get()
            ),
            Record::Jobs(r) => format!(
                "{}: {} -> {} running instances",
                r.outcome.name(),
                r.plan.running,
                r.plan.target
            ),
            Record::Vertical(r) => match &r.decision {
                VerticalDecision::Resize { from, to, .. } => {
                    format!("{}: {from} -> {to}", r.outcome.name())
                }
                VerticalDecision::Hold { size, .. } => format!("{}: {size}", r.outcome.name()),
            },
            Record::Failed(r) => format!("failed ({}): {}", r.error_class, r.error),
        }
    }
}

/// One planning step in words.
pub fn explain(r: &Reason) -> String {
    match r {
        Reason::Forecast {
            quantile,
            from_horizon,
            to_horizon,
            demand,
        } => {
            format!("forecast: highest q{:.0} over horizons {from_horizon}..={to_horizon} is {demand:.1}", quantile * 100.0)
        }
        Reason::Fallback { cause, demand } => format!(
            "forecast not used ({}): sizing reactively on current demand {demand:.1}",
            serde_json::to_string(cause).unwrap_or_default()
        ),
        Reason::NoDemandData => "no usable current demand".into(),
        Reason::Sized {
            demand,
            capacity,
            utilisation,
            nodes,
        } => {
            format!("sized: ceil({demand:.1} / ({capacity:.3} x {utilisation:.2})) = {nodes} nodes")
        }
        Reason::Calibrated {
            factor,
            demand,
            nodes,
        } => {
            format!("calibrated by recent errors: x{factor:.3} -> {demand:.1} at full utilisation = {nodes} nodes")
        }
        Reason::OperationWindow { busy_secs } => format!(
            "the change keeps the target busy for {}: sized to cover that long after the lead time too",
            format_duration_secs(*busy_secs)
        ),
        Reason::ReactiveFloor {
            demand,
            utilisation,
            nodes,
        } => {
            format!(
                "reactive floor: recent demand {demand:.1} at {utilisation:.2} needs {nodes} nodes"
            )
        }
        Reason::ClampedToMin { min } => format!("raised to the minimum of {min}"),
        Reason::ClampedToMax { max } => format!("lowered to the maximum of {max}"),
        Reason::Stabilising {
            window_secs,
            highest,
        } => {
            format!(
                "scale-in held: a recommendation of {highest} within the last {}",
                format_duration_secs(*window_secs)
            )
        }
        Reason::NoScaleInWithoutForecast => "no scale-in without a trusted forecast".into(),
        Reason::ScaleOutCooldown { remaining_secs } => {
            format!("scale-out cooldown: {remaining_secs} s left")
        }
        Reason::ScaleInCooldown { remaining_secs } => {
            format!("scale-in cooldown: {remaining_secs} s left")
        }
        Reason::ScaleInTooSmall { least, wanted } => {
            format!("scale-in to {wanted} held: smaller than {least} node(s)")
        }
        Reason::ScaleOutRoundedUp { least, wanted } => {
            format!("scale-out to {wanted} raised to at least {least} node(s) more")
        }
        Reason::StepUpLimited { max_step, wanted } => {
            format!("step up limited to {max_step} (wanted {wanted})")
        }
        Reason::StepDownLimited { max_step, wanted } => {
            format!("step down limited to {max_step} (wanted {wanted})")
        }
        Reason::SlaBand {
            predicted,
            target,
            threshold,
            change,
        } => format!(
            "SLA band {target} +- {threshold}: predicted {predicted:.3} is {}: {change:+} nodes",
            if *predicted > target + threshold {
                "above"
            } else if *predicted < target - threshold {
                "below"
            } else {
                "inside"
            }
        ),
        other => serde_json::to_string(other).unwrap_or_else(|_| other.kind().to_string()),
    }
}

/// The record as text for people: the plan as a diff, then every reason.
pub fn render_nodes(r: &ScaleRecord) -> String {
    let planned = r.decision.nodes().get();
    let mut out = format!(
        "{}{}: {} -> {} nodes ({})\n",
        if r.dry_run { "[dry run] " } else { "" },
        r.target,
        r.before.count,
        planned,
        r.outcome.describe()
    );
    out.push_str(&format!(
        "as of {}: {} = {:.1} (newest step {}, {} old), {}\n",
        r.now,
        r.data.metric,
        r.data.current_demand,
        r.data.newest,
        format_duration_secs(r.data.age_secs.max(0)),
        r.model
            .as_ref()
            .map_or("alarm policy (no model)".to_string(), |m| format!(
                "model {} ({})",
                m.name, m.id
            ))
    ));
    if let Some(f) = &r.forecast {
        let peak = f.points.iter().copied().fold(0.0, f64::max);
        let hi = f.p90.iter().copied().fold(0.0, f64::max);
        out.push_str(&format!(
            "forecast over the next {}: peak {:.1} (p90 {:.1}); drift {}; capacity {:.3} per node\n",
            f.lead_time,
            peak,
            hi,
            f.error_ratio.map_or("unknown".into(), |e| format!("{e:.2}x the evaluated error")),
            r.capacity_per_node.unwrap_or(f64::NAN)
        ));
    }
    for (i, e) in r.explanation.iter().enumerate() {
        out.push_str(&format!("  {}. {e}\n", i + 1));
    }
    if let Some(h) = &r.held_because {
        out.push_str(&format!("held: {h}\n"));
    }
    if let Some(a) = &r.after {
        out.push_str(&format!("applied: {}: {}\n", a.field, a.detail));
    }
    if let Some(s) = &r.short_of_plan {
        out.push_str(&format!("short of plan: {s}\n"));
    }
    out
}

/// The record as text for people.
pub fn render_jobs(r: &JobsRecord) -> String {
    let p = &r.plan;
    let mut out = format!(
        "{}{} (queue '{}'): {} running -> {} ({})\n",
        if r.dry_run { "[dry run] " } else { "" },
        r.target,
        r.queue,
        p.running,
        p.target,
        r.outcome.name().replace('_', " ")
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
        out.push_str(&format!(
            "failed ({}): {e}\n",
            r.error_class.unwrap_or("other")
        ));
    }
    out
}

/// The record as text for people.
pub fn render_vertical(r: &VerticalRecord) -> String {
    let to = match &r.decision {
        VerticalDecision::Resize { to, .. } => to.clone(),
        VerticalDecision::Hold { size, .. } => size.clone(),
    };
    let mut out = format!(
        "{}{}: {} -> {} ({}); {} = {:.3}{}\n",
        if r.dry_run { "[dry run] " } else { "" },
        r.target,
        r.size_before,
        to,
        r.outcome.name().replace('_', " "),
        r.metric,
        r.memory_now,
        r.forecast_peak
            .map_or(String::new(), |f| format!(", forecast peak {f:.3}"))
    );
    if let Some(e) = &r.forecast_error {
        out.push_str(&format!(
            "  - no forecast: {e}
"
        ));
    }
    for reason in r.decision.reasons() {
        out.push_str(&format!("  - {reason}\n"));
    }
    for a in &r.actions {
        out.push_str(&format!("applied: {a}\n"));
    }
    if let Some(e) = &r.error {
        out.push_str(&format!(
            "failed ({}): {e}\n",
            r.error_class.unwrap_or("other")
        ));
    }
    out
}

/// The record of a failed run as text for people.
pub fn render_failed(r: &FailedRecord) -> String {
    let mut out = format!(
        "{}{}: failed ({}): {}\n",
        if r.dry_run { "[dry run] " } else { "" },
        r.target,
        r.error_class,
        r.error
    );
    if r.writes.is_empty() {
        out.push_str("nothing was sent to the target\n");
    }
    for w in &r.writes {
        out.push_str(&format!("sent: {} {}: {}\n", w.request, w.change, w.result));
    }
    out
}

/// How far back [`plan_plot`] shows the metric: six hours.
pub const PLOT_PAST_SECS: i64 = 6 * 3600;

/// The last six hours of the metric, the forecast over the lead time with its
/// 10-90% band, and the capacity before and after the plan.
pub fn plan_plot(
    series: &crate::core::forecast::series::LoadSeries,
    metric: &str,
    f: &ForecastSummary,
    capacity: f64,
    before: u32,
    after: u32,
    now: i64,
) -> String {
    use crate::report::plot::{Band, Chart, Line};
    let step = series.step().secs();
    let y = series.column(metric).unwrap_or(&[]);
    let past = y.len().min((PLOT_PAST_SECS / step.max(1)) as usize + 1);
    let n = past + f.points.len();
    let mut times = Vec::with_capacity(n);
    let (mut actual, mut point, mut lo, mut hi) = (
        vec![f64::NAN; n],
        vec![f64::NAN; n],
        vec![f64::NAN; n],
        vec![f64::NAN; n],
    );
    for (k, i) in (y.len() - past..y.len()).enumerate() {
        times.push(series.time_at(i));
        actual[k] = y[i];
    }
    // The forecast starts at the last observation, so the lines join.
    point[past - 1] = y[y.len() - 1];
    for (h, v) in f.points.iter().enumerate() {
        times.push(now + (h as i64 + 1) * step);
        point[past + h] = *v;
        lo[past + h] = f.p10[h];
        hi[past + h] = f.p90[h];
    }
    let cap_before = vec![capacity * f64::from(before); n];
    let cap_after: Vec<f64> = (0..n)
        .map(|k| {
            if k + 1 >= past {
                capacity * f64::from(after)
            } else {
                f64::NAN
            }
        })
        .collect();
    let title = format!(
        "{metric}: last 6 h, forecast over {} and capacity {before} -> {after} nodes",
        f.lead_time
    );
    Chart {
        title: &title,
        y_label: metric,
        times: &times,
        lines: vec![
            Line {
                name: "actual",
                color: "#222222",
                values: &actual,
                width: 1.2,
            },
            Line {
                name: "forecast",
                color: "#1f77b4",
                values: &point,
                width: 1.2,
            },
            Line {
                name: "capacity now",
                color: "#7f7f7f",
                values: &cap_before,
                width: 0.8,
            },
            Line {
                name: "planned capacity",
                color: "#d62728",
                values: &cap_after,
                width: 1.2,
            },
        ],
        bands: vec![Band {
            name: "10-90% forecast",
            color: "#1f77b4",
            lo: &lo,
            hi: &hi,
        }],
    }
    .to_svg()
}
