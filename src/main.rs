//! The `mlscaler` binary: raw arguments (with the config file's settings
//! under them) -> checked settings -> run the command -> exit code (see the
//! README for the codes).

use mlscaler::app::{self, exit};
use mlscaler::cli::Cli;
use mlscaler::settings::{file, Command, Output};
use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let (argv, config) = match file::with_config(argv) {
        Ok(x) => x,
        Err(e) => return fail(&e),
    };
    let cli = <Cli as clap::Parser>::parse_from(argv);
    let output = Output::from_cli(&cli);
    app::init_logging(output);
    let command = match Command::from_cli(&cli, config.as_ref()) {
        Ok(Some(c)) => c,
        Ok(None) => return completions(&cli),
        Err(e) => return fail(&e),
    };
    match app::run(&command, output) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            // `{:#}` prints the whole context chain on one line: "what: why:
            // cause" (never `{:?}`: that would add a stack backtrace).
            eprintln!("error: {e:#}");
            ExitCode::from(exit::FAILED as u8)
        }
    }
}

fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(exit::FAILED as u8)
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
