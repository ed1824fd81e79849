//! `mlscaler inspect`: the card of a published model or artifact file, and
//! the scaling profile published with that version, if any.

use super::storage;
use crate::report::inspect::Inspected;
use crate::settings::InspectSettings;
use crate::store::artifact;
use crate::store::registry::Registry;
use anyhow::{Context, Result};
use std::path::Path;

/// The card of the artifact file or of the latest model named `args.model`
/// (with the profile published in the same version: what `scale
/// --published-profile` applies).
pub fn run(args: &InspectSettings) -> Result<Inspected> {
    let p = Path::new(&args.model);
    if p.is_file() {
        let bytes = std::fs::read(p).with_context(|| format!("{}: cannot read", p.display()))?;
        let payload = artifact::decode(&bytes).with_context(|| p.display().to_string())?;
        return Ok(Inspected {
            card: payload.card,
            published_profile: None,
            from_registry: false,
        });
    }
    let store = storage::open_models(&args.models, &args.storage)?;
    let registry = Registry::new(store.as_ref());
    let (pointer, payload) = registry.load_latest(&args.model)?;
    let published_profile = match &pointer.profile {
        Some(object) => Some((object.clone(), registry.load_profile(&pointer)?)),
        None => None,
    };
    Ok(Inspected {
        card: payload.card,
        published_profile: published_profile
            .map(|(object, toml)| crate::report::inspect::PublishedProfile { object, toml }),
        from_registry: true,
    })
}
