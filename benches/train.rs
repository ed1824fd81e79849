//! Training throughput on one year of 1-minute data (525,600 steps) built by
//! tiling the bundled WorldCup98 trace: features, a fit of every horizon and
//! the walk-forward evaluation (5 refits), as `mlscaler train` runs them.
//!
//! `cargo bench --bench train`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use mlscaler::core::forecast::model::{train_forecaster, ForecastParams};
use mlscaler::core::forecast::series::LoadSeries;
use mlscaler::core::time::Step;

#[path = "support/worldcup.rs"]
mod worldcup;

const YEAR: usize = 525_600;

fn year_of_minutes() -> LoadSeries {
    let base = worldcup::requests_per_minute();
    let y: Vec<f64> = (0..YEAR)
        .map(|i| base[i % base.len()] * (1.0 + 0.15 * (i / base.len()) as f64))
        .collect();
    let step = Step::from_secs(60).expect("positive");
    LoadSeries::new(1_735_689_600, step, vec!["requests".into()], vec![y]).expect("valid series")
}

fn bench_train(c: &mut Criterion) {
    let series = year_of_minutes();
    let params = ForecastParams::new(10)
        .check(series.step())
        .expect("valid params");
    let mut g = c.benchmark_group("train");
    g.sample_size(10);
    g.throughput(Throughput::Elements(YEAR as u64));
    g.bench_function("year_1m_h10_walk_forward", |b| {
        b.iter_batched(
            || series.clone(),
            |s| train_forecaster(&params, &s, "requests", None, &mut |_, _| {}).expect("trains"),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench_train);
criterion_main!(benches);
