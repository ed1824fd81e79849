//! `mlscaler backtest --mode sla`: replay the SLA band of `scale --policy
//! sla` over a history ([`crate::core::sim::sla`]): the published regression
//! model predicts from each row's inputs, and the band decides against the
//! simulated pool, row by row, as `scale --target sim --state S --now t`
//! would at that row. Wiring only.

use super::source::{self, DataSource};
use super::{exit, write_atomic};
use crate::core::forecast::regression::RegressionModel;
use crate::core::forecast::series::GapFill;
use crate::core::plan::NodeCount;
use crate::core::sim::sla::{replay_sla, SlaInput, SlaPool};
use crate::core::time::Duration;
use crate::report::backtest_sla::{plot, ModelInfo, Summary};
use crate::settings::backtest::{BacktestSettings, Mode};
use crate::store::artifact::Model;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::BTreeMap;
use std::time::Instant;

/// Run `backtest --mode sla`.
pub fn run(s: &BacktestSettings, quiet: bool) -> Result<(i32, Summary)> {
    if s.mode != Mode::Sla {
        bail!("backtest_sla::run replays the SLA band");
    }
    let t0 = Instant::now();
    let mut seconds = BTreeMap::new();
    let (info, model) = load_model(s)?;
    let src = DataSource::resolve(s.data.location.as_deref(), &s.data.storage)?;
    if src.location == source::SAMPLE_NAME && !quiet {
        eprintln!(
            "note: no --data given: replaying the bundled sample ({})",
            source::SAMPLE_NAME
        );
    }
    let mut opts = s.data.read.clone();
    // A linear fill looks at the next row, which a causal replay must not.
    if opts.gaps.fill == GapFill::Linear {
        opts.gaps.fill = GapFill::Previous;
    }
    let series = source::load(&src, &opts)?.series;
    seconds.insert("ingest".into(), t0.elapsed().as_secs_f64());

    let columns: Vec<&[f64]> = model
        .inputs
        .iter()
        .map(|name| {
            series.column(name).map_err(|_| {
                anyhow!(
                    "{}: the model '{}' needs '{name}', which the data does not have (it has: {})",
                    src.location,
                    info.name,
                    series.names().join(", ")
                )
            })
        })
        .collect::<Result<_>>()?;
    let q = s.profile.predictive.quantile;
    let mut x = vec![0.0; columns.len()];
    let predicted: Vec<f64> = (0..series.len())
        .map(|i| {
            for (v, c) in x.iter_mut().zip(&columns) {
                *v = c[i];
            }
            model.predict_quantile(&x, q)
        })
        .collect::<Result<_, _>>()
        .with_context(|| format!("predicting with the model '{}'", info.name))?;
    let recorded = series.column(&model.target).ok();
    let time: Vec<i64> = (0..series.len()).map(|i| series.time_at(i)).collect();

    let step = Duration::from_secs(series.step().secs()).unwrap_or_default();
    let predicts = super::scale::nodes::predicts(&info.name, &model);
    let band = s.profile.sla_band(step, &predicts)?;
    let n = time.len();
    let begin = match s.walk_forward.start {
        None => 0,
        Some(t) => time.iter().position(|&ti| ti >= t).with_context(|| {
            format!(
                "--start {} is after the last row of the data ({})",
                crate::core::time::rfc3339(t),
                crate::core::time::rfc3339(time[n - 1])
            )
        })?,
    };
    let pool = SlaPool {
        // As a fresh `scale --target sim` starts the band's pool.
        initial: NodeCount(s.profile.pool.min_nodes),
        lead_secs: band.pool().lead_secs(),
        operations: s.profile.pool.operations(),
        begin,
        score_from: ((n as f64 * s.score_from).ceil() as usize).min(n - 1),
    };
    let t1 = Instant::now();
    let input = SlaInput {
        time: &time,
        predicted: &predicted,
        recorded,
    };
    let run = replay_sla(input, &band, pool);
    seconds.insert("replay".into(), t1.elapsed().as_secs_f64());

    let mut files = BTreeMap::new();
    if let Some(p) = &s.plan_out {
        write_atomic(p, run.to_csv().as_bytes())?;
        files.insert("plan".into(), p.display().to_string());
    }
    if let Some(p) = &s.plot {
        let (latency, nodes) = plot(&run, &band, &model.target, pool.score_from);
        write_atomic(p, latency.as_bytes())?;
        files.insert("plot".into(), p.display().to_string());
        let second = p.with_file_name(format!(
            "{}-nodes.svg",
            p.file_stem().map_or("sla".into(), |s| s.to_string_lossy())
        ));
        write_atomic(&second, nodes.as_bytes())?;
        files.insert("plot_nodes".into(), second.display().to_string());
    }
    let (lo, hi) = band.band();
    let mut summary = Summary {
        source: src.location.clone(),
        model: info,
        target: model.target.clone(),
        inputs: model.inputs.clone(),
        quantile: q,
        band: [lo, hi],
        increment: s.profile.sla.increment,
        min_nodes: band.pool().min().get(),
        max_nodes: band.pool().max().get(),
        lead_secs: band.pool().lead_secs(),
        step: series.step().to_string(),
        rows: n,
        scored_from: time[pool.score_from],
        start: time[begin],
        metrics: run.metrics,
        files,
        seconds,
    };
    super::finish(&mut summary, s.report.as_deref(), t0)?;
    Ok((exit::OK, summary))
}

/// The published regression model of `--model` (the version
/// `--model-version` names, else the latest).
fn load_model(s: &BacktestSettings) -> Result<(ModelInfo, RegressionModel)> {
    let name = s
        .walk_forward
        .model
        .as_deref()
        .context("--mode sla needs --model")?;
    let store = super::storage::open_models(&s.walk_forward.models, &s.data.storage)?;
    let registry = crate::store::registry::Registry::new(store.as_ref());
    let (pointer, payload) = match &s.walk_forward.model_version {
        Some(v) => registry.load_version(name, v)?,
        None => registry.load_latest(name)?,
    };
    let Model::Regression(model) = payload.model else {
        bail!(
            "--mode sla needs a regression model (train --kind regression); '{name}' is a forecast model"
        )
    };
    Ok((
        ModelInfo {
            name: name.to_string(),
            id: pointer.id,
        },
        model,
    ))
}
