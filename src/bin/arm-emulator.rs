//! `arm-emulator`: a local ARM + Entra ID emulator for tests.
//!
//! Prints `ca-cert PATH` then `listening https://127.0.0.1:PORT` on stdout,
//! serves until killed, and exits when its standard input closes (so a test
//! that dies does not leave it running).

use clap::Parser;
use mlscaler::emulator::{self, Principal, Seed};
use std::io::{Read, Write};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(about = "Local Azure Resource Manager + Entra ID emulator (test support)")]
struct Args {
    /// JSON file with the resources to start with (see `emulator::state::Seed`).
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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let running = emulator::start(&seed, principal, &dir)
            .await
            .map_err(|e| e.to_string())?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "ca-cert {}", running.ca_path.display()).map_err(|e| e.to_string())?;
        writeln!(out, "listening {}", running.base_url).map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
        drop(out);
        if args.no_stdin_watch {
            std::future::pending::<()>().await;
        } else {
            tokio::task::spawn_blocking(|| {
                let mut buf = [0u8; 64];
                let mut stdin = std::io::stdin();
                while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
            })
            .await
            .map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}
