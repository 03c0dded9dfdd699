"""The Python package against the command line on the same customers, and crv.spark on a local
Spark (local[2]) against both, with several partitionings. Run by tests/python.rs (which builds
the package into a venv) or directly: CRV_BIN=target/debug/crv python -m pytest tests/python.
Set CRV_PY_SPARK=0 to skip nothing but report the Spark part as not run (it needs Java)."""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv
import pytest

import crv

CRV = os.environ.get("CRV_BIN", "target/debug/crv")
CUSTOMERS = int(os.environ.get("CRV_PY_CUSTOMERS", "20000"))


@pytest.fixture(scope="module")
def data():
    work = tempfile.mkdtemp(prefix="crv-py-")
    csv = f"{work}/c.csv"
    subprocess.run([CRV, "gen", "--customers", str(CUSTOMERS), "--seed", "71", "-o", csv], check=True, capture_output=True)
    subprocess.run([CRV, "import", csv, "-o", f"{work}/c.crv"], check=True, capture_output=True)
    subprocess.run([CRV, "score", f"{work}/c.crv", "-o", f"{work}/scores.csv"], check=True, capture_output=True)
    budget = CUSTOMERS / 10
    out = subprocess.run([CRV, "select", f"{work}/c.crv", "--budget", str(budget), "--json", "-o", f"{work}/targets.csv"], check=True, capture_output=True, text=True)
    return {
        "work": work,
        "table": pcsv.read_csv(csv),
        "scores": pd.read_csv(f"{work}/scores.csv"),
        "select": json.loads(out.stdout.strip().splitlines()[-1]),
        "targets": pd.read_csv(f"{work}/targets.csv"),
        "budget": budget,
        "store": f"{work}/c.crv",
    }


def test_score_equals_the_cli(data):
    for customers in (data["table"], crv.Store(data["store"])):
        got = crv.score(customers, discount=0.10, horizon=5).to_pandas()
        ref = data["scores"]
        assert list(got.columns) == ["customer_id", "crv", "tier", "rank", "percentile"]
        m = ref.merge(got, on="customer_id", suffixes=("", "_py"))
        assert len(m) == len(ref) == len(got)
        assert np.allclose(m["crv"], m["crv_py"], rtol=1e-6, atol=1e-4)
        assert (m["tier"] == m["tier_py"]).all()
        assert (m["rank"] == m["rank_py"]).all()


def test_select_equals_the_cli(data):
    got = crv.select(data["table"], budget=data["budget"], cost="cost")
    cli = data["select"]
    for key in ("selected", "total_cost", "optimal", "eligible"):
        assert got[key] == cli[key], key
    assert got["total_crv"] == pytest.approx(cli["total_crv"], rel=1e-9)
    assert sorted(got["customer_ids"].to_pylist()) == sorted(data["targets"]["customer_id"].tolist())
    filtered = crv.select(data["table"], budget=data["budget"], where="tier in (A, B)")
    assert filtered["optimal"] and filtered["eligible"] < cli["eligible"]


def test_errors_carry_the_cli_messages(data):
    with pytest.raises(crv.CrvError, match="invalid discount: -1 must be a finite rate >= 0"):
        crv.score(data["table"], discount=-1)
    with pytest.raises(crv.CrvError, match="invalid horizon"):
        crv.score(data["table"], horizon=0)
    with pytest.raises(crv.CrvError, match="column `nope`"):
        crv.select(data["table"], budget=10, cost="nope")
    dup = pa.table({"customer_id": [1, 1], "margin": [1.0, 2.0], "retention": [0.5, 0.5]})
    with pytest.raises(crv.CrvError, match="duplicate customer_id 1, first seen in row 0"):
        crv.score(dup)
    nulls = pa.table({"customer_id": [1, None], "margin": [1.0, 2.0], "retention": [0.5, 0.5]})
    with pytest.raises(crv.CrvError, match="row 1, column `customer_id`: null customer_id"):
        crv.score(nulls)
    with pytest.raises(crv.CrvError, match="corrupt store|No such file"):
        crv.Store(data["work"] + "/missing.crv")


def test_spark_scores_and_selects_as_one_machine(data):
    if os.environ.get("CRV_PY_SPARK") == "0":
        pytest.skip("CRV_PY_SPARK=0")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    import crv.spark

    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    try:
        base = spark.createDataFrame(data["table"].to_pandas())
        ref = data["scores"]
        cli = data["select"]
        for partitions in (1, 3, 8):
            df = base.repartition(partitions)
            sc = crv.spark.score(df).toPandas()
            m = ref.merge(sc, on="customer_id", suffixes=("", "_sp"))
            assert len(m) == len(ref)
            assert np.allclose(m["crv"], m["crv_sp"], rtol=1e-6, atol=1e-4)
            assert (m["tier"] == m["tier_sp"]).all()
            sel = crv.spark.select(df, budget=data["budget"], cost="cost")
            assert sel["optimal"]
            assert sel["total_crv"] == pytest.approx(cli["total_crv"], rel=1e-9)
            assert sel["core_items"] < len(ref)
            chosen = sel["targets"].toPandas()["customer_id"]
            assert len(chosen) == sel["selected"]
            picked = m[m["customer_id"].isin(set(chosen))]
            assert picked["crv"].astype("float64").sum() == pytest.approx(sel["total_crv"], rel=1e-9)
    finally:
        spark.stop()
