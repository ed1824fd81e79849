//! The commands, one module each: wiring of sources, the core, targets and
//! stores, with checked settings ([`crate::settings`]) in and a result out.
//! Everything that decides lives in [`crate::core`]; everything for people
//! in [`crate::report`]; everything that talks to the outside world in
//! [`crate::ingest`], [`crate::store`], [`crate::azure`] and [`crate::arm`].
//!
//! - [`train`], [`backtest`] (with [`backtest_jobs`], [`backtest_vertical`], [`backtest_sla`]),
//!   [`scale`], [`tune`], [`inspect`], [`config`]: the commands;
//! - [`source`], [`storage`]: reading data and opening stores;
//! - [`published`]: the profile published with a model, for
//!   `--published-profile`, applied before the settings are checked;
//! - [`schedule`]: the loop mode's schedule; [`ui`]: progress bars.

pub mod backtest;
pub mod backtest_jobs;
pub mod backtest_sla;
pub mod backtest_vertical;
pub mod config;
pub mod demo;
pub mod inspect;
pub mod published;
pub mod scale;
pub mod schedule;
pub mod source;
pub mod storage;
pub mod train;
pub mod tune;
pub mod ui;

/// Process exit codes, documented in the README (one table for every command).
pub use crate::core::plan::outcome::exit;

use crate::settings::backtest::Mode;
use crate::settings::{Command, Output};
use serde::Serialize;
use std::collections::BTreeMap;

/// Run a command with its checked settings and print its result: JSON for
/// pipelines, text for people. Returns the exit code.
pub fn run(
    command: &Command,
    out: Output,
    follow: Option<published::Follow>,
) -> anyhow::Result<i32> {
    use crate::report;
    let now = chrono::Utc::now();
    match command {
        Command::Train(s) => {
            let (code, summary) = train::run(s, now, out.quiet)?;
            emit(out, &summary, || report::train::render_text(&summary))?;
            Ok(code)
        }
        Command::Backtest(s) => match &s.mode {
            Mode::Jobs(_) => {
                let (code, summary) = backtest_jobs::run(s, out.quiet)?;
                emit(out, &summary, || {
                    report::backtest_jobs::render_text(&summary)
                })?;
                Ok(code)
            }
            Mode::Vertical(_) => {
                let (code, summary) = backtest_vertical::run(s, out.quiet)?;
                emit(out, &summary, || {
                    report::backtest_vertical::render_text(&summary)
                })?;
                Ok(code)
            }
            Mode::Sla => {
                let (code, summary) = backtest_sla::run(s, out.quiet)?;
                emit(out, &summary, || {
                    report::backtest_sla::render_text(&summary)
                })?;
                Ok(code)
            }
            Mode::Nodes(_) => {
                let (code, summary) = backtest::run(s, out.quiet)?;
                emit(out, &summary, || report::backtest::render_text(&summary))?;
                Ok(code)
            }
        },
        Command::Scale(s) if s.run.every.is_some() => {
            scale::run_loop(s, follow, out.quiet, |record| {
                // One record per round: a JSON line each for pipelines, the text for people.
                if out.json {
                    println!("{}", serde_json::to_string(record).unwrap_or_default());
                } else if !out.quiet {
                    print!("{}", record.render_text());
                }
            })
        }
        Command::Scale(s) => {
            let (code, record) = scale::run(s, now, out.quiet)?;
            emit(out, &record, || record.render_text())?;
            Ok(code)
        }
        Command::Tune(s) => {
            let (code, summary) = tune::run(s, out.quiet)?;
            emit(out, &summary, || report::tune::render_text(&summary))?;
            Ok(code)
        }
        Command::Inspect(s) => {
            let inspected = inspect::run(s)?;
            emit(out, &inspected, || report::inspect::render_text(&inspected))?;
            Ok(exit::OK)
        }
        Command::ConfigCheck(file) => config::run(file.as_ref(), out),
        Command::ConfigRole(scopes) => {
            let role = crate::arm::operations::custom_role(scopes);
            println!("{}", serde_json::to_string_pretty(&role)?);
            Ok(exit::OK)
        }
    }
}

/// Print a result: JSON for pipelines, text for people (nothing with
/// --quiet, except that JSON is always printed when asked for).
/// A reader that went away (`mlscaler ... | head`) is not an error: what it
/// did not read is dropped.
fn emit<T: Serialize>(out: Output, value: &T, text: impl FnOnce() -> String) -> anyhow::Result<()> {
    use std::io::Write as _;
    let body = if out.json {
        serde_json::to_string_pretty(value)? + "\n"
    } else if !out.quiet {
        text()
    } else {
        return Ok(());
    };
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(body.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Logs on standard error: warnings by default, more with -v/-vv, errors
/// only with --quiet; `RUST_LOG` overrides.
pub fn init_logging(out: Output) {
    use tracing_subscriber::EnvFilter;
    let default = match (out.quiet, out.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "mlscaler=debug,info",
        (false, _) => "mlscaler=trace,debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour(
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
            std::env::var_os("NO_COLOR").as_deref(),
        ))
        .with_writer(std::io::stderr);
    if out.json_logs {
        builder.json().flatten_event(true).init();
    } else {
        builder.with_target(false).init();
    }
}

/// Colour in logs only on a terminal, and not when `NO_COLOR` is set to
/// anything but the empty string (<https://no-color.org>).
fn colour(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// The class of an error that ended a command, for its JSON document: the
/// classes of `scale`'s failed records (the target's, `clock_skew`,
/// `storage`), else `other`.
pub fn error_class(e: &anyhow::Error) -> &'static str {
    scale::error_class(e)
}

/// A command's summary with the files it wrote and the seconds it took.
pub trait Outputs: Serialize {
    fn outputs(&mut self) -> (&mut BTreeMap<String, String>, &mut BTreeMap<String, f64>);
}

macro_rules! outputs {
    ($($t:ty),*) => {$(
        impl Outputs for $t {
            fn outputs(&mut self) -> (&mut BTreeMap<String, String>, &mut BTreeMap<String, f64>) {
                (&mut self.files, &mut self.seconds)
            }
        }
    )*};
}
outputs!(
    crate::report::backtest::BacktestSummary,
    crate::report::backtest_jobs::Summary,
    crate::report::backtest_sla::Summary,
    crate::report::backtest_vertical::Summary,
    crate::report::tune::TuneSummary
);

/// Finish a summary: `seconds.total` since `t0`, then, with `--report`, the
/// summary as JSON (naming itself in `files.report`), so the report holds
/// what the command prints.
pub fn finish<S: Outputs>(
    summary: &mut S,
    report: Option<&std::path::Path>,
    t0: std::time::Instant,
) -> anyhow::Result<()> {
    let (files, seconds) = summary.outputs();
    seconds.insert("total".into(), t0.elapsed().as_secs_f64());
    if let Some(p) = report {
        files.insert("report".into(), p.display().to_string());
        write_atomic(p, &serde_json::to_vec_pretty(summary)?)?;
    }
    Ok(())
}

/// Write through a temporary file in the same folder and rename, so a reader
/// never sees half a file.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let name = path
        .file_name()
        .map_or("out".into(), |n| n.to_string_lossy());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("{}: cannot write", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("{}: cannot write", path.display()))
}

#[cfg(test)]
mod tests {
    use super::colour;
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some(OsStr::new(""))));
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(!colour(false, None));
    }
}
