//! Entra ID credentials for ARM (and anything else that takes an
//! `azure_core` [`TokenCredential`]).
//!
//! [`AuthSettings::from_env`] reads the standard variables: `AZURE_*`, the
//! workshop names (`SP_APP_ID`, `SP_APP_SECRET`, `TENANT_ID`) as fallbacks,
//! an Azure Pipelines service connection (`AZURESUBSCRIPTION_*`,
//! `SYSTEM_OIDCREQUESTURI`, `SYSTEM_ACCESSTOKEN`) and the managed identity
//! endpoints (`IDENTITY_ENDPOINT`/`IDENTITY_HEADER`, `MSI_ENDPOINT`);
//! [`credential`] turns an [`AuthChoice`] and the settings into a credential.
//! `auto` finds a VM's managed identity as the Azure SDKs do, by asking the
//! instance metadata service (IMDS) once ([`imds_available`]).
//! The HTTP transport can be pinned to the root certificate(s) of a PEM file
//! (a TLS-intercepting proxy's, the local ARM emulator's): then only those are
//! trusted and the system's roots are not loaded at all, unless asked to
//! merge them; the authority host is configurable for
//! sovereign clouds and the emulator.

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ClientOptions, ExponentialRetryOptions, RetryOptions, Transport};
use azure_identity::{
    AzureCliCredential, AzureCliCredentialOptions, AzurePipelinesCredential,
    AzurePipelinesCredentialOptions, ClientAssertionCredentialOptions, ClientSecretCredential,
    ClientSecretCredentialOptions, ManagedIdentityCredential, ManagedIdentityCredentialOptions,
    UserAssignedId, WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Environment variable naming a PEM file with an extra trusted root certificate.
pub const CA_CERT_ENV: &str = "MLSCALER_CA_CERT";
/// Environment variable: `true` trusts the system's roots as well as the
/// PEM file's (default: only the file's).
pub const CA_CERT_MERGE_ENV: &str = "MLSCALER_CA_CERT_MERGE";
/// Environment variable with the Entra ID authority host (as azure_identity reads it).
pub const AUTHORITY_HOST_ENV: &str = "AZURE_AUTHORITY_HOST";

/// The id of the Azure Pipelines service connection; `AzureCLI@2` and
/// `AzurePowerShell@5` set it (with the two below) in their step for a
/// workload identity federation service connection.
pub const PIPELINES_SERVICE_CONNECTION_ENV: &str = "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID";
/// The client (application) id of the service connection's identity.
pub const PIPELINES_CLIENT_ID_ENV: &str = "AZURESUBSCRIPTION_CLIENT_ID";
/// The tenant of the service connection's identity.
pub const PIPELINES_TENANT_ID_ENV: &str = "AZURESUBSCRIPTION_TENANT_ID";
/// Where the job asks Azure DevOps for an ID token (set in every job).
pub const PIPELINES_OIDC_ENV: &str = "SYSTEM_OIDCREQUESTURI";
/// The job's access token: in a step's environment only when mapped
/// (`env: SYSTEM_ACCESSTOKEN: $(System.AccessToken)`).
pub const PIPELINES_ACCESS_TOKEN_ENV: &str = "SYSTEM_ACCESSTOKEN";

/// The instance metadata service of Azure VMs (and scale set instances,
/// AKS nodes, self-hosted agents on Azure VMs).
pub const IMDS_ADDR: &str = "169.254.169.254:80";
/// How long [`imds_available`] waits for IMDS (the Azure SDKs' probe waits 1 s).
pub const IMDS_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Which kind of credential to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthChoice {
    /// The first that applies, in this order:
    /// 1. client secret (`AZURE_CLIENT_SECRET` or `SP_APP_SECRET` is set);
    /// 2. Azure Pipelines service connection
    ///    (`AZURESUBSCRIPTION_SERVICE_CONNECTION_ID` is set);
    /// 3. workload identity (`AZURE_FEDERATED_TOKEN_FILE` is set);
    /// 4. managed identity named by the environment: `IDENTITY_ENDPOINT`
    ///    (App Service, Functions, Container Apps), or
    ///    `AZURE_MANAGED_IDENTITY=1`; with only `MSI_ENDPOINT` (Cloud Shell,
    ///    which azure_identity cannot use) the Azure CLI, signed in there;
    /// 5. managed identity through IMDS, when IMDS answers (one probe of at
    ///    most [`IMDS_PROBE_TIMEOUT`] per process): Azure VMs;
    /// 6. the Azure CLI.
    ///
    /// The choice is made once from the settings; there is no fall-through
    /// at token time, so a broken configuration fails loudly instead of
    /// silently using another identity.
    #[default]
    Auto,
    /// Service principal with a client secret.
    ClientSecret,
    /// An Azure Pipelines service connection with workload identity
    /// federation: the job's ID token, no secret.
    AzurePipelines,
    /// Kubernetes workload identity (federated token file).
    WorkloadIdentity,
    /// Managed identity (system-assigned, or user-assigned by client id).
    ManagedIdentity,
    /// The Azure CLI's logged-in account (`az account get-access-token`).
    AzureCli,
}

impl AuthChoice {
    /// The name `--auth` takes (`auto`, `client-secret`, ...).
    pub fn name(self) -> &'static str {
        match self {
            AuthChoice::Auto => "auto",
            AuthChoice::ClientSecret => "client-secret",
            AuthChoice::AzurePipelines => "azure-pipelines",
            AuthChoice::WorkloadIdentity => "workload-identity",
            AuthChoice::ManagedIdentity => "managed-identity",
            AuthChoice::AzureCli => "azure-cli",
        }
    }
}

