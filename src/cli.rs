//! Command-line interface: raw arguments as parsed by clap. They are turned
//! into checked settings by the commands in [`crate::app`].

use crate::core::time::Duration;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Predictive node scaling for AKS agent pools and Azure VM Scale Sets.
#[derive(Debug, Parser)]
#[command(name = "mlscaler", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Print only errors (no progress, no summary table).
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
    /// Result format on standard output.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Log format on standard error.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// More log detail (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// A TOML file with settings for every command (flags > environment > file > defaults).
    #[arg(long, global = true, env = "MLSCALER_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Tables for people.
    Text,
    /// One JSON document, for pipelines.
    Json,
}

/// Log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// JSON lines.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fit a model on historical load, evaluate it against naive baselines and
    /// publish it if it passes the quality gate.
    Train(Box<TrainArgs>),
    /// Replay a load history through every scaling policy against a simulated
    /// node pool and compare node-hours and under-provisioning side by side.
    Backtest(Box<BacktestArgs>),
    /// Forecast the load over the node lead time, plan a node count under the
    /// safety policy and set it on an AKS agent pool or VM scale set.
    Scale(Box<ScaleArgs>),
    /// Choose the scaling policy and its parameters on a history: replay a grid
    /// of candidates on the first part, pick the cheapest that meets the
    /// objective (a reactive rule when nothing predictive beats it), write it
    /// as a profile for `scale --config` and `backtest --config`, and score it
    /// on the held-back rest.
    Tune(Box<TuneArgs>),
    /// Show the card of a published model (or of an artifact file).
    Inspect(InspectArgs),
    /// Check a config file and print the effective settings (secrets masked).
    Config(ConfigArgs),
    /// Print shell completions (bash, zsh, fish, powershell, elvish).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `mlscaler config`.
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub action: ConfigAction,
}

/// What `config` does.
#[derive(Debug, Clone, Subcommand)]
pub enum ConfigAction {
    /// Validate the config file (--config / MLSCALER_CONFIG) against every command
    /// and print each command's effective settings and where each comes from.
    Check,
    /// Print the least-privilege custom role for mlscaler's identity: exactly
    /// the ARM requests mlscaler sends (JSON for `az role definition create
    /// --role-definition @role.json`). Assign it on the targets' resource group.
    Role {
        /// Assignable scope(s): the resource group(s) of the targets
        /// (/subscriptions/<id>/resourceGroups/<name>), a subscription or a
        /// management group. Repeat for several.
        #[arg(
            long = "scope",
            value_name = "ID",
            required = true,
            value_parser = |s: &str| crate::arm::operations::check_scope(s).map(|()| s.to_string())
        )]
        scopes: Vec<String>,
    },
}

/// Where Blob Storage credentials come from (for --data and --models URLs).
#[derive(Debug, Clone, Args)]
pub struct StorageArgs {
    /// Storage account name (with --container, instead of a URL).
    #[arg(long, env = "STORAGE_ACCT_NAME", help_heading = "Blob Storage")]
    pub account: Option<String>,
    /// Storage account key (signs a short-lived SAS locally; never printed).
    #[arg(
        long,
        env = "STORAGE_ACCT_KEY",
        hide_env_values = true,
        help_heading = "Blob Storage"
    )]
    pub account_key: Option<String>,
    /// Storage connection string (never printed).
    #[arg(
        long,
        env = "AZURE_STORAGE_CONNECTION_STRING",
        hide_env_values = true,
        help_heading = "Blob Storage"
    )]
    pub connection_string: Option<String>,
    /// Container to read data from (with --account or --connection-string).
    #[arg(long, env = "STORAGE_CONTAINER", help_heading = "Blob Storage")]
    pub container: Option<String>,
    /// Blob name or prefix in --container: every blob under it is read in name order.
    #[arg(long, env = "STORAGE_BLOB_NAME", help_heading = "Blob Storage")]
    pub prefix: Option<String>,
    /// How to authenticate to Blob Storage when no key, SAS or connection string is given.
    #[arg(long, value_enum, default_value_t = StorageAuthArg::Auto, help_heading = "Blob Storage")]
    pub storage_auth: StorageAuthArg,
}

/// Entra ID credential choices for storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StorageAuthArg {
    /// Client secret if AZURE_CLIENT_SECRET (or SP_APP_SECRET) is set, else workload identity, managed identity, Azure CLI.
    Auto,
    /// Service principal with a client secret (AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET or TENANT_ID/SP_APP_ID/SP_APP_SECRET).
    ClientSecret,
    /// Kubernetes workload identity (AZURE_FEDERATED_TOKEN_FILE).
    WorkloadIdentity,
    /// Managed identity of the VM, container or pipeline agent.
    ManagedIdentity,
    /// The signed-in Azure CLI user.
    AzureCli,
    /// No credential (public containers, Azurite with a SAS in the URL).
    Anonymous,
}

/// The two kinds of model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModelKind {
    /// Forecast one metric over a horizon (direct multi-step ridge regression).
    Forecast,
    /// Predict one metric from others (e.g. latency from user counts).
    Regression,
}

