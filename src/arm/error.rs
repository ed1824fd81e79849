//! Typed ARM errors and their classification from a response. Every message
//! carries ARM's error code and message (never a token or a secret).

use serde::Deserialize;
use std::fmt;
use std::time::Duration;

/// ARM's error code and message (`{"error":{"code","message","details"}}`),
/// with the details' codes and messages folded into `message`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ArmErrorBody {
    pub code: String,
    pub message: String,
}

impl fmt::Display for ArmErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code.is_empty(), self.message.is_empty()) {
            (true, true) => write!(f, "(no error body)"),
            (false, true) => write!(f, "{}", self.code),
            (true, false) => write!(f, "{}", self.message),
            (false, false) => write!(f, "{}: {}", self.code, self.message),
        }
    }
}

#[derive(Deserialize, Default)]
struct RawDetail {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    details: Vec<RawDetail>,
}

#[derive(Deserialize)]
struct RawEnvelope {
    error: RawDetail,
}

impl ArmErrorBody {
    /// Parses ARM's error envelope, or falls back to the body text (cut short).
    pub fn parse(body: &[u8]) -> Self {
        let raw = serde_json::from_slice::<RawEnvelope>(body)
            .map(|e| e.error)
            .or_else(|_| serde_json::from_slice::<RawDetail>(body));
        match raw {
            Ok(d) if d.code.is_some() || d.message.is_some() => Self::from_raw(d),
            _ => {
                let text = String::from_utf8_lossy(body);
                let text: String = text.trim().chars().take(300).collect();
                ArmErrorBody {
                    code: String::new(),
                    message: text,
                }
            }
        }
    }

    fn from_raw(d: RawDetail) -> Self {
        let mut message = d.message.unwrap_or_default();
        fn walk(details: &[RawDetail], out: &mut String) {
            for x in details {
                let code = x.code.as_deref().unwrap_or("");
                let msg = x.message.as_deref().unwrap_or("");
                if !code.is_empty() || !msg.is_empty() {
                    out.push_str(&format!(" [{code}: {msg}]"));
                }
                walk(&x.details, out);
            }
        }
        walk(&d.details, &mut message);
        ArmErrorBody {
            code: d.code.unwrap_or_default(),
            message,
        }
    }

    /// Whether ARM is saying "out of quota / capacity" (which retrying does not fix).
    pub fn is_quota(&self) -> bool {
        let code = self.code.to_ascii_lowercase();
        let msg = self.message.to_ascii_lowercase();
        matches!(
            code.as_str(),
            "quotaexceeded"
                | "skunotavailable"
                | "operationnotallowedquota"
                | "insufficientvcpuquota"
                | "insufficientsubnetsize"
                | "zonalallocationfailed"
                | "allocationfailed"
                | "overconstrainedallocationrequest"
        ) || msg.contains("quota")
            || msg.contains("current limit:")
            || msg.contains("skunotavailable")
            || msg.contains("insufficientvcpuquota")
    }

    /// Whether a 409 means "another operation is in progress": wait and retry.
    pub fn is_busy(&self) -> bool {
        let code = self.code.to_ascii_lowercase();
        let msg = self.message.to_ascii_lowercase();
        let busy_code = matches!(
            code.as_str(),
            "operationnotallowed"
                | "anotheroperationinprogress"
                | "conflict"
                | "operationpreempted"
        );
        !self.is_quota() && (busy_code || msg.contains("in progress"))
    }
}

