//! Job-queue simulation for `backtest --mode jobs`: a job trace replayed
//! through a simulated FIFO scheduler and VM scale set, with the live
//! planner ([`plan_instances`]) deciding which instances to start, create,
//! deallocate or delete.
//!
//! The simulation is event driven, in whole seconds:
//!
//! - a job arrives at its `submit` time and joins the queue;
//! - the scheduler places queued jobs strictly first in, first out: the job at
//!   the head of the queue starts as soon as as many instances as it needs
//!   nodes are ready and Free (a wide job at the head blocks the jobs behind
//!   it, as in a strict FIFO scheduler; no backfilling);
//! - a running job ends `duration` seconds after it started and frees its
//!   instances at once;
//! - a started (deallocated) instance is ready `start_lead_secs` after the
//!   start, a created one `create_lead_secs` after the creation;
//! - every `decision_every_secs` the controller sees what a live run sees
//!   (the queued and running jobs, the scheduler's ready nodes as Free or
//!   Busy, every instance with its power state: booting ones as running but
//!   unknown to the scheduler) and calls the real [`plan_instances`]; the plan
//!   is applied at once: deallocated and deleted instances stop costing at
//!   once. The planner's `protect` list is not simulated (nothing else
//!   scales the set in here).
//!
//! At equal times, completions come first, then instances becoming ready,
//! then arrivals, then the scheduler, then the controller: a decision sees
//! everything that happened up to and including its own second.
//!
//! Cost is what a scale set bills: instances booting or ready; deallocated
//! ones cost nothing. Every metric covers the scored window, from
//! `score_from_fraction` of the trace's span (first submit to last
//! wait-free end) to its end; jobs are scored by their submit time.
//!
//! Pure: no I/O, no clock, no randomness; the same trace and parameters give
//! the same report.

use crate::core::plan::instances::{
    arrival_headroom, plan_instances, Instance, InstanceParams, InstancePlan, Job, JobStatus,
    NodeStatus, Power, ScaleIn, SchedulerNode,
};
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, VecDeque};
use std::fmt;
use std::str::FromStr;

/// The pool name the simulated scheduler and planner use.
const POOL: &str = "sim";

/// One job of a trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceJob {
    pub id: String,
    pub queue: String,
    /// Epoch seconds.
    pub submit: i64,
    /// Run time once started, whole seconds (>= 0).
    pub duration_secs: i64,
    /// Nodes (instances) the job needs at once (>= 1).
    pub nodes: u32,
}

/// The policies the jobs backtest compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobPolicy {
    /// A fixed pool sized for the trace's peak concurrent node demand.
    StaticPeak,
    /// The live planner on the queue's explicit demand (headroom 0).
    Jobs,
    /// The live planner with headroom for the demand expected one lead time
    /// ahead (a causal, naive arrival rate and the mean duration of recent
    /// jobs: see [`arrival_headroom`]; the lead is the start lead while
    /// deallocated instances can supply it, the create lead otherwise).
    JobsForecast,
}

impl JobPolicy {
    /// Every policy, in report order.
    pub const ALL: [JobPolicy; 3] = [
        JobPolicy::StaticPeak,
        JobPolicy::Jobs,
        JobPolicy::JobsForecast,
    ];

    /// The name used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            JobPolicy::StaticPeak => "static_peak",
            JobPolicy::Jobs => "jobs",
            JobPolicy::JobsForecast => "jobs_forecast",
        }
    }
}

impl fmt::Display for JobPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobPolicy::ALL
            .into_iter()
            .find(|p| p.as_str() == s.trim())
            .ok_or_else(|| {
                format!("unknown jobs policy '{s}' (expected static_peak, jobs or jobs_forecast)")
            })
    }
}

/// Settings of one backtest.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSimParams {
    /// Fewest running instances (the dynamic policies also start with this many ready).
    pub min_nodes: u32,
    /// Most instances in any state.
    pub max_nodes: u32,
    /// A newly created instance is ready this long after the create.
    pub create_lead_secs: i64,
    /// A deallocated instance is ready this long after the start.
    pub start_lead_secs: i64,
    /// How often the controller runs.
    pub decision_every_secs: i64,
    pub scale_in: ScaleIn,
    /// jobs_forecast: the node arrivals of the last this-long give the rate.
    pub arrival_window_secs: i64,
    /// Score from this fraction of the trace's span on, in [0, 1).
    pub score_from_fraction: f64,
    pub policies: Vec<JobPolicy>,
}

impl Default for JobSimParams {
    fn default() -> Self {
        JobSimParams {
            min_nodes: 1,
            max_nodes: 1000,
            create_lead_secs: 600,
            start_lead_secs: 180,
            decision_every_secs: 60,
            scale_in: ScaleIn::Deallocate,
            arrival_window_secs: 3600,
            score_from_fraction: 0.5,
            policies: JobPolicy::ALL.to_vec(),
        }
    }
}

