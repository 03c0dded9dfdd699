"""Fits lifetimes' BG/NBD and Gamma-Gamma to the CSV benches/btyd.rs writes
(frequency,recency,T,monetary_value) and prints the seconds each fit took; the last line is
JSON ({"bgnbd_s", "gamma_gamma_s", "total_s"}) for the bench to read.

    python3 benches/lifetimes_fit.py target/bench-data/btyd-1000000-42.csv
"""
import json
import sys
import time
import warnings

import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter

warnings.simplefilter("ignore")
data = pd.read_csv(sys.argv[1])
repeat = data[data.frequency > 0]

start = time.perf_counter()
bgf = BetaGeoFitter().fit(data["frequency"], data["recency"], data["T"])
bgnbd_s = time.perf_counter() - start

start = time.perf_counter()
ggf = GammaGammaFitter().fit(repeat.frequency, repeat.monetary_value)
gamma_gamma_s = time.perf_counter() - start

print(f"lifetimes BG/NBD {bgnbd_s:.2f} s: {dict(bgf.params_.round(4))}")
print(f"lifetimes Gamma-Gamma {gamma_gamma_s:.2f} s: {dict(ggf.params_.round(4))}")
print(json.dumps({"bgnbd_s": bgnbd_s, "gamma_gamma_s": gamma_gamma_s,
                  "total_s": bgnbd_s + gamma_gamma_s}))
