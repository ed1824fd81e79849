//! `mlscaler scale`: one round under the policy of the settings, or rounds
//! on a schedule (`--every`). Each policy family has its own module; all of
//! them read the same inputs ([`inputs`]), decide in the core, end in one
//! [`crate::core::plan::outcome::Outcome`] and append one decision record.
//! A round that fails is recorded here ([`FailedRecord`]); its limits on
//! Azure and the journal of its writes are in [`round`].
//!
//! - [`nodes`]: predictive, SLA band, alarm, target tracking, seasonal naive;
//! - [`jobs`]: instances of a scale set for a job scheduler;
//! - [`vertical`]: a scale set along a ladder of VM sizes.

pub mod inputs;
pub mod jobs;
pub mod nodes;
pub mod round;
pub mod vertical;

use super::exit;
use super::schedule::{run_rounds, RealPacer};
use crate::arm::{ArmError, Journal, RunLimits};
use crate::core::group::GroupError;
use crate::core::plan::outcome::Outcome;
use crate::core::time::rfc3339;
use crate::report::scale::{FailedRecord, Record};
use crate::settings::scale::{Now, Policy, ScaleSettings, TargetSpec};
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// Run one round of `scale` under the policy of the settings, and record
/// it, whatever happens: a round that fails (a target that cannot be read,
/// a write that fails, the deadline, SIGTERM) appends a failed record with
/// the class of its error and the writes it had sent (exit code 1). `Err`
/// only when the signal handler cannot be installed.
pub fn run(s: &ScaleSettings, clock: DateTime<Utc>, quiet: bool) -> Result<(i32, Record)> {
    let stop = stop_flag()?;
    Ok(run_round(s, clock, quiet, &stop, None))
}

/// The process's stop flag, set by SIGTERM or SIGINT (installed once). A
/// second signal while the flag is set ends the process at once (exit 1).
fn stop_flag() -> Result<Arc<AtomicBool>> {
    static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    if let Some(stop) = STOP.get() {
        return Ok(stop.clone());
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        // Registered first, so it sees the flag as the previous signal left it.
        signal_hook::flag::register_conditional_shutdown(sig, exit::FAILED, Arc::clone(&stop))
            .context("installing the signal handler")?;
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing the signal handler")?;
    }
    Ok(STOP.get_or_init(|| stop).clone())
}

/// One round (number `k` of a loop) with its limits (the longest wait, the
/// deadline, the stop flag), recorded whatever happens.
fn run_round(
    s: &ScaleSettings,
    clock: DateTime<Utc>,
    quiet: bool,
    stop: &Arc<AtomicBool>,
    k: Option<u64>,
) -> (i32, Record) {
    let t0 = Instant::now();
    let journal = Arc::new(Journal::default());
    let current = round::Round {
        limits: RunLimits {
            max_wait: s.run.max_wait,
            budget: s.run.deadline,
            started: t0,
            stop: stop.clone(),
        },
        journal: journal.clone(),
    };
    match round::with(current, || policy_round(s, clock, quiet)) {
        Ok(done) => done,
        Err(e) => failed(s, clock, &e, journal.events(), t0, k),
    }
}

fn policy_round(s: &ScaleSettings, clock: DateTime<Utc>, quiet: bool) -> Result<(i32, Record)> {
    Ok(match s.policy {
        Policy::Jobs => {
            let (code, r) = jobs::run(s, clock, quiet)?;
            (code, Record::Jobs(Box::new(r)))
        }
        Policy::Vertical => {
            let (code, r) = vertical::run(s, clock, quiet)?;
            (code, Record::Vertical(Box::new(r)))
        }
        Policy::Predictive
        | Policy::Sla
        | Policy::Alarm
        | Policy::TargetTracking
        | Policy::SeasonalNaive => {
            let (code, r) = nodes::run(s, clock, quiet)?;
            (code, Record::Nodes(Box::new(r)))
        }
    })
}

