//! The nightly job's pair: `tune` chooses a profile, `train
//! --publish-profile` publishes it with the model as one registry version,
//! and `scale` / `backtest --published-profile` run that pair exactly as
//! `--config profile.toml` with that model runs. A failed tune or a failed
//! or refused train leaves the last good pair. The real binary on the bundled
//! NYC taxi trace (where tune chooses the predictive policy, so that the
//! pair has a model to run), with a local registry and (with Azurite) a Blob
//! registry.

#[path = "support/azurite.rs"]
mod azurite;
#[path = "support/cli.rs"]
mod cli;

use cli::{assert_code, data, mlscaler, mlscaler_env};
use serde_json::Value;
use std::path::Path;

const TRACE: &str = "nab_nyc_taxi.csv";
/// Three moments of the trace's last weeks, planned one after the other.
const MOMENTS: [&str; 3] = [
    "2015-01-20T12:00:00Z",
    "2015-01-20T12:30:00Z",
    "2015-01-20T13:00:00Z",
];

fn trace() -> String {
    data(TRACE).to_str().unwrap().to_string()
}

/// `tune` on the trace as the nightly job runs it, writing `out` in `dir`.
fn tune(dir: &Path, out: &str, extra: &[&str]) -> cli::Run {
    let d = trace();
    let mut args = vec![
        "tune",
        "--data",
        &d,
        "--lead-time",
        "10m",
        "--round-lead-up",
        "--p999-nodes",
        "40",
        "--out",
        out,
        "-q",
    ];
    args.extend_from_slice(extra);
    mlscaler(dir, &args)
}

/// `train --publish-profile profile` into `models` (a folder or a URL); the
/// JSON result.
fn train(
    dir: &Path,
    models: &str,
    profile: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> cli::Run {
    let d = trace();
    let mut args = vec![
        "train",
        "--data",
        &d,
        "--lead-time",
        "10m",
        "--models",
        models,
        "--name",
        "taxi",
        "--publish-profile",
        profile,
        "--output",
        "json",
        "-q",
    ];
    args.extend_from_slice(extra);
    mlscaler_env(dir, &args, env)
}

/// `scale` on a simulated pool at each of [`MOMENTS`], one process each
/// joined by its state file `state`, with `how` choosing the profile; the
/// records without their durations.
fn scale(dir: &Path, models: &str, state: &str, how: &[&str], env: &[(&str, &str)]) -> Vec<Value> {
    let d = trace();
    MOMENTS
        .iter()
        .map(|now| {
            let mut args = vec![
                "scale",
                "--data",
                &d,
                "--models",
                models,
                "--model",
                "taxi",
                "--target",
                "sim",
                "--state",
                state,
                "--decisions",
                "decisions.jsonl",
                "--now",
                now,
                "--output",
                "json",
                "-q",
            ];
            args.extend_from_slice(how);
            let r = mlscaler_env(dir, &args, env);
            assert!(
                [0, 4, 5].contains(&r.code),
                "scale at {now}: exit {}\n{}\n{}",
                r.code,
                r.stdout,
                r.stderr
            );
            let mut record = r.json();
            record.as_object_mut().unwrap().remove("duration_secs");
            record
        })
        .collect()
}

/// `backtest` of the published model with `how` choosing the profile: the
/// report and the plan (CSV).
fn backtest(dir: &Path, models: &str, plan: &str, how: &[&str]) -> (Value, String) {
    let d = trace();
    let mut args = vec![
        "backtest",
        "--data",
        &d,
        "--model",
        "taxi",
        "--models",
        models,
        "--plan-out",
        plan,
        "--output",
        "json",
        "-q",
    ];
    args.extend_from_slice(how);
    let r = mlscaler(dir, &args);
    assert_code(&r, 0);
    let report = r.json()["report"].clone();
    (report, std::fs::read_to_string(dir.join(plan)).unwrap())
}

fn latest(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("m/taxi/latest.json")).unwrap()).unwrap()
}

