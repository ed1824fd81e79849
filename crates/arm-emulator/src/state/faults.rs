//! Fault injection: the faults the admin endpoint adds (`POST
//! /_emulator/faults`), which requests they match, and what they do to them
//! (answer with an error instead, delay the answer, drop the connection
//! without an answer, make the operation fail or never finish). Token
//! requests are matched only by faults whose `pathContains` names them
//! (e.g. `oauth2`), so a general fault never breaks sign-in.

use super::wire::{arm_error, EmuRequest, EmuResponse};
use super::State;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A fault to inject into the next `times` matching requests.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fault {
    /// HTTP method to match (any when absent).
    #[serde(default)]
    pub method: Option<String>,
    /// Case-insensitive substring of the path to match (any when absent).
    #[serde(default)]
    pub path_contains: Option<String>,
    #[serde(default = "one")]
    pub times: u32,
    /// Answer with this status and an ARM error body instead of handling.
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// Delay the answer by this long (then answer as configured).
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// Hold the answer (handled now, as it was then) until `POST
    /// /_emulator/release`, or `delayMs` (default a minute) at most: a
    /// read that answers with the past while others act.
    #[serde(default)]
    pub hold: bool,
    /// Accept the write but make its long-running operation end Failed.
    #[serde(default)]
    pub fail_operation: bool,
    /// Accept the write but its long-running operation never ends.
    #[serde(default)]
    pub never_finish: bool,
    /// Close the connection without an answer (after `delayMs`). Without
    /// `status` the request is handled first (a write is applied and its
    /// answer lost); with `status`, it is not handled at all.
    #[serde(default)]
    pub drop_connection: bool,
}
fn one() -> u32 {
    1
}

/// What a matching fault leaves for a request that is still handled.
#[derive(Debug, Default)]
pub(super) struct Injected {
    /// Delay the answer by this long.
    pub delay: Option<Duration>,
    /// Hold the answer until released (`delay` at most).
    pub hold: bool,
    /// Close the connection instead of answering.
    pub drop: bool,
    /// What becomes of the write's operation.
    pub operation: OpFate,
}

/// What becomes of a write's long-running operation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum OpFate {
    /// It succeeds after the seed's delay.
    #[default]
    Succeed,
    /// It ends Failed with this (code, message).
    Fail(String, String),
    /// It never ends.
    Never,
}

impl State {
    pub fn add_faults(&mut self, faults: Vec<Fault>) {
        self.faults.extend(faults);
    }

    pub fn clear_faults(&mut self) {
        self.faults.clear();
    }

    /// Applies the first fault matching `req` (using one of its `times`):
    /// `Err` with the answer when it answers instead of the handler.
    pub(super) fn inject(&mut self, req: &EmuRequest) -> Result<Injected, EmuResponse> {
        let Some(f) = self.take_fault(req) else {
            return Ok(Injected::default());
        };
        let delay = f.delay_ms.map(Duration::from_millis);
        if let Some(status) = f.status {
            let code = f
                .code
                .clone()
                .unwrap_or_else(|| default_code(status).into());
            let message = f
                .message
                .clone()
                .unwrap_or_else(|| format!("injected fault: {status} {code}"));
            let mut rsp = arm_error(status, &code, message);
            if let Some(s) = f.retry_after {
                rsp = rsp.header("Retry-After", s.to_string());
            }
            rsp.delay = delay;
            rsp.hold = f.hold;
            rsp.drop = f.drop_connection;
            return Err(rsp);
        }
        let operation = if f.fail_operation {
            OpFate::Fail(
                f.code.unwrap_or_else(|| "InternalOperationError".into()),
                f.message
                    .unwrap_or_else(|| "injected failure of the operation".into()),
            )
        } else if f.never_finish {
            OpFate::Never
        } else {
            OpFate::Succeed
        };
        Ok(Injected {
            delay,
            hold: f.hold,
            drop: f.drop_connection,
            operation,
        })
    }

    fn take_fault(&mut self, req: &EmuRequest) -> Option<Fault> {
        let path = req.path.to_ascii_lowercase();
        let token = path.contains("/oauth2/");
        let pos = self.faults.iter().position(|f| {
            f.times > 0
                && (!token || f.path_contains.is_some())
                && f.method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(&req.method))
                && f.path_contains
                    .as_deref()
                    .is_none_or(|p| path.contains(&p.to_ascii_lowercase()))
        })?;
        let f = &mut self.faults[pos];
        f.times -= 1;
        let out = f.clone();
        if f.times == 0 {
            self.faults.remove(pos);
        }
        Some(out)
    }
}

/// ARM's usual error code for a status, when a fault names none.
fn default_code(status: u16) -> &'static str {
    match status {
        400 => "BadRequest",
        401 => "AuthenticationFailed",
        403 => "AuthorizationFailed",
        404 => "NotFound",
        409 => "Conflict",
        412 => "PreconditionFailed",
        429 => "TooManyRequests",
        500 => "InternalServerError",
        502 => "BadGateway",
        503 => "ServiceUnavailable",
        _ => "Error",
    }
}
