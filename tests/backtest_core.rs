//! The backtest engine: the simulated pool and every baseline against
//! hand-checked golden files, the planner's invariants (property tests), the
//! causality of a whole run on real data, and refusals of bad input.

use mlscaler::core::forecast::metrics::LEVELS;
use mlscaler::core::forecast::model::Forecast;
use mlscaler::core::forecast::series::{GapFill, GapPolicy};
use mlscaler::core::plan::{
    plan, Adjustment, Calibration, Capacity, CheckedPool, Decision, LeadWindow, NodeCount,
    PlanInput, PlannerMemory, PolicyError, PolicyKind, PoolParams, PoolState, PredictiveParams,
    ReactiveFloor, SeasonalNaiveParams, TargetTrackingParams, ThresholdParams,
};
use mlscaler::core::sim::backtest::{
    capacity_for_p999, run_backtest, BacktestError, BacktestParams, Trace,
};
use mlscaler::core::sim::pool::{Operations, PoolChange, Score, SimPool};
use mlscaler::core::time::Step;
use proptest::prelude::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/backtest/");
const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/");

fn minute() -> Step {
    Step::from_secs(60).unwrap()
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}{name}")).unwrap()
}

/// `actual` equals the golden file `name`; with `MLSCALER_BLESS=1` the
/// golden file is rewritten instead (review the diff before committing).
fn golden(actual: String, name: &str) {
    if std::env::var_os("MLSCALER_BLESS").is_some() {
        std::fs::write(format!("{FIXTURES}{name}"), actual).unwrap();
    } else {
        assert_eq!(
            actual,
            fixture(name),
            "{name} (MLSCALER_BLESS=1 rewrites it)"
        );
    }
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

/// A trace of one-minute rows starting at the epoch.
fn minutes(demand: &[f64]) -> Trace {
    let ts: Vec<i64> = (0..demand.len() as i64).map(|i| 60 * i).collect();
    Trace::from_rows(&ts, demand, minute(), no_gaps()).unwrap()
}

fn no_gaps() -> GapPolicy {
    GapPolicy {
        fill: GapFill::Error,
        max_gap_steps: 0,
    }
}

/// Capacity 10 per node, 1..=10 nodes, two minutes of lead time, everything
/// scored, only `policy` run.
fn small_params(policy: PolicyKind) -> BacktestParams {
    let mut p = BacktestParams::new(PoolParams {
        capacity_per_node: 10.0,
        min_nodes: 1,
        max_nodes: 10,
        lead_secs: 120,
    });
    p.policies = vec![policy];
    p.score_from_fraction = 0.0;
    p
}

fn run_small(params: &BacktestParams, demand: &[f64]) -> mlscaler::core::sim::backtest::Backtest {
    let checked = params.check(minute()).unwrap();
    run_backtest(&minutes(demand), &checked, None, &mut |_, _| {}).unwrap()
}

// ---------------------------------------------------------------------------
// The simulated pool.

#[test]
fn the_simulated_pool_matches_its_hand_checked_golden_file() {
    // Lead 120 s, capacity 10 per node, starting with one ready node.
    let mut pool = SimPool::new(NodeCount(1), 120);
    let mut score = Score::default();
    let cap = Capacity::new(10.0).unwrap();
    let text = fixture("sim_pool.csv");
    for (n, line) in text.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let t: i64 = f[0].parse().unwrap();
        let demand: f64 = f[1].parse().unwrap();
        let target = NodeCount(f[2].parse().unwrap());
        pool.advance(t);
        let change = pool.set_target(target, t);
        let shown = match change {
            PoolChange::None => "none".to_string(),
            PoolChange::Out { added } => format!("out:{added}"),
            PoolChange::In { cancelled, removed } => format!("in:{cancelled}/{removed}"),
        };
        assert_eq!(shown, f[3], "change on line {}", n + 1);
        assert_eq!(
            pool.ready().get().to_string(),
            f[4],
            "ready on line {}",
            n + 1
        );
        assert_eq!(
            pool.requested().get().to_string(),
            f[5],
            "requested on line {}",
            n + 1
        );
        score.add(cap, 60, demand, pool.ready(), pool.requested(), change);
    }
    let m = score.metrics(PolicyKind::Oracle);
    // Requested 3+5+4+4+1+1 = 18 node-minutes.
    assert!(close(m.node_hours, 0.3, 1e-12), "{}", m.node_hours);
    // Short at t=60 (15 > 10), t=120 (35 > 30) and t=240 (12 > 10).
    assert!(close(m.under_provisioned_pct, 50.0, 1e-9));
    assert!(close(m.unserved_pct, 100.0 * 12.0 / 107.0, 1e-9));
    assert_eq!((m.scale_outs, m.scale_ins, m.actions), (2, 2, 4));
    // Served 5+10+30+35+10+5 of 18 x 10 billed.
    assert!(close(m.mean_utilisation, 95.0 / 180.0, 1e-12));
}

