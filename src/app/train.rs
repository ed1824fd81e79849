//! `mlscaler train`: data -> series -> fit -> walk-forward evaluation ->
//! quality gate -> artifact + card (+ the scaling profile given with
//! `--publish-profile`) in the registry, as one version.

use super::source::{self, DataSource};
use super::{exit, storage, ui};
use crate::core::forecast::calendar::Calendar;
use crate::core::forecast::gate::{self, GateVerdict as Verdict};
use crate::core::forecast::model::{self, Trained};
use crate::core::forecast::regression;
use crate::core::forecast::series::LoadSeries;
use crate::core::time::rfc3339;
use crate::report;
use crate::report::train::TrainSummary;
use crate::settings::train::{ForecastSpec, ModelSpec, TrainSettings};
use crate::store::artifact::{ArtifactPayload, Model, FORMAT_VERSION};
use crate::store::card::{EvaluationCard, HorizonCard, ModelCard, NamedMetrics, SourceCard};
use crate::store::registry::{check_name, Registry};
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::time::Instant;

/// What fitting produced, for the card and the registry.
struct Fitted {
    model: Model,
    evaluation: EvaluationCard,
    verdict: Verdict,
    features: Vec<String>,
    horizon: usize,
    lead: usize,
    plot_svg: String,
    train_rows: usize,
    settings: BTreeMap<String, String>,
}

/// Run `train`. Returns the exit code and the summary; an `Err` means nothing
/// was published.
pub fn run(s: &TrainSettings, now: DateTime<Utc>, quiet: bool) -> Result<(i32, TrainSummary)> {
    let mut seconds = BTreeMap::new();
    let t0 = Instant::now();
    let calendar = source::read_calendar(s.data.calendar.as_deref())?;
    // Open the registry before the long work, so a bad location fails fast.
    let models = storage::open_models(&s.models, &s.data.storage)?;
    // So is a bad profile to publish: it would publish nothing.
    let profile = s
        .publish_profile
        .as_deref()
        .map(|p| read_profile(p, s))
        .transpose()?;
    let src = DataSource::resolve(s.data.location.as_deref(), &s.data.storage)?;
    if src.location == source::SAMPLE_NAME && !quiet {
        eprintln!(
            "note: no --data given: training on the bundled sample ({})",
            source::SAMPLE_NAME
        );
    }
    let loaded = source::load(&src, &s.data.read)?;
    seconds.insert("ingest".into(), t0.elapsed().as_secs_f64());
    tracing::info!(
        source = %src.location,
        steps = loaded.series.len(),
        columns = ?loaded.series.names(),
        seconds = t0.elapsed().as_secs_f64(),
        "read the history"
    );
    let series = &loaded.series;
    let metric = source::choose_metric(s.data.metric.as_deref(), series.names(), loaded.format)?;
    series.column(&metric).map_err(anyhow::Error::msg)?;
    let name = s.name.clone().unwrap_or_else(|| sanitize(&metric));
    check_name(&name)?;
    let source_card = source_card(&src, &loaded, s);

    let t1 = Instant::now();
    let mut fitted = match &s.model {
        ModelSpec::Forecast(spec) => {
            fit_forecast(s, spec, series, &metric, &name, calendar.as_ref(), quiet)?
        }
        ModelSpec::Regression { inputs } => fit_regression(s, inputs, series, &metric, &name)?,
    };
    seconds.insert("fit_and_evaluate".into(), t1.elapsed().as_secs_f64());
    tracing::info!(
        seconds = t1.elapsed().as_secs_f64(),
        "fitted and evaluated walk-forward"
    );
    fitted
        .settings
        .insert("gate_metric".into(), s.gate_metric.to_string());
    fitted
        .settings
        .insert("gate_margin".into(), s.gate_margin.to_string());
    fitted
        .settings
        .insert("train_rows".into(), fitted.train_rows.to_string());

    let model_bytes = postcard::to_stdvec(&fitted.model).context("encoding the model")?;
    let card = ModelCard {
        name: name.clone(),
        id: format!(
            "{}-{:08x}",
            now.format("%Y%m%dT%H%M%SZ"),
            crc32fast::hash(&model_bytes)
        ),
        kind: fitted.model.kind().to_string(),
        mlscaler_version: env!("CARGO_PKG_VERSION").to_string(),
        format_version: FORMAT_VERSION,
        created_at: now.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        source: source_card,
        window_from: rfc3339(series.start()),
        window_to: series_end(series),
        window_steps: series.len(),
        step: series.step().to_string(),
        target: metric.clone(),
        inputs: match &s.model {
            ModelSpec::Regression { inputs } => inputs.clone(),
            ModelSpec::Forecast(_) => vec![],
        },
        horizon_steps: fitted.horizon,
        lead_steps: fitted.lead,
        features: std::mem::take(&mut fitted.features),
        settings: std::mem::take(&mut fitted.settings),
        evaluation: fitted.evaluation.clone(),
        gate: fitted.verdict.clone(),
        forced: !fitted.verdict.passed && s.force,
    };
    let t2 = Instant::now();
    let summary = publish(s, models.as_ref(), card, fitted, profile.as_deref())?;
    seconds.insert("publish".into(), t2.elapsed().as_secs_f64());
    seconds.insert("total".into(), t0.elapsed().as_secs_f64());
    let code = if summary.status == "refused" {
        exit::GATE_REFUSED
    } else {
        exit::OK
    };
    Ok((code, TrainSummary { seconds, ..summary }))
}

