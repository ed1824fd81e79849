//! A local Azure Resource Manager + Entra ID emulator, for mlscaler's tests
//! (and the `arm-emulator` binary, for manual use). It speaks HTTPS with a CA
//! made at start, issues client-credentials tokens, and keeps stateful AKS
//! agent pools and VM Scale Sets whose writes are long-running operations,
//! answering with the shapes (and only the fields) of the official API specs.
//!
//! Admin endpoints (no token needed): `GET /_emulator/state`,
//! `GET|DELETE /_emulator/requests` (request log), `POST|DELETE
//! /_emulator/faults` (a [`state::Fault`] or a list of them), `POST
//! /_emulator/release` (send the answers that `hold` faults hold back).
//!
//! Tests start it in-process with [`spawn`]: its own thread and tokio
//! runtime, 127.0.0.1 on a free port, stopped when the [`Handle`] is dropped.
//! [`start`] serves on the caller's runtime instead. This crate does not
//! depend on mlscaler (mlscaler's tests depend on it).
#![deny(unsafe_code)]

pub mod server;
pub mod state;

pub use server::{make_certs, start, EmulatorError, Running};
pub use state::{Fault, LogEntry, Principal, Seed, State};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// An emulator serving on its own thread (a current-thread tokio runtime).
/// Dropping it stops the server: the listener and every connection close.
pub struct Handle {
    pub addr: SocketAddr,
    /// `https://127.0.0.1:PORT`, for ARM and for the token endpoint.
    pub base_url: String,
    /// The CA certificate (PEM) a client must trust.
    pub ca_path: PathBuf,
    pub state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts an emulator with `seed` on a thread of its own and returns once it
/// listens. The CA certificate is written to `dir/ca.pem`.
pub fn spawn(seed: &Seed, principal: Principal, dir: &Path) -> Result<Handle, EmulatorError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(EmulatorError::Runtime)?;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (seed, dir) = (seed.clone(), dir.to_path_buf());
    let thread = std::thread::Builder::new()
        .name("arm-emulator".into())
        .spawn(move || {
            rt.block_on(async move {
                match start(&seed, principal, &dir).await {
                    Ok(running) => {
                        let _ = ready_tx.send(Ok(running));
                        // Serve until the handle is dropped.
                        let _ = stop_rx.await;
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            });
            // Dropping the runtime here ends the server's tasks.
        })
        .map_err(EmulatorError::Runtime)?;
    let error = match ready_rx.recv() {
        Ok(Ok(running)) => {
            return Ok(Handle {
                addr: running.addr,
                base_url: running.base_url,
                ca_path: running.ca_path,
                state: running.state,
                stop: Some(stop_tx),
                thread: Some(thread),
            })
        }
        Ok(Err(e)) => e,
        // The thread ended without a word (it panicked).
        Err(_) => EmulatorError::Stopped,
    };
    let _ = thread.join();
    Err(error)
}

impl Drop for Handle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