// ---------------------------------------------------------------------------
// Baselines on small series, against hand-checked golden plans.

#[test]
fn the_oracle_requests_the_peak_of_the_lead_window_in_time_and_is_never_short() {
    // need = ceil(d / 10) = 1 1 3 3 1 1 1 4 1 1; the oracle asks at i for the
    // highest need of i..=i+2, so the 3 nodes for bucket 2 are asked for at 0.
    let demand = [5.0, 5.0, 25.0, 25.0, 8.0, 8.0, 8.0, 31.0, 2.0, 2.0];
    let bt = run_small(&small_params(PolicyKind::Oracle), &demand);
    let plan = bt.plan(PolicyKind::Oracle).unwrap();
    golden(plan.to_csv(), "oracle.csv");
    let m = &bt.report.policies[0];
    assert_eq!(m.under_provisioned_pct, 0.0);
    assert!(close(m.node_hours, 27.0 / 60.0, 1e-12));
    assert_eq!(m.node_hours_vs_oracle, Some(1.0));
}

#[test]
fn a_change_asked_while_an_operation_runs_waits_and_the_plan_says_so() {
    // Target tracking at 50%: recommendations ceil(d / 5) = 1 5 9 9 9 9 1 1.
    // A scale-out runs 3 minutes: the +4 of bucket 1 keeps the pool busy
    // through bucket 3, so the +4 bucket 2 wants waits until bucket 4; that
    // one runs through bucket 6, so the scale-in bucket 6 wants waits too.
    let mut p = small_params(PolicyKind::TargetTracking);
    p.target_tracking = TargetTrackingParams {
        target_utilisation: 0.5,
        scale_in_stabilisation_secs: 0,
    };
    p.operations = Operations {
        scale_out_secs: 180,
        scale_in_secs: 60,
    };
    let demand = [5.0, 25.0, 45.0, 45.0, 45.0, 45.0, 5.0, 5.0];
    let bt = run_small(&p, &demand);
    let csv = bt.plan(PolicyKind::TargetTracking).unwrap().to_csv();
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let col = |i: usize| -> Vec<&str> { rows.iter().map(|r| r[i]).collect() };
    assert_eq!(
        col(6),
        ["+0", "+4", "+0", "+0", "+4", "+0", "+0", "-8"],
        "{csv}"
    );
    assert_eq!(col(7), ["0", "0", "1", "1", "0", "0", "1", "0"], "{csv}");
    assert_eq!(col(3), ["1", "5", "5", "5", "9", "9", "9", "1"], "{csv}");
    let m = &bt.report.policies[0];
    assert_eq!((m.scale_outs, m.scale_ins, m.actions), (2, 1, 3));
    assert_eq!(m.waited, 3);
}