/// Tune, then train with the profile into `m/`: the published version's id.
fn publish_pair(dir: &Path) -> String {
    assert_code(&tune(dir, "profile.toml", &[]), 0);
    let r = train(dir, "m", "profile.toml", &[], &[]);
    assert_code(&r, 0);
    let s = r.json();
    assert_eq!(s["status"], "published");
    s["card"]["id"].as_str().unwrap().to_string()
}

#[test]
fn train_publishes_model_and_profile_as_one_version_that_scale_and_backtest_run_as_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let id = publish_pair(dir);

    // One version: the pointer names the model and the profile of one id,
    // and the profile is the file tune wrote, byte for byte.
    let ptr = latest(dir);
    assert_eq!(ptr["id"], id.as_str());
    assert_eq!(ptr["artifact"], format!("taxi/{id}.mlsm"));
    assert_eq!(ptr["profile"], format!("taxi/{id}.profile.toml"));
    assert_eq!(
        std::fs::read(dir.join(format!("m/taxi/{id}.profile.toml"))).unwrap(),
        std::fs::read(dir.join("profile.toml")).unwrap()
    );

    // inspect shows the pair: the card and the profile as published.
    let r = mlscaler(
        dir,
        &["inspect", "taxi", "--models", "m", "--output", "json"],
    );
    assert_code(&r, 0);
    let shown = r.json();
    assert_eq!(shown["id"], id.as_str());
    assert_eq!(
        shown["published_profile"]["object"],
        format!("taxi/{id}.profile.toml")
    );
    assert_eq!(
        shown["published_profile"]["toml"],
        std::fs::read_to_string(dir.join("profile.toml")).unwrap()
    );
    let r = mlscaler(dir, &["inspect", "taxi", "--models", "m"]);
    assert!(
        r.stdout
            .contains(&format!("published profile (taxi/{id}.profile.toml"))
            && r.stdout.contains("  max-nodes = "),
        "{}",
        r.stdout
    );

    // scale decides as with --config profile.toml, with the model of that version.
    let published = scale(dir, "m", "s1.json", &["--published-profile"], &[]);
    let file = scale(dir, "m", "s2.json", &["--config", "profile.toml"], &[]);
    assert_eq!(published, file);
    assert_eq!(published[0]["model"]["id"], id.as_str());

    // backtest replays the same plan as with --config profile.toml ...
    let (report_p, plan_p) = backtest(dir, "m", "published.csv", &["--published-profile"]);
    let (report_f, plan_f) = backtest(dir, "m", "file.csv", &["--config", "profile.toml"]);
    assert_eq!(report_p, report_f);
    assert_eq!(plan_p, plan_f);
    // ... which is not what the defaults replay: the profile was applied.
    let (_, plan_d) = backtest(dir, "m", "defaults.csv", &["--round-lead-up"]);
    assert_ne!(plan_p, plan_d);

    // Explicit flags still win over the published profile.
    let capped = scale(
        dir,
        "m",
        "s3.json",
        &["--published-profile", "--max-nodes", "3"],
        &[],
    );
    for r in &capped {
        assert!(r["decision"]["nodes"].as_u64().unwrap() <= 3, "{r}");
    }
    assert!(published
        .iter()
        .any(|r| r["decision"]["nodes"].as_u64().unwrap() > 3));
}

