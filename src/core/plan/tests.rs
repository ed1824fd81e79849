//! Tests of the node-count policies across their modules.

use super::*;
use crate::core::forecast::metrics::LEVELS;
use crate::core::forecast::model::Forecast;
use crate::core::time::Step;

fn step() -> Step {
    Step::from_secs(60).unwrap()
}

fn pool(min: u32, max: u32) -> CheckedPool {
    PoolParams {
        capacity_per_node: 10.0,
        min_nodes: min,
        max_nodes: max,
        lead_secs: 180,
    }
    .check()
    .unwrap()
}

/// A forecast whose quantiles at every level equal `points[h-1] * factor(level)`.
fn forecast(origin: i64, points: &[f64]) -> Forecast {
    Forecast {
        origin,
        step: step(),
        points: points.to_vec(),
        levels: LEVELS.to_vec(),
        quantiles: points
            .iter()
            .map(|p| LEVELS.iter().map(|l| p * (0.5 + l)).collect())
            .collect(),
        peak: None,
    }
}

fn bare() -> PredictiveParams {
    PredictiveParams {
        quantile: 0.5,
        window: LeadWindow::Whole,
        target_utilisation: 1.0,
        floor: None,
        scale_in_stabilisation_secs: 0,
        scale_in_cooldown_secs: 0,
        scale_out_cooldown_secs: 0,
        max_step_up: None,
        max_step_down: None,
        max_forecast_age_secs: 120,
        max_error_ratio: None,
        fallback_utilisation: 1.0,
        calibration: None,
        busy_secs: (0, 0),
        min_scale_in: 0.0,
        min_scale_out: 0.0,
    }
}

#[test]
fn nodes_for_rounds_up_but_forgives_float_noise() {
    let c = Capacity::new(10.0).unwrap();
    assert_eq!(c.nodes_for(30.0, 1.0), NodeCount(3));
    assert_eq!(c.nodes_for(30.000_000_001, 1.0), NodeCount(3));
    assert_eq!(c.nodes_for(30.1, 1.0), NodeCount(4));
    assert_eq!(c.nodes_for(35.0, 0.5), NodeCount(7));
    assert_eq!(c.nodes_for(0.0, 1.0), NodeCount(0));
    assert_eq!(c.nodes_for(f64::NAN, 1.0), NodeCount(0));
    assert_eq!(c.nodes_for(f64::INFINITY, 1.0), NodeCount(u32::MAX));
}

#[test]
fn a_capacity_of_zero_or_bounds_the_wrong_way_round_are_refused() {
    let mut p = PoolParams {
        capacity_per_node: 0.0,
        min_nodes: 1,
        max_nodes: 5,
        lead_secs: 600,
    };
    assert_eq!(p.check().unwrap_err(), PolicyError::Capacity(0.0));
    p.capacity_per_node = 1.0;
    p.min_nodes = 6;
    assert_eq!(
        p.check().unwrap_err(),
        PolicyError::Bounds { min: 6, max: 5 }
    );
    p.min_nodes = 1;
    p.lead_secs = 0;
    assert_eq!(p.check().unwrap_err(), PolicyError::Lead(0));
}

#[test]
fn the_predictive_plan_sizes_for_the_highest_forecast_over_the_lead_window() {
    let policy = bare().check(&pool(1, 100)).unwrap();
    let f = forecast(600, &[30.0, 55.0, 41.0]);
    let demand = [20.0];
    let input = PlanInput {
        forecast: Some(&f),
        ..PlanInput::observed(step(), &demand, &[])
    };
    let d = plan(&input, &PoolState::steady(NodeCount(2)), &policy, 600);
    assert_eq!(d.nodes(), NodeCount(6));
    assert!(d.is_change());
    assert!(matches!(
        d.reasons()[0],
        Reason::Forecast { from_horizon: 1, to_horizon: 3, demand, .. } if (demand - 55.0).abs() < 1e-9
    ));
}

