//! What `tune` found, for people (text) and pipelines (JSON): every
//! candidate's result on the tuning window, the choice and why, and the
//! choice's score on the held-back part; and the plot of the candidates.

use super::table;
use crate::core::sim::pool::PolicyMetrics;
use crate::core::sim::tune::{Choice, Objective, Scored};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A window of the history.
#[derive(Debug, Clone, Serialize)]
pub struct Window {
    pub from: String,
    pub to: String,
    pub steps: usize,
}

/// The choice replayed on the held-back part (walk-forward, as `backtest`
/// runs it), next to the profile's reactive rules and the oracle.
#[derive(Debug, Clone, Serialize)]
pub struct HeldBack {
    pub window: Window,
    /// The chosen policy with the chosen profile.
    pub chosen: PolicyMetrics,
    /// The starting profile's reactive rules and the oracle.
    pub baselines: Vec<PolicyMetrics>,
}

/// What `tune` did.
#[derive(Debug, Serialize)]
pub struct TuneSummary {
    pub source: String,
    pub metric: String,
    pub capacity_source: String,
    pub tuning_window: Window,
    pub objective: Objective,
    /// Where the operations limit came from.
    pub objective_source: String,
    /// The blocks the objective must hold in: "week" or "day".
    pub block: String,
    pub candidates: Vec<Scored>,
    pub choice: Choice,
    /// The policy chosen, as `scale --policy` and `backtest --policy` name it.
    pub policy: String,
    /// The profile written (TOML).
    pub profile: String,
    pub held_back: HeldBack,
    pub files: BTreeMap<String, String>,
    pub seconds: BTreeMap<String, f64>,
}

/// The summary as text for people.
pub fn render_text(s: &TuneSummary) -> String {
    let mut out = String::new();
    let w = &s.tuning_window;
    let _ = writeln!(
        out,
        "tuned on {} (metric '{}'): {} .. {}, {} steps; capacity: {}",
        s.source, s.metric, w.from, w.to, w.steps, s.capacity_source
    );
    let _ = writeln!(
        out,
        "objective: under-provisioned <= {}% of steps overall and in every {}, <= {} operations per hour ({})",
        s.objective.max_under_pct,
        s.block,
        s.objective
            .max_ops_per_hour
            .map_or("any".to_string(), |x| format!("{x:.2}")),
        s.objective_source
    );
    let feasible = s.candidates.iter().filter(|c| c.feasible).count();
    let _ = writeln!(
        out,
        "{} candidates replayed, {} meet the objective; the cheapest of each policy:",
        s.candidates.len(),
        feasible
    );
    let mut rows = vec![vec![
        "candidate".to_string(),
        "vs oracle".into(),
        "under %".into(),
        format!("worst {} %", s.block),
        "ops/h".into(),
        "meets".into(),
    ]];
    for c in best_per_policy(&s.candidates, s.choice.index) {
        let mark = if c == s.choice.index {
            " <= chosen"
        } else {
            ""
        };
        let r = &s.candidates[c];
        rows.push(vec![
            format!("{}{mark}", r.label),
            r.node_hours_vs_oracle
                .map_or("-".into(), |x| format!("{x:.3}")),
            format!("{:.3}", r.under_provisioned_pct),
            r.blocks
                .iter()
                .copied()
                .reduce(f64::max)
                .map_or("-".into(), |x| format!("{x:.3}")),
            format!("{:.2}", r.ops_per_hour),
            if r.feasible { "yes" } else { "no" }.into(),
        ]);
    }
    out.push_str(&table::render(&rows));
    let v = &s.choice.validation;
    if !v.checks.is_empty() {
        let _ = writeln!(
            out,
            "walk-forward check of the rule at {}% ({} of the objective): {}; {}",
            v.limit_pct,
            v.margin,
            v.checks
                .iter()
                .map(|c| format!(
                    "{} {} {} short {:.3}%",
                    s.block,
                    c.block + 1,
                    c.label,
                    c.under_provisioned_pct
                ))
                .collect::<Vec<_>>()
                .join(", "),
            if v.validated { "held" } else { "did not hold" }
        );
    }
    let _ = writeln!(out, "chosen: {} ({})", s.policy, s.choice.why);
    let h = &s.held_back;
    let _ = writeln!(
        out,
        "held back: {} .. {}, {} steps (walk-forward, as `backtest --config` replays it):",
        h.window.from, h.window.to, h.window.steps
    );
    let mut rows = vec![vec![
        "policy".to_string(),
        "vs oracle".into(),
        "under %".into(),
        "operations".into(),
        "waited".into(),
    ]];
    for (name, m) in
        std::iter::once(("chosen", &h.chosen)).chain(h.baselines.iter().map(|m| ("baseline", m)))
    {
        rows.push(vec![
            format!("{} ({name})", m.policy),
            m.node_hours_vs_oracle
                .map_or("-".into(), |x| format!("{x:.3}")),
            format!("{:.3}", m.under_provisioned_pct),
            m.actions.to_string(),
            m.waited.to_string(),
        ]);
    }
    out.push_str(&table::render(&rows));
    for (k, v) in &s.files {
        let _ = writeln!(out, "{k}: {v}");
    }
    out
}

/// The index of the cheapest candidate of each policy (the feasible one when
/// there is one), and the choice.
fn best_per_policy(c: &[Scored], chosen: usize) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    for kind in [
        "predictive",
        "reactive_threshold",
        "target_tracking",
        "seasonal_naive",
    ] {
        let of_kind = |s: &&(usize, &Scored)| s.1.candidate.kind().name() == kind;
        let all: Vec<(usize, &Scored)> = c.iter().enumerate().collect();
        let best = all
            .iter()
            .filter(of_kind)
            .filter(|s| s.1.feasible)
            .min_by(|a, b| a.1.node_hours.total_cmp(&b.1.node_hours))
            .or_else(|| {
                all.iter().filter(of_kind).min_by(|a, b| {
                    a.1.under_provisioned_pct
                        .total_cmp(&b.1.under_provisioned_pct)
                })
            });
        if let Some((i, _)) = best {
            out.push(*i);
        }
    }
    if !out.contains(&chosen) {
        out.push(chosen);
    }
    out
}

