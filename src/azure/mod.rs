//! Azure adapters: Blob Storage as an [`ObjectStore`](crate::store::ObjectStore)
//! ([`BlobStore`]), where it is ([`location`]), and how requests are authorised
//! (a SAS given by the user, a SAS signed locally with an account key ([`sas`]),
//! an Entra ID token credential ([`credential`], shared with the ARM client),
//! or nothing).

pub mod blob;
pub mod credential;
pub mod location;
pub mod sas;
pub mod secret;

pub use blob::BlobStore;
pub use secret::Secret;

/// An error and its sources, joined with ": " (a source already in the
/// text is dropped): the SDK's top-level message ("retry policy expired")
/// alone hides the cause (an untrusted certificate, a refused connection).
pub fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        src = s.source();
    }
    parts.join(": ")
}

use crate::store::Redacted;
use azure_core::credentials::TokenCredential;
use location::{parse_blob_url, parse_connection_string, Endpoint};
use sas::AccountKey;
use std::fmt;
use std::sync::Arc;

/// Errors opening Blob Storage. Messages say what is missing or wrong and never
/// contain a key, a connection string or a SAS token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AzureError {
    #[error("no Blob Storage location: give a Blob URL, or a container with an account name or a connection string")]
    MissingLocation,
    #[error("no container: give a Blob URL that includes the container, or a container name")]
    MissingContainer,
    #[error("an account key needs the storage account name (give the account name, or a URL of the form https://ACCOUNT.blob.core.windows.net/...)")]
    MissingAccount,
    #[error("invalid Blob URL '{url}': {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("invalid storage connection string: {0}")]
    InvalidConnectionString(String),
    #[error("invalid storage account name '{name}': 3 to 24 lowercase letters and digits")]
    InvalidAccountName { name: String },
    #[error("the account key for storage account '{account}' is not valid base64")]
    InvalidAccountKey { account: String },
    #[error(
        "invalid container name '{name}': 3 to 63 lowercase letters, digits and single hyphens"
    )]
    InvalidContainer { name: String },
    #[error("the credentials are for storage account '{credentials}' but the location is in account '{location}'")]
    AccountMismatch {
        credentials: String,
        location: String,
    },
    #[error("an Entra ID credential needs an https:// endpoint, not {location}")]
    CredentialNeedsHttps { location: String },
    #[error("cannot set up the Blob Storage client: {0}")]
    Client(String),
}

/// Where Blob data is and how to authorise, as given by the user (flags,
/// environment). `Debug` hides secrets and the URL's query.
#[derive(Clone, Default)]
pub struct StorageSettings {
    /// A Blob URL of a container, blob or prefix, optionally with a SAS query.
    /// When set, `container` and `prefix` are used only if the URL lacks them.
    pub url: Option<String>,
    /// Storage account name (with `account_key`, or to build the endpoint).
    pub account: Option<String>,
    /// Storage account key (base64). Used only to sign a short-lived SAS locally.
    pub account_key: Option<Secret>,
    /// Storage connection string.
    pub connection_string: Option<Secret>,
    /// Container name (when there is no URL).
    pub container: Option<String>,
    /// Blob name or prefix within the container (when there is no URL).
    pub prefix: Option<String>,
    /// Entra ID credential, used when there is no SAS, connection string or key.
    pub credential: Option<Arc<dyn TokenCredential>>,
}

impl fmt::Debug for StorageSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageSettings")
            .field("url", &self.url.as_deref().map(|u| Redacted(u).to_string()))
            .field("account", &self.account)
            .field("account_key", &self.account_key)
            .field("connection_string", &self.connection_string)
            .field("container", &self.container)
            .field("prefix", &self.prefix)
            .field(
                "credential",
                &self.credential.as_ref().map(|_| "<credential>"),
            )
            .finish()
    }
}

/// How requests are authorised.
#[derive(Clone)]
pub enum Auth {
    /// A SAS token given by the user (URL query or connection string).
    Sas(Secret),
    /// An account key: a container SAS is signed locally and renewed before it expires.
    Key(AccountKey),
    /// An Entra ID token credential (https only).
    Token(Arc<dyn TokenCredential>),
    /// No authorisation (public containers).
    Anonymous,
}

