#!/usr/bin/env python3
"""Reference for the Parquet ingest benchmark: pyarrow reads two columns
(`timestamp` and one metric) of the wide file, optionally only the rows at or
after a time (row groups pruned by their statistics, like `scale` reading its
recent window).

usage: reference_parquet.py FILE.parquet [METRIC] [SINCE_ISO]
"""
import sys
import time

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


def main(path, metric, since):
    t0 = time.perf_counter()
    filters = None
    if since:
        filters = [("timestamp", ">=", pa.scalar(since, type=pa.timestamp("ms", tz="UTC")))]
    table = pq.read_table(path, columns=["timestamp", metric], filters=filters)
    total = pc.sum(table[metric]).as_py()
    t1 = time.perf_counter()
    print(f"rows={table.num_rows} sum={total:.1f} read_s={t1 - t0:.3f}")


if __name__ == "__main__":
    import datetime as dt

    since = None
    if len(sys.argv) > 3:
        since = dt.datetime.fromisoformat(sys.argv[3].replace("Z", "+00:00"))
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "m0", since)