impl std::fmt::Display for AuthChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for AuthChoice {
    type Err = CredentialError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "auto" => Ok(Self::Auto),
            "clientsecret" | "secret" | "sp" => Ok(Self::ClientSecret),
            "azurepipelines" | "pipelines" | "ado" => Ok(Self::AzurePipelines),
            "workloadidentity" | "workload" => Ok(Self::WorkloadIdentity),
            "managedidentity" | "msi" | "managed" => Ok(Self::ManagedIdentity),
            "azurecli" | "cli" | "az" => Ok(Self::AzureCli),
            _ => Err(CredentialError::UnknownChoice(s.to_string())),
        }
    }
}

/// An Azure Pipelines service connection, as the job's environment gives it.
/// `Debug` never shows the access token.
#[derive(Debug, Clone, Default)]
pub struct PipelinesConnection {
    /// `AZURESUBSCRIPTION_SERVICE_CONNECTION_ID`.
    pub service_connection_id: Option<String>,
    /// `AZURESUBSCRIPTION_CLIENT_ID` (else the settings' client id).
    pub client_id: Option<String>,
    /// `AZURESUBSCRIPTION_TENANT_ID` (else the settings' tenant id).
    pub tenant_id: Option<String>,
    /// `SYSTEM_OIDCREQUESTURI`.
    pub oidc_request_uri: Option<String>,
    /// `SYSTEM_ACCESSTOKEN`.
    pub system_access_token: Option<Secret>,
}

/// A managed identity endpoint named by the environment (the variables the
/// Azure SDKs read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManagedIdentityEnv {
    /// `IDENTITY_ENDPOINT` and `IDENTITY_HEADER`: App Service, Functions,
    /// Container Apps.
    AppService,
    /// `IDENTITY_ENDPOINT` and `IMDS_ENDPOINT`: Azure Arc (azure_identity
    /// 1.x refuses it).
    AzureArc,
    /// `IDENTITY_SERVER_THUMBPRINT` too: Service Fabric (refused likewise).
    ServiceFabric,
    /// `MSI_ENDPOINT`: Cloud Shell, Azure Machine Learning (refused likewise).
    MsiEndpoint,
    /// `AZURE_MANAGED_IDENTITY=1` (or `true`): this machine's IMDS, without
    /// probing it.
    Imds,
}

