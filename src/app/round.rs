//! One `scale` round under any policy, so a single run and the `--every`
//! loop go through the same door: predictive, alarm and SLA produce a
//! [`ScaleRecord`], jobs a [`JobsRecord`], vertical a [`VerticalRecord`].

use super::jobs::{self, JobsRecord};
use super::scale::{self, ScaleRecord};
use super::vertical::{self, VerticalRecord};
use crate::cli::ScaleArgs;
use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// The record of one round, serialized exactly as the policy's own record.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Record {
    Nodes(Box<ScaleRecord>),
    Jobs(Box<JobsRecord>),
    Vertical(Box<VerticalRecord>),
}

impl Record {
    /// The record as text for people.
    pub fn render_text(&self) -> String {
        match self {
            Record::Nodes(r) => scale::render_text(r),
            Record::Jobs(r) => jobs::render_text(r),
            Record::Vertical(r) => vertical::render_text(r),
        }
    }

    /// What the round did, in a few words for the logs.
    pub fn outcome(&self) -> String {
        match self {
            Record::Nodes(r) => format!(
                "{:?}: {} -> {} nodes",
                r.outcome,
                r.before.count,
                r.decision.nodes().get()
            ),
            Record::Jobs(r) => format!(
                "{}: {} -> {} running instances",
                r.outcome, r.plan.running, r.plan.target
            ),
            Record::Vertical(r) => match &r.decision {
                crate::core::vertical::VerticalDecision::Resize { from, to, .. } => {
                    format!("{}: {from} -> {to}", r.outcome)
                }
                crate::core::vertical::VerticalDecision::Hold { size, .. } => {
                    format!("{}: {size}", r.outcome)
                }
            },
        }
    }
}

/// Run one round of `scale` under the policy of `args`. An `Err` means the
/// target was not changed by this round.
pub fn run(args: &ScaleArgs, clock: DateTime<Utc>, quiet: bool) -> Result<(i32, Record)> {
    Ok(match args.policy.as_str() {
        "jobs" => {
            let (code, r) = jobs::run(args, clock, quiet, || scale::arm_client(args))?;
            (code, Record::Jobs(Box::new(r)))
        }
        "vertical" => {
            let (code, r) = vertical::run(args, clock, quiet, || scale::arm_client(args))?;
            (code, Record::Vertical(Box::new(r)))
        }
        _ => {
            let (code, r) = scale::run(args, clock, quiet)?;
            (code, Record::Nodes(Box::new(r)))
        }
    })
}
