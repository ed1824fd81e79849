//! The settings of `mlscaler scale`, checked: what to scale, with which
//! policy and profile, and how the run behaves.

use super::data::DataSettings;
use super::profile::ScalingProfile;
use super::{Result, SettingsError};
use crate::arm::{AutoscalerMode, TargetId};
use crate::azure::credential::AuthChoice;
use crate::cli::{ArmAuthArg, OnAutoscaler, PolicyName, ScaleArgs};
use crate::core::time::Duration;
use std::path::PathBuf;

/// What `scale` changes.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetSpec {
    /// No target and the bundled sample: the demo (a simulated pool sized for
    /// the current load, planned at a busy evening of the sample).
    Demo,
    /// A simulated pool: of `Some(n)` nodes, or sized for the current load.
    Sim(Option<u32>),
    /// An AKS agent pool or a VM scale set.
    Arm(TargetId),
}

impl TargetSpec {
    /// Whether this is a real Azure resource.
    pub fn is_arm(&self) -> bool {
        matches!(self, TargetSpec::Arm(_))
    }
}

/// The policy `scale` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// A forecast model (or, with a regression model, the SLA band).
    Predictive,
    Alarm,
    TargetTracking,
    SeasonalNaive,
    /// The SLA band on a regression model's prediction.
    Sla,
    Jobs,
    Vertical,
}

impl Policy {
    /// The name, as `--policy` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Predictive => "predictive",
            Policy::Alarm => "alarm",
            Policy::TargetTracking => "target-tracking",
            Policy::SeasonalNaive => "seasonal-naive",
            Policy::Sla => "sla",
            Policy::Jobs => "jobs",
            Policy::Vertical => "vertical",
        }
    }
}

/// How ARM is reached and with which identity.
#[derive(Debug, Clone, PartialEq)]
pub struct ArmAccess {
    pub auth: AuthChoice,
    /// `None`: the environment's (`MLSCALER_ARM_ENDPOINT`) or the public cloud.
    pub endpoint: Option<String>,
    pub authority_host: Option<String>,
    pub ca_cert: Option<PathBuf>,
    /// Trust the system's roots as well as `ca_cert`'s.
    pub ca_cert_merge: bool,
}

/// When the run plans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Now {
    /// The clock (or, for the demo, the demo moment).
    Clock,
    /// A given moment (epoch seconds): a replay.
    At(i64),
    /// The newest step of the data.
    DataEnd,
}

/// How the run behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSettings {
    pub dry_run: bool,
    /// The planner's memory: a file or a blob URL.
    pub state: String,
    /// The decision log: a file or a blob URL.
    pub decisions: String,
    /// Loop mode: reconcile this often.
    pub every: Option<Duration>,
    pub jitter: Duration,
    pub rounds: Option<u64>,
    pub plot: Option<PathBuf>,
    pub now: Now,
    /// The longest single wait on Azure, whatever it asks for.
    pub max_wait: std::time::Duration,
    /// Each run (each round) ends within this long; `None`: no deadline.
    pub deadline: Option<std::time::Duration>,
    /// How long one request to Azure may take.
    pub request_timeout: std::time::Duration,
    /// Data later than the clock by more than this is refused (clock skew).
    pub max_clock_skew: std::time::Duration,
}

/// Everything `scale` needs, checked.
#[derive(Debug, Clone)]
pub struct ScaleSettings {
    pub data: DataSettings,
    pub target: TargetSpec,
    pub on_autoscaler: AutoscalerMode,
    pub arm: ArmAccess,
    pub policy: Policy,
    /// Model name in the registry (default: the metric).
    pub model: Option<String>,
    pub models: String,
    /// The version of the model to load (`None`: the latest).
    pub model_version: Option<String>,
    pub profile: ScalingProfile,
    /// The jobs policy's scheduler documents (jobs, nodes).
    pub jobs_documents: Option<(String, String)>,
    /// The vertical policy on a simulated scale set: GiB per unit of the
    /// metric (the memory demand); `None` with any other policy or target.
    pub memory_per_unit: Option<f64>,
    pub run: RunSettings,
}

