//! A request as the state machine sees it (already read off the wire) and the
//! response it gives back, plus ARM's error body and query parsing. No
//! resource knowledge here.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

/// A request, already read.
#[derive(Debug, Clone)]
pub struct EmuRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    /// Lower-cased names.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

/// A response to write, possibly after `delay`; with `hold`, after
/// `POST /_emulator/release` (or `delay`, at most); with `drop`, the server
/// closes the connection instead of writing it (a lost answer).
#[derive(Debug, Clone)]
pub struct EmuResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
    pub delay: Option<Duration>,
    pub hold: bool,
    pub drop: bool,
}

impl EmuResponse {
    pub(super) fn json(status: u16, body: Value) -> Self {
        EmuResponse {
            status,
            headers: vec![(
                "Content-Type".to_string(),
                "application/json; charset=utf-8".to_string(),
            )],
            body: Some(body),
            delay: None,
            hold: false,
            drop: false,
        }
    }
    pub(super) fn empty(status: u16) -> Self {
        EmuResponse {
            status,
            headers: Vec::new(),
            body: None,
            delay: None,
            hold: false,
            drop: false,
        }
    }
    pub(super) fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// ARM's error body: `{"error": {"code", "message"}}`.
pub(super) fn arm_error(status: u16, code: &str, message: impl Into<String>) -> EmuResponse {
    EmuResponse::json(
        status,
        json!({ "error": { "code": code, "message": message.into() } }),
    )
}

/// The `404 ResourceNotFound` ARM gives for a resource id it does not know.
pub(super) fn not_found(key: &str) -> EmuResponse {
    arm_error(
        404,
        "ResourceNotFound",
        format!("The Resource '{key}' was not found."),
    )
}

/// The first value of query parameter `name` (case-insensitive name).
pub(super) fn query_param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.into_owned())
}

/// The request body as JSON, or ARM's answer to a body that is not JSON.
pub(super) fn json_body(req: &EmuRequest) -> Result<Value, EmuResponse> {
    serde_json::from_slice(&req.body).map_err(|e| {
        arm_error(
            400,
            "InvalidRequestContent",
            format!("The request content was invalid and could not be deserialized: {e}"),
        )
    })
}
