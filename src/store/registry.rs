//! The model registry: versioned artifacts under one name, and a pointer to
//! the latest good one, in any [`ObjectStore`].
//!
//! ```text
//! <name>/<id>.mlsm            the artifact (header + postcard payload)
//! <name>/<id>.card.json       its model card
//! <name>/<id>.eval.svg        actual vs forecast on the evaluation window (optional)
//! <name>/<id>.profile.toml    the scaling profile published with it (optional,
//!                             `train --publish-profile`: what `tune` chose)
//! <name>/latest.json          pointer to the latest good model (and its profile)
//! <name>/rejected/<id>.card.json   cards of models the quality gate refused
//! ```
//!
//! Publishing writes the artifact, its card and its profile first and the
//! pointer last, each write atomic, so "latest" never names a missing or
//! half-written model or profile, a model and its profile are one version
//! (moved together by one write), and a failed or refused training run
//! leaves the last good pair in place.

use super::artifact::{self, ArtifactError, ArtifactPayload, EXTENSION};
use super::card::ModelCard;
use super::{ObjectStore, StoreError};
use serde::{Deserialize, Serialize};

/// The content of `<name>/latest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatestPointer {
    pub name: String,
    pub id: String,
    /// Object name of the artifact, relative to the store root.
    pub artifact: String,
    /// Object name of the card.
    pub card: String,
    pub created_at: String,
    /// CRC-32 of the whole artifact file, hex: detects a replaced artifact.
    pub crc32: String,
    /// Object name of the scaling profile published with this version, if
    /// one was (pointers written before profiles existed have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// CRC-32 of the profile, hex: detects a replaced profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_crc32: Option<String>,
}

/// Errors of the registry; each names the object involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{object}: {source}")]
    Artifact {
        object: String,
        source: ArtifactError,
    },
    #[error("{location}: no published model named '{name}' (no {name}/latest.json); train one with `mlscaler train`")]
    NoModel { location: String, name: String },
    #[error("{object}: the latest pointer is not valid JSON: {detail}")]
    BadPointer { object: String, detail: String },
    #[error("{object}: the artifact does not match the checksum in latest.json (expected {expected}, found {found}); it was replaced after publishing")]
    PointerMismatch {
        object: String,
        expected: String,
        found: String,
    },
    #[error("model name '{0}' must be non-empty and use only letters, digits, '-', '_' and '.'")]
    BadName(String),
    #[error("{location}: model '{name}' version {id} was published without a scaling profile; publish one with `mlscaler train --publish-profile FILE` (FILE: what `mlscaler tune --out` wrote)")]
    NoProfile {
        location: String,
        name: String,
        id: String,
    },
    #[error("{location}: no version {id} of model '{name}' ({object} not found)")]
    NoVersion {
        location: String,
        name: String,
        id: String,
        object: String,
    },
    #[error("{object}: the profile does not match the checksum in latest.json (expected {expected}, found {found}); it was replaced after publishing")]
    ProfileMismatch {
        object: String,
        expected: String,
        found: String,
    },
    #[error(
        "model version '{0}' must be non-empty and use only letters, digits, '-', '_' and '.'"
    )]
    BadVersion(String),
}

/// Where a model was published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub location: String,
    pub artifact: String,
    pub card: String,
    pub pointer: String,
    pub plot: Option<String>,
    /// The scaling profile published in the same version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// A registry over an object store.
pub struct Registry<'a> {
    store: &'a dyn ObjectStore,
}

/// Check a model name: it becomes part of object names.
pub fn check_name(name: &str) -> Result<(), RegistryError> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(RegistryError::BadName(name.to_string()))
    }
}

impl<'a> Registry<'a> {
    /// A registry in `store`.
    pub fn new(store: &'a dyn ObjectStore) -> Self {
        Registry { store }
    }

    /// The store's location, for messages.
    pub fn location(&self) -> String {
        self.store.describe()
    }

    /// Publish a model: artifact, card, optional plot and scaling profile
    /// (TOML), then the pointer, which moves model and profile together.
    pub fn publish(
        &self,
        payload: &ArtifactPayload,
        plot_svg: Option<&[u8]>,
        profile_toml: Option<&[u8]>,
    ) -> Result<Published, RegistryError> {
        let card = &payload.card;
        check_name(&card.name)?;
        let bytes = artifact::encode(payload).map_err(|source| RegistryError::Artifact {
            object: card.id.clone(),
            source,
        })?;
        let base = format!("{}/{}", card.name, card.id);
        let artifact_name = format!("{base}.{EXTENSION}");
        let card_name = format!("{base}.card.json");
        self.store.put(&artifact_name, &bytes)?;
        self.store.put(&card_name, &card_json(card))?;
        let plot = match plot_svg {
            Some(svg) => {
                let n = format!("{base}.eval.svg");
                self.store.put(&n, svg)?;
                Some(n)
            }
            None => None,
        };
        let profile = match profile_toml {
            Some(toml) => {
                let n = profile_object(&card.name, &card.id);
                self.store.put(&n, toml)?;
                Some((n, format!("{:08x}", crc32fast::hash(toml))))
            }
            None => None,
        };
        let pointer = LatestPointer {
            name: card.name.clone(),
            id: card.id.clone(),
            artifact: artifact_name.clone(),
            card: card_name.clone(),
            created_at: card.created_at.clone(),
            crc32: format!("{:08x}", crc32fast::hash(&bytes)),
            profile: profile.as_ref().map(|(n, _)| n.clone()),
            profile_crc32: profile.as_ref().map(|(_, c)| c.clone()),
        };
        let pointer_name = format!("{}/latest.json", card.name);
        let json = serde_json::to_vec_pretty(&pointer).expect("pointer serializes");
        self.store.put(&pointer_name, &json)?;
        Ok(Published {
            location: self.location(),
            artifact: artifact_name,
            card: card_name,
            pointer: pointer_name,
            plot,
            profile: profile.map(|(n, _)| n),
        })
    }

