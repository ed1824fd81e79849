#!/usr/bin/env python3
"""Write the Azure Monitor sample under data/azure-monitor: what a
Diagnostic setting ("AllMetrics" to a storage account) leaves in the
container insights-metrics-pt1m for three VMs over three hours, laid out and
formatted as Azure does (one PT1H.json append blob per resource and hour,
JSON lines, one record per metric and minute).

The load is the WorldCup98 trace (data/worldcup98_requests_per_minute.csv)
of 1998-06-30 18:00-20:59 moved to 2026-11-30, spread over the three VMs:
"Percentage CPU" at 45,000 requests per minute per fully busy VM, and
"Network In Total" at 2 KB per request. Deterministic: running it again
writes the same bytes.

usage: benches/make_azure_monitor_sample.py [OUT_DIR]   (default data/azure-monitor)
"""
import csv
import json
import os
import sys
from datetime import datetime, timedelta, timezone

SUB = "00000000-0000-0000-0000-000000000000"
RG = "RG-SHOP"
VMS = ["SHOP-VM-0", "SHOP-VM-1", "SHOP-VM-2"]
SHARE = [0.36, 0.33, 0.31]  # the load balancer is not quite even
SRC_START = "1998-06-30 18:00:00"
DST_START = datetime(2026, 11, 30, 18, 0, tzinfo=timezone.utc)
HOURS = 3


def resource_id(vm):
    return f"/SUBSCRIPTIONS/{SUB}/RESOURCEGROUPS/{RG}/PROVIDERS/MICROSOFT.COMPUTE/VIRTUALMACHINES/{vm}"


def record(vm, t, name, samples):
    # Azure's field order; times with seven fractional digits and a Z.
    total = round(sum(samples), 4)
    return json.dumps(
        {
            "count": len(samples),
            "total": total,
            "minimum": round(min(samples), 4),
            "maximum": round(max(samples), 4),
            "average": round(total / len(samples), 4),
            "resourceId": resource_id(vm),
            "time": t.strftime("%Y-%m-%dT%H:%M:%S.0000000Z"),
            "metricName": name,
            "timeGrain": "PT1M",
        },
        separators=(",", ":"),
    )


def main(out):
    here = os.path.dirname(os.path.abspath(__file__))
    trace = os.path.join(here, "..", "data", "worldcup98_requests_per_minute.csv")
    with open(trace, newline="") as f:
        rows = list(csv.reader(f))[1:]
    start = next(i for i, r in enumerate(rows) if r[0] == SRC_START)
    load = [float(r[1]) for r in rows[start : start + 60 * HOURS]]
    for v, vm in enumerate(VMS):
        for h in range(HOURS):
            t0 = DST_START + timedelta(hours=h)
            folder = os.path.join(
                out,
                "insights-metrics-pt1m",
                f"resourceId=/SUBSCRIPTIONS/{SUB}/RESOURCEGROUPS/{RG}/PROVIDERS/MICROSOFT.COMPUTE/VIRTUALMACHINES/{vm}",
                f"y={t0:%Y}/m={t0:%m}/d={t0:%d}/h={t0:%H}/m=00",
            )
            os.makedirs(folder, exist_ok=True)
            lines = []
            for m in range(60):
                t = t0 + timedelta(minutes=m)
                req = load[h * 60 + m] * SHARE[v]
                # Four 15-second samples per minute, a little uneven.
                cpu = [min(100.0, req / 45_000 * 100 * (1 + 0.02 * ((m + k + v) % 3 - 1))) for k in range(4)]
                lines.append(record(vm, t, "Percentage CPU", cpu))
                lines.append(record(vm, t, "Network In Total", [req * 2048]))
            with open(os.path.join(folder, "PT1H.json"), "w", newline="\n") as f:
                f.write("\n".join(lines) + "\n")
    print(f"wrote {len(VMS) * HOURS} blobs under {out}/insights-metrics-pt1m")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "data", "azure-monitor"))
