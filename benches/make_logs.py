#!/usr/bin/env python3
"""Write a large raw log in the workshop's format by repeating the bundled
day of logs (data/agilethought_logs.txt) on consecutive days with fresh ids.

usage: make_logs.py OUT.txt DAYS
"""
import datetime as dt
import os
import sys
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "data", "agilethought_logs.txt")


def main(out, days):
    lines = []
    with open(SRC) as f:
        for line in f:
            ts, ident, rest = line.split("\t", 2)
            lines.append((dt.datetime.strptime(ts, "%Y-%m-%d %H:%M:%S"), ident, rest))
    with open(out, "w") as f:
        for d in range(days):
            shift = dt.timedelta(days=d)
            ids = {}
            for ts, ident, rest in lines:
                new = ids.setdefault(ident, str(uuid.UUID(int=(d << 64) + len(ids) + 1)))
                f.write(f"{(ts + shift).strftime('%Y-%m-%d %H:%M:%S')}\t{new}\t{rest}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