impl Auth {
    /// A short name for messages: `sas`, `account-key`, `entra-id`, `anonymous`.
    pub fn kind(&self) -> &'static str {
        match self {
            Auth::Sas(_) => "sas",
            Auth::Key(_) => "account-key",
            Auth::Token(_) => "entra-id",
            Auth::Anonymous => "anonymous",
        }
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Key(k) => f.debug_tuple("Key").field(k).finish(),
            _ => f.write_str(self.kind()),
        }
    }
}

/// A resolved location: endpoint, container, path in it, and authorisation.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The Blob service.
    pub endpoint: Endpoint,
    /// The container.
    pub container: String,
    /// The blob name or prefix in the container (may be empty).
    pub path: String,
    /// How requests are authorised.
    pub auth: Auth,
}

fn nonempty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Works out endpoint, container, path and authorisation from the settings.
///
/// Authorisation precedence: a SAS in the URL, then the connection string (its
/// SAS, else its account key), then the account key, then the Entra ID
/// credential, else anonymous.
pub fn resolve(settings: &StorageSettings) -> Result<Resolved, AzureError> {
    let cs = match &settings.connection_string {
        Some(c) if !c.is_blank() => Some(parse_connection_string(c)?),
        _ => None,
    };
    let account_setting = nonempty(&settings.account).map(str::to_string);

    // Where.
    let (endpoint, container, path, url_sas) = if let Some(u) = nonempty(&settings.url) {
        let u = parse_blob_url(u)?;
        let container = match u.container {
            Some(c) => c,
            None => nonempty(&settings.container)
                .ok_or(AzureError::MissingContainer)?
                .to_string(),
        };
        let path = if u.path.is_empty() {
            nonempty(&settings.prefix).unwrap_or("").to_string()
        } else {
            u.path
        };
        (u.endpoint, container, path, u.sas)
    } else {
        let endpoint = match (&cs, &account_setting) {
            (Some(cs), _) => cs.endpoint.clone(),
            (None, Some(a)) => Endpoint::for_account(a, "https", "core.windows.net")?,
            (None, None) => return Err(AzureError::MissingLocation),
        };
        let container = nonempty(&settings.container)
            .ok_or(AzureError::MissingContainer)?
            .to_string();
        let path = nonempty(&settings.prefix).unwrap_or("").to_string();
        (endpoint, container, path, None)
    };
    location::check_container_name(&container)?;

    // How.
    let key_auth = |account: Option<String>, key: &Secret| -> Result<Auth, AzureError> {
        let account = account
            .or_else(|| endpoint.account.clone())
            .ok_or(AzureError::MissingAccount)?;
        if let Some(loc) = &endpoint.account {
            if *loc != account {
                return Err(AzureError::AccountMismatch {
                    credentials: account,
                    location: loc.clone(),
                });
            }
        }
        Ok(Auth::Key(AccountKey::new(&account, key)?))
    };
    // Only the first credential in the order is looked at: a SAS in the URL
    // wins, whatever account the other settings name.
    let cs_auth = |cs: &location::ConnectionString| -> Result<Option<Auth>, AzureError> {
        Ok(match (&cs.sas, &cs.account_key) {
            (Some(s), _) => Some(Auth::Sas(s.clone())),
            (None, Some(k)) => Some(key_auth(
                cs.account_name.clone().or(cs.endpoint.account.clone()),
                k,
            )?),
            (None, None) => None,
        })
    };
    let from_cs = match (&url_sas, &cs) {
        (None, Some(cs)) => cs_auth(cs)?,
        _ => None,
    };
    let auth = if let Some(s) = url_sas {
        Auth::Sas(s)
    } else if let Some(a) = from_cs {
        a
    } else if let Some(k) = settings.account_key.as_ref().filter(|k| !k.is_blank()) {
        key_auth(account_setting, k)?
    } else if let Some(c) = &settings.credential {
        if endpoint.service.scheme() != "https" {
            return Err(AzureError::CredentialNeedsHttps {
                location: endpoint.service.to_string(),
            });
        }
        Auth::Token(c.clone())
    } else {
        Auth::Anonymous
    };
    Ok(Resolved {
        endpoint,
        container,
        path,
        auth,
    })
}