#[test]
fn a_missing_forecast_falls_back_to_current_demand_and_never_scales_in() {
    let policy = bare().check(&pool(1, 100)).unwrap();
    let demand = [25.0];
    let input = PlanInput::observed(step(), &demand, &[]);
    let up = plan(&input, &PoolState::steady(NodeCount(2)), &policy, 0);
    assert_eq!(up.nodes(), NodeCount(3));
    let hold = plan(&input, &PoolState::steady(NodeCount(9)), &policy, 0);
    assert_eq!(hold.nodes(), NodeCount(9));
    assert!(!hold.is_change());
    assert!(hold.reasons().contains(&Reason::NoScaleInWithoutForecast));
}

#[test]
fn a_stale_forecast_is_not_used() {
    let policy = bare().check(&pool(1, 100)).unwrap();
    let f = forecast(0, &[1.0; 10]);
    let demand = [1.0];
    let input = PlanInput {
        forecast: Some(&f),
        ..PlanInput::observed(step(), &demand, &[])
    };
    let d = plan(&input, &PoolState::steady(NodeCount(9)), &policy, 180);
    assert_eq!(d.nodes(), NodeCount(9));
    assert!(matches!(
        d.reasons()[0],
        Reason::Fallback {
            cause: FallbackCause::Stale {
                age_secs: 180,
                max_age_secs: 120
            },
            ..
        }
    ));
}

#[test]
fn a_slightly_old_forecast_is_read_at_shifted_horizons() {
    let policy = bare().check(&pool(1, 100)).unwrap();
    let f = forecast(0, &[90.0, 10.0, 10.0, 10.0, 70.0]);
    let demand = [1.0];
    let input = PlanInput {
        forecast: Some(&f),
        ..PlanInput::observed(step(), &demand, &[])
    };
    // At t=60 the lead window (3 steps) is horizons 2..=4 of a forecast made at 0.
    let d = plan(&input, &PoolState::steady(NodeCount(1)), &policy, 60);
    assert_eq!(d.nodes(), NodeCount(1));
    // At t=120 it reaches horizon 5.
    let d = plan(&input, &PoolState::steady(NodeCount(1)), &policy, 120);
    assert_eq!(d.nodes(), NodeCount(7));
}

#[test]
fn drift_beyond_the_limit_falls_back() {
    let mut p = bare();
    p.max_error_ratio = Some(3.0);
    let policy = p.check(&pool(1, 100)).unwrap();
    let f = forecast(0, &[1.0; 3]);
    let demand = [1.0];
    let input = PlanInput {
        forecast: Some(&f),
        error_ratio: Some(4.0),
        ..PlanInput::observed(step(), &demand, &[])
    };
    let d = plan(&input, &PoolState::steady(NodeCount(5)), &policy, 0);
    assert_eq!(d.nodes(), NodeCount(5));
    assert!(matches!(
        d.reasons()[0],
        Reason::Fallback {
            cause: FallbackCause::Drifted { .. },
            ..
        }
    ));
}

#[test]
fn the_reactive_floor_covers_demand_the_forecast_missed() {
    let mut p = bare();
    p.floor = Some(ReactiveFloor {
        utilisation: 0.5,
        window_secs: 60,
        trend_secs: 0,
        trend_gain: 0.0,
    });
    let policy = p.check(&pool(1, 100)).unwrap();
    let f = forecast(120, &[5.0; 3]);
    let demand = [100.0, 40.0, 10.0];
    let input = PlanInput {
        forecast: Some(&f),
        ..PlanInput::observed(step(), &demand, &[])
    };
    let d = plan(&input, &PoolState::steady(NodeCount(1)), &policy, 120);
    // max(40, 10) / (10 * 0.5) = 8
    assert_eq!(d.nodes(), NodeCount(8));
    assert!(d
        .reasons()
        .iter()
        .any(|r| matches!(r, Reason::ReactiveFloor { .. })));
}

