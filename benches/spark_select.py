"""crv.spark.select on a local Spark (local[2]) over generated customers: the proven optimum,
the customers shipped to the driver (the core, target: under 1% of the rows), and the seconds
of each distributed pass; then `crv select` on one machine over the same customers, for the
same optimum. Needs the package installed (tests/python/setup.sh) and a release build:

    cargo build --release
    target/python-venv/bin/python benches/spark_select.py target/release/crv 100000000

Generates the customers once with `crv gen -o x.parquet` under target/bench-data (1e8 customers:
about 5 GB) and imports them for the single-machine run. The last line is JSON.
"""
import json
import os
import subprocess
import sys
import time

from pyspark.sql import SparkSession

import crv.spark

CRV, ROWS = sys.argv[1], int(float(sys.argv[2]))
BUDGET = ROWS / 2
data = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "bench-data")
os.makedirs(data, exist_ok=True)
parquet = os.path.join(data, f"spark-customers-{ROWS}.parquet")
store = os.path.join(data, f"spark-customers-{ROWS}.crv")
if not os.path.exists(parquet):
    subprocess.run([CRV, "gen", "--customers", str(ROWS), "-o", parquet], check=True)

spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
         .config("spark.driver.memory", "4g").getOrCreate())
df = spark.read.parquet(parquet)
started = time.perf_counter()
plan = crv.spark.select(df, budget=BUDGET, cost="cost")
spark_s = time.perf_counter() - started
for i, p in enumerate(plan["passes"]):
    print(f"pass {i + 1}: {p['seconds']:.1f} s, {p['answer_bytes']} bytes to the driver")
print(f"crv.spark.select: {spark_s:.1f} s, optimal {plan['optimal']}, total_crv "
      f"{plan['total_crv']:.2f}, core {plan['core_items']} customers "
      f"({100 * plan['core_items'] / ROWS:.4f}% of {ROWS})")
spark.stop()

if not os.path.exists(store):
    subprocess.run([CRV, "import", parquet, "-o", store], check=True)
started = time.perf_counter()
out = subprocess.run([CRV, "select", store, "--budget", str(BUDGET), "--json"], check=True,
                     capture_output=True, text=True)
cli_s = time.perf_counter() - started
cli = json.loads(out.stdout.strip().splitlines()[-1])
same = abs(cli["total_crv"] - plan["total_crv"]) <= 1e-9 * abs(cli["total_crv"])
print(f"crv select: {cli_s:.1f} s, total_crv {cli['total_crv']:.2f}, same optimum: {same}")
print(json.dumps({"rows": ROWS, "spark_s": spark_s, "passes": [p["seconds"] for p in plan["passes"]],
                  "core_items": plan["core_items"], "optimal": plan["optimal"],
                  "cli_s": cli_s, "same_optimum": same}))