/// Where the load history comes from and how to read it (shared by `train`
/// and `backtest`).
#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// The load history: a file, a folder (every data file in name order), or a
    /// Blob Storage URL of a blob or a prefix (optionally with a SAS query).
    /// Without it (and without --container), the bundled WorldCup98 sample is used.
    #[arg(long, env = "MLSCALER_DATA", help_heading = "Input")]
    pub data: Option<String>,
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Input format; by default from each file's extension (.csv, .parquet, .ndjson/.jsonl, .txt/.log = raw logs;
    /// Azure's PT1H.json / PT05M.json blobs = azure-monitor). azure-monitor: Diagnostic-settings metric archives
    /// (insights-metrics-pt1m) and Log Analytics data export (am-<table>), JSON lines in hourly partitions.
    #[arg(long, help_heading = "Input")]
    pub format: Option<String>,
    /// Name of the timestamp column ("auto": timestamp, time, period, date, datetime, day, or the first column).
    #[arg(long, default_value = "auto", help_heading = "Input")]
    pub time_column: String,
    /// Timestamp format: auto, unix, unix-ms, index (row i = i steps after 1970-01-01) or a strftime pattern.
    #[arg(long, default_value = "auto", help_heading = "Input")]
    pub time_format: String,
    /// The metric to forecast (or, for --kind regression, to predict). Default: the only metric column, or `sessions` for raw logs.
    #[arg(long, help_heading = "Input")]
    pub metric: Option<String>,
    /// Series step, e.g. 1m, 5m, 30m, 1d. Default: the data's own step (median spacing); 5m for raw logs.
    #[arg(long, help_heading = "Input")]
    pub step: Option<String>,
    /// How observations within one step are combined.
    #[arg(long, default_value = "mean", value_parser = ["mean", "sum", "max", "last"], help_heading = "Input")]
    pub agg: String,
    /// Gap policy: linear, previous, zero or error.
    #[arg(long, default_value = "linear", value_parser = ["linear", "previous", "zero", "error"], help_heading = "Input")]
    pub gaps: String,
    /// Longest gap that linear/previous may fill; longer gaps are an error.
    #[arg(long, default_value = "1h", help_heading = "Input")]
    pub max_gap: String,
    /// Calendar of special days/events (CSV: date[,name] or start,end[,name]).
    #[arg(long, help_heading = "Input")]
    pub calendar: Option<PathBuf>,

    /// Long tables: keep only rows whose COLUMN equals VALUE (ASCII case ignored), e.g.
    /// metricName=Percentage CPU, resourceId=/SUBSCRIPTIONS/.../VM1, InstanceName=_Total.
    /// Repeatable: one column given twice keeps either value; different columns must all match.
    #[arg(long, value_name = "COLUMN=VALUE", help_heading = "Long tables")]
    pub filter: Vec<String>,
    /// Long tables: a column whose values tell series apart (repeatable). Default for
    /// azure-monitor: metricName and resourceId (Perf: CounterName, Computer; InsightsMetrics:
    /// Name, Computer); otherwise none (every row one series).
    #[arg(long, value_name = "COLUMN", help_heading = "Long tables")]
    pub series_column: Vec<String>,
    /// Long tables: the numeric column (default for azure-monitor: average, CounterValue or Val).
    #[arg(long, value_name = "COLUMN", help_heading = "Long tables")]
    pub value_column: Option<String>,
    /// Azure Monitor metric archives: which aggregation of each minute to read.
    #[arg(long, value_enum, help_heading = "Long tables")]
    pub field: Option<MetricField>,
    /// Long tables: combine the series into one column per step: sum, mean, max, min or
    /// count (e.g. the sum of per-VM CPU). Without it, each series is its own column.
    #[arg(long, value_parser = ["sum", "mean", "max", "min", "count"], help_heading = "Long tables")]
    pub aggregate: Option<String>,
    /// Read only data at or after this time (RFC 3339); files and blobs in Azure's hourly
    /// partitions before it are not read at all. Default: all of it; scale: the recent
    /// window its decision needs (see the README's Data sources).
    #[arg(long, value_name = "TIME", help_heading = "Input")]
    pub since: Option<String>,
    /// Read only data at or before this time (RFC 3339). Default: all of it; scale: up to
    /// the step that holds now (or --now).
    #[arg(long, value_name = "TIME", help_heading = "Input")]
    pub until: Option<String>,
}

/// The aggregation fields of an Azure Monitor metric record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MetricField {
    Average,
    Total,
    Maximum,
    Minimum,
    Count,
}

impl MetricField {
    /// The record's field name.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricField::Average => "average",
            MetricField::Total => "total",
            MetricField::Maximum => "maximum",
            MetricField::Minimum => "minimum",
            MetricField::Count => "count",
        }
    }
}

/// A seasonal period of the forecaster's features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SeasonArg {
    Day,
    Week,
    /// No seasons.
    None,
}

/// The load transform before fitting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TransformArg {
    /// ln(1 + load): shapes that scale with the traffic level become additive.
    Log1p,
    /// The load as it is.
    None,
}

/// The metric the quality gate compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GateMetricArg {
    Mae,
    Rmse,
    Smape,
    Pinball,
}

