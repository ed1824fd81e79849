//! Bad input fails fast in bounded memory: a file without newlines (CSV,
//! NDJSON, raw logs, Azure Monitor JSON lines) and a Parquet file whose
//! footer claims gigabytes, each read by the real binary. The child's peak
//! RSS (VmHWM in /proc/PID/status, polled while it runs) must stay under
//! 100 MiB, well below the size of the file, and the error must name the
//! file and the limit. No timing assertions.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Files this large would show in memory if any reader held them whole.
const FILE_MIB: usize = 160;
const LIMIT_KIB: u64 = 100 * 1024;

/// A file of `FILE_MIB` MiB: `head`, then `fill` bytes, no newline.
fn write_big(path: &Path, head: &[u8], fill: u8) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    f.write_all(head).unwrap();
    let chunk = vec![fill; 1 << 20];
    for _ in 0..FILE_MIB {
        f.write_all(&chunk).unwrap();
    }
    f.flush().unwrap();
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Runs `mlscaler ARGS` in `dir`, polling its peak RSS until it exits.
/// Returns (exit code, stderr, peak RSS in KiB as last seen).
fn run_measured(dir: &Path, args: &[&str]) -> (i32, String, u64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mlscaler"))
        .current_dir(dir)
        .args(args)
        .env_remove("MLSCALER_DATA")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut peak = 0;
    loop {
        if let Some(k) = vm_hwm_kib(pid) {
            peak = peak.max(k);
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        peak,
    )
}

fn check(dir: &Path, file: &str, extra: &[&str], expect: &[&str]) {
    let path = dir.join(file);
    let path_s = path.to_str().unwrap().to_string();
    let mut args = vec!["train", "--data", path_s.as_str(), "--models", "m", "-q"];
    args.extend_from_slice(extra);
    let (code, stderr, peak) = run_measured(dir, &args);
    assert_eq!(
        code, 1,
        "{file}: fails with an error, not a crash: {stderr}"
    );
    assert!(stderr.contains(file), "{file}: names the file: {stderr}");
    for e in expect {
        assert!(stderr.contains(e), "{file}: says '{e}': {stderr}");
    }
    assert!(
        peak < LIMIT_KIB,
        "{file}: peak RSS {peak} KiB, limit {LIMIT_KIB} KiB ({stderr})"
    );
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn files_without_newlines_fail_fast_naming_the_file_and_the_limit_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let limit = mlscaler::ingest::limits::MAX_RECORD_BYTES.to_string();
    let log_limit = mlscaler::ingest::MAX_LINE_BYTES.to_string();

    write_big(&dir.path().join("nolines.csv"), b"", b'x');
    check(dir.path(), "nolines.csv", &[], &[&limit, "line 1"]);

    write_big(&dir.path().join("header.csv"), b"timestamp,value\n", b'7');
    check(dir.path(), "header.csv", &[], &[&limit, "line 2"]);

    write_big(&dir.path().join("one.ndjson"), b"{\"t\":\"", b'a');
    check(
        dir.path(),
        "one.ndjson",
        &["--time-column", "t"],
        &[&limit, "line 1"],
    );

    write_big(&dir.path().join("app.log"), b"", b'z');
    check(dir.path(), "app.log", &[], &[&log_limit, "line 1"]);

    write_big(&dir.path().join("PT1H.json"), b"", b'{');
    check(
        dir.path(),
        "PT1H.json",
        &["--format", "azure-monitor"],
        &[&limit, "line 1"],
    );
}

#[test]
fn a_parquet_footer_that_claims_gigabytes_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge-footer.parquet");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        f.write_all(b"PAR1").unwrap();
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..FILE_MIB {
            f.write_all(&chunk).unwrap();
        }
        // A footer length of 0xF000_0000 bytes, then the magic.
        f.write_all(&0xF000_0000u32.to_le_bytes()).unwrap();
        f.write_all(b"PAR1").unwrap();
        f.flush().unwrap();
    }
    let limit = mlscaler::ingest::limits::MAX_PARQUET_FOOTER_BYTES.to_string();
    check(
        dir.path(),
        "huge-footer.parquet",
        &["--time-column", "timestamp"],
        &[&limit, "footer"],
    );
}
