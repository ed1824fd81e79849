#!/usr/bin/env python3
"""Write the wide Parquet file of the ingest benchmark: 10 columns, one row
per minute (a `timestamp` in milliseconds UTC and nine float64 metrics of
random load), written by pyarrow with its defaults (snappy, 1 Mi-row groups)
-- about 51 MB for the default 525,600 rows (a year).

usage: make_wide_parquet.py OUT.parquet [ROWS]
"""
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def main(out, rows):
    rng = np.random.default_rng(42)
    start = np.datetime64("2025-01-01T00:00:00", "ms")
    ts = start + np.arange(rows, dtype="int64") * np.timedelta64(60_000, "ms")
    cols = {"timestamp": pa.array(ts, type=pa.timestamp("ms", tz="UTC"))}
    for i in range(9):
        cols[f"m{i}"] = pa.array(rng.gamma(2.0, 50.0 * (i + 1), rows))
    pq.write_table(pa.table(cols), out, row_group_size=65_536)
    print(f"{out}: {rows} rows, 10 columns")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 525_600)