/// `mlscaler train`.
#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub input: DataArgs,

    /// Model kind.
    #[arg(long, value_enum, default_value_t = ModelKind::Forecast, help_heading = "Model")]
    pub kind: ModelKind,
    /// Regression inputs (comma-separated metric names), for --kind regression.
    #[arg(long, value_delimiter = ',', help_heading = "Model")]
    pub inputs: Vec<String>,
    /// Node provisioning lead time: the horizon the quality gate judges.
    #[arg(long, default_value = "10m", help_heading = "Model")]
    pub lead_time: Duration,
    /// Forecast horizon (default: the lead time). Must be at least the lead time.
    #[arg(long, help_heading = "Model")]
    pub horizon: Option<Duration>,
    /// Number of lag features (the last N steps).
    #[arg(long, default_value_t = 12, help_heading = "Model")]
    pub lags: usize,
    /// Seasons for calendar terms and same-time-last-period features: day, week, or none.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "day,week",
        help_heading = "Model"
    )]
    pub seasons: Vec<SeasonArg>,
    /// Rolling-statistics windows (mean, std, max), comma-separated durations.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1h,1d",
        help_heading = "Model"
    )]
    pub rolling: Vec<Duration>,
    /// Transform of the load before fitting: log1p (fits ln(1+load): shapes
    /// that scale with the traffic level become additive) or none.
    #[arg(long, value_enum, default_value_t = TransformArg::Log1p, help_heading = "Model")]
    pub transform: TransformArg,
    /// Ridge penalty on standardised coefficients (0 = least squares).
    #[arg(long, default_value_t = 1e-4, help_heading = "Model")]
    pub ridge: f64,
    /// Share of the history used for walk-forward evaluation.
    #[arg(long, default_value_t = 0.2, help_heading = "Model")]
    pub eval_fraction: f64,
    /// Walk-forward folds (refits) over the evaluation window.
    #[arg(long, default_value_t = 5, help_heading = "Model")]
    pub folds: usize,

    /// Metric the quality gate compares.
    #[arg(long, value_enum, default_value_t = GateMetricArg::Mae, help_heading = "Quality gate")]
    pub gate_metric: GateMetricArg,
    /// Required improvement over the best baseline (0.02 = 2% better).
    #[arg(long, default_value_t = 0.02, help_heading = "Quality gate")]
    pub gate_margin: f64,
    /// Publish even if the gate fails (recorded in the model card).
    #[arg(long, help_heading = "Quality gate")]
    pub force: bool,

    /// Model registry: a folder or a Blob Storage container/prefix URL.
    #[arg(
        long,
        env = "MLSCALER_MODELS",
        default_value = "models",
        help_heading = "Output"
    )]
    pub models: String,
    /// Registry name of the model (default: the metric).
    #[arg(long, help_heading = "Output")]
    pub name: Option<String>,
    /// Publish this scaling profile (the TOML `tune --out` wrote) with the
    /// model, in the same registry version: `scale` and `backtest` read it
    /// with --published-profile. Checked before training; a refused or failed
    /// run publishes neither.
    #[arg(long, help_heading = "Output")]
    pub publish_profile: Option<PathBuf>,
    /// Also write the evaluation plot (SVG) to this file.
    #[arg(long, help_heading = "Output")]
    pub plot: Option<PathBuf>,
}

/// `mlscaler backtest`.
#[derive(Debug, Clone, Args)]
pub struct BacktestArgs {
    #[command(flatten)]
    pub input: DataArgs,

    /// What to simulate: `nodes`, a pool scaled by node count (--data is the load);
    /// `jobs`, a VM scale set scaled instance by instance for a job queue (--data is
    /// a job trace); `vertical`, a VM scale set moved along a ladder of VM sizes
    /// (--data is memory demand); `sla`, the SLA band of `scale --policy sla` on the
    /// prediction of a published regression model (--model; --data holds its inputs).
    #[arg(long, value_enum, default_value_t = BacktestMode::Nodes, help_heading = "Policies")]
    pub mode: BacktestMode,

    /// Policies to compare: all, or a comma-separated list. Nodes mode: predictive,
    /// reactive_threshold, target_tracking, seasonal_naive, oracle. Jobs mode:
    /// static_peak, jobs, jobs_forecast. Vertical mode: vertical, vertical_forecast,
    /// static_largest, oracle. SLA mode: sla_band.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "all",
        help_heading = "Policies"
    )]
    pub policy: Vec<String>,

    #[command(flatten)]
    pub profile: ProfileArgs,

    /// Predictive: history before the first model is trained (the reactive fallback runs until then).
    #[arg(long, default_value = "2d", help_heading = "Walk-forward")]
    pub warmup: Duration,
    /// Predictive: retrain the model this often, each time on data strictly before that point.
    #[arg(long, default_value = "1d", help_heading = "Walk-forward")]
    pub retrain_every: Duration,
    /// Predictive: train on only this much recent history (default: all of it).
    #[arg(long, help_heading = "Walk-forward")]
    pub train_window: Option<Duration>,
    /// Predictive (and vertical_forecast): replay this published model
    /// throughout (a name in --models) instead of retraining walk-forward:
    /// what `scale --model` runs.
    #[arg(long, help_heading = "Walk-forward")]
    pub model: Option<String>,
    /// The model registry for --model: a folder or a Blob Storage URL.
    #[arg(
        long,
        env = "MLSCALER_MODELS",
        default_value = "models",
        help_heading = "Walk-forward"
    )]
    pub models: String,
    /// With --model: replay this version of it (an id `train` printed)
    /// instead of the latest.
    #[arg(long, help_heading = "Walk-forward")]
    pub model_version: Option<String>,
    /// Use the scaling profile published with the model (`train
    /// --publish-profile`) of --model (else of the metric) in --models, under
    /// the flags, the environment and --config; with --model, replay the
    /// version it was published with.
    #[arg(long, help_heading = "Walk-forward")]
    pub published_profile: bool,
    /// Start the controller at this time (RFC 3339): the data before it is
    /// history only, and the simulated target starts there as `scale --target
    /// sim` starts, sized for the load, with an empty memory; scoring starts
    /// no earlier. Default: the first row.
    #[arg(long, help_heading = "Walk-forward")]
    pub start: Option<String>,

    /// Score from this fraction of the trace on (0.5: the second half).
    #[arg(long, default_value_t = 0.5, help_heading = "Output")]
    pub score_from: f64,
    /// Write the per-step plan as CSV. Nodes mode:
    /// timestamp,demand,forecast,target_nodes,ready_nodes,policy,change,waited; jobs mode: one row
    /// per decision (queued, running, headroom, target, instances by state, actions);
    /// vertical mode: timestamp,demand_gib,forecast_gib,size,memory_gib,utilisation,resized,policy;
    /// SLA mode: the nodes mode's columns (demand: the recorded value of the model's
    /// target, forecast: its prediction).
    #[arg(long, help_heading = "Output")]
    pub plan_out: Option<PathBuf>,
    /// The policy whose plan --plan-out writes ("all": every policy, one after
    /// the other). Default: the policy --policy names when it names one (as a
    /// profile written by `tune` does), else predictive (nodes mode), all (other modes).
    #[arg(long, help_heading = "Output")]
    pub plan_policy: Option<String>,
    /// Write the report as JSON to this file.
    #[arg(long, help_heading = "Output")]
    pub report: Option<PathBuf>,
    /// Write a plot (SVG) of demand, forecast and ready capacity per policy.
    #[arg(long, help_heading = "Output")]
    pub plot: Option<PathBuf>,

    #[command(flatten)]
    pub jobs: JobsBacktestArgs,
    #[command(flatten)]
    pub vertical: VerticalBacktestArgs,
}