#[test]
fn target_tracking_scales_out_at_once_and_in_only_after_the_stabilisation_window() {
    // At 50% utilisation: recommendations ceil(d / 5) = 1 1 5 5 2 2 2 7 1 1.
    // At bucket 4 the recommendation of bucket 3 (5) is still within the
    // 120 s window: hold. At bucket 5 the window holds 2 and 2: scale in.
    let mut p = small_params(PolicyKind::TargetTracking);
    p.target_tracking = TargetTrackingParams {
        target_utilisation: 0.5,
        scale_in_stabilisation_secs: 120,
    };
    let demand = [5.0, 5.0, 25.0, 25.0, 8.0, 8.0, 8.0, 31.0, 2.0, 2.0];
    let bt = run_small(&p, &demand);
    golden(
        bt.plan(PolicyKind::TargetTracking).unwrap().to_csv(),
        "target_tracking.csv",
    );
    let m = &bt.report.policies[0];
    // Short at buckets 2, 3 (25 > 10) and 7 (31 > 20): the lead time bites.
    assert!(close(m.under_provisioned_pct, 30.0, 1e-9));
    assert!(close(m.unserved_pct, 100.0 * 41.0 / 119.0, 1e-9));
    assert_eq!((m.scale_outs, m.scale_ins), (2, 2));
    assert_eq!(m.reasons.get("stabilising"), Some(&2));
}

#[test]
fn with_a_start_only_the_steps_from_it_on_are_scored() {
    let mut p = small_params(PolicyKind::TargetTracking);
    let demand = [5.0, 5.0, 25.0, 25.0, 8.0, 8.0, 8.0, 31.0, 2.0, 2.0];
    let all = run_small(&p, &demand);
    assert_eq!(all.report.scored_steps, 10);
    // From bucket 4 on: the steps before it are history, the pool holding.
    p.start = Some(4 * 60);
    let bt = run_small(&p, &demand);
    assert_eq!(bt.report.scored_from, 4 * 60);
    assert_eq!(bt.report.scored_steps, 6);
    // A later --score-from still wins.
    p.score_from_fraction = 0.8;
    assert_eq!(run_small(&p, &demand).report.scored_steps, 2);
}

#[test]
fn the_threshold_policy_needs_m_of_n_breaches_and_respects_its_cooldown() {
    // Out at >= 80% for 2 of 3 (+2 nodes), in at <= 30% for 3 of 3 (-1 node),
    // 120 s cooldown. Utilisation: 0.9, 0.5 (one breach: no action), 0.9
    // (two: +2), cooldown, 0.3 with 0.9 0.9 before it (two: +2 again, the
    // first request is not ready yet), cooldown, 0.6 x4, then 2/50: three
    // low datapoints at bucket 12 (-1), cooldown, three more at 14 (-1).
    let mut p = small_params(PolicyKind::ReactiveThreshold);
    p.threshold = ThresholdParams {
        scale_out_at: 0.8,
        scale_out_m: 2,
        scale_out_n: 3,
        scale_in_at: 0.3,
        scale_in_m: 3,
        scale_in_n: 3,
        step_out: Adjustment::Nodes(2),
        step_in: Adjustment::Nodes(1),
        cooldown_secs: 120,
    };
    let demand = [
        9.0, 5.0, 9.0, 9.0, 9.0, 9.0, 30.0, 30.0, 30.0, 30.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0,
    ];
    let bt = run_small(&p, &demand);
    golden(
        bt.plan(PolicyKind::ReactiveThreshold).unwrap().to_csv(),
        "reactive_threshold.csv",
    );
    let m = &bt.report.policies[0];
    assert_eq!(m.reasons.get("cooldown"), Some(&4));
    assert_eq!(m.reasons.get("alarm_high"), Some(&2));
    assert_eq!(m.reasons.get("alarm_low"), Some(&2));
}

