"""jobs/resample.py run as users run it: outputs, determinism across masters, bad inputs."""

import json

import numpy as np
import pandas as pd
import pytest

ROWS = {0: 300, 1: 60}


def _pdf(seed=0):
    rng = np.random.default_rng(seed)
    n = sum(ROWS.values())
    y = np.concatenate([np.full(m, c) for c, m in ROWS.items()])
    X = rng.normal(size=(n, 3)) + y[:, None] * 1.5
    return pd.DataFrame({"id": np.arange(n), "a": X[:, 0], "b": X[:, 1], "c": X[:, 2],
                         "city": [f"c{i % 3}" for i in range(n)], "label": y})


@pytest.fixture(scope="module")
def inputs(spark, tmp_path_factory):
    d = tmp_path_factory.mktemp("resample_inputs")
    pdf = _pdf()
    spark.createDataFrame(pdf).repartition(3).write.parquet(str(d / "good"))
    bad = pdf.copy()
    bad.loc[[3, 4], "b"] = np.nan
    bad.loc[[5], "c"] = np.inf
    spark.createDataFrame(bad).write.parquet(str(d / "nan"))
    spark.createDataFrame(pdf[pdf.label == 0]).write.parquet(str(d / "one_class"))
    spark.createDataFrame(pd.concat([pdf[pdf.label == 0], pdf[pdf.label == 1].head(4)])).write.parquet(str(d / "tiny"))
    spark.createDataFrame(pdf.head(0), "id long, a double, b double, c double, city string, label long") \
        .write.parquet(str(d / "empty"))
    # a data page whose header is garbage (the footer is intact, so the schema reads fine)
    (d / "corrupt").mkdir()
    pdf.to_parquet(d / "corrupt" / "part.parquet", index=False)
    raw = bytearray((d / "corrupt" / "part.parquet").read_bytes())
    raw[4:40] = b"\xa5" * 36
    (d / "corrupt" / "part.parquet").write_bytes(bytes(raw))
    return d


def _read(spark, path):
    pdf = spark.read.parquet(str(path)).toPandas()
    return pdf.sort_values(list(pdf.columns), na_position="first").reset_index(drop=True)


def test_smote_job_writes_data_and_summary_and_is_deterministic_across_masters(spark, job, inputs, tmp_path):
    args = ["--input", inputs / "good", "--label-col", "label", "--method", "smote", "--id-cols", "id",
            "--k-neighbors", "4", "--max-group-rows", "25", "--seed", "9", "--recall-sample", "50"]
    r = job("resample.py", *args, "--output", tmp_path / "o2", submit=True)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "before" in r.stdout and "300" in r.stdout
    summary = json.loads((tmp_path / "o2" / "summary.json").read_text())
    assert summary["method"] == "smote"
    assert summary["counts_before"] == {"0": 300, "1": 60} and summary["counts_after"] == {"0": 300, "1": 300}
    assert summary["sampling_strategy_"] == {"1": 240}
    assert summary["groups"]["1"]["groups"] >= 3 and summary["groups"]["1"]["rows_max"] <= 25
    assert summary["groups"]["1"]["index_rows_max"] <= 25 and summary["groups"]["1"]["halo_rows"] > 0
    assert summary["params"]["halo"] == 0.6 and summary["params"]["probe"] == 0.15
    rec = summary["neighbour_recall"]["1"]
    assert rec["sample_rows"] == 50 and 0 < rec["recall_at_k"] <= 1
    assert summary["params"]["k_neighbors"] == 4 and summary["params"]["random_state"] == 9
    assert {"read input", "resample and write data"} <= set(summary["timings"])
    a = _read(spark, tmp_path / "o2" / "data")
    assert len(a) == 600 and a["is_synthetic"].sum() == 240
    assert a.loc[a.is_synthetic, "id"].isna().all() and a.loc[a.is_synthetic, "city"].isna().all()
    # one core, another shuffle width: the same rows
    cfgf = tmp_path / "c.yaml"
    cfgf.write_text("spark:\n  spark.sql.shuffle.partitions: 5\n")
    r = job("resample.py", *args, "--output", tmp_path / "o1", "--config", cfgf,
            env={"IMBAL_SPARK_MASTER": "local[1]"})
    assert r.returncode == 0, r.stderr[-3000:]
    pd.testing.assert_frame_equal(a, _read(spark, tmp_path / "o1" / "data"))


def test_random_under_job_and_strategy_from_json(spark, job, inputs, tmp_path):
    r = job("resample.py", "--input", inputs / "good", "--label-col", "label", "--method", "random-under",
            "--sampling-strategy", '{"0": 100}', "--output", tmp_path / "u")
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((tmp_path / "u" / "summary.json").read_text())
    assert s["counts_after"] == {"0": 100, "1": 60}
    out = _read(spark, tmp_path / "u" / "data")
    assert len(out) == 160 and not out["is_synthetic"].any()
    good = _read(spark, inputs / "good")
    assert len(out.merge(good, on=list(good.columns))) == 160  # kept rows are input rows


BAD = [
    ("nan", ["--method", "smote"], "feature column\\(s\\) with null, NaN or infinite values: 'b' \\(2 rows\\), 'c' \\(1 row\\)"),
    ("good", ["--method", "smote", "--features", "a,city"], "feature column 'city' has type string, not a number"),
    ("one_class", ["--method", "smote"], "needs more than 1 class to resample, got 1 \\(only 0\\)"),
    ("tiny", ["--method", "smote"], "class 1 has 4 rows, too few for SMOTE with k_neighbors=5 .*--k-neighbors 3 or less"),
    ("good", ["--method", "adasyn"], "unknown --method 'adasyn'; use one of smote, random_over, random_under"),
    ("good", ["--method", "smote", "--sampling-strategy", "most"], "unknown --sampling-strategy 'most'"),
    ("empty", ["--method", "random_over"], "has no rows|no rows; nothing to resample"),
    ("good", ["--method", "smote", "--halo", "1.5"], "halo must be a number from 0 to 0.9"),
    ("good", ["--method", "smote", "--probe", "0"], "probe must be a number above 0 and at most 1"),
    ("good", ["--method", "random_under", "--output", "INPUT/res"], "output .* lies inside or around it"),
    ("corrupt", ["--method", "random_under"], "cannot read input file .*part.parquet .*: it is corrupt, or changed"),
]


@pytest.mark.parametrize("name,extra,message", BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_bad_input_exit_2_one_line_destination_untouched(job, inputs, tmp_path, name, extra, message):
    import re

    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "keep.txt").write_text("old")
    before = sorted(p.relative_to(inputs / name) for p in (inputs / name).rglob("*"))
    extra = [str(inputs / name) + a[5:] if a.startswith("INPUT") else a for a in extra]
    r = job("resample.py", "--input", inputs / name, "--label-col", "label", "--output", dest,
            "--mode", "overwrite", "--id-cols", "id", *extra)
    assert r.returncode == 2, r.stderr[-3000:]
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and re.search(message, errors[0]), r.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary sibling left
    assert [p.name for p in dest.iterdir()] == ["keep.txt"] and (dest / "keep.txt").read_text() == "old"
    assert sorted(p.relative_to(inputs / name) for p in (inputs / name).rglob("*")) == before  # input untouched