/// What `backtest` simulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BacktestMode {
    Nodes,
    Jobs,
    Vertical,
    Sla,
}

/// `backtest --mode jobs`: a job trace replayed through a simulated scheduler
/// and scale set. --lead-time is the time a new instance takes to be ready.
#[derive(Debug, Clone, Args)]
pub struct JobsBacktestArgs {
    /// Time a deallocated instance takes to be ready again after a start.
    #[arg(long, default_value = "3m", help_heading = "Jobs mode")]
    pub start_lead_time: Duration,
    /// How often the controller runs (each run sees the queue and the nodes as they are).
    #[arg(long, default_value = "1m", help_heading = "Jobs mode")]
    pub decision_every: Duration,
    /// Nodes per job when the trace does not say (raw logs).
    #[arg(long, default_value_t = 1, help_heading = "Jobs mode")]
    pub nodes_per_job: u32,
}

/// `backtest --mode vertical`: memory demand replayed against a scale set that
/// moves along a ladder of VM sizes. --lead-time is the time a resize takes to roll out.
#[derive(Debug, Clone, Args)]
pub struct VerticalBacktestArgs {
    /// GiB of memory per unit of the metric (default: chosen so that the 99.9th
    /// percentile of demand fills --p999-fill of the largest size).
    #[arg(long, help_heading = "Vertical mode")]
    pub memory_per_unit: Option<f64>,
    /// Without --memory-per-unit: the share of the largest size that the 99.9th percentile of demand fills.
    #[arg(long, default_value_t = 0.7, help_heading = "Vertical mode")]
    pub p999_fill: f64,
}

/// `mlscaler tune`.
#[derive(Debug, Clone, Args)]
pub struct TuneArgs {
    #[command(flatten)]
    pub input: DataArgs,

    /// The profile the search starts from (every setting it does not vary).
    #[command(flatten)]
    pub profile: ProfileArgs,

    /// Share of the history the candidates are replayed on; the rest is held
    /// back to score the choice.
    #[arg(long, default_value_t = 0.5, help_heading = "Tune")]
    pub tune_fraction: f64,
    /// The objective: under-provisioned at most this share of the scored
    /// steps, in percent.
    #[arg(long, default_value_t = 0.5, help_heading = "Tune")]
    pub max_under_provisioned: f64,
    /// The objective: at most this many scale operations per hour. Default: as
    /// many as target tracking (the profile's) runs on the tuning window.
    #[arg(long, help_heading = "Tune")]
    pub max_operations_per_hour: Option<f64>,

    /// History before the first model is trained.
    #[arg(long, default_value = "2d", help_heading = "Walk-forward")]
    pub warmup: Duration,
    /// Retrain this often, each time on data strictly before that point.
    #[arg(long, default_value = "1d", help_heading = "Walk-forward")]
    pub retrain_every: Duration,
    /// Train on only this much recent history (default: all of it).
    #[arg(long, help_heading = "Walk-forward")]
    pub train_window: Option<Duration>,

    /// Write the chosen profile (TOML: the settings `scale --config` and
    /// `backtest --config` read) to this file.
    #[arg(long, default_value = "mlscaler-profile.toml", help_heading = "Output")]
    pub out: PathBuf,
    /// Write the report (every candidate, the choice, the held-back score) as JSON.
    #[arg(long, help_heading = "Output")]
    pub report: Option<PathBuf>,
    /// Write a plot (SVG) of every candidate's node-hours against its
    /// under-provisioning, with the choice marked.
    #[arg(long, help_heading = "Output")]
    pub plot: Option<PathBuf>,
}