#[test]
fn seasonal_naive_sizes_for_last_period_plus_margin_and_cancels_unready_nodes_on_scale_in() {
    // Period 4 buckets, +50%, floor on current demand. Before a full period
    // it sizes on current demand and never scales in. At bucket 7 the floor
    // (40 * 1.5) asks for 6; at bucket 8 last period says 3: three of the
    // four nodes still provisioning are cancelled at once.
    let mut p = small_params(PolicyKind::SeasonalNaive);
    p.seasonal_naive = SeasonalNaiveParams {
        period_secs: 240,
        margin: 0.5,
        floor_on_current: true,
    };
    let demand = [10.0, 20.0, 10.0, 10.0, 10.0, 20.0, 10.0, 40.0, 10.0, 10.0];
    let bt = run_small(&p, &demand);
    golden(
        bt.plan(PolicyKind::SeasonalNaive).unwrap().to_csv(),
        "seasonal_naive.csv",
    );
}

#[test]
fn a_plan_has_one_row_per_input_row_even_when_gaps_were_filled() {
    // Minute 2 is missing; it is filled (previous value) and simulated, but
    // has no plan row.
    let ts = [0, 60, 180, 240];
    let demand = [5.0, 15.0, 25.0, 5.0];
    let gaps = GapPolicy {
        fill: GapFill::Previous,
        max_gap_steps: 5,
    };
    let trace = Trace::from_rows(&ts, &demand, minute(), gaps).unwrap();
    assert_eq!((trace.rows().len(), trace.demand().len()), (4, 5));
    assert_eq!(trace.filled_steps(), 1);
    let mut p = small_params(PolicyKind::TargetTracking);
    p.policies = PolicyKind::ALL[1..].to_vec();
    let checked = p.check(minute()).unwrap();
    let bt = run_backtest(&trace, &checked, None, &mut |_, _| {}).unwrap();
    for plan in &bt.plans {
        let times: Vec<i64> = plan.rows.iter().map(|r| r.timestamp).collect();
        assert_eq!(times, ts, "{}", plan.policy);
    }
    assert_eq!(bt.report.rows, 4);
    assert_eq!(bt.report.steps, 5);
}

// ---------------------------------------------------------------------------
// Planner invariants.

fn pool(min: u32, max: u32, capacity: f64, lead_secs: i64) -> CheckedPool {
    PoolParams {
        capacity_per_node: capacity,
        min_nodes: min,
        max_nodes: max,
        lead_secs,
    }
    .check()
    .unwrap()
}

/// A forecast made at `origin` with point `p[h]` and quantiles spread around it.
fn forecast(origin: i64, points: &[f64]) -> Forecast {
    Forecast {
        origin,
        step: minute(),
        points: points.to_vec(),
        levels: LEVELS.to_vec(),
        quantiles: points
            .iter()
            .map(|p| LEVELS.iter().map(|l| p * (0.6 + 0.8 * l)).collect())
            .collect(),
        peak: None,
    }
}

fn scaled(f: &Forecast, k: f64) -> Forecast {
    Forecast {
        points: f.points.iter().map(|v| v * k).collect(),
        quantiles: f
            .quantiles
            .iter()
            .map(|q| q.iter().map(|v| v * k).collect())
            .collect(),
        ..f.clone()
    }
}

#[derive(Debug, Clone)]
struct Case {
    min: u32,
    max: u32,
    capacity: f64,
    requested: u32,
    params: PredictiveParams,
    demand: Vec<f64>,
    points: Vec<f64>,
    memory: PlannerMemory,
    calibration_pairs: Vec<(f64, f64)>,
}

const NOW: i64 = 6_000;
const LEAD_STEPS: usize = 5;