/// Every candidate's node-hours (relative to the oracle) against its
/// under-provisioning, one colour per policy, the choice ringed, the
/// objective's limit drawn: an SVG.
pub fn plot(s: &TuneSummary) -> String {
    const W: f64 = 900.0;
    const H: f64 = 520.0;
    const L: f64 = 80.0;
    const R: f64 = 220.0;
    const T: f64 = 50.0;
    const B: f64 = 60.0;
    let pts: Vec<(f64, f64, &str, bool)> = s
        .candidates
        .iter()
        .filter_map(|c| {
            let x = c.node_hours_vs_oracle?;
            (x.is_finite() && c.under_provisioned_pct.is_finite()).then_some((
                x,
                c.under_provisioned_pct,
                c.candidate.kind().name(),
                c.feasible,
            ))
        })
        .collect();
    let xmax = pts.iter().map(|p| p.0).fold(1.0, f64::max) * 1.05;
    let xmin = pts.iter().map(|p| p.0).fold(xmax, f64::min).min(1.0) * 0.95;
    let ymax = pts
        .iter()
        .map(|p| p.1)
        .fold(s.objective.max_under_pct * 2.0, f64::max)
        .max(0.1)
        * 1.05;
    let px = |x: f64| L + (x - xmin) / (xmax - xmin) * (W - L - R);
    let py = |y: f64| T + (1.0 - y / ymax) * (H - T - B);
    let colour = |k: &str| match k {
        "predictive" => "#1f77b4",
        "reactive_threshold" => "#d62728",
        "target_tracking" => "#2ca02c",
        _ => "#9467bd",
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{}" y="24" font-size="15" text-anchor="middle">tune: {} candidates on {} ({})</text>"#,
        (W - R + L) / 2.0,
        s.candidates.len(),
        esc(&s.metric),
        esc(&s.tuning_window.from)
    );
    let _ = writeln!(
        out,
        r##"<rect x="{L}" y="{T}" width="{:.1}" height="{:.1}" fill="none" stroke="#888"/>"##,
        W - L - R,
        H - T - B
    );
    for (x, label) in super::plot::round_ticks(xmin, xmax) {
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{label}x</text>"#,
            px(x),
            H - B + 18.0,
        );
    }
    for (y, label) in super::plot::round_ticks(0.0, ymax) {
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{label}%</text>"#,
            L - 6.0,
            py(y) + 4.0
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">node-hours / oracle's (tuning window)</text>"#,
        (W - R + L) / 2.0,
        H - 18.0
    );
    let _ = writeln!(
        out,
        r#"<text x="18" y="{:.1}" transform="rotate(-90 18 {:.1})" text-anchor="middle">steps under-provisioned (%)</text>"#,
        H / 2.0,
        H / 2.0
    );
    let limit = py(s.objective.max_under_pct);
    let _ = writeln!(
        out,
        r##"<line x1="{L}" y1="{limit:.1}" x2="{:.1}" y2="{limit:.1}" stroke="#999" stroke-dasharray="6 4"/><text x="{:.1}" y="{:.1}" fill="#666">objective</text>"##,
        W - R,
        W - R - 70.0,
        limit - 5.0
    );
    for (x, y, k, feasible) in &pts {
        let _ = writeln!(
            out,
            r#"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{}" fill-opacity="{}"/>"#,
            px(*x),
            py(*y),
            colour(k),
            if *feasible { 0.85 } else { 0.3 }
        );
    }
    let c = &s.candidates[s.choice.index];
    if let Some(x) = c.node_hours_vs_oracle {
        let _ = writeln!(
            out,
            r##"<circle cx="{:.1}" cy="{:.1}" r="10" fill="none" stroke="#000" stroke-width="2"/>"##,
            px(x),
            py(c.under_provisioned_pct)
        );
    }
    tune_legend(&mut out, W - R, T, colour);
    out.push_str("</svg>\n");
    out
}

/// The tune plot's legend, right of the plot area (`x0`, from `top`).
fn tune_legend(out: &mut String, x0: f64, top: f64, colour: impl Fn(&str) -> &'static str) {
    let legend = [
        ("predictive", "predictive"),
        ("reactive_threshold", "threshold (alarm)"),
        ("target_tracking", "target tracking"),
        ("seasonal_naive", "seasonal naive"),
    ];
    for (i, (k, name)) in legend.iter().enumerate() {
        let y = top + 16.0 + 22.0 * i as f64;
        let _ = writeln!(
            out,
            r#"<circle cx="{:.1}" cy="{:.1}" r="5" fill="{}"/><text x="{:.1}" y="{:.1}">{name}</text>"#,
            x0 + 24.0,
            y - 4.0,
            colour(k),
            x0 + 36.0,
            y
        );
    }
    let y = top + 16.0 + 22.0 * 4.0;
    let _ = writeln!(
        out,
        r##"<circle cx="{:.1}" cy="{:.1}" r="8" fill="none" stroke="#000" stroke-width="2"/><text x="{:.1}" y="{:.1}">chosen</text><text x="{:.1}" y="{:.1}" fill="#666">faint: misses the objective</text>"##,
        x0 + 24.0,
        y - 4.0,
        x0 + 36.0,
        y,
        x0 + 16.0,
        y + 24.0
    );
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
