//! The commands: thin wiring of sources, the core and stores. Everything that
//! decides lives in [`crate::core`]; everything that talks to the outside
//! world lives in [`crate::ingest`], [`crate::store`] and [`crate::azure`].

pub mod backtest;
pub mod backtest_jobs;
pub mod backtest_vertical;
pub mod inspect;
pub mod jobs;
pub mod round;
pub mod scale;
pub mod schedule;
pub mod source;
pub mod storage;
pub mod target;
pub mod train;
pub mod ui;
pub mod vertical;

/// Process exit codes, documented in the README.
pub mod exit {
    /// Success: the model was published (train).
    pub const OK: i32 = 0;
    /// Failure: bad input, bad configuration, I/O or Azure error. Nothing was
    /// changed, except by the jobs and vertical policies when an ARM operation
    /// fails part way (their record lists what was done).
    pub const FAILED: i32 = 1;
    /// Usage error (unknown flag, missing value): printed by the argument parser.
    pub const USAGE: i32 = 2;
    /// The quality gate refused the model; the previous model stays published.
    pub const GATE_REFUSED: i32 = 3;
    /// scale: the target already has the planned size; nothing was sent.
    pub const NOTHING_TO_DO: i32 = 4;
    /// scale: held for safety (target busy, forecast not trusted and the
    /// reactive rule kept the size, or an autoscaler pool not to be touched),
    /// or short of plan: a scale-out grew only as far as the vCPU quota allows.
    pub const HELD: i32 = 5;
}

/// Write through a temporary file in the same folder and rename, so a reader
/// never sees half a file.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let name = path
        .file_name()
        .map_or("out".into(), |n| n.to_string_lossy());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("{}: cannot write", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("{}: cannot write", path.display()))
}

/// An alarm's "M/N" (M breaching datapoints of the last N) from a flag.
pub fn parse_m_of_n(flag: &str, v: &str) -> anyhow::Result<(usize, usize)> {
    use anyhow::Context as _;
    let (m, n) = v
        .split_once('/')
        .with_context(|| format!("--{flag} '{v}': expected M/N, e.g. 2/2"))?;
    let num = |x: &str| {
        x.trim()
            .parse::<usize>()
            .with_context(|| format!("--{flag} '{v}'"))
    };
    Ok((num(m)?, num(n)?))
}

/// A scaling step from a flag: a node count, or a percentage like "20%".
pub fn parse_step(flag: &str, v: &str) -> anyhow::Result<crate::core::policy::Adjustment> {
    use crate::core::policy::Adjustment;
    use anyhow::Context as _;
    Ok(match v.trim().strip_suffix('%') {
        Some(p) => Adjustment::Percent(
            p.trim()
                .parse()
                .with_context(|| format!("--{flag} '{v}'"))?,
        ),
        None => Adjustment::Nodes(
            v.trim()
                .parse()
                .with_context(|| format!("--{flag} '{v}': nodes, or a percentage like 20%"))?,
        ),
    })
}