/// What went wrong talking to ARM.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArmError {
    /// 409 that is not "busy", or still busy after the retry bound.
    #[error("conflict (409) on {what}: {error}")]
    Conflict { what: String, error: ArmErrorBody },
    /// 412: someone else changed the resource: re-read and re-plan.
    #[error("precondition failed (412) on {what}: the resource changed since it was read{}; re-read and re-plan: {error}", etag.as_deref().map(|t| format!(" at ETag {t}")).unwrap_or_default())]
    PreconditionFailed {
        what: String,
        etag: Option<String>,
        error: ArmErrorBody,
    },
    /// 429 after the retry bound.
    #[error("throttled (429) on {what}{}: {error}", retry_after.map(|d| format!(", retry after {}", super::client::secs(d))).unwrap_or_default())]
    Throttled {
        what: String,
        retry_after: Option<Duration>,
        error: ArmErrorBody,
    },
    /// Out of quota or capacity (the message has ARM's numbers).
    #[error("quota or capacity exceeded (HTTP {status}) on {what}: {error}")]
    Quota {
        what: String,
        status: u16,
        error: ArmErrorBody,
    },
    #[error("not found (404): {what}: {error}")]
    NotFound { what: String, error: ArmErrorBody },
    /// 401/403, or the credential could not get a token.
    #[error("authentication or authorization failed (HTTP {status}) on {what}: {error}")]
    Auth {
        what: String,
        status: u16,
        error: ArmErrorBody,
    },
    /// Another 4xx (bad request, invalid api-version, autoscaler refuses a count...).
    #[error("request rejected (HTTP {status}) on {what}: {error}")]
    BadRequest {
        what: String,
        status: u16,
        error: ArmErrorBody,
    },
    /// 5xx after the retry bound.
    #[error("server error (HTTP {status}) on {what}: {error}")]
    Server {
        what: String,
        status: u16,
        error: ArmErrorBody,
    },
    /// A request or a long-running operation took too long.
    #[error("timed out: {what}")]
    Timeout { what: String },
    /// A long-running operation ended Failed or Canceled.
    #[error("operation {status} on {what}: {error}")]
    OperationFailed {
        what: String,
        status: String,
        error: ArmErrorBody,
    },
    /// The resource is not in a state to accept a change (provisioning state not Succeeded).
    #[error("{what} is busy (provisioning state {state}); not changing it now")]
    Busy { what: String, state: String },
    /// The cluster autoscaler is on and the caller asked us not to touch minCount.
    #[error("{what} has the cluster autoscaler enabled (minCount {}, maxCount {}); a manual count would be rejected, and --on-autoscaler refuse forbids adjusting minCount", count_or_unset(*min), count_or_unset(*max))]
    AutoscalerEnabled {
        what: String,
        min: Option<u32>,
        max: Option<u32>,
    },
    #[error("invalid request for {what}: {message}")]
    Invalid { what: String, message: String },
    #[error("cannot reach ARM for {what}: {message}")]
    Transport { what: String, message: String },
    #[error("cannot decode ARM's answer for {what}: {message}")]
    Decode { what: String, message: String },
    #[error("cannot get a token: {0}")]
    Credential(String),
    /// The run was asked to stop (SIGTERM/SIGINT): nothing further is sent.
    #[error("stopped by a signal during {what}; nothing further was sent")]
    Interrupted { what: String },
    /// The run's deadline (`--deadline`) would pass.
    #[error("the run's deadline of {} passed or would pass during {what}", super::client::secs(*budget))]
    Deadline { what: String, budget: Duration },
    /// A conditional write got no answer (timeout, dropped connection, 5xx):
    /// it may or may not have been applied; read the resource back.
    #[error("no answer to {what} ({cause}); it may or may not have been applied")]
    Unconfirmed {
        what: String,
        cause: String,
        /// The 5xx the server answered, if it answered at all.
        status: Option<u16>,
    },
}

fn count_or_unset(n: Option<u32>) -> String {
    n.map_or_else(|| "unset".to_string(), |n| n.to_string())
}

impl ArmError {
    /// Classifies a non-success response. `what` names the call (method + resource).
    pub fn from_response(
        what: &str,
        status: u16,
        retry_after: Option<Duration>,
        etag: Option<String>,
        body: &[u8],
    ) -> ArmError {
        let error = ArmErrorBody::parse(body);
        let what = what.to_string();
        if (status == 400 || status == 403 || status == 409) && error.is_quota() {
            return ArmError::Quota {
                what,
                status,
                error,
            };
        }
        match status {
            401 | 403 => ArmError::Auth {
                what,
                status,
                error,
            },
            404 => ArmError::NotFound { what, error },
            409 => ArmError::Conflict { what, error },
            412 => ArmError::PreconditionFailed { what, etag, error },
            429 => ArmError::Throttled {
                what,
                retry_after,
                error,
            },
            408 | 504 => ArmError::Timeout {
                what: format!("{what}: HTTP {status}: {error}"),
            },
            s if s >= 500 => ArmError::Server {
                what,
                status,
                error,
            },
            _ => ArmError::BadRequest {
                what,
                status,
                error,
            },
        }
    }

