"""Type stubs of the native module ``crv._native`` (Rust, pyo3). Use the ``crv`` package's
wrappers, which add defaults and documentation."""

from os import PathLike
from typing import Any, Optional, Union

import pyarrow

class CrvError(ValueError):
    """Bad input, a bad parameter or a corrupt store; the message is the crv command line's."""

class Store:
    """A crv store file (``crv import`` output), memory-mapped and validated on open.

    Pass it wherever a table is accepted: ``crv.score(crv.Store("customers.crv"))``.
    ``verify=True`` also checks every checksum and value, as ``crv info --verify`` does.
    """

    def __init__(self, path: Union[str, PathLike[str]], verify: bool = False) -> None: ...
    @property
    def rows(self) -> int:
        """Number of customers."""
    @property
    def columns(self) -> list[str]:
        """Column names, ``customer_id`` first."""
    def __len__(self) -> int: ...

def score(
    customers: Any,
    discount: float,
    horizon: str,
    tier_cuts: tuple[float, float],
    model: Optional[str],
    margin_rate: Optional[float],
) -> pyarrow.Table: ...
def select(
    customers: Any,
    budget: float,
    cost: str,
    where: str,
    discount: float,
    horizon: str,
    resource_scale: float,
    time_limit: float,
    model: Optional[str],
    margin_rate: Optional[float],
) -> tuple[str, pyarrow.Table]: ...
def fit(
    customers: Any,
    model: str,
    spend: bool,
    time_unit: Optional[str],
    output: Optional[str],
) -> str: ...
def optimise(
    customers: Any,
    campaign: str,
    contacts: Optional[str],
    discount: float,
    horizon: str,
    tier_cuts: tuple[float, float],
    model: Optional[str],
    margin_rate: Optional[float],
) -> tuple[str, pyarrow.Table]: ...

# The pieces crv.spark runs on executors and the driver: messages are opaque bytes.
def tier_histogram(batch: Any, discount: float, horizon: str) -> bytes: ...
def merge_histograms(parts: list[bytes], tier_cuts: tuple[float, float]) -> tuple[bytes, list[int]]: ...
def tier_boundary(batch: Any, discount: float, horizon: str, buckets: list[int]) -> bytes: ...
def tier_ends(histogram: bytes, tier_cuts: tuple[float, float], boundaries: list[bytes]) -> bytes: ...
def part_tiers(batch: Any, discount: float, horizon: str, ends: bytes) -> pyarrow.RecordBatch: ...
def knapsack_answer(
    batch: Any,
    discount: float,
    horizon: str,
    value: str,
    cost: str,
    resource_scale: float,
    capacity: int,
    question: bytes,
) -> bytes: ...
def knapsack_chosen(
    batch: Any,
    discount: float,
    horizon: str,
    value: str,
    cost: str,
    resource_scale: float,
    capacity: int,
    chosen: bytes,
) -> pyarrow.RecordBatch: ...

class KnapsackDriver:
    """The driver of the distributed exact knapsack (crv::select::parts::PartsKnapsack)."""

    capacity: int
    def __init__(self, budget: float, resource_scale: float, time_limit: float, core_limit: Optional[int]) -> None: ...
    def start(self) -> bytes: ...
    def step(self, answers: list[bytes]) -> tuple[Optional[bytes], Optional[str], Optional[bytes]]: ...
