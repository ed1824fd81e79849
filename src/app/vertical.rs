//! `mlscaler scale --policy vertical`: move a VM scale set one VM size up or
//! down a ladder on memory pressure ([`crate::core::vertical`]), then roll
//! the instances onto the new size as its upgrade policy says.

use super::source::{self, DataSource};
use super::{exit, storage};
use crate::arm::{ArmClient, Blocking, InstanceAction, TargetId};
use crate::cli::ScaleArgs;
use crate::core::time::{parse_duration_secs, rfc3339};
use crate::core::vertical::{plan_vertical, VerticalDecision, VerticalParams};
use crate::core::vertsim::{builtin_memory_gib, ladder_memory};
use crate::store::artifact::Model;
use crate::store::registry::Registry;
use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// One run of the vertical policy, printed and appended to the decision log.
#[derive(Debug, Serialize)]
pub struct VerticalRecord {
    pub mlscaler_version: &'static str,
    pub now: String,
    pub target: String,
    pub dry_run: bool,
    /// "applied", "would_apply", "nothing_to_do", "held" or "failed".
    pub outcome: &'static str,
    pub metric: String,
    pub memory_now: f64,
    pub forecast_peak: Option<f64>,
    pub size_before: String,
    /// The memory of each ladder size (GiB), when given or in the built-in
    /// table; without it a move down is not checked against --memory-high.
    pub ladder_memory_gib: Option<Vec<f64>>,
    pub provisioning_state: String,
    pub upgrade_policy: String,
    pub decision: VerticalDecision,
    pub actions: Vec<String>,
    /// Why an ARM operation failed (outcome "failed"; `actions` lists what was done before).
    pub error: Option<String>,
}

/// Run the vertical policy once.
pub fn run(
    args: &ScaleArgs,
    clock: DateTime<Utc>,
    quiet: bool,
    client: impl FnOnce() -> Result<(ArmClient, Blocking)>,
) -> Result<(i32, VerticalRecord)> {
    let id = match args.target.as_deref().map(TargetId::parse) {
        Some(Ok(TargetId::Vmss(id))) => id,
        Some(Ok(TargetId::AgentPool(_))) => bail!(
            "an AKS node pool cannot change its VM size in place: create a new pool with the larger size, cordon and drain the old one's nodes, then delete it (scale the pool by count with --policy predictive or alarm)"
        ),
        Some(Err(e)) => return Err(e).context("--target"),
        None => bail!("--policy vertical needs --target with the ARM resource id of a VM scale set"),
    };
    if args.ladder.is_empty() {
        bail!("--policy vertical needs --ladder, the VM sizes from smallest to largest, e.g. Standard_D2s_v5,Standard_D4s_v5,Standard_D8s_v5");
    }
    let input = &args.input;
    let src = DataSource::resolve(input.data.as_deref(), &input.storage)?;
    // With a model, the data is read at the model's step.
    let model = match &args.model {
        Some(name) => Some((name, latest_forecaster(args, name)?.1)),
        None => None,
    };
    let opts = match &model {
        Some((_, m)) => read_options_for(args, m)?,
        None => source::read_options(input)?,
    };
    let (series, now) = super::scale::recent(args, &src, &opts, false, quiet, clock)?;
    let metric = source::choose_metric(
        input.metric.as_deref(),
        series.names(),
        crate::ingest::Format::Csv,
    )?;
    let memory = series.column(&metric).map_err(|_| {
        anyhow::anyhow!(
            "{}: no metric '{metric}' (the data has: {})",
            src.location,
            series.names().join(", ")
        )
    })?;
    let window_secs = parse_duration_secs(&args.memory_window).context("--memory-window")?;
    // The memory of each size, when given or known: guards moves down.
    let memory_gib = if !args.ladder_memory.is_empty()
        || args.ladder.iter().all(|s| builtin_memory_gib(s).is_some())
    {
        Some(ladder_memory(&args.ladder, &args.ladder_memory).context("--ladder-memory")?)
    } else {
        None
    };
    let params = VerticalParams {
        ladder: args.ladder.clone(),
        high: args.memory_high,
        low: args.memory_low,
        window: series.step().steps_ceil(window_secs),
        memory_gib: memory_gib.clone(),
    }
    .check()
    .context("vertical settings")?;
    // A forecast of the memory metric, when a model is named.
    let forecast_peak = match &model {
        None => None,
        Some((name, m)) => {
            let f = m
                .forecast(&series)
                .with_context(|| format!("forecasting {metric} with model '{name}'"))?;
            Some(f.points.iter().copied().fold(f64::NEG_INFINITY, f64::max))
        }
    };
    let (client, rt) = client()?;
    let vmss = rt
        .block_on(client.get_vmss(&id))
        .with_context(|| format!("reading {id}"))?;
    let size = vmss
        .sku
        .as_ref()
        .and_then(|s| s.name.clone())
        .unwrap_or_default();
    let state = vmss.provisioning_state().unwrap_or("Unknown").to_string();
    let upgrade = vmss
        .properties
        .as_ref()
        .and_then(|p| p.extra.get("upgradePolicy"))
        .and_then(|u| u.get("mode"))
        .and_then(|m| m.as_str())
        .unwrap_or("Manual")
        .to_string();
    let idle = state.eq_ignore_ascii_case("succeeded");
    let decision = plan_vertical(&params, &size, memory, forecast_peak, idle);
    let mut actions = Vec::new();
    let mut error = None;
    let outcome = match (&decision, args.dry_run) {
        (VerticalDecision::Hold { .. }, _) if !idle => "held",
        (VerticalDecision::Hold { .. }, _) => "nothing_to_do",
        (VerticalDecision::Resize { .. }, true) => "would_apply",
        (VerticalDecision::Resize { to, .. }, false) => {
            // The size first, then (Manual policy) the instances: when the
            // upgrade fails the new size stays set, recorded with the error.
            match resize(&client, &rt, &id, &vmss, &size, to, &upgrade, &mut actions) {
                Ok(()) => "applied",
                Err(e) => {
                    error = Some(format!("{e:#}"));
                    "failed"
                }
            }
        }
    };
    let record = VerticalRecord {
        mlscaler_version: env!("CARGO_PKG_VERSION"),
        now: rfc3339(now),
        target: id.to_string(),
        dry_run: args.dry_run,
        outcome,
        metric,
        memory_now: *memory.last().expect("not empty"),
        forecast_peak,
        size_before: size,
        ladder_memory_gib: memory_gib,
        provisioning_state: state,
        upgrade_policy: upgrade,
        decision,
        actions,
        error,
    };
    super::scale::append_record(args, &record)?;
    let code = match outcome {
        "nothing_to_do" => exit::NOTHING_TO_DO,
        "held" => exit::HELD,
        "failed" => exit::FAILED,
        _ => exit::OK,
    };
    Ok((code, record))
}