#[test]
fn an_older_version_runs_with_its_own_profile_and_a_model_alone_has_none_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let first = publish_pair(dir);
    // A second pair whose profile caps the pool at 3 nodes.
    let capped = std::fs::read_to_string(dir.join("profile.toml"))
        .unwrap()
        .replace("max-nodes = 1000", "max-nodes = 3");
    std::fs::write(dir.join("capped.toml"), &capped).unwrap();
    // Fewer lags: another model, so another id even within the same second.
    let r = train(dir, "m", "capped.toml", &["--lags", "6", "--force"], &[]);
    assert_code(&r, 0);
    let second = r.json()["card"]["id"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    let newest = scale(dir, "m", "s1.json", &["--published-profile"], &[]);
    assert_eq!(newest[0]["model"]["id"], second.as_str());
    assert!(newest
        .iter()
        .all(|r| r["decision"]["nodes"].as_u64().unwrap() <= 3));
    // --model-version picks the older pair: its model and its profile.
    let older = scale(
        dir,
        "m",
        "s2.json",
        &["--published-profile", "--model-version", &first],
        &[],
    );
    let file = scale(
        dir,
        "m",
        "s3.json",
        &["--config", "profile.toml", "--model-version", &first],
        &[],
    );
    assert_eq!(older[0]["model"]["id"], first.as_str());
    assert_eq!(older, file);

    // A model published without a profile: --published-profile says so.
    let d = trace();
    let r = mlscaler(
        dir,
        &[
            "train",
            "--data",
            &d,
            "--lead-time",
            "10m",
            "--lags",
            "4",
            "--models",
            "m",
            "--name",
            "taxi",
            "--force",
            "-q",
        ],
    );
    assert_code(&r, 0);
    let r = mlscaler(
        dir,
        &[
            "scale",
            "--data",
            &d,
            "--models",
            "m",
            "--model",
            "taxi",
            "--target",
            "sim",
            "--now",
            MOMENTS[0],
            "--published-profile",
            "-q",
        ],
    );
    assert_code(&r, 1);
    assert!(
        r.stderr.contains("without a scaling profile") && r.stderr.contains("--publish-profile"),
        "{}",
        r.stderr
    );
    let r = mlscaler(dir, &["inspect", "taxi", "--models", "m"]);
    assert!(r.stdout.contains("published profile: none"), "{}", r.stdout);
}

#[test]
fn a_failed_tune_or_a_failed_or_refused_train_leaves_the_last_good_pair() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let id = publish_pair(dir);
    let good = std::fs::read(dir.join("m/taxi/latest.json")).unwrap();
    let before = scale(dir, "m", "s0.json", &["--published-profile"], &[]);
    let unchanged = |what: &str| {
        assert_eq!(
            std::fs::read(dir.join("m/taxi/latest.json")).unwrap(),
            good,
            "{what} moved the pointer"
        );
    };

    // tune fails (a tuning window shorter than the warm-up): it writes no
    // profile, so the train after it has none to publish and fails too.
    let r = tune(dir, "tonight.toml", &["--tune-fraction", "0.005"]);
    assert!(r.code != 0, "tune should fail: {}", r.stderr);
    assert!(!dir.join("tonight.toml").exists());
    let r = train(dir, "m", "tonight.toml", &[], &[]);
    assert_code(&r, 1);
    assert!(r.stderr.contains("tonight.toml"), "{}", r.stderr);
    unchanged("a train without its profile");

    // A profile that is not only a profile, a bad value, or one tuned for
    // another lead time: refused before training.
    let text = std::fs::read_to_string(dir.join("profile.toml")).unwrap();
    for (name, bad, says) in [
        (
            "where.toml",
            format!("{text}target = \"sim\"\n"),
            "not a setting of the scaling profile",
        ),
        (
            "value.toml",
            text.replace("quantile = 0.9", "quantile = 1.5"),
            "quantile",
        ),
        (
            "lead.toml",
            text.replace("lead-time = \"10m\"", "lead-time = \"30m\""),
            "lead time",
        ),
    ] {
        std::fs::write(dir.join(name), bad).unwrap();
        let r = train(dir, "m", name, &[], &[]);
        assert_code(&r, 1);
        assert!(
            r.stderr.contains(name) && r.stderr.contains(says),
            "{name}: {}",
            r.stderr
        );
        unchanged(name);
    }

    // The quality gate refuses tonight's model: neither it nor its profile is published.
    std::fs::write(
        dir.join("tonight.toml"),
        text.replace("max-nodes = 1000", "max-nodes = 3"),
    )
    .unwrap();
    let r = train(dir, "m", "tonight.toml", &["--gate-margin", "0.9"], &[]);
    assert_code(&r, 3);
    assert_eq!(r.json()["status"], "refused");
    unchanged("a refused train");

    // scale still runs the last good pair.
    let after = scale(dir, "m", "s1.json", &["--published-profile"], &[]);
    assert_eq!(after, before);
    assert_eq!(after[0]["model"]["id"], id.as_str());
}

