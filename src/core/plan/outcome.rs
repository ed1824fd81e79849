//! How a run ends: one [`Outcome`] for every policy and mode, with one
//! exit code each, decided by pure functions of the decision, the state the
//! target reported and what the write returned.
//!
//! A run asks [`before_write`] whether to write at all (nothing to do, held
//! for safety, a dry run), writes if told to, and turns what the write
//! returned into the outcome with [`after_write`] (which may ask for one
//! more, smaller write when a scale-out ran into the vCPU quota).

use crate::core::group::{GroupError, GroupErrorKind, GroupState};
use serde::Serialize;

/// Process exit codes, documented in the README.
pub mod exit {
    /// Success: changed, or would change on a dry run (train: published).
    pub const OK: i32 = 0;
    /// Failure: bad input, configuration, I/O or Azure error.
    pub const FAILED: i32 = 1;
    /// Usage error (unknown flag, missing value): printed by the argument parser.
    pub const USAGE: i32 = 2;
    /// train: the quality gate refused the model; the previous one stays published.
    pub const GATE_REFUSED: i32 = 3;
    /// scale: the target already has the planned size; nothing was sent.
    pub const NOTHING_TO_DO: i32 = 4;
    /// scale: held for safety, or short of plan (the vCPU quota).
    pub const HELD: i32 = 5;
}

/// How a `scale` run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The target was changed (exit 0).
    Applied,
    /// A dry run: a change was planned and not made (exit 0).
    WouldApply,
    /// The target already has the planned size (exit 4).
    NothingToDo,
    /// Held for safety: the target is busy, the forecast could not be trusted
    /// and the reactive rule kept the size, or an autoscaler-enabled pool was
    /// not to be touched (exit 5).
    Held,
    /// Changed only part of the way: the vCPU quota allowed fewer nodes than
    /// planned (exit 5; the record says why).
    Limited,
    /// A write failed; what was done before it stays done (exit 1; the
    /// record lists it with the error).
    Failed,
}

impl Outcome {
    /// The exit code a pipeline sees.
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Applied | Outcome::WouldApply => exit::OK,
            Outcome::NothingToDo => exit::NOTHING_TO_DO,
            Outcome::Held | Outcome::Limited => exit::HELD,
            Outcome::Failed => exit::FAILED,
        }
    }

    /// The name in records and logs.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::WouldApply => "would_apply",
            Outcome::NothingToDo => "nothing_to_do",
            Outcome::Held => "held",
            Outcome::Limited => "limited",
            Outcome::Failed => "failed",
        }
    }

    /// Whether the target was changed by the run.
    pub fn changed(self) -> bool {
        matches!(self, Outcome::Applied | Outcome::Limited)
    }

    /// In a few words, for people.
    pub fn describe(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::WouldApply => "would apply; nothing changed",
            Outcome::NothingToDo => "nothing to do",
            Outcome::Held => "held for safety",
            Outcome::Limited => "applied as far as the quota allows",
            Outcome::Failed => "failed",
        }
    }
}

/// How writes are made in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteRules {
    /// Plan and report; change nothing.
    pub dry_run: bool,
    /// An AKS pool with the cluster autoscaler on is not to be touched.
    pub refuse_autoscaler: bool,
}

/// What the plan asks of the target.
#[derive(Debug, Clone, PartialEq)]
pub enum Wanted {
    /// This node count.
    Count {
        nodes: u32,
        /// The recommendation before cooldowns, step limits and stabilisation.
        recommended: u32,
        /// The forecast was not used (missing, stale, drifted): a lower
        /// recommendation is then held, never applied.
        fell_back: bool,
    },
    /// Some change (instances, a VM size), or none.
    Change(bool),
}

/// Whether to write, decided before any write.
#[derive(Debug, Clone, PartialEq)]
pub enum BeforeWrite {
    /// Send the write.
    Write,
    /// End here, with this outcome and, when held, why.
    End {
        outcome: Outcome,
        held_because: Option<String>,
    },
}