/// What the card says about the data.
fn source_card(src: &DataSource, loaded: &source::Loaded, s: &TrainSettings) -> SourceCard {
    let opts = &s.data.read;
    let step = loaded.series.step();
    let mut card = SourceCard {
        location: src.location.clone(),
        parts: src.part_names(),
        format: loaded.format.as_str().to_string(),
        observations: loaded.report.observations,
        missing_values: loaded.report.missing_values,
        filled_steps: loaded.report.filled_steps.iter().map(|f| f.1).sum(),
        longest_gap_steps: loaded.report.longest_gap_steps,
        aggregation: opts.agg.to_string(),
        gap_policy: format!(
            "{} (max {} steps)",
            opts.gaps.fill,
            step.steps_ceil(opts.max_gap_secs)
        ),
        log_counters: BTreeMap::new(),
    };
    if let Some(st) = &loaded.log_stats {
        card.log_counters = log_counters(st);
    }
    card
}

fn fit_forecast(
    s: &TrainSettings,
    spec: &ForecastSpec,
    series: &LoadSeries,
    metric: &str,
    name: &str,
    calendar: Option<&Calendar>,
    quiet: bool,
) -> Result<Fitted> {
    let step = series.step();
    let (lead, horizon) = spec.steps(step);
    let params = spec.params(step, s.eval_fraction, s.folds, s.data.calendar.is_some());
    let checked = params.check(step)?;
    let mut settings: BTreeMap<String, String> = spec
        .card_settings()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    settings.insert("eval_fraction".into(), s.eval_fraction.to_string());
    settings.insert("folds".into(), s.folds.to_string());
    let pb = ui::progress_bar(quiet, 1, "fitting");
    let mut progress = |done: usize, total: usize| {
        pb.set_length(total as u64);
        pb.set_position(done as u64);
    };
    let trained = model::train_forecaster(&checked, series, metric, calendar, &mut progress)?;
    pb.finish_and_clear();
    let verdict = gate::judge_forecast(&trained.evaluation, s.gate_metric, s.gate_margin);
    Ok(Fitted {
        evaluation: forecast_eval_card(&trained),
        plot_svg: report::train::forecast_plot(&trained, name, step, lead),
        features: checked.spec().names(),
        train_rows: trained.train_rows,
        model: Model::Forecast(trained.model),
        verdict,
        horizon,
        lead,
        settings,
    })
}

fn fit_regression(
    s: &TrainSettings,
    inputs: &[String],
    series: &LoadSeries,
    metric: &str,
    name: &str,
) -> Result<Fitted> {
    let cols: Vec<&[f64]> = inputs
        .iter()
        .map(|i| series.column(i).map_err(anyhow::Error::msg))
        .collect::<Result<_>>()?;
    let target = series.column(metric).map_err(anyhow::Error::msg)?;
    let test_fraction = s.eval_fraction;
    let (m, ev) = regression::train_regression(inputs, &cols, metric, target, test_fraction)?;
    let verdict = gate::judge_regression(&ev, s.gate_metric, s.gate_margin);
    let plot_svg = report::train::regression_plot(&m, series, inputs, metric, ev.train_rows, name)?;
    let evaluation = EvaluationCard {
        from: rfc3339(series.time_at(ev.train_rows)),
        to: series_end(series),
        origins: ev.test_rows,
        folds: 1,
        per_horizon: vec![],
        regression: Some(ev.clone()),
    };
    let settings = BTreeMap::from([("test_fraction".to_string(), test_fraction.to_string())]);
    Ok(Fitted {
        model: Model::Regression(m),
        evaluation,
        verdict,
        features: inputs.to_vec(),
        horizon: 0,
        lead: 0,
        plot_svg,
        train_rows: series.len(),
        settings,
    })
}

