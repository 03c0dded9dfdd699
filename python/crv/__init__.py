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
import os
from typing import Any, Optional, Union

from . import _native
from ._native import CrvError, Store

__all__ = ["CrvError", "Store", "score", "select", "fit", "optimise"]

#: A path to a file: ``str`` or ``os.PathLike``.
Path = Union[str, os.PathLike]

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


def _path(path: Optional[Path]) -> Optional[str]:
    return None if path is None else os.fspath(path)


def _margin_rate(margin_rate: Optional[float]) -> Optional[float]:
    return None if margin_rate is None else float(margin_rate)


def score(
    customers: Any,
    discount: float = 0.10,
    horizon: Horizon = 5,
    tier_cuts: tuple[float, float] = (0.80, 0.95),
    model: Optional[Path] = None,
    margin_rate: Optional[float] = None,
):
    """Every customer's CRV, tier, rank and percentile, as ``crv score -o`` writes them.

    ``customers`` is an Arrow table or record batch (anything with ``__arrow_c_stream__`` or
    ``__arrow_c_array__``: pyarrow, polars, ...) or a :class:`Store`. Returns a
    ``pyarrow.Table`` with ``customer_id`` (uint64, or string for text ids), ``crv`` (float32),
    ``tier`` (``A``, ``B``, ``C`` or ``N``), ``rank`` (uint32, 1 the highest CRV, ties by id)
    and ``percentile`` (float32), in the input's row order. Tiers cut the positive value at
    ``tier_cuts`` (80% and 95% by default).

    With ``model`` (a ``model.json`` from :func:`fit` or ``crv fit``), customers are valued
    from their purchase histories (``frequency``, ``recency``, ``age``, ``monetary_value``)
    as ``crv score --model`` values them, each purchase worth ``margin_rate`` (default 1) of
    its expected spend; the table then also has ``p_alive``, ``expected_purchases`` and
    ``expected_spend``. Raises :class:`CrvError` with the command line's message on bad input.
    """
    return _native.score(
        customers,
        float(discount),
        _horizon(horizon),
        tuple(map(float, tier_cuts)),
        _path(model),
        _margin_rate(margin_rate),
    )


def select(
    customers: Any,
    budget: float,
    cost: str = "cost",
    where: str = "",
    discount: float = 0.10,
    horizon: Horizon = 5,
    resource_scale: float = 100.0,
    time_limit: float = 60.0,
    model: Optional[Path] = None,
    margin_rate: Optional[float] = None,
) -> dict[str, Any]:
    """The customers to target under ``budget``: the exact knapsack of ``crv select``.

    Maximises the total CRV of the chosen customers whose ``cost`` column sums to at most
    ``budget`` (costs rounded up, the budget down, to ``1 / resource_scale``), among those
    ``where`` admits (the ``--where`` language, e.g. ``"tier in (A, B) and region = north"``).
    Returns the summary of ``crv select --json`` (``selected``, ``total_crv``, ``total_cost``,
    ``budget_left``, ``upper_bound``, ``gap``, ``optimal``, ...) with ``customer_ids``, the
    chosen ids as a ``pyarrow.ChunkedArray`` (uint64, or string for text ids, in input order).
    ``model`` and ``margin_rate`` value the customers as in :func:`score`.
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
        _path(model),
        _margin_rate(margin_rate),
    )
    result = json.loads(summary)
    result["customer_ids"] = chosen.column("customer_id")
    return result


def fit(
    customers: Any,
    model: str = "bgnbd",
    spend: Optional[str] = None,
    time_unit: Optional[str] = None,
    output: Optional[Path] = None,
) -> dict[str, Any]:
    """A purchase model fitted to the customers' purchase histories, as ``crv fit`` fits it.

    ``customers`` (a table or :class:`Store`) has ``frequency`` (repeat purchases), ``recency``
    (time of the last purchase after the first), ``age`` (time since the first purchase; or a
    column ``T``) and, for ``spend="gamma-gamma"``, ``monetary_value`` (mean repeat spend), as
    ``crv rfm`` writes them from a purchase log. ``model`` is ``"bgnbd"`` (BG/NBD) or
    ``"pnbd"`` (Pareto/NBD); ``time_unit`` (``"day"``, ``"week"``, ``"month"``) records the
    unit of recency and age. Returns the model file's contents as a dict (``model``,
    ``params``, ``standard_errors``, ``log_likelihood``, ``fit``, ``spend``...); with
    ``output`` also writes that ``model.json`` (atomically), for :func:`score` and
    ``crv serve --model``. Data that cannot identify a model raises :class:`CrvError`.
    """
    if spend not in (None, "gamma-gamma"):
        raise CrvError(f"invalid spend: `{spend}` is not gamma-gamma")
    text = _native.fit(customers, model, spend is not None, time_unit, _path(output))
    return json.loads(text)


def optimise(
    customers: Any,
    campaign: Union[dict[str, Any], str],
    contacts: Optional[Path] = None,
    discount: float = 0.10,
    horizon: Horizon = 5,
    tier_cuts: tuple[float, float] = (0.80, 0.95),
    model: Optional[Path] = None,
    margin_rate: Optional[float] = None,
) -> dict[str, Any]:
    """The plan of a campaign with several resources, offers and contact rules, as
    ``crv optimise`` solves it: certified by an upper bound, with each resource's shadow price.

    ``campaign`` is the campaign definition (a dict, or its JSON text): ``resources`` (name ->
    limit), ``offers`` (each with ``name``, ``value``, ``uses``, optional ``eligible``,
    ``min``, ``max``), ``contact_rules``, ``as_of``..., exactly as the
    ``--campaign`` file of ``crv optimise``. ``contacts`` is a contacts CSV
    (``customer_id,time,channel,campaign,offer``) for the contact rules. Returns the summary of
    ``crv optimise --json`` (``objective``, ``upper_bound``, ``gap``, ``optimal``,
    ``resources`` with ``used``, ``limit``, ``shadow_price``; ``offers``...) with
    ``assignment``, a ``pyarrow.Table`` of the customers given an offer (``customer_id``,
    ``offer``, ``value``, one column per resource, ``reason``). An infeasible campaign raises
    :class:`CrvError` naming the conflicting limits and offers.
    """
    text = campaign if isinstance(campaign, str) else json.dumps(campaign)
    summary, assignment = _native.optimise(
        customers,
        text,
        _path(contacts),
        float(discount),
        _horizon(horizon),
        tuple(map(float, tier_cuts)),
        _path(model),
        _margin_rate(margin_rate),
    )
    result = json.loads(summary)
    result["assignment"] = assignment
    return result
