//! `--auth auto` in an Azure Pipelines step that runs with a workload
//! identity federation service connection (`AzureCLI@2`): no secret, the
//! job's own ID token exchanged for an Entra ID token. Azure DevOps and
//! Entra ID are played by an in-process transport that records each request.
//!
//! One test in its own binary: `AzurePipelinesCredential` reads
//! `SYSTEM_OIDCREQUESTURI` from the process environment, which this test sets.

use azure_core::http::headers::Headers;
use azure_core::http::{AsyncRawResponse, Body, HttpClient, Request, StatusCode, Transport};
use mlscaler::azure::credential::{self, AuthChoice, AuthSettings};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

const OIDC_URL: &str = "https://dev.azure.com/contoso/00000000-0000-0000-0000-0000000000p1/_apis/distributedtask/hubs/build/plans/plan1/jobs/job1/oidctoken";
const CONNECTION: &str = "11111111-2222-3333-4444-555555555555";
const TENANT: &str = "00000000-0000-0000-0000-0000000000aa";
const CLIENT: &str = "22222222-0000-0000-0000-000000000000";
const JOB_TOKEN: &str = "job-access-token-never-logged";
const ID_TOKEN: &str = "eyJ.federated-id-token.sig";

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    url: String,
    authorization: Option<String>,
    body: String,
}

/// Azure DevOps' OIDC endpoint and Entra ID's token endpoint.
#[derive(Debug, Default)]
struct FakeAzure {
    seen: Mutex<Vec<Seen>>,
}

impl FakeAzure {
    fn answer(&self, request: &Request) -> AsyncRawResponse {
        let body = match request.body() {
            Body::Bytes(b) => String::from_utf8_lossy(b).to_string(),
            _ => String::new(),
        };
        let url = request.url().clone();
        self.seen.lock().unwrap().push(Seen {
            method: request.method().to_string(),
            url: url.to_string(),
            authorization: request
                .headers()
                .iter()
                .find(|(k, _)| k.as_str().eq_ignore_ascii_case("authorization"))
                .map(|(_, v)| v.as_str().to_string()),
            body,
        });
        let json = if url.path().ends_with("/oidctoken") {
            format!(r#"{{"oidcToken":"{ID_TOKEN}"}}"#)
        } else if url.path() == format!("/{TENANT}/oauth2/v2.0/token") {
            r#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"entra-access-token"}"#.to_string()
        } else {
            return AsyncRawResponse::from_bytes(StatusCode::NotFound, Headers::new(), "");
        };
        let mut headers = Headers::new();
        headers.insert("content-type", "application/json");
        AsyncRawResponse::from_bytes(StatusCode::Ok, headers, json)
    }
}

// `HttpClient` is an `#[async_trait]` trait; this is its expanded signature.
impl HttpClient for FakeAzure {
    fn execute_request<'a, 'b, 'async_trait>(
        &'a self,
        request: &'b Request,
    ) -> Pin<Box<dyn Future<Output = azure_core::Result<AsyncRawResponse>> + Send + 'async_trait>>
    where
        'a: 'async_trait,
        'b: 'async_trait,
        Self: 'async_trait,
    {
        let rsp = self.answer(request);
        Box::pin(async move { Ok(rsp) })
    }
}

fn env(vars: &[(&str, &str)]) -> AuthSettings {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    AuthSettings::from_lookup(|k| map.get(k).cloned())
}

#[test]
fn auto_in_an_azure_pipelines_step_exchanges_the_jobs_id_token_without_a_secret() {
    // What AzureCLI@2 gives a step with a workload identity federation
    // connection, plus the mapped SYSTEM_ACCESSTOKEN. AZURE_CLIENT_ID names
    // another identity (say, of the agent's VM): the connection's wins.
    std::env::set_var("SYSTEM_OIDCREQUESTURI", OIDC_URL);
    let settings = env(&[
        ("SYSTEM_OIDCREQUESTURI", OIDC_URL),
        ("SYSTEM_ACCESSTOKEN", JOB_TOKEN),
        ("AZURESUBSCRIPTION_SERVICE_CONNECTION_ID", CONNECTION),
        ("AZURESUBSCRIPTION_CLIENT_ID", CLIENT),
        ("AZURESUBSCRIPTION_TENANT_ID", TENANT),
        ("AZURE_CLIENT_ID", "someone-else"),
        ("IDENTITY_ENDPOINT", "http://localhost:42356/msi/token"),
        ("IDENTITY_HEADER", "h"),
    ]);
    assert_eq!(
        settings.resolve(AuthChoice::Auto),
        AuthChoice::AzurePipelines
    );
    assert!(
        settings.identity_configured(),
        "Blob Storage's auto uses it too"
    );
    assert!(!format!("{settings:?}").contains(JOB_TOKEN));

    let fake = Arc::new(FakeAzure::default());
    let options =
        credential::client_options_with_transport(&settings, Transport::new(fake.clone()));
    let cred = credential::credential_with_options(AuthChoice::Auto, &settings, options).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let token = rt
        .block_on(cred.get_token(&["https://management.azure.com/.default"], None))
        .unwrap();
    assert_eq!(token.token.secret(), "entra-access-token");

    let seen = fake.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:#?}");
    // 1. The job's ID token for this service connection, with the job's token.
    let oidc = &seen[0];
    assert_eq!(oidc.method, "POST");
    assert!(oidc.url.starts_with(OIDC_URL), "{}", oidc.url);
    assert!(
        oidc.url
            .contains(&format!("serviceConnectionId={CONNECTION}")),
        "{}",
        oidc.url
    );
    assert_eq!(
        oidc.authorization.as_deref(),
        Some(format!("Bearer {JOB_TOKEN}").as_str())
    );
    // 2. Exchanged at Entra ID as a client assertion of the connection's app.
    let entra = &seen[1];
    assert_eq!(
        entra.url,
        format!("https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token")
    );
    let form: HashMap<String, String> = url::form_urlencoded::parse(entra.body.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(form.get("client_id").map(String::as_str), Some(CLIENT));
    assert_eq!(
        form.get("client_assertion").map(String::as_str),
        Some(ID_TOKEN)
    );
    assert_eq!(
        form.get("client_assertion_type").map(String::as_str),
        Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    );
    assert!(!form.contains_key("client_secret"));
    assert!(
        !entra.body.contains(JOB_TOKEN),
        "the job token stays with Azure DevOps"
    );
}