    /// ARM's error code, when there is one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ArmError::Conflict { error, .. }
            | ArmError::PreconditionFailed { error, .. }
            | ArmError::Throttled { error, .. }
            | ArmError::Quota { error, .. }
            | ArmError::NotFound { error, .. }
            | ArmError::Auth { error, .. }
            | ArmError::BadRequest { error, .. }
            | ArmError::Server { error, .. }
            | ArmError::OperationFailed { error, .. } => Some(error.code.as_str()),
            _ => None,
        }
    }
}

/// Parses `Retry-After` (seconds; an HTTP date is not used by ARM and is ignored).
pub fn parse_retry_after(value: Option<&str>) -> Option<Duration> {
    let v = value?.trim();
    v.parse::<u64>().ok().map(Duration::from_secs).or_else(|| {
        v.parse::<f64>()
            .ok()
            .filter(|x| x.is_finite() && *x >= 0.0)
            .map(Duration::from_secs_f64)
    })
}

/// The numbers of an ARM vCPU quota error ("Current Limit: 10, Current
/// Usage: 8, Additional Required: 4", in cores).
pub use crate::core::group::QuotaNumbers;

impl ArmError {
    /// The limit, usage and required cores of a quota error, when its
    /// message has them (ARM's `OperationNotAllowed` vCPU quota messages do).
    pub fn quota_numbers(&self) -> Option<QuotaNumbers> {
        let ArmError::Quota { error, .. } = self else {
            return None;
        };
        let number = |label: &str| -> Option<u64> {
            let at = error.message.find(label)? + label.len();
            let digits: String = error.message[at..]
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            digits.parse().ok()
        };
        Some(QuotaNumbers {
            limit: number("Current Limit:")?,
            usage: number("Current Usage:")?,
            required: number("Additional Required:")?,
        })
    }
}

impl ArmError {
    /// The class of this failure in the one target interface.
    pub fn kind(&self) -> crate::core::group::GroupErrorKind {
        use crate::core::group::GroupErrorKind as K;
        match self {
            // A 409 is "busy" when another operation runs; otherwise ARM
            // refused the change as conflicting with the resource's state.
            ArmError::Conflict { error, .. } if !error.is_busy() => K::Rejected,
            ArmError::Conflict { .. } | ArmError::Busy { .. } => K::Busy,
            ArmError::PreconditionFailed { .. } => K::Changed,
            ArmError::Throttled { .. } => K::Throttled,
            ArmError::Quota { .. } => K::Quota,
            ArmError::NotFound { .. } => K::NotFound,
            ArmError::Auth { .. } | ArmError::Credential(_) => K::Auth,
            ArmError::BadRequest { .. }
            | ArmError::Invalid { .. }
            | ArmError::AutoscalerEnabled { .. } => K::Rejected,
            ArmError::Server { .. } => K::Server,
            ArmError::Unconfirmed {
                status: Some(_), ..
            } => K::Server,
            ArmError::Timeout { .. } | ArmError::Deadline { .. } | ArmError::Unconfirmed { .. } => {
                K::Timeout
            }
            ArmError::Interrupted { .. } => K::Interrupted,
            ArmError::OperationFailed { .. } => K::OperationFailed,
            ArmError::Transport { .. } | ArmError::Decode { .. } => K::Other,
        }
    }
}

