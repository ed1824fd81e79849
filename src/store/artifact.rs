//! The model artifact: a fixed header (magic, format version, length,
//! checksum) followed by a postcard-encoded payload holding the model and its
//! card.
//!
//! ```text
//! offset  size  field
//!      0     8  magic "MLSCALER"
//!      8     2  format version (u16, little endian)
//!     10     2  reserved, zero
//!     12     8  payload length in bytes (u64, little endian)
//!     20     4  CRC-32 (IEEE) of the payload (u32, little endian)
//!     24     n  payload: postcard(ArtifactPayload)
//! ```
//!
//! postcard is a maintained, compact serde format (bincode is not maintained).
//! postcard is not self-describing, so the format version is bumped whenever a
//! serialized type changes shape; a reader refuses versions it does not know.
//!
//! Versions:
//! 1. the first format;
//! 2. calibrated intervals per horizon and of the lead-window peak in the
//!    forecaster, coverage by quantile level in the card. Format 1 is still
//!    read ([`super::format1`]): its models forecast as they did, without a
//!    peak calibration.

use crate::core::forecast::model::ForecastModel;
use crate::core::forecast::regression::RegressionModel;
use serde::{Deserialize, Serialize};

/// First bytes of every artifact.
pub const MAGIC: [u8; 8] = *b"MLSCALER";
/// The format this build writes, and the newest it reads.
pub const FORMAT_VERSION: u16 = 2;
/// Header size in bytes.
pub const HEADER_LEN: usize = 24;
/// File name extension of artifacts.
pub const EXTENSION: &str = "mlsm";

/// A fitted model of either kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Model {
    /// Forecasts a load metric over a horizon.
    Forecast(ForecastModel),
    /// Predicts one metric from others (e.g. latency from user counts).
    Regression(RegressionModel),
}

impl Model {
    /// "forecast" or "regression".
    pub fn kind(&self) -> &'static str {
        match self {
            Model::Forecast(_) => "forecast",
            Model::Regression(_) => "regression",
        }
    }
}

/// What an artifact holds: the model and its card (also published as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactPayload {
    pub card: super::card::ModelCard,
    pub model: Model,
}

/// Why an artifact could not be read. Every message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArtifactError {
    #[error("not an mlscaler model (the file does not start with the MLSCALER magic bytes)")]
    NotAnArtifact,
    #[error("the model is truncated: {got} bytes, but its header says {expected}; re-download or retrain it")]
    Truncated { expected: u64, got: u64 },
    #[error("the model is corrupted: checksum {actual:08x} does not match {expected:08x} in its header; re-download or retrain it")]
    Corrupted { expected: u32, actual: u32 },
    #[error("the model has format version {found}, newer than this mlscaler reads (up to {supported}); upgrade mlscaler")]
    NewerFormat { found: u16, supported: u16 },
    #[error("the model has format version {0}, which this mlscaler no longer reads; retrain it")]
    UnknownFormat(u16),
    #[error("the model payload cannot be decoded ({0}); it was probably written by an incompatible build")]
    Decode(String),
    #[error("the model cannot be encoded: {0}")]
    Encode(String),
}