fn case() -> impl Strategy<Value = Case> {
    (
        (0u32..4, 1u32..30, 0.5f64..50.0, 0u32..45),
        (
            0.05f64..0.95,
            0.3f64..=1.0,
            proptest::option::of((0.3f64..=1.0, 0i64..600, 0i64..600, 0.0f64..3.0)),
            0i64..900,
            0i64..900,
            0i64..900,
            proptest::option::of(1u32..6),
            proptest::option::of(1u32..6),
            proptest::bool::ANY,
        ),
        proptest::collection::vec(0.0f64..2_000.0, 1..20),
        proptest::collection::vec(0.0f64..2_000.0, LEAD_STEPS),
        (
            proptest::option::of(NOW - 1_000..NOW),
            proptest::collection::vec(0u32..45, 0..10),
        ),
        proptest::collection::vec((0.0f64..2_000.0, 0.0f64..4_000.0), 0..200),
    )
        .prop_map(
            |(
                (min, span, capacity, requested),
                (q, util, floor, stab, cool_in, cool_out, up, down, lead_only),
                demand,
                points,
                (last_out, recs),
                calibration_pairs,
            )| {
                let params = PredictiveParams {
                    quantile: q,
                    window: if lead_only {
                        LeadWindow::AtLead
                    } else {
                        LeadWindow::Whole
                    },
                    target_utilisation: util,
                    floor: floor.map(|(u, w, t, g)| ReactiveFloor {
                        utilisation: u,
                        window_secs: w,
                        trend_secs: t,
                        trend_gain: g,
                    }),
                    scale_in_stabilisation_secs: stab,
                    scale_in_cooldown_secs: cool_in,
                    scale_out_cooldown_secs: cool_out,
                    max_step_up: up,
                    max_step_down: down,
                    ..PredictiveParams::default()
                };
                let n = recs.len() as i64;
                let memory = PlannerMemory {
                    last_scale_out: last_out,
                    last_scale_in: None,
                    recommendations: recs
                        .into_iter()
                        .enumerate()
                        .map(|(k, r)| (NOW - 60 * (n - k as i64), NodeCount(r)))
                        .collect(),
                };
                Case {
                    min,
                    max: min + span,
                    capacity,
                    requested,
                    params,
                    demand,
                    points,
                    memory,
                    calibration_pairs,
                }
            },
        )
}

impl Case {
    fn pool(&self) -> CheckedPool {
        pool(self.min, self.max, self.capacity, 60 * LEAD_STEPS as i64)
    }
    fn state(&self) -> PoolState {
        PoolState {
            requested: NodeCount(self.requested),
            ready: NodeCount(self.requested),
            memory: self.memory.clone(),
        }
    }
    fn calibration(&self) -> Option<Calibration> {
        Calibration::fit(
            self.calibration_pairs.iter().copied(),
            Capacity::new(self.capacity).unwrap(),
            0.9,
            20,
        )
    }
    fn decide(&self, forecast: Option<&Forecast>, now: i64) -> Decision {
        let policy = self.params.check(&self.pool()).unwrap();
        let calibration = self.calibration();
        let input = PlanInput {
            forecast,
            calibration: calibration.as_ref(),
            ..PlanInput::observed(minute(), &self.demand, &[])
        };
        plan(&input, &self.state(), &policy, now)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn the_plan_never_leaves_the_bounds(c in case()) {
        let f = forecast(NOW, &c.points);
        for fc in [Some(&f), None] {
            let n = c.decide(fc, NOW).nodes().get();
            prop_assert!(n >= c.min && n <= c.max, "{n} outside [{}, {}]", c.min, c.max);
        }
    }

    #[test]
    fn the_plan_moves_by_at_most_the_step_limits(c in case()) {
        prop_assume!(c.requested >= c.min && c.requested <= c.max);
        let f = forecast(NOW, &c.points);
        let n = c.decide(Some(&f), NOW).nodes().get();
        if let Some(up) = c.params.max_step_up {
            prop_assert!(n <= c.requested + up);
        }
        if let Some(down) = c.params.max_step_down {
            prop_assert!(n + down >= c.requested);
        }
    }

    #[test]
    fn without_a_fresh_forecast_the_plan_never_scales_in(c in case()) {
        let stale = forecast(NOW - 10_000, &c.points);
        let keep = c.requested.min(c.max);
        for fc in [None, Some(&stale)] {
            let n = c.decide(fc, NOW).nodes().get();
            prop_assert!(n >= keep, "{n} < {keep}");
        }
    }

    #[test]
    fn a_higher_forecast_never_gets_fewer_nodes(c in case(), k in 1.0f64..4.0) {
        let f = forecast(NOW, &c.points);
        let higher = scaled(&f, k);
        let low = c.decide(Some(&f), NOW).nodes();
        let high = c.decide(Some(&higher), NOW).nodes();
        prop_assert!(high >= low, "{high} < {low} at x{k}");
    }

    #[test]
    fn nonsense_numbers_never_panic_the_planner(
        c in case(),
        junk in proptest::collection::vec(
            prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(-1.0), Just(f64::NEG_INFINITY), 0.0f64..1e12],
            LEAD_STEPS,
        ),
    ) {
        let f = forecast(NOW, &junk);
        let mut c = c;
        c.demand.extend(junk.iter().copied());
        let d = c.decide(Some(&f), NOW);
        prop_assert!(d.nodes().get() >= c.min && d.nodes().get() <= c.max);
    }
}