/// What to do when an AKS pool has the cluster autoscaler on (AKS rejects a
/// manual count then).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnAutoscaler {
    /// Move the autoscaler's minCount to the planned count (never above maxCount),
    /// keeping the cluster autoscaler as the reactive backstop.
    AdjustMin,
    /// Change nothing and exit as held for safety.
    Refuse,
}

/// `mlscaler scale`.
#[derive(Debug, Clone, Args)]
pub struct ScaleArgs {
    /// The recent load the forecast starts from (same options as `train`; the
    /// step is the model's).
    #[command(flatten)]
    pub input: DataArgs,

    /// What to scale: the ARM resource id of an AKS agent pool
    /// (/subscriptions/../resourceGroups/../providers/Microsoft.ContainerService/managedClusters/../agentPools/..)
    /// or of a VM scale set (../providers/Microsoft.Compute/virtualMachineScaleSets/..), or
    /// `sim` / `sim:N` for a simulated pool of N nodes (nothing in Azure is touched).
    /// Without it: `sim`, sized for the current load.
    #[arg(long, env = "MLSCALER_TARGET", help_heading = "Target")]
    pub target: Option<String>,
    /// Subscription id, with the workshop's AKS_RG / AKS_NAME and --pool, instead of --target.
    #[arg(long, env = "AZURE_SUBSCRIPTION_ID", help_heading = "Target")]
    pub subscription: Option<String>,
    /// Resource group of the AKS cluster (workshop name AKS_RG).
    #[arg(long, env = "AKS_RG", help_heading = "Target")]
    pub aks_resource_group: Option<String>,
    /// Name of the AKS cluster (workshop name AKS_NAME).
    #[arg(long, env = "AKS_NAME", help_heading = "Target")]
    pub aks_name: Option<String>,
    /// Agent pool of the AKS cluster.
    #[arg(
        long,
        env = "AKS_POOL",
        default_value = "nodepool1",
        help_heading = "Target"
    )]
    pub pool: String,
    /// When the AKS pool has the cluster autoscaler on.
    #[arg(long, value_enum, default_value_t = OnAutoscaler::AdjustMin, help_heading = "Target")]
    pub on_autoscaler: OnAutoscaler,
    /// Entra ID credential for ARM: auto (client secret if AZURE_CLIENT_SECRET or
    /// SP_APP_SECRET is set, else an Azure Pipelines service connection,
    /// workload identity, managed identity, Azure CLI), or one of them by name.
    #[arg(
        long,
        env = "MLSCALER_AUTH",
        value_enum,
        default_value_t = ArmAuthArg::Auto,
        help_heading = "Azure"
    )]
    pub auth: ArmAuthArg,
    /// ARM endpoint (sovereign clouds, the local emulator). Default: https://management.azure.com.
    #[arg(long, env = "MLSCALER_ARM_ENDPOINT", help_heading = "Azure")]
    pub arm_endpoint: Option<String>,
    /// Entra ID authority host. Default: https://login.microsoftonline.com.
    #[arg(long, env = "AZURE_AUTHORITY_HOST", help_heading = "Azure")]
    pub authority_host: Option<String>,
    /// Trust only the root certificate(s) in this PEM file, e.g. a
    /// TLS-inspecting proxy's or the emulator's (the system's roots are not
    /// loaded; see --ca-cert-merge).
    #[arg(long, env = "MLSCALER_CA_CERT", help_heading = "Azure")]
    pub ca_cert: Option<PathBuf>,
    /// With --ca-cert: trust the system's root certificates as well (no effect without it).
    #[arg(long, env = "MLSCALER_CA_CERT_MERGE", help_heading = "Azure")]
    pub ca_cert_merge: bool,

    /// The scaling policy: predictive (a forecast model), alarm (M-of-N alarm
    /// rules, as cloud alarms do; no model), target-tracking (utilisation of the
    /// current load; no model), seasonal-naive (the same time one period ago),
    /// sla (the workshop's SLA band on a regression model's predicted latency),
    /// jobs (a VM scale set instance by instance for a job scheduler: --jobs,
    /// --nodes), vertical (a VM scale set up or down a ladder of VM sizes on
    /// memory pressure).
    #[arg(long, value_enum, default_value_t = PolicyName::Predictive, help_heading = "Policy")]
    pub policy: PolicyName,
    /// Model name in --models (default: the metric, as `train` names it).
    #[arg(long, help_heading = "Model")]
    pub model: Option<String>,
    /// Model registry: a folder or a Blob Storage URL.
    #[arg(
        long,
        env = "MLSCALER_MODELS",
        default_value = "models",
        help_heading = "Model"
    )]
    pub models: String,
    /// Load this version of the model (an id `train` printed) instead of the latest.
    #[arg(long, help_heading = "Model")]
    pub model_version: Option<String>,
    /// Use the scaling profile published with the model (`train
    /// --publish-profile`) in --models, under the flags, the environment and
    /// --config, and load the model version it was published with: the pair
    /// the last good nightly run published. Read once per run (not with --every).
    #[arg(long, help_heading = "Model")]
    pub published_profile: bool,

    #[command(flatten)]
    pub profile: ProfileArgs,

    /// Jobs policy: the scheduler's jobs (id, queue, nodes, status), a JSON array or
    /// NDJSON, as a file or blob URL.
    #[arg(long, help_heading = "Jobs policy")]
    pub jobs: Option<String>,
    /// Jobs policy: the scheduler's nodes (name, pool, status Free/Busy), a file or blob URL.
    #[arg(long, help_heading = "Jobs policy")]
    pub nodes: Option<String>,
    /// Vertical policy with --target sim: GiB of memory per unit of the metric,
    /// which is then the memory demand (as `backtest --mode vertical` reads
    /// it; default 1: the metric is in GiB).
    #[arg(long, help_heading = "Vertical policy")]
    pub memory_per_unit: Option<f64>,

    /// Plan and print, change nothing.
    #[arg(long, help_heading = "Run")]
    pub dry_run: bool,
    /// Planner memory between runs (last actions, recent recommendations): a JSON
    /// file, or a blob URL (e.g. for pipeline agents that keep nothing between runs).
    #[arg(
        long,
        env = "MLSCALER_STATE",
        default_value = "mlscaler-state.json",
        help_heading = "Run"
    )]
    pub state: PathBuf,
    /// Append one JSON line per run (inputs, forecast, every policy step, before/after,
    /// outcome) to this file, or to this blob (URL).
    #[arg(
        long,
        env = "MLSCALER_DECISIONS",
        default_value = "decisions.jsonl",
        help_heading = "Run"
    )]
    pub decisions: PathBuf,
    /// Keep running: reconcile every this long (e.g. 10m) until SIGTERM or
    /// SIGINT: the round in progress stops waiting, sends no further write and
    /// is recorded, then the loop ends.
    /// A failed round is logged and the next one runs as planned.
    #[arg(long, help_heading = "Run")]
    pub every: Option<Duration>,
    /// With --every: a random delay of up to this long before each round, so
    /// many controllers do not hit ARM at the same second.
    #[arg(long, default_value = "30s", help_heading = "Run")]
    pub jitter: Duration,
    /// With --every: stop after this many rounds (default: run until stopped).
    #[arg(long, help_heading = "Run")]
    pub rounds: Option<u64>,
    /// Write a plot (SVG) of the last six hours, the forecast band over the lead
    /// time and the capacity before and after the plan (predictive policy).
    #[arg(long, help_heading = "Run")]
    pub plot: Option<PathBuf>,
    /// Plan as of this time (RFC 3339, or `data-end` for the last step of the data)
    /// instead of the clock; for replays and demos.
    #[arg(long, help_heading = "Run")]
    pub now: Option<String>,
    /// The longest single wait on Azure (Retry-After of a 429 or busy 409, a
    /// retry's backoff, an operation's poll interval), whatever Azure asks
    /// for: e.g. 30s, 500ms.
    #[arg(long, default_value = "30s", help_heading = "Run")]
    pub max_wait: String,
    /// Every run (every round with --every) ends within this long: a wait or
    /// request that would go past it fails the run (outcome failed, class
    /// timeout). Keep it well under the schedule's period. `0` for none.
    #[arg(long, default_value = "5m", help_heading = "Run")]
    pub deadline: String,
    /// How long one request to Azure may take before it counts as lost.
    #[arg(long, default_value = "60s", help_heading = "Run")]
    pub request_timeout: String,
    /// Data stamped later than the clock by more than this means the clock or
    /// the timestamps are wrong: the run refuses to plan (outcome failed,
    /// class clock_skew). Rows ahead of the clock by less are used. Only for
    /// runs on the clock (not with --now).
    #[arg(long, default_value = "5m", help_heading = "Run")]
    pub max_clock_skew: String,
}