/// Why a backtest cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobSimError {
    #[error("the trace has no jobs")]
    NoJobs,
    #[error("{0}")]
    BadParam(String),
    #[error("job '{id}' needs {nodes} nodes, more than --max-nodes {max}: it could never run")]
    TooWide { id: String, nodes: u32, max: u32 },
}

/// What one policy did over the scored window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobPolicyMetrics {
    pub policy: JobPolicy,
    /// Instance-hours paid for: booting or ready instances.
    pub instance_hours: f64,
    /// Instance-hours an instance ran a job.
    pub busy_hours: f64,
    /// busy_hours / instance_hours.
    pub utilisation: f64,
    /// instance_hours / static_peak's (when static_peak ran).
    pub cost_vs_static_peak: Option<f64>,
    /// Jobs submitted in the scored window.
    pub jobs: usize,
    pub wait_mean_s: f64,
    pub wait_p95_s: f64,
    pub wait_max_s: f64,
    /// Share of the scored jobs that waited more than 60 s, in percent.
    pub waited_over_1m_pct: f64,
    /// Deallocated instances started (reused) by scored decisions.
    pub starts: u64,
    /// Instances created by scored decisions.
    pub creates: u64,
    /// Instances deallocated or deleted by scored decisions.
    pub scale_ins: u64,
    /// Busy instances the planner chose to deallocate or delete, over the
    /// whole run (the sim refuses them). Must be 0.
    pub busy_removed: u64,
    /// Plan actions the sim could not apply (starting an instance that is not
    /// deallocated, removing one that is not ready), over the whole run. Must be 0.
    pub invalid_actions: u64,
    /// Most instances paid for at once in the scored window.
    pub peak_instances: u32,
    /// Mean headroom the policy asked for at scored decisions.
    pub mean_headroom: f64,
    /// Controller runs in the scored window.
    pub decisions: u64,
}

/// The state at one controller tick, for plots and the plan file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobSimRow {
    pub time: i64,
    pub policy: JobPolicy,
    /// Nodes of queued jobs.
    pub queued_nodes: u32,
    /// Nodes of running jobs.
    pub running_nodes: u32,
    pub headroom: u32,
    /// The planner's target (`None` for static_peak).
    pub target: Option<u32>,
    pub ready: u32,
    pub booting: u32,
    pub busy: u32,
    pub deallocated: u32,
    pub start: u32,
    pub create: u32,
    /// Deallocated or deleted by this decision.
    pub scale_in: u32,
}

/// The whole backtest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobSimReport {
    pub jobs_total: usize,
    pub first_submit: i64,
    /// The last end if no job ever waited.
    pub trace_end: i64,
    pub scored_from: i64,
    /// The last end of any job under the slowest policy (at least `trace_end`):
    /// every policy pays up to here.
    pub scored_to: i64,
    pub jobs_scored: usize,
    /// Most nodes the trace's jobs need at once if none waits.
    pub peak_concurrent_nodes: u32,
    /// The static_peak pool (peak demand within min/max).
    pub static_peak_nodes: u32,
    /// Node-hours of the jobs themselves in the scored window: what an oracle
    /// pays that has an instance ready exactly while a job runs on it (no wait,
    /// no idle, no boot time). A lower bound, not a policy.
    pub lower_bound_instance_hours: f64,
    pub policies: Vec<JobPolicyMetrics>,
}

impl JobSimReport {
    /// The metrics of `p`, if it ran.
    pub fn policy(&self, p: JobPolicy) -> Option<&JobPolicyMetrics> {
        self.policies.iter().find(|m| m.policy == p)
    }
}

/// The report and every policy's ticks.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSim {
    pub report: JobSimReport,
    /// Per policy (in `report.policies` order), one row per controller tick.
    pub rows: Vec<Vec<JobSimRow>>,
}

/// Most nodes needed at once if every job starts at its submit time (an end
/// frees its nodes before a start at the same second).
pub fn peak_concurrent_nodes(jobs: &[TraceJob]) -> u32 {
    let mut ev: Vec<(i64, i64)> = Vec::with_capacity(jobs.len() * 2);
    for j in jobs {
        ev.push((j.submit, i64::from(j.nodes)));
        ev.push((j.submit + j.duration_secs, -i64::from(j.nodes)));
    }
    ev.sort_unstable();
    let (mut now, mut peak) = (0i64, 0i64);
    for (_, d) in ev {
        now += d;
        peak = peak.max(now);
    }
    peak as u32
}

