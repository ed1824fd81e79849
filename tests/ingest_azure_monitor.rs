//! Azure Monitor's own formats through the binary and the source layer: the
//! bundled Diagnostic-settings metric archive (data/azure-monitor), a Log
//! Analytics data export of `Perf` (tests/fixtures/azure-monitor/am-perf),
//! and the same archive uploaded to Azurite with blob names exactly as Azure
//! writes them, read by URL and by `--container`. Time ranges skip the
//! partitions outside them before they are downloaded.

#[path = "support/azurite.rs"]
mod azurite;
#[path = "support/cli.rs"]
mod cli;

use cli::{assert_code, data, mlscaler, mlscaler_env, no_storage, train_small_json, TRAIN_SMALL};
use mlscaler::app::source::{self, DataSource, ReadOptions};
use mlscaler::ingest::{Combine, Format};
use std::path::{Path, PathBuf};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// The bundled archive's blobs: (name inside the container, bytes).
fn sample_blobs() -> Vec<(String, Vec<u8>)> {
    let root = data("azure-monitor").join("insights-metrics-pt1m");
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let name = p.strip_prefix(&root).unwrap().to_str().unwrap().to_string();
                out.push((name, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_bundled_archive_trains_on_the_sum_of_per_vm_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let sample = data("azure-monitor");
    let s = train_small_json(
        dir.path(),
        &[
            "--data",
            sample.to_str().unwrap(),
            "--filter",
            "metricName=Percentage CPU",
            "--aggregate",
            "sum",
        ],
        &[],
    );
    let card = &s["card"];
    assert_eq!(card["target"], "Percentage CPU");
    assert_eq!(card["source"]["format"], "azure-monitor");
    assert_eq!(card["source"]["parts"].as_array().unwrap().len(), 9);
    assert_eq!(card["window_steps"], 180);
    assert_eq!(card["window_from"], "2026-11-30T18:00:00Z");

    // The last hour only: the two earlier hours' blobs are not read.
    let s = train_small_json(
        dir.path(),
        &[
            "--data",
            sample.to_str().unwrap(),
            "--filter",
            "metricName=Percentage CPU",
            "--aggregate",
            "sum",
            "--since",
            "2026-11-30T19:00:00Z",
        ],
        &[],
    );
    let card = &s["card"];
    let parts: Vec<&str> = card["source"]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(parts.len(), 6, "{parts:?}");
    assert!(parts.iter().all(|p| !p.contains("/h=18/")), "{parts:?}");
    assert_eq!(card["window_steps"], 120);
    assert_eq!(card["window_from"], "2026-11-30T19:00:00Z");
}

#[test]
fn the_source_layer_sums_vms_and_keeps_one_column_per_series_without_aggregate() {
    let sample = data("azure-monitor");
    let src = DataSource::resolve(Some(sample.to_str().unwrap()), &no_storage()).unwrap();
    let opts = ReadOptions {
        filters: vec!["metricName=Percentage CPU".parse().unwrap()],
        aggregate: Some(Combine::Sum),
        ..ReadOptions::default()
    };
    let sum = source::load_raw(&src, &opts).unwrap();
    assert_eq!(sum.format, Format::AzureMonitor);
    assert_eq!(sum.table.columns.len(), 1);
    assert_eq!(sum.step.secs(), 60);
    let each = source::load_raw(
        &src,
        &ReadOptions {
            filters: opts.filters.clone(),
            ..ReadOptions::default()
        },
    )
    .unwrap();
    assert_eq!(each.table.columns.len(), 3);
    assert!(each.table.columns[0].name.ends_with("/SHOP-VM-0"));
    for i in 0..each.table.len() {
        let total: f64 = each.table.columns.iter().map(|c| c.values[i]).sum();
        assert!((total - sum.table.columns[0].values[i]).abs() < 1e-9);
    }
    // Five-minute steps: each VM's mean over the step, then the sum.
    let five = source::load_raw(
        &src,
        &ReadOptions {
            step: Some("5m".parse().unwrap()),
            ..opts.clone()
        },
    )
    .unwrap();
    assert_eq!(five.table.len(), 36);
    let first: f64 = sum.table.columns[0].values[..5].iter().sum::<f64>() / 5.0;
    assert!((five.table.columns[0].values[0] - first).abs() < 1e-9);
    // Combining CPU with network traffic is refused.
    let e = source::load_raw(
        &src,
        &ReadOptions {
            aggregate: Some(Combine::Sum),
            ..ReadOptions::default()
        },
    )
    .err()
    .unwrap();
    let e = format!("{e:#}");
    assert!(
        e.contains("column 'metricName' holds several values"),
        "{e}"
    );
    assert!(e.contains("PT1H.json: line 2"), "{e}");
}

#[test]
fn a_log_analytics_export_of_perf_sums_node_cpu() {
    let folder = fixture("azure-monitor");
    let src = DataSource::resolve(Some(folder.to_str().unwrap()), &no_storage()).unwrap();
    assert_eq!(src.part_names().len(), 2);
    let opts = ReadOptions {
        filters: vec![
            "ObjectName=K8SNode".parse().unwrap(),
            "CounterName=cpuUsageNanoCores".parse().unwrap(),
        ],
        aggregate: Some(Combine::Sum),
        ..ReadOptions::default()
    };
    let t = source::load_raw(&src, &opts).unwrap();
    assert_eq!(t.format, Format::AzureMonitor);
    assert_eq!(t.table.columns[0].name, "cpuUsageNanoCores");
    assert_eq!(t.table.len(), 10);
    // Node 0: 1.0 + 0.1 m cores, node 1: 2.0 + 0.1 m cores, at minute m.
    for (m, v) in t.table.columns[0].values.iter().enumerate() {
        let want = (3.0 + 0.2 * m as f64) * 1e9;
        assert!((v - want).abs() < 1.0, "minute {m}: {v} vs {want}");
    }
    // The second 5-minute blob only.
    let later = source::load_raw(
        &src,
        &ReadOptions {
            since: Some(1_796_061_900), // 2026-11-30T18:05:00Z
            ..opts
        },
    )
    .unwrap();
    assert_eq!(later.table.len(), 5);
    assert_eq!(later.parts_skipped, 1);
}

#[test]
fn an_archive_in_blob_storage_reads_by_url_and_by_container_and_skips_hours_outside_the_range() {
    let Some(az) = azurite::Azurite::from_env() else {
        return;
    };
    let container = az.create_container("insights-metrics-pt1m");
    let blobs = sample_blobs();
    for (name, bytes) in &blobs {
        az.upload(&container, name, bytes);
    }
    // An hour before the range whose blob is not JSON: read, it fails the
    // run; skipped by the range, it is never downloaded.
    let vm0 = blobs[0].0.split("/y=").next().unwrap().to_string();
    let bad = format!("{vm0}/y=2026/m=11/d=30/h=17/m=00/PT1H.json");
    az.upload(&container, &bad, b"not json\n");
    let dir = tempfile::tempdir().unwrap();
    let cs = az.connection_string();
    let env = [("AZURE_STORAGE_CONNECTION_STRING", cs.as_str())];
    let rg =
        "resourceId=/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/RG-SHOP/";
    let url = az.url(&container, rg);
    let filter = [
        "--filter",
        "metricName=Percentage CPU",
        "--aggregate",
        "sum",
    ];

    let mut args = vec!["--data", url.as_str()];
    args.extend_from_slice(&filter);
    args.extend_from_slice(&["--since", "2026-11-30T18:00:00Z"]);
    let s = train_small_json(dir.path(), &args, &env);
    assert_eq!(s["card"]["window_steps"], 180);
    assert_eq!(s["card"]["source"]["parts"].as_array().unwrap().len(), 9);

    // Without the range the bad blob is read, and named with its line.
    let mut all = vec!["train", "--models", "m", "--data", url.as_str()];
    all.extend_from_slice(&filter);
    let r = mlscaler_env(dir.path(), &all, &env);
    assert_code(&r, 1);
    assert!(
        r.stderr
            .contains("h=17/m=00/PT1H.json: line 1: malformed JSON"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains(azurite::KEY), "{}", r.stderr);

    // The same through --container and --prefix, with a SAS URL for the data.
    let mut args = vec!["--container", container.as_str(), "--prefix", rg];
    args.extend_from_slice(&filter);
    args.extend_from_slice(&["--since", "2026-11-30T19:00:00Z"]);
    let s = train_small_json(dir.path(), &args, &env);
    assert_eq!(s["card"]["window_steps"], 120);
    assert_eq!(s["card"]["source"]["parts"].as_array().unwrap().len(), 6);
    let sas = az.sas_url(&container, rg, "rl");
    let mut args = vec!["--data", sas.as_str()];
    args.extend_from_slice(&filter);
    args.extend_from_slice(&["--since", "2026-11-30T18:00:00Z", "--field", "maximum"]);
    let r = {
        let mut all = vec!["train", "--models", "m"];
        all.extend_from_slice(&args);
        all.extend_from_slice(&TRAIN_SMALL);
        mlscaler(dir.path(), &all)
    };
    assert_code(&r, 0);
    let sig = sas.split("sig=").nth(1).unwrap().split('&').next().unwrap();
    assert!(!r.stdout.contains(sig) && !r.stderr.contains(sig));
}
