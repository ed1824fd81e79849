#!/usr/bin/env python3
"""Reference for the CSV benchmarks of benches/ingest.rs, through polars:

- `ingest/metric_csv_worldcup98`: the bundled WorldCup98 CSV (`period`,
  `count`) read with the time parsed, as `read_table` does;
- `ingest/long_csv_three_hosts`: the same long table as the Rust bench (the
  trace spread over three hosts, 1/2, 3/10, 1/5, with an `errors` metric
  beside them: 751,800 rows of `time,host,metric,value`, RFC 3339 times),
  read, filtered to `requests` and summed per minute, as
  `--filter metric=requests --series-column host --aggregate sum`.

Each is timed with the time format given (`%Y-%m-%d %H:%M:%S`, RFC 3339)
and with polars inferring it (`try_parse_dates`). The CSV is in memory, as
the Rust bench's is. Prints one line per run.

usage: reference_csv.py WORLDCUP_CSV [RUNS]
"""
import datetime as dt
import io
import sys
import time

import polars as pl


def long_csv(source):
    out = ["time,host,metric,value"]
    with open(source, newline="") as f:
        next(f)
        for line in f:
            period, count = line.rstrip("\n").split(",")
            at = dt.datetime.strptime(period, "%Y-%m-%d %H:%M:%S").strftime("%Y-%m-%dT%H:%M:%SZ")
            v = float(count)
            for host, share in (("web-0", 0.5), ("web-1", 0.3), ("web-2", 0.2)):
                for metric, x in (("requests", v * share), ("errors", float(int(v * share * 0.01)))):
                    out.append(f"{at},{host},{metric},{x}")
    return ("\n".join(out) + "\n").encode()


def timed(f):
    t0 = time.perf_counter()
    result = f()
    return time.perf_counter() - t0, result


def worldcup(data, infer):
    if infer:
        df = pl.read_csv(io.BytesIO(data), try_parse_dates=True)
    else:
        df = pl.read_csv(io.BytesIO(data)).with_columns(
            pl.col("period").str.to_datetime("%Y-%m-%d %H:%M:%S", time_zone="UTC")
        )
    return df.height


def long_sum(data, infer):
    if infer:
        lf = pl.read_csv(io.BytesIO(data), try_parse_dates=True).lazy()
    else:
        lf = (
            pl.read_csv(io.BytesIO(data))
            .lazy()
            .with_columns(pl.col("time").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC"))
        )
    per_minute = (
        lf.filter(pl.col("metric") == "requests")
        .group_by("time")
        .agg(pl.col("value").sum())
        .sort("time")
        .collect()
    )
    return per_minute.height


if __name__ == "__main__":
    source = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    with open(source, "rb") as f:
        wc = f.read()
    long = long_csv(source)
    print(f"polars {pl.__version__}, threads {pl.thread_pool_size()}; long table: {len(long)} bytes of CSV")
    for _ in range(runs):
        for infer in (False, True):
            how = "inferred" if infer else "given"
            secs, rows = timed(lambda: worldcup(wc, infer))
            print(f"polars WorldCup98 CSV, time format {how}: {rows} rows, read_s={secs:.4f}")
            secs, minutes = timed(lambda: long_sum(long, infer))
            print(f"polars long CSV, time format {how}: {minutes} minutes, read_s={secs:.3f}")
