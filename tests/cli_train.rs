//! `mlscaler train` end to end: the real binary on the bundled real data.

#[path = "support/cli.rs"]
mod cli;

use cli::{assert_code, data, mlscaler};
use std::path::Path;

fn mae(v: &serde_json::Value) -> f64 {
    v["mae"].as_f64().expect("mae is a number")
}

#[test]
fn the_bundled_worldcup_model_beats_every_baseline_at_a_ten_minute_horizon() {
    let dir = tempfile::tempdir().unwrap();
    let r = mlscaler(
        dir.path(),
        &[
            "train", "--output", "json", "--models", "m", "--plot", "eval.svg",
        ],
    );
    assert_code(&r, 0);
    let s = r.json();
    assert_eq!(s["status"], "published");
    let card = &s["card"];
    assert_eq!(card["step"], "1m");
    assert_eq!(card["lead_steps"], 10);
    let h10 = &card["evaluation"]["per_horizon"][9];
    assert_eq!(h10["horizon"], 10);
    let model = mae(&h10["model"]);
    let baselines = h10["baselines"].as_array().unwrap();
    assert_eq!(
        baselines.len(),
        3,
        "last value, same time yesterday, same time last week"
    );
    for b in baselines {
        assert!(
            model < mae(&b["metrics"]),
            "model MAE {model} vs {}: {}",
            b["name"],
            mae(&b["metrics"])
        );
    }
    // Published atomically with a pointer to it, and readable back.
    let latest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("m/count/latest.json")).unwrap())
            .unwrap();
    let artifact = latest["artifact"].as_str().unwrap();
    assert!(dir.path().join("m").join(artifact).is_file(), "{latest}");
    assert!(std::fs::read_to_string(dir.path().join("eval.svg"))
        .unwrap()
        .starts_with("<svg"));
    let i = mlscaler(dir.path(), &["inspect", "count", "--models", "m"]);
    assert_code(&i, 0);
    assert!(i.stdout.contains("quality gate: PASSED"), "{}", i.stdout);
}

#[test]
fn the_workshop_latency_regression_reaches_r2_of_0_9_on_a_chronological_split() {
    let dir = tempfile::tempdir().unwrap();
    let d = data("agilethought_log_data_daily.csv");
    let r = mlscaler(
        dir.path(),
        &[
            "train",
            "--data",
            d.to_str().unwrap(),
            "--time-format",
            "index",
            "--step",
            "1d",
            "--kind",
            "regression",
            "--metric",
            "avg_request_time_s",
            "--inputs",
            "admin_users,config_users,end_users",
            "--eval-fraction",
            "0.2",
            "--models",
            "m",
            "--output",
            "json",
        ],
    );
    assert_code(&r, 0);
    let reg = &r.json()["card"]["evaluation"]["regression"];
    let r2 = reg["r2"].as_f64().unwrap();
    assert!(r2 >= 0.9, "R^2 {r2}");
    // 80/20 chronological: the last fifth of the 365 days is held out.
    assert_eq!(reg["test_rows"], 73, "{reg}");
    assert_eq!(reg["train_rows"], 292, "{reg}");
}

#[test]
fn raw_logs_become_session_counts_and_every_line_is_accounted_for() {
    let dir = tempfile::tempdir().unwrap();
    let logs = std::fs::read_to_string(data("agilethought_logs.txt")).unwrap();
    // Two lines no parser knows, in the middle of the file.
    let mut lines: Vec<&str> = logs.lines().collect();
    lines.insert(100, "garbage without tabs");
    lines.insert(
        5000,
        "2019-06-15 03:00:00\tx\tINFO\tsomething else happened",
    );
    std::fs::write(dir.path().join("app.log"), lines.join("\n") + "\n").unwrap();
    let r = mlscaler(
        dir.path(),
        &[
            "train",
            "--data",
            "app.log",
            "--seasons",
            "none",
            "--rolling",
            "1h",
            "--lags",
            "6",
            "--models",
            "m",
            "--output",
            "json",
        ],
    );
    assert_code(&r, 0);
    let card = &r.json()["card"];
    assert_eq!(card["target"], "sessions");
    assert_eq!(card["step"], "5m");
    let c = &card["source"]["log_counters"];
    assert_eq!(c["lines"], 20_002, "{c}");
    assert_eq!(c["unknown_lines"], 2, "{c}");
    assert_eq!(c["sessions_started"], 4_000, "{c}");
    assert_eq!(c["jobs_started"], 6_000, "{c}");
    assert_eq!(c["unmatched_ends"], 0, "{c}");
    // People see the counts too.
    let t = mlscaler(
        dir.path(),
        &[
            "train",
            "--data",
            "app.log",
            "--seasons",
            "none",
            "--rolling",
            "1h",
            "--lags",
            "6",
            "--models",
            "m",
        ],
    );
    assert!(t.stdout.contains("unknown_lines=2"), "{}", t.stdout);
}

