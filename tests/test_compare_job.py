"""jobs/compare.py and jobs/train.py run as users run them, plus the bad inputs of issue 4,
each with its one-line named error."""

import json

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F
from sklearn import metrics as skm
from sklearn.model_selection import train_test_split
from sklearn.utils.class_weight import compute_class_weight

from imbal_spark import datagen
from imbal_spark.compare import run_comparison
from imbal_spark.errors import ConfigError, InputError

ROWS = 4000


@pytest.fixture(scope="module")
def data(spark, tmp_path_factory):
    path = tmp_path_factory.mktemp("cmp") / "data"
    datagen.generate(spark, ROWS, n_features=5, weights=[0.9, 0.1], seed=42, partitions=2) \
        .write.parquet(str(path))
    return path


def _sk_split_counts(n0, n1, test_size=0.3, seed=42):
    y = np.array([0] * n0 + [1] * n1)
    _, y_te = train_test_split(y, test_size=test_size, stratify=y, random_state=seed)
    return {"0": int((y_te == 0).sum()), "1": int((y_te == 1).sum())}


def test_compare_job_with_spark_submit(data, tmp_path, job):
    out = tmp_path / "cmp"
    r = job("compare.py", "--input", data, "--label-col", "label", "--id-cols", "id",
            "--strategies", "class_weight,random_over", "--model", "decision_tree",
            "--model-params", "{maxDepth: 4}", "--spark", "{spark.sql.shuffle.partitions: 4}",
            "--output", out, submit=True)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["report.json", "report.md", "report.html", "distribution.png", "roc.png", "pr.png", "minority.png"])
    rep = json.loads((out / "report.json").read_text())
    assert list(rep["strategies"]) == ["class_weight", "random_over"]
    assert rep["classes"] == ["0", "1"] and rep["pos_label"] == "1"
    test_counts = _sk_split_counts(3600, 400)  # scikit-learn's stratified split, to the row
    assert rep["data"]["test_counts"] == test_counts
    assert rep["data"]["train_counts"] == {"0": 3600 - test_counts["0"], "1": 400 - test_counts["1"]}
    for name, s in rep["strategies"].items():
        cm = np.array(s["metrics"]["confusion_matrix"])
        assert cm.sum(axis=1).tolist() == [test_counts["0"], test_counts["1"]]  # same test rows
        assert 0 <= s["metrics"]["binary"]["roc_auc"] <= 1
        assert s["threshold"]["threshold"] is not None  # tuned on 20% of the training rows
        assert np.array(s["threshold"]["test_metrics"]["confusion_matrix"]).sum() == sum(test_counts.values())
    train = rep["data"]["train_counts"]
    assert rep["strategies"]["random_over"]["train_counts"] == {"0": train["0"], "1": train["0"]}
    y = np.array([0] * train["0"] + [1] * train["1"])
    assert list(rep["strategies"]["class_weight"]["class_weights"].values()) == pytest.approx(
        compute_class_weight("balanced", classes=np.array([0, 1]), y=y).tolist())
    assert [row["strategy"] for row in rep["summary"]] == ["class_weight", "random_over"]
    page = (out / "report.html").read_text()
    assert page.count("src='data:image/png;base64,") == 4
    assert "random_over" in r.stdout and "ROC AUC" in r.stdout  # the summary table is printed


def test_train_job_saves_model_and_metrics(data, tmp_path, job, spark):
    from pyspark.ml import PipelineModel
    from pyspark.ml.functions import vector_to_array

    from imbal_spark.split import stratified_split

    out = tmp_path / "train"
    r = job("train.py", "--input", data, "--label-col", "label", "--id-cols", "id",
            "--strategy", "class_weight", "--model-params", "{C: 0.5}",
            "--spark", "{spark.sql.shuffle.partitions: 4}", "--output", out)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    res = json.loads((out / "metrics.json").read_text())
    assert res["strategy"] == "class_weight" and res["model"]["classes"] == ["0", "1"]
    assert res["model"]["params"]["regParam"] == pytest.approx(1 / (0.5 * sum(res["train_counts"].values())))
    # the saved MLlib model on the same (deterministic) test split gives the reported metrics
    _, test, _ = stratified_split(spark.read.parquet(str(data)), "label", 0.3, 42)
    pred = PipelineModel.load(str(out / "model")).transform(test) \
        .select("label", "prediction", vector_to_array("probability")[1].alias("p")).toPandas()
    assert res["metrics"]["accuracy"] == pytest.approx(skm.accuracy_score(pred.label, pred.prediction), abs=1e-12)
    assert res["metrics"]["binary"]["roc_auc"] == pytest.approx(skm.roc_auc_score(pred.label, pred.p), abs=1e-9)
    assert res["metrics"]["mcc"] == pytest.approx(skm.matthews_corrcoef(pred.label, pred.prediction), abs=1e-9)


