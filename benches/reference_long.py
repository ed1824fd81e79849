#!/usr/bin/env python3
"""Reference for the long-table benchmark (`ingest/long_parquet_three_hosts`
in benches/ingest.rs): the same long table, the WorldCup98 requests per
minute spread over three hosts (1/2, 3/10, 1/5) with an `errors` metric beside
them, written as Parquet in row groups of a day; then pyarrow reads it back
with the metric filter, sums each host's rows per minute and the hosts per
minute, as `--filter metric=requests --series-column host --aggregate sum`.

usage: reference_long.py WORLDCUP_CSV OUT.parquet [RUNS]
"""
import csv
import datetime as dt
import sys
import time

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


def build(source, out):
    times, hosts, metrics, values = [], [], [], []
    with open(source, newline="") as f:
        for row in csv.DictReader(f):
            at = dt.datetime.strptime(row["period"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.timezone.utc)
            v = float(row["count"])
            for host, share in (("web-0", 0.5), ("web-1", 0.3), ("web-2", 0.2)):
                for metric, x in (("requests", v * share), ("errors", float(int(v * share * 0.01)))):
                    times.append(at)
                    hosts.append(host)
                    metrics.append(metric)
                    values.append(x)
    table = pa.table(
        {
            "time": pa.array(times, type=pa.timestamp("ms")),
            "host": hosts,
            "metric": metrics,
            "value": values,
        }
    )
    pq.write_table(table, out, row_group_size=1440 * 6)
    return table.num_rows


def read(path):
    t0 = time.perf_counter()
    table = pq.read_table(path, columns=["time", "host", "metric", "value"], filters=[("metric", "=", "requests")])
    per_host = table.group_by(["time", "host"]).aggregate([("value", "sum")])
    per_minute = per_host.group_by("time").aggregate([("value_sum", "sum")]).sort_by("time")
    total = pc.sum(per_minute["value_sum_sum"]).as_py()
    return time.perf_counter() - t0, per_minute.num_rows, total


if __name__ == "__main__":
    rows = build(sys.argv[1], sys.argv[2])
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    for _ in range(runs):
        secs, minutes, total = read(sys.argv[2])
        print(f"pyarrow long table ({rows} rows): {minutes} minutes, sum={total:.1f}, read_s={secs:.3f}")
