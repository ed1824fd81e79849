//! Vertical scaling on memory pressure (the pattern of the OCI
//! model-deployment autoscaler): CPU pressure is met with more instances,
//! memory pressure with a bigger VM size. An ordered ladder of sizes; one step
//! up when memory utilisation (observed, or forecast) crosses the high
//! threshold, one step down when it stayed below the low threshold for the
//! whole stabilisation window; never past the ends of the ladder, never
//! while the target is busy. Pure.

use serde::{Deserialize, Serialize};

/// Vertical settings (unchecked).
#[derive(Debug, Clone, PartialEq)]
pub struct VerticalParams {
    /// VM sizes from smallest to largest, e.g. Standard_D2s_v5, Standard_D4s_v5, Standard_D8s_v5.
    pub ladder: Vec<String>,
    /// Move up when memory utilisation reaches this.
    pub high: f64,
    /// Move down when it stayed at or below this for the whole window.
    pub low: f64,
    /// The stabilisation window, in datapoints.
    pub window: usize,
    /// The memory of each ladder size (GiB, in ladder order), when known: a
    /// move down is then made only if the window's peak still fits under
    /// `high` on the smaller size, so it is not undone at once (flapping
    /// restarts every instance twice).
    pub memory_gib: Option<Vec<f64>>,
}

/// Errors in the vertical settings.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VerticalError {
    #[error("the VM size ladder needs at least two sizes, but has {0}")]
    ShortLadder(usize),
    #[error("the VM size ladder names '{0}' twice")]
    Repeated(String),
    #[error(
        "the memory thresholds should satisfy 0 < low < high, but are low {low} and high {high}"
    )]
    Thresholds { low: f64, high: f64 },
    #[error("the stabilisation window should hold at least one datapoint")]
    Window,
    #[error("the ladder has {sizes} sizes but {values} memory values: give one per size, in ladder order")]
    MemoryCount { sizes: usize, values: usize },
    #[error(
        "the memory of the ladder sizes should be positive and grow along the ladder, but is {0:?}"
    )]
    Memory(Vec<f64>),
}

/// Checked vertical settings.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedVertical(VerticalParams);

impl VerticalParams {
    pub fn check(self) -> Result<CheckedVertical, VerticalError> {
        if self.ladder.len() < 2 {
            return Err(VerticalError::ShortLadder(self.ladder.len()));
        }
        for (i, a) in self.ladder.iter().enumerate() {
            if self.ladder[..i].iter().any(|b| b.eq_ignore_ascii_case(a)) {
                return Err(VerticalError::Repeated(a.clone()));
            }
        }
        if !(self.low > 0.0 && self.low < self.high && self.high.is_finite()) {
            return Err(VerticalError::Thresholds {
                low: self.low,
                high: self.high,
            });
        }
        if self.window == 0 {
            return Err(VerticalError::Window);
        }
        if let Some(m) = &self.memory_gib {
            if m.len() != self.ladder.len() {
                return Err(VerticalError::MemoryCount {
                    sizes: self.ladder.len(),
                    values: m.len(),
                });
            }
            let ok =
                m.iter().all(|g| g.is_finite() && *g > 0.0) && m.windows(2).all(|w| w[0] < w[1]);
            if !ok {
                return Err(VerticalError::Memory(m.clone()));
            }
        }
        Ok(CheckedVertical(self))
    }
}

/// What to do with the VM size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum VerticalDecision {
    Resize {
        from: String,
        to: String,
        reasons: Vec<String>,
    },
    Hold {
        size: String,
        reasons: Vec<String>,
    },
}

impl VerticalDecision {
    pub fn reasons(&self) -> &[String] {
        match self {
            VerticalDecision::Resize { reasons, .. } | VerticalDecision::Hold { reasons, .. } => {
                reasons
            }
        }
    }
}

/// The forecast peak the vertical policy plans for, one definition for the
/// live run and its replay: the highest value of `f` at quantile `q` over
/// horizons `1..=lead` (the steps until a resize asked now is in effect),
/// never below zero. `None` when `f` does not reach `lead`, `lead` is 0, or
/// a value is not a number.
pub fn forecast_peak(
    f: &crate::core::forecast::model::Forecast,
    lead: usize,
    q: f64,
) -> Option<f64> {
    if lead == 0 || lead > f.horizon() || f.quantiles.len() < lead {
        return None;
    }
    let values: Vec<f64> = (1..=lead).map(|h| f.quantile(h, q)).collect();
    if values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    Some(values.into_iter().fold(0.0, f64::max))
}

