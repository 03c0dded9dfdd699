"""crv on Apache Spark: score and select customers of a DataFrame too large for one machine.

Every computation is crv's own (the Rust code behind :func:`crv.score` and :func:`crv.select`),
run on each partition through ``DataFrame.mapInArrow``; the driver only merges small messages.
The wheel must be installed on every executor (see docs/python.md). Rows need the columns of
``crv import``: ``customer_id`` (whole numbers >= 0), ``margin``, ``retention`` and the optional
ones; ``cost`` (or the column named) for :func:`select`.

- :func:`score`: one pass builds every partition's histogram of CRVs (2,048 integer buckets,
  merged on the driver), a second ships only the customers in the (at most two) buckets that
  hold the tier cuts, and the cut points then tier every partition on its own: the tiers
  ``crv score`` gives on one machine, whatever the partitioning.
- :func:`select`: the exact knapsack (``crv::select::parts``): the break ratio by a distributed
  histogram and bisection over ``value / cost``, the Dantzig bound and the greedy lower bound,
  reduction by reduced cost in each partition, and the small core solved on the driver by crv's
  solver. Same proven optimum as ``crv select`` on one machine, independent of partitioning.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, Iterator, Optional

import pyarrow as pa

from . import _horizon, _native

__all__ = ["score", "select"]

# Python workers of a session started after this import run this interpreter (which has crv)
# unless PYSPARK_PYTHON says otherwise; on a cluster, set PYSPARK_PYTHON (or
# spark.pyspark.python) to the executors' Python with the wheel installed.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


def _bytes_column(values: list) -> pa.RecordBatch:
    return pa.record_batch([pa.array(values, pa.binary())], names=["part"])


def _collect(df, per_batch) -> list[bytes]:
    """Runs ``per_batch`` (a pyarrow RecordBatch to bytes) on every non-empty batch of every
    partition and brings the bytes to the driver."""

    def each(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows:
                yield _bytes_column([per_batch(batch)])

    return [bytes(row.part) for row in df.mapInArrow(each, "part binary").collect()]


def score(df, discount: float = 0.10, horizon: Any = 5, tier_cuts: tuple[float, float] = (0.80, 0.95)):
    """A DataFrame of ``customer_id`` (long), ``crv`` (float) and ``tier`` (string) for every row
    of ``df``: the CRV and tier ``crv score`` gives each customer on one machine.

    Two small distributed passes find the global tier cut points (a histogram per partition,
    then the customers of the cut buckets); the returned DataFrame applies them per partition,
    lazily. Ranks and percentiles need a global sort: use Spark's own window functions on ``crv``
    (descending, ties by ``customer_id``) if you need them.
    """
    h = _horizon(horizon)
    d = float(discount)
    cuts = tuple(map(float, tier_cuts))
    parts = _collect(df, lambda b: _native.tier_histogram(b, d, h))
    if not parts:
        raise _native.CrvError("the DataFrame has no rows")
    histogram, buckets = _native.merge_histograms(parts, cuts)
    boundaries = _collect(df, lambda b: _native.tier_boundary(b, d, h, buckets))
    ends = _native.tier_ends(histogram, cuts, boundaries)

    def tiers(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows:
                yield _native.part_tiers(batch, d, h, ends)

    return df.mapInArrow(tiers, "customer_id long, crv float, tier string")


def select(
    df,
    budget: float,
    cost: str = "cost",
    value: str = "crv",
    discount: float = 0.10,
    horizon: Any = 5,
    resource_scale: float = 100.0,
    time_limit: float = 60.0,
    core_limit: Optional[int] = None,
) -> dict[str, Any]:
    """The exact knapsack over ``df``: the customers whose ``cost`` sums to at most ``budget``
    with the largest total ``value`` (``"crv"``: each customer's CRV, as ``crv select``; or any
    numeric column). Filter the DataFrame first to restrict who may be chosen.

    Returns the summary of ``crv select --json`` (``selected``, ``total_crv``, ``total_cost``,
    ``budget_left``, ``upper_bound``, ``gap``, ``optimal``, ``core_items``, ...), ``passes``
    (each distributed pass: its question and seconds) and ``targets``, a lazy DataFrame of the
    chosen ``customer_id``s. ``core_limit`` caps the customers shipped to the driver (default 1%
    of the rows); beyond it the answer carries a certified gap instead of a proof.
    """
    h = _horizon(horizon)
    d = float(discount)
    scale = float(resource_scale)
    driver = _native.KnapsackDriver(float(budget), scale, float(time_limit), core_limit)
    capacity = driver.capacity
    question = driver.start()
    passes = []
    while True:
        started = time.perf_counter()
        asked = question
        answers = _collect(
            df, lambda b: _native.knapsack_answer(b, d, h, value, cost, scale, capacity, asked)
        )
        if not answers:
            raise _native.CrvError("the DataFrame has no rows")
        question, summary, chosen = driver.step(answers)
        passes.append({"seconds": time.perf_counter() - started, "answer_bytes": sum(map(len, answers))})
        if question is None:
            break
    result = json.loads(summary)
    result["passes"] = passes

    def pick(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows:
                yield _native.knapsack_chosen(batch, d, h, value, cost, scale, capacity, chosen)

    result["targets"] = df.mapInArrow(pick, "customer_id long")
    return result
