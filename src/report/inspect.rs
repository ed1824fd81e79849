//! A model card as text for people (`mlscaler inspect`).

use crate::store::card::ModelCard;

/// The card as text for people: what the model is, what it was trained on,
/// and how it did against the baselines.
pub fn render_text(c: &ModelCard) -> String {
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
