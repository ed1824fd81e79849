//! Entra ID credentials for ARM (and anything else that takes an
//! `azure_core` [`TokenCredential`]).
//!
//! [`AuthSettings::from_env`] reads the standard `AZURE_*` variables, with the
//! workshop names (`SP_APP_ID`, `SP_APP_SECRET`, `TENANT_ID`) as fallbacks;
//! [`credential`] turns an [`AuthChoice`] and the settings into a credential.
//! The HTTP transport can trust one extra root certificate (a PEM file), for
//! a TLS-intercepting proxy or the local ARM emulator; the authority host is
//! configurable for sovereign clouds and the emulator.

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ClientOptions, Transport};
use azure_identity::{
    AzureCliCredential, AzureCliCredentialOptions, ClientAssertionCredentialOptions,
    ClientSecretCredential, ClientSecretCredentialOptions, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions, UserAssignedId, WorkloadIdentityCredential,
    WorkloadIdentityCredentialOptions,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Environment variable naming a PEM file with an extra trusted root certificate.
pub const CA_CERT_ENV: &str = "MLSCALER_CA_CERT";
/// Environment variable with the Entra ID authority host (as azure_identity reads it).
pub const AUTHORITY_HOST_ENV: &str = "AZURE_AUTHORITY_HOST";

/// Which kind of credential to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthChoice {
    /// The first that applies, in this order: client secret (a secret is
    /// set), workload identity (`AZURE_FEDERATED_TOKEN_FILE` is set), managed
    /// identity (`IDENTITY_ENDPOINT` or `MSI_ENDPOINT` is set, i.e. App
    /// Service/Functions/Container Apps, or `AZURE_MANAGED_IDENTITY=1` for a VM
    /// through IMDS), else the Azure CLI. The choice is made once from
    /// the settings; there is no fall-through at token time, so a broken
    /// configuration fails loudly instead of silently using another identity.
    #[default]
    Auto,
    /// Service principal with a client secret.
    ClientSecret,
    /// Kubernetes workload identity (federated token file).
    WorkloadIdentity,
    /// Managed identity (system-assigned, or user-assigned by client id).
    ManagedIdentity,
    /// The Azure CLI's logged-in account (`az account get-access-token`).
    AzureCli,
}

impl std::str::FromStr for AuthChoice {
    type Err = CredentialError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "auto" => Ok(Self::Auto),
            "clientsecret" | "secret" | "sp" => Ok(Self::ClientSecret),
            "workloadidentity" | "workload" => Ok(Self::WorkloadIdentity),
            "managedidentity" | "msi" | "managed" => Ok(Self::ManagedIdentity),
            "azurecli" | "cli" | "az" => Ok(Self::AzureCli),
            _ => Err(CredentialError::UnknownChoice(s.to_string())),
        }
    }
}

/// Settings for [`credential`]. `Debug` never shows the secret.
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    /// Entra ID authority host, e.g. `https://login.microsoftonline.us`
    /// (None: `AZURE_AUTHORITY_HOST`, else the public cloud).
    pub authority_host: Option<String>,
    /// A PEM file with extra trusted root certificate(s).
    pub ca_cert: Option<PathBuf>,
    /// `AZURE_FEDERATED_TOKEN_FILE` (workload identity).
    pub federated_token_file: Option<PathBuf>,
    /// Whether a managed identity endpoint was detected (see [`AuthChoice::Auto`]).
    pub managed_identity_available: bool,
}

