//! The `mlscaler` binary: raw arguments (with the config file's settings
//! under them, and under those the profile published in the registry when
//! `--published-profile` asks for it) -> checked settings -> run the command
//! -> exit code (see the README for the codes).

use mlscaler::app::{self, exit};
use mlscaler::cli::Cli;
use mlscaler::settings::{file, Command, Output};
use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let (argv, config) = match file::with_config(argv.clone()) {
        Ok(x) => x,
        // The config file could not be read or applied: the output flags are
        // read from the command line alone, so `--output json` still gets
        // its one JSON document.
        Err(e) => return failed(output_without_config(argv), &e.to_string(), "settings"),
    };
    let cli = <Cli as clap::Parser>::parse_from(&argv);
    let output = Output::from_cli(&cli);
    app::init_logging(output);
    // `--published-profile`: the profile from the registry, under the rest.
    let (cli, follow) = match app::published::resolve(&cli, &argv, output.quiet) {
        Ok(None) => (cli, None),
        Ok(Some((resolved, version))) => {
            // Loop mode runs the newest pair each round.
            let follow = app::published::Follow::new(&cli, &argv, config.clone(), &version);
            (<Cli as clap::Parser>::parse_from(resolved), follow)
        }
        Err(e) => return failed(output, &format!("{e:#}"), app::error_class(&e)),
    };
    let command = match Command::from_cli(&cli, config.as_ref()) {
        Ok(Some(c)) => c,
        Ok(None) => return completions(&cli),
        Err(e) => return failed(output, &e.to_string(), "settings"),
    };
    match app::run(&command, output, follow) {
        Ok(code) => ExitCode::from(code as u8),
        // `{:#}` prints the whole context chain on one line: "what: why:
        // cause" (never `{:?}`: that would add a stack backtrace).
        Err(e) => failed(output, &format!("{e:#}"), app::error_class(&e)),
    }
}

/// A run that could not finish: the error on standard error, and with
/// `--output json` one JSON document on standard output too, so a pipeline
/// that parses it always gets one.
fn failed(output: Output, message: &str, class: &str) -> ExitCode {
    eprintln!("error: {message}");
    if output.json {
        let doc = serde_json::json!({
            "outcome": "failed",
            "exit_code": exit::FAILED,
            "error_class": class,
            "error": message,
        });
        println!("{doc:#}");
    }
    ExitCode::from(exit::FAILED as u8)
}

/// The output flags of a command line whose config file failed: as clap
/// reads them when the line parses without the file; else only whether
/// `--output json` is on it; else text.
fn output_without_config(argv: Vec<std::ffi::OsString>) -> Output {
    let text = Output {
        quiet: false,
        json: false,
        json_logs: false,
        verbose: 0,
    };
    if let Ok(cli) = <Cli as clap::Parser>::try_parse_from(&argv) {
        return Output::from_cli(&cli);
    }
    let args: Vec<String> = argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let json = args
        .windows(2)
        .any(|w| w[0] == "--output" && w[1] == "json")
        || args.iter().any(|a| a == "--output=json");
    Output { json, ..text }
}

fn completions(cli: &Cli) -> ExitCode {
    if let mlscaler::cli::Command::Completions { shell } = &cli.command {
        use clap::CommandFactory;
        clap_complete::generate(
            *shell,
            &mut Cli::command(),
            "mlscaler",
            &mut std::io::stdout(),
        );
    }
    ExitCode::from(exit::OK as u8)
}