/// Opens the container named by the settings. Returns the store (rooted at the
/// container) and the blob name or prefix within it (possibly empty); use
/// [`BlobStore::under`] to root a store at that prefix instead.
pub fn open(settings: &StorageSettings) -> Result<(BlobStore, String), AzureError> {
    let r = resolve(settings)?;
    let path = r.path.clone();
    Ok((BlobStore::new(r)?, path))
}

#[cfg(test)]
mod tests {
    use super::location::DEV_ACCOUNT_KEY;
    use super::*;

    fn settings() -> StorageSettings {
        StorageSettings::default()
    }

    #[test]
    fn debug_of_settings_hides_every_secret() {
        let s = StorageSettings {
            url: Some("https://acct.blob.core.windows.net/c01/p?sv=1&sig=SIGVALUE".into()),
            account: Some("acct".into()),
            account_key: Some(Secret::new("KEYVALUE")),
            connection_string: Some(Secret::new("AccountName=acct;AccountKey=CSKEY")),
            container: Some("c01".into()),
            prefix: None,
            credential: None,
        };
        let d = format!("{s:?}");
        for secret in ["SIGVALUE", "KEYVALUE", "CSKEY"] {
            assert!(!d.contains(secret), "{d}");
        }
        assert!(
            d.contains("acct.blob.core.windows.net/c01/p?<redacted>"),
            "{d}"
        );
    }

    #[test]
    fn a_sas_in_the_url_wins_over_everything_else() {
        let s = StorageSettings {
            url: Some("https://acct.blob.core.windows.net/c01/data/?sv=1&sig=x".into()),
            account_key: Some(Secret::new(DEV_ACCOUNT_KEY)),
            connection_string: Some(Secret::new("AccountName=acct;AccountKey=a2V5")),
            ..settings()
        };
        let r = resolve(&s).unwrap();
        assert!(matches!(r.auth, Auth::Sas(_)));
        assert_eq!(r.container, "c01");
        assert_eq!(r.path, "data/");
    }

    #[test]
    fn a_sas_in_the_url_is_used_whatever_account_the_other_settings_name() {
        // The workshop's variables name another account, with its key and a
        // connection string: the URL's SAS comes first, as the README says.
        let s = StorageSettings {
            url: Some("https://acct.blob.core.windows.net/c01/data/?sv=1&sig=x".into()),
            account: Some("other".into()),
            account_key: Some(Secret::new(DEV_ACCOUNT_KEY)),
            connection_string: Some(Secret::new("AccountName=other;AccountKey=a2V5")),
            ..settings()
        };
        let r = resolve(&s).unwrap();
        assert!(matches!(r.auth, Auth::Sas(_)), "{:?}", r.auth);
        assert_eq!(r.endpoint.account.as_deref(), Some("acct"));
        // Without the SAS, the connection string for another account is refused.
        let s = StorageSettings {
            url: Some("https://acct.blob.core.windows.net/c01/data/".into()),
            ..s
        };
        assert!(matches!(
            resolve(&s).unwrap_err(),
            AzureError::AccountMismatch { .. }
        ));
    }

    #[test]
    fn a_connection_string_wins_over_a_plain_account_key() {
        let s = StorageSettings {
            connection_string: Some(Secret::new(
                "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;SharedAccessSignature=sv=1&sig=x",
            )),
            account: Some("other".into()),
            account_key: Some(Secret::new(DEV_ACCOUNT_KEY)),
            container: Some("c01".into()),
            prefix: Some("train/".into()),
            ..settings()
        };
        let r = resolve(&s).unwrap();
        assert!(matches!(r.auth, Auth::Sas(_)));
        assert_eq!(
            r.endpoint.service.as_str(),
            "http://127.0.0.1:10000/devstoreaccount1"
        );
        assert_eq!(r.path, "train/");
    }