/// Plan the size from recent memory utilisation (oldest first), an optional
/// forecast peak over the lead time, and whether the target is idle.
pub fn plan_vertical(
    p: &CheckedVertical,
    current: &str,
    memory: &[f64],
    forecast_peak: Option<f64>,
    idle: bool,
) -> VerticalDecision {
    let p = &p.0;
    let hold = |reasons: Vec<String>| VerticalDecision::Hold {
        size: current.to_string(),
        reasons,
    };
    if !idle {
        return hold(vec!["the scale set is not in a succeeded state: no size change while another operation runs".into()]);
    }
    let Some(at) = p
        .ladder
        .iter()
        .position(|s| s.eq_ignore_ascii_case(current))
    else {
        return hold(vec![format!(
            "the current size {current} is not on the ladder ({}): not touched",
            p.ladder.join(", ")
        )]);
    };
    let Some(&last) = memory.iter().rev().find(|v| v.is_finite()) else {
        return hold(vec!["no memory utilisation datapoint".into()]);
    };
    let peak = forecast_peak
        .filter(|f| f.is_finite())
        .map_or(last, |f| f.max(last));
    if peak >= p.high {
        let why = match forecast_peak {
            Some(f) if f > last => format!("forecast memory utilisation {f:.3} >= {}", p.high),
            _ => format!("memory utilisation {last:.3} >= {}", p.high),
        };
        return match p.ladder.get(at + 1) {
            Some(up) => VerticalDecision::Resize {
                from: current.to_string(),
                to: up.clone(),
                reasons: vec![why, format!("one size up: {current} -> {up}")],
            },
            None => hold(vec![
                why,
                format!("{current} is the largest size on the ladder"),
            ]),
        };
    }
    let window = &memory[memory.len().saturating_sub(p.window)..];
    let calm = window.len() == p.window && window.iter().all(|v| v.is_finite() && *v <= p.low);
    if calm && forecast_peak.is_none_or(|f| f <= p.low) {
        let why = format!(
            "memory utilisation <= {} for the whole window of {} datapoints",
            p.low, p.window
        );
        return match at.checked_sub(1) {
            Some(down) if p.memory_gib.is_some() => {
                let m = p.memory_gib.as_deref().expect("checked above");
                let peak = window
                    .iter()
                    .copied()
                    .chain(forecast_peak)
                    .fold(0.0_f64, f64::max);
                let projected = peak * m[at] / m[down];
                if projected >= p.high {
                    hold(vec![
                        why,
                        format!(
                            "one size down ({}, {} GiB) would put memory utilisation at {projected:.3} >= {}, undone at once: {current} stays",
                            p.ladder[down], m[down], p.high
                        ),
                    ])
                } else {
                    VerticalDecision::Resize {
                        from: current.to_string(),
                        to: p.ladder[down].clone(),
                        reasons: vec![
                            why,
                            format!(
                                "one size down: {current} -> {} (memory utilisation about {projected:.3} there)",
                                p.ladder[down]
                            ),
                        ],
                    }
                }
            }
            Some(down) => VerticalDecision::Resize {
                from: current.to_string(),
                to: p.ladder[down].clone(),
                reasons: vec![
                    why,
                    format!("one size down: {current} -> {}", p.ladder[down]),
                ],
            },
            None => hold(vec![
                why,
                format!("{current} is the smallest size on the ladder"),
            ]),
        };
    }
    hold(vec![format!(
        "memory utilisation {last:.3} is between {} and {} (or not low for the whole window)",
        p.low, p.high
    )])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forecast_peak_is_the_highest_value_at_the_quantile_over_the_lead_time() {
        use crate::core::forecast::model::Forecast;
        // Horizons 1..=4 at levels 0.1 and 0.9.
        let f = Forecast {
            origin: 0,
            step: crate::core::time::Step::from_secs(60).unwrap(),
            points: vec![5.0, 9.0, 7.0, 20.0],
            levels: vec![0.1, 0.9],
            quantiles: vec![
                vec![4.0, 6.0],
                vec![8.0, 12.0],
                vec![6.0, 8.0],
                vec![18.0, 30.0],
            ],
            peak: None,
        };
        assert_eq!(forecast_peak(&f, 3, 0.9), Some(12.0));
        assert_eq!(forecast_peak(&f, 3, 0.5), Some(10.0));
        assert_eq!(forecast_peak(&f, 4, 0.1), Some(18.0));
        // Not reaching the lead time, or no lead time: none.
        assert_eq!(forecast_peak(&f, 5, 0.5), None);
        assert_eq!(forecast_peak(&f, 0, 0.5), None);
        let mut nan = f.clone();
        nan.quantiles[1][1] = f64::NAN;
        assert_eq!(forecast_peak(&nan, 3, 0.9), None);
    }

    fn ladder() -> CheckedVertical {
        VerticalParams {
            ladder: vec![
                "Standard_D2s_v5".into(),
                "Standard_D4s_v5".into(),
                "Standard_D8s_v5".into(),
            ],
            high: 0.8,
            low: 0.4,
            window: 3,
            memory_gib: None,
        }
        .check()
        .unwrap()
    }

    #[test]
    fn memory_pressure_moves_one_size_up_and_the_top_of_the_ladder_holds() {
        let d = plan_vertical(&ladder(), "Standard_D2s_v5", &[0.5, 0.85], None, true);
        assert!(
            matches!(&d, VerticalDecision::Resize { to, .. } if to == "Standard_D4s_v5"),
            "{d:?}"
        );
        let d = plan_vertical(&ladder(), "Standard_D8s_v5", &[0.95], None, true);
        assert!(
            matches!(&d, VerticalDecision::Hold { .. }) && d.reasons()[1].contains("largest"),
            "{d:?}"
        );
        // A forecast crossing the threshold is enough.
        let d = plan_vertical(&ladder(), "Standard_D4s_v5", &[0.6], Some(0.82), true);
        assert!(
            matches!(&d, VerticalDecision::Resize { to, .. } if to == "Standard_D8s_v5"),
            "{d:?}"
        );
    }

    #[test]
    fn it_moves_down_only_after_a_whole_calm_window_and_stops_at_the_bottom() {
        assert!(matches!(
            plan_vertical(&ladder(), "Standard_D4s_v5", &[0.5, 0.3, 0.3], None, true),
            VerticalDecision::Hold { .. }
        ));
        assert!(
            matches!(
                plan_vertical(&ladder(), "Standard_D4s_v5", &[0.3, 0.3], None, true),
                VerticalDecision::Hold { .. }
            ),
            "window not full"
        );
        let d = plan_vertical(
            &ladder(),
            "Standard_D4s_v5",
            &[0.9, 0.3, 0.3, 0.2],
            None,
            true,
        );
        assert!(
            matches!(&d, VerticalDecision::Resize { to, .. } if to == "Standard_D2s_v5"),
            "{d:?}"
        );
        let d = plan_vertical(&ladder(), "Standard_D2s_v5", &[0.1, 0.1, 0.1], None, true);
        assert!(d.reasons()[1].contains("smallest"), "{d:?}");
    }

    #[test]
    fn with_known_memory_a_move_down_that_would_be_undone_at_once_holds() {
        // 8 -> 32 -> 64 GiB: from 32 down to 8 multiplies utilisation by 4.
        let uneven = |memory: Vec<f64>| {
            VerticalParams {
                ladder: vec!["small".into(), "mid".into(), "big".into()],
                high: 0.8,
                low: 0.4,
                window: 3,
                memory_gib: Some(memory),
            }
            .check()
            .unwrap()
        };
        let p = uneven(vec![8.0, 32.0, 64.0]);
        // 0.3 on 32 GiB is 1.2 on 8 GiB: holds, says why.
        let d = plan_vertical(&p, "mid", &[0.3, 0.3, 0.3], None, true);
        assert!(matches!(d, VerticalDecision::Hold { .. }), "{d:?}");
        assert!(d.reasons()[1].contains("undone at once"), "{d:?}");
        // 0.15 is 0.6 there: moves down.
        let d = plan_vertical(&p, "mid", &[0.15, 0.1, 0.15], None, true);
        assert!(
            matches!(&d, VerticalDecision::Resize { to, .. } if to == "small"),
            "{d:?}"
        );
        // A forecast peak counts too.
        let d = plan_vertical(&p, "mid", &[0.15, 0.1, 0.15], Some(0.25), true);
        assert!(matches!(d, VerticalDecision::Hold { .. }), "{d:?}");
        // From 64 to 32 GiB: 0.35 becomes 0.7, below 0.8: moves down.
        let d = plan_vertical(&p, "big", &[0.35, 0.35, 0.35], None, true);
        assert!(
            matches!(&d, VerticalDecision::Resize { to, .. } if to == "mid"),
            "{d:?}"
        );
        let bad = |m: Vec<f64>| {
            VerticalParams {
                ladder: vec!["a".into(), "b".into()],
                high: 0.8,
                low: 0.4,
                window: 1,
                memory_gib: Some(m),
            }
            .check()
        };
        assert!(matches!(
            bad(vec![8.0]),
            Err(VerticalError::MemoryCount { .. })
        ));
        assert!(matches!(
            bad(vec![16.0, 8.0]),
            Err(VerticalError::Memory(_))
        ));
        assert!(matches!(bad(vec![0.0, 8.0]), Err(VerticalError::Memory(_))));
    }

    #[test]
    fn busy_targets_unknown_sizes_and_bad_settings_hold_or_fail() {
        assert!(
            plan_vertical(&ladder(), "Standard_D2s_v5", &[0.99], None, false).reasons()[0]
                .contains("succeeded")
        );
        assert!(
            plan_vertical(&ladder(), "Standard_E4s_v5", &[0.99], None, true).reasons()[0]
                .contains("not on the ladder")
        );
        let bad = |ladder: Vec<&str>, low, high| {
            VerticalParams {
                ladder: ladder.into_iter().map(String::from).collect(),
                high,
                low,
                window: 2,
                memory_gib: None,
            }
            .check()
        };
        assert_eq!(bad(vec!["a"], 0.4, 0.8), Err(VerticalError::ShortLadder(1)));
        assert!(matches!(
            bad(vec!["a", "A"], 0.4, 0.8),
            Err(VerticalError::Repeated(_))
        ));
        assert!(matches!(
            bad(vec!["a", "b"], 0.8, 0.4),
            Err(VerticalError::Thresholds { .. })
        ));
    }
}