/// Settings for [`credential`]. `Debug` never shows a secret or token.
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    /// Entra ID authority host, e.g. `https://login.microsoftonline.us`
    /// (None: `AZURE_AUTHORITY_HOST`, else the public cloud).
    pub authority_host: Option<String>,
    /// A PEM file with the trusted root certificate(s): the only ones
    /// trusted, unless `ca_cert_merge`.
    pub ca_cert: Option<PathBuf>,
    /// Trust the system's roots as well as `ca_cert`'s.
    pub ca_cert_merge: bool,
    /// `AZURE_FEDERATED_TOKEN_FILE` (workload identity).
    pub federated_token_file: Option<PathBuf>,
    /// An Azure Pipelines service connection in the environment.
    pub pipelines: PipelinesConnection,
    /// A managed identity endpoint named by the environment.
    pub managed_identity_env: Option<ManagedIdentityEnv>,
    /// Whether the environment names a managed identity endpoint
    /// (`managed_identity_env.is_some()`; IMDS is not probed for it).
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
        let set = |name: &str| var(&[name]).is_some();
        let managed_identity_env = if set("IDENTITY_ENDPOINT") {
            if set("IDENTITY_HEADER") && set("IDENTITY_SERVER_THUMBPRINT") {
                Some(ManagedIdentityEnv::ServiceFabric)
            } else if set("IDENTITY_HEADER") {
                Some(ManagedIdentityEnv::AppService)
            } else if set("IMDS_ENDPOINT") {
                Some(ManagedIdentityEnv::AzureArc)
            } else {
                // Incomplete: azure_identity then falls back to IMDS too.
                Some(ManagedIdentityEnv::Imds)
            }
        } else if set("MSI_ENDPOINT") {
            Some(ManagedIdentityEnv::MsiEndpoint)
        } else if var(&["AZURE_MANAGED_IDENTITY"]).is_some_and(|v| v == "1" || v == "true") {
            Some(ManagedIdentityEnv::Imds)
        } else {
            None
        };
        AuthSettings {
            tenant_id: var(&["AZURE_TENANT_ID", "TENANT_ID"]),
            client_id: var(&["AZURE_CLIENT_ID", "SP_APP_ID"]),
            client_secret: var(&["AZURE_CLIENT_SECRET", "SP_APP_SECRET"]).map(Secret::new),
            authority_host: var(&[AUTHORITY_HOST_ENV]),
            ca_cert: var(&[CA_CERT_ENV]).map(PathBuf::from),
            ca_cert_merge: var(&[CA_CERT_MERGE_ENV]).is_some_and(|v| truthy(&v)),
            federated_token_file: var(&["AZURE_FEDERATED_TOKEN_FILE"]).map(PathBuf::from),
            pipelines: PipelinesConnection {
                service_connection_id: var(&[PIPELINES_SERVICE_CONNECTION_ENV]),
                client_id: var(&[PIPELINES_CLIENT_ID_ENV]),
                tenant_id: var(&[PIPELINES_TENANT_ID_ENV]),
                oidc_request_uri: var(&[PIPELINES_OIDC_ENV]),
                system_access_token: var(&[PIPELINES_ACCESS_TOKEN_ENV]).map(Secret::new),
            },
            managed_identity_env,
            managed_identity_available: managed_identity_env.is_some(),
        }
    }

    /// Whether the environment names an identity (steps 1 to 4 of
    /// [`AuthChoice::Auto`]), without probing IMDS. Blob Storage's `auto`
    /// uses a token only then (else the access is anonymous, or by SAS or
    /// key).
    pub fn identity_configured(&self) -> bool {
        self.client_secret.is_some()
            || self.pipelines.service_connection_id.is_some()
            || self.federated_token_file.is_some()
            || self.managed_identity_env.is_some()
    }

    /// The concrete kind `Auto` stands for with these settings, probing IMDS
    /// (once per process) when nothing in the environment decides.
    pub fn resolve(&self, choice: AuthChoice) -> AuthChoice {
        self.resolve_with(choice, imds_available)
    }

    /// As [`resolve`](Self::resolve), with `imds` answering whether IMDS is
    /// there (called only when the environment does not decide).
    pub fn resolve_with(&self, choice: AuthChoice, imds: impl FnOnce() -> bool) -> AuthChoice {
        match choice {
            AuthChoice::Auto if self.client_secret.is_some() => AuthChoice::ClientSecret,
            AuthChoice::Auto if self.pipelines.service_connection_id.is_some() => {
                AuthChoice::AzurePipelines
            }
            AuthChoice::Auto if self.federated_token_file.is_some() => AuthChoice::WorkloadIdentity,
            AuthChoice::Auto => match self.managed_identity_env {
                // Cloud Shell: azure_identity cannot use its endpoint, and
                // the Azure CLI there is signed in as the same user.
                Some(ManagedIdentityEnv::MsiEndpoint) => AuthChoice::AzureCli,
                Some(_) => AuthChoice::ManagedIdentity,
                None if imds() => AuthChoice::ManagedIdentity,
                None => AuthChoice::AzureCli,
            },
            other => other,
        }
    }
}

