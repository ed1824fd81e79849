//! Scale by instance for job schedulers (the PintaScaler pattern for HPC): a
//! scheduler knows exactly how many nodes its queued and running jobs need
//! and which nodes are busy; the plan names the scale set instances to start,
//! to create, and to deallocate or delete, and never touches a busy one.
//!
//! Pure: the documents and the instance list go in, a plan comes out.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// A job as the scheduler reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub queue: String,
    /// Nodes the job needs.
    pub nodes: u32,
    pub status: JobStatus,
}

/// Job states; only queued and running jobs need nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobStatus {
    Queued,
    Hold,
    Running,
    Finished,
    Failed,
}

/// A node as the scheduler reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedulerNode {
    /// Host name, VM name or instance id of the scale set instance.
    pub name: String,
    pub pool: String,
    pub status: NodeStatus,
}

/// Whether a node runs work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeStatus {
    Free,
    Busy,
}

/// A scale set instance as ARM reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub instance_id: String,
    /// Names the scheduler may know it by (VM name, computer name).
    pub names: Vec<String>,
    pub power: Power,
    pub protected_from_scale_in: bool,
}

/// Power states that matter here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Power {
    /// Running or starting: counts as capacity.
    Running,
    /// Deallocated or stopped: can be started (faster than creating).
    Deallocated,
    /// Anything else (creating, deleting, unknown): left alone.
    Other,
}

/// What to do with a scale-in candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleIn {
    Deallocate,
    Delete,
}

/// The plan: instance ids per action, in ascending order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstancePlan {
    /// Nodes the queue's queued and running jobs need (plus headroom).
    pub demand: u32,
    /// Instances running now.
    pub running: u32,
    /// The running count the plan reaches.
    pub target: u32,
    pub start: Vec<String>,
    /// New instances to create (by raising the scale set's capacity).
    pub create: u32,
    pub deallocate: Vec<String>,
    pub delete: Vec<String>,
    /// Busy instances to protect from scale-in by others.
    pub protect: Vec<String>,
    /// Why, for people.
    pub reasons: Vec<String>,
}

impl InstancePlan {
    /// Whether the plan changes anything.
    pub fn is_change(&self) -> bool {
        !(self.start.is_empty()
            && self.create == 0
            && self.deallocate.is_empty()
            && self.delete.is_empty()
            && self.protect.is_empty())
    }
}

/// Settings of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceParams {
    pub min_nodes: u32,
    pub max_nodes: u32,
    /// Extra nodes on top of the jobs' demand (e.g. from forecast arrivals).
    pub headroom: u32,
    pub scale_in: ScaleIn,
}

/// Nodes the queued and running jobs of `queue` need.
pub fn queue_demand(queue: &str, jobs: &[Job]) -> u32 {
    jobs.iter()
        .filter(|j| j.queue == queue && matches!(j.status, JobStatus::Queued | JobStatus::Running))
        .map(|j| j.nodes)
        .sum()
}

/// z for the 95th percentile of a normal approximation to Poisson arrivals.
pub const ARRIVAL_Z95: f64 = 1.645;

/// Headroom from forecast arrivals: the nodes the queue is expected to need
/// one lead time from now beyond what it needs now (`demand`), since nodes
/// asked for now are ready only then.
///
/// With arrivals of `rate` nodes per second and a mean job duration `W`, the
/// jobs still running at `t + lead` are the current ones that outlive the
/// lead (`demand * max(0, 1 - lead / W)`, jobs ending uniformly) plus the
/// arrivals of the last `min(lead, W)` before it (`rate * min(lead, W)`,
/// Little's law over the window); the 95th percentile adds
/// [`ARRIVAL_Z95`] standard deviations of the Poisson arrivals. Without a
/// duration every job is taken to outlive the lead: current demand plus every
/// arrival, an upper bound.
pub fn arrival_headroom(
    demand: u32,
    rate_nodes_per_sec: f64,
    lead_secs: i64,
    mean_duration_secs: Option<f64>,
) -> u32 {
    let lead = lead_secs.max(0) as f64;
    let rate = if rate_nodes_per_sec.is_finite() {
        rate_nodes_per_sec.max(0.0)
    } else {
        0.0
    };
    let w = mean_duration_secs.filter(|w| w.is_finite() && *w > 0.0);
    let (survivors, window) = match w {
        Some(w) => (f64::from(demand) * (1.0 - lead / w).max(0.0), lead.min(w)),
        None => (f64::from(demand), lead),
    };
    let arriving = rate * window;
    let p95 = survivors + arriving + ARRIVAL_Z95 * arriving.sqrt();
    let need = (p95 - 1e-9).ceil().max(0.0);
    (need - f64::from(demand)).clamp(0.0, f64::from(u32::MAX)) as u32
}

