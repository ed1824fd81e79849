//! `mlscaler train`: data -> series -> fit -> walk-forward evaluation ->
//! quality gate -> artifact + card in the registry.

use super::source::{self, DataSource};
use super::{exit, storage, ui};
use crate::cli::{ModelKind, TrainArgs};
use crate::core::features::{FeatureParams, Season};
use crate::core::gate::{self, GateMetric};
use crate::core::model::{self, ForecastParams, Trained};
use crate::core::regression;
use crate::core::time::{
    format_duration_secs, parse_duration_secs, rfc3339, Step, DAY_SECS, WEEK_SECS,
};
use crate::report::plot::{Band, Chart, Line};
use crate::report::table;
use crate::store::artifact::{ArtifactPayload, Model, FORMAT_VERSION};
use crate::store::card::{EvaluationCard, HorizonCard, ModelCard, NamedMetrics, SourceCard};
use crate::store::registry::{check_name, Published, Registry};
use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Instant;

/// What `train` did, for people (text) and pipelines (JSON).
#[derive(Debug, Serialize)]
pub struct TrainSummary {
    /// "published", "forced" (published although the gate failed) or "refused".
    pub status: &'static str,
    pub card: ModelCard,
    pub published: Option<Published>,
    /// Where the card of a refused model was kept.
    pub rejected_card: Option<String>,
    pub plot: Option<String>,
    /// Wall-clock seconds of each stage.
    pub seconds: BTreeMap<String, f64>,
}

