"""Jobs run the way users run them: `spark-submit jobs/x.py` and `python jobs/x.py`."""
import json

import pytest


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    from conftest import run_job

    out = tmp_path_factory.mktemp("gen") / "data"
    r = run_job("generate.py", "--rows", 30_000, "--n-features", 5, "--weights", "0.9,0.1",
                "--seed", 5, "--output", out, "--partitions", 2, submit=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return out


def test_generate_then_distribution_with_spark_submit(generated, tmp_path, job, spark):
    df = spark.read.parquet(str(generated))
    assert df.columns == ["id", "f0", "f1", "f2", "f3", "f4", "label"] and df.count() == 30_000
    spark.read.parquet(str(generated)).selectExpr("*", "cast(id % 3 as string) as day") \
        .write.parquet(str(tmp_path / "with_day"))
    out = tmp_path / "dist"
    r = job("class_distribution.py", "--input", tmp_path / "with_day", "--label-col", "label",
            "--output", out, "--by", "day", submit=True)
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads((out / "distribution.json").read_text())
    assert rep["total_rows"] == 30_000 and rep["n_classes"] == 2
    assert [(c["label"], c["count"]) for c in rep["classes"]] == [(0, 27_000), (1, 3_000)]
    assert rep["imbalance_ratio"] == pytest.approx(9.0)
    assert set(rep["timings_s"]) >= {"read input", "class distribution"}
    assert "(minority)" in r.stdout and "27,000" in r.stdout
    by = spark.read.parquet(str(out / "by_day"))
    assert by.count() == 6 and by.groupBy().sum("count").first()[0] == 30_000


def test_pipeline_on_example_data_with_python(tmp_path, job, spark):
    out = tmp_path / "p"
    r = job("pipeline.py", "--output", out, "--rows", 20_000, "--strategies", "none,smote",
            "--validation-size", 0, "--model-params", '{"maxIter": 50}')
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads((out / "distribution.json").read_text())
    assert rep["total_rows"] == 20_000
    assert [(c["label"], c["count"]) for c in rep["classes"]] == [(0, 18_000), (1, 2_000)]
    # resampling step: the training split (70%: 12,600 / 1,400) balanced by SMOTE
    res = spark.read.parquet(str(out / "resampled"))
    counts = {(row["label"], row["is_synthetic"]): row["count"]
              for row in res.groupBy("label", "is_synthetic").count().collect()}
    assert counts == {(0, False): 12_600, (1, False): 1_400, (1, True): 11_200}
    summary = json.loads((out / "resample_summary.json").read_text())
    assert summary["method"] == "smote"
    report = json.loads((out / "report.json").read_text())
    assert list(report["strategies"]) == ["none", "smote"]
    # the comparison's smote model trained on the rows written above, not on a second SMOTE run
    assert report["strategies"]["smote"]["train_counts"] == {"0": 12_600, "1": 12_600}
    assert report["strategies"]["smote"]["sampler"] == summary
    assert "smote: read resampled rows" in report["timings_s"] and "smote: resample" not in report["timings_s"]
    for f in ("report.md", "report.html"):
        assert "smote" in (out / f).read_text()
    assert "smote" in r.stdout and "ROC AUC" in r.stdout


def _bad(r, *fragments):
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    # spark-submit merges the Python driver's stderr into stdout, so look at both.
    text = r.stdout + r.stderr
    errors = [line for line in text.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, text[-2000:]
    assert "Traceback" not in text
    for f in fragments:
        assert f in errors[0], errors[0]
    return errors[0]


@pytest.fixture
def precious(tmp_path):
    d = tmp_path / "out"
    d.mkdir()
    (d / "keep.txt").write_text("precious")
    yield d
    assert [p.name for p in d.iterdir()] == ["keep.txt"] and (d / "keep.txt").read_text() == "precious"


def test_missing_input_path(job, tmp_path, precious):
    r = job("class_distribution.py", "--input", tmp_path / "nope", "--output", precious, "--mode", "overwrite")
    _bad(r, "input path", "nope", "does not exist")


def test_unreadable_and_empty_input(job, tmp_path, precious):
    junk = tmp_path / "junk.parquet"
    junk.write_text("not parquet at all")
    _bad(job("class_distribution.py", "--input", junk, "--output", precious, "--mode", "overwrite"),
         "cannot read input", "junk.parquet")
    empty = tmp_path / "empty.csv"
    empty.write_text("f0,label\n")
    _bad(job("class_distribution.py", "--input", empty, "--output", precious, "--mode", "overwrite",
             submit=True), "has no rows")


def test_missing_label_column(job, generated, precious):
    _bad(job("class_distribution.py", "--input", generated, "--label-col", "target",
             "--output", precious, "--mode", "overwrite"), "label column 'target' is not in the input", "f0")


def test_unknown_config_key(job, tmp_path, precious):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("input: x\nlabel_colum: y\n")
    _bad(job("class_distribution.py", "--config", cfg, "--output", precious), "unknown key 'label_colum'", str(cfg))


def test_rows_zero_and_bad_weights(job, precious):
    _bad(job("generate.py", "--rows", 0, "--output", precious, "--mode", "overwrite"), "--rows must be a positive")
    _bad(job("generate.py", "--rows", 100, "--weights", "0.8,0.1", "--output", precious, "--mode", "overwrite"),
         "sum to 0.9, not 1")


def test_output_exists_without_overwrite(job, generated, precious):
    _bad(job("class_distribution.py", "--input", generated, "--output", precious, submit=True),
         "already exists", "--mode overwrite")
