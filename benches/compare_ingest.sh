#!/usr/bin/env bash
# Ingest side by side: mlscaler's readers (criterion, release build) and
# pyarrow on the same 51 MB, 10-column Parquet file (two columns read), plus
# the metric CSV, raw-log and long-table benchmarks of benches/ingest.rs, and
# pyarrow on the same long table (benches/reference_long.py), and polars
# (Python) on the same CSV inputs (benches/reference_csv.py). Peak memory of
# one Parquet read in its own process by GNU time (`/usr/bin/time -v`).
#
# usage: benches/compare_ingest.sh [WORK_DIR]
# Needs python3 (a venv with pinned pyarrow/numpy/polars is created in WORK_DIR) and
# /usr/bin/time (Debian package `time`).
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d "${TMPDIR:-/tmp}/mlscaler-ingest.XXXXXX")}
mkdir -p "$work"
runs=${RUNS:-3}

if [ ! -x "$work/venv/bin/python" ]; then
  python3 -m venv "$work/venv"
  "$work/venv/bin/pip" install --quiet pyarrow==26.0.1 numpy==2.4.6
fi
"$work/venv/bin/python" -c 'import polars' 2>/dev/null \
  || "$work/venv/bin/pip" install --quiet polars==2.1.0
[ -f "$work/wide.parquet" ] || "$work/venv/bin/python" benches/make_wide_parquet.py "$work/wide.parquet"

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -m)"
echo "input: wide.parquet $(du -m "$work/wide.parquet" | cut -f1) MB"

MLSCALER_BENCH_PARQUET="$work/wide.parquet" cargo bench --locked --bench ingest
bench=$(cargo bench --locked --bench ingest --no-run --message-format=json 2>/dev/null \
  | "$work/venv/bin/python" -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "ingest" and m.get("executable"):
        print(m["executable"])')
for _ in $(seq "$runs"); do
  MLSCALER_BENCH_ONCE="$work/wide.parquet" /usr/bin/time -f "mlscaler Parquet 2 of 10 columns: %e s wall, %M KiB peak RSS" "$bench"
done
for _ in $(seq "$runs"); do
  /usr/bin/time -f "pyarrow (whole process, incl. imports): %e s wall, %M KiB peak RSS" \
    "$work/venv/bin/python" benches/reference_parquet.py "$work/wide.parquet" m0
done
"$work/venv/bin/python" benches/reference_long.py data/worldcup98_requests_per_minute.csv "$work/long.parquet" "$runs"
"$work/venv/bin/python" benches/reference_csv.py data/worldcup98_requests_per_minute.csv "$runs"