/// Replay `jobs` (any order) through every policy of `p`.
pub fn simulate(jobs: &[TraceJob], p: &JobSimParams) -> Result<JobSim, JobSimError> {
    check(jobs, p)?;
    let mut order: Vec<&TraceJob> = jobs.iter().collect();
    order.sort_by(|a, b| (a.submit, &a.id).cmp(&(b.submit, &b.id)));
    let jobs: Vec<TraceJob> = order.into_iter().cloned().collect();
    let first = jobs[0].submit;
    let end = jobs
        .iter()
        .map(|j| j.submit + j.duration_secs)
        .max()
        .unwrap_or(first);
    let scored_from = first + ((end - first) as f64 * p.score_from_fraction).round() as i64;
    let peak = peak_concurrent_nodes(&jobs);
    let static_nodes = peak.clamp(p.min_nodes, p.max_nodes.max(p.min_nodes));
    let mut run_list = Vec::new();
    let mut seen = BTreeSet::new();
    for &policy in &p.policies {
        if seen.insert(policy) {
            run_list.push(policy);
        }
    }
    // Waits push the last end past the trace's: every policy is scored up to
    // the time the slowest one ends its last job, so all pay for the same span.
    let first_pass = Window {
        from: scored_from,
        to: end,
    };
    let to = run_list
        .iter()
        .map(|&policy| {
            let mut sim = Sim::new(&jobs, p, policy, first_pass, static_nodes);
            sim.run();
            sim.finished_at
        })
        .max()
        .unwrap_or(end)
        .max(end);
    let window = Window {
        from: scored_from,
        to,
    };
    let lower_bound: f64 = jobs
        .iter()
        .map(|j| window.overlap(j.submit, j.submit + j.duration_secs) as f64 * f64::from(j.nodes))
        .sum::<f64>()
        / 3600.0;
    let mut policies = Vec::new();
    let mut rows = Vec::new();
    for policy in run_list {
        let mut sim = Sim::new(&jobs, p, policy, window, static_nodes);
        sim.run();
        policies.push(sim.metrics());
        rows.push(sim.rows);
    }
    if let Some(base) = policies
        .iter()
        .find(|m| m.policy == JobPolicy::StaticPeak)
        .map(|m| m.instance_hours)
    {
        for m in &mut policies {
            m.cost_vs_static_peak = (base > 0.0).then(|| m.instance_hours / base);
        }
    }
    Ok(JobSim {
        report: JobSimReport {
            jobs_total: jobs.len(),
            first_submit: first,
            trace_end: end,
            scored_from,
            scored_to: to,
            jobs_scored: jobs.iter().filter(|j| window.holds(j.submit)).count(),
            peak_concurrent_nodes: peak,
            static_peak_nodes: static_nodes,
            lower_bound_instance_hours: lower_bound,
            policies,
        },
        rows,
    })
}

fn check(jobs: &[TraceJob], p: &JobSimParams) -> Result<(), JobSimError> {
    let bad = |m: String| Err(JobSimError::BadParam(m));
    if jobs.is_empty() {
        return Err(JobSimError::NoJobs);
    }
    if !(0.0..1.0).contains(&p.score_from_fraction) {
        return bad(format!(
            "--score-from must be at least 0 and below 1, not {}",
            p.score_from_fraction
        ));
    }
    for (name, v) in [
        ("--lead-time", p.create_lead_secs),
        ("--start-lead-time", p.start_lead_secs),
        ("--decision-every", p.decision_every_secs),
        ("--arrival-window", p.arrival_window_secs),
    ] {
        if v <= 0 {
            return bad(format!("{name} must be positive"));
        }
    }
    if p.min_nodes > p.max_nodes {
        return bad(format!(
            "--min-nodes {} is above --max-nodes {}",
            p.min_nodes, p.max_nodes
        ));
    }
    if p.policies.is_empty() {
        return bad("no policy to run".into());
    }
    if let Some(j) = jobs.iter().find(|j| j.nodes > p.max_nodes) {
        return Err(JobSimError::TooWide {
            id: j.id.clone(),
            nodes: j.nodes,
            max: p.max_nodes,
        });
    }
    if let Some(j) = jobs.iter().find(|j| j.nodes == 0 || j.duration_secs < 0) {
        return bad(format!(
            "job '{}' needs {} nodes for {} s: a job needs at least one node and a duration of 0 s or more",
            j.id, j.nodes, j.duration_secs
        ));
    }
    Ok(())
}

/// The scored window `[from, to)`.
#[derive(Debug, Clone, Copy)]
struct Window {
    from: i64,
    to: i64,
}