impl AuthSettings {
    /// Settings from the process environment.
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Settings from any variable lookup (testable without touching the
    /// process environment). `AZURE_*` names win over the workshop names.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let var = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| get(n).filter(|v| !v.trim().is_empty()))
        };
        AuthSettings {
            tenant_id: var(&["AZURE_TENANT_ID", "TENANT_ID"]),
            client_id: var(&["AZURE_CLIENT_ID", "SP_APP_ID"]),
            client_secret: var(&["AZURE_CLIENT_SECRET", "SP_APP_SECRET"]).map(Secret::new),
            authority_host: var(&[AUTHORITY_HOST_ENV]),
            ca_cert: var(&[CA_CERT_ENV]).map(PathBuf::from),
            federated_token_file: var(&["AZURE_FEDERATED_TOKEN_FILE"]).map(PathBuf::from),
            managed_identity_available: var(&["IDENTITY_ENDPOINT", "MSI_ENDPOINT"]).is_some()
                || var(&["AZURE_MANAGED_IDENTITY"]).is_some_and(|v| v == "1" || v == "true"),
        }
    }

    /// The concrete kind `Auto` stands for with these settings.
    pub fn resolve(&self, choice: AuthChoice) -> AuthChoice {
        match choice {
            AuthChoice::Auto if self.client_secret.is_some() => AuthChoice::ClientSecret,
            AuthChoice::Auto if self.federated_token_file.is_some() => AuthChoice::WorkloadIdentity,
            AuthChoice::Auto if self.managed_identity_available => AuthChoice::ManagedIdentity,
            AuthChoice::Auto => AuthChoice::AzureCli,
            other => other,
        }
    }
}

/// Errors building a credential. Never carries a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    #[error("unknown auth choice {0:?} (expected auto, client-secret, workload-identity, managed-identity or azure-cli)")]
    UnknownChoice(String),
    #[error("{choice:?} authentication needs {what} (set {vars})")]
    Missing {
        choice: AuthChoice,
        what: &'static str,
        vars: &'static str,
    },
    #[error("cannot read CA certificate {path}: {message}")]
    CaCert { path: PathBuf, message: String },
    #[error("cannot build HTTP client: {0}")]
    Http(String),
    #[error("{choice:?} credential: {message}")]
    Identity { choice: AuthChoice, message: String },
}

