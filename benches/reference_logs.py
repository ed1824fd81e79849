#!/usr/bin/env python3
"""Reference for the raw-log ingest benchmark: the usual pandas way of turning
the workshop's logs into a load series per interval (time-weighted concurrent
sessions and running jobs, arrivals, completions, mean duration).

usage: reference_logs.py LOGS.txt [STEP_SECONDS]
"""
import sys
import time

import pandas as pd


def main(path, step):
    t0 = time.perf_counter()
    df = pd.read_csv(path, sep="\t", header=None, usecols=[0, 1, 3], names=["ts", "id", "msg"])
    df["ts"] = pd.to_datetime(df["ts"])
    df["is_start"] = df["msg"].str.endswith("Start")
    df["is_session"] = df["msg"].str.startswith("End User Session")
    starts = df[df["is_start"]].set_index("id")
    ends = df[~df["is_start"]].set_index("id")
    pairs = starts[["ts", "is_session"]].join(ends[["ts"]], rsuffix="_end", how="inner")
    freq = f"{step}s"
    t_min = df["ts"].min().floor(freq)
    t_max = df["ts"].max().floor(freq)
    index = pd.date_range(t_min, t_max, freq=freq)
    out = pd.DataFrame(index=index)
    for name, sel in (("sessions", pairs["is_session"]), ("jobs", ~pairs["is_session"])):
        p = pairs[sel]
        # Time-weighted concurrency: +1 at start, -1 at end, integrate per bucket.
        ev = pd.concat([pd.Series(1.0, index=p["ts"]), pd.Series(-1.0, index=p["ts_end"])]).sort_index()
        level = ev.cumsum()
        seconds = ev.index.to_series().diff().shift(-1).dt.total_seconds().fillna(0)
        weighted = (level * seconds.values).resample(freq).sum()
        out[name] = weighted.reindex(index, fill_value=0) / step
    out["arrivals"] = starts["ts"].dt.floor(freq).value_counts().reindex(index, fill_value=0)
    out["completions"] = ends["ts"].dt.floor(freq).value_counts().reindex(index, fill_value=0)
    dur = (pairs["ts_end"] - pairs["ts"]).dt.total_seconds()
    out["mean_duration_s"] = dur.groupby(pairs["ts_end"].dt.floor(freq)).mean().reindex(index)
    t1 = time.perf_counter()
    print(f"lines={len(df)} intervals={len(out)} total_s={t1 - t0:.2f}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 300)