/// Plan the instances of one scale set serving `queue`.
pub fn plan_instances(
    queue: &str,
    jobs: &[Job],
    nodes: &[SchedulerNode],
    instances: &[Instance],
    p: &InstanceParams,
) -> InstancePlan {
    let demand = queue_demand(queue, jobs).saturating_add(p.headroom);
    let busy_names: BTreeSet<&str> = nodes
        .iter()
        .filter(|n| n.status == NodeStatus::Busy)
        .map(|n| n.name.as_str())
        .collect();
    let free_names: BTreeSet<&str> = nodes
        .iter()
        .filter(|n| n.status == NodeStatus::Free)
        .map(|n| n.name.as_str())
        .collect();
    let known_as = |i: &Instance, set: &BTreeSet<&str>| {
        set.contains(i.instance_id.as_str()) || i.names.iter().any(|n| set.contains(n.as_str()))
    };
    let mut sorted: Vec<&Instance> = instances.iter().collect();
    sorted.sort_by_key(|i| {
        (
            i.instance_id.parse::<u64>().unwrap_or(u64::MAX),
            i.instance_id.clone(),
        )
    });
    let running: Vec<&Instance> = sorted
        .iter()
        .copied()
        .filter(|i| i.power == Power::Running)
        .collect();
    let target = demand.clamp(p.min_nodes, p.max_nodes.max(p.min_nodes));
    let mut plan = InstancePlan {
        demand,
        running: running.len() as u32,
        target,
        ..Default::default()
    };
    plan.reasons.push(format!(
        "queue '{queue}': queued and running jobs need {} node(s){}; {} running; target {target} (min {}, max {})",
        demand - p.headroom.min(demand),
        if p.headroom > 0 { format!(" + {} headroom", p.headroom) } else { String::new() },
        running.len(),
        p.min_nodes,
        p.max_nodes
    ));
    for i in &running {
        if known_as(i, &busy_names) && !i.protected_from_scale_in {
            plan.protect.push(i.instance_id.clone());
        }
    }
    let have = running.len() as u32;
    if target > have {
        scale_out(&mut plan, &sorted, instances.len() as u32, have, p);
    } else if target < have {
        let free = |i: &Instance| known_as(i, &free_names) && !known_as(i, &busy_names);
        scale_in(&mut plan, &running, have, free, p);
    } else {
        plan.reasons
            .push("running instances match the demand".into());
    }
    if !plan.protect.is_empty() {
        plan.reasons.push(format!(
            "protect {} busy instance(s) from scale-in",
            plan.protect.len()
        ));
    }
    plan
}

/// Start deallocated instances first (they boot faster), then create, up
/// to the scale set's maximum (which counts instances in every state).
fn scale_out(
    plan: &mut InstancePlan,
    sorted: &[&Instance],
    instances: u32,
    have: u32,
    p: &InstanceParams,
) {
    let mut need = plan.target - have;
    for i in sorted.iter().filter(|i| i.power == Power::Deallocated) {
        if need == 0 {
            break;
        }
        plan.start.push(i.instance_id.clone());
        need -= 1;
    }
    let room = p.max_nodes.saturating_sub(instances);
    plan.create = need.min(room);
    plan.reasons.push(format!(
        "scale out by {}: start {} deallocated instance(s) first (they boot faster), create {}",
        plan.target - have,
        plan.start.len(),
        plan.create
    ));
    if plan.create < need {
        plan.reasons.push(format!(
            "{} more would exceed the scale set's maximum of {} instances",
            need - plan.create,
            p.max_nodes
        ));
    }
}

