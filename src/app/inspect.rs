//! `mlscaler inspect`: the card of a published model or artifact file.

use super::storage;
use crate::settings::InspectSettings;
use crate::store::artifact;
use crate::store::card::ModelCard;
use crate::store::registry::Registry;
use anyhow::{Context, Result};
use std::path::Path;

/// The card of the artifact file or of the latest model named `args.model`.
pub fn run(args: &InspectSettings) -> Result<ModelCard> {
    let p = Path::new(&args.model);
    if p.is_file() {
        let bytes = std::fs::read(p).with_context(|| format!("{}: cannot read", p.display()))?;
        let payload = artifact::decode(&bytes).with_context(|| p.display().to_string())?;
        return Ok(payload.card);
    }
    let store = storage::open_models(&args.models, &args.storage)?;
    let (_, payload) = Registry::new(store.as_ref()).load_latest(&args.model)?;
    Ok(payload.card)
}