/// `mlscaler inspect`.
#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// An artifact file (.mlsm), or a model name in --models.
    pub model: String,
    /// Model registry: a folder or a Blob Storage URL.
    #[arg(long, env = "MLSCALER_MODELS", default_value = "models")]
    pub models: String,
    #[command(flatten)]
    pub storage: StorageArgs,
}

/// Entra ID credential choices for ARM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ArmAuthArg {
    /// Client secret if AZURE_CLIENT_SECRET (or SP_APP_SECRET) is set, else workload identity, managed identity, Azure CLI.
    Auto,
    /// Service principal with a client secret.
    ClientSecret,
    /// An Azure DevOps workload identity federation service connection
    /// (AzureCLI@2 with addSpnToEnvironment, SYSTEM_ACCESSTOKEN mapped).
    AzurePipelines,
    /// Kubernetes workload identity (AZURE_FEDERATED_TOKEN_FILE).
    WorkloadIdentity,
    /// Managed identity of the VM, container or pipeline agent.
    ManagedIdentity,
    /// The signed-in Azure CLI user.
    AzureCli,
}

/// The policy `scale` runs (and the profile names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyName {
    /// mlscaler's forecast-driven policy (a forecast model).
    Predictive,
    /// M-of-N alarm rules on utilisation or on the metric, fixed steps, one cooldown.
    #[value(alias = "reactive-threshold", alias = "reactive_threshold")]
    Alarm,
    /// Keep the utilisation of the current load at a target.
    #[value(alias = "target_tracking")]
    TargetTracking,
    /// The same time one period earlier, plus a margin.
    #[value(alias = "seasonal_naive", alias = "seasonal")]
    SeasonalNaive,
    /// The workshop's SLA band on a regression model's predicted latency.
    Sla,
    /// A VM scale set, instance by instance, for a job scheduler.
    Jobs,
    /// A VM scale set along a ladder of VM sizes on memory pressure.
    Vertical,
}

