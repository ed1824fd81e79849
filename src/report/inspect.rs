//! A model card as text for people (`mlscaler inspect`).

use crate::store::card::ModelCard;
use serde::Serialize;

/// What `inspect` shows: the card (its fields at the top level of the
/// JSON, as before) and the scaling profile published with the version.
#[derive(Debug, Serialize)]
pub struct Inspected {
    #[serde(flatten)]
    pub card: ModelCard,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published_profile: Option<PublishedProfile>,
    /// Read from a registry (an artifact file alone has no profile).
    #[serde(skip)]
    pub from_registry: bool,
}

/// A scaling profile published with a model (`train --publish-profile`).
#[derive(Debug, Serialize)]
pub struct PublishedProfile {
    /// Its object in the registry.
    pub object: String,
    /// The profile as published (TOML, checksum verified).
    pub toml: String,
}

/// The card as text for people: what the model is, what it was trained on,
/// and how it did against the baselines; then the profile published with it.
pub fn render_text(i: &Inspected) -> String {
    let mut out = render_card(&i.card);
    match &i.published_profile {
        Some(p) => {
            out.push_str(&format!(
                "published profile ({}, applied by --published-profile):\n",
                p.object
            ));
            for line in p.toml.lines().filter(|l| !l.trim().is_empty()) {
                out.push_str(&format!("  {line}\n"));
            }
        }
        None if i.from_registry => {
            out.push_str("published profile: none (train --publish-profile FILE publishes one)\n")
        }
        None => {}
    }
    out
}

fn render_card(c: &ModelCard) -> String {
    let mut out = format!(
        "model {} version {} ({} of '{}'), mlscaler {}, artifact format {}\ncreated {}{}\n",
        c.name,
        c.id,
        c.kind,
        c.target,
        c.mlscaler_version,
        c.format_version,
        c.created_at,
        if c.forced {
            " (FORCED past a failed quality gate)"
        } else {
            ""
        }
    );
    out.push_str(&format!(
        "data: {} ({}), {} .. {}, {} steps of {}\n",
        c.source.location, c.source.format, c.window_from, c.window_to, c.window_steps, c.step
    ));
    if c.inputs.is_empty() {
        out.push_str(&format!(
            "horizon {} steps, lead time {} steps, {} features\n",
            c.horizon_steps,
            c.lead_steps,
            c.features.len()
        ));
    } else {
        out.push_str(&format!("inputs: {}\n", c.inputs.join(", ")));
    }
    if let Some(h) = c.evaluation.per_horizon.get(c.lead_steps.saturating_sub(1)) {
        out.push_str(&format!("MAE at the lead time: model {:.3}", h.model.mae));
        for b in &h.baselines {
            out.push_str(&format!(", {} {:.3}", b.name, b.metrics.mae));
        }
        out.push('\n');
        let p90 = |cv: &Option<crate::core::forecast::metrics::Coverage>| cv.as_ref()?.at(0.9);
        if let (Some(h90), Some(peak90)) = (p90(&h.coverage), p90(&h.peak_coverage)) {
            out.push_str(&format!(
                "p90 coverage out of sample: {h90:.3} at the lead time, {peak90:.3} for the peak over the lead window\n"
            ));
        }
    }
    if let Some(r) = &c.evaluation.regression {
        out.push_str(&format!(
            "hold-out R^2 {:.3}, MAE {:.3}\n",
            r.r2, r.model.mae
        ));
    }
    out.push_str(&format!(
        "quality gate: {} - {}\n",
        if c.gate.passed { "PASSED" } else { "FAILED" },
        c.gate.reason
    ));
    out
}