/// Set the new size, then roll the instances onto it as the upgrade policy says.
#[allow(clippy::too_many_arguments)]
fn resize(
    client: &ArmClient,
    rt: &Blocking,
    id: &crate::arm::VmssId,
    vmss: &crate::arm::Vmss,
    size: &str,
    to: &str,
    upgrade: &str,
    actions: &mut Vec<String>,
) -> Result<()> {
    rt.block_on(client.set_vmss_sku(id, to, vmss.etag.as_deref()))
        .with_context(|| format!("setting the size of {id} to {to}"))?;
    actions.push(format!("sku.name {size} -> {to}"));
    if upgrade.eq_ignore_ascii_case("manual") {
        let ids: Vec<String> = rt
            .block_on(client.list_vmss_instances(id, false))?
            .into_iter()
            .filter_map(|vm| vm.instance_id)
            .collect();
        if !ids.is_empty() {
            rt.block_on(client.vmss_instance_action(id, InstanceAction::ManualUpgrade, &ids))
                .context("upgrading the instances to the new size")?;
            actions.push(format!(
                "upgraded instances {} to the new size (Manual upgrade policy)",
                ids.join(", ")
            ));
        }
    } else {
        actions.push(format!(
            "instances roll to the new size under the {upgrade} upgrade policy"
        ));
    }
    Ok(())
}

/// The latest version of the forecast model `name` in the model store of `args`.
pub(super) fn latest_forecaster(
    args: &ScaleArgs,
    name: &str,
) -> Result<(
    crate::store::card::ModelCard,
    crate::core::model::ForecastModel,
)> {
    let store = storage::open_models(&args.models, &args.input.storage)?;
    let (_, payload) = Registry::new(store.as_ref()).load_latest(name)?;
    let Model::Forecast(m) = payload.model else {
        bail!("model '{name}' is not a forecast model")
    };
    Ok((payload.card, m))
}

/// The read options of `args`, at the step of `model` (a different --step is an error).
pub(super) fn read_options_for(
    args: &ScaleArgs,
    model: &crate::core::model::ForecastModel,
) -> Result<source::ReadOptions> {
    let mut opts = source::read_options(&args.input)?;
    let step = model.spec.step();
    if let Some(s) = opts.step.filter(|s| *s != step) {
        bail!(
            "--step {s} differs from the model's step {step}; the data is read at the model's step"
        );
    }
    opts.step = Some(step);
    Ok(opts)
}

/// The record as text for people.
pub fn render_text(r: &VerticalRecord) -> String {
    let to = match &r.decision {
        VerticalDecision::Resize { to, .. } => to.clone(),
        VerticalDecision::Hold { size, .. } => size.clone(),
    };
    let mut out = format!(
        "{}{}: {} -> {} ({}); {} = {:.3}{}\n",
        if r.dry_run { "[dry run] " } else { "" },
        r.target,
        r.size_before,
        to,
        r.outcome.replace('_', " "),
        r.metric,
        r.memory_now,
        r.forecast_peak
            .map_or(String::new(), |f| format!(", forecast peak {f:.3}"))
    );
    for reason in r.decision.reasons() {
        out.push_str(&format!("  - {reason}\n"));
    }
    for a in &r.actions {
        out.push_str(&format!("applied: {a}\n"));
    }
    if let Some(e) = &r.error {
        out.push_str(&format!("failed: {e}\n"));
    }
    out
}
