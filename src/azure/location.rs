//! Parsing where Blob data lives: Blob URLs (public and sovereign clouds,
//! custom domains, and the emulator's path-style `http://host:port/account/...`)
//! and storage connection strings.

use super::secret::Secret;
use super::AzureError;
use crate::store::Redacted;
use url::{Host, Url};

/// The emulator's well-known account name (public, documented).
pub const DEV_ACCOUNT: &str = "devstoreaccount1";
/// The emulator's well-known account key (public, documented; not a secret).
pub const DEV_ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// The emulator's default Blob endpoint.
pub const DEV_BLOB_ENDPOINT: &str = "http://127.0.0.1:10000/devstoreaccount1";

/// A Blob service endpoint: `https://ACCOUNT.blob.core.windows.net` or, path-style,
/// `http://127.0.0.1:10000/ACCOUNT`. Never has a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The service URL (no trailing slash, no query).
    pub service: Url,
    /// The account name, when the URL names it (host- or path-style).
    pub account: Option<String>,
}

impl Endpoint {
    /// `{protocol}://{account}.blob.{suffix}`.
    pub fn for_account(account: &str, protocol: &str, suffix: &str) -> Result<Self, AzureError> {
        check_account_name(account)?;
        let text = format!("{protocol}://{account}.blob.{suffix}");
        let service = Url::parse(&text).map_err(|e| AzureError::InvalidUrl {
            url: text.clone(),
            reason: e.to_string(),
        })?;
        Ok(Endpoint {
            service,
            account: Some(account.to_string()),
        })
    }

    /// The URL of a container in this service.
    pub fn container_url(&self, container: &str) -> Url {
        let mut u = self.service.clone();
        u.path_segments_mut()
            .expect("service URLs are base URLs")
            .pop_if_empty()
            .push(container);
        u
    }
}

/// A parsed Blob URL: endpoint, container, path in the container, and SAS token.
#[derive(Debug, Clone)]
pub struct BlobUrl {
    /// Where the service is.
    pub endpoint: Endpoint,
    /// The container, if the URL has one.
    pub container: Option<String>,
    /// The blob name or prefix after the container (percent-decoded; may be empty;
    /// a trailing `/` is kept).
    pub path: String,
    /// The query, when it is a SAS token (has `sig`).
    pub sas: Option<Secret>,
}

/// True for hosts that the emulator (or a proxy to it) serves path-style:
/// IP literals, `localhost` and single-label names such as `azurite`.
fn is_path_style(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(_)) | Some(Host::Ipv6(_)) => true,
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost") || !d.contains('.'),
        None => false,
    }
}

fn percent_decode(s: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| format!("'{s}' is not valid percent-encoded UTF-8"))
}

fn check_account_name(account: &str) -> Result<(), AzureError> {
    let ok = (3..=24).contains(&account.len())
        && account
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(AzureError::InvalidAccountName {
            name: account.to_string(),
        })
    }
}

/// Checks a container name: 3 to 63 lowercase letters, digits and single
/// hyphens, starting and ending with a letter or digit; or `$root`, `$web`, `$logs`.
pub fn check_container_name(name: &str) -> Result<(), AzureError> {
    let special = matches!(name, "$root" | "$web" | "$logs");
    let ok = special
        || ((3..=63).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-')
            && !name.ends_with('-')
            && !name.contains("--"));
    if ok {
        Ok(())
    } else {
        Err(AzureError::InvalidContainer {
            name: name.to_string(),
        })
    }
}