/// Whether this machine's instance metadata service answers (probed once per
/// process, for at most [`IMDS_PROBE_TIMEOUT`]; see [`probe_imds`]).
pub fn imds_available() -> bool {
    static IMDS: OnceLock<bool> = OnceLock::new();
    *IMDS.get_or_init(|| {
        let addr: SocketAddr = IMDS_ADDR.parse().expect("a valid socket address");
        let found = probe_imds(addr, IMDS_PROBE_TIMEOUT);
        tracing::debug!(
            found,
            "probed the instance metadata service for a managed identity"
        );
        found
    })
}

/// Asks the token endpoint of an instance metadata service at `addr`
/// without the `Metadata` header, as the Azure SDKs' probe does: IMDS
/// refuses such a request at once (HTTP 400) without issuing a token, so
/// any HTTP answer within `timeout` means it is there; no connection or no
/// answer means it is not.
pub fn probe_imds(addr: SocketAddr, timeout: Duration) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    if stream.set_read_timeout(Some(timeout)).is_err()
        || stream.set_write_timeout(Some(timeout)).is_err()
    {
        return false;
    }
    let request = format!(
        "GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        addr.ip()
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 8];
    let mut got = 0;
    while got < head.len() {
        match stream.read(&mut head[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    head[..got].starts_with(b"HTTP/1.")
}

/// Errors building a credential. Never carries a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    #[error("unknown auth choice {0:?} (expected auto, client-secret, azure-pipelines, workload-identity, managed-identity or azure-cli)")]
    UnknownChoice(String),
    #[error("{choice} authentication needs {what} (set {vars})")]
    Missing {
        choice: AuthChoice,
        what: &'static str,
        vars: &'static str,
    },
    #[error("cannot read CA certificate {path}: {message}")]
    CaCert { path: PathBuf, message: String },
    #[error("cannot build HTTP client: {0}")]
    Http(String),
    #[error("{choice} credential: {message}")]
    Identity { choice: AuthChoice, message: String },
}

/// Whether an environment value switches a setting on (`1`, `true`, `yes`,
/// `on`, any case), as clap reads boolean flags from the environment.
fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on" | "y"
    )
}

/// How the HTTP transport decides whom to trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Roots<'a> {
    /// The system's root certificates (the platform verifier).
    System,
    /// Only the root certificate(s) in this PEM file: the system's are not
    /// loaded (pinning; a TLS-intercepting proxy; the emulator).
    Only(&'a Path),
    /// The system's and this file's.
    Merge(&'a Path),
}

impl<'a> Roots<'a> {
    /// The roots `settings` ask for.
    pub fn of(settings: &'a AuthSettings) -> Self {
        match (&settings.ca_cert, settings.ca_cert_merge) {
            (None, _) => Roots::System,
            (Some(p), false) => Roots::Only(p),
            (Some(p), true) => Roots::Merge(p),
        }
    }
}

/// Makes ring rustls's crypto provider for this process, once, before the
/// first HTTP client is built (reqwest is built without a provider of its
/// own; a provider already installed stays). Every client mlscaler builds,
/// and the Azure SDK's Blob Storage transport, calls this first.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err only when another provider was installed first: keep it.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A `reqwest` client trusting `roots`, with bounded connect/read timeouts
/// and no redirects (as azure_core's default client).
pub fn http_client(roots: Roots<'_>) -> Result<reqwest::Client, CredentialError> {
    install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(20))
        .read_timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none());
    if let Roots::Only(path) | Roots::Merge(path) = roots {
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
        builder = if matches!(roots, Roots::Merge(_)) {
            builder.tls_certs_merge(certs)
        } else {
            builder.tls_certs_only(certs)
        };
    }
    builder
        .build()
        .map_err(|e| CredentialError::Http(e.to_string()))
}

/// `azure_core` client options using `http` as transport and the configured
/// authority host.
pub fn client_options(settings: &AuthSettings, http: reqwest::Client) -> ClientOptions {
    client_options_with_transport(settings, Transport::new(Arc::new(http)))
}