#[test]
fn a_pair_published_to_blob_storage_is_run_from_there() {
    let Some(az) = azurite::Azurite::from_env() else {
        return;
    };
    let models_c = az.create_container("models");
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let cs = az.connection_string();
    let env = [("AZURE_STORAGE_CONNECTION_STRING", cs.as_str())];
    let models = az.url(&models_c, "registry/");

    assert_code(&tune(dir, "profile.toml", &[]), 0);
    let r = train(dir, &models, "profile.toml", &[], &env);
    assert_code(&r, 0);
    let s = r.json();
    let id = s["card"]["id"].as_str().unwrap();
    assert_eq!(s["published"]["profile"], format!("taxi/{id}.profile.toml"));
    let store = az.store(&models_c);
    use mlscaler::store::ObjectStore;
    let ptr: Value =
        serde_json::from_slice(&store.get("registry/taxi/latest.json").unwrap()).unwrap();
    assert_eq!(ptr["id"], id);
    assert_eq!(ptr["profile"], format!("taxi/{id}.profile.toml"));
    assert_eq!(
        store
            .get(&format!("registry/taxi/{id}.profile.toml"))
            .unwrap(),
        std::fs::read(dir.join("profile.toml")).unwrap()
    );

    // A refused run leaves the pair in Blob Storage as it was.
    let r = train(
        dir,
        &models,
        "profile.toml",
        &["--gate-margin", "0.9"],
        &env,
    );
    assert_code(&r, 3);
    let again: Value =
        serde_json::from_slice(&store.get("registry/taxi/latest.json").unwrap()).unwrap();
    assert_eq!(again, ptr);

    // scale reads the pair from the blob registry and decides as with the file.
    let published = scale(dir, &models, "s1.json", &["--published-profile"], &env);
    let file = scale(dir, &models, "s2.json", &["--config", "profile.toml"], &env);
    assert_eq!(published, file);
    assert_eq!(published[0]["model"]["id"], id);
}

#[test]
fn loop_mode_runs_the_newest_published_pair_from_the_round_after_it_lands() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let first = publish_pair(dir);
    let capped = std::fs::read_to_string(dir.join("profile.toml"))
        .unwrap()
        .replace("max-nodes = 1000", "max-nodes = 3");
    std::fs::write(dir.join("capped.toml"), &capped).unwrap();
    let d = trace();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mlscaler"))
        .current_dir(dir)
        .args([
            "scale",
            "--data",
            &d,
            "--models",
            "m",
            "--model",
            "taxi",
            "--target",
            "sim",
            "--state",
            "loop.json",
            "--decisions",
            "decisions.jsonl",
            "--published-profile",
            "--every",
            "3s",
            "--jitter",
            "0s",
            "--rounds",
            "4",
            "--output",
            "json",
            "-q",
        ])
        .env_remove("RUST_LOG")
        .env_remove("MLSCALER_MODELS")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let round1: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    // A newer pair lands while the loop runs (the next round is 3 s away).
    let r = train(dir, "m", "capped.toml", &["--lags", "6", "--force"], &[]);
    assert_code(&r, 0);
    let second = r.json()["card"]["id"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    let rest: Vec<Value> = lines
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(rest.len(), 3);
    assert_eq!(round1["model"]["id"], first.as_str(), "{round1}");
    // Every later round runs the new model with its own profile (the pool
    // capped at 3 nodes), as a new process would.
    for r in &rest {
        assert_eq!(r["model"]["id"], second.as_str(), "{r}");
        assert!(r["decision"]["nodes"].as_u64().unwrap() <= 3, "{r}");
    }
}
