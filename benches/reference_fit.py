#!/usr/bin/env python3
"""Reference for the training benchmark: what the same job costs in the usual
Python stack. Reads a 1-minute load CSV, builds 47 lag/calendar features with
pandas (11 lags, same time yesterday and last week for each of 10 horizons,
rolling mean/std/max over 1 h and 1 day, time-of-day and day-of-week terms),
and fits one scikit-learn Ridge model per horizon (10 direct horizons).

usage: reference_fit.py DATA.csv
"""
import sys
import time

import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge

H = 10


def main(path):
    t0 = time.perf_counter()
    df = pd.read_csv(path, parse_dates=["timestamp"])
    y = df["requests"].astype(float)
    feats = {}
    for k in range(11):
        feats[f"lag_{k}"] = y.shift(k)
    for period, name in ((1440, "day"), (10080, "week")):
        for h in range(1, H + 1):
            feats[f"{name}_h{h}"] = y.shift(period - h)
    for w in (60, 1440):
        r = y.rolling(w)
        feats[f"roll{w}_mean"] = r.mean()
        feats[f"roll{w}_std"] = r.std()
        feats[f"roll{w}_max"] = r.max()
    minute = df["timestamp"].dt.hour * 60 + df["timestamp"].dt.minute
    for k in (1, 2):
        feats[f"tod_sin{k}"] = np.sin(2 * np.pi * k * minute / 1440)
        feats[f"tod_cos{k}"] = np.cos(2 * np.pi * k * minute / 1440)
    X = pd.DataFrame(feats)
    X["dow"] = df["timestamp"].dt.day_of_week
    X = pd.get_dummies(X, columns=["dow"], drop_first=True, dtype=float)
    assert X.shape[1] == 47, X.shape
    t1 = time.perf_counter()
    targets = pd.concat({h: y.shift(-h) for h in range(1, H + 1)}, axis=1)
    ok = X.notna().all(axis=1) & targets.notna().all(axis=1)
    Xv, Tv = X[ok].to_numpy(), targets[ok].to_numpy()
    for h in range(H):
        Ridge(alpha=1e-4).fit(Xv, Tv[:, h])
    t2 = time.perf_counter()
    print(f"rows={len(df)} features={X.shape[1]} horizons={H} features_s={t1 - t0:.2f} fit_s={t2 - t1:.2f} total_s={t2 - t0:.2f}")


if __name__ == "__main__":
    main(sys.argv[1])
