"""The 52-period customer lifetime value of every CDNOW customer by lifetimes 0.11.3, at the
published parameters: the independent reference of `crv score --model` (tests/score_model.rs).

lifetimes' `GammaGammaFitter.customer_lifetime_value(model, x, t_x, T, m, time, discount_rate,
freq="M")` sums, for t = 1..time, E[spend] (E[N(t)] - E[N(t-1)]) / (1 + d)^t, one time unit per
period with freq="M": docs/model.md's probabilistic CRV with a margin rate of 1.

Run from the repository root: python3 tests/data/lifetimes_clv.py
It writes tests/data/lifetimes_clv.csv.
"""
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter, ParetoNBDFitter

cdnow = pd.read_csv("tests/data/cdnow_summary.csv")
bgf = BetaGeoFitter()
bgf.params_ = pd.Series({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
pnbd = ParetoNBDFitter()
pnbd.params_ = pd.Series({"r": 0.5534, "alpha": 10.5802, "s": 0.6061, "beta": 11.6562})
ggf = GammaGammaFitter()
ggf.params_ = pd.Series({"p": 6.25, "q": 3.74, "v": 15.44})

x, t_x, T, m = cdnow.frequency, cdnow.recency, cdnow.age, cdnow.monetary_value
out = cdnow[["customer_id"]].copy()
for name, model in [("bgnbd", bgf), ("pnbd", pnbd)]:
    # `fit` sets this alias; the parameters here are set by hand.
    model.predict = model.conditional_expected_number_of_purchases_up_to_time
    clv = ggf.customer_lifetime_value(model, x, t_x, T, m, time=52, discount_rate=0.01, freq="M")
    out[f"crv_{name}"] = clv.values
out.to_csv("tests/data/lifetimes_clv.csv", index=False, float_format="%.12g")
print(out.describe().to_string())