/// Decide, before writing, whether the plan needs a write and may have one:
/// not when the target already matches (nothing to do; held when only a
/// blind scale-in was held back), not while another operation runs, not on
/// an autoscaler pool the run may not touch, not on a dry run.
pub fn before_write(wanted: &Wanted, state: &GroupState, rules: WriteRules) -> BeforeWrite {
    let end = |outcome, held_because: Option<&str>| BeforeWrite::End {
        outcome,
        held_because: held_because.map(str::to_string),
    };
    let same = match wanted {
        Wanted::Count {
            nodes,
            recommended,
            fell_back,
        } => {
            if *nodes == state.count && state.autoscaler.is_none() {
                let held = *fell_back && *recommended < state.count;
                return end(
                    if held {
                        Outcome::Held
                    } else {
                        Outcome::NothingToDo
                    },
                    None,
                );
            }
            state
                .autoscaler
                .is_some_and(|(min, max)| min == (*nodes).min(max))
        }
        Wanted::Change(change) => !change,
    };
    if let (Wanted::Change(_), true, true) = (wanted, same, state.is_idle()) {
        return end(Outcome::NothingToDo, None);
    }
    if !state.is_idle() {
        return BeforeWrite::End {
            outcome: Outcome::Held,
            held_because: Some(format!(
                "the target is {} (not Succeeded): another operation is running; nothing was sent",
                state.provisioning_state
            )),
        };
    }
    if state.autoscaler.is_some() && rules.refuse_autoscaler {
        return end(
            Outcome::Held,
            Some("the pool has the cluster autoscaler on and --on-autoscaler refuse: nothing was sent"),
        );
    }
    if same {
        return end(Outcome::NothingToDo, None);
    }
    if rules.dry_run {
        return end(Outcome::WouldApply, None);
    }
    BeforeWrite::Write
}

/// What to do after a node-count write returned.
#[derive(Debug, Clone, PartialEq)]
pub enum AfterWrite {
    /// Done, with this outcome.
    Done(Outcome),
    /// The scale-out ran into the vCPU quota: write again with this many
    /// nodes (as far as the quota allows: more capacity now beats none);
    /// the outcome is then [`Outcome::Limited`].
    Retry { nodes: u32, short_of_plan: String },
    /// The write failed.
    Failed(GroupError),
}

