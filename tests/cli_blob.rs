//! train, inspect and scale with the data and the model registry in Blob
//! Storage (the Azurite emulator started by scripts/test).

#[path = "support/azurite.rs"]
mod azurite;
#[path = "support/cli.rs"]
mod cli;

use cli::{assert_code, data, mlscaler, mlscaler_env};
use mlscaler::store::ObjectStore;

/// The WorldCup98 trace uploaded as one blob per part (header repeated), in name order.
fn upload_worldcup(az: &azurite::Azurite, container: &str, prefix: &str, parts: usize) {
    let text = std::fs::read_to_string(data("worldcup98_requests_per_minute.csv")).unwrap();
    let (header, body) = text.split_once('\n').unwrap();
    let rows: Vec<&str> = body.lines().collect();
    for (i, chunk) in rows.chunks(rows.len().div_ceil(parts)).enumerate() {
        let blob = format!("{header}\n{}\n", chunk.join("\n"));
        az.upload(
            container,
            &format!("{prefix}day-{i:03}.csv"),
            blob.as_bytes(),
        );
    }
}

#[test]
fn a_model_trained_from_blobs_is_published_to_blob_storage_and_read_back_from_there() {
    let Some(az) = azurite::Azurite::from_env() else {
        return;
    };
    let data_c = az.create_container("data");
    let models_c = az.create_container("models");
    upload_worldcup(&az, &data_c, "wc/", 5);
    // A decoy outside the prefix must not be read.
    az.upload(&data_c, "other/ignore.csv", b"not,a,trace\n");
    let dir = tempfile::tempdir().unwrap();
    let cs = az.connection_string();
    let env = [("AZURE_STORAGE_CONNECTION_STRING", cs.as_str())];
    let models = az.url(&models_c, "registry/");

    let r = mlscaler_env(
        dir.path(),
        &[
            "train",
            "--data",
            &az.url(&data_c, "wc/"),
            "--models",
            &models,
            "--output",
            "json",
        ],
        &env,
    );
    assert_code(&r, 0);
    let s = r.json();
    assert_eq!(s["status"], "published");
    let parts: Vec<&str> = s["card"]["source"]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(
        parts,
        [
            "wc/day-000.csv",
            "wc/day-001.csv",
            "wc/day-002.csv",
            "wc/day-003.csv",
            "wc/day-004.csv"
        ]
    );
    // Same data as the bundled file, so the same evaluation.
    let local = mlscaler(
        dir.path(),
        &["train", "--models", "local", "--output", "json"],
    );
    assert_eq!(
        s["card"]["evaluation"]["per_horizon"],
        local.json()["card"]["evaluation"]["per_horizon"]
    );
    // Nothing secret in what was printed or published.
    assert!(!r.stdout.contains(azurite::KEY) && !r.stderr.contains(azurite::KEY));

    // The registry in the container: artifact, card, plot, and the pointer.
    let names = az.store(&models_c).list("registry/count/").unwrap();
    assert!(
        names.iter().any(|n| n == "registry/count/latest.json"),
        "{names:?}"
    );
    assert!(names.iter().any(|n| n.ends_with(".mlsm")), "{names:?}");
    assert!(names.iter().any(|n| n.ends_with(".card.json")), "{names:?}");

    let i = mlscaler_env(dir.path(), &["inspect", "count", "--models", &models], &env);
    assert_code(&i, 0);
    assert!(i.stdout.contains("quality gate: PASSED"), "{}", i.stdout);

    // The controller reads the model from Blob too.
    let sc = mlscaler_env(
        dir.path(),
        &[
            "scale",
            "--data",
            &az.url(&data_c, "wc/"),
            "--models",
            &models,
            "--model",
            "count",
            "--target",
            "sim:12",
            "--capacity-per-node",
            "4000",
            "--now",
            "1998-06-30T18:40:00Z",
            "--dry-run",
            "--output",
            "json",
        ],
        &env,
    );
    assert_code(&sc, 0);
    assert!(
        sc.json()["model"]["location"]
            .as_str()
            .unwrap()
            .contains("registry/count/"),
        "{}",
        sc.stdout
    );
}