/// Remove only instances the scheduler reports Free: never a Busy one, never
/// one it does not know; the newest first.
fn scale_in(
    plan: &mut InstancePlan,
    running: &[&Instance],
    have: u32,
    free: impl Fn(&Instance) -> bool,
    p: &InstanceParams,
) {
    let surplus = (have - plan.target) as usize;
    let mut chosen: Vec<String> = running
        .iter()
        .rev()
        .filter(|i| free(i))
        .take(surplus)
        .map(|i| i.instance_id.clone())
        .collect();
    chosen.sort_by_key(|id| (id.parse::<u64>().unwrap_or(u64::MAX), id.clone()));
    plan.reasons.push(format!(
        "scale in by {surplus}: {} instance(s) the scheduler reports Free will be {}",
        chosen.len(),
        match p.scale_in {
            ScaleIn::Deallocate => "deallocated",
            ScaleIn::Delete => "deleted",
        }
    ));
    if chosen.len() < surplus {
        plan.reasons.push(format!(
            "{} fewer: the other running instances are busy or unknown to the scheduler",
            surplus - chosen.len()
        ));
    }
    match p.scale_in {
        ScaleIn::Deallocate => plan.deallocate = chosen,
        ScaleIn::Delete => plan.delete = chosen,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(id: &str, power: Power) -> Instance {
        Instance {
            instance_id: id.into(),
            names: vec![format!("vmss_{id}")],
            power,
            protected_from_scale_in: false,
        }
    }
    fn job(nodes: u32, status: JobStatus) -> Job {
        Job {
            id: format!("j{nodes}"),
            queue: "gpu".into(),
            nodes,
            status,
        }
    }
    fn node(name: &str, status: NodeStatus) -> SchedulerNode {
        SchedulerNode {
            name: name.into(),
            pool: "gpu".into(),
            status,
        }
    }
    const P: InstanceParams = InstanceParams {
        min_nodes: 1,
        max_nodes: 6,
        headroom: 0,
        scale_in: ScaleIn::Deallocate,
    };

    #[test]
    fn deallocated_instances_start_before_new_ones_are_created_up_to_the_max() {
        let instances = [
            inst("0", Power::Running),
            inst("1", Power::Deallocated),
            inst("2", Power::Deallocated),
        ];
        let jobs = [
            job(4, JobStatus::Queued),
            job(1, JobStatus::Running),
            job(9, JobStatus::Hold),
            job(7, JobStatus::Finished),
        ];
        let plan = plan_instances("gpu", &jobs, &[], &instances, &P);
        assert_eq!(plan.demand, 5);
        assert_eq!(plan.start, ["1", "2"]);
        assert_eq!(plan.create, 2);
        // Demand of 9 with a max of 6: 1 running + 2 started + 3 created.
        let plan = plan_instances("gpu", &[job(9, JobStatus::Queued)], &[], &instances, &P);
        assert_eq!((plan.target, plan.start.len(), plan.create), (6, 2, 3));
        // Instances in other states count against the max too: only 1 more fits.
        let crowded = [
            inst("0", Power::Running),
            inst("1", Power::Other),
            inst("2", Power::Other),
            inst("3", Power::Other),
            inst("4", Power::Other),
        ];
        let plan = plan_instances("gpu", &[job(9, JobStatus::Queued)], &[], &crowded, &P);
        assert_eq!((plan.start.len(), plan.create), (0, 1));
        assert!(
            plan.reasons.iter().any(|r| r.contains("maximum of 6")),
            "{:?}",
            plan.reasons
        );
    }

    #[test]
    fn only_free_instances_are_scaled_in_and_busy_ones_are_protected() {
        let instances = [
            inst("0", Power::Running),
            inst("1", Power::Running),
            inst("2", Power::Running),
            inst("3", Power::Running),
        ];
        let nodes = [
            node("vmss_0", NodeStatus::Busy),
            node("vmss_1", NodeStatus::Free),
            node("2", NodeStatus::Busy),
        ];
        // One job of one node: three could go, but only instance 1 is Free (3 is unknown to the scheduler).
        let plan = plan_instances("gpu", &[job(1, JobStatus::Running)], &nodes, &instances, &P);
        assert_eq!(plan.deallocate, ["1"]);
        assert_eq!(plan.protect, ["0", "2"]);
        assert!(
            plan.reasons.iter().any(|r| r.contains("busy or unknown")),
            "{:?}",
            plan.reasons
        );
        let delete = InstanceParams {
            scale_in: ScaleIn::Delete,
            ..P
        };
        let plan = plan_instances(
            "gpu",
            &[job(1, JobStatus::Running)],
            &nodes,
            &instances,
            &delete,
        );
        assert_eq!(
            (plan.delete.as_slice(), plan.deallocate.len()),
            (["1".to_string()].as_slice(), 0)
        );
    }

    #[test]
    fn arrival_headroom_counts_the_jobs_still_running_one_lead_time_ahead() {
        // 6 nodes per minute, jobs of 3 minutes, lead 10 minutes, 20 nodes busy now:
        // all current jobs are done by then, 18 of the arrivals still run
        // (Little's law), p95 = 18 + 1.645 * sqrt(18) = 24.98 -> 25, so 5 more.
        assert_eq!(arrival_headroom(20, 0.1, 600, Some(180.0)), 5);
        // A short lead: 2 of 3 minutes of current jobs survive (13.33), 6 arrive
        // (p95 6 + 4.03): 23.4 -> 24, 4 more.
        assert_eq!(arrival_headroom(20, 0.1, 60, Some(180.0)), 4);
        // Expected demand below today's: no headroom (scale-in is the planner's job).
        assert_eq!(arrival_headroom(40, 0.1, 600, Some(180.0)), 0);
        // Without a duration every arrival counts on top: 60 + 1.645 * sqrt(60) = 72.7 -> 73.
        assert_eq!(arrival_headroom(20, 0.1, 600, None), 73);
        assert_eq!(arrival_headroom(3, 0.0, 600, None), 0);
        assert_eq!(arrival_headroom(3, f64::NAN, 600, Some(f64::NAN)), 0);
    }

    #[test]
    fn other_queues_do_not_count_and_the_minimum_holds() {
        let instances = [inst("0", Power::Running), inst("1", Power::Running)];
        let nodes = [
            node("vmss_0", NodeStatus::Free),
            node("vmss_1", NodeStatus::Free),
        ];
        let other = Job {
            queue: "cpu".into(),
            ..job(5, JobStatus::Queued)
        };
        let plan = plan_instances("gpu", &[other], &nodes, &instances, &P);
        assert_eq!(plan.target, 1);
        assert_eq!(plan.deallocate, ["1"], "the highest id goes first");
        let same = plan_instances("gpu", &[job(2, JobStatus::Queued)], &nodes, &instances, &P);
        assert!(!same.is_change());
    }
}