#[test]
fn a_calibration_raises_plans_by_the_recent_shortfall_and_never_lowers_them() {
    let cap = Capacity::new(10.0).unwrap();
    // Planned 30 (3 nodes), actual peaks 30..=60: the 90% factor is about 1.9.
    let pairs: Vec<(f64, f64)> = (0..100).map(|k| (30.0, 30.0 + 0.3 * k as f64)).collect();
    let c = Calibration::fit(pairs, cap, 0.9, 20).unwrap();
    assert!(close(c.factor(30.0), 1.891, 1e-3), "{}", c.factor(30.0));
    let p = pool(1, 100, 10.0, 300);
    let params = PredictiveParams {
        floor: None,
        ..PredictiveParams::default()
    };
    let policy = params.check(&p).unwrap();
    let f = forecast(NOW, &[25.0; LEAD_STEPS]);
    let demand = [1.0];
    let with = PlanInput {
        forecast: Some(&f),
        calibration: Some(&c),
        ..PlanInput::observed(minute(), &demand, &[])
    };
    let without = PlanInput {
        calibration: None,
        ..with
    };
    let state = PoolState::steady(NodeCount(1));
    let a = plan(&with, &state, &policy, NOW);
    let b = plan(&without, &state, &policy, NOW);
    // 25 at 83%: 4 nodes (25 / 8.3 = 3.01); calibrated 25 * 1.891 = 47.3: 5.
    assert_eq!((a.nodes(), b.nodes()), (NodeCount(5), NodeCount(4)));
    assert!(a.reasons().iter().any(|r| r.kind() == "calibrated"));
    // Too few pairs: no calibration.
    assert!(Calibration::fit(vec![(1.0, 2.0); 5], cap, 0.9, 20).is_none());
}

// ---------------------------------------------------------------------------
// Causality on real data.

fn read_rows(file: &str, limit: usize) -> (Vec<i64>, Vec<f64>) {
    let text = std::fs::read_to_string(format!("{DATA}{file}")).unwrap();
    let mut ts = Vec::new();
    let mut vs = Vec::new();
    for line in text.lines().skip(1).take(limit) {
        let (t, v) = line.split_once(',').unwrap();
        ts.push(
            chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S")
                .unwrap()
                .and_utc()
                .timestamp(),
        );
        vs.push(v.trim().parse().unwrap());
    }
    (ts, vs)
}

