#!/usr/bin/env python3
"""Per-customer Pareto/NBD predictions by lifetimes' ParetoNBDFitter (lifetimes 0.11.3, an
established implementation independent of crv's), at the CDNOW estimates published with the
BTYD R package and lifetimes' documentation (r 0.5534, alpha 10.5802, s 0.6061,
beta 11.6562), for a spread of CDNOW customers: P(alive) and expected purchases in the next
52 weeks. Also prints lifetimes' own maximum-likelihood fit and the summed log-likelihood.

Run from the repository root: python3 tests/data/pnbd_lifetimes.py
"""
import numpy as np
import pandas as pd
from lifetimes import ParetoNBDFitter

PARAMS = {"r": 0.5534, "alpha": 10.5802, "s": 0.6061, "beta": 11.6562}

data = pd.read_csv("tests/data/cdnow_summary.csv")
fitter = ParetoNBDFitter()
fitter.params_ = pd.Series(PARAMS)
params = [PARAMS[k] for k in ("r", "alpha", "s", "beta")]
ll = ParetoNBDFitter._conditional_log_likelihood(
    params, data.frequency.values, data.recency.values, data.age.values).sum()
print("summed log-likelihood at the published estimates:", repr(ll))

rows = data.iloc[list(range(0, 2357, 59)) + [data.frequency.idxmax()]]
out = pd.DataFrame({
    "customer_id": rows.customer_id,
    "frequency": rows.frequency,
    "recency": rows.recency,
    "age": rows.age,
    "p_alive": [fitter.conditional_probability_alive(f, r, t)
                for f, r, t in zip(rows.frequency, rows.recency, rows.age)],
    "expected_52": [fitter.conditional_expected_number_of_purchases_up_to_time(52, f, r, t)
                    for f, r, t in zip(rows.frequency, rows.recency, rows.age)],
})
out.to_csv("tests/data/pnbd_lifetimes_cdnow.csv", index=False, float_format="%.17g")

mle = ParetoNBDFitter().fit(data.frequency, data.recency, data.age)
print("lifetimes' own fit:", mle.params_.to_dict())
print("its summed log-likelihood:", repr(ParetoNBDFitter._conditional_log_likelihood(
    list(mle.params_.values), data.frequency.values, data.recency.values, data.age.values).sum()))
