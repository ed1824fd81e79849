//! `mlscaler train`'s quantiles hold their level out of sample: per horizon
//! and for the peak over the lead window, on the bundled WorldCup98 trace and
//! on a low-volume version of it where counting noise dominates. The real
//! binary, the numbers from the model card.

#[path = "support/cli.rs"]
mod cli;

use cli::{assert_code, data, mlscaler};
use serde_json::Value;

/// The share of actuals at or below the `q`-quantile in a card's coverage.
fn share(coverage: &Value, q: f64) -> f64 {
    let levels = coverage["levels"].as_array().expect("levels");
    let j = levels
        .iter()
        .position(|l| (l.as_f64().unwrap() - q).abs() < 1e-9)
        .unwrap_or_else(|| panic!("no level {q} in {coverage}"));
    coverage["share"][j].as_f64().expect("a share")
}

/// Train with `args` in a fresh folder; the card of the published model.
fn card(dir: &std::path::Path, args: &[&str]) -> Value {
    let mut all = vec!["train", "--models", "m", "--output", "json"];
    all.extend_from_slice(args);
    let r = mlscaler(dir, &all);
    assert_code(&r, 0);
    r.json()["card"].clone()
}

/// The coverage of the quantiles at the lead time and of the lead-window
/// peak, at every reported level, checked against `tolerance` at p90 and
/// printed for the record.
fn check_p90(card: &Value, what: &str, tolerance: f64) {
    let lead = card["lead_steps"].as_u64().unwrap() as usize;
    let at_lead = &card["evaluation"]["per_horizon"][lead - 1];
    assert_eq!(at_lead["horizon"], lead);
    for key in ["coverage", "peak_coverage"] {
        let c = &at_lead[key];
        assert!(c["n"].as_u64().unwrap() > 1000, "{what} {key}: {c}");
        let levels: Vec<f64> = c["levels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_f64().unwrap())
            .collect();
        let shares: Vec<f64> = levels.iter().map(|q| share(c, *q)).collect();
        eprintln!("{what} {key} at lead {lead}: levels {levels:?} shares {shares:?}");
        assert!(
            shares.windows(2).all(|w| w[0] <= w[1]),
            "{what} {key}: {shares:?}"
        );
        let p90 = share(c, 0.9);
        assert!(
            (p90 - 0.9).abs() <= tolerance,
            "{what} {key}: p90 covers {p90}, wanted 0.9 +/- {tolerance}"
        );
        // The others stay near their level too (looser: fewer misses to count at p99).
        for q in [0.5, 0.8, 0.95] {
            let s = share(c, q);
            assert!((s - q).abs() <= 0.06, "{what} {key}: p{q} covers {s}");
        }
    }
}

#[test]
fn on_worldcup98_the_p90_covers_about_90_percent_at_the_lead_time_and_for_the_peak() {
    let dir = tempfile::tempdir().unwrap();
    let c = card(dir.path(), &[]);
    assert_eq!(c["format_version"], 2);
    check_p90(&c, "worldcup98", 0.03);
    // People see it: the text report's coverage table and `inspect`.
    let t = mlscaler(dir.path(), &["train", "--models", "t"]);
    assert_code(&t, 0);
    assert!(
        t.stdout.contains("peak over h=1..10 (lead, horizon)"),
        "{}",
        t.stdout
    );
    let i = mlscaler(dir.path(), &["inspect", "count", "--models", "t"]);
    assert_code(&i, 0);
    assert!(
        i.stdout.contains("p90 coverage out of sample"),
        "{}",
        i.stdout
    );
}

/// Poisson counts at `lambda` from a fixed-seed generator (inversion for
/// small rates, a rounded normal above 60): independent thinning of a
/// request log keeps each request with the same small probability.
struct Thinning(u64);

impl Thinning {
    fn uniform(&mut self) -> f64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn poisson(&mut self, lambda: f64) -> u64 {
        if lambda > 60.0 {
            let (u, v) = (self.uniform(), self.uniform());
            let z = (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos();
            return (lambda + z * lambda.sqrt()).round().max(0.0) as u64;
        }
        let u = self.uniform();
        let (mut k, mut p) = (0u64, (-lambda).exp());
        let mut cdf = p;
        while u > cdf {
            k += 1;
            p *= lambda / k as f64;
            cdf += p;
        }
        k
    }
}

#[test]
fn at_tens_of_requests_per_minute_counting_noise_gets_headroom_and_the_p90_still_holds() {
    // WorldCup98 thinned to 1% of its requests: about 38 a minute over the
    // evaluation window, where Poisson noise dominates the error.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(data("worldcup98_requests_per_minute.csv")).unwrap();
    let mut thin = Thinning(42);
    let mut out = String::from("period,count\n");
    for line in text.lines().skip(1) {
        let (t, v) = line.split_once(',').unwrap();
        let n: f64 = v.trim().parse().unwrap();
        out.push_str(&format!("{t},{}\n", thin.poisson(n * 0.01)));
    }
    std::fs::write(dir.path().join("thin.csv"), out).unwrap();
    let c = card(dir.path(), &["--data", "thin.csv"]);
    check_p90(&c, "worldcup98 at 1%", 0.03);
}

#[test]
fn a_model_of_the_previous_artifact_format_still_loads() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models/elb-format1.mlsm");
    std::fs::copy(&fixture, dir.path().join("old.mlsm")).unwrap();
    let r = mlscaler(dir.path(), &["inspect", "old.mlsm"]);
    assert_code(&r, 0);
    assert!(r.stdout.contains("artifact format 1"), "{}", r.stdout);
    assert!(r.stdout.contains("quality gate: PASSED"), "{}", r.stdout);
}
