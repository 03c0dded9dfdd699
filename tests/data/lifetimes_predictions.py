"""Per-customer predictions of lifetimes 0.11.3 at the published CDNOW parameters, the
independent reference of tests/btyd.rs (`predictions_match_lifetimes`).

Run from the repository root: python3 tests/data/lifetimes_predictions.py
It writes tests/data/lifetimes_predictions.csv.
"""
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter

cdnow = pd.read_csv("tests/data/cdnow_summary.csv")
repeat = cdnow[cdnow.frequency > 0]
# Light, heavy and zero-repeat customers of the sample, and the histories of its extremes.
rows = pd.concat([
    cdnow[cdnow.frequency == 0].head(3),
    repeat[repeat.frequency == 1].head(3),
    repeat[repeat.frequency.between(2, 5)].head(4),
    repeat.sort_values("frequency", ascending=False).head(4),
    repeat.sort_values("recency").head(2),
    cdnow.loc[(cdnow.age - cdnow.recency).abs() < 0.5].head(2),
])
# Histories the sample lacks: recency equal to age, a new customer, a long-lived one.
extra = pd.DataFrame({
    "customer_id": [900001, 900002, 900003, 900004],
    "frequency": [5, 0, 12, 1],
    "recency": [30.0, 0.0, 60.0, 3.0],
    "age": [30.0, 1.0, 60.0, 100.0],
    "monetary_value": [40.0, 0.0, 18.5, 7.25],
})
rows = pd.concat([rows, extra]).drop_duplicates("customer_id")

bgf = BetaGeoFitter()
bgf.params_ = pd.Series({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
ggf = GammaGammaFitter()
ggf.params_ = pd.Series({"p": 6.25, "q": 3.74, "v": 15.44})

x, t_x, T = rows.frequency, rows.recency, rows.age
out = rows[["customer_id", "frequency", "recency", "age", "monetary_value"]].copy()
out["p_alive"] = bgf.conditional_probability_alive(x, t_x, T)
out["expected_purchases_10"] = bgf.conditional_expected_number_of_purchases_up_to_time(10, x, t_x, T)
out["expected_purchases_52"] = bgf.conditional_expected_number_of_purchases_up_to_time(52, x, t_x, T)
out["expected_spend"] = ggf.conditional_expected_average_profit(x, rows.monetary_value)
out.to_csv("tests/data/lifetimes_predictions.csv", index=False, float_format="%.12g")
print(out.to_string())