#[test]
fn a_folder_of_daily_files_is_read_in_name_order_like_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(data("worldcup98_requests_per_minute.csv")).unwrap();
    let (header, body) = text.split_once('\n').unwrap();
    let rows: Vec<&str> = body.lines().collect();
    std::fs::create_dir(dir.path().join("parts")).unwrap();
    for (i, chunk) in rows.chunks(rows.len() / 3 + 1).enumerate() {
        std::fs::write(
            dir.path().join(format!("parts/part-{i}.csv")),
            format!("{header}\n{}\n", chunk.join("\n")),
        )
        .unwrap();
    }
    let one = mlscaler(dir.path(), &["train", "--models", "a", "--output", "json"]);
    let parts = mlscaler(
        dir.path(),
        &[
            "train", "--data", "parts", "--models", "b", "--output", "json",
        ],
    );
    assert_code(&one, 0);
    assert_code(&parts, 0);
    let (a, b) = (one.json(), parts.json());
    assert_eq!(b["card"]["source"]["parts"].as_array().unwrap().len(), 3);
    assert_eq!(a["card"]["window_steps"], b["card"]["window_steps"]);
    assert_eq!(
        a["card"]["evaluation"]["per_horizon"],
        b["card"]["evaluation"]["per_horizon"]
    );
}

#[test]
fn ndjson_input_trains_the_same_model_as_csv() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(data("worldcup98_requests_per_minute.csv")).unwrap();
    let mut nd = String::new();
    for line in text.lines().skip(1) {
        let (t, v) = line.split_once(',').unwrap();
        nd.push_str(&format!("{{\"period\":\"{t}\",\"count\":{v}}}\n"));
    }
    std::fs::write(dir.path().join("wc.ndjson"), nd).unwrap();
    let csv = mlscaler(dir.path(), &["train", "--models", "a", "--output", "json"]);
    let json = mlscaler(
        dir.path(),
        &[
            "train",
            "--data",
            "wc.ndjson",
            "--models",
            "b",
            "--output",
            "json",
        ],
    );
    assert_code(&json, 0);
    assert_eq!(json.json()["card"]["source"]["format"], "ndjson");
    assert_eq!(
        csv.json()["card"]["evaluation"]["per_horizon"],
        json.json()["card"]["evaluation"]["per_horizon"]
    );
}

/// Bad input: (file contents, extra args, what the message must say).
const BAD: &[(&str, &str, &[&str], &[&str])] = &[
    ("bad_ts.csv", "timestamp,count\n1998-05-01 00:00:00,5\n1998-05-01 00:01:00,6\n1998-05-01 0x:02:00,7\n", &[], &["bad_ts.csv", "line 4", "cannot parse timestamp", "0x:02:00"]),
    ("unsorted.csv", "timestamp,count\n1998-05-01 00:00:00,5\n1998-05-01 00:02:00,6\n1998-05-01 00:01:00,7\n", &[], &["unsorted.csv", "line 4", "earlier than the previous row"]),
    ("dup.csv", "timestamp,count\n1998-05-01 00:00:00,5\n1998-05-01 00:01:00,6\n1998-05-01 00:01:00,7\n", &[], &["dup.csv", "line 4", "same as the previous row"]),
    ("neg.csv", "timestamp,count\n1998-05-01 00:00:00,5\n1998-05-01 00:01:00,-6\n1998-05-01 00:02:00,7\n", &[], &["neg.csv", "line 3", "'count'", "negative"]),
    ("empty.csv", "", &[], &["empty.csv"]),
    ("header_only.csv", "timestamp,count\n", &[], &["header_only.csv", "no data rows"]),
    ("short.csv", "timestamp,count\n1998-05-01 00:00:00,5\n1998-05-01 00:01:00,6\n1998-05-01 00:02:00,7\n1998-05-01 00:03:00,7\n", &[], &["too short", "need at least"]),
    ("misnamed.csv", "timestamp,count\n1998-05-01 00:00:00,5\n1998-05-01 00:01:00,6\n", &["--metric", "requests"], &["unknown metric 'requests'", "count"]),
    ("no_time.csv", "when,count\n1998-05-01 00:00:00,5\n", &["--time-column", "timestamp"], &["no_time.csv", "timestamp", "when"]),
];