    #[test]
    fn account_key_and_container_build_the_public_endpoint() {
        let s = StorageSettings {
            account: Some("acct".into()),
            account_key: Some(Secret::new(DEV_ACCOUNT_KEY)),
            container: Some("c01".into()),
            prefix: Some("x.csv".into()),
            ..settings()
        };
        let r = resolve(&s).unwrap();
        match &r.auth {
            Auth::Key(k) => assert_eq!(k.account(), "acct"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            r.endpoint.container_url(&r.container).as_str(),
            "https://acct.blob.core.windows.net/c01"
        );
        assert_eq!(r.path, "x.csv");
    }

    #[test]
    fn a_key_for_another_account_than_the_url_is_an_error() {
        let s = StorageSettings {
            url: Some("https://acct.blob.core.windows.net/c01".into()),
            account: Some("other".into()),
            account_key: Some(Secret::new(DEV_ACCOUNT_KEY)),
            ..settings()
        };
        let e = resolve(&s).unwrap_err();
        assert!(matches!(e, AzureError::AccountMismatch { .. }), "{e}");
        assert!(!e.to_string().contains("Eby8"));
    }

    #[test]
    fn a_key_takes_the_account_from_the_url() {
        let s = StorageSettings {
            url: Some("https://acct.blob.core.windows.net/c01/p".into()),
            account_key: Some(Secret::new(DEV_ACCOUNT_KEY)),
            ..settings()
        };
        assert!(matches!(resolve(&s).unwrap().auth, Auth::Key(_)));
    }

    #[test]
    fn missing_pieces_are_named() {
        assert!(matches!(
            resolve(&settings()).unwrap_err(),
            AzureError::MissingLocation
        ));
        let s = StorageSettings {
            account: Some("acct".into()),
            ..settings()
        };
        assert!(matches!(
            resolve(&s).unwrap_err(),
            AzureError::MissingContainer
        ));
        let s = StorageSettings {
            url: Some("https://files.contoso.com/c01/p".into()),
            account_key: Some(Secret::new(DEV_ACCOUNT_KEY)),
            ..settings()
        };
        assert!(matches!(
            resolve(&s).unwrap_err(),
            AzureError::MissingAccount
        ));
        let s = StorageSettings {
            account: Some("acct".into()),
            account_key: Some(Secret::new("%%%notbase64")),
            container: Some("c01".into()),
            ..settings()
        };
        let e = resolve(&s).unwrap_err();
        assert!(matches!(e, AzureError::InvalidAccountKey { .. }));
        assert!(!e.to_string().contains("notbase64"));
    }

    #[test]
    fn without_any_credential_access_is_anonymous() {
        let s = StorageSettings {
            url: Some("https://acct.blob.core.windows.net/public/data.csv".into()),
            ..settings()
        };
        let r = resolve(&s).unwrap();
        assert!(matches!(r.auth, Auth::Anonymous));
        assert_eq!(r.path, "data.csv");
    }

    fn credential() -> Arc<dyn TokenCredential> {
        azure_identity::ClientSecretCredential::new(
            "00000000-0000-0000-0000-000000000000",
            "client".into(),
            "not-a-real-secret".to_string().into(),
            None,
        )
        .unwrap()
    }

    #[test]
    fn an_entra_credential_is_used_only_without_sas_connection_string_or_key() {
        let s = StorageSettings {
            url: Some("https://acct.blob.core.windows.net/c01/p".into()),
            credential: Some(credential()),
            ..settings()
        };
        assert!(matches!(resolve(&s).unwrap().auth, Auth::Token(_)));
        let s = StorageSettings {
            account_key: Some(Secret::new(DEV_ACCOUNT_KEY)),
            ..s
        };
        assert!(matches!(resolve(&s).unwrap().auth, Auth::Key(_)));
        assert!(!format!("{s:?}").contains("not-a-real-secret"));
    }

    #[test]
    fn an_entra_credential_needs_https() {
        let s = StorageSettings {
            url: Some("http://127.0.0.1:10000/devstoreaccount1/c01".into()),
            credential: Some(credential()),
            ..settings()
        };
        assert!(matches!(
            resolve(&s).unwrap_err(),
            AzureError::CredentialNeedsHttps { .. }
        ));
    }
}
