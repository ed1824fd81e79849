//! How mlscaler is run: from a config file, as a loop (`scale --every`) that
//! survives failed rounds and stops cleanly on SIGTERM, and shell completions.

#[path = "support/cli.rs"]
mod cli;

use cli::{assert_code, mlscaler, mlscaler_env};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn train(dir: &Path) {
    assert_code(&mlscaler(dir, &["train", "--models", "models", "-q"]), 0);
}

/// The loop mode on the demo's data and moment, a simulated pool of 12, a
/// round `every` so long.
fn demo_loop_args(every: &str) -> Vec<&str> {
    vec![
        "scale",
        "--target",
        "sim:12",
        "--capacity-per-node",
        "4000",
        "--every",
        every,
        "--jitter",
        "0s",
    ]
}

/// [`demo_loop_args`] a round a second, for `rounds` rounds.
fn demo_loop(dir: &Path, rounds: &str, more: &[&str]) -> cli::Run {
    let mut args = demo_loop_args("1s");
    args.extend_from_slice(&["--rounds", rounds]);
    args.extend_from_slice(more);
    mlscaler(dir, &args)
}

const CONFIG: &str = r#"
models = "models"
[scale]
target = "sim:12"
capacity-per-node = 4000
now = "1998-06-30T18:40:00Z"
dry-run = true
account-key = "c2VjcmV0LWtleS1kby1ub3QtcHJpbnQ="
"#;

#[test]
fn a_config_file_sets_what_flags_and_environment_do_not() {
    let dir = tempfile::tempdir().unwrap();
    train(dir.path());
    std::fs::write(dir.path().join("mlscaler.toml"), CONFIG).unwrap();
    let r = mlscaler(
        dir.path(),
        &["--config", "mlscaler.toml", "scale", "--output", "json"],
    );
    assert_code(&r, 0);
    let s = r.json();
    assert_eq!(s["before"]["count"], 12, "target from the file");
    assert_eq!(s["capacity_per_node"], 4000.0);
    assert_eq!(s["dry_run"], true);
    // A flag wins over the file, the environment too.
    let r = mlscaler(
        dir.path(),
        &[
            "--config",
            "mlscaler.toml",
            "scale",
            "--target",
            "sim:20",
            "--output",
            "json",
        ],
    );
    assert_eq!(r.json()["before"]["count"], 20);
    let r = mlscaler_env(
        dir.path(),
        &["scale", "--output", "json"],
        &[
            ("MLSCALER_CONFIG", "mlscaler.toml"),
            ("MLSCALER_TARGET", "sim:25"),
        ],
    );
    assert_eq!(r.json()["before"]["count"], 25);

    // config check: valid, sources shown, the secret masked.
    let c = mlscaler(
        dir.path(),
        &["config", "check", "--config", "mlscaler.toml"],
    );
    assert_code(&c, 0);
    assert!(c.stdout.contains("valid"), "{}", c.stdout);
    let line = c
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("capacity-per-node"))
        .unwrap();
    assert!(line.contains("4000") && line.contains("(file)"), "{line}");
    assert!(
        c.stdout.contains("<redacted>") && !c.stdout.contains("c2VjcmV0LWtleS1kby1ub3QtcHJpbnQ="),
        "{}",
        c.stdout
    );

    // A misspelt key is an error naming the file and the key, with a suggestion.
    std::fs::write(dir.path().join("bad.toml"), "[scale]\nmax_node = 3\n").unwrap();
    let b = mlscaler(dir.path(), &["--config", "bad.toml", "scale"]);
    assert_code(&b, 1);
    assert!(
        b.stderr.contains("bad.toml")
            && b.stderr.contains("scale.max_node")
            && b.stderr.contains("max-nodes"),
        "{}",
        b.stderr
    );
}

