//! `mlscaler scale`: one round under the policy of the settings, or rounds
//! on a schedule (`--every`). Each policy family has its own module; all of
//! them read the same inputs ([`inputs`]), decide in the core, end in one
//! [`crate::core::plan::outcome::Outcome`] and append one decision record.
//!
//! - [`nodes`]: predictive, SLA band, alarm, target tracking, seasonal naive;
//! - [`jobs`]: instances of a scale set for a job scheduler;
//! - [`vertical`]: a scale set along a ladder of VM sizes.

pub mod inputs;
pub mod jobs;
pub mod nodes;
pub mod vertical;

use super::exit;
use super::schedule::{run_rounds, RealPacer};
use crate::report::scale::Record;
use crate::settings::scale::{Policy, ScaleSettings};
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

/// Run one round of `scale` under the policy of the settings. An `Err`
/// means the target was not changed by this round.
pub fn run(s: &ScaleSettings, clock: DateTime<Utc>, quiet: bool) -> Result<(i32, Record)> {
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

/// `scale --every`: run [`run`] on a schedule until SIGTERM/SIGINT (checked
/// between rounds, so a round always finishes its writes) or `--rounds`.
/// Each round's record goes to `report`; a failed round is logged and does
/// not stop the loop. Exit code: 0, or 1 if the last round failed.
pub fn run_loop(s: &ScaleSettings, quiet: bool, mut report: impl FnMut(&Record)) -> Result<i32> {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    let every = s.run.every.context("loop mode needs --every")?;
    let jitter = s.run.jitter;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing the signal handler")?;
    }
    tracing::info!(
        every_secs = every.secs(),
        jitter_secs = jitter.secs(),
        "loop mode: reconciling on a schedule until SIGTERM/SIGINT"
    );
    let mut pacer = RealPacer::new();
    let ended = run_rounds(
        every.to_std(),
        jitter.to_std(),
        s.run.rounds,
        &stop,
        &mut pacer,
        |round| match run(s, Utc::now(), quiet) {
            Ok((code, record)) => {
                // Per-round outcomes (nothing to do, held, failed part way) are
                // in the logs and records; the loop itself goes on.
                tracing::info!(round, outcome = %record.outcome(), "round done");
                report(&record);
                code != exit::FAILED
            }
            Err(e) => {
                tracing::error!(round, error = %format!("{e:#}"), "round failed; the next round runs as planned");
                if !quiet {
                    eprintln!("round {round} failed: {e:#}");
                }
                false
            }
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
        eprintln!("stopped {how} after {round} round(s), {failed} failed");
    }
    Ok(last_code)
}