/// Parses a Blob URL such as `https://acct.blob.core.windows.net/container/prefix?SAS`
/// or `http://127.0.0.1:10000/devstoreaccount1/container/prefix`.
pub fn parse_blob_url(text: &str) -> Result<BlobUrl, AzureError> {
    let invalid = |reason: &str| AzureError::InvalidUrl {
        url: Redacted(text).to_string(),
        reason: reason.to_string(),
    };
    let url = Url::parse(text.trim()).map_err(|e| invalid(&e.to_string()))?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(invalid(
            "only http:// and https:// URLs are Blob Storage URLs",
        ));
    }
    let Some(host) = url.host_str() else {
        return Err(invalid("no host"));
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("user information in the URL is not supported"));
    }
    let sas = match url.query() {
        None | Some("") => None,
        Some(q) => {
            let has_sig = url.query_pairs().any(|(k, v)| k == "sig" && !v.is_empty());
            if !has_sig {
                return Err(invalid(
                    "the query is not a SAS token (no 'sig'); only a SAS token may follow '?'",
                ));
            }
            Some(Secret::new(q))
        }
    };
    let mut rest = url.path().trim_start_matches('/');
    let mut service = url.clone();
    service.set_query(None);
    service.set_fragment(None);
    service.set_path("");
    let account = if is_path_style(&url) {
        let (account, r) = rest.split_once('/').unwrap_or((rest, ""));
        if account.is_empty() {
            return Err(invalid(
                "no account name in the path (expected http://host:port/ACCOUNT/container/...)",
            ));
        }
        let account = percent_decode(account).map_err(|r| invalid(&r))?;
        service.set_path(&format!("/{account}"));
        rest = r;
        Some(account)
    } else {
        host_account(host)
    };
    let (container, path) = rest.split_once('/').unwrap_or((rest, ""));
    let container = if container.is_empty() {
        None
    } else {
        let c = percent_decode(container).map_err(|r| invalid(&r))?;
        check_container_name(&c)?;
        Some(c)
    };
    let path = percent_decode(path).map_err(|r| invalid(&r))?;
    Ok(BlobUrl {
        endpoint: Endpoint { service, account },
        container,
        path,
        sas,
    })
}

fn host_account(host: &str) -> Option<String> {
    let mut labels = host.split('.');
    let first = labels.next()?;
    let second = labels.next()?;
    (second.eq_ignore_ascii_case("blob") && !first.is_empty()).then(|| first.to_ascii_lowercase())
}

/// What a storage connection string says.
#[derive(Debug, Clone)]
pub struct ConnectionString {
    /// The Blob endpoint (from `BlobEndpoint`, or built from `AccountName`,
    /// `DefaultEndpointsProtocol` and `EndpointSuffix`).
    pub endpoint: Endpoint,
    /// `AccountName`.
    pub account_name: Option<String>,
    /// `AccountKey`.
    pub account_key: Option<Secret>,
    /// `SharedAccessSignature` (without a leading `?`).
    pub sas: Option<Secret>,
}

