//! Shared Access Signatures signed locally with an account key (HMAC-SHA256),
//! so that the key itself is never sent anywhere.
//!
//! Two kinds, both with the string-to-sign of service version [`SAS_VERSION`]:
//! a service SAS scoped to one container (what [`super::BlobStore`] uses), and
//! an account SAS (needed to create containers, e.g. in tests).

use super::secret::Secret;
use super::AzureError;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;

/// The `sv` (signed version) of the SAS tokens made here.
pub const SAS_VERSION: &str = "2022-11-02";

/// Which protocols a SAS allows (`spr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SasProtocol {
    /// `https`: the only choice for real accounts.
    Https,
    /// `https,http`: for the local emulator, which speaks plain HTTP.
    HttpsAndHttp,
}

impl SasProtocol {
    /// The `spr` value.
    pub fn as_str(self) -> &'static str {
        match self {
            SasProtocol::Https => "https",
            SasProtocol::HttpsAndHttp => "https,http",
        }
    }

    /// `HttpsAndHttp` for an `http` endpoint, `Https` otherwise.
    pub fn for_scheme(scheme: &str) -> Self {
        if scheme.eq_ignore_ascii_case("http") {
            SasProtocol::HttpsAndHttp
        } else {
            SasProtocol::Https
        }
    }
}

/// A storage account name and its (decoded) key. `Debug` hides the key.
#[derive(Clone)]
pub struct AccountKey {
    account: String,
    key: Vec<u8>,
}

impl fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountKey")
            .field("account", &self.account)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Time format used in SAS tokens (`st`, `se`): ISO 8601, seconds, UTC.
pub fn sas_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl AccountKey {
    /// An account name with its base64 account key.
    pub fn new(account: &str, key_base64: &Secret) -> Result<Self, AzureError> {
        if account.is_empty() {
            return Err(AzureError::MissingAccount);
        }
        let key = STANDARD.decode(key_base64.expose().trim()).map_err(|_| {
            AzureError::InvalidAccountKey {
                account: account.to_string(),
            }
        })?;
        if key.is_empty() {
            return Err(AzureError::InvalidAccountKey {
                account: account.to_string(),
            });
        }
        Ok(AccountKey {
            account: account.to_string(),
            key,
        })
    }

    /// The account name.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// Base64 HMAC-SHA256 of `string_to_sign` with the account key.
    pub fn sign(&self, string_to_sign: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC accepts any key size");
        mac.update(string_to_sign.as_bytes());
        STANDARD.encode(mac.finalize().into_bytes())
    }

    /// A service SAS query string (without `?`) for one container (`sr=c`).
    ///
    /// `permissions` in the documented order, e.g. `racwdl`.
    pub fn container_sas(
        &self,
        container: &str,
        permissions: &str,
        start: DateTime<Utc>,
        expiry: DateTime<Utc>,
        protocol: SasProtocol,
    ) -> Secret {
        let (st, se) = (sas_time(start), sas_time(expiry));
        let sts =
            container_string_to_sign(&self.account, container, permissions, &st, &se, protocol);
        let sig = self.sign(&sts);
        Secret::new(
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("sv", SAS_VERSION)
                .append_pair("sr", "c")
                .append_pair("sp", permissions)
                .append_pair("st", &st)
                .append_pair("se", &se)
                .append_pair("spr", protocol.as_str())
                .append_pair("sig", &sig)
                .finish(),
        )
    }

    /// An account SAS query string (without `?`) for the Blob service.
    ///
    /// `resource_types` from `s` (service), `c` (container), `o` (object);
    /// `permissions` in the documented order, e.g. `rwdlac`.
    pub fn account_sas(
        &self,
        resource_types: &str,
        permissions: &str,
        start: DateTime<Utc>,
        expiry: DateTime<Utc>,
        protocol: SasProtocol,
    ) -> Secret {
        let (st, se) = (sas_time(start), sas_time(expiry));
        let sts = account_string_to_sign(
            &self.account,
            permissions,
            "b",
            resource_types,
            &st,
            &se,
            protocol,
        );
        let sig = self.sign(&sts);
        Secret::new(
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("sv", SAS_VERSION)
                .append_pair("ss", "b")
                .append_pair("srt", resource_types)
                .append_pair("sp", permissions)
                .append_pair("st", &st)
                .append_pair("se", &se)
                .append_pair("spr", protocol.as_str())
                .append_pair("sig", &sig)
                .finish(),
        )
    }
}

