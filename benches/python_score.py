"""crv.score on a pyarrow table against the command line scoring the same customers, in the same
run (the Python bindings' target: within 1.2x of the CLI). Needs the package installed
(tests/python/setup.sh) and a release build of crv:

    cargo build --release
    target/python-venv/bin/python benches/python_score.py target/release/crv 10000000

Generates the customers once (`crv gen -o x.parquet`, `crv import`) under target/bench-data, then
takes the median of 5 runs of each:
  cli            `crv score STORE -o scores.arrow` (open, score, tiers and ranks, write the file)
  py_store       crv.score(crv.Store(STORE)): the same store, memory-mapped, result as pyarrow
  py_table       crv.score(table) with the table already in memory (pyarrow.parquet.read_table):
                 scored from the table's own buffers (crv::arrow_scores)
  py_shuffled    the same rows in a random order (ids no longer ascend: duplicates are looked
                 for by sorting a copy of the ids)
The last line is JSON with the medians and the ratios to cli.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import random

import pyarrow as pa
import pyarrow.parquet as pq

import crv

CRV, ROWS = sys.argv[1], int(float(sys.argv[2]))
data = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "bench-data")
os.makedirs(data, exist_ok=True)
parquet = os.path.join(data, f"py-customers-{ROWS}.parquet")
store = os.path.join(data, f"py-customers-{ROWS}.crv")
if not os.path.exists(store):
    subprocess.run([CRV, "gen", "--customers", str(ROWS), "-o", parquet], check=True)
    subprocess.run([CRV, "import", parquet, "-o", store], check=True)


def median(run, repeats=5):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


with tempfile.TemporaryDirectory() as work:
    out = os.path.join(work, "scores.arrow")
    cli = median(lambda: subprocess.run([CRV, "score", store, "-o", out, "--force"], check=True,
                                        capture_output=True))
table = pq.read_table(parquet)
opened = crv.Store(store)
py_store = median(lambda: crv.score(opened))
py_table = median(lambda: crv.score(table))
order = list(range(table.num_rows))
random.Random(7).shuffle(order)
shuffled = table.take(pa.array(order))
del order
py_shuffled = median(lambda: crv.score(shuffled))
print(f"{ROWS} customers: cli {cli:.3f} s, crv.score(Store) {py_store:.3f} s "
      f"({py_store / cli:.2f}x), crv.score(table) {py_table:.3f} s ({py_table / cli:.2f}x), "
      f"shuffled {py_shuffled:.3f} s ({py_shuffled / cli:.2f}x)")
print(json.dumps({"rows": ROWS, "cli_s": cli, "py_store_s": py_store, "py_table_s": py_table,
                  "py_shuffled_s": py_shuffled, "py_shuffled_ratio": py_shuffled / cli,
                  "py_store_ratio": py_store / cli, "py_table_ratio": py_table / cli}))