/// Parses a connection string (`Key=Value;...`, keys case-insensitive). Errors
/// name the keys involved, never the values.
pub fn parse_connection_string(cs: &Secret) -> Result<ConnectionString, AzureError> {
    let bad = |reason: &str| AzureError::InvalidConnectionString(reason.to_string());
    let mut protocol = None;
    let mut account_name = None;
    let mut account_key = None;
    let mut blob_endpoint = None;
    let mut suffix = None;
    let mut sas = None;
    let mut dev = false;
    for part in cs.expose().split(';') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((k, v)) = part.split_once('=') else {
            return Err(bad("every part must be Key=Value"));
        };
        let v = v.trim();
        match k.trim().to_ascii_lowercase().as_str() {
            "defaultendpointsprotocol" => protocol = Some(v.to_ascii_lowercase()),
            "accountname" => account_name = Some(v.to_string()),
            "accountkey" => account_key = Some(Secret::new(v)),
            "blobendpoint" => blob_endpoint = Some(v.to_string()),
            "endpointsuffix" => suffix = Some(v.trim_start_matches('.').to_string()),
            "sharedaccesssignature" => sas = Some(Secret::new(v.trim_start_matches('?'))),
            "usedevelopmentstorage" => dev = v.eq_ignore_ascii_case("true"),
            // Queue/Table/File endpoints and unknown keys do not matter here.
            _ => {}
        }
    }
    if dev {
        let endpoint = match &blob_endpoint {
            Some(b) => parse_endpoint(b)?,
            None => parse_endpoint(DEV_BLOB_ENDPOINT)?,
        };
        return Ok(ConnectionString {
            endpoint,
            account_name: Some(account_name.unwrap_or_else(|| DEV_ACCOUNT.to_string())),
            account_key: Some(account_key.unwrap_or_else(|| Secret::new(DEV_ACCOUNT_KEY))),
            sas,
        });
    }
    let endpoint = match (&blob_endpoint, &account_name) {
        (Some(b), _) => {
            let mut e = parse_endpoint(b)?;
            if e.account.is_none() {
                e.account = account_name.clone();
            }
            e
        }
        (None, Some(name)) => {
            let protocol = protocol.as_deref().unwrap_or("https");
            if protocol != "https" && protocol != "http" {
                return Err(bad("DefaultEndpointsProtocol must be https or http"));
            }
            Endpoint::for_account(
                name,
                protocol,
                suffix.as_deref().unwrap_or("core.windows.net"),
            )?
        }
        (None, None) => return Err(bad("it has neither AccountName nor BlobEndpoint")),
    };
    if account_key.as_ref().is_some_and(|k| k.is_blank()) {
        return Err(bad("AccountKey is empty"));
    }
    Ok(ConnectionString {
        endpoint,
        account_name,
        account_key,
        sas: sas.filter(|s| !s.is_blank()),
    })
}