#[test]
fn the_workshop_storage_variables_and_a_read_only_sas_work() {
    let Some(az) = azurite::Azurite::from_env() else {
        return;
    };
    let c = az.create_container("workshop");
    upload_worldcup(&az, &c, "wc/", 2);
    let dir = tempfile::tempdir().unwrap();
    // STORAGE_ACCT_NAME / STORAGE_ACCT_KEY / STORAGE_BLOB_NAME as the workshop's release variables.
    let env = [
        ("STORAGE_ACCT_NAME", azurite::ACCOUNT),
        ("STORAGE_ACCT_KEY", azurite::KEY),
        ("STORAGE_BLOB_NAME", "wc/"),
    ];
    let r = mlscaler_env(
        dir.path(),
        &[
            "train",
            "--data",
            &az.url(&c, ""),
            "--models",
            "m",
            "--output",
            "json",
            "-v",
        ],
        &env,
    );
    assert_code(&r, 0);
    assert_eq!(
        r.json()["card"]["source"]["parts"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert!(
        !r.stdout.contains(azurite::KEY) && !r.stderr.contains(azurite::KEY),
        "the key was printed"
    );

    // A read-only SAS URL reads the data; the same SAS cannot publish a model.
    let sas = az.sas_url(&c, "wc/", "rl");
    let ok = mlscaler(
        dir.path(),
        &["train", "--data", &sas, "--models", "m2", "-q"],
    );
    assert_code(&ok, 0);
    // The URL's SAS comes first, whatever account the environment names
    // (the workshop's variables for another account, with its key and a
    // connection string).
    let other = [
        ("STORAGE_ACCT_NAME", "otheraccount"),
        ("STORAGE_ACCT_KEY", azurite::KEY),
        (
            "AZURE_STORAGE_CONNECTION_STRING",
            "DefaultEndpointsProtocol=https;AccountName=otheraccount;AccountKey=a2V5",
        ),
    ];
    let elsewhere = mlscaler_env(
        dir.path(),
        &["train", "--data", &sas, "--models", "m4", "-q"],
        &other,
    );
    assert_code(&elsewhere, 0);
    let denied = mlscaler(
        dir.path(),
        &[
            "train",
            "--data",
            &sas,
            "--models",
            &az.sas_url(&c, "models/", "rl"),
            "-q",
        ],
    );
    assert_code(&denied, 1);
    assert!(
        !denied.stderr.contains("sig="),
        "the SAS signature was printed: {}",
        denied.stderr
    );
    assert!(az
        .store(&c)
        .list("models/")
        .unwrap()
        .iter()
        .all(|n| !n.ends_with("latest.json")));

    // A wrong key fails with the service's reason and without the key.
    let bad = [
        ("STORAGE_ACCT_NAME", azurite::ACCOUNT),
        ("STORAGE_ACCT_KEY", "d3JvbmcK"),
        ("STORAGE_BLOB_NAME", "wc/"),
    ];
    let r = mlscaler_env(
        dir.path(),
        &["train", "--data", &az.url(&c, ""), "--models", "m3"],
        &bad,
    );
    assert_code(&r, 1);
    assert!(
        r.stderr.contains("403") || r.stderr.to_lowercase().contains("denied"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("d3JvbmcK"), "{}", r.stderr);
}

#[test]
fn the_planner_state_and_the_decision_log_can_live_in_blob_storage() {
    let Some(az) = azurite::Azurite::from_env() else {
        return;
    };
    let c = az.create_container("runs");
    let dir = tempfile::tempdir().unwrap();
    assert_code(
        &mlscaler(dir.path(), &["train", "--models", "models", "-q"]),
        0,
    );
    let cs = az.connection_string();
    let env = [("AZURE_STORAGE_CONNECTION_STRING", cs.as_str())];
    let state = az.url(&c, "web/state.json");
    let log = az.url(&c, "web/decisions.jsonl");
    let run = |now: &str| {
        mlscaler_env(
            dir.path(),
            &[
                "scale",
                "--target",
                "sim:10",
                "--capacity-per-node",
                "4000",
                "--scale-in-window",
                "2m",
                "--now",
                now,
                "--state",
                &state,
                "--decisions",
                &log,
                "--output",
                "json",
            ],
            &env,
        )
    };
    // As in the local test: the first run holds a scale-in for a whole window, the next one applies it.
    assert_code(&run("1998-07-20T04:00:00Z"), 4);
    assert_code(&run("1998-07-20T04:03:00Z"), 0);
    let store = az.store(&c);
    let text = String::from_utf8(store.get("web/decisions.jsonl").unwrap()).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    let memory: serde_json::Value =
        serde_json::from_slice(&store.get("web/state.json").unwrap()).unwrap();
    assert!(memory["last_scale_in"].is_number(), "{memory}");
    assert!(
        !dir.path().join("decisions.jsonl").exists()
            && !dir.path().join("mlscaler-state.json").exists()
    );
}

#[test]
fn a_job_trace_in_blob_storage_backtests_like_the_same_file() {
    let Some(az) = azurite::Azurite::from_env() else {
        return;
    };
    let c = az.create_container("jobs");
    let logs = std::fs::read(data("agilethought_logs.txt")).unwrap();
    az.upload(&c, "scheduler/logs.txt", &logs);
    let dir = tempfile::tempdir().unwrap();
    let cs = az.connection_string();
    let env = [("AZURE_STORAGE_CONNECTION_STRING", cs.as_str())];
    let run = |source: &str| {
        let r = mlscaler_env(
            dir.path(),
            &[
                "backtest", "--mode", "jobs", "--data", source, "--output", "json",
            ],
            &env,
        );
        assert_code(&r, 0);
        r.json()
    };
    let from_blob = run(&az.url(&c, "scheduler/logs.txt"));
    let from_file = run(data("agilethought_logs.txt").to_str().unwrap());
    assert_eq!(from_blob["jobs"], 6000);
    assert_eq!(from_blob["report"], from_file["report"]);
}
