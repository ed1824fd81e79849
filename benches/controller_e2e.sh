#!/usr/bin/env bash
# One `mlscaler scale --dry-run` decision end to end against the local ARM
# emulator (token, GET of the pool over HTTPS, 22 days of recent data: every
# window the decision reads, 14 days of calibration origins after the model's
# week of warm-up, so the recent range is read once; model
# load, forecast, drift, calibration, plan, decision record), next to the
# cold start of the workshop controller's Python stack
# (benches/reference_controller.py: pandas + scikit-learn + Azure SDK, a
# pickled model, no network call). Wall time and peak RSS, 5 runs each; then
# live decisions once a minute with a state file (past-origin results kept).
#
# usage: benches/controller_e2e.sh [WORK_DIR]
# The Python side uses the venv benches/compare.sh creates in the same WORK_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d "${TMPDIR:-/tmp}/mlscaler-e2e.XXXXXX")}
mkdir -p "$work"
cargo build --release --locked --bin mlscaler
# Separately: built together, mlscaler would get the emulator's dependency features.
cargo build --release --locked -p arm-emulator
bin=$PWD/target/release/mlscaler
emu=$PWD/target/release/arm-emulator
sub=00000000-0000-0000-0000-000000000001
cat >"$work/seed.json" <<JSON
{"operationDelayMs": 0, "clusters": [{"subscription": "$sub", "resourceGroup": "rg1", "name": "aks1",
  "pools": [{"name": "np1", "properties": {"count": 12, "vmSize": "Standard_D4s_v5", "mode": "User", "osType": "Linux"}}]}]}
JSON
python3 - "$work" <<'PY'
import sys
rows = open("data/worldcup98_requests_per_minute.csv").read().splitlines()
end = next(i for i, r in enumerate(rows) if r.startswith("1998-06-30 18:40:00"))
def write(name, last):
    open(sys.argv[1] + "/" + name, "w").write("\n".join([rows[0]] + rows[last - 22 * 1440 + 1 : last + 1]) + "\n")
write("recent.csv", end)
# The same window, a minute later each time: what consecutive scheduled runs read.
for k in range(10):
    write("recent-%d.csv" % k, end + k)
PY
(cd "$work" && "$bin" train --models models -q)
ARM_EMULATOR_CLIENT_SECRET=s3 "$emu" --seed "$work/seed.json" --dir "$work" --tenant t1 --client-id c1 --no-stdin-watch >"$work/emu.out" 2>"$work/emu.err" &
emu_pid=$!
trap 'kill $emu_pid 2>/dev/null || true' EXIT
until grep -q '^listening ' "$work/emu.out" 2>/dev/null; do sleep 0.1; done
url=$(sed -n 's/^listening //p' "$work/emu.out")
export MLSCALER_ARM_ENDPOINT=$url AZURE_AUTHORITY_HOST=$url MLSCALER_CA_CERT=$work/ca.pem AZURE_TENANT_ID=t1 AZURE_CLIENT_ID=c1 AZURE_CLIENT_SECRET=s3
target=/subscriptions/$sub/resourceGroups/rg1/providers/Microsoft.ContainerService/managedClusters/aks1/agentPools/np1
cd "$work"
for _ in 1 2 3 4 5; do
  /usr/bin/time -f "mlscaler scale --dry-run against the emulator: %e s wall, %M KiB" \
    "$bin" scale --data recent.csv --model count --target "$target" --capacity-per-node 4000 \
    --now 1998-06-30T18:40:00Z --dry-run -q --decisions d.jsonl 2>&1 >/dev/null | tail -1
done
for _ in 1 2 3 4 5; do
  MLSCALER_CA_CERT_MERGE=true /usr/bin/time -f "the same, the system's roots loaded too (--ca-cert-merge): %e s wall, %M KiB" \
    "$bin" scale --data recent.csv --model count --target "$target" --capacity-per-node 4000 \
    --now 1998-06-30T18:40:00Z --dry-run -q --decisions d.jsonl 2>&1 >/dev/null | tail -1
done
# Loop mode (on the clock, so the 1998 data is old news; what matters is
# round 1 against the later rounds): each round's own duration.
for where in "$target" sim:12; do
  "$bin" scale --data recent.csv --model count --target "$where" --capacity-per-node 4000 \
    --dry-run -q --decisions d.jsonl --output json --every 1s --jitter 0s --rounds 6 2>/dev/null |
    python3 -c 'import json, sys
print("loop mode, " + sys.argv[1] + ": rounds of", ", ".join("%.0f ms" % (json.loads(l)["duration_secs"] * 1000) for l in sys.stdin))' \
    "$([ "$where" = sim:12 ] && echo "simulated pool" || echo "ARM emulator")"
done
for _ in 1 2 3 4 5; do
  /usr/bin/time -f "mlscaler scale --dry-run, simulated pool (no ARM): %e s wall, %M KiB" \
    "$bin" scale --data recent.csv --model count --target sim:12 --capacity-per-node 4000 \
    --now 1998-06-30T18:40:00Z --dry-run -q --decisions d.jsonl 2>&1 >/dev/null | tail -1
done
# Live decisions (no --dry-run) with a state file, run once a minute as a
# schedule runs them: the first run forecasts every past origin of the drift
# and calibration windows and keeps the results in the state file; each
# later run reuses them and forecasts the one new origin.
for where in "$target" sim; do
  rm -f live-state.json
  for k in 0 1 2 3 4 5 6 7 8 9; do
    # Exit codes 4 and 5 (nothing to do, held) are decisions too.
    { /usr/bin/time -f "live decision, minute $k ($([ "$where" = sim ] && echo "simulated pool" || echo "ARM emulator")): %e s wall, %M KiB" \
      "$bin" scale --data "recent-$k.csv" --model count --target "$where" --capacity-per-node 4000 \
      --now "1998-06-30T18:4$k:00Z" --state live-state.json -q --decisions d.jsonl 2>&1 >/dev/null || true; } | tail -1
    python3 -c 'import json, sys; r = json.loads(open("d.jsonl").readlines()[-1]); print("  outcome:", r["outcome"])'
  done
done
if [ -x "$work/venv/bin/python" ]; then
  "$work/venv/bin/pip" install --quiet azure-identity==1.25.1 azure-mgmt-containerservice==39.1.0
  for _ in 1 2 3 4 5; do
    /usr/bin/time -f "python controller cold start (no network): %e s wall, %M KiB" \
      "$work/venv/bin/python" "$OLDPWD/benches/reference_controller.py" recent.csv model.pkl 2>&1 >/dev/null | tail -1
  done
else
  echo "no venv in $work: run benches/compare.sh $work first for the Python side"
fi
