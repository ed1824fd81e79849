#!/usr/bin/env python3
"""Write one year of 1-minute load (525,600 rows) built from the bundled
WorldCup98 trace: the 87-day trace is tiled end to end, each repetition scaled
by a slow growth factor so the year is not four identical copies.

usage: make_year.py OUT.csv
"""
import csv
import datetime as dt
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "data", "worldcup98_requests_per_minute.csv")
ROWS = 525_600


def main(out):
    with open(SRC, newline="") as f:
        r = csv.reader(f)
        next(r)
        values = [int(row[1]) for row in r]
    start = dt.datetime(2025, 1, 1)
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", "requests"])
        for i in range(ROWS):
            rep, j = divmod(i, len(values))
            v = round(values[j] * (1.0 + 0.15 * rep))
            w.writerow([(start + dt.timedelta(minutes=i)).strftime("%Y-%m-%d %H:%M:%S"), v])


if __name__ == "__main__":
    main(sys.argv[1])