/// Serialize a payload into artifact bytes.
pub fn encode(payload: &ArtifactPayload) -> Result<Vec<u8>, ArtifactError> {
    let body = postcard::to_stdvec(payload).map_err(|e| ArtifactError::Encode(e.to_string()))?;
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Read artifact bytes, checking magic, version, length and checksum before
/// decoding anything.
pub fn decode(bytes: &[u8]) -> Result<ArtifactPayload, ArtifactError> {
    if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
        return Err(ArtifactError::NotAnArtifact);
    }
    if bytes.len() < HEADER_LEN {
        return Err(ArtifactError::Truncated {
            expected: HEADER_LEN as u64,
            got: bytes.len() as u64,
        });
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if version > FORMAT_VERSION {
        return Err(ArtifactError::NewerFormat {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    if version == 0 {
        return Err(ArtifactError::UnknownFormat(version));
    }
    let len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    let crc = u32::from_le_bytes(bytes[20..24].try_into().expect("4 bytes"));
    let body = &bytes[HEADER_LEN..];
    if (body.len() as u64) < len {
        return Err(ArtifactError::Truncated {
            expected: HEADER_LEN as u64 + len,
            got: bytes.len() as u64,
        });
    }
    if (body.len() as u64) > len {
        // Trailing bytes: the file was overwritten in place or concatenated.
        return Err(ArtifactError::Corrupted {
            expected: crc,
            actual: crc32fast::hash(body),
        });
    }
    let actual = crc32fast::hash(body);
    if actual != crc {
        return Err(ArtifactError::Corrupted {
            expected: crc,
            actual,
        });
    }
    let decode_err = |e: postcard::Error| ArtifactError::Decode(e.to_string());
    match version {
        1 => postcard::from_bytes::<super::format1::ArtifactPayload>(body)
            .map(Into::into)
            .map_err(decode_err),
        _ => postcard::from_bytes(body).map_err(decode_err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::card::fixtures::payload;

    #[test]
    fn an_artifact_round_trips() {
        let p = payload("m", "1");
        assert_eq!(decode(&encode(&p).unwrap()).unwrap(), p);
    }

    #[test]
    fn a_truncated_artifact_is_refused_as_truncated() {
        let bytes = encode(&payload("m", "1")).unwrap();
        for cut in [9, HEADER_LEN - 1, HEADER_LEN, bytes.len() - 1] {
            let err = decode(&bytes[..cut]).unwrap_err();
            assert!(
                matches!(err, ArtifactError::Truncated { .. }),
                "cut at {cut}: {err}"
            );
        }
    }

    #[test]
    fn a_flipped_bit_is_refused_as_corrupted() {
        let mut bytes = encode(&payload("m", "1")).unwrap();
        let last = bytes.len() - 3;
        bytes[last] ^= 0x10;
        assert!(matches!(
            decode(&bytes),
            Err(ArtifactError::Corrupted { .. })
        ));
        let mut longer = encode(&payload("m", "1")).unwrap();
        longer.push(0);
        assert!(matches!(
            decode(&longer),
            Err(ArtifactError::Corrupted { .. })
        ));
    }

    #[test]
    fn a_newer_format_is_refused_with_both_versions() {
        let mut bytes = encode(&payload("m", "1")).unwrap();
        bytes[8..10].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        let err = decode(&bytes).unwrap_err();
        assert_eq!(
            err,
            ArtifactError::NewerFormat {
                found: FORMAT_VERSION + 1,
                supported: FORMAT_VERSION
            }
        );
        assert!(err.to_string().contains("upgrade mlscaler"));
    }

    /// A model written by mlscaler's artifact format 1 (`train --data
    /// elb.csv --lead-time 15m` on the bundled ELB trace, before format 2).
    const FORMAT1: &[u8] = include_bytes!("../../tests/fixtures/models/elb-format1.mlsm");

    #[test]
    fn a_model_of_format_1_still_loads_and_forecasts_as_it_did() {
        use crate::core::forecast::model::Transform;
        use crate::core::forecast::series::LoadSeries;
        assert_eq!(u16::from_le_bytes([FORMAT1[8], FORMAT1[9]]), 1);
        let p = decode(FORMAT1).unwrap();
        assert_eq!(p.card.format_version, 1);
        assert_eq!(p.card.name, "value");
        assert!(p.card.evaluation.per_horizon[2].coverage.is_none());
        let Model::Forecast(m) = &p.model else {
            panic!("a forecaster: {:?}", p.model.kind())
        };
        assert!(m.peak.is_empty());
        // Format 1's residual quantiles, read as format 1 wrote them.
        let old: super::super::format1::ArtifactPayload =
            postcard::from_bytes(&FORMAT1[HEADER_LEN..]).unwrap();
        let super::super::format1::Model::Forecast(old) = old.model else {
            panic!("a forecaster")
        };
        assert_eq!(old.transform, Transform::Log1p);
        // Forecast: quantile = inverse(forecast + residual quantile), as before.
        let n = m.required_history() + 5;
        let y: Vec<f64> = (0..n)
            .map(|i| 100.0 + 30.0 * (i as f64 / 288.0 * std::f64::consts::TAU).sin())
            .collect();
        let series =
            LoadSeries::new(1_397_088_000, m.spec.step(), vec!["value".into()], vec![y]).unwrap();
        let f = m.forecast(&series).unwrap();
        assert_eq!(f.peak, None);
        assert_eq!(f.peak_quantile(3, 0.9), None);
        for h in 1..=3 {
            let p_t = f.points[h - 1].ln_1p();
            for (j, r) in old.residual_quantiles[h - 1].iter().enumerate() {
                let want = (p_t + r).exp_m1().max(0.0);
                let got = f.quantiles[h - 1][j];
                assert!(
                    (got - want).abs() < 1e-9 * want.max(1.0),
                    "h {h} j {j}: {got} vs {want}"
                );
            }
        }
        // Written again, it is format 2 and round-trips.
        let again = encode(&p).unwrap();
        assert_eq!(u16::from_le_bytes([again[8], again[9]]), FORMAT_VERSION);
        assert_eq!(decode(&again).unwrap(), p);
    }

    #[test]
    fn other_files_are_not_artifacts() {
        assert_eq!(
            decode(b"timestamp,value\n"),
            Err(ArtifactError::NotAnArtifact)
        );
        assert_eq!(decode(b""), Err(ArtifactError::NotAnArtifact));
    }
}
