//! The `mlscaler` binary: parse arguments, set up logging, run one command,
//! print its result and map the outcome to an exit code (see the README).

use anyhow::Result;
use clap::Parser;
use mlscaler::app::{self, exit};
use mlscaler::cli::{BacktestMode, Cli, Command, LogFormat, OutputFormat};
use serde::Serialize;
use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let file = match mlscaler::config::config_path(&argv)
        .map(|p| mlscaler::config::ConfigFile::load(&p))
    {
        Some(Ok(f)) => Some(f),
        Some(Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(exit::FAILED as u8);
        }
        None => None,
    };
    let argv = match &file {
        Some(f) => match mlscaler::config::apply(argv, f) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(exit::FAILED as u8);
            }
        },
        None => argv,
    };
    let cli = Cli::parse_from(argv);
    init_tracing(&cli);
    match run(&cli, file.as_ref()) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            // `{:#}` prints the whole context chain on one line: "what: why: cause".
            tracing::debug!(error = ?e, "command failed");
            eprintln!("error: {e:#}");
            ExitCode::from(exit::FAILED as u8)
        }
    }
}

fn run(cli: &Cli, file: Option<&mlscaler::config::ConfigFile>) -> Result<i32> {
    let now = chrono::Utc::now();
    match &cli.command {
        Command::Train(args) => {
            let (code, summary) = app::train::run(args, now, cli.quiet)?;
            emit(cli, &summary, || app::train::render_text(&summary))?;
            Ok(code)
        }
        Command::Backtest(args) if args.mode == BacktestMode::Jobs => {
            let (code, summary) = app::backtest_jobs::run(args, cli.quiet)?;
            emit(cli, &summary, || app::backtest_jobs::render_text(&summary))?;
            Ok(code)
        }
        Command::Backtest(args) if args.mode == BacktestMode::Vertical => {
            let (code, summary) = app::backtest_vertical::run(args, cli.quiet)?;
            emit(cli, &summary, || {
                app::backtest_vertical::render_text(&summary)
            })?;
            Ok(code)
        }
        Command::Backtest(args) => {
            let (code, summary) = app::backtest::run(args, cli.quiet)?;
            emit(cli, &summary, || app::backtest::render_text(&summary))?;
            Ok(code)
        }
        Command::Scale(args) if args.every.is_some() => {
            app::scale::run_loop(args, cli.quiet, |record| {
                // One record per round: a JSON line each for pipelines, the text for people.
                match cli.output {
                    OutputFormat::Json => {
                        println!("{}", serde_json::to_string(record).unwrap_or_default())
                    }
                    OutputFormat::Text if !cli.quiet => print!("{}", record.render_text()),
                    OutputFormat::Text => {}
                }
            })
        }
        Command::Scale(args) => {
            let (code, record) = app::round::run(args, now, cli.quiet)?;
            emit(cli, &record, || record.render_text())?;
            Ok(code)
        }
        Command::Config(mlscaler::cli::ConfigArgs {
            action: mlscaler::cli::ConfigAction::Role { scopes },
        }) => {
            let role = mlscaler::arm::operations::custom_role(scopes);
            println!("{}", serde_json::to_string_pretty(&role)?);
            Ok(exit::OK)
        }
        Command::Config(_) => {
            let eff = mlscaler::config::effective(file)?;
            match cli.output {
                OutputFormat::Json => {
                    let v: serde_json::Map<String, serde_json::Value> = eff
                        .iter()
                        .map(|(c, rows)| {
                            let r: serde_json::Map<String, serde_json::Value> = rows
                                .iter()
                                .map(|(k, v, src)| {
                                    (k.clone(), serde_json::json!({"value": v, "source": src}))
                                })
                                .collect();
                            (c.clone(), serde_json::Value::Object(r))
                        })
                        .collect();
                    println!("{}", serde_json::to_string_pretty(&v)?);
                }
                OutputFormat::Text => {
                    match file {
                        Some(f) => println!("config file {}: valid", f.path.display()),
                        None => println!("no config file (--config / MLSCALER_CONFIG): defaults and environment only"),
                    }
                    for (command, rows) in &eff {
                        println!("\n[{command}]");
                        for (k, v, src) in rows {
                            println!("  {k:<24} {v:<40} ({src})");
                        }
                    }
                }
            }
            Ok(exit::OK)
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "mlscaler",
                &mut std::io::stdout(),
            );
            Ok(exit::OK)
        }
        Command::Inspect(args) => {
            let card = app::inspect::run(args)?;
            emit(cli, &card, || app::inspect::render_text(&card))?;
            Ok(exit::OK)
        }
    }
}

/// Print the result: JSON for pipelines, text for people (nothing with --quiet,
/// except that JSON is always printed when asked for).
fn emit<T: Serialize>(cli: &Cli, value: &T, text: impl FnOnce() -> String) -> Result<()> {
    match cli.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(value)?),
        OutputFormat::Text if !cli.quiet => print!("{}", text()),
        OutputFormat::Text => {}
    }
    Ok(())
}

fn init_tracing(cli: &Cli) {
    use tracing_subscriber::EnvFilter;
    let default = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "mlscaler=debug,info",
        (false, _) => "mlscaler=trace,debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.with_target(false).init(),
    }
}
