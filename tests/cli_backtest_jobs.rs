//! `mlscaler backtest --mode jobs` end to end: the real binary on the bundled
//! job log (6000 jobs over 23 hours) and on small CSV traces.

#[path = "support/cli.rs"]
mod cli;

use cli::{assert_code, data, mlscaler};

fn policy<'a>(s: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    s["report"]["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["policy"] == name)
        .unwrap_or_else(|| panic!("no policy {name} in {s}"))
}

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn on_the_bundled_log_every_policy_is_safe_jobs_is_cheaper_and_the_forecast_waits_less() {
    let dir = tempfile::tempdir().unwrap();
    let log = data("agilethought_logs.txt");
    let args = [
        "backtest",
        "--mode",
        "jobs",
        "--data",
        log.to_str().unwrap(),
        "--report",
        "report.json",
        "--plan-out",
        "plan.csv",
        "--plot",
        "jobs.svg",
        "--output",
        "json",
        "-q",
    ];
    let r = mlscaler(dir.path(), &args);
    assert_code(&r, 0);
    let s = r.json();
    assert_eq!(s["jobs"], 6000);
    assert_eq!(s["queues"].as_object().unwrap().len(), 25);
    assert_eq!(s["report"]["peak_concurrent_nodes"], 28);
    assert_eq!(s["report"]["static_peak_nodes"], 28);
    for name in ["static_peak", "jobs", "jobs_forecast"] {
        let p = policy(&s, name);
        assert_eq!(p["busy_removed"], 0, "{name}: {p}");
        assert_eq!(p["invalid_actions"], 0, "{name}: {p}");
        for field in [
            "instance_hours",
            "busy_hours",
            "utilisation",
            "cost_vs_static_peak",
            "wait_mean_s",
            "wait_p95_s",
            "wait_max_s",
            "waited_over_1m_pct",
            "starts",
            "creates",
            "scale_ins",
            "peak_instances",
        ] {
            assert!(p[field].is_number(), "{name}.{field} missing: {p}");
        }
        // Every policy pays at least for the jobs themselves.
        assert!(f(&p["busy_hours"]) <= f(&p["instance_hours"]));
        assert!(f(&s["report"]["lower_bound_instance_hours"]) <= f(&p["instance_hours"]) + 1e-6);
    }
    let (st, jobs, fc) = (
        policy(&s, "static_peak"),
        policy(&s, "jobs"),
        policy(&s, "jobs_forecast"),
    );
    assert_eq!(f(&st["wait_max_s"]), 0.0, "a peak-sized pool never queues");
    assert!(
        f(&jobs["instance_hours"]) < 0.75 * f(&st["instance_hours"]),
        "jobs should cost clearly less than static_peak: {jobs} vs {st}"
    );
    assert!(
        f(&jobs["wait_mean_s"]) > 0.0,
        "jobs pays with waits: {jobs}"
    );
    assert!(
        f(&fc["wait_mean_s"]) < f(&jobs["wait_mean_s"]) / 10.0,
        "the forecast headroom should cut the waits: {fc} vs {jobs}"
    );
    assert!(f(&fc["waited_over_1m_pct"]) < f(&jobs["waited_over_1m_pct"]));
    assert!(
        f(&fc["instance_hours"]) < 0.8 * f(&st["instance_hours"]),
        "jobs_forecast sizes for the demand one lead time ahead, not for the peak: {fc} vs {st}"
    );
    assert!(
        fc["scale_ins"].as_u64().unwrap() * 3 < jobs["scale_ins"].as_u64().unwrap(),
        "the headroom should stop the start/deallocate churn: {fc} vs {jobs}"
    );
    // Deallocated instances are reused: after the first hour scale-out is by start.
    let (starts, creates) = (
        jobs["starts"].as_u64().unwrap(),
        jobs["creates"].as_u64().unwrap(),
    );
    assert!(starts > 0 && creates < starts, "{jobs}");

    // The report file is the same document; the plan and the plot exist.
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(written["report"], s["report"]);
    let plan = std::fs::read_to_string(dir.path().join("plan.csv")).unwrap();
    let mut lines = plan.lines();
    assert_eq!(
        lines.next(),
        Some("timestamp,policy,queued_nodes,running_nodes,headroom,target,ready,booting,busy,deallocated,start,create,scale_in")
    );
    let rows: Vec<&str> = lines.collect();
    for name in ["static_peak", "jobs", "jobs_forecast"] {
        assert!(
            rows.iter().any(|l| l.split(',').nth(1) == Some(name)),
            "{name}"
        );
    }
    let svg = std::fs::read_to_string(dir.path().join("jobs.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("jobs_forecast instances paid"));

    // Deterministic: a second run gives the same report.
    let again = mlscaler(dir.path(), &args);
    assert_code(&again, 0);
    assert_eq!(again.json()["report"], s["report"]);
}

#[test]
fn a_csv_trace_runs_one_queue_with_its_own_node_counts() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("submit,duration,nodes,queue,id\n");
    for i in 0..120 {
        let (h, m) = (i / 60, i % 60);
        let queue = if i % 2 == 0 { "gpu" } else { "cpu" };
        csv.push_str(&format!(
            "2024-03-01 {:02}:{:02}:00,{},{},{queue},j{i}\n",
            h,
            m,
            120 + (i % 5) * 60,
            1 + i % 3
        ));
    }
    std::fs::write(dir.path().join("trace.csv"), csv).unwrap();
    let r = mlscaler(
        dir.path(),
        &[
            "backtest",
            "--mode",
            "jobs",
            "--data",
            "trace.csv",
            "--queue",
            "gpu",
            "--policy",
            "jobs,static_peak",
            "--max-nodes",
            "20",
            "--output",
            "json",
            "-q",
        ],
    );
    assert_code(&r, 0);
    let s = r.json();
    assert_eq!(s["jobs"], 60);
    assert_eq!(s["queue"], "gpu");
    assert_eq!(s["report"]["policies"].as_array().unwrap().len(), 2);
    let jobs = policy(&s, "jobs");
    assert_eq!(jobs["busy_removed"], 0);
    assert!(f(&jobs["wait_mean_s"]) > 0.0);
    // Text output names the policies.
    let text = mlscaler(
        dir.path(),
        &[
            "backtest",
            "--mode",
            "jobs",
            "--data",
            "trace.csv",
            "--policy",
            "jobs",
        ],
    );
    assert_code(&text, 0);
    assert!(
        text.stdout
            .contains("jobs backtest of trace.csv (csv): 120 jobs"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("busy removed"), "{}", text.stdout);
}

#[test]
fn bad_trace_rows_name_the_file_line_and_field_and_fail() {
    let dir = tempfile::tempdir().unwrap();
    let good = "submit,duration\n2024-03-01 00:00:00,60\n";
    for (name, bad_row, want) in [
        (
            "bad_submit.csv",
            "2024-03-01 25:00:00,60\n",
            "bad_submit.csv: line 3, field 'submit': cannot parse timestamp",
        ),
        (
            "negative.csv",
            "2024-03-01 00:01:00,-30\n",
            "negative.csv: line 3, field 'duration': negative duration",
        ),
    ] {
        std::fs::write(dir.path().join(name), format!("{good}{bad_row}")).unwrap();
        let r = mlscaler(dir.path(), &["backtest", "--mode", "jobs", "--data", name]);
        assert_code(&r, 1);
        assert!(r.stderr.contains(want), "{name}: {}", r.stderr);
    }
    // No --data: a clear refusal, not the bundled load sample.
    let r = mlscaler(dir.path(), &["backtest", "--mode", "jobs"]);
    assert_code(&r, 1);
    assert!(
        r.stderr.contains("--mode jobs needs --data"),
        "{}",
        r.stderr
    );
    // An unknown policy is refused.
    std::fs::write(dir.path().join("ok.csv"), good).unwrap();
    // So are a published model and a start, which the job replay does not take.
    for flag in [["--model", "count"], ["--start", "2024-03-01T00:00:00Z"]] {
        let mut args = vec!["backtest", "--mode", "jobs", "--data", "ok.csv"];
        args.extend(flag);
        let r = mlscaler(dir.path(), &args);
        assert_code(&r, 1);
        assert!(
            r.stderr
                .contains(&format!("{} is not taken by --mode jobs", flag[0])),
            "{}",
            r.stderr
        );
    }
    let r = mlscaler(
        dir.path(),
        &[
            "backtest",
            "--mode",
            "jobs",
            "--data",
            "ok.csv",
            "--policy",
            "predictive",
        ],
    );
    assert_code(&r, 1);
    assert!(r.stderr.contains("unknown jobs policy"), "{}", r.stderr);
}
