#!/usr/bin/env python3
"""Reference for the controller's cold start: the workshop controller's stack.
Imports pandas, scikit-learn and the Azure SDK (azure-identity,
azure-mgmt-containerservice), loads a pickled scikit-learn model, reads the
recent load, predicts, and builds the AKS client. It makes no network call,
so it is a lower bound of what such a controller costs per run.

usage: reference_controller.py RECENT.csv MODEL.pkl   (creates MODEL.pkl if missing)
"""
import os
import pickle
import sys

import numpy as np
import pandas as pd
from azure.identity import ClientSecretCredential
from azure.mgmt.containerservice import ContainerServiceClient
from sklearn.linear_model import Ridge


def main(path, model_path):
    df = pd.read_csv(path)
    y = df.iloc[:, 1].astype(float).to_numpy()
    lags = np.column_stack([y[12 - k : len(y) - k] for k in range(12)])
    if not os.path.exists(model_path):
        with open(model_path, "wb") as f:
            pickle.dump(Ridge(alpha=1e-4).fit(lags[:-10], y[22:]), f)
    with open(model_path, "rb") as f:
        model = pickle.load(f)
    forecast = model.predict(lags[-1:])[0]
    cred = ClientSecretCredential("tenant", "client", "secret")
    ContainerServiceClient(cred, "00000000-0000-0000-0000-000000000001")
    print(f"forecast {forecast:.1f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
