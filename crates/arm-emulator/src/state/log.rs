//! The request log the admin endpoint serves (`GET|DELETE
//! /_emulator/requests`): one entry per non-admin request, with what was
//! asked and answered, except token request and response bodies.

use super::wire::{EmuRequest, EmuResponse};
use super::State;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// One request as the emulator saw it (admin calls are not logged).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    pub seq: u64,
    pub method: String,
    pub path: String,
    pub query: String,
    pub if_match: Option<String>,
    pub authorized: bool,
    pub status: u16,
    /// Request body (JSON, or null).
    pub body: Value,
    /// Response headers and body (tokens are not logged).
    pub response_headers: BTreeMap<String, String>,
    pub response: Value,
}

impl State {
    pub fn log(&self) -> &[LogEntry] {
        &self.log
    }

    pub fn clear_log(&mut self) {
        self.log.clear();
    }

    /// Logs `req` and the answer it got.
    pub(super) fn record(&mut self, req: &EmuRequest, authorized: bool, rsp: &EmuResponse) {
        let seq = self.next();
        let token_call = req.path.contains("/oauth2/");
        let body = if token_call {
            json!("(token request body not logged)")
        } else {
            serde_json::from_slice(&req.body).unwrap_or(Value::Null)
        };
        self.log.push(LogEntry {
            seq,
            method: req.method.clone(),
            path: req.path.clone(),
            query: req.query.clone(),
            if_match: req.headers.get("if-match").cloned(),
            authorized,
            status: rsp.status,
            body,
            response_headers: rsp.headers.iter().cloned().collect(),
            response: if token_call {
                json!("(token response not logged)")
            } else {
                rsp.body.clone().unwrap_or(Value::Null)
            },
        });
    }
}
