#!/usr/bin/env bash
# mlscaler (release build) side by side with the pandas / scikit-learn
# reference scripts, on the same generated inputs:
#   - train: one year of 1-minute load (525,600 rows, benches/make_year.py),
#     end to end (ingest, features, fit of every horizon, walk-forward);
#   - raw-log ingest: 100 days of the workshop's logs (benches/make_logs.py).
# Prints wall seconds and peak RSS of each (GNU time), three runs each.
#
# usage: benches/compare.sh [WORK_DIR]
# Needs python3 (a venv with pinned pandas/scikit-learn is created in WORK_DIR)
# and /usr/bin/time (Debian package `time`).
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d "${TMPDIR:-/tmp}/mlscaler-compare.XXXXXX")}
mkdir -p "$work"
runs=${RUNS:-3}

[ -f "$work/year.csv" ] || python3 benches/make_year.py "$work/year.csv"
[ -f "$work/logs.txt" ] || python3 benches/make_logs.py "$work/logs.txt" 100
if [ ! -x "$work/venv/bin/python" ]; then
  python3 -m venv "$work/venv"
  "$work/venv/bin/pip" install --quiet pandas==3.1.1 scikit-learn==1.9.1 numpy==2.4.6
fi
cargo build --release --locked --bin mlscaler
bin=target/release/mlscaler

measure() { # label, command...
  local label=$1; shift
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "$label: %e s wall, %M KiB peak RSS" "$@" >/dev/null 2>"$work/time.err" || {
      rc=$?
      # exit 3 = the quality gate refused the model: the work was still done.
      [ "$rc" = 3 ] || { cat "$work/time.err" >&2; exit "$rc"; }
    }
    tail -1 "$work/time.err"
  done
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -m)"
echo "inputs: year.csv $(wc -l <"$work/year.csv") lines, logs.txt $(du -m "$work/logs.txt" | cut -f1) MB"
measure "mlscaler train, 1 year of 1-minute data" \
  "$bin" train --data "$work/year.csv" --metric requests --models "$work/models" --quiet
measure "pandas+sklearn fit, same year (47 features, 10 horizons)" \
  "$work/venv/bin/python" benches/reference_fit.py "$work/year.csv"
measure "mlscaler raw-log ingest + train, 100 days" \
  "$bin" train --data "$work/logs.txt" --seasons day --models "$work/models" --quiet
measure "pandas raw-log aggregation only, 100 days" \
  "$work/venv/bin/python" benches/reference_logs.py "$work/logs.txt" 300
