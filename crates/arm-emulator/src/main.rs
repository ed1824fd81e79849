//! `arm-emulator`: the local ARM + Entra ID emulator as a process, for manual
//! use and scripts (mlscaler's tests start it in-process instead).
//!
//! Prints `ca-cert PATH` then `listening https://127.0.0.1:PORT` on stdout,
//! serves until killed, and exits when its standard input closes (so a parent
//! that dies does not leave it running).

use arm_emulator::{Principal, Seed};
use clap::Parser;
use std::io::{Read, Write};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(about = "Local Azure Resource Manager + Entra ID emulator (test support)")]
struct Args {
    /// JSON file with the resources to start with (see `arm_emulator::Seed`).
    #[arg(long)]
    seed: Option<PathBuf>,
    /// Folder for the CA certificate (`ca.pem`); a fresh temporary folder by default.
    #[arg(long)]
    dir: Option<PathBuf>,
    #[arg(long, default_value = "00000000-0000-0000-0000-0000000000aa")]
    tenant: String,
    #[arg(long, default_value = "emulator-client")]
    client_id: String,
    /// The client secret the token endpoint accepts.
    #[arg(long, env = "ARM_EMULATOR_CLIENT_SECRET", hide_env_values = true)]
    client_secret: String,
    /// Keep running when standard input closes.
    #[arg(long)]
    no_stdin_watch: bool,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(args) {
        eprintln!("arm-emulator: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), String> {
    let seed: Seed = match &args.seed {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?
        }
        None => Seed::default(),
    };
    let dir = match args.dir {
        Some(d) => d,
        None => {
            let d = std::env::temp_dir().join(format!("arm-emulator-{}", std::process::id()));
            std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
            d
        }
    };
    let principal = Principal {
        tenant: args.tenant,
        client_id: args.client_id,
        client_secret: args.client_secret,
    };
    let emulator = arm_emulator::spawn(&seed, principal, &dir).map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "ca-cert {}", emulator.ca_path.display()).map_err(|e| e.to_string())?;
    writeln!(out, "listening {}", emulator.base_url).map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    drop(out);
    if args.no_stdin_watch {
        loop {
            std::thread::park();
        }
    }
    let mut buf = [0u8; 64];
    let mut stdin = std::io::stdin();
    while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
    Ok(())
}
