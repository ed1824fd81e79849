//! A local Azure Resource Manager + Entra ID emulator, for tests (the
//! `arm-emulator` binary). It speaks HTTPS with a CA made at start, issues
//! client-credentials tokens, and keeps stateful AKS agent pools and VM Scale
//! Sets whose writes are long-running operations, answering with the shapes
//! (and only the fields) of the official API specs.
//!
//! Admin endpoints (no token needed): `GET /_emulator/state`,
//! `GET|DELETE /_emulator/requests` (request log), `POST|DELETE
//! /_emulator/faults` (a [`state::Fault`] or a list of them).

pub mod server;
pub mod state;

pub use server::{make_certs, start, EmulatorError, Running};
pub use state::{Fault, LogEntry, Principal, Seed};