impl From<ArmError> for crate::core::group::GroupError {
    /// The class of an ARM failure, for the one target interface; the
    /// message is ARM's own (no secrets: ARM errors carry none).
    fn from(e: ArmError) -> Self {
        crate::core::group::GroupError {
            kind: e.kind(),
            quota: e.quota_numbers(),
            message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(status: u16, body: &str) -> ArmError {
        ArmError::from_response(
            "PUT pool",
            status,
            Some(Duration::from_secs(7)),
            None,
            body.as_bytes(),
        )
    }

    #[test]
    fn quota_is_recognised_whatever_the_status() {
        let body = r#"{"error":{"code":"OperationNotAllowed","message":"Operation could not be completed as it results in exceeding approved standardDSv2Family Cores quota. Additional details - Deployment Model: Resource Manager, Location: westeurope, Current Limit: 10, Current Usage: 8, Additional Required: 4, (Minimum) New Limit Required: 12."}}"#;
        let e = classify(409, body);
        assert!(matches!(e, ArmError::Quota { status: 409, .. }), "{e}");
        let n = e.quota_numbers().expect("the numbers");
        assert_eq!(
            n,
            QuotaNumbers {
                limit: 10,
                usage: 8,
                required: 4
            }
        );
        // Two more nodes need 4 cores (2 each): 2 cores are left, one fits.
        assert_eq!(n.nodes_that_fit(2), 1);
        assert_eq!(n.nodes_that_fit(0), 0);
        let msg = e.to_string();
        assert!(
            msg.contains("Current Limit: 10") && msg.contains("Additional Required: 4"),
            "{msg}"
        );
        assert!(matches!(
            classify(400, r#"{"error":{"code":"QuotaExceeded","message":"x"}}"#),
            ArmError::Quota { .. }
        ));
        assert_eq!(
            classify(400, r#"{"error":{"code":"QuotaExceeded","message":"x"}}"#).quota_numbers(),
            None
        );
        assert!(matches!(
            classify(409, r#"{"error":{"code":"SkuNotAvailable","message":"x"}}"#),
            ArmError::Quota { .. }
        ));
    }

    #[test]
    fn statuses_map_to_variants() {
        let busy = r#"{"error":{"code":"OperationNotAllowed","message":"Operation is not allowed because there's an in progress scale operation."}}"#;
        assert!(matches!(classify(409, busy), ArmError::Conflict { .. }));
        assert!(ArmErrorBody::parse(busy.as_bytes()).is_busy());
        assert!(matches!(
            classify(412, "{}"),
            ArmError::PreconditionFailed { .. }
        ));
        match classify(429, "") {
            ArmError::Throttled { retry_after, .. } => {
                assert_eq!(retry_after, Some(Duration::from_secs(7)))
            }
            e => panic!("{e}"),
        }
        assert!(matches!(
            classify(401, "{}"),
            ArmError::Auth { status: 401, .. }
        ));
        assert!(matches!(
            classify(403, "{}"),
            ArmError::Auth { status: 403, .. }
        ));
        assert!(matches!(classify(404, "{}"), ArmError::NotFound { .. }));
        assert!(matches!(
            classify(503, "{}"),
            ArmError::Server { status: 503, .. }
        ));
        assert!(matches!(classify(504, "{}"), ArmError::Timeout { .. }));
        assert!(matches!(
            classify(
                400,
                r#"{"error":{"code":"InvalidApiVersionParameter","message":"x"}}"#
            ),
            ArmError::BadRequest { .. }
        ));
    }

    #[test]
    fn messages_carry_code_message_and_details() {
        let e = classify(
            400,
            r#"{"error":{"code":"InvalidParameter","message":"outer","details":[{"code":"Inner","message":"inner text"}]}}"#,
        );
        assert_eq!(e.code(), Some("InvalidParameter"));
        let msg = e.to_string();
        assert!(
            msg.contains("InvalidParameter: outer") && msg.contains("[Inner: inner text]"),
            "{msg}"
        );
        let e = classify(500, "upstream gateway exploded");
        assert!(e.to_string().contains("upstream gateway exploded"));
    }

    #[test]
    fn messages_show_values_not_rust_debug_output() {
        let e = ArmError::from_response(
            "PATCH vmss1",
            412,
            None,
            Some("\"1\"".into()),
            br#"{"error":{"code":"PreconditionFailed","message":"stale"}}"#,
        );
        let msg = e.to_string();
        assert!(msg.contains("at ETag \"1\""), "{msg}");
        assert!(!msg.contains("Some("), "{msg}");
        let msg = classify(429, "").to_string();
        assert!(msg.contains("retry after 7s"), "{msg}");
        assert!(!msg.contains("Some("), "{msg}");
        let none = ArmError::from_response("GET x", 429, None, None, b"").to_string();
        assert!(
            !none.contains("retry after") && !none.contains("None"),
            "{none}"
        );
        let auto = ArmError::AutoscalerEnabled {
            what: "pool".into(),
            min: Some(2),
            max: None,
        }
        .to_string();
        assert!(auto.contains("minCount 2, maxCount unset"), "{auto}");
    }

    #[test]
    fn retry_after_parses_seconds() {
        assert_eq!(parse_retry_after(Some("3")), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after(Some(" 0.5 ")),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
        assert_eq!(parse_retry_after(None), None);
    }
}
