"""crv: customer relationship value for Python.

Score customers held in any Arrow table (pyarrow, polars, pandas through ``pyarrow.Table.from_pandas``)
or in a crv store file, sort them into value tiers, and pick the customers a campaign should target
under a budget with a proven optimum. The numbers are the ``crv`` command line's: the same Rust
code computes them, with the GIL released. ``crv.spark`` does the same over a Spark DataFrame.

Columns are those of ``crv import``: ``customer_id`` (whole numbers >= 0), ``margin`` and
``retention`` (required), the optional ``retention_cost``, ``development_cost``,
``acquisition_cost``, ``referral_value``, ``competence_value`` and ``cost``, and any other numeric
or text attribute for ``where=`` filters.
"""

from __future__ import annotations

import json
import math
from typing import Any, Union

from . import _native
from ._native import CrvError, Store

__all__ = ["CrvError", "Store", "score", "select"]

#: A horizon: a whole number of periods >= 1, or ``"inf"`` / ``math.inf`` for no end.
Horizon = Union[int, str, float]


def _horizon(horizon: Horizon) -> str:
    """The horizon as the command line's ``--horizon`` reads it."""
    if isinstance(horizon, float):
        if math.isinf(horizon) and horizon > 0:
            return "inf"
        if horizon.is_integer():
            return str(int(horizon))
    return str(horizon)


def score(
    customers: Any,
    discount: float = 0.10,
    horizon: Horizon = 5,
    tier_cuts: tuple[float, float] = (0.80, 0.95),
):
    """Every customer's CRV, tier, rank and percentile, as ``crv score -o`` writes them.

    ``customers`` is an Arrow table or record batch (anything with ``__arrow_c_stream__`` or
    ``__arrow_c_array__``: pyarrow, polars, ...) or a :class:`Store`. Returns a
    ``pyarrow.Table`` with ``customer_id`` (uint64), ``crv`` (float32), ``tier`` (``A``, ``B``,
    ``C`` or ``N``), ``rank`` (uint32, 1 the highest CRV, ties by id) and ``percentile``
    (float32), in the input's row order. Tiers cut the positive value at ``tier_cuts`` (80% and
    95% by default). Raises :class:`CrvError` with the command line's message on bad input.
    """
    return _native.score(customers, float(discount), _horizon(horizon), tuple(map(float, tier_cuts)))


def select(
    customers: Any,
    budget: float,
    cost: str = "cost",
    where: str = "",
    discount: float = 0.10,
    horizon: Horizon = 5,
    resource_scale: float = 100.0,
    time_limit: float = 60.0,
) -> dict[str, Any]:
    """The customers to target under ``budget``: the exact knapsack of ``crv select``.

    Maximises the total CRV of the chosen customers whose ``cost`` column sums to at most
    ``budget`` (costs rounded up, the budget down, to ``1 / resource_scale``), among those
    ``where`` admits (the ``--where`` language, e.g. ``"tier in (A, B) and region = north"``).
    Returns the summary of ``crv select --json`` (``selected``, ``total_crv``, ``total_cost``,
    ``budget_left``, ``upper_bound``, ``gap``, ``optimal``, ...) with ``customer_ids``, the
    chosen ids as a ``pyarrow.ChunkedArray`` (uint64, in input order).
    """
    summary, chosen = _native.select(
        customers,
        float(budget),
        cost,
        where,
        float(discount),
        _horizon(horizon),
        float(resource_scale),
        float(time_limit),
    )
    result = json.loads(summary)
    result["customer_ids"] = chosen.column("customer_id")
    return result