#[test]
fn bad_input_fails_with_a_message_naming_the_file_row_or_column_and_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for (name, contents, extra, wanted) in BAD {
        std::fs::write(dir.path().join(name), contents).unwrap();
        let mut args = vec!["train", "--data", name, "--models", "m"];
        args.extend_from_slice(extra);
        let r = mlscaler(dir.path(), &args);
        assert_code(&r, 1);
        for w in *wanted {
            assert!(
                r.stderr.contains(w),
                "{name}: wanted '{w}' in: {}",
                r.stderr
            );
        }
        assert!(!r.stderr.contains("panicked"), "{name}: {}", r.stderr);
        assert!(
            !dir.path().join("m").join("count").exists(),
            "{name}: something was published"
        );
    }
}

fn latest(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("m/count/latest.json")).unwrap()
}

#[test]
fn a_refused_model_leaves_the_previous_one_published_and_exits_3_and_force_overrides_loudly() {
    let dir = tempfile::tempdir().unwrap();
    assert_code(&mlscaler(dir.path(), &["train", "--models", "m", "-q"]), 0);
    let before = latest(dir.path());
    // No model beats the best baseline by 90%.
    let r = mlscaler(
        dir.path(),
        &["train", "--models", "m", "--gate-margin", "0.9"],
    );
    assert_code(&r, 3);
    assert!(r.stdout.contains("quality gate: FAILED"), "{}", r.stdout);
    assert!(r.stdout.contains("not published"), "{}", r.stdout);
    assert_eq!(latest(dir.path()), before, "the pointer moved");
    let f = mlscaler(
        dir.path(),
        &[
            "train",
            "--models",
            "m",
            "--gate-margin",
            "0.9",
            "--force",
            "--output",
            "json",
        ],
    );
    assert_code(&f, 0);
    assert!(f.stderr.contains("WARNING: --force"), "{}", f.stderr);
    assert_eq!(f.json()["status"], "forced");
    assert_eq!(f.json()["card"]["forced"], true);
    assert_ne!(latest(dir.path()), before);
}

#[test]
fn a_corrupted_or_truncated_artifact_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    assert_code(&mlscaler(dir.path(), &["train", "--models", "m", "-q"]), 0);
    let l: serde_json::Value = serde_json::from_slice(&latest(dir.path())).unwrap();
    let path = dir.path().join("m").join(l["artifact"].as_str().unwrap());
    let good = std::fs::read(&path).unwrap();

    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x40;
    std::fs::write(&path, &flipped).unwrap();
    let r = mlscaler(dir.path(), &["inspect", "count", "--models", "m"]);
    assert_code(&r, 1);
    assert!(r.stderr.to_lowercase().contains("checksum"), "{}", r.stderr);

    std::fs::write(&path, &good[..good.len() - 100]).unwrap();
    let r = mlscaler(dir.path(), &["inspect", path.to_str().unwrap()]);
    assert_code(&r, 1);
    assert!(r.stderr.contains("truncated"), "{}", r.stderr);

    std::fs::write(&path, &good).unwrap();
    assert_code(
        &mlscaler(dir.path(), &["inspect", path.to_str().unwrap()]),
        0,
    );
}
