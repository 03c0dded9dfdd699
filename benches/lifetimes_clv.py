"""lifetimes' 52-period customer lifetime value on the bench's generated customers, timed:
the baseline of `crv score --model` (benches/README.md, "Probabilistic CRV").

Usage (from the repository root, after `cargo bench --bench history` generated the data):
    python3 benches/lifetimes_clv.py target/bench-data/customers-1000000-42.csv
Prints the seconds lifetimes took and the total CLV; `crv score STORE --model M --horizon 52
--discount 0.01 --json` on the same customers reports its own time (`time_ms.score`).
"""
import sys
import time

import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter

customers = pd.read_csv(sys.argv[1], usecols=["frequency", "recency", "age", "monetary_value"])
bgf = BetaGeoFitter()
bgf.params_ = pd.Series({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
# `fit` sets this alias; the parameters here are set by hand.
bgf.predict = bgf.conditional_expected_number_of_purchases_up_to_time
ggf = GammaGammaFitter()
ggf.params_ = pd.Series({"p": 6.25, "q": 3.74, "v": 15.44})
x, t_x, T, m = customers.frequency, customers.recency, customers.age, customers.monetary_value
started = time.perf_counter()
clv = ggf.customer_lifetime_value(bgf, x, t_x, T, m, time=52, discount_rate=0.01, freq="M")
seconds = time.perf_counter() - started
print(f"lifetimes customer_lifetime_value: {len(customers)} customers, 52 periods, "
      f"{seconds:.2f} s, total {clv.sum():.2f}")
