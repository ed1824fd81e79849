//! The controller's work per decision, on a model trained on the bundled
//! WorldCup98 sample: one forecast from the recent window plus one planning
//! step (what the backtest does at every step), and the whole preparation a
//! `scale` run does (forecast, drift over an hour, calibration over two weeks),
//! afresh and with the past-origin results the run a minute before kept.
//!
//! `cargo bench --bench plan`

use criterion::{criterion_group, criterion_main, Criterion};
use mlscaler::core::forecast::model::{train_forecaster, ForecastParams};
use mlscaler::core::forecast::series::LoadSeries;
use mlscaler::core::plan::signals::{prepare, prepare_kept, Past};
use mlscaler::core::plan::{plan, NodeCount, PlanInput, PoolParams, PoolState, PredictiveParams};
use mlscaler::core::time::Step;

#[path = "support/worldcup.rs"]
mod worldcup;

fn worldcup() -> LoadSeries {
    let y = worldcup::requests_per_minute();
    LoadSeries::new(
        893_968_200,
        Step::from_secs(60).expect("positive"),
        vec!["count".into()],
        vec![y],
    )
    .expect("valid")
}

fn bench_plan(c: &mut Criterion) {
    let series = worldcup();
    let params = ForecastParams::new(10)
        .check(series.step())
        .expect("valid params");
    let model = train_forecaster(&params, &series, "count", None, &mut |_, _| {})
        .expect("trains")
        .model;
    // Plan at a busy moment: the first 61 days (up to 1998-06-30).
    let recent = series.head(61 * 1440);
    let pool = PoolParams {
        capacity_per_node: 4000.0,
        min_nodes: 1,
        max_nodes: 100,
        lead_secs: 600,
    }
    .check()
    .expect("valid pool");
    let policy = PredictiveParams::default()
        .check(&pool)
        .expect("valid policy");
    let y = recent.column("count").expect("the column");
    let now = recent.time_at(recent.len() - 1);
    let state = PoolState::steady(NodeCount(20));
    let mut g = c.benchmark_group("controller");
    g.bench_function("forecast_and_plan_one_step", |b| {
        b.iter(|| {
            let f = model.forecast(&recent).expect("a forecast");
            let input = PlanInput {
                forecast: Some(&f),
                ..PlanInput::observed(recent.step(), y, &[])
            };
            plan(&input, &state, &policy, now)
        })
    });
    g.sample_size(20);
    g.bench_function("scale_run_preparation_drift_1h_calibration_14d", |b| {
        b.iter(|| prepare(&model, &recent, &policy, 3600, None).expect("prepared"))
    });
    // What a `scale` run with a state file does: the run a minute before
    // kept its past-origin results, so one origin is new.
    let before = series.head(61 * 1440 - 1);
    let kept = |s: &LoadSeries, past| prepare_kept(&model, s, &policy, 3600, None, past);
    let none = Past {
        model_id: "bench",
        kept: None,
    };
    let kept_before = kept(&before, none).expect("prepared").keep;
    let past = Past {
        model_id: "bench",
        kept: Some(&kept_before),
    };
    g.bench_function("scale_run_preparation_kept_from_a_minute_before", |b| {
        b.iter(|| kept(&recent, past).expect("prepared"))
    });
    g.finish();
}

criterion_group!(benches, bench_plan);
criterion_main!(benches);