/// When the forecast cannot be trusted (missing, stale, drifted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FallbackArg {
    /// Size on the current load at --fallback-utilisation, never scale in.
    Reactive,
    /// The --alarm-* rule decides.
    Alarm,
}

/// What the alarm thresholds compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AlarmOnArg {
    /// Utilisation: metric / (ready nodes x --capacity-per-node).
    Utilisation,
    /// The metric itself (a published load metric such as queue length per node).
    Metric,
}

/// Everything that shapes a scaling decision, shared by `scale` and
/// `backtest` (and written by `tune`): one set of flags, TOML keys and
/// defaults. The defaults are those of the checked profile
/// (`settings::profile`); the help text names them.
#[derive(Debug, Clone, Default, Args)]
pub struct ProfileArgs {
    /// Demand one node serves at 100% utilisation, in the metric's units per step.
    /// Required for a real target.
    #[arg(long, env = "MLSCALER_CAPACITY_PER_NODE", help_heading = "Pool")]
    pub capacity_per_node: Option<f64>,
    /// Without --capacity-per-node (simulated targets and backtests): the
    /// capacity at which the 99.9th percentile of the load needs this many nodes (default 40).
    #[arg(long, help_heading = "Pool")]
    pub p999_nodes: Option<u32>,
    /// Fewest nodes (default 1).
    #[arg(long, help_heading = "Pool")]
    pub min_nodes: Option<u32>,
    /// Most nodes, a budget cap (default 1000, Azure's limit per AKS pool or scale set).
    #[arg(long, help_heading = "Pool")]
    pub max_nodes: Option<u32>,
    /// Node provisioning lead time: a node requested now serves load this much
    /// later (default: the model's lead time; 10m without a model).
    #[arg(long, help_heading = "Pool")]
    pub lead_time: Option<Duration>,
    /// Accept a lead time shorter than the data's step, counting it as one step.
    #[arg(long, help_heading = "Pool")]
    pub round_lead_up: bool,
    /// How long a scale-out operation runs on the target (simulated targets
    /// and backtests; AKS pools and scale sets take one operation at a time,
    /// and a change asked while one runs waits; default 3m).
    #[arg(long, help_heading = "Pool")]
    pub scale_out_duration: Option<Duration>,
    /// How long a scale-in operation runs on the target (default 1m).
    #[arg(long, help_heading = "Pool")]
    pub scale_in_duration: Option<Duration>,

