"""Writes cdnow_holdout.csv and cdnow_weeks.csv (below): lifetimes' calibration_and_holdout_data on cdnow_transactions.csv
(days merged, time in weeks, calibration to 1997-09-30, observation to 1998-06-30).

Same-day purchases are summed first: lifetimes' monetary_value_holdout is the mean of the raw
holdout purchases, crv's the mean of the merged purchase days (like monetary_value); merging
beforehand makes lifetimes compute crv's definition and changes nothing else.
Run from the repository root: python3 tests/data/make_cdnow_holdout.py
"""

import pandas as pd
from lifetimes.utils import calibration_and_holdout_data

log = pd.read_csv("tests/data/cdnow_transactions.csv", dtype={"date": str})
log["date"] = pd.to_datetime(log["date"], format="%Y%m%d")
merged = log.groupby(["customer_id", "date"], as_index=False)["amount"].sum()
summary = calibration_and_holdout_data(
    merged, "customer_id", "date", calibration_period_end="1997-09-30",
    observation_period_end="1998-06-30", freq="D", freq_multiplier=7,
    monetary_value_col="amount",
)
summary = summary.rename(columns={
    "frequency_cal": "frequency", "recency_cal": "recency", "T_cal": "age",
    "monetary_value_cal": "monetary_value",
})
columns = ["frequency", "recency", "age", "monetary_value", "frequency_holdout",
           "monetary_value_holdout", "duration_holdout"]
summary[columns].sort_index().to_csv("tests/data/cdnow_holdout.csv", float_format="%.6f")

# cdnow_weeks.csv: the whole log merged by week (pandas' W: Monday to Sunday), time in weeks,
# observed to 1998-06-30: lifetimes' summary_data_from_transaction_data with freq="W".
from lifetimes.utils import summary_data_from_transaction_data  # noqa: E402

weeks = summary_data_from_transaction_data(
    log, "customer_id", "date", monetary_value_col="amount",
    observation_period_end="1998-06-30", freq="W",
).rename(columns={"T": "age"})
weeks[["frequency", "recency", "age", "monetary_value"]].sort_index().to_csv(
    "tests/data/cdnow_weeks.csv", float_format="%.6f")
