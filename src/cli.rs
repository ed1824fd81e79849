//! Command-line interface: raw arguments as parsed by clap. They are turned
//! into checked settings by the commands in [`crate::app`].

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
    /// Input format; by default from each file's extension (.csv, .parquet, .ndjson/.jsonl, .txt/.log = raw logs).
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
    pub lead_time: String,
    /// Forecast horizon (default: the lead time). Must be at least the lead time.
    #[arg(long, help_heading = "Model")]
    pub horizon: Option<String>,
    /// Number of lag features (the last N steps).
    #[arg(long, default_value_t = 12, help_heading = "Model")]
    pub lags: usize,
    /// Seasons for calendar terms and same-time-last-period features: day, week, or none.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "day,week",
        help_heading = "Model"
    )]
    pub seasons: Vec<String>,
    /// Rolling-statistics windows (mean, std, max), comma-separated durations.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1h,1d",
        help_heading = "Model"
    )]
    pub rolling: Vec<String>,
    /// Transform of the load before fitting: log1p (fits ln(1+load): shapes
    /// that scale with the traffic level become additive) or none.
    #[arg(long, default_value = "log1p", value_parser = ["log1p", "none"], help_heading = "Model")]
    pub transform: String,
    /// Ridge penalty on standardised coefficients (0 = least squares).
    #[arg(long, default_value_t = 1e-4, help_heading = "Model")]
    pub ridge: f64,
    /// Share of the history used for walk-forward evaluation.
    #[arg(long, default_value_t = 0.2, help_heading = "Model")]
    pub eval_fraction: f64,
    /// Walk-forward folds (refits) over the evaluation window.
    #[arg(long, default_value_t = 5, help_heading = "Model")]
    pub folds: usize,

    /// Metric the quality gate compares: mae, rmse, smape, pinball.
    #[arg(long, default_value = "mae", help_heading = "Quality gate")]
    pub gate_metric: String,
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
    /// (--data is memory demand).
    #[arg(long, value_enum, default_value_t = BacktestMode::Nodes, help_heading = "Policies")]
    pub mode: BacktestMode,

    /// Policies to compare: all, or a comma-separated list. Nodes mode: predictive,
    /// reactive_threshold, target_tracking, seasonal_naive, oracle. Jobs mode:
    /// static_peak, jobs, jobs_forecast. Vertical mode: vertical, vertical_forecast,
    /// static_largest, oracle.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "all",
        help_heading = "Policies"
    )]
    pub policy: Vec<String>,

    /// Node provisioning lead time: a requested node is ready this long after the request.
    #[arg(long, default_value = "10m", help_heading = "Pool")]
    pub lead_time: String,
    /// Accept a lead time shorter than the data's step, counting it as one step.
    #[arg(long, help_heading = "Pool")]
    pub round_lead_up: bool,
    /// Demand one node serves at 100% utilisation, in the metric's units per step.
    #[arg(long, help_heading = "Pool")]
    pub capacity_per_node: Option<f64>,
    /// Without --capacity-per-node: choose the capacity so that the 99.9th
    /// percentile of demand needs this many nodes.
    #[arg(long, default_value_t = 40, help_heading = "Pool")]
    pub p999_nodes: u32,
    /// Fewest nodes.
    #[arg(long, default_value_t = 1, help_heading = "Pool")]
    pub min_nodes: u32,
    /// Most nodes.
    #[arg(long, default_value_t = 1000, help_heading = "Pool")]
    pub max_nodes: u32,

    /// Predictive: forecast quantile sized for (default 0.5, the median, with headroom from --target-utilisation).
    #[arg(long, help_heading = "Predictive policy")]
    pub quantile: Option<f64>,
    /// Predictive: utilisation to size the forecast for (default 0.83).
    #[arg(long, help_heading = "Predictive policy")]
    pub target_utilisation: Option<f64>,
    /// Predictive: scale in only when the recommendation stayed lower for this long (default 2m).
    #[arg(long, help_heading = "Predictive policy")]
    pub scale_in_window: Option<String>,
    /// Predictive: turn off the calibration of the plan by recent forecast errors.
    #[arg(long, help_heading = "Predictive policy")]
    pub no_calibration: bool,
    /// Predictive: history before the first model is trained (the reactive fallback runs until then).
    #[arg(long, default_value = "2d", help_heading = "Predictive policy")]
    pub warmup: String,
    /// Predictive: retrain the model this often, each time on data strictly before that point.
    #[arg(long, default_value = "1d", help_heading = "Predictive policy")]
    pub retrain_every: String,
    /// Predictive: train on only this much recent history (default: all of it).
    #[arg(long, help_heading = "Predictive policy")]
    pub train_window: Option<String>,

    /// Reactive threshold: scale out at this utilisation for 2 of 2 datapoints (default 0.7).
    #[arg(long, help_heading = "Baselines")]
    pub threshold_out: Option<f64>,
    /// Reactive threshold: scale in at this utilisation for 20 of 20 datapoints (default 0.2).
    #[arg(long, help_heading = "Baselines")]
    pub threshold_in: Option<f64>,
    /// Reactive threshold: cooldown after any action (default 300s).
    #[arg(long, help_heading = "Baselines")]
    pub threshold_cooldown: Option<String>,
    /// Reactive threshold (the alarm rule): breaching datapoints to scale out, as M/N (default 2/2).
    #[arg(long, help_heading = "Baselines")]
    pub threshold_out_of: Option<String>,
    /// Reactive threshold: breaching datapoints to scale in, as M/N (default 20/20).
    #[arg(long, help_heading = "Baselines")]
    pub threshold_in_of: Option<String>,
    /// Reactive threshold: nodes added per scale-out, or a percentage (default 20%).
    #[arg(long, help_heading = "Baselines")]
    pub threshold_out_step: Option<String>,
    /// Reactive threshold: nodes removed per scale-in, or a percentage (default 1).
    #[arg(long, help_heading = "Baselines")]
    pub threshold_in_step: Option<String>,
    /// Target tracking: target utilisation (default 0.7).
    #[arg(long, help_heading = "Baselines")]
    pub tracking_utilisation: Option<f64>,
    /// Target tracking: scale-in stabilisation window (default 10m).
    #[arg(long, help_heading = "Baselines")]
    pub tracking_window: Option<String>,
    /// Seasonal naive: the period to repeat (default 1d).
    #[arg(long, help_heading = "Baselines")]
    pub seasonal_period: Option<String>,
    /// Seasonal naive: margin on top of last period's demand (default 0.2 = +20%).
    #[arg(long, help_heading = "Baselines")]
    pub seasonal_margin: Option<f64>,

    /// Score from this fraction of the trace on (0.5: the second half).
    #[arg(long, default_value_t = 0.5, help_heading = "Output")]
    pub score_from: f64,
    /// Write the per-step plan as CSV. Nodes mode:
    /// timestamp,demand,forecast,target_nodes,ready_nodes,policy; jobs mode: one row
    /// per decision (queued, running, headroom, target, instances by state, actions);
    /// vertical mode: timestamp,demand_gib,forecast_gib,size,memory_gib,utilisation,resized,policy.
    #[arg(long, help_heading = "Output")]
    pub plan_out: Option<PathBuf>,
    /// The policy whose plan --plan-out writes ("all": every policy, one after the other).
    #[arg(long, default_value = "predictive", help_heading = "Output")]
    pub plan_policy: String,
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
}

