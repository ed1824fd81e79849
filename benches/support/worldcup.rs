//! The bundled WorldCup98 trace (requests per minute), for the benches.

/// Requests per minute, in order (the CSV's second column).
pub fn requests_per_minute() -> Vec<f64> {
    include_str!("../../data/worldcup98_requests_per_minute.csv")
        .lines()
        .skip(1)
        .map(|l| {
            l.rsplit(',')
                .next()
                .expect("two columns")
                .trim()
                .parse()
                .expect("a count")
        })
        .collect()
}