/// Run `train`. Returns the exit code and the summary; an `Err` means nothing
/// was published.
pub fn run(args: &TrainArgs, now: DateTime<Utc>, quiet: bool) -> Result<(i32, TrainSummary)> {
    let mut seconds = BTreeMap::new();
    let t0 = Instant::now();
    let input = &args.input;
    let opts = source::read_options(input)?;
    let gate_metric: GateMetric = args.gate_metric.parse().map_err(anyhow::Error::msg)?;
    if !(0.0..1.0).contains(&args.gate_margin) {
        bail!(
            "--gate-margin should be in [0, 1), but is {}",
            args.gate_margin
        );
    }
    let calendar = source::read_calendar(input)?;
    // Open the registry before the long work, so a bad location fails fast.
    let models = storage::open_models(&args.models, &input.storage)?;

    let src = DataSource::resolve(input.data.as_deref(), &input.storage)?;
    if src.location == source::SAMPLE_NAME && !quiet {
        eprintln!(
            "note: no --data given: training on the bundled sample ({})",
            source::SAMPLE_NAME
        );
    }
    let loaded = source::load(&src, &opts)?;
    seconds.insert("ingest".into(), t0.elapsed().as_secs_f64());
    let series = &loaded.series;
    let step = series.step();
    let metric = source::choose_metric(
        input.metric.as_deref(),
        loaded.series.names(),
        loaded.format,
    )?;
    series.column(&metric).map_err(anyhow::Error::msg)?;
    let name = args.name.clone().unwrap_or_else(|| sanitize(&metric));
    check_name(&name)?;
    let mut source_card = SourceCard {
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
    if let Some(s) = &loaded.log_stats {
        source_card.log_counters = log_counters(s);
    }

    let t1 = Instant::now();
    let mut settings = BTreeMap::new();
    let (model, evaluation, verdict, features, horizon, lead, plot_svg, train_rows) = match args
        .kind
    {
        ModelKind::Forecast => {
            let lead_secs = parse_duration_secs(&args.lead_time).context("--lead-time")?;
            let lead = step.steps_ceil(lead_secs);
            let horizon = match &args.horizon {
                Some(h) => step.steps_ceil(parse_duration_secs(h).context("--horizon")?),
                None => lead,
            };
            let params = forecast_params(args, lead, horizon)?;
            let checked = params.check(step)?;
            for (k, v) in [
                ("lead_time", format_duration_secs(lead_secs)),
                ("ridge", args.ridge.to_string()),
                ("transform", args.transform.clone()),
                ("eval_fraction", args.eval_fraction.to_string()),
                ("folds", args.folds.to_string()),
                ("lags", args.lags.to_string()),
                ("seasons", args.seasons.join(",")),
                ("rolling", args.rolling.join(",")),
                ("gate_metric", gate_metric.to_string()),
                ("gate_margin", args.gate_margin.to_string()),
            ] {
                settings.insert(k.to_string(), v);
            }
            let pb = ui::progress_bar(quiet, 1, "fitting");
            let mut progress = |done: usize, total: usize| {
                pb.set_length(total as u64);
                pb.set_position(done as u64);
            };
            let trained = model::train_forecaster(
                &checked,
                series,
                &metric,
                calendar.as_ref(),
                &mut progress,
            )?;
            pb.finish_and_clear();
            let verdict = gate::judge_forecast(&trained.evaluation, gate_metric, args.gate_margin);
            let eval_card = forecast_eval_card(&trained);
            let svg = forecast_plot(&trained, &name, step, lead);
            let features = checked.spec().names();
            let rows = trained.train_rows;
            (
                Model::Forecast(trained.model),
                eval_card,
                verdict,
                features,
                horizon,
                lead,
                svg,
                rows,
            )
        }
        ModelKind::Regression => {
            if args.inputs.is_empty() {
                bail!("--kind regression needs --inputs (comma-separated metric names), e.g. --inputs admin_users,config_users,end_users");
            }
            let cols: Vec<&[f64]> = args
                .inputs
                .iter()
                .map(|i| series.column(i).map_err(anyhow::Error::msg))
                .collect::<Result<_>>()?;
            let target = series.column(&metric).map_err(anyhow::Error::msg)?;
            let test_fraction = args.eval_fraction;
            settings.insert("test_fraction".into(), test_fraction.to_string());
            settings.insert("gate_metric".into(), gate_metric.to_string());
            settings.insert("gate_margin".into(), args.gate_margin.to_string());
            let (m, ev) =
                regression::train_regression(&args.inputs, &cols, &metric, target, test_fraction)?;
            let verdict = gate::judge_regression(&ev, gate_metric, args.gate_margin);
            let svg = regression_plot(&m, series, &args.inputs, &metric, ev.train_rows, &name)?;
            let eval_card = EvaluationCard {
                from: rfc3339(series.time_at(ev.train_rows)),
                to: series_end(series),
                origins: ev.test_rows,
                folds: 1,
                per_horizon: vec![],
                regression: Some(ev.clone()),
            };
            let rows = series.len();
            (
                Model::Regression(m),
                eval_card,
                verdict,
                args.inputs.clone(),
                0,
                0,
                svg,
                rows,
            )
        }
    };
    seconds.insert("fit_and_evaluate".into(), t1.elapsed().as_secs_f64());
    settings.insert("train_rows".into(), train_rows.to_string());

    let model_bytes = postcard::to_stdvec(&model).context("encoding the model")?;
    let id = format!(
        "{}-{:08x}",
        now.format("%Y%m%dT%H%M%SZ"),
        crc32fast::hash(&model_bytes)
    );
    let forced = !verdict.passed && args.force;
    let card = ModelCard {
        name: name.clone(),
        id,
        kind: model.kind().to_string(),
        mlscaler_version: env!("CARGO_PKG_VERSION").to_string(),
        format_version: FORMAT_VERSION,
        created_at: now.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        source: source_card,
        window_from: rfc3339(series.start()),
        window_to: series_end(series),
        window_steps: series.len(),
        step: step.to_string(),
        target: metric.clone(),
        inputs: if args.kind == ModelKind::Regression {
            args.inputs.clone()
        } else {
            vec![]
        },
        horizon_steps: horizon,
        lead_steps: lead,
        features,
        settings,
        evaluation,
        gate: verdict.clone(),
        forced,
    };

    let registry = Registry::new(models.as_ref());
    let mut plot = None;
    if let Some(p) = &args.plot {
        std::fs::write(p, &plot_svg)
            .with_context(|| format!("{}: cannot write the plot", p.display()))?;
        plot = Some(p.display().to_string());
    }
    let t2 = Instant::now();
    let (status, code, published, rejected_card) = if verdict.passed || forced {
        if forced {
            eprintln!(
                "WARNING: --force: publishing '{}' although the quality gate failed: {}",
                name, verdict.reason
            );
        }
        let payload = ArtifactPayload {
            card: card.clone(),
            model,
        };
        let p = registry.publish(&payload, Some(plot_svg.as_bytes()))?;
        plot = plot.or_else(|| p.plot.clone().map(|n| format!("{}/{}", p.location, n)));
        (
            if forced { "forced" } else { "published" },
            exit::OK,
            Some(p),
            None,
        )
    } else {
        let r = registry.record_rejected(&card)?;
        ("refused", exit::GATE_REFUSED, None, Some(r))
    };
    seconds.insert("publish".into(), t2.elapsed().as_secs_f64());
    seconds.insert("total".into(), t0.elapsed().as_secs_f64());
    Ok((
        code,
        TrainSummary {
            status,
            card,
            published,
            rejected_card,
            plot,
            seconds,
        },
    ))
}

fn forecast_params(args: &TrainArgs, lead: usize, horizon: usize) -> Result<ForecastParams> {
    let mut seasons = Vec::new();
    for s in &args.seasons {
        match s.trim() {
            "day" | "daily" => seasons.push(Season {
                period_secs: DAY_SECS,
                fourier_order: 4,
                seasonal_lags: true,
            }),
            "week" | "weekly" => seasons.push(Season {
                period_secs: WEEK_SECS,
                fourier_order: 3,
                seasonal_lags: true,
            }),
            "none" | "" => {}
            other => bail!("--seasons: unknown season '{other}' (expected day, week or none)"),
        }
    }
    let rolling_secs = args
        .rolling
        .iter()
        .filter(|r| !r.trim().is_empty() && r.trim() != "none")
        .map(|r| parse_duration_secs(r).with_context(|| format!("--rolling {r}")))
        .collect::<Result<Vec<_>>>()?;
    Ok(ForecastParams {
        features: FeatureParams {
            lags: args.lags,
            seasons,
            rolling_secs,
            events: args.input.calendar.is_some(),
        },
        horizon,
        lead,
        ridge: args.ridge,
        eval_fraction: args.eval_fraction,
        folds: args.folds,
        transform: args.transform.parse().map_err(anyhow::Error::msg)?,
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

fn series_end(s: &crate::core::series::LoadSeries) -> String {
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
            })
            .collect(),
        regression: None,
    }
}

fn forecast_plot(t: &Trained, name: &str, step: Step, lead: usize) -> String {
    let tr = &t.trace;
    let title = format!(
        "{name}: actual vs forecast {} ahead (walk-forward)",
        format_duration_secs(step.secs() * lead as i64)
    );
    Chart {
        title: &title,
        y_label: name,
        times: &tr.times,
        lines: vec![
            Line {
                name: "actual",
                color: "#222222",
                values: &tr.actual,
                width: 1.0,
            },
            Line {
                name: "forecast",
                color: "#1f77b4",
                values: &tr.forecast,
                width: 1.0,
            },
        ],
        bands: vec![Band {
            name: "80% interval",
            color: "#1f77b4",
            lo: &tr.lo80,
            hi: &tr.hi80,
        }],
    }
    .to_svg()
}

fn regression_plot(
    m: &regression::RegressionModel,
    series: &crate::core::series::LoadSeries,
    inputs: &[String],
    target: &str,
    from: usize,
    name: &str,
) -> Result<String> {
    let cols: Vec<&[f64]> = inputs
        .iter()
        .map(|i| series.column(i).map_err(anyhow::Error::msg))
        .collect::<Result<_>>()?;
    let actual = series.column(target).map_err(anyhow::Error::msg)?;
    let times: Vec<i64> = (from..series.len()).map(|i| series.time_at(i)).collect();
    let mut pred = Vec::with_capacity(times.len());
    for i in from..series.len() {
        let x: Vec<f64> = cols.iter().map(|c| c[i]).collect();
        pred.push(m.predict(&x)?);
    }
    let title = format!("{name}: actual vs predicted {target} on the hold-out rows");
    Ok(Chart {
        title: &title,
        y_label: target,
        times: &times,
        lines: vec![
            Line {
                name: "actual",
                color: "#222222",
                values: &actual[from..],
                width: 1.0,
            },
            Line {
                name: "predicted",
                color: "#d62728",
                values: &pred,
                width: 1.0,
            },
        ],
        bands: vec![],
    }
    .to_svg())
}

/// The summary as text for people.
pub fn render_text(s: &TrainSummary) -> String {
    let c = &s.card;
    let mut out = String::new();
    out.push_str(&format!(
        "model {} ({}) of '{}' from {} ({} part{}, {})\n",
        c.name,
        c.kind,
        c.target,
        c.source.location,
        c.source.parts.len(),
        if c.source.parts.len() == 1 { "" } else { "s" },
        c.source.format
    ));
    out.push_str(&format!(
        "data: {} .. {}, {} steps of {}; {} observations, {} missing values, {} steps filled ({})\n",
        c.window_from, c.window_to, c.window_steps, c.step, c.source.observations, c.source.missing_values, c.source.filled_steps, c.source.gap_policy
    ));
    if !c.source.log_counters.is_empty() {
        let parts: Vec<String> = c
            .source
            .log_counters
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        out.push_str(&format!("log lines: {}\n", parts.join(" ")));
    }
    if let Some(r) = &c.evaluation.regression {
        out.push_str(&format!(
            "hold-out: last {} of {} rows; R^2 = {:.3}\n\n",
            r.test_rows,
            r.train_rows + r.test_rows,
            r.r2
        ));
        let rows = vec![
            vec![
                "predictor".into(),
                "MAE".into(),
                "RMSE".into(),
                "sMAPE%".into(),
            ],
            vec![
                "model".into(),
                f(r.model.mae),
                f(r.model.rmse),
                f2(r.model.smape),
            ],
            vec![
                "training_mean".into(),
                f(r.mean_baseline.mae),
                f(r.mean_baseline.rmse),
                f2(r.mean_baseline.smape),
            ],
        ];
        out.push_str(&table::render(&rows));
    } else {
        let e = &c.evaluation;
        out.push_str(&format!(
            "walk-forward: {} origins from {} to {}, {} refits; horizon {} steps, lead time {} steps\n\n",
            e.origins, e.from, e.to, e.folds, c.horizon_steps, c.lead_steps
        ));
        if let Some(hc) = e.per_horizon.get(c.lead_steps.saturating_sub(1)) {
            let mut rows = vec![vec![
                format!("at lead time (h={})", hc.horizon),
                "MAE".into(),
                "RMSE".into(),
                "sMAPE%".into(),
                "cover80".into(),
                "pinball".into(),
            ]];
            let mut push = |n: &str, m: &crate::core::metrics::Metrics| {
                rows.push(vec![
                    n.to_string(),
                    f(m.mae),
                    f(m.rmse),
                    f2(m.smape),
                    f2(m.coverage80),
                    f(m.pinball),
                ]);
            };
            push("model", &hc.model);
            for b in &hc.baselines {
                push(&b.name, &b.metrics);
            }
            out.push_str(&table::render(&rows));
        }
        let maes: Vec<String> = e.per_horizon.iter().map(|h| f(h.model.mae)).collect();
        out.push_str(&format!("\nmodel MAE by horizon: {}\n", maes.join(" ")));
    }
    let g = &c.gate;
    out.push_str(&format!(
        "\nquality gate: {} - {}\n",
        if g.passed { "PASSED" } else { "FAILED" },
        g.reason
    ));
    match (s.status, &s.published, &s.rejected_card) {
        (_, Some(p), _) => {
            out.push_str(&format!("{}: {}/{} (latest: {}/{})\n", s.status, p.location, p.artifact, p.location, p.pointer));
            out.push_str(&format!("card: {}/{}\n", p.location, p.card));
        }
        (_, None, Some(r)) => out.push_str(&format!(
            "not published: the previous model (if any) stays latest; card kept at {r}; use --force to publish anyway\n"
        )),
        _ => {}
    }
    if let Some(p) = &s.plot {
        out.push_str(&format!("plot: {p}\n"));
    }
    out
}

fn f(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

fn f2(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else {
        format!("{v:.2}")
    }
}
