"""The Python package against the command line on the same customers, and crv.spark on a local
Spark (local[2]) against both, with several partitionings. Run by tests/python.rs in the venv
that tests/python/setup.sh makes, or directly:
CRV_BIN=target/debug/crv target/python-venv/bin/python -m pytest tests/python."""

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
    # The table in many record batches (chunks that straddle crv's 16 Ki-row blocks) gives
    # the same answer, bit for bit, as in a few.
    whole = crv.score(data["table"], discount=0.10, horizon=5)
    pieces = pa.Table.from_batches(data["table"].to_batches(max_chunksize=7001))
    assert crv.score(pieces, discount=0.10, horizon=5).equals(whole)


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
    with pytest.raises(crv.CrvError, match=r"<table>: row group 0, row 2, column `customer_id`: duplicate customer_id `1`, first seen in row group 0, row 1"):
        crv.score(dup)
    nulls = pa.table({"customer_id": [1, None], "margin": [1.0, 2.0], "retention": [0.5, 0.5]})
    with pytest.raises(crv.CrvError, match="<table>: row group 0, row 2, column `customer_id`: null customer_id"):
        crv.score(nulls)
    dates = pa.table({"customer_id": [1], "margin": pa.array([1], pa.date32()), "retention": [0.5]})
    with pytest.raises(crv.CrvError, match="column `margin`: type Date32 cannot be imported"):
        crv.score(dates)
    with pytest.raises(crv.CrvError, match="<table>: no customer rows"):
        crv.score(data["table"].slice(0, 0))
    with pytest.raises(crv.CrvError, match="corrupt store|No such file"):
        crv.Store(data["work"] + "/missing.crv")


def text_ids(table):
    """`table` with its customer ids as CRM-style text: C-0000000042."""
    ids = pa.array([f"C-{i:010d}" for i in table["customer_id"].to_pylist()])
    return table.set_column(0, "customer_id", ids)


def test_text_ids_round_trip(data):
    numeric = data["table"].slice(0, 2000)
    text = text_ids(numeric)
    got = crv.score(text).to_pandas()
    ref = crv.score(numeric).to_pandas()
    assert got["customer_id"].tolist() == [f"C-{i:010d}" for i in ref["customer_id"]]
    assert np.array_equal(got["crv"], ref["crv"]) and (got["tier"] == ref["tier"]).all()
    chosen = crv.select(text, budget=200, cost="cost")
    same = crv.select(numeric, budget=200, cost="cost")
    assert chosen["total_crv"] == same["total_crv"] and chosen["selected"] == same["selected"]
    assert sorted(chosen["customer_ids"].to_pylist()) == sorted(
        f"C-{i:010d}" for i in same["customer_ids"].to_pylist()
    )


def test_spark_scores_and_selects_as_one_machine(data):
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
        texts = spark.createDataFrame(text_ids(data["table"].slice(0, 100)).to_pandas())
        with pytest.raises(Exception, match="crv.spark needs whole-number customer ids"):
            crv.spark.score(texts).collect()
    finally:
        spark.stop()


CDNOW = "tests/data/cdnow_summary.csv"