#[test]
fn the_trend_floor_extrapolates_a_rise_over_the_lead_time_and_ignores_a_fall() {
    let floor = ReactiveFloor {
        utilisation: 1.0,
        window_secs: 0,
        trend_secs: 120,
        trend_gain: 1.0,
    };
    // Rise of 10 over 2 steps = 5 per step, over a lead of 3 steps: +15.
    assert_eq!(
        floor.demand(&[0.0, 20.0, 25.0, 30.0], step(), 3),
        Some(45.0)
    );
    assert_eq!(
        floor.demand(&[0.0, 40.0, 35.0, 30.0], step(), 3),
        Some(30.0)
    );
    // Without enough history there is no trend, just the current demand.
    assert_eq!(floor.demand(&[30.0], step(), 3), Some(30.0));
    assert_eq!(floor.demand(&[1.0, f64::NAN], step(), 3), None);
    // A window shorter than a step covers the current bucket only.
    let window = ReactiveFloor {
        window_secs: 59,
        ..ReactiveFloor::current(1.0)
    };
    assert_eq!(window.demand(&[90.0, 10.0], step(), 3), Some(10.0));
    let window = ReactiveFloor {
        window_secs: 60,
        ..window
    };
    assert_eq!(window.demand(&[90.0, 10.0], step(), 3), Some(90.0));
}

#[test]
fn a_calibration_never_gives_a_higher_planned_peak_a_lower_calibrated_one() {
    let cap = Capacity::new(10.0).unwrap();
    // Below 2 nodes peaks ran 3x the plan; from 2 nodes on, 1.1x.
    let mut pairs: Vec<(f64, f64)> = (0..60).map(|_| (15.0, 45.0)).collect();
    pairs.extend((0..60).map(|_| (30.0, 33.0)));
    let c = Calibration::fit(pairs, cap, 0.5, 50).unwrap();
    assert!((c.factor(15.0) - 3.0).abs() < 1e-9);
    assert!((c.factor(30.0) - 1.1).abs() < 1e-9);
    assert!((c.calibrated(15.0) - 45.0).abs() < 1e-9);
    // Just above the bin edge: not 21 * 1.1, but the 20 * 3 reached below it.
    assert!((c.calibrated(21.0) - 60.0).abs() < 1e-9);
    let mut last = 0.0;
    for k in 0..500 {
        let v = c.calibrated(f64::from(k) * 0.2);
        assert!(v >= last, "{v} < {last} at {k}");
        last = v;
    }
}

#[test]
fn percent_steps_round_down_but_move_at_least_one_node() {
    assert_eq!(Adjustment::Percent(20.0).nodes(NodeCount(3)), 1);
    assert_eq!(Adjustment::Percent(20.0).nodes(NodeCount(14)), 2);
    assert_eq!(Adjustment::Nodes(3).nodes(NodeCount(14)), 3);
    assert!(Adjustment::Percent(0.0).check("step").is_err());
    assert!(Adjustment::Nodes(0).check("step").is_err());
}

#[test]
fn threshold_settings_that_cannot_work_are_refused() {
    let pool = pool(1, 10);
    let p = ThresholdParams {
        scale_in_at: 0.8,
        ..ThresholdParams::default()
    };
    assert!(matches!(
        p.check(&pool),
        Err(PolicyError::ThresholdOrder { .. })
    ));
    let p = ThresholdParams {
        scale_out_m: 3,
        scale_out_n: 2,
        ..ThresholdParams::default()
    };
    assert_eq!(
        p.check(&pool).unwrap_err().to_string(),
        "scale-out alarm should need between 1 and N breaching datapoints out of N >= 1, but is 3 of 2"
    );
}

#[test]
fn policy_names_read_back() {
    for k in PolicyKind::ALL {
        assert_eq!(k.name().parse::<PolicyKind>(), Ok(k));
    }
    assert!("magic".parse::<PolicyKind>().is_err());
}

#[test]
fn a_decision_serializes_with_its_reasons() {
    let policy = bare().check(&pool(1, 100)).unwrap();
    let demand = [25.0];
    let d = plan(
        &PlanInput::observed(step(), &demand, &[]),
        &PoolState::steady(NodeCount(2)),
        &policy,
        0,
    );
    let json = serde_json::to_string(&d).unwrap();
    assert!(
        json.starts_with(r#"{"action":"scale_to","from":2,"nodes":3"#),
        "{json}"
    );
    assert!(json.contains(r#""cause":"missing""#), "{json}");
}