/// The record of a round that ended in `e`: appended to the decision log
/// (when that fails too, both errors are said), and the error on standard
/// error.
fn failed(
    s: &ScaleSettings,
    clock: DateTime<Utc>,
    e: &anyhow::Error,
    writes: Vec<crate::arm::WriteEvent>,
    t0: Instant,
    k: Option<u64>,
) -> (i32, Record) {
    let mut error = format!("{e:#}");
    let record = FailedRecord {
        mlscaler_version: env!("CARGO_PKG_VERSION"),
        now: match s.run.now {
            Now::At(t) => rfc3339(t),
            _ => rfc3339(clock.timestamp()),
        },
        target: match &s.target {
            TargetSpec::Arm(id) => id.to_string(),
            TargetSpec::Demo | TargetSpec::Sim(_) => "simulated pool".into(),
        },
        policy: s.policy.name().to_string(),
        dry_run: s.run.dry_run,
        outcome: Outcome::Failed,
        error_class: error_class(e),
        error: error.clone(),
        writes,
        duration_secs: t0.elapsed().as_secs_f64(),
    };
    if let Err(log) = inputs::append_record(s, &record) {
        error = format!("{error}; and the failed record could not be appended: {log:#}");
    }
    tracing::error!(class = record.error_class, error = %error, "the run failed");
    match k {
        // A failed round of a loop is said, and the next round runs as planned.
        Some(k) => eprintln!("round {k} failed: {error}"),
        None => eprintln!("error: {error}"),
    }
    (
        Outcome::Failed.exit_code(),
        Record::Failed(Box::new(record)),
    )
}

/// The class of a failed round's error, for its record: the target's
/// ([`crate::core::group::GroupErrorKind::name`]), `clock_skew`, `storage`
/// (state, decision log, data or models in Blob Storage), else `other`.
pub fn error_class(e: &anyhow::Error) -> &'static str {
    for cause in e.chain() {
        if let Some(g) = cause.downcast_ref::<GroupError>() {
            return g.kind.name();
        }
        if let Some(a) = cause.downcast_ref::<ArmError>() {
            return a.kind().name();
        }
        if cause.downcast_ref::<inputs::ClockSkew>().is_some() {
            return "clock_skew";
        }
        if cause.downcast_ref::<crate::store::StoreError>().is_some()
            || cause.downcast_ref::<crate::azure::AzureError>().is_some()
        {
            return "storage";
        }
    }
    "other"
}

/// With `--published-profile`: switch to a newer published pair before a
/// round; when the registry cannot be read or the new profile does not
/// check, keep the pair the loop runs and say why.
fn newest_pair(f: &mut crate::app::published::Follow, current: &mut ScaleSettings, quiet: bool) {
    let was = f.version().to_string();
    match f.newer(quiet) {
        Ok(Some(next)) => {
            tracing::info!(from = %was, to = %f.version(), "a newer model and profile were published: the loop runs them from this round");
            *current = next;
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(
            version = %was,
            error = %format!("{e:#}"),
            "cannot read the published pair: this round runs the one it ran before"
        ),
    }
}

/// `scale --every`: run rounds on a schedule until SIGTERM/SIGINT or
/// `--rounds`. A signal ends the round in progress at its next wait or
/// request (no further write is sent; the round is recorded, with class
/// `interrupted` when it had not finished), then the loop. Each round's
/// record goes to `report`; a failed round is logged and does not stop the
/// loop. Exit code: 0, or 1 if the last round failed (a round interrupted by
/// the stop signal does not count as failed).
pub fn run_loop(
    s: &ScaleSettings,
    mut follow: Option<crate::app::published::Follow>,
    quiet: bool,
    mut report: impl FnMut(&Record),
) -> Result<i32> {
    let every = s.run.every.context("loop mode needs --every")?;
    let jitter = s.run.jitter;
    let stop = stop_flag()?;
    tracing::info!(
        every_secs = every.secs(),
        jitter_secs = jitter.secs(),
        "loop mode: reconciling on a schedule until SIGTERM/SIGINT"
    );
    let mut pacer = RealPacer::new();
    let mut current = s.clone();
    let mut interrupted = false;
    let ended = run_rounds(
        every.to_std(),
        jitter.to_std(),
        s.run.rounds,
        &stop,
        &mut pacer,
        |round| {
            if let Some(f) = follow.as_mut() {
                // Round 1 runs the pair the process started with.
                if round > 1 {
                    newest_pair(f, &mut current, quiet);
                }
            }
            let (code, record) = run_round(&current, Utc::now(), quiet, &stop, Some(round));
            // Per-round outcomes (nothing to do, held, failed part way) are
            // in the logs and records; the loop itself goes on.
            tracing::info!(round, outcome = %record.outcome(), "round done");
            report(&record);
            interrupted = record.error_class() == Some("interrupted");
            code != exit::FAILED || interrupted
        },
    );
    let (round, failed) = (ended.rounds, ended.failed);
    let last_code = if ended.last_failed {
        exit::FAILED
    } else {
        exit::OK
    };
    let how = if ended.by_signal {
        "on a signal"
    } else {
        "after the last round"
    };
    tracing::info!(rounds = round, failed, "loop stopped {how}");
    if !quiet {
        let cut = if interrupted {
            " (the last one stopped part way, recorded as interrupted)"
        } else {
            ""
        };
        eprintln!("stopped {how} after {round} round(s), {failed} failed{cut}");
    }
    Ok(last_code)
}