impl ScaleSettings {
    /// From the command line.
    pub fn from_args(a: &ScaleArgs) -> Result<ScaleSettings> {
        let data = DataSettings::from_args(&a.input)?;
        let target = target(a, data.is_sample())?;
        let policy = match a.policy {
            PolicyName::Predictive => Policy::Predictive,
            PolicyName::Alarm => Policy::Alarm,
            PolicyName::TargetTracking => Policy::TargetTracking,
            PolicyName::SeasonalNaive => Policy::SeasonalNaive,
            PolicyName::Sla => Policy::Sla,
            PolicyName::Jobs => Policy::Jobs,
            PolicyName::Vertical => Policy::Vertical,
        };
        let jobs_documents = match (&a.jobs, &a.nodes) {
            (Some(j), Some(n)) => Some((j.clone(), n.clone())),
            (None, None) => None,
            _ => {
                return Err(SettingsError::Combination(
                    "--jobs and --nodes go together: the scheduler's jobs and its nodes".into(),
                ))
            }
        };
        if policy == Policy::Jobs && jobs_documents.is_none() {
            return Err(SettingsError::Combination(
                "--policy jobs needs --jobs (the scheduler's jobs: JSON array or NDJSON) and --nodes (its nodes)".into(),
            ));
        }
        let memory_per_unit = match (policy, &target, a.memory_per_unit) {
            (Policy::Vertical, TargetSpec::Sim(None) | TargetSpec::Demo, m) => {
                let m = m.unwrap_or(1.0);
                if !(m > 0.0 && m.is_finite()) {
                    return Err(SettingsError::invalid(
                        "memory-per-unit",
                        m,
                        "should be a positive number of GiB",
                    ));
                }
                Some(m)
            }
            (Policy::Vertical, TargetSpec::Sim(Some(_)), _) => {
                return Err(SettingsError::Combination(
                    "--policy vertical on a simulated scale set takes --target sim (it starts at the ladder's size that fits the first demand it sees); sim:N sets a node count".into(),
                ))
            }
            (_, _, Some(_)) => {
                return Err(SettingsError::Combination(
                    "--memory-per-unit converts the memory demand of --policy vertical --target sim; a real scale set's metric is its measured memory utilisation".into(),
                ))
            }
            (_, _, None) => None,
        };
        let now = match a.now.as_deref().map(str::trim) {
            None => Now::Clock,
            Some("data-end") => Now::DataEnd,
            Some(t) => Now::At(crate::ingest::timestamp::parse_timestamp(t).ok_or_else(|| {
                SettingsError::invalid(
                    "now",
                    t,
                    "expected RFC 3339 (e.g. 2026-11-30T12:00:00Z) or data-end",
                )
            })?),
        };
        if let Some(e) = a.every {
            if e.secs() < 1 {
                return Err(SettingsError::invalid("every", e, "should be at least 1s"));
            }
            if now != Now::Clock {
                return Err(SettingsError::Combination(
                    "--now replays one moment; it cannot be combined with --every".into(),
                ));
            }
        }
        let model_version = a
            .model_version
            .as_deref()
            .map(str::trim)
            .map(|v| {
                crate::store::registry::check_version(v)
                    .map(|_| v.to_string())
                    .map_err(|e| SettingsError::invalid("model-version", v, e.to_string()))
            })
            .transpose()?;
        Ok(ScaleSettings {
            data,
            target,
            on_autoscaler: match a.on_autoscaler {
                OnAutoscaler::AdjustMin => AutoscalerMode::AdjustMinCount,
                OnAutoscaler::Refuse => AutoscalerMode::Refuse,
            },
            arm: ArmAccess {
                auth: match a.auth {
                    ArmAuthArg::Auto => AuthChoice::Auto,
                    ArmAuthArg::ClientSecret => AuthChoice::ClientSecret,
                    ArmAuthArg::AzurePipelines => AuthChoice::AzurePipelines,
                    ArmAuthArg::WorkloadIdentity => AuthChoice::WorkloadIdentity,
                    ArmAuthArg::ManagedIdentity => AuthChoice::ManagedIdentity,
                    ArmAuthArg::AzureCli => AuthChoice::AzureCli,
                },
                endpoint: a.arm_endpoint.clone(),
                authority_host: a.authority_host.clone(),
                ca_cert: a.ca_cert.clone(),
                ca_cert_merge: a.ca_cert_merge,
            },
            policy,
            model: a.model.clone(),
            models: a.models.clone(),
            model_version,
            profile: ScalingProfile::from_args(&a.profile)?,
            jobs_documents,
            memory_per_unit,
            run: RunSettings {
                dry_run: a.dry_run,
                state: a.state.display().to_string(),
                decisions: a.decisions.display().to_string(),
                every: a.every,
                jitter: a.jitter,
                rounds: a.rounds,
                plot: a.plot.clone(),
                now,
                max_wait: positive_wait("max-wait", &a.max_wait)?,
                deadline: match wait("deadline", &a.deadline)? {
                    d if d.is_zero() => None,
                    d => Some(d),
                },
                request_timeout: positive_wait("request-timeout", &a.request_timeout)?,
                max_clock_skew: wait("max-clock-skew", &a.max_clock_skew)?,
            },
        })
    }