#[test]
fn the_loop_runs_every_round_and_keeps_going_after_a_failed_one() {
    let dir = tempfile::tempdir().unwrap();
    train(dir.path());
    let r = demo_loop(dir.path(), "3", &["--output", "json", "-q"]);
    assert_code(&r, 0);
    assert_eq!(
        r.stdout.lines().count(),
        3,
        "one JSON line per round:\n{}",
        r.stdout
    );
    let log = std::fs::read_to_string(dir.path().join("decisions.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 3);

    // Every round fails (no such model): each is reported, the loop goes on, the exit code says so.
    let f = mlscaler(
        dir.path(),
        &[
            "scale", "--model", "nope", "--target", "sim:3", "--every", "1s", "--jitter", "0s",
            "--rounds", "2",
        ],
    );
    assert_code(&f, 1);
    assert!(
        f.stderr.contains("round 1 failed") && f.stderr.contains("round 2 failed"),
        "{}",
        f.stderr
    );
    assert!(
        f.stderr.contains("after 2 round(s), 2 failed"),
        "{}",
        f.stderr
    );
}

#[test]
fn sigterm_stops_the_loop_between_rounds() {
    let dir = tempfile::tempdir().unwrap();
    train(dir.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_mlscaler"))
        .current_dir(dir.path())
        .args(demo_loop_args("1h"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = dir.path().join("decisions.jsonl");
    let start = Instant::now();
    while !std::fs::read_to_string(&log).is_ok_and(|t| t.lines().count() == 1) {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the first round never finished"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // It is sleeping until the next round (an hour away): it must stop now, not then.
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the loop did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{status:?}: {err}");
    assert!(
        err.contains("stopped on a signal after 1 round(s)"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 1);
}

#[test]
fn completions_are_printed_for_the_common_shells() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "_mlscaler"),
        ("zsh", "#compdef mlscaler"),
        ("fish", "complete -c mlscaler"),
    ] {
        let r = mlscaler(dir.path(), &["completions", shell]);
        assert_code(&r, 0);
        assert!(
            r.stdout.contains(marker),
            "{shell}: {}",
            &r.stdout[..200.min(r.stdout.len())]
        );
        assert!(r.stdout.contains("capacity-per-node"), "{shell}");
    }
}

#[test]
fn with_output_json_a_failed_command_still_prints_one_json_document() {
    let dir = tempfile::tempdir().unwrap();
    // A run that fails while working: the data file does not exist.
    let r = mlscaler(
        dir.path(),
        &["train", "--data", "no-such.csv", "--output", "json"],
    );
    assert_code(&r, 1);
    let doc = r.json();
    assert_eq!(doc["outcome"], "failed");
    assert_eq!(doc["exit_code"], 1);
    assert!(
        doc["error"].as_str().unwrap().contains("no-such.csv"),
        "{doc}"
    );
    assert!(r.stderr.contains("no-such.csv"), "{}", r.stderr);
    // A setting refused before anything runs.
    let r = mlscaler(
        dir.path(),
        &["backtest", "--score-from", "2", "--output", "json"],
    );
    assert_code(&r, 1);
    let doc = r.json();
    assert_eq!(doc["error_class"], "settings");
    assert!(
        doc["error"].as_str().unwrap().contains("score-from"),
        "{doc}"
    );
    // A config file that cannot be used: the document too, naming the file
    // and the key.
    std::fs::write(dir.path().join("bad.toml"), "[backtest]\nno-such-key = 3\n").unwrap();
    let r = mlscaler(
        dir.path(),
        &["backtest", "--config", "bad.toml", "--output", "json"],
    );
    assert_code(&r, 1);
    let doc = r.json();
    assert_eq!(doc["error_class"], "settings");
    let error = doc["error"].as_str().unwrap();
    assert!(
        error.contains("bad.toml") && error.contains("no-such-key"),
        "{doc}"
    );
    let r = mlscaler(
        dir.path(),
        &["backtest", "--config", "missing.toml", "--output=json"],
    );
    assert_code(&r, 1);
    assert!(
        r.json()["error"].as_str().unwrap().contains("missing.toml"),
        "{}",
        r.stdout
    );
    // Text output prints nothing on standard output.
    let r = mlscaler(dir.path(), &["backtest", "--score-from", "2"]);
    assert_code(&r, 1);
    assert_eq!(r.stdout, "");
}

#[test]
fn a_dry_run_loop_reuses_the_past_origin_results_of_its_last_round() {
    let dir = tempfile::tempdir().unwrap();
    train(dir.path());
    // The demo's moment in every round (no --data). A dry run writes no
    // state file: the second round reuses what the first computed in this
    // process, and forecasts no past origin again.
    let r = demo_loop(dir.path(), "2", &["--dry-run", "-v"]);
    assert_code(&r, 0);
    let rounds: Vec<&str> = (r.stderr.lines())
        .filter(|l| l.contains("past origins of the drift and calibration signals"))
        .collect();
    assert_eq!(rounds.len(), 2, "{}", r.stderr);
    assert!(rounds[0].contains(" reused=0 "), "{}", rounds[0]);
    assert!(rounds[1].contains(" forecast=0 "), "{}", rounds[1]);
    assert!(!rounds[1].contains(" reused=0 "), "{}", rounds[1]);
    assert!(!dir.path().join("mlscaler-state.json").exists());
}

#[test]
fn logs_have_no_colour_codes_when_standard_error_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    // -v logs at debug level; the test's standard error is a pipe.
    let r = mlscaler(
        dir.path(),
        &[
            "scale",
            "--policy",
            "target-tracking",
            "--step",
            "1m",
            "--target",
            "sim:3",
            "--capacity-per-node",
            "4000",
            "--dry-run",
            "-v",
            "--output",
            "json",
        ],
    );
    assert!(r.stderr.contains("DEBUG"), "{}", r.stderr);
    // -v tells what was read and how the decision came about.
    for event in ["data read", "state read", "decided"] {
        assert!(
            r.stderr.contains(event),
            "no '{event}' with -v:\n{}",
            r.stderr
        );
    }
    assert!(!r.stderr.contains('\u{1b}'), "{:?}", r.stderr);
}