    /// Forecast quantile to size for (default 0.5, the median, with headroom from --target-utilisation).
    #[arg(long, help_heading = "Predictive policy")]
    pub quantile: Option<f64>,
    /// Utilisation to size the forecast for (default 0.83).
    #[arg(long, help_heading = "Predictive policy")]
    pub target_utilisation: Option<f64>,
    /// Scale in only after the recommendation stayed lower for this long (default 10m).
    #[arg(long, help_heading = "Predictive policy")]
    pub scale_in_window: Option<Duration>,
    /// No scale-out within this long of the last one (default 0s).
    #[arg(long, help_heading = "Predictive policy")]
    pub scale_out_cooldown: Option<Duration>,
    /// No scale-in within this long of the last scale-out (default 0s).
    #[arg(long, help_heading = "Predictive policy")]
    pub scale_in_cooldown: Option<Duration>,
    /// Add at most this many nodes per decision.
    #[arg(long, help_heading = "Predictive policy")]
    pub max_step_up: Option<u32>,
    /// Remove at most this many nodes per decision.
    #[arg(long, help_heading = "Predictive policy")]
    pub max_step_down: Option<u32>,
    /// Scale in only when it removes at least this share of the nodes (at
    /// least one; smaller drops are held, so the target runs fewer
    /// operations). Default 0: any drop.
    #[arg(long, help_heading = "Predictive policy")]
    pub min_scale_in: Option<f64>,
    /// Scale out by at least this share of the nodes (at least one). Default 0.
    #[arg(long, help_heading = "Predictive policy")]
    pub min_scale_out: Option<f64>,
    /// Turn off the calibration of the plan by recent forecast errors.
    #[arg(
        long,
        help_heading = "Predictive policy",
        conflicts_with_all = ["calibration_quantile", "calibration_window"]
    )]
    pub no_calibration: bool,
    /// Calibration: the share of recent peaks the calibrated plan covers (default 0.98).
    #[arg(long, help_heading = "Predictive policy")]
    pub calibration_quantile: Option<f64>,
    /// Calibration: how far back planned peaks are compared with what followed (default 14d).
    #[arg(long, help_heading = "Predictive policy")]
    pub calibration_window: Option<Duration>,
    /// Reactive floor: never plan below the highest load of this recent window
    /// (default 2m; 0s: the current step only).
    #[arg(long, help_heading = "Predictive policy")]
    pub floor_window: Option<Duration>,
    /// Reactive floor: the utilisation it sizes at (default 0.833).
    #[arg(long, help_heading = "Predictive policy")]
    pub floor_utilisation: Option<f64>,
    /// Reactive floor: extrapolate the rise of this recent window over the lead time (default 10m; 0s: off).
    #[arg(long, help_heading = "Predictive policy")]
    pub floor_trend: Option<Duration>,
    /// Reactive floor: how much of that rise to extrapolate (default 1.5).
    #[arg(long, help_heading = "Predictive policy")]
    pub floor_trend_gain: Option<f64>,
    /// Newest data older than this is stale: fall back, never scale in (default 15m).
    #[arg(long, help_heading = "Predictive policy")]
    pub max_data_age: Option<Duration>,
    /// Drift: when the recent lead-time error exceeds this multiple of the
    /// model's evaluated error, fall back (default 3).
    #[arg(long, help_heading = "Predictive policy")]
    pub max_error_ratio: Option<f64>,
    /// Drift: how far back the recent error is measured (default 1h; 0s: no drift check).
    #[arg(long, help_heading = "Predictive policy")]
    pub drift_window: Option<Duration>,
    /// When the forecast cannot be trusted (missing, stale, drifted).
    #[arg(long, value_enum, help_heading = "Predictive policy")]
    pub fallback: Option<FallbackArg>,
    /// The utilisation the reactive fallback sizes the current load at (default 0.7).
    #[arg(long, help_heading = "Predictive policy")]
    pub fallback_utilisation: Option<f64>,

    /// Alarm: what the thresholds compare (default utilisation).
    #[arg(long, value_enum, help_heading = "Alarm policy")]
    pub alarm_on: Option<AlarmOnArg>,
    /// Alarm: scale out when a datapoint is >= this (default 0.7) ...
    #[arg(long, alias = "threshold-out", help_heading = "Alarm policy")]
    pub alarm_out_at: Option<f64>,
    /// ... for M of the last N datapoints (default 2/2).
    #[arg(long, alias = "threshold-out-of", help_heading = "Alarm policy")]
    pub alarm_out_of: Option<String>,
    /// Alarm: scale in when a datapoint is <= this (default 0.2) ...
    #[arg(long, alias = "threshold-in", help_heading = "Alarm policy")]
    pub alarm_in_at: Option<f64>,
    /// ... for M of the last N datapoints (default 20/20).
    #[arg(long, alias = "threshold-in-of", help_heading = "Alarm policy")]
    pub alarm_in_of: Option<String>,
    /// Alarm: nodes added per scale-out, or a percentage of the current count (default 20%).
    #[arg(long, alias = "threshold-out-step", help_heading = "Alarm policy")]
    pub alarm_out_step: Option<String>,
    /// Alarm: nodes removed per scale-in, or a percentage (default 1).
    #[arg(long, alias = "threshold-in-step", help_heading = "Alarm policy")]
    pub alarm_in_step: Option<String>,
    /// Alarm: no action within this long of the last one (default 5m).
    #[arg(long, alias = "threshold-cooldown", help_heading = "Alarm policy")]
    pub alarm_cooldown: Option<Duration>,

    /// Target tracking: the utilisation kept (default 0.7).
    #[arg(long, help_heading = "Target tracking")]
    pub tracking_utilisation: Option<f64>,
    /// Target tracking: scale in only after the recommendation stayed lower for this long (default 10m).
    #[arg(long, help_heading = "Target tracking")]
    pub tracking_window: Option<Duration>,
    /// Seasonal naive: the period to repeat (default 1d).
    #[arg(long, help_heading = "Seasonal naive")]
    pub seasonal_period: Option<Duration>,
    /// Seasonal naive: margin on top of last period's load (default 0.2 = +20%).
    #[arg(long, help_heading = "Seasonal naive")]
    pub seasonal_margin: Option<f64>,

    /// SLA mode (a regression model, as the workshop's controller): the latency target.
    #[arg(long, help_heading = "SLA mode")]
    pub sla_target: Option<f64>,
    /// SLA mode: scale out above target + threshold, in below target - threshold (default 0).
    #[arg(long, help_heading = "SLA mode")]
    pub sla_threshold: Option<f64>,
    /// SLA mode: nodes added or removed per decision (default 1).
    #[arg(long, help_heading = "SLA mode")]
    pub sla_increment: Option<u32>,

    /// Jobs: the queue this scale set serves (default: the scale set's name; backtest: every job).
    #[arg(long, help_heading = "Jobs policy")]
    pub queue: Option<String>,
    /// Jobs: extra nodes on top of what the jobs need (default 0).
    #[arg(long, help_heading = "Jobs policy")]
    pub headroom: Option<u32>,
    /// Jobs: delete Free instances on scale-in instead of deallocating them.
    #[arg(long, help_heading = "Jobs policy")]
    pub scale_in_delete: bool,
    /// Jobs: the arrival rate of this recent window forecasts the arrivals over the lead time (default 1h).
    #[arg(long, help_heading = "Jobs policy")]
    pub arrival_window: Option<Duration>,

    /// Vertical: VM sizes from smallest to largest (comma-separated).
    #[arg(long, value_delimiter = ',', help_heading = "Vertical policy")]
    pub ladder: Vec<String>,
    /// Vertical: memory of each ladder size in GiB (comma-separated, in ladder
    /// order; default: the built-in table of common sizes). A move down is made
    /// only if the recent peak still fits under --memory-high on the smaller size.
    #[arg(long, value_delimiter = ',', help_heading = "Vertical policy")]
    pub ladder_memory: Vec<f64>,
    /// Vertical: one size up when memory utilisation reaches this (default 0.8).
    #[arg(long, help_heading = "Vertical policy")]
    pub memory_high: Option<f64>,
    /// Vertical: one size down when it stayed at or below this (default 0.4) ...
    #[arg(long, help_heading = "Vertical policy")]
    pub memory_low: Option<f64>,
    /// ... for this long (default 30m).
    #[arg(long, help_heading = "Vertical policy")]
    pub memory_window: Option<Duration>,
}