    /// Keep the card of a model the gate refused, for the record. The latest
    /// pointer is not touched.
    pub fn record_rejected(&self, card: &ModelCard) -> Result<String, RegistryError> {
        check_name(&card.name)?;
        let n = format!("{}/rejected/{}.card.json", card.name, card.id);
        self.store.put(&n, &card_json(card))?;
        Ok(n)
    }

    /// The latest pointer of `name`.
    pub fn latest(&self, name: &str) -> Result<LatestPointer, RegistryError> {
        check_name(name)?;
        let object = format!("{name}/latest.json");
        let bytes = self.get_or(&object, || RegistryError::NoModel {
            location: self.location(),
            name: name.to_string(),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| RegistryError::BadPointer {
            object,
            detail: e.to_string(),
        })
    }

    /// The bytes of `object`, or `missing()` when it does not exist.
    fn get_or(
        &self,
        object: &str,
        missing: impl FnOnce() -> RegistryError,
    ) -> Result<Vec<u8>, RegistryError> {
        match self.store.get(object) {
            Ok(b) => Ok(b),
            Err(e) if e.is_not_found() => Err(missing()),
            Err(e) => Err(e.into()),
        }
    }

    /// Load the latest good model of `name`.
    pub fn load_latest(
        &self,
        name: &str,
    ) -> Result<(LatestPointer, ArtifactPayload), RegistryError> {
        self.load_at(self.latest(name)?)
    }

    /// Load the model a pointer names, checked against its checksum.
    fn load_at(&self, p: LatestPointer) -> Result<(LatestPointer, ArtifactPayload), RegistryError> {
        let bytes = self.store.get(&p.artifact)?;
        let found = format!("{:08x}", crc32fast::hash(&bytes));
        // Decode first: a truncated or corrupted file gets the specific message.
        let payload = artifact::decode(&bytes).map_err(|source| RegistryError::Artifact {
            object: p.artifact.clone(),
            source,
        })?;
        if found != p.crc32 {
            return Err(RegistryError::PointerMismatch {
                object: p.artifact.clone(),
                expected: p.crc32.clone(),
                found,
            });
        }
        Ok((p, payload))
    }

    /// Load version `id` of the model `name` (checked against the latest
    /// pointer's checksum when it is the latest).
    pub fn load_version(
        &self,
        name: &str,
        id: &str,
    ) -> Result<(LatestPointer, ArtifactPayload), RegistryError> {
        let latest = self.latest(name)?;
        if latest.id == id {
            // The pointer just read, not a second read that may have moved.
            return self.load_at(latest);
        }
        check_version(id)?;
        let object = format!("{name}/{id}.{EXTENSION}");
        let bytes = self.get_or(&object, || RegistryError::NoVersion {
            location: self.location(),
            name: name.to_string(),
            id: id.to_string(),
            object: object.clone(),
        })?;
        // The artifact's own header carries a CRC-32 of its payload.
        let payload = artifact::decode(&bytes).map_err(|source| RegistryError::Artifact {
            object: object.clone(),
            source,
        })?;
        let profile = profile_object(name, id);
        let profile = match self.store.get(&profile) {
            Ok(_) => Some(profile),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        };
        let pointer = LatestPointer {
            name: name.to_string(),
            id: id.to_string(),
            card: format!("{name}/{id}.card.json"),
            created_at: payload.card.created_at.clone(),
            crc32: format!("{:08x}", crc32fast::hash(&bytes)),
            artifact: object,
            profile,
            profile_crc32: None,
        };
        Ok((pointer, payload))
    }

    /// The scaling profile (TOML) published with the version `pointer`
    /// names, checked against the pointer's checksum.
    pub fn load_profile(&self, pointer: &LatestPointer) -> Result<String, RegistryError> {
        let no_profile = || RegistryError::NoProfile {
            location: self.location(),
            name: pointer.name.clone(),
            id: pointer.id.clone(),
        };
        let object = pointer.profile.as_ref().ok_or_else(no_profile)?;
        let bytes = match self.store.get(object) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => return Err(no_profile()),
            Err(e) => return Err(e.into()),
        };
        if let Some(expected) = &pointer.profile_crc32 {
            let found = format!("{:08x}", crc32fast::hash(&bytes));
            if &found != expected {
                return Err(RegistryError::ProfileMismatch {
                    object: object.clone(),
                    expected: expected.clone(),
                    found,
                });
            }
        }
        String::from_utf8(bytes).map_err(|_| RegistryError::ProfileMismatch {
            object: object.clone(),
            expected: "UTF-8 TOML".into(),
            found: "bytes that are not UTF-8".into(),
        })
    }

