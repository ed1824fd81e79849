//! The model registry: versioned artifacts under one name, and a pointer to
//! the latest good one, in any [`ObjectStore`].
//!
//! ```text
//! <name>/<id>.mlsm            the artifact (header + postcard payload)
//! <name>/<id>.card.json       its model card
//! <name>/<id>.eval.svg        actual vs forecast on the evaluation window (optional)
//! <name>/latest.json          pointer to the latest good model
//! <name>/rejected/<id>.card.json   cards of models the quality gate refused
//! ```
//!
//! Publishing writes the artifact and its card first and the pointer last,
//! each write atomic, so "latest" never names a missing or half-written
//! model, and a failed or refused training run leaves the pointer unchanged.

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
}

/// Where a model was published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub location: String,
    pub artifact: String,
    pub card: String,
    pub pointer: String,
    pub plot: Option<String>,
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

    /// Publish a model: artifact, card, optional plot, then the pointer.
    pub fn publish(
        &self,
        payload: &ArtifactPayload,
        plot_svg: Option<&[u8]>,
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
        let pointer = LatestPointer {
            name: card.name.clone(),
            id: card.id.clone(),
            artifact: artifact_name.clone(),
            card: card_name.clone(),
            created_at: card.created_at.clone(),
            crc32: format!("{:08x}", crc32fast::hash(&bytes)),
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
        let bytes = match self.store.get(&object) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => {
                return Err(RegistryError::NoModel {
                    location: self.location(),
                    name: name.to_string(),
                })
            }
            Err(e) => return Err(e.into()),
        };
        serde_json::from_slice(&bytes).map_err(|e| RegistryError::BadPointer {
            object,
            detail: e.to_string(),
        })
    }

    /// Load the latest good model of `name`.
    pub fn load_latest(
        &self,
        name: &str,
    ) -> Result<(LatestPointer, ArtifactPayload), RegistryError> {
        let p = self.latest(name)?;
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

    /// Load one artifact by object name.
    pub fn load_object(&self, object: &str) -> Result<ArtifactPayload, RegistryError> {
        let bytes = self.store.get(object)?;
        artifact::decode(&bytes).map_err(|source| RegistryError::Artifact {
            object: object.to_string(),
            source,
        })
    }
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
        reg.publish(&payload("m", "1"), None).unwrap();
        let published = reg.publish(&payload("m", "2"), Some(b"<svg/>")).unwrap();
        assert_eq!(published.plot.as_deref(), Some("m/2.eval.svg"));
        let (ptr, p) = reg.load_latest("m").unwrap();
        assert_eq!((ptr.id.as_str(), p.card.id.as_str()), ("2", "2"));
    }

    #[test]
    fn a_rejected_card_does_not_move_the_pointer() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let reg = Registry::new(&store);
        reg.publish(&payload("m", "1"), None).unwrap();
        reg.record_rejected(&payload("m", "2").card).unwrap();
        assert_eq!(reg.latest("m").unwrap().id, "1");
        assert!(store.get("m/rejected/2.card.json").is_ok());
    }

    #[test]
    fn a_corrupted_latest_artifact_fails_loudly() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let reg = Registry::new(&store);
        let pubd = reg.publish(&payload("m", "1"), None).unwrap();
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
    fn model_names_are_checked() {
        assert!(check_name("requests-per_minute.v2").is_ok());
        assert!(check_name("../x").is_err());
        assert!(check_name("").is_err());
    }
}