def _bad(r, *fragments):
    assert r.returncode == 2, (r.returncode, (r.stdout + r.stderr)[-2000:])
    text = r.stdout + r.stderr
    errors = [line for line in text.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in text, text[-2000:]
    for f in fragments:
        assert f in errors[0], errors[0]


@pytest.mark.parametrize("args,fragments", [
    (["--model", "xgboost"], ["unknown model 'xgboost'", "logistic_regression"]),
    (["--strategies", "none,smotee"], ["unknown strategy 'smotee'"]),
    (["--model", "mlp", "--strategies", "smote,class_weight"], ["'mlp'", "has no weightCol"]),
    (["--train", "x"], ["either --input", "not both"]),
])
def test_bad_options_fail_before_spark(data, tmp_path, job, args, fragments):
    _bad(job("compare.py", "--input", data, "--label-col", "label", "--output", tmp_path / "o", *args), *fragments)
    assert not (tmp_path / "o").exists()


def test_existing_output_is_kept(data, tmp_path, job):
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    _bad(job("compare.py", "--input", data, "--label-col", "label", "--output", out), "already exists", "--mode overwrite")
    assert (out / "keep.txt").read_text() == "mine"


def _frame(spark, labels):
    rng = np.random.default_rng(0)
    return spark.createDataFrame(pd.DataFrame({"x": rng.normal(size=len(labels)), "label": labels}))


def test_bad_data_is_named(spark):
    train = _frame(spark, [0] * 30 + [1] * 10)
    cfg = {"strategies": ["class_weight"], "validation_size": 0.0}
    with pytest.raises(ConfigError, match="class_weight names class 5, which is not in label column"):
        run_comparison(spark, train, _frame(spark, [0] * 8 + [1] * 4), {**cfg, "class_weight": {5: 2.0}})
    with pytest.raises(InputError, match="label 2 of column 'label' is in the test data but never in the training data"):
        run_comparison(spark, train, _frame(spark, [0] * 8 + [1] * 3 + [2]), cfg)
    with pytest.raises(InputError, match="class 1 of column 'label' has no rows in the test data"):
        run_comparison(spark, train, _frame(spark, [0] * 8), cfg)
    with pytest.raises(InputError, match="only one class"):
        run_comparison(spark, _frame(spark, [0] * 8), _frame(spark, [0] * 8), cfg)


def test_single_class_predictions_are_reported_with_the_convention(spark):
    # a feature with no signal and a strong L2 penalty: the model predicts the majority class only
    train = _frame(spark, [0] * 60 + [1] * 6)
    test = _frame(spark, [0] * 20 + [1] * 2)
    rep = run_comparison(spark, train, test, {"strategies": ["none"], "validation_size": 0.0,
                                              "model_params": {"C": 1e-6}})
    m = rep["strategies"]["none"]["metrics"]
    assert m["confusion_matrix"] == [[20, 0], [2, 0]]
    y, p = [0] * 20 + [1] * 2, [0] * 22
    assert m["per_class"]["1"]["precision"] == skm.precision_score(y, p, zero_division=0) == 0.0
    assert m["macro_avg"]["f1"] == pytest.approx(skm.f1_score(y, p, average="macro", zero_division=0))
    assert "precision of class 1 (never predicted)" in m["zero_division"]["ill_defined"]
    assert rep["conventions"]["zero_division"].startswith("a ratio with a zero denominator is reported as 0.0")


def test_a_split_that_leaves_a_class_empty_names_its_setting(spark):
    """scikit-learn's stratified counts can round a small class to nothing on one side; the
    comparison refuses that before training, naming the setting (test_size or validation_size)
    and the class, instead of failing later with an error that blames a strategy."""
    from imbal_spark.compare import split_input

    def sk_counts(n0, n1, size, seed=42):
        y = np.array([0] * n0 + [1] * n1)
        y_tr, y_te = train_test_split(y, test_size=size, stratify=y, random_state=seed)
        return int((y_tr == 1).sum()), int((y_te == 1).sum())

    assert sk_counts(100, 3, 0.1)[1] == 0  # the oracle leaves class 1 out of the test side too
    with pytest.raises(InputError, match=r"test_size=0.1 leaves class 1 \(3 rows\) with no rows in the test part"):
        split_input(_frame(spark, [0] * 100 + [1] * 3), {"test_size": 0.1, "seed": 42})
    assert sk_counts(60, 6, 0.92)[0] == 0  # and out of the validation model's training rows
    with pytest.raises(InputError, match=r"validation_size=0.92 leaves class 1 \(6 rows\) with no rows in the "
                                         r"validation model's training part"):
        run_comparison(spark, _frame(spark, [0] * 60 + [1] * 6), _frame(spark, [0] * 8 + [1] * 4),
                       {"strategies": ["none"], "validation_size": 0.92, "seed": 42})


def test_null_nan_or_infinite_features_are_named_before_training(spark):
    """MLlib's assembler fails mid-job on null/NaN (a stack trace) and trains silently on
    infinities: the comparison refuses all three first, naming each column and its rows."""
    base = pd.DataFrame({"x": np.arange(40.0), "y": np.ones(40), "label": [0] * 30 + [1] * 10})
    test = spark.createDataFrame(base.iloc[::4])
    cfg = {"strategies": ["none"], "validation_size": 0.0}
    bad = base.copy()
    bad.loc[3, "x"], bad.loc[5, "x"], bad.loc[7, "y"] = np.nan, np.inf, -np.inf
    with pytest.raises(InputError, match=r"null, NaN or infinite values in the training data: 'x' \(2 rows\), "
                                         r"'y' \(1 row\); .*drop or impute"):
        run_comparison(spark, spark.createDataFrame(bad), test, cfg)
    nulls = spark.createDataFrame(base).withColumn("y", F.when(F.col("x") == 2.0, None).otherwise(F.col("y")))
    with pytest.raises(InputError, match=r"in the test data: 'y' \(1 row\)"):
        run_comparison(spark, spark.createDataFrame(base), nulls, cfg)