/// String-to-sign of a container service SAS (version 2020-12-06 and later):
/// permissions, start, expiry, canonicalized resource, identifier, IP,
/// protocol, version, resource (`c`), snapshot time, encryption scope, and
/// the five response-header overrides, joined by newlines.
pub fn container_string_to_sign(
    account: &str,
    container: &str,
    permissions: &str,
    start: &str,
    expiry: &str,
    protocol: SasProtocol,
) -> String {
    [
        permissions,
        start,
        expiry,
        &format!("/blob/{account}/{container}"),
        "", // signed identifier
        "", // signed IP
        protocol.as_str(),
        SAS_VERSION,
        "c", // signed resource
        "",  // snapshot time
        "",  // encryption scope
        "",  // rscc
        "",  // rscd
        "",  // rsce
        "",  // rscl
        "",  // rsct
    ]
    .join("\n")
}

/// String-to-sign of an account SAS (version 2020-12-06 and later): account,
/// permissions, services, resource types, start, expiry, IP, protocol,
/// version, encryption scope, each followed by a newline.
pub fn account_string_to_sign(
    account: &str,
    permissions: &str,
    services: &str,
    resource_types: &str,
    start: &str,
    expiry: &str,
    protocol: SasProtocol,
) -> String {
    let fields = [
        account,
        permissions,
        services,
        resource_types,
        start,
        expiry,
        "", // signed IP
        protocol.as_str(),
        SAS_VERSION,
        "", // encryption scope
    ];
    let mut s = fields.join("\n");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    // The emulator's published well-known key (not a secret).
    const DEV_KEY: &str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    fn key() -> AccountKey {
        AccountKey::new("devstoreaccount1", &Secret::new(DEV_KEY)).unwrap()
    }

    fn times() -> (DateTime<Utc>, DateTime<Utc>) {
        (
            Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap(),
            Utc.with_ymd_and_hms(2025, 1, 2, 4, 4, 5).unwrap(),
        )
    }

    #[test]
    fn the_container_string_to_sign_has_sixteen_fields_in_the_documented_order() {
        let s = container_string_to_sign(
            "acct",
            "data",
            "racwdl",
            "2025-01-02T03:04:05Z",
            "2025-01-02T04:04:05Z",
            SasProtocol::Https,
        );
        assert_eq!(
            s,
            "racwdl\n2025-01-02T03:04:05Z\n2025-01-02T04:04:05Z\n/blob/acct/data\n\n\nhttps\n2022-11-02\nc\n\n\n\n\n\n\n"
        );
        assert_eq!(s.split('\n').count(), 16);
    }

    #[test]
    fn the_account_string_to_sign_ends_with_a_newline() {
        let s = account_string_to_sign(
            "acct",
            "rwdlac",
            "b",
            "sco",
            "2025-01-02T03:04:05Z",
            "2025-01-02T04:04:05Z",
            SasProtocol::HttpsAndHttp,
        );
        assert_eq!(
            s,
            "acct\nrwdlac\nb\nsco\n2025-01-02T03:04:05Z\n2025-01-02T04:04:05Z\n\nhttps,http\n2022-11-02\n\n"
        );
    }

    // Expected signatures computed independently with Python:
    //   base64.b64encode(hmac.new(base64.b64decode(KEY), sts.encode(), hashlib.sha256).digest())
    #[test]
    fn a_container_sas_signature_matches_an_independent_hmac() {
        let (st, se) = times();
        let q = key().container_sas("data", "racwdl", st, se, SasProtocol::HttpsAndHttp);
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(q.expose().as_bytes())
            .into_owned()
            .collect();
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).unwrap().1.clone();
        assert_eq!(get("sv"), "2022-11-02");
        assert_eq!(get("sr"), "c");
        assert_eq!(get("sp"), "racwdl");
        assert_eq!(get("st"), "2025-01-02T03:04:05Z");
        assert_eq!(get("se"), "2025-01-02T04:04:05Z");
        assert_eq!(get("spr"), "https,http");
        assert_eq!(get("sig"), "iEvVwoAgo9bccoDmIuD0ToVkab7bdHKBRFx9amwmSaQ=");
    }

    #[test]
    fn an_account_sas_signature_matches_an_independent_hmac() {
        let (st, se) = times();
        let q = key().account_sas("sco", "rwdlac", st, se, SasProtocol::Https);
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(q.expose().as_bytes())
            .into_owned()
            .collect();
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).unwrap().1.clone();
        assert_eq!(get("ss"), "b");
        assert_eq!(get("srt"), "sco");
        assert_eq!(get("spr"), "https");
        assert_eq!(get("sig"), "0YtNJ7dTdOZ3E0kc2wCpZkrXzQcFmrWEFXpzdy12aDQ=");
    }

    #[test]
    fn a_bad_key_is_rejected_without_echoing_it() {
        let e = AccountKey::new("acct", &Secret::new("not base64 !!")).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("acct"));
        assert!(!text.contains("not base64"));
        let k = key();
        assert!(!format!("{k:?}").contains("Eby8"));
    }
}