/// Turn what a node-count write of `planned` nodes (from `before`) returned
/// into the outcome, or one smaller write when the quota allows part of a
/// scale-out.
pub fn after_write<T>(before: u32, planned: u32, result: &Result<T, GroupError>) -> AfterWrite {
    let e = match result {
        Ok(_) => return AfterWrite::Done(Outcome::Applied),
        Err(e) => e,
    };
    let extra = u64::from(planned.saturating_sub(before));
    let fit = match (e.kind, e.quota) {
        (GroupErrorKind::Quota, Some(q)) => q.nodes_that_fit(extra),
        _ => 0,
    };
    if fit == 0 || fit >= extra {
        return AfterWrite::Failed(e.clone());
    }
    let nodes = before + fit as u32;
    AfterWrite::Retry {
        nodes,
        short_of_plan: format!(
            "the vCPU quota allows {fit} of the {extra} more nodes planned: scaled to {nodes}, not {planned}; ask for a quota increase ({e})"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::group::QuotaNumbers;

    fn count(nodes: u32, recommended: u32, fell_back: bool) -> Wanted {
        Wanted::Count {
            nodes,
            recommended,
            fell_back,
        }
    }

    fn ended(b: BeforeWrite) -> Outcome {
        match b {
            BeforeWrite::End { outcome, .. } => outcome,
            BeforeWrite::Write => panic!("expected no write"),
        }
    }

    #[test]
    fn every_outcome_has_one_exit_code() {
        assert_eq!(Outcome::Applied.exit_code(), 0);
        assert_eq!(Outcome::WouldApply.exit_code(), 0);
        assert_eq!(Outcome::NothingToDo.exit_code(), 4);
        assert_eq!(Outcome::Held.exit_code(), 5);
        assert_eq!(Outcome::Limited.exit_code(), 5);
        assert_eq!(Outcome::Failed.exit_code(), 1);
    }

    #[test]
    fn a_plan_the_target_already_has_is_nothing_to_do_unless_a_blind_scale_in_was_held() {
        let s = GroupState::idle(5);
        let rules = WriteRules::default();
        assert_eq!(
            ended(before_write(&count(5, 5, false), &s, rules)),
            Outcome::NothingToDo
        );
        assert_eq!(
            ended(before_write(&count(5, 3, true), &s, rules)),
            Outcome::Held
        );
        assert_eq!(
            ended(before_write(&Wanted::Change(false), &s, rules)),
            Outcome::NothingToDo
        );
        // A change held back because the target is busy is held, not "nothing to do".
        let mut busy = GroupState::idle(5);
        busy.provisioning_state = "Updating".into();
        assert_eq!(
            ended(before_write(&Wanted::Change(false), &busy, rules)),
            Outcome::Held
        );
    }

    #[test]
    fn a_busy_target_or_a_refused_autoscaler_pool_is_held_and_nothing_is_sent() {
        let mut busy = GroupState::idle(5);
        busy.provisioning_state = "Updating".into();
        match before_write(&count(7, 7, false), &busy, WriteRules::default()) {
            BeforeWrite::End {
                outcome: Outcome::Held,
                held_because: Some(why),
            } => assert!(why.contains("Updating"), "{why}"),
            other => panic!("{other:?}"),
        }
        let mut auto = GroupState::idle(5);
        auto.autoscaler = Some((2, 10));
        let refuse = WriteRules {
            dry_run: false,
            refuse_autoscaler: true,
        };
        assert_eq!(
            ended(before_write(&count(7, 7, false), &auto, refuse)),
            Outcome::Held
        );
        // minCount already at the plan: nothing to do.
        assert_eq!(
            ended(before_write(
                &count(2, 2, false),
                &auto,
                WriteRules::default()
            )),
            Outcome::NothingToDo
        );
        assert_eq!(
            before_write(&count(7, 7, false), &auto, WriteRules::default()),
            BeforeWrite::Write
        );
    }

    #[test]
    fn a_dry_run_would_apply_and_writes_nothing() {
        let dry = WriteRules {
            dry_run: true,
            refuse_autoscaler: false,
        };
        let s = GroupState::idle(5);
        assert_eq!(
            ended(before_write(&count(7, 7, false), &s, dry)),
            Outcome::WouldApply
        );
        assert_eq!(
            ended(before_write(&Wanted::Change(true), &s, dry)),
            Outcome::WouldApply
        );
    }

    #[test]
    fn a_scale_out_into_the_quota_grows_as_far_as_it_allows_and_other_errors_fail() {
        let mut quota = GroupError::new(GroupErrorKind::Quota, "quota exceeded");
        quota.quota = Some(QuotaNumbers {
            limit: 10,
            usage: 4,
            required: 8,
        });
        // 4 more nodes need 8 cores (2 each); 6 are left: 3 fit.
        match after_write::<()>(5, 9, &Err(quota.clone())) {
            AfterWrite::Retry {
                nodes,
                short_of_plan,
            } => {
                assert_eq!(nodes, 8);
                assert!(short_of_plan.contains("3 of the 4"), "{short_of_plan}");
            }
            other => panic!("{other:?}"),
        }
        quota.quota = Some(QuotaNumbers {
            limit: 10,
            usage: 10,
            required: 8,
        });
        assert!(matches!(
            after_write::<()>(5, 9, &Err(quota)),
            AfterWrite::Failed(_)
        ));
        let busy = GroupError::new(GroupErrorKind::Busy, "409");
        assert!(matches!(
            after_write::<()>(5, 9, &Err(busy)),
            AfterWrite::Failed(_)
        ));
        assert_eq!(
            after_write(5, 9, &Ok(())),
            AfterWrite::Done(Outcome::Applied)
        );
    }
}