impl Window {
    fn overlap(self, a: i64, b: i64) -> i64 {
        (b.min(self.to) - a.max(self.from)).max(0)
    }
    fn holds(self, t: i64) -> bool {
        t >= self.from && t < self.to.max(self.from + 1)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Booting,
    Ready,
    Deallocated,
    Deleted,
}

#[derive(Debug, Clone)]
struct Inst {
    state: State,
    /// The job running on it.
    job: Option<usize>,
}

/// Heap event kinds, in the order they apply at equal times.
const COMPLETION: u8 = 0;
const READY: u8 = 1;

struct Sim<'a> {
    jobs: &'a [TraceJob],
    p: &'a JobSimParams,
    policy: JobPolicy,
    window: Window,
    inst: Vec<Inst>,
    /// Ready instances without a job, by id.
    free: BTreeSet<usize>,
    queue: VecDeque<usize>,
    running: BTreeSet<usize>,
    assigned: Vec<Vec<usize>>,
    started: Vec<Option<i64>>,
    heap: BinaryHeap<Reverse<(i64, u8, usize)>>,
    next_arrival: usize,
    /// Arrivals in the forecast window: (time, nodes).
    recent: VecDeque<(i64, u32)>,
    recent_nodes: u64,
    /// Jobs finished in the forecast window: (time, duration).
    done: VecDeque<(i64, i64)>,
    done_secs: i64,
    paid: u32,
    busy: u32,
    last_t: i64,
    paid_secs: f64,
    busy_secs: f64,
    peak_paid: u32,
    starts: u64,
    creates: u64,
    scale_ins: u64,
    busy_removed: u64,
    invalid_actions: u64,
    decisions: u64,
    headroom_sum: u64,
    rows: Vec<JobSimRow>,
    /// When the last job ended.
    finished_at: i64,
}

impl<'a> Sim<'a> {
    fn new(
        jobs: &'a [TraceJob],
        p: &'a JobSimParams,
        policy: JobPolicy,
        window: Window,
        static_nodes: u32,
    ) -> Self {
        let initial = match policy {
            JobPolicy::StaticPeak => static_nodes,
            _ => p.min_nodes,
        } as usize;
        Sim {
            jobs,
            p,
            policy,
            window,
            inst: vec![
                Inst {
                    state: State::Ready,
                    job: None,
                };
                initial
            ],
            free: (0..initial).collect(),
            queue: VecDeque::new(),
            running: BTreeSet::new(),
            assigned: vec![Vec::new(); jobs.len()],
            started: vec![None; jobs.len()],
            heap: BinaryHeap::new(),
            next_arrival: 0,
            recent: VecDeque::new(),
            recent_nodes: 0,
            done: VecDeque::new(),
            done_secs: 0,
            paid: initial as u32,
            busy: 0,
            last_t: jobs[0].submit,
            paid_secs: 0.0,
            busy_secs: 0.0,
            peak_paid: 0,
            starts: 0,
            creates: 0,
            scale_ins: 0,
            busy_removed: 0,
            invalid_actions: 0,
            decisions: 0,
            headroom_sum: 0,
            rows: Vec::new(),
            finished_at: jobs[0].submit,
        }
    }

    fn done(&self) -> bool {
        self.next_arrival == self.jobs.len() && self.queue.is_empty() && self.running.is_empty()
    }

    fn run(&mut self) {
        let mut tick = self.jobs[0].submit;
        // Run until every job has ended and the scored window is over.
        while !(self.done() && tick >= self.window.to) {
            let mut t = tick;
            if let Some(Reverse((h, _, _))) = self.heap.peek() {
                t = t.min(*h);
            }
            if let Some(j) = self.jobs.get(self.next_arrival) {
                t = t.min(j.submit);
            }
            self.advance(t);
            while let Some(&Reverse((h, kind, x))) = self.heap.peek() {
                if h != t {
                    break;
                }
                self.heap.pop();
                match kind {
                    COMPLETION => self.complete(t, x),
                    _ => self.ready(x),
                }
            }
            while let Some(j) = self.jobs.get(self.next_arrival) {
                if j.submit != t {
                    break;
                }
                self.queue.push_back(self.next_arrival);
                self.recent.push_back((t, j.nodes));
                self.recent_nodes += u64::from(j.nodes);
                self.next_arrival += 1;
            }
            self.schedule(t);
            if t == tick {
                self.tick(t);
                tick += self.p.decision_every_secs;
            }
        }
        self.advance(self.window.to.max(self.last_t));
    }

    /// Account for the time from the last event to `t`.
    fn advance(&mut self, t: i64) {
        let d = self.window.overlap(self.last_t, t) as f64;
        self.paid_secs += d * f64::from(self.paid);
        self.busy_secs += d * f64::from(self.busy);
        if d > 0.0 {
            self.peak_paid = self.peak_paid.max(self.paid);
        }
        self.last_t = self.last_t.max(t);
    }

    fn complete(&mut self, t: i64, j: usize) {
        self.finished_at = self.finished_at.max(t);
        let d = self.jobs[j].duration_secs;
        self.done.push_back((t, d));
        self.done_secs += d;
        for i in std::mem::take(&mut self.assigned[j]) {
            self.inst[i].job = None;
            self.busy -= 1;
            if self.inst[i].state == State::Ready {
                self.free.insert(i);
            }
        }
        self.running.remove(&j);
    }