/// A `reqwest` client that also trusts the root certificate(s) in `ca_cert`
/// (if any), with bounded connect/read timeouts and no redirects (as
/// azure_core's default client).
pub fn http_client(ca_cert: Option<&Path>) -> Result<reqwest::Client, CredentialError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(20))
        .read_timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none());
    if let Some(path) = ca_cert {
        let pem = std::fs::read(path).map_err(|e| CredentialError::CaCert {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| CredentialError::CaCert {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        if certs.is_empty() {
            return Err(CredentialError::CaCert {
                path: path.to_path_buf(),
                message: "no PEM certificate in the file".into(),
            });
        }
        builder = builder.tls_certs_merge(certs);
    }
    builder
        .build()
        .map_err(|e| CredentialError::Http(e.to_string()))
}

/// `azure_core` client options using `http` as transport and the configured
/// authority host.
pub fn client_options(settings: &AuthSettings, http: reqwest::Client) -> ClientOptions {
    let mut options = ClientOptions {
        transport: Some(Transport::new(Arc::new(http))),
        ..Default::default()
    };
    if let Some(host) = &settings.authority_host {
        let mut custom = CustomConfiguration::default();
        custom.authority_host = host.clone();
        options.cloud = Some(Arc::new(CloudConfiguration::from(custom)));
    }
    options
}

/// Builds the credential for `choice` (see [`AuthChoice::Auto`] for the order).
pub fn credential(
    choice: AuthChoice,
    settings: &AuthSettings,
) -> Result<Arc<dyn TokenCredential>, CredentialError> {
    let http = http_client(settings.ca_cert.as_deref())?;
    credential_with_client(choice, settings, http)
}

/// As [`credential`], with an HTTP client built by the caller.
pub fn credential_with_client(
    choice: AuthChoice,
    settings: &AuthSettings,
    http: reqwest::Client,
) -> Result<Arc<dyn TokenCredential>, CredentialError> {
    let choice = settings.resolve(choice);
    let identity = |e: azure_core::Error| CredentialError::Identity {
        choice,
        message: e.to_string(),
    };
    let options = client_options(settings, http);
    Ok(match choice {
        AuthChoice::ClientSecret => {
            let tenant = settings
                .tenant_id
                .as_deref()
                .ok_or(CredentialError::Missing {
                    choice,
                    what: "a tenant id",
                    vars: "AZURE_TENANT_ID or TENANT_ID",
                })?;
            let client = settings.client_id.clone().ok_or(CredentialError::Missing {
                choice,
                what: "a client id",
                vars: "AZURE_CLIENT_ID or SP_APP_ID",
            })?;
            let secret = settings
                .client_secret
                .clone()
                .ok_or(CredentialError::Missing {
                    choice,
                    what: "a client secret",
                    vars: "AZURE_CLIENT_SECRET or SP_APP_SECRET",
                })?;
            ClientSecretCredential::new(
                tenant,
                client,
                secret,
                Some(ClientSecretCredentialOptions {
                    client_options: options,
                }),
            )
            .map_err(identity)?
        }
        AuthChoice::WorkloadIdentity => {
            WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
                credential_options: ClientAssertionCredentialOptions {
                    client_options: options,
                },
                client_id: settings.client_id.clone(),
                tenant_id: settings.tenant_id.clone(),
                token_file_path: settings.federated_token_file.clone(),
            }))
            .map_err(identity)?
        }
        AuthChoice::ManagedIdentity => {
            ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
                user_assigned_id: settings.client_id.clone().map(UserAssignedId::ClientId),
                client_options: options,
            }))
            .map_err(identity)?
        }
        AuthChoice::AzureCli | AuthChoice::Auto => {
            AzureCliCredential::new(Some(AzureCliCredentialOptions {
                tenant_id: settings.tenant_id.clone(),
                ..Default::default()
            }))
            .map_err(identity)?
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> AuthSettings {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        AuthSettings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn workshop_names_are_fallbacks_for_the_azure_names() {
        let s = settings(&[
            ("SP_APP_ID", "workshop-app"),
            ("SP_APP_SECRET", "s3cr3t"),
            ("TENANT_ID", "t1"),
            ("AZURE_TENANT_ID", "t2"),
        ]);
        assert_eq!(s.client_id.as_deref(), Some("workshop-app"));
        assert_eq!(s.tenant_id.as_deref(), Some("t2"));
        assert_eq!(s.client_secret.as_ref().map(|x| x.secret()), Some("s3cr3t"));
    }

    #[test]
    fn auto_prefers_secret_then_workload_then_managed_then_cli() {
        let all = settings(&[
            ("AZURE_CLIENT_SECRET", "x"),
            ("AZURE_FEDERATED_TOKEN_FILE", "/t"),
            ("IDENTITY_ENDPOINT", "http://x"),
        ]);
        assert_eq!(all.resolve(AuthChoice::Auto), AuthChoice::ClientSecret);
        let wi = settings(&[
            ("AZURE_FEDERATED_TOKEN_FILE", "/t"),
            ("IDENTITY_ENDPOINT", "http://x"),
        ]);
        assert_eq!(wi.resolve(AuthChoice::Auto), AuthChoice::WorkloadIdentity);
        let mi = settings(&[("AZURE_MANAGED_IDENTITY", "1")]);
        assert_eq!(mi.resolve(AuthChoice::Auto), AuthChoice::ManagedIdentity);
        assert_eq!(
            settings(&[]).resolve(AuthChoice::Auto),
            AuthChoice::AzureCli
        );
        assert_eq!(
            all.resolve(AuthChoice::AzureCli),
            AuthChoice::AzureCli,
            "an explicit choice is kept"
        );
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let s = settings(&[("AZURE_CLIENT_SECRET", "very-secret-value")]);
        assert!(!format!("{s:?}").contains("very-secret-value"));
    }

    #[test]
    fn client_secret_without_tenant_names_the_variables() {
        let s = settings(&[("AZURE_CLIENT_SECRET", "x"), ("AZURE_CLIENT_ID", "c")]);
        let err = credential(AuthChoice::ClientSecret, &s).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("AZURE_TENANT_ID"), "{msg}");
        assert!(!msg.contains("x\""), "{msg}");
    }

    #[test]
    fn auth_choice_parses_common_spellings() {
        assert_eq!(
            "client-secret".parse::<AuthChoice>().unwrap(),
            AuthChoice::ClientSecret
        );
        assert_eq!("az".parse::<AuthChoice>().unwrap(), AuthChoice::AzureCli);
        assert!("kerberos".parse::<AuthChoice>().is_err());
    }
}
