//! Running the real `mlscaler` binary from integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A small, quick model for tests of what `train` reads: no seasons, four
/// lags, a 5-minute rolling window and lead time; JSON out, replacing any
/// model before it.
pub const TRAIN_SMALL: [&str; 12] = [
    "--seasons",
    "none",
    "--lags",
    "4",
    "--rolling",
    "5m",
    "--lead-time",
    "5m",
    "--output",
    "json",
    "--force",
    "-q",
];

/// `train --models m ARGS` with [`TRAIN_SMALL`] and `env`, which must
/// succeed: its JSON document.
pub fn train_small_json(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> serde_json::Value {
    let mut all = vec!["train", "--models", "m"];
    all.extend_from_slice(args);
    all.extend_from_slice(&TRAIN_SMALL);
    let r = mlscaler_env(dir, &all, env);
    assert_code(&r, 0);
    r.json()
}

/// Storage access for local files: none (and none from the environment).
pub fn no_storage() -> mlscaler::settings::data::StorageAccess {
    mlscaler::settings::data::StorageAccess {
        account: None,
        account_key: None,
        connection_string: None,
        container: None,
        prefix: None,
        auth: mlscaler::settings::data::StorageAuth::Anonymous,
    }
}

/// The bundled data folder of the repository.
pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(name)
}

/// The result of one run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The standard output parsed as JSON (for `--output json` runs).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Run `mlscaler ARGS` in `dir` with a clean environment for our variables.
pub fn mlscaler(dir: &Path, args: &[&str]) -> Run {
    mlscaler_env(dir, args, &[])
}

/// Like [`mlscaler`], with extra environment variables.
pub fn mlscaler_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mlscaler"));
    cmd.current_dir(dir).args(args);
    for k in [
        "MLSCALER_DATA",
        "MLSCALER_MODELS",
        "STORAGE_ACCT_NAME",
        "STORAGE_ACCT_KEY",
        "STORAGE_BLOB_NAME",
        "STORAGE_CONTAINER",
        "AZURE_STORAGE_CONNECTION_STRING",
        "RUST_LOG",
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_SUBSCRIPTION_ID",
        "AZURE_AUTHORITY_HOST",
        "AZURE_FEDERATED_TOKEN_FILE",
        "IDENTITY_ENDPOINT",
        "MSI_ENDPOINT",
        "TENANT_ID",
        "SP_APP_ID",
        "SP_APP_SECRET",
        "AKS_RG",
        "AKS_NAME",
        "AKS_POOL",
        "MLSCALER_TARGET",
        "MLSCALER_ARM_ENDPOINT",
        "MLSCALER_CA_CERT",
        "MLSCALER_AUTH",
    ] {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the mlscaler binary runs").into()
}

/// Assert a run ended with `code`, showing its output otherwise.
#[track_caller]
pub fn assert_code(r: &Run, code: i32) {
    assert_eq!(
        r.code, code,
        "exit code {} (wanted {code})\nstdout:\n{}\nstderr:\n{}",
        r.code, r.stdout, r.stderr
    );
}