def test_fit_and_model_scores_equal_the_cli(data):
    work = data["work"]
    subprocess.run([CRV, "import", CDNOW, "-o", f"{work}/cdnow.crv"], check=True, capture_output=True)
    out = subprocess.run(
        [CRV, "fit", f"{work}/cdnow.crv", "--model", "bgnbd", "--spend", "gamma-gamma", "--time-unit", "week",
         "-o", f"{work}/cli-model.json", "--json"],
        check=True, capture_output=True, text=True,
    )
    cli = json.loads(out.stdout.strip().splitlines()[-1])
    table = pcsv.read_csv(CDNOW)
    got = crv.fit(table, model="bgnbd", spend="gamma-gamma", time_unit="week", output=f"{work}/py-model.json")
    # The same code on the same numbers; the likelihoods are sums in parallel, equal up to the
    # order of the additions, so the estimates agree to far below their standard errors.
    assert (got["model"], got["time_unit"]) == (cli["model"], cli["time_unit"]) == ("bgnbd", "week")
    for section in (lambda f: f, lambda f: f["spend"]):
        for key in ("params", "standard_errors"):
            assert section(got)[key] == pytest.approx(section(cli)[key], rel=1e-9), key
        assert section(got)["log_likelihood"] == pytest.approx(section(cli)["log_likelihood"], rel=1e-12)
    assert got["params"]["r"] == pytest.approx(0.2426, abs=1e-4)
    with open(f"{work}/py-model.json") as written:
        assert json.load(written) == got
    # The same store file gives the same fit.
    assert crv.fit(crv.Store(f"{work}/cdnow.crv"), model="bgnbd")["params"] == pytest.approx(cli["params"], rel=1e-9)

    subprocess.run(
        [CRV, "score", f"{work}/cdnow.crv", "--model", f"{work}/cli-model.json", "--margin-rate", "0.3",
         "--discount", "0.01", "--horizon", "52", "-o", f"{work}/model-scores.csv"],
        check=True, capture_output=True,
    )
    ref = pd.read_csv(f"{work}/model-scores.csv")
    scored = crv.score(table, discount=0.01, horizon=52, model=f"{work}/py-model.json", margin_rate=0.3).to_pandas()
    assert list(scored.columns) == list(ref.columns)
    m = ref.merge(scored, on="customer_id", suffixes=("", "_py"))
    assert len(m) == len(ref) == len(scored)
    for column in ("crv", "p_alive", "expected_purchases"):
        assert np.allclose(m[column], m[column + "_py"], rtol=1e-6, atol=1e-4), column
    assert (m["tier"] == m["tier_py"]).all()

    with pytest.raises(crv.CrvError, match="invalid model: `nbd` is not bgnbd or pnbd"):
        crv.fit(table, model="nbd")
    with pytest.raises(crv.CrvError, match="time_unit"):
        crv.fit(table, time_unit="fortnight")
    with pytest.raises(crv.CrvError, match="frequency"):
        crv.fit(data["table"].drop(["frequency"]))


CAMPAIGN = {
    "resources": {"budget": 2000, "calls": 150},
    "offers": [
        {"name": "call", "value": "crv", "uses": {"budget": 5, "calls": 1}, "eligible": "tier in (A, B)"},
        {"name": "email", "value": "0.3 * crv", "uses": {"budget": 0.5}},
    ],
}


def test_optimise_equals_the_cli(data):
    work = data["work"]
    with open(f"{work}/campaign.json", "w") as f:
        json.dump(CAMPAIGN, f)
    out = subprocess.run(
        [CRV, "optimise", data["store"], "--campaign", f"{work}/campaign.json", "--json", "-o", f"{work}/assignment.csv"],
        check=True, capture_output=True, text=True,
    )
    cli = json.loads(out.stdout.strip().splitlines()[-1])
    ref = pd.read_csv(f"{work}/assignment.csv")
    for customers in (data["table"], crv.Store(data["store"])):
        got = crv.optimise(customers, CAMPAIGN)
        for key in ("assigned", "optimal", "customers"):
            assert got[key] == cli[key], key
        for key in ("objective", "upper_bound"):
            assert got[key] == pytest.approx(cli[key], rel=1e-9), key
        for name, resource in cli["resources"].items():
            assert got["resources"][name]["used"] == pytest.approx(resource["used"], rel=1e-9)
            assert got["resources"][name]["used"] <= CAMPAIGN["resources"][name]
            assert got["resources"][name]["shadow_price"] == pytest.approx(resource["shadow_price"], rel=1e-9)
        assignment = got["assignment"].to_pandas()
        assert list(assignment.columns) == ["customer_id", "offer", "value", "budget", "calls", "reason"]
        assert assignment["customer_id"].tolist() == ref["customer_id"].tolist()
        assert assignment["offer"].astype(str).tolist() == ref["offer"].tolist()
        assert np.allclose(assignment["value"], ref["value"]) and np.allclose(assignment["calls"], ref["calls"])
        assert assignment["value"].sum() == pytest.approx(got["objective"], rel=1e-9)
    # The JSON text is taken as the dict is.
    assert crv.optimise(data["table"], json.dumps(CAMPAIGN))["objective"] == got["objective"]

    with pytest.raises(crv.CrvError, match="offers"):
        crv.optimise(data["table"], {"resources": {"budget": 1}})
    with pytest.raises(crv.CrvError, match="nope"):
        crv.optimise(data["table"], {"resources": {"budget": 1}, "offers": [{"name": "a", "value": "nope", "uses": {"budget": 1}}]})
    impossible = {"resources": {"budget": 1}, "offers": [{"name": "a", "value": "crv", "uses": {"budget": 1}, "min": 5}]}
    with pytest.raises(crv.CrvError, match="infeasible"):
        crv.optimise(data["table"], impossible)