/// The scaling profile to publish with the model: checked as `scale` and
/// `backtest` read it, and tuned for the lead time the model is trained for.
fn read_profile(path: &std::path::Path, s: &TrainSettings) -> Result<Vec<u8>> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "{}: cannot read the profile to publish (--publish-profile)",
            path.display()
        )
    })?;
    let profile = crate::settings::file::scaling_profile(path, &text)?;
    if let (ModelSpec::Forecast(spec), Some(lead)) = (&s.model, profile.pool.lead_time) {
        if lead != spec.lead_time {
            anyhow::bail!(
                "{}: the profile was tuned for lead time {lead}, the model would be trained for --lead-time {}; train with the profile's lead time (e.g. --config {})",
                path.display(),
                spec.lead_time,
                path.display()
            );
        }
    }
    Ok(text.into_bytes())
}

/// Publish the model with the profile (or, refused by the gate, keep its
/// card under `rejected/` and publish neither), and write the plot where asked.
fn publish(
    s: &TrainSettings,
    models: &dyn crate::store::ObjectStore,
    card: ModelCard,
    fitted: Fitted,
    profile: Option<&[u8]>,
) -> Result<TrainSummary> {
    let registry = Registry::new(models);
    let mut plot = None;
    if let Some(p) = &s.plot {
        std::fs::write(p, &fitted.plot_svg)
            .with_context(|| format!("{}: cannot write the plot", p.display()))?;
        plot = Some(p.display().to_string());
    }
    let forced = card.forced;
    if !(fitted.verdict.passed || forced) {
        let r = registry.record_rejected(&card)?;
        return Ok(TrainSummary {
            status: "refused",
            card,
            published: None,
            rejected_card: Some(r),
            plot,
            seconds: BTreeMap::new(),
        });
    }
    if forced {
        eprintln!(
            "WARNING: --force: publishing '{}' although the quality gate failed: {}",
            card.name, fitted.verdict.reason
        );
    }
    let payload = ArtifactPayload {
        card: card.clone(),
        model: fitted.model,
    };
    let p = registry.publish(&payload, Some(fitted.plot_svg.as_bytes()), profile)?;
    plot = plot.or_else(|| p.plot.clone().map(|n| format!("{}/{}", p.location, n)));
    Ok(TrainSummary {
        status: if forced { "forced" } else { "published" },
        card,
        published: Some(p),
        rejected_card: None,
        plot,
        seconds: BTreeMap::new(),
    })
}

/// Registry names allow letters, digits, '-', '_' and '.'.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn series_end(s: &crate::core::forecast::series::LoadSeries) -> String {
    rfc3339(s.end())
}

fn log_counters(s: &crate::ingest::LogStats) -> BTreeMap<String, u64> {
    [
        ("lines", s.lines),
        ("bytes", s.bytes),
        ("sessions_started", s.sessions_started),
        ("jobs_started", s.jobs_started),
        ("completed", s.completed),
        ("unmatched_ends", s.unmatched_ends),
        ("duplicate_starts", s.duplicate_starts),
        ("unknown_lines", s.unknown_lines),
        ("open_at_end", s.open_at_end),
        ("out_of_order", s.out_of_order),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn forecast_eval_card(t: &Trained) -> EvaluationCard {
    let e = &t.evaluation;
    EvaluationCard {
        from: rfc3339(e.from),
        to: rfc3339(e.to),
        origins: e.origins,
        folds: e.folds,
        per_horizon: (0..e.model.len())
            .map(|i| HorizonCard {
                horizon: i + 1,
                model: e.model[i],
                baselines: e
                    .baselines
                    .iter()
                    .map(|b| NamedMetrics {
                        name: b.name.clone(),
                        metrics: b.per_horizon[i],
                    })
                    .collect(),
                coverage: e.coverage.get(i).cloned(),
                peak_coverage: e.peak_coverage.get(i).cloned(),
            })
            .collect(),
        regression: None,
    }
}