/// As [`client_options`], with any `azure_core` transport (tests use an
/// in-process one).
pub fn client_options_with_transport(
    settings: &AuthSettings,
    transport: Transport,
) -> ClientOptions {
    // Token requests: a few quick retries, not the SDK's default of eight
    // over more than a minute. A round that cannot sign in fails within
    // seconds with the cause (a certificate the pinned roots do not cover,
    // an unreachable authority) and the next round tries again.
    let retry = RetryOptions::exponential(ExponentialRetryOptions {
        initial_delay: azure_core::time::Duration::milliseconds(200),
        max_retries: 3,
        max_total_elapsed: azure_core::time::Duration::seconds(10),
        max_delay: azure_core::time::Duration::seconds(4),
    });
    let mut options = ClientOptions {
        transport: Some(transport),
        retry,
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
    let http = http_client(Roots::of(settings))?;
    credential_with_client(choice, settings, http)
}

/// As [`credential`], with an HTTP client built by the caller.
pub fn credential_with_client(
    choice: AuthChoice,
    settings: &AuthSettings,
    http: reqwest::Client,
) -> Result<Arc<dyn TokenCredential>, CredentialError> {
    credential_with_options(choice, settings, client_options(settings, http))
}

/// As [`credential`], with the `azure_core` client options (transport,
/// cloud) given by the caller.
pub fn credential_with_options(
    choice: AuthChoice,
    settings: &AuthSettings,
    options: ClientOptions,
) -> Result<Arc<dyn TokenCredential>, CredentialError> {
    let asked = choice;
    let choice = settings.resolve(choice);
    tracing::info!(asked = %asked, credential = %choice, "Entra ID credential");
    let identity = |e: azure_core::Error| CredentialError::Identity {
        choice,
        message: e.to_string(),
    };
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
        AuthChoice::AzurePipelines => {
            let p = &settings.pipelines;
            let missing = |what, vars| CredentialError::Missing { choice, what, vars };
            let connection = p.service_connection_id.as_deref().ok_or(missing(
                "the service connection id",
                "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID: run mlscaler inside an AzureCLI@2 step with a workload identity federation service connection, which sets it",
            ))?;
            let tenant = p
                .tenant_id
                .clone()
                .or(settings.tenant_id.clone())
                .ok_or(missing(
                    "the service connection's tenant id",
                    "AZURESUBSCRIPTION_TENANT_ID, set by AzureCLI@2, or AZURE_TENANT_ID",
                ))?;
            let client = p
                .client_id
                .clone()
                .or(settings.client_id.clone())
                .ok_or(missing(
                    "the service connection's client id",
                    "AZURESUBSCRIPTION_CLIENT_ID, set by AzureCLI@2, or AZURE_CLIENT_ID",
                ))?;
            if p.oidc_request_uri.is_none() {
                return Err(missing(
                    "the job's OIDC request URL",
                    "SYSTEM_OIDCREQUESTURI: Azure Pipelines sets it in every job; pass it on into a container",
                ));
            }
            let token = p.system_access_token.clone().ok_or(missing(
                "the job's access token",
                "SYSTEM_ACCESSTOKEN: map it in the step, env: SYSTEM_ACCESSTOKEN: $(System.AccessToken)",
            ))?;
            AzurePipelinesCredential::new(
                tenant,
                client,
                connection,
                token,
                Some(AzurePipelinesCredentialOptions {
                    credential_options: ClientAssertionCredentialOptions {
                        client_options: options,
                    },
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
            let refused = match settings.managed_identity_env {
                Some(ManagedIdentityEnv::AzureArc) => {
                    Some("Azure Arc (IDENTITY_ENDPOINT with IMDS_ENDPOINT)")
                }
                Some(ManagedIdentityEnv::ServiceFabric) => {
                    Some("Service Fabric (IDENTITY_SERVER_THUMBPRINT)")
                }
                Some(ManagedIdentityEnv::MsiEndpoint) => {
                    Some("Cloud Shell or Azure Machine Learning (MSI_ENDPOINT)")
                }
                _ => None,
            };
            if let Some(source) = refused {
                return Err(CredentialError::Identity {
                    choice,
                    message: format!(
                        "the managed identity of {source} is not supported by the Azure SDK for Rust (App Service, Functions, Container Apps and IMDS are); use --auth azure-cli there, or a service principal"
                    ),
                });
            }
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

    const PIPELINES: &[(&str, &str)] = &[
        ("AZURESUBSCRIPTION_SERVICE_CONNECTION_ID", "11111111-1111-1111-1111-111111111111"),
        ("AZURESUBSCRIPTION_CLIENT_ID", "pipelines-app"),
        ("AZURESUBSCRIPTION_TENANT_ID", "pipelines-tenant"),
        ("SYSTEM_OIDCREQUESTURI", "https://dev.azure.com/org/project/_apis/distributedtask/hubs/build/plans/p/jobs/j/oidctoken"),
        ("SYSTEM_ACCESSTOKEN", "job-access-token"),
    ];

    fn with(
        base: &[(&'static str, &'static str)],
        more: &[(&'static str, &'static str)],
    ) -> AuthSettings {
        let all: Vec<(&str, &str)> = base.iter().chain(more).copied().collect();
        settings(&all)
    }

    /// Resolves without touching the network: `imds` says whether IMDS is there.
    fn auto(s: &AuthSettings, imds: bool) -> AuthChoice {
        s.resolve_with(AuthChoice::Auto, || imds)
    }

    #[test]
    fn auto_goes_secret_pipelines_workload_managed_imds_cli() {
        let all = with(
            PIPELINES,
            &[
                ("AZURE_CLIENT_SECRET", "x"),
                ("AZURE_FEDERATED_TOKEN_FILE", "/t"),
                ("IDENTITY_ENDPOINT", "http://x"),
                ("IDENTITY_HEADER", "h"),
            ],
        );
        assert_eq!(auto(&all, true), AuthChoice::ClientSecret);
        let pipelines = with(PIPELINES, &[("AZURE_FEDERATED_TOKEN_FILE", "/t")]);
        assert_eq!(auto(&pipelines, true), AuthChoice::AzurePipelines);
        let wi = settings(&[
            ("AZURE_FEDERATED_TOKEN_FILE", "/t"),
            ("IDENTITY_ENDPOINT", "http://x"),
            ("IDENTITY_HEADER", "h"),
        ]);
        assert_eq!(auto(&wi, true), AuthChoice::WorkloadIdentity);
        let app_service = settings(&[("IDENTITY_ENDPOINT", "http://x"), ("IDENTITY_HEADER", "h")]);
        assert_eq!(
            app_service.managed_identity_env,
            Some(ManagedIdentityEnv::AppService)
        );
        assert_eq!(auto(&app_service, false), AuthChoice::ManagedIdentity);
        let forced = settings(&[("AZURE_MANAGED_IDENTITY", "1")]);
        assert_eq!(
            auto(&forced, false),
            AuthChoice::ManagedIdentity,
            "no probe needed"
        );
        // Nothing in the environment: IMDS decides.
        let none = settings(&[("AZURE_CLIENT_ID", "user-assigned")]);
        assert_eq!(auto(&none, true), AuthChoice::ManagedIdentity);
        assert_eq!(auto(&none, false), AuthChoice::AzureCli);
        assert_eq!(
            all.resolve_with(AuthChoice::AzureCli, || panic!(
                "no probe for an explicit choice"
            )),
            AuthChoice::AzureCli,
            "an explicit choice is kept"
        );
    }

    #[test]
    fn imds_is_probed_only_when_the_environment_does_not_decide() {
        for s in [
            settings(&[("AZURE_CLIENT_SECRET", "x")]),
            with(PIPELINES, &[]),
            settings(&[("AZURE_FEDERATED_TOKEN_FILE", "/t")]),
            settings(&[("MSI_ENDPOINT", "http://localhost:50342/oauth2/token")]),
        ] {
            s.resolve_with(AuthChoice::Auto, || panic!("probed IMDS for {s:?}"));
            assert!(s.identity_configured());
        }
        assert!(!settings(&[("AZURE_CLIENT_ID", "c")]).identity_configured());
    }

    #[test]
    fn the_sdks_managed_identity_variables_are_recognised() {
        let kind = |vars: &[(&str, &str)]| settings(vars).managed_identity_env;
        assert_eq!(kind(&[]), None);
        assert_eq!(
            kind(&[("IDENTITY_ENDPOINT", "http://x"), ("IDENTITY_HEADER", "h")]),
            Some(ManagedIdentityEnv::AppService)
        );
        assert_eq!(
            kind(&[
                ("IDENTITY_ENDPOINT", "http://x"),
                ("IMDS_ENDPOINT", "http://y")
            ]),
            Some(ManagedIdentityEnv::AzureArc)
        );
        assert_eq!(
            kind(&[
                ("IDENTITY_ENDPOINT", "http://x"),
                ("IDENTITY_HEADER", "h"),
                ("IDENTITY_SERVER_THUMBPRINT", "t")
            ]),
            Some(ManagedIdentityEnv::ServiceFabric)
        );
        assert_eq!(
            kind(&[("MSI_ENDPOINT", "http://x")]),
            Some(ManagedIdentityEnv::MsiEndpoint)
        );
        // Cloud Shell: the CLI is signed in; azure_identity cannot use MSI_ENDPOINT.
        let cloud_shell = settings(&[("MSI_ENDPOINT", "http://x")]);
        assert_eq!(auto(&cloud_shell, true), AuthChoice::AzureCli);
        let err = credential(AuthChoice::ManagedIdentity, &cloud_shell).unwrap_err();
        assert!(err.to_string().contains("MSI_ENDPOINT"), "{err}");
        assert!(err.to_string().contains("--auth azure-cli"), "{err}");
    }

    #[test]
    fn an_azure_pipelines_connection_names_what_is_missing() {
        let ok = with(PIPELINES, &[]);
        assert_eq!(ok.pipelines.client_id.as_deref(), Some("pipelines-app"));
        assert_eq!(ok.pipelines.tenant_id.as_deref(), Some("pipelines-tenant"));
        assert!(!format!("{ok:?}").contains("job-access-token"));
        for (drop, named) in [
            ("SYSTEM_ACCESSTOKEN", "SYSTEM_ACCESSTOKEN: map it"),
            ("AZURESUBSCRIPTION_TENANT_ID", "AZURESUBSCRIPTION_TENANT_ID"),
            ("AZURESUBSCRIPTION_CLIENT_ID", "AZURESUBSCRIPTION_CLIENT_ID"),
            ("SYSTEM_OIDCREQUESTURI", "SYSTEM_OIDCREQUESTURI"),
        ] {
            let vars: Vec<(&str, &str)> = PIPELINES
                .iter()
                .copied()
                .filter(|(k, _)| *k != drop)
                .collect();
            let err = credential(AuthChoice::Auto, &settings(&vars)).unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.starts_with("azure-pipelines authentication needs"),
                "{msg}"
            );
            assert!(msg.contains(named), "without {drop}: {msg}");
            assert!(!msg.contains("job-access-token"), "{msg}");
        }
        // The tenant and client of AZURE_* do when AzureCLI@2's are not there.
        let vars: Vec<(&str, &str)> = PIPELINES
            .iter()
            .copied()
            .filter(|(k, _)| !k.starts_with("AZURESUBSCRIPTION_") || k.ends_with("CONNECTION_ID"))
            .chain([("AZURE_TENANT_ID", "t"), ("AZURE_CLIENT_ID", "c")])
            .collect();
        let err = credential(AuthChoice::AzurePipelines, &settings(&vars)).err();
        assert!(
            !matches!(err, Some(CredentialError::Missing { .. })),
            "{err:?}"
        );
    }

    #[test]
    fn the_imds_probe_needs_an_http_answer_within_the_timeout() {
        use std::net::TcpListener;
        // An IMDS that refuses a request without the Metadata header.
        let imds = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = imds.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut c, _) = imds.accept().unwrap();
            let mut buf = [0u8; 1024];
            let n = c.read(&mut buf).unwrap();
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            c.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
            req
        });
        assert!(probe_imds(addr, Duration::from_secs(5)));
        let req = server.join().unwrap();
        assert!(
            req.starts_with("GET /metadata/identity/oauth2/token?"),
            "{req}"
        );
        assert!(
            !req.to_ascii_lowercase().contains("metadata: true"),
            "{req}"
        );
        // Nobody listening.
        let gone = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        assert!(!probe_imds(gone, Duration::from_millis(500)));
        // Listening but silent.
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let started = std::time::Instant::now();
        assert!(!probe_imds(
            silent.local_addr().unwrap(),
            Duration::from_millis(200)
        ));
        assert!(started.elapsed() < Duration::from_secs(2));
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
        assert_eq!(
            "azure-pipelines".parse::<AuthChoice>().unwrap(),
            AuthChoice::AzurePipelines
        );
        for c in [
            AuthChoice::Auto,
            AuthChoice::ClientSecret,
            AuthChoice::AzurePipelines,
            AuthChoice::WorkloadIdentity,
            AuthChoice::ManagedIdentity,
            AuthChoice::AzureCli,
        ] {
            assert_eq!(c.name().parse::<AuthChoice>().unwrap(), c);
        }
        assert!("kerberos".parse::<AuthChoice>().is_err());
    }
}