    /// Whether this run is the demo.
    pub fn is_demo(&self) -> bool {
        self.target == TargetSpec::Demo
    }
}

/// Whether a `scale` command line is the demo (no target, the bundled
/// sample), decided as [`ScaleSettings::from_args`] decides it, before the
/// settings are built (the demo reads the profile published with its model).
pub fn is_demo_args(a: &ScaleArgs) -> bool {
    let sample = DataSettings::from_args(&a.input).is_ok_and(|d| d.is_sample());
    matches!(target(a, sample), Ok(TargetSpec::Demo))
}

/// A length of time as people write it, down to milliseconds: `250ms`,
/// `30s`, `5m`, `1h30m`, `0`.
fn wait(flag: &'static str, text: &str) -> Result<std::time::Duration> {
    let t = text.trim();
    if let Some(ms) = t.strip_suffix("ms") {
        return ms
            .trim()
            .parse::<u64>()
            .map(std::time::Duration::from_millis)
            .map_err(|_| SettingsError::invalid(flag, text, "expected e.g. 500ms, 30s, 5m"));
    }
    t.parse::<Duration>()
        .map(Duration::to_std)
        .map_err(|e| SettingsError::invalid(flag, text, e.to_string()))
}

/// As [`wait`], longer than zero.
fn positive_wait(flag: &'static str, text: &str) -> Result<std::time::Duration> {
    match wait(flag, text)? {
        d if d.is_zero() => Err(SettingsError::invalid(
            flag,
            text,
            "should be longer than 0s",
        )),
        d => Ok(d),
    }
}

/// The target as given: `--target`, or the workshop's release variables.
fn target(a: &ScaleArgs, sample: bool) -> Result<TargetSpec> {
    let given = a.target.as_deref().map(str::trim).filter(|t| !t.is_empty());
    let Some(t) = given else {
        // The workshop's release variables: subscription + AKS_RG + AKS_NAME (+ pool).
        return match (&a.subscription, &a.aks_resource_group, &a.aks_name) {
            (None, None, None) | (None, None, Some(_)) | (Some(_), None, None) => {
                Ok(if sample { TargetSpec::Demo } else { TargetSpec::Sim(None) })
            }
            (Some(sub), Some(rg), Some(name)) => {
                let id = format!(
                    "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerService/managedClusters/{name}/agentPools/{}",
                    a.pool
                );
                TargetId::parse(&id).map(TargetSpec::Arm).map_err(|e| {
                    SettingsError::Combination(format!(
                        "the AKS pool from AZURE_SUBSCRIPTION_ID, AKS_RG, AKS_NAME and --pool: {e}"
                    ))
                })
            }
            _ => Err(SettingsError::Combination(
                "an AKS target needs all of the subscription (--subscription / AZURE_SUBSCRIPTION_ID), AKS_RG and AKS_NAME, or --target with the pool's resource id".into(),
            )),
        };
    };
    if t == "sim" {
        return Ok(if sample {
            TargetSpec::Demo
        } else {
            TargetSpec::Sim(None)
        });
    }
    if let Some(n) = t.strip_prefix("sim:") {
        let n: u32 = n
            .parse()
            .map_err(|_| SettingsError::invalid("target", t, "expected sim:<nodes>"))?;
        return Ok(TargetSpec::Sim(Some(n)));
    }
    if t.starts_with("/subscriptions/") {
        return TargetId::parse(t)
            .map(TargetSpec::Arm)
            .map_err(|e| SettingsError::invalid("target", t, e.to_string()));
    }
    Err(SettingsError::invalid(
        "target",
        t,
        "expected an ARM resource id of an AKS agent pool or a VM scale set, or sim / sim:<nodes>",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration as Std;

    #[test]
    fn waits_read_milliseconds_and_the_usual_units() {
        assert_eq!(wait("max-wait", "250ms").unwrap(), Std::from_millis(250));
        assert_eq!(wait("max-wait", "30s").unwrap(), Std::from_secs(30));
        assert_eq!(wait("deadline", "5m").unwrap(), Std::from_secs(300));
        assert_eq!(wait("deadline", "0").unwrap(), Std::ZERO);
        let e = positive_wait("max-wait", "0s").unwrap_err().to_string();
        assert!(e.contains("--max-wait") && e.contains("0s"), "{e}");
        let e = wait("max-wait", "soon").unwrap_err().to_string();
        assert!(e.contains("--max-wait 'soon'"), "{e}");
        assert!(wait("max-wait", "xms").is_err());
    }
}