/// Run every causal policy on the rows, and on the rows cut at each of
/// `cuts`: every row before a cut must be identical.
fn assert_causal(file: &str, limit: usize, step: Step, retrain_every_secs: i64, cuts: &[usize]) {
    let (ts, vs) = read_rows(file, limit);
    let gaps = GapPolicy {
        fill: GapFill::Previous,
        max_gap_steps: 10,
    };
    let capacity = capacity_for_p999(&vs, 40).unwrap();
    let mut p = BacktestParams::new(PoolParams {
        capacity_per_node: capacity.per_node(),
        min_nodes: 1,
        max_nodes: 1_000,
        lead_secs: 600,
    });
    // The oracle reads the future by design.
    p.policies = PolicyKind::ALL
        .into_iter()
        .filter(|k| *k != PolicyKind::Oracle)
        .collect();
    p.retrain_every_secs = retrain_every_secs;
    p.predictive.calibration.as_mut().unwrap().min_samples = 20;
    let checked = p.check(step).unwrap();
    let run = |n: usize| {
        let trace = Trace::from_rows(&ts[..n], &vs[..n], step, gaps).unwrap();
        run_backtest(&trace, &checked, None, &mut |_, _| {}).unwrap()
    };
    let full = run(ts.len());
    let retrained = full
        .report
        .retrains
        .iter()
        .filter(|r| {
            matches!(
                r.outcome,
                mlscaler::core::sim::backtest::RetrainOutcome::Trained { .. }
            )
        })
        .count();
    assert!(
        retrained >= 2,
        "the forecaster must have run: {:?}",
        full.report.retrains
    );
    let pred = full.plan(PolicyKind::Predictive).unwrap();
    assert!(
        pred.rows.iter().filter(|r| r.forecast.is_some()).count() > ts.len() / 4,
        "the predictive policy must have used forecasts"
    );
    for &cut in cuts {
        let part = run(cut);
        for (a, b) in full.plans.iter().zip(&part.plans) {
            assert_eq!(a.policy, b.policy);
            assert_eq!(b.rows.len(), cut);
            if let Some(k) = (0..cut).find(|&k| a.rows[k] != b.rows[k]) {
                panic!(
                    "{}: cutting at row {cut} changed row {k}: {:?} vs {:?}",
                    a.policy, a.rows[k], b.rows[k]
                );
            }
        }
    }
}

#[test]
fn cutting_worldcup_rows_at_any_point_leaves_every_earlier_plan_row_unchanged() {
    // Five days of one-minute data, retrained every 12 hours after two days.
    let n = 5 * 1_440;
    assert_causal(
        "worldcup98_requests_per_minute.csv",
        n,
        minute(),
        43_200,
        &[2 * 1_440 + 1, 3 * 1_440 + 333, 4 * 1_440, n - 1],
    );
}

#[test]
fn cutting_the_elb_trace_with_its_gaps_leaves_every_earlier_plan_row_unchanged() {
    let step = Step::from_secs(300).unwrap();
    assert_causal(
        "nab_elb_request_count_8c0756.csv",
        4_032,
        step,
        86_400,
        &[1_000, 2_017, 3_001, 4_031],
    );
}

// ---------------------------------------------------------------------------
// Bad input.

#[test]
fn a_capacity_of_zero_is_refused_with_its_value() {
    let mut p = small_params(PolicyKind::Oracle);
    p.pool.capacity_per_node = 0.0;
    let err = p.check(minute()).unwrap_err();
    assert_eq!(err, BacktestError::Policy(PolicyError::Capacity(0.0)));
    assert!(err.to_string().contains("but is 0"), "{err}");
}

#[test]
fn a_lead_time_shorter_than_the_step_is_refused_unless_rounding_up_is_allowed() {
    let mut p = small_params(PolicyKind::Oracle);
    p.pool.lead_secs = 600;
    let half_hour = Step::from_secs(1_800).unwrap();
    let err = p.check(half_hour).unwrap_err();
    assert!(
        matches!(&err, BacktestError::LeadShorterThanStep { lead, .. } if lead == "10m"),
        "{err}"
    );
    p.allow_lead_below_step = true;
    let checked = p.check(half_hour).unwrap();
    assert_eq!(checked.lead_steps(), 1);
}

