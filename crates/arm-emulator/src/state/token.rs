//! Entra ID: the one service principal the emulator knows, its
//! client-credentials token endpoint (`POST /{tenant}/oauth2/v2.0/token`,
//! with Entra's AADSTS errors), and the check of bearer tokens on ARM calls.

use super::wire::{arm_error, EmuRequest, EmuResponse};
use super::State;
use serde_json::json;
use std::collections::HashMap;

/// The service principal the token endpoint accepts.
#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant: String,
    pub client_id: String,
    pub client_secret: String,
}

impl State {
    /// True when `req` carries a bearer token this emulator issued.
    pub(super) fn authorized(&self, req: &EmuRequest) -> bool {
        req.headers
            .get("authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
            .is_some_and(|t| self.tokens.contains(t))
    }

    /// ARM's 401 for a call without a valid token.
    pub(super) fn unauthorized(req: &EmuRequest) -> EmuResponse {
        let has = req.headers.contains_key("authorization");
        arm_error(
            401,
            if has {
                "InvalidAuthenticationToken"
            } else {
                "AuthenticationFailed"
            },
            if has {
                "The access token is invalid."
            } else {
                "Authentication failed. The 'Authorization' header is missing."
            },
        )
    }

    /// The token endpoint: a client-credentials grant for the principal.
    pub(super) fn token(&mut self, tenant: &str, req: &EmuRequest) -> EmuResponse {
        if req.method != "POST" {
            return EmuResponse::json(405, json!({"error": "invalid_request"}));
        }
        let form: HashMap<String, String> =
            form_urlencoded::parse(&req.body).into_owned().collect();
        let bad = |code: &str, desc: &str, n: u32| {
            EmuResponse::json(
                if code == "invalid_client" { 401 } else { 400 },
                json!({"error": code, "error_description": desc, "error_codes": [n]}),
            )
        };
        if !tenant.eq_ignore_ascii_case(&self.principal.tenant) {
            return bad(
                "invalid_request",
                &format!("AADSTS90002: Tenant '{tenant}' not found."),
                90002,
            );
        }
        if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
            return bad(
                "unsupported_grant_type",
                "AADSTS70003: The app requested an unsupported grant type.",
                70003,
            );
        }
        if form.get("client_id") != Some(&self.principal.client_id) {
            return bad(
                "unauthorized_client",
                "AADSTS700016: Application not found in the directory.",
                700016,
            );
        }
        if form.get("client_secret") != Some(&self.principal.client_secret) {
            return bad(
                "invalid_client",
                "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
                7000215,
            );
        }
        let n = self.next();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let token = format!("emu.{n:x}.{nanos:x}");
        self.tokens.insert(token.clone());
        EmuResponse::json(
            200,
            json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}),
        )
    }
}
