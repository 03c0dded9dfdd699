"""Fits lifetimes' Pareto/NBD (ParetoNBDFitter) to the CSV benches/pnbd.rs writes
(frequency,recency,T) and prints the seconds the fit took; the last line is JSON
({"pnbd_s"}) for the bench to read.

    python3 benches/lifetimes_pnbd.py target/bench-data/pnbd-100000-42.csv
"""
import json
import sys
import time
import warnings

import pandas as pd
from lifetimes import ParetoNBDFitter

warnings.simplefilter("ignore")
data = pd.read_csv(sys.argv[1])

start = time.perf_counter()
pnbd = ParetoNBDFitter().fit(data["frequency"], data["recency"], data["T"])
pnbd_s = time.perf_counter() - start

print(f"lifetimes Pareto/NBD {pnbd_s:.2f} s on {len(data)} customers: "
      f"{dict(pnbd.params_.round(4))}")
print(json.dumps({"pnbd_s": pnbd_s}))