    fn ready(&mut self, i: usize) {
        if self.inst[i].state == State::Booting {
            self.inst[i].state = State::Ready;
            self.free.insert(i);
        }
    }

    /// Strict FIFO: the head of the queue starts when enough Free ready
    /// instances exist (lowest ids first), else nothing behind it does.
    fn schedule(&mut self, t: i64) {
        while let Some(&j) = self.queue.front() {
            let need = self.jobs[j].nodes as usize;
            if self.free.len() < need {
                break;
            }
            self.queue.pop_front();
            let chosen: Vec<usize> = self.free.iter().copied().take(need).collect();
            for &i in &chosen {
                self.free.remove(&i);
                self.inst[i].job = Some(j);
            }
            self.busy += need as u32;
            self.assigned[j] = chosen;
            self.started[j] = Some(t);
            self.running.insert(j);
            self.heap
                .push(Reverse((t + self.jobs[j].duration_secs, COMPLETION, j)));
        }
    }

    fn nodes_of<'b>(&self, js: impl Iterator<Item = &'b usize>) -> u32 {
        js.map(|&j| self.jobs[j].nodes).sum()
    }

    /// One controller run (none for static_peak) and its row.
    fn tick(&mut self, t: i64) {
        let scored = self.window.holds(t);
        let (mut headroom, mut target) = (0, None);
        let (mut start, mut create, mut scale_in) = (0, 0, 0);
        if self.policy != JobPolicy::StaticPeak {
            headroom = self.headroom(t);
            let plan = self.plan(t, headroom);
            target = Some(plan.target);
            (start, create, scale_in) = self.apply(t, &plan, scored);
            if scored {
                self.decisions += 1;
                self.headroom_sum += u64::from(headroom);
            }
        }
        let count = |s: State| self.inst.iter().filter(|i| i.state == s).count() as u32;
        self.rows.push(JobSimRow {
            time: t,
            policy: self.policy,
            queued_nodes: self.nodes_of(self.queue.iter()),
            running_nodes: self.nodes_of(self.running.iter()),
            headroom,
            target,
            ready: count(State::Ready),
            booting: count(State::Booting),
            busy: self.busy,
            deallocated: count(State::Deallocated),
            start,
            create,
            scale_in,
        });
    }

    /// jobs_forecast: the nodes the queue is expected to need one lead time
    /// from now beyond its demand now ([`arrival_headroom`]), from what a
    /// controller can observe: the node arrivals of the last
    /// `arrival_window_secs` (a causal, naive rate) and the mean duration of
    /// the jobs that finished in it (none yet: every arrival counts on top).
    /// The lead is the start lead while enough deallocated instances are left
    /// to supply the headroom, the create lead otherwise.
    fn headroom(&mut self, t: i64) -> u32 {
        let from = t - self.p.arrival_window_secs;
        while let Some(&(a, n)) = self.recent.front() {
            if a > from {
                break;
            }
            self.recent.pop_front();
            self.recent_nodes -= u64::from(n);
        }
        while let Some(&(a, d)) = self.done.front() {
            if a > from {
                break;
            }
            self.done.pop_front();
            self.done_secs -= d;
        }
        if self.policy != JobPolicy::JobsForecast {
            return 0;
        }
        let rate = self.recent_nodes as f64 / self.p.arrival_window_secs.max(1) as f64;
        let duration =
            (!self.done.is_empty()).then(|| self.done_secs as f64 / self.done.len() as f64);
        let demand = self.nodes_of(self.queue.iter()) + self.nodes_of(self.running.iter());
        let deallocated = self
            .inst
            .iter()
            .filter(|i| i.state == State::Deallocated)
            .count() as u64;
        let by_start = arrival_headroom(demand, rate, self.p.start_lead_secs, duration);
        if u64::from(by_start) <= deallocated {
            by_start
        } else {
            arrival_headroom(demand, rate, self.p.create_lead_secs, duration)
        }
    }

    /// What a live run sees, through the real planner.
    fn plan(&self, _t: i64, headroom: u32) -> InstancePlan {
        let job = |j: usize, status| Job {
            id: self.jobs[j].id.clone(),
            queue: POOL.to_string(),
            nodes: self.jobs[j].nodes,
            status,
        };
        let jobs: Vec<Job> = self
            .queue
            .iter()
            .map(|&j| job(j, JobStatus::Queued))
            .chain(self.running.iter().map(|&j| job(j, JobStatus::Running)))
            .collect();
        let mut nodes = Vec::new();
        let mut instances = Vec::new();
        for (i, x) in self.inst.iter().enumerate() {
            let power = match x.state {
                State::Booting | State::Ready => Power::Running,
                State::Deallocated => Power::Deallocated,
                State::Deleted => continue,
            };
            if x.state == State::Ready {
                nodes.push(SchedulerNode {
                    name: i.to_string(),
                    pool: POOL.to_string(),
                    status: if x.job.is_some() {
                        NodeStatus::Busy
                    } else {
                        NodeStatus::Free
                    },
                });
            }
            instances.push(Instance {
                instance_id: i.to_string(),
                names: Vec::new(),
                power,
                protected_from_scale_in: false,
            });
        }
        let params = InstanceParams {
            min_nodes: self.p.min_nodes,
            max_nodes: self.p.max_nodes,
            headroom,
            scale_in: self.p.scale_in,
        };
        plan_instances(POOL, &jobs, &nodes, &instances, &params)
    }

    /// Apply a plan at `t`; returns (started, created, scaled in).
    fn apply(&mut self, t: i64, plan: &InstancePlan, scored: bool) -> (u32, u32, u32) {
        let id = |s: &str| s.parse::<usize>().ok();
        let (mut started, mut scaled_in) = (0, 0);
        for s in &plan.start {
            match id(s).filter(|&i| i < self.inst.len()) {
                Some(i) if self.inst[i].state == State::Deallocated => {
                    self.inst[i].state = State::Booting;
                    self.paid += 1;
                    self.heap
                        .push(Reverse((t + self.p.start_lead_secs, READY, i)));
                    started += 1;
                }
                _ => self.invalid_actions += 1,
            }
        }
        for _ in 0..plan.create {
            let i = self.inst.len();
            self.inst.push(Inst {
                state: State::Booting,
                job: None,
            });
            self.paid += 1;
            self.heap
                .push(Reverse((t + self.p.create_lead_secs, READY, i)));
        }
        for (ids, to) in [
            (&plan.deallocate, State::Deallocated),
            (&plan.delete, State::Deleted),
        ] {
            for s in ids {
                match id(s).filter(|&i| i < self.inst.len()) {
                    Some(i) if self.inst[i].job.is_some() => self.busy_removed += 1,
                    Some(i) if self.inst[i].state == State::Ready => {
                        self.free.remove(&i);
                        self.inst[i].state = to;
                        self.paid -= 1;
                        scaled_in += 1;
                    }
                    _ => self.invalid_actions += 1,
                }
            }
        }
        if scored {
            self.starts += u64::from(started);
            self.creates += u64::from(plan.create);
            self.scale_ins += u64::from(scaled_in);
        }
        (started, plan.create, scaled_in)
    }

    fn metrics(&self) -> JobPolicyMetrics {
        let mut waits: Vec<i64> = self
            .jobs
            .iter()
            .zip(&self.started)
            .filter(|(j, _)| self.window.holds(j.submit))
            .map(|(j, s)| s.map_or(0, |s| s - j.submit))
            .collect();
        waits.sort_unstable();
        let n = waits.len();
        let mean = if n == 0 {
            0.0
        } else {
            waits.iter().sum::<i64>() as f64 / n as f64
        };
        let p95 = if n == 0 {
            0
        } else {
            waits[(n * 95).div_ceil(100).max(1) - 1]
        };
        let over = waits.iter().filter(|&&w| w > 60).count();
        let hours = self.paid_secs / 3600.0;
        let busy = self.busy_secs / 3600.0;
        JobPolicyMetrics {
            policy: self.policy,
            instance_hours: hours,
            busy_hours: busy,
            utilisation: if hours > 0.0 { busy / hours } else { 0.0 },
            cost_vs_static_peak: None,
            jobs: n,
            wait_mean_s: mean,
            wait_p95_s: p95 as f64,
            wait_max_s: waits.last().copied().unwrap_or(0) as f64,
            waited_over_1m_pct: if n == 0 {
                0.0
            } else {
                100.0 * over as f64 / n as f64
            },
            starts: self.starts,
            creates: self.creates,
            scale_ins: self.scale_ins,
            busy_removed: self.busy_removed,
            invalid_actions: self.invalid_actions,
            peak_instances: self.peak_paid,
            mean_headroom: if self.decisions == 0 {
                0.0
            } else {
                self.headroom_sum as f64 / self.decisions as f64
            },
            decisions: self.decisions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str, submit: i64, duration_secs: i64, nodes: u32) -> TraceJob {
        TraceJob {
            id: id.into(),
            queue: "q".into(),
            submit,
            duration_secs,
            nodes,
        }
    }

    fn params(min: u32, policies: &[JobPolicy]) -> JobSimParams {
        JobSimParams {
            min_nodes: min,
            score_from_fraction: 0.0,
            policies: policies.to_vec(),
            ..Default::default()
        }
    }

    fn one(jobs: &[TraceJob], p: &JobSimParams) -> (JobPolicyMetrics, Vec<JobSimRow>) {
        let sim = simulate(jobs, p).unwrap();
        (sim.report.policies[0].clone(), sim.rows[0].clone())
    }

    #[test]
    fn a_job_with_no_instance_waits_exactly_the_create_lead() {
        // min 0: nothing runs; the first decision (at the submit) creates one.
        let (m, _) = one(&[job("a", 1000, 300, 1)], &params(0, &[JobPolicy::Jobs]));
        assert_eq!(m.wait_max_s, 600.0);
        assert_eq!(m.wait_mean_s, 600.0);
        assert_eq!((m.creates, m.starts), (1, 0));
        // Paid: 600 s booting + 300 s busy, then deallocated at the next tick
        // (t=1900 is on the minute grid from 1000: yes, 900 s later).
        assert!((m.instance_hours - 900.0 / 3600.0).abs() < 1e-9, "{m:?}");
        assert!((m.busy_hours - 300.0 / 3600.0).abs() < 1e-9);
        assert_eq!(m.busy_removed, 0);
    }

    #[test]
    fn a_deallocated_instance_is_started_not_created_and_waits_the_start_lead() {
        // Job a runs on the one created instance; it is deallocated once a ends;
        // job b, much later, gets it back by a start (3 min), not a create.
        let jobs = [job("a", 0, 60, 1), job("b", 3600, 60, 1)];
        let (m, rows) = one(&jobs, &params(0, &[JobPolicy::Jobs]));
        assert_eq!((m.creates, m.starts), (1, 1), "{m:?}");
        assert_eq!(m.wait_max_s, 600.0);
        assert_eq!(m.jobs, 2);
        assert_eq!(m.wait_mean_s, (600.0 + 180.0) / 2.0);
        assert!(rows.iter().any(|r| r.deallocated == 1));
        assert_eq!(m.scale_ins, 1);
        // With --scale-in-delete the instance is gone, and b waits for a new one.
        let p = JobSimParams {
            scale_in: ScaleIn::Delete,
            ..params(0, &[JobPolicy::Jobs])
        };
        let (m, _) = one(&jobs, &p);
        assert_eq!((m.creates, m.starts, m.scale_ins), (2, 0, 1));
        assert_eq!(m.wait_mean_s, 600.0);
    }

    #[test]
    fn a_busy_instance_is_never_scaled_in_even_when_demand_drops_to_zero() {
        // Min 0: one long job; every decision while it runs sees demand 1, and
        // the instance is Busy: it must stay and the job must run undisturbed.
        let jobs = [job("long", 0, 7200, 1), job("short", 0, 60, 1)];
        let (m, rows) = one(&jobs, &params(2, &[JobPolicy::Jobs]));
        assert_eq!(m.busy_removed, 0);
        assert_eq!(m.invalid_actions, 0);
        assert_eq!(m.wait_max_s, 0.0);
        // While the long job runs, its instance stays ready and busy.
        for r in rows.iter().filter(|r| (60..7200).contains(&r.time)) {
            assert_eq!((r.busy, r.running_nodes), (1, 1), "{r:?}");
            assert!(r.ready >= 1);
        }
        // Once min is 0 the idle instance goes but never the busy one.
        let (m, rows) = one(&jobs, &params(0, &[JobPolicy::Jobs]));
        assert_eq!(m.busy_removed, 0);
        // Created at 0, ready at 600; the short job ends at 660, the long one at 7800.
        for r in rows.iter().filter(|r| (660..7800).contains(&r.time)) {
            assert_eq!((r.busy, r.ready, r.booting), (1, 1, 0), "{r:?}");
        }
        assert_eq!(rows.last().unwrap().ready, 0);
    }

    #[test]
    fn the_max_is_respected_and_jobs_queue_for_it() {
        // Four 1-node jobs, max 2: two run, two wait for them to end.
        let jobs: Vec<TraceJob> = (0..4).map(|i| job(&format!("j{i}"), 0, 300, 1)).collect();
        let p = JobSimParams {
            max_nodes: 2,
            ..params(0, &[JobPolicy::Jobs, JobPolicy::JobsForecast])
        };
        let sim = simulate(&jobs, &p).unwrap();
        for (m, rows) in sim.report.policies.iter().zip(&sim.rows) {
            assert!(rows
                .iter()
                .all(|r| r.ready + r.booting + r.deallocated <= 2));
            assert!(m.peak_instances <= 2);
            assert_eq!(m.creates, 2);
            // Two wait 600 s (boot), two wait for the first two to end: 900 s.
            assert_eq!(m.wait_max_s, 900.0, "{m:?}");
        }
        // A job wider than the max could never run: refused up front.
        let e = simulate(&[job("wide", 0, 1, 3)], &p).unwrap_err();
        assert!(e.to_string().contains("job 'wide' needs 3 nodes"), "{e}");
    }

    #[test]
    fn static_peak_never_waits_and_pays_the_peak_all_the_time() {
        let jobs = [
            job("a", 0, 600, 2),
            job("b", 300, 600, 1),
            job("c", 900, 300, 1),
        ];
        assert_eq!(peak_concurrent_nodes(&jobs), 3);
        let (m, _) = one(&jobs, &params(1, &[JobPolicy::StaticPeak]));
        assert_eq!(m.wait_max_s, 0.0);
        // 3 instances over the 1200 s span.
        assert!(
            (m.instance_hours - 3.0 * 1200.0 / 3600.0).abs() < 1e-9,
            "{m:?}"
        );
        assert_eq!(
            (m.starts, m.creates, m.scale_ins, m.decisions),
            (0, 0, 0, 0)
        );
    }

    #[test]
    fn a_wide_job_at_the_head_blocks_the_queue_strict_fifo() {
        // Two ready instances, one busy for 300 s: the 2-node job waits for it,
        // and the 1-node job behind it waits too although one instance is Free.
        let jobs = [
            job("busy", 0, 300, 1),
            job("wide", 10, 60, 2),
            job("small", 20, 60, 1),
        ];
        let p = JobSimParams {
            max_nodes: 2,
            ..params(2, &[JobPolicy::Jobs])
        };
        let (m, _) = one(&jobs, &p);
        // wide starts at 300 (wait 290), small at 360 (wait 340).
        assert_eq!(m.wait_max_s, 340.0, "{m:?}");
        assert_eq!(m.wait_mean_s, (0.0 + 290.0 + 340.0) / 3.0);
    }

    #[test]
    fn the_forecast_headroom_is_the_demand_expected_one_lead_time_ahead() {
        // One-node jobs of 30 s every 150 s from 0 to 1650, window 20 min, lead 10 min.
        let jobs: Vec<TraceJob> = (0..12)
            .map(|i| job(&format!("j{i:02}"), i * 150, 30, 1))
            .collect();
        let p = JobSimParams {
            arrival_window_secs: 1200,
            // The same lead for starts and creates, whichever applies.
            start_lead_secs: 600,
            ..params(0, &[JobPolicy::JobsForecast])
        };
        let (m, rows) = one(&jobs, &p);
        let at = |t: i64| rows.iter().find(|r| r.time == t).unwrap();
        // At 0 no job has finished: every arrival counts on top of the one
        // node needed now: 1 + 0.5 + 1.645 * sqrt(0.5) = 2.66 -> 3, so 2 more.
        assert_eq!(at(0).headroom, 2);
        assert_eq!(at(0).headroom, arrival_headroom(1, 1.0 / 1200.0, 600, None));
        assert_eq!(
            at(0).target,
            Some(2 + at(0).queued_nodes + at(0).running_nodes)
        );
        // At 1200 jobs are known to last 30 s: today's node is free again
        // long before the lead is over, and the arrivals still running then
        // (8 per 1200 s * 30 s = 0.2; p95 0.94 -> 1 node) need no more than now.
        assert_eq!(at(1200).headroom, 0);
        assert_eq!(m.busy_removed, 0);
    }

    #[test]
    fn the_same_trace_gives_the_same_report() {
        let jobs: Vec<TraceJob> = (0..200)
            .map(|i| {
                job(
                    &format!("j{i}"),
                    (i * 37) % 5000,
                    60 + (i * 13) % 400,
                    1 + (i % 3) as u32,
                )
            })
            .collect();
        let p = JobSimParams {
            score_from_fraction: 0.3,
            ..JobSimParams::default()
        };
        let a = simulate(&jobs, &p).unwrap();
        let mut shuffled = jobs.clone();
        shuffled.reverse();
        let b = simulate(&shuffled, &p).unwrap();
        assert_eq!(a, b);
        for m in &a.report.policies {
            assert_eq!((m.busy_removed, m.invalid_actions), (0, 0), "{m:?}");
            assert!(m.busy_hours <= m.instance_hours + 1e-9);
            assert!(m.busy_hours + 1e-9 >= 0.0);
        }
        assert_eq!(
            a.report.policy(JobPolicy::StaticPeak).unwrap().wait_max_s,
            0.0
        );
    }

    #[test]
    fn bad_settings_are_refused() {
        let jobs = [job("a", 0, 1, 1)];
        let e = |p: JobSimParams| simulate(&jobs, &p).unwrap_err().to_string();
        assert!(e(JobSimParams {
            score_from_fraction: 1.0,
            ..Default::default()
        })
        .contains("--score-from"));
        assert!(e(JobSimParams {
            min_nodes: 5,
            max_nodes: 2,
            ..Default::default()
        })
        .contains("--min-nodes 5"));
        assert_eq!(
            simulate(&[], &JobSimParams::default()).unwrap_err(),
            JobSimError::NoJobs
        );
    }
}
