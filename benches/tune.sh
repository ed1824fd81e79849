#!/usr/bin/env bash
# `mlscaler tune` on the bundled WorldCup98 trace (125,310 one-minute steps,
# the first half tuned): 201 candidates replayed, the choice scored on the
# second half. Release build; wall time and peak RSS, 3 runs, and the split
# the tool reports itself (forecasts, replays, held-back scoring).
#
# usage: benches/tune.sh [WORK_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d "${TMPDIR:-/tmp}/mlscaler-tune.XXXXXX")}
mkdir -p "$work"
cargo build --release --locked --bin mlscaler
bin=$PWD/target/release/mlscaler
data=$PWD/data/worldcup98_requests_per_minute.csv
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
for i in 1 2 3; do
  /usr/bin/time -f "run $i: %e s wall, %M KiB peak RSS" \
    "$bin" tune --data "$data" --lead-time 10m --p999-nodes 40 -q --output json \
      --out "$work/profile.toml" >"$work/tune-$i.json"
  python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print("  candidates:", len(s["candidates"]), " seconds:", {k: round(v, 1) for k, v in s["seconds"].items()})' "$work/tune-$i.json"
done