#[test]
fn a_warm_up_longer_than_the_trace_is_an_error_not_a_panic() {
    let mut p = small_params(PolicyKind::Predictive);
    p.warmup_secs = 3_600;
    let checked = p.check(minute()).unwrap();
    let err = run_backtest(&minutes(&[1.0; 30]), &checked, None, &mut |_, _| {}).unwrap_err();
    assert!(
        matches!(&err, BacktestError::WarmupTooLong { warmup, trace } if warmup == "1h" && trace == "30m"),
        "{err}"
    );
}

#[test]
fn bad_demand_values_and_disorderly_rows_are_refused_with_the_row() {
    let err = Trace::from_rows(&[0, 60, 120], &[1.0, -2.0, 3.0], minute(), no_gaps());
    assert_eq!(
        err.unwrap_err(),
        BacktestError::BadDemand {
            row: 1,
            value: -2.0
        }
    );
    let err = Trace::from_rows(&[0, 60], &[1.0, f64::INFINITY], minute(), no_gaps());
    assert!(matches!(err, Err(BacktestError::BadDemand { row: 1, .. })));
    let err = Trace::from_rows(&[60, 0], &[1.0, 2.0], minute(), no_gaps());
    assert!(matches!(err, Err(BacktestError::Series(_))), "{err:?}");
    let err = Trace::from_rows(&[0, 600], &[1.0, 2.0], minute(), no_gaps());
    assert!(matches!(err, Err(BacktestError::Series(_))), "{err:?}");
    assert_eq!(
        Trace::from_rows(&[], &[], minute(), no_gaps()).unwrap_err(),
        BacktestError::Empty
    );
}

#[test]
fn stretches_of_zero_demand_run_at_the_minimum_and_untrainable_windows_are_reported() {
    // Three days of one-minute data: a day of zeros, then a daily shape.
    let demand: Vec<f64> = (0..3 * 1_440)
        .map(|i| {
            if i < 1_440 {
                0.0
            } else {
                50.0 + 40.0 * ((i % 1_440) as f64 / 1_440.0 * std::f64::consts::TAU).sin()
            }
        })
        .collect();
    let mut p = small_params(PolicyKind::Predictive);
    p.policies = PolicyKind::ALL.to_vec();
    p.warmup_secs = 1_440 * 60;
    p.retrain_every_secs = 720 * 60;
    let bt = run_small(&p, &demand);
    for plan in &bt.plans {
        assert_eq!(plan.rows.len(), demand.len());
        assert!(
            // (The oracle sees the day starting a lead time ahead.)
            plan.rows[5..1_437]
                .iter()
                .all(|r| r.target_nodes == NodeCount(1)),
            "{} holds more than the minimum on zero demand",
            plan.policy
        );
    }
    // The first retrain sees only zeros: it fails, and says why.
    match &bt.report.retrains[0].outcome {
        mlscaler::core::sim::backtest::RetrainOutcome::Failed { error } => {
            assert!(error.contains("zero everywhere"), "{error}")
        }
        other => panic!("expected a failed retrain, got {other:?}"),
    }
    // All-zero demand has no 99.9th percentile to size for.
    assert!(matches!(
        capacity_for_p999(&[0.0; 100], 40),
        Err(BacktestError::ZeroDemand { nodes: 40 })
    ));
}

#[test]
fn the_report_serializes_to_json_with_every_policy() {
    let mut p = small_params(PolicyKind::Oracle);
    p.policies = PolicyKind::ALL[1..].to_vec();
    let bt = run_small(&p, &[5.0, 5.0, 25.0, 25.0, 8.0, 8.0]);
    let json = serde_json::to_value(&bt.report).unwrap();
    let names: Vec<&str> = json["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["policy"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "reactive_threshold",
            "target_tracking",
            "seasonal_naive",
            "oracle"
        ]
    );
    assert_eq!(json["step"], 60);
}