/// `backtest --mode jobs`: a job trace replayed through a simulated scheduler
/// and scale set. --lead-time is the time a new instance takes to be ready.
#[derive(Debug, Clone, Args)]
pub struct JobsBacktestArgs {
    /// Time a deallocated instance takes to be ready again after a start.
    #[arg(long, default_value = "3m", help_heading = "Jobs mode")]
    pub start_lead_time: String,
    /// How often the controller runs (each run sees the queue and the nodes as they are).
    #[arg(long, default_value = "1m", help_heading = "Jobs mode")]
    pub decision_every: String,
    /// Only jobs of this queue (default: every job in the trace).
    #[arg(long, help_heading = "Jobs mode")]
    pub queue: Option<String>,
    /// Nodes per job when the trace does not say (raw logs).
    #[arg(long, default_value_t = 1, help_heading = "Jobs mode")]
    pub nodes_per_job: u32,
    /// Delete Free instances on scale-in instead of deallocating them.
    #[arg(long, help_heading = "Jobs mode")]
    pub scale_in_delete: bool,
    /// jobs_forecast: the arrival rate of the last this-long forecasts the arrivals over the lead time.
    #[arg(long, default_value = "1h", help_heading = "Jobs mode")]
    pub arrival_window: String,
}

/// `backtest --mode vertical`: memory demand replayed against a scale set that
/// moves along a ladder of VM sizes. --lead-time is the time a resize takes to roll out.
#[derive(Debug, Clone, Args)]
pub struct VerticalBacktestArgs {
    /// VM sizes from smallest to largest (comma-separated).
    #[arg(long, value_delimiter = ',', help_heading = "Vertical mode")]
    pub ladder: Vec<String>,
    /// Memory of each ladder size in GiB (comma-separated; default: from the
    /// built-in table of common sizes).
    #[arg(long, value_delimiter = ',', help_heading = "Vertical mode")]
    pub ladder_memory: Vec<f64>,
    /// One size up when memory utilisation (observed or forecast) reaches this.
    #[arg(long, default_value_t = 0.8, help_heading = "Vertical mode")]
    pub memory_high: f64,
    /// One size down when it stayed at or below this ...
    #[arg(long, default_value_t = 0.4, help_heading = "Vertical mode")]
    pub memory_low: f64,
    /// ... for this long.
    #[arg(long, default_value = "30m", help_heading = "Vertical mode")]
    pub memory_window: String,
    /// GiB of memory per unit of the metric (default: chosen so that the 99.9th
    /// percentile of demand fills --p999-fill of the largest size).
    #[arg(long, help_heading = "Vertical mode")]
    pub memory_per_unit: Option<f64>,
    /// Without --memory-per-unit: the share of the largest size that the 99.9th percentile of demand fills.
    #[arg(long, default_value_t = 0.7, help_heading = "Vertical mode")]
    pub p999_fill: f64,
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
    /// SP_APP_SECRET is set, else workload identity, managed identity, Azure CLI),
    /// client-secret, workload-identity, managed-identity or azure-cli.
    #[arg(
        long,
        env = "MLSCALER_AUTH",
        default_value = "auto",
        help_heading = "Azure"
    )]
    pub auth: String,
    /// ARM endpoint (sovereign clouds, the local emulator). Default: https://management.azure.com.
    #[arg(long, env = "MLSCALER_ARM_ENDPOINT", help_heading = "Azure")]
    pub arm_endpoint: Option<String>,
    /// Entra ID authority host. Default: https://login.microsoftonline.com.
    #[arg(long, env = "AZURE_AUTHORITY_HOST", help_heading = "Azure")]
    pub authority_host: Option<String>,
    /// An extra trusted root certificate (PEM), e.g. a TLS-inspecting proxy's or the emulator's.
    #[arg(long, env = "MLSCALER_CA_CERT", help_heading = "Azure")]
    pub ca_cert: Option<PathBuf>,

    /// The scaling policy: predictive (a forecast model; or the SLA mode with a
    /// regression model) or alarm (M-of-N alarm rules on the metric, as cloud
    /// alarms do; no model).
    /// `jobs` scales a VM scale set instance by instance for a job scheduler
    /// (--jobs, --nodes).
    /// `vertical` moves a VM scale set up or down a ladder of VM sizes on memory pressure.
    #[arg(long, default_value = "predictive", value_parser = ["predictive", "alarm", "jobs", "vertical"], help_heading = "Policy")]
    pub policy: String,
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

    /// Demand one node serves at 100% utilisation, in the metric's units per step.
    /// Required for a real target.
    #[arg(long, env = "MLSCALER_CAPACITY_PER_NODE", help_heading = "Policy")]
    pub capacity_per_node: Option<f64>,
    /// Simulated target without --capacity-per-node: the capacity at which the
    /// 99.9th percentile of the recent load needs this many nodes.
    #[arg(long, default_value_t = 40, help_heading = "Policy")]
    pub p999_nodes: u32,
    /// Fewest nodes.
    #[arg(long, default_value_t = 1, help_heading = "Policy")]
    pub min_nodes: u32,
    /// Most nodes (a budget cap).
    #[arg(long, default_value_t = 100, help_heading = "Policy")]
    pub max_nodes: u32,
    /// Node provisioning lead time (default: the model's lead time).
    #[arg(long, help_heading = "Policy")]
    pub lead_time: Option<String>,
    /// Forecast quantile to size for (default 0.5 with headroom from --target-utilisation).
    #[arg(long, help_heading = "Policy")]
    pub quantile: Option<f64>,
    /// Utilisation to size the forecast for (default 0.83).
    #[arg(long, help_heading = "Policy")]
    pub target_utilisation: Option<f64>,
    /// Scale in only after the recommendation stayed lower for this long (default 2m).
    #[arg(long, help_heading = "Policy")]
    pub scale_in_window: Option<String>,
    /// No scale-out within this long of the last one (default 0s).
    #[arg(long, help_heading = "Policy")]
    pub scale_out_cooldown: Option<String>,
    /// No scale-in within this long of the last scale-out (default 0s).
    #[arg(long, help_heading = "Policy")]
    pub scale_in_cooldown: Option<String>,
    /// Add at most this many nodes per run.
    #[arg(long, help_heading = "Policy")]
    pub max_step_up: Option<u32>,
    /// Remove at most this many nodes per run.
    #[arg(long, help_heading = "Policy")]
    pub max_step_down: Option<u32>,
    /// Newest data older than this is stale: fall back to the reactive rule, never scale in.
    #[arg(long, default_value = "15m", help_heading = "Policy")]
    pub max_data_age: String,
    /// Drift: when the recent lead-time error exceeds this multiple of the
    /// model's evaluated error, fall back to the reactive rule.
    #[arg(long, default_value_t = 3.0, help_heading = "Policy")]
    pub max_error_ratio: f64,
    /// Drift: how far back the recent error is measured.
    #[arg(long, default_value = "1h", help_heading = "Policy")]
    pub drift_window: String,
    /// Turn off the calibration of the plan by recent forecast errors.
    #[arg(long, help_heading = "Policy")]
    pub no_calibration: bool,
    /// When the forecast cannot be trusted (missing, stale, drifted): reactive
    /// (size on the current load, never scale in) or alarm (the --alarm-* rule decides).
    #[arg(long, default_value = "reactive", value_parser = ["reactive", "alarm"], help_heading = "Policy")]
    pub fallback: String,

    /// Alarm policy: what the thresholds compare: the metric itself (a published
    /// load metric such as queue length) or utilisation (metric / (nodes x --capacity-per-node)).
    #[arg(long, default_value = "metric", value_parser = ["metric", "utilisation"], help_heading = "Alarm policy")]
    pub alarm_on: String,
    /// Alarm policy: scale out when a datapoint is >= this ...
    #[arg(long, default_value_t = 2.0, help_heading = "Alarm policy")]
    pub alarm_out_at: f64,
    /// ... for M of the last N datapoints.
    #[arg(long, default_value = "2/2", help_heading = "Alarm policy")]
    pub alarm_out_of: String,
    /// Alarm policy: scale in when a datapoint is <= this ...
    #[arg(long, default_value_t = 0.5, help_heading = "Alarm policy")]
    pub alarm_in_at: f64,
    /// ... for M of the last N datapoints.
    #[arg(long, default_value = "20/20", help_heading = "Alarm policy")]
    pub alarm_in_of: String,
    /// Alarm policy: nodes added per scale-out (or a percentage of the current count, e.g. 20%).
    #[arg(long, default_value = "1", help_heading = "Alarm policy")]
    pub alarm_out_step: String,
    /// Alarm policy: nodes removed per scale-in (or a percentage).
    #[arg(long, default_value = "1", help_heading = "Alarm policy")]
    pub alarm_in_step: String,
    /// Alarm policy: no action within this long of the last one (kept across runs in --state).
    #[arg(long, default_value = "300s", help_heading = "Alarm policy")]
    pub alarm_cooldown: String,

    /// Jobs policy: the scheduler's jobs (id, queue, nodes, status), a JSON array or
    /// NDJSON, as a file or blob URL.
    #[arg(long, help_heading = "Jobs policy")]
    pub jobs: Option<String>,
    /// Jobs policy: the scheduler's nodes (name, pool, status Free/Busy), a file or blob URL.
    #[arg(long, help_heading = "Jobs policy")]
    pub nodes: Option<String>,
    /// Jobs policy: the queue this scale set serves (default: the scale set's name).
    #[arg(long, help_heading = "Jobs policy")]
    pub queue: Option<String>,
    /// Jobs policy: extra nodes on top of what the jobs need.
    #[arg(long, default_value_t = 0, help_heading = "Jobs policy")]
    pub headroom: u32,
    /// Jobs policy: delete Free instances on scale-in instead of deallocating them.
    #[arg(long, help_heading = "Jobs policy")]
    pub scale_in_delete: bool,

    /// Vertical policy: VM sizes from smallest to largest (comma-separated).
    #[arg(long, value_delimiter = ',', help_heading = "Vertical policy")]
    pub ladder: Vec<String>,
    /// Vertical policy: memory of each ladder size in GiB (comma-separated, in ladder
    /// order; default: the built-in table of common sizes). With it a move down is made
    /// only if the recent peak still fits under --memory-high on the smaller size.
    #[arg(long, value_delimiter = ',', help_heading = "Vertical policy")]
    pub ladder_memory: Vec<f64>,
    /// Vertical policy: one size up when memory utilisation (--metric) reaches this.
    #[arg(long, default_value_t = 0.8, help_heading = "Vertical policy")]
    pub memory_high: f64,
    /// Vertical policy: one size down when it stayed at or below this ...
    #[arg(long, default_value_t = 0.4, help_heading = "Vertical policy")]
    pub memory_low: f64,
    /// ... for this long.
    #[arg(long, default_value = "30m", help_heading = "Vertical policy")]
    pub memory_window: String,

    /// SLA mode (a regression model, as the workshop's controller): the latency target.
    #[arg(long, help_heading = "SLA mode")]
    pub sla_target: Option<f64>,
    /// SLA mode: scale out above target + threshold, in below target - threshold.
    #[arg(long, default_value_t = 0.0, help_heading = "SLA mode")]
    pub sla_threshold: f64,
    /// SLA mode: nodes added or removed per run.
    #[arg(long, default_value_t = 1, help_heading = "SLA mode")]
    pub sla_increment: u32,

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
    /// SIGINT, which stop it between rounds (never in the middle of a write).
    /// A failed round is logged and the next one runs as planned.
    #[arg(long, help_heading = "Run")]
    pub every: Option<String>,
    /// With --every: a random delay of up to this long before each round, so
    /// many controllers do not hit ARM at the same second.
    #[arg(long, default_value = "30s", help_heading = "Run")]
    pub jitter: String,
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