/// Parses a service endpoint URL (a `BlobEndpoint`): no container, no query.
fn parse_endpoint(text: &str) -> Result<Endpoint, AzureError> {
    let u = parse_blob_url(text).map_err(|e| match e {
        AzureError::InvalidUrl { reason, .. } => {
            AzureError::InvalidConnectionString(format!("BlobEndpoint: {reason}"))
        }
        other => other,
    })?;
    if u.container.is_some() || u.sas.is_some() {
        return Err(AzureError::InvalidConnectionString(
            "BlobEndpoint must be the service URL only (no container, no query)".into(),
        ));
    }
    Ok(u.endpoint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_blob_url_gives_account_container_prefix_and_sas() {
        let u = parse_blob_url(
            "https://acct.blob.core.windows.net/data/2024/q1/?sv=2022-11-02&sig=abc%2Bdef",
        )
        .unwrap();
        assert_eq!(u.endpoint.account.as_deref(), Some("acct"));
        assert_eq!(
            u.endpoint.service.as_str(),
            "https://acct.blob.core.windows.net/"
        );
        assert_eq!(u.container.as_deref(), Some("data"));
        assert_eq!(u.path, "2024/q1/");
        assert_eq!(u.sas.unwrap().expose(), "sv=2022-11-02&sig=abc%2Bdef");
        assert_eq!(
            u.endpoint.container_url("data").as_str(),
            "https://acct.blob.core.windows.net/data"
        );
    }

    #[test]
    fn sovereign_cloud_and_custom_domains_parse() {
        let u = parse_blob_url("https://acct.blob.core.chinacloudapi.cn/c01/x.csv").unwrap();
        assert_eq!(u.endpoint.account.as_deref(), Some("acct"));
        assert_eq!(u.path, "x.csv");
        let u = parse_blob_url("https://acct.blob.core.usgovcloudapi.net/c01").unwrap();
        assert_eq!(u.container.as_deref(), Some("c01"));
        assert_eq!(u.path, "");
        let u = parse_blob_url("https://files.contoso.com/c01/a/b").unwrap();
        assert_eq!(u.endpoint.account, None);
        assert_eq!(u.container.as_deref(), Some("c01"));
        assert_eq!(u.path, "a/b");
    }

    #[test]
    fn an_emulator_url_is_path_style() {
        let u =
            parse_blob_url("http://127.0.0.1:43123/devstoreaccount1/data/my%20file.csv").unwrap();
        assert_eq!(u.endpoint.account.as_deref(), Some("devstoreaccount1"));
        assert_eq!(
            u.endpoint.service.as_str(),
            "http://127.0.0.1:43123/devstoreaccount1"
        );
        assert_eq!(u.container.as_deref(), Some("data"));
        assert_eq!(u.path, "my file.csv");
        assert_eq!(
            u.endpoint.container_url("data").as_str(),
            "http://127.0.0.1:43123/devstoreaccount1/data"
        );
        let u = parse_blob_url("http://azurite:10000/devstoreaccount1/data/a/b/c.csv").unwrap();
        assert_eq!(u.path, "a/b/c.csv");
        let u = parse_blob_url("http://localhost:10000/devstoreaccount1").unwrap();
        assert_eq!(u.container, None);
    }

    #[test]
    fn bad_urls_are_rejected_with_the_query_redacted() {
        let e = parse_blob_url("https://acct.blob.core.windows.net/c01?foo=bar").unwrap_err();
        assert!(e.to_string().contains("SAS"), "{e}");
        assert!(!e.to_string().contains("foo=bar"), "{e}");
        assert!(parse_blob_url("ftp://acct.blob.core.windows.net/c01").is_err());
        assert!(matches!(
            parse_blob_url("https://acct.blob.core.windows.net/Bad_Name/x"),
            Err(AzureError::InvalidContainer { .. })
        ));
        assert!(parse_blob_url("http://127.0.0.1:10000/").is_err());
    }

    #[test]
    fn a_full_connection_string_parses_without_printing_the_key() {
        let cs = Secret::new(
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=c2VjcmV0a2V5;EndpointSuffix=core.chinacloudapi.cn",
        );
        let p = parse_connection_string(&cs).unwrap();
        assert_eq!(
            p.endpoint.service.as_str(),
            "https://acct.blob.core.chinacloudapi.cn/"
        );
        assert_eq!(p.account_key.as_ref().unwrap().expose(), "c2VjcmV0a2V5");
        assert!(!format!("{p:?}").contains("c2VjcmV0a2V5"));
    }

    #[test]
    fn blob_endpoint_and_sas_connection_strings_parse() {
        let cs = Secret::new(
            "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;SharedAccessSignature=?sv=1&sig=x",
        );
        let p = parse_connection_string(&cs).unwrap();
        assert_eq!(p.endpoint.account.as_deref(), Some("devstoreaccount1"));
        assert_eq!(p.sas.unwrap().expose(), "sv=1&sig=x");
        let cs = Secret::new(
            "accountname=acct;accountkey=a2V5;blobendpoint=https://acct.blob.core.windows.net/",
        );
        let p = parse_connection_string(&cs).unwrap();
        assert_eq!(p.endpoint.account.as_deref(), Some("acct"));
    }

    #[test]
    fn development_storage_means_the_emulator_with_its_well_known_key() {
        let p = parse_connection_string(&Secret::new("UseDevelopmentStorage=true")).unwrap();
        assert_eq!(
            p.endpoint.service.as_str(),
            "http://127.0.0.1:10000/devstoreaccount1"
        );
        assert_eq!(p.account_name.as_deref(), Some(DEV_ACCOUNT));
        assert_eq!(p.account_key.unwrap().expose(), DEV_ACCOUNT_KEY);
    }

    #[test]
    fn a_broken_connection_string_names_keys_not_values() {
        let e = parse_connection_string(&Secret::new("AccountKey=topsecret")).unwrap_err();
        assert!(e.to_string().contains("AccountName"), "{e}");
        assert!(!e.to_string().contains("topsecret"));
        let e = parse_connection_string(&Secret::new("topsecret")).unwrap_err();
        assert!(!e.to_string().contains("topsecret"));
    }
}