    /// Load one artifact by object name.
    pub fn load_object(&self, object: &str) -> Result<ArtifactPayload, RegistryError> {
        let bytes = self.store.get(object)?;
        artifact::decode(&bytes).map_err(|source| RegistryError::Artifact {
            object: object.to_string(),
            source,
        })
    }
}

/// Check a model version (an id `train` made): it becomes part of object names.
pub fn check_version(id: &str) -> Result<(), RegistryError> {
    check_name(id).map_err(|_| RegistryError::BadVersion(id.to_string()))
}

/// Object name of the scaling profile of version `id` of `name`.
pub fn profile_object(name: &str, id: &str) -> String {
    format!("{name}/{id}.profile.toml")
}

/// The card as pretty JSON (NaN metrics become null).
pub fn card_json(card: &ModelCard) -> Vec<u8> {
    let mut v = serde_json::to_vec_pretty(card).expect("card serializes");
    v.push(b'\n');
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::card::fixtures::payload;
    use crate::store::local::LocalStore;

    #[test]
    fn publishing_moves_the_pointer_and_loading_finds_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let reg = Registry::new(&store);
        assert!(matches!(
            reg.load_latest("m"),
            Err(RegistryError::NoModel { .. })
        ));
        reg.publish(&payload("m", "1"), None, None).unwrap();
        let published = reg
            .publish(&payload("m", "2"), Some(b"<svg/>"), None)
            .unwrap();
        assert_eq!(published.plot.as_deref(), Some("m/2.eval.svg"));
        let (ptr, p) = reg.load_latest("m").unwrap();
        assert_eq!((ptr.id.as_str(), p.card.id.as_str()), ("2", "2"));
    }

    #[test]
    fn a_rejected_card_does_not_move_the_pointer() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let reg = Registry::new(&store);
        reg.publish(&payload("m", "1"), None, None).unwrap();
        reg.record_rejected(&payload("m", "2").card).unwrap();
        assert_eq!(reg.latest("m").unwrap().id, "1");
        assert!(store.get("m/rejected/2.card.json").is_ok());
    }

    #[test]
    fn a_corrupted_latest_artifact_fails_loudly() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let reg = Registry::new(&store);
        let pubd = reg.publish(&payload("m", "1"), None, None).unwrap();
        let mut bytes = store.get(&pubd.artifact).unwrap();
        let n = bytes.len();
        bytes.truncate(n - 5);
        store.put(&pubd.artifact, &bytes).unwrap();
        let err = reg.load_latest("m").unwrap_err().to_string();
        assert!(
            err.contains("m/1.mlsm") && err.contains("truncated"),
            "{err}"
        );
    }

    #[test]
    fn a_profile_is_published_in_the_same_version_and_a_model_alone_has_none() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let reg = Registry::new(&store);
        let p = reg
            .publish(&payload("m", "1"), None, Some(b"policy = \"alarm\"\n"))
            .unwrap();
        assert_eq!(p.profile.as_deref(), Some("m/1.profile.toml"));
        let ptr = reg.latest("m").unwrap();
        assert_eq!(reg.load_profile(&ptr).unwrap(), "policy = \"alarm\"\n");
        // An older version keeps its own profile; a model alone has none.
        reg.publish(&payload("m", "2"), None, None).unwrap();
        let (old, _) = reg.load_version("m", "1").unwrap();
        assert_eq!(reg.load_profile(&old).unwrap(), "policy = \"alarm\"\n");
        let err = reg.load_profile(&reg.latest("m").unwrap()).unwrap_err();
        assert!(matches!(err, RegistryError::NoProfile { .. }), "{err}");
        assert!(matches!(
            reg.load_version("m", "3"),
            Err(RegistryError::NoVersion { .. })
        ));
        // A replaced profile fails loudly.
        reg.publish(&payload("m", "4"), None, Some(b"a = 1\n"))
            .unwrap();
        store.put("m/4.profile.toml", b"a = 2\n").unwrap();
        let err = reg.load_profile(&reg.latest("m").unwrap()).unwrap_err();
        assert!(
            matches!(err, RegistryError::ProfileMismatch { .. }),
            "{err}"
        );
    }

    #[test]
    fn model_names_are_checked() {
        assert!(check_name("requests-per_minute.v2").is_ok());
        assert!(check_name("../x").is_err());
        assert!(check_name("").is_err());
    }
}
