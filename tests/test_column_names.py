"""Column names with dots, backticks and spaces: every entry point takes the names as they are.

Spark parses a name given as a string (``a.b`` is field ``b`` of ``a``, a backtick opens a quoted
part), so each reference must quote it. The oracle is the same data under plain names: renaming
the columns must not change any result (the draw keys come from the values, never the names).
"""

import json

import numpy as np
import pandas as pd
import pytest
from pyspark.ml.linalg import Vectors

from imbal_spark import class_distribution, distribution_by
from imbal_spark import metrics as M
from imbal_spark.compare import run_comparison
from imbal_spark.sampling import SMOTE, RandomOverSampler, RandomUnderSampler
from imbal_spark.split import stratified_split
from imbal_spark.weights import add_class_weights

ODD = ["id", "f.a", "f`b", "g c", "cat.x", "y.l"]
PLAIN = ["id", "fa", "fb", "gc", "catx", "yl"]
PLAIN_OF = dict(zip(ODD, PLAIN))


def _pdf(n=400, seed=3):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.15).astype(int)
    X = rng.normal(size=(n, 3)) + y[:, None] * 1.2
    return pd.DataFrame({"id": np.arange(n), "f.a": X[:, 0], "f`b": X[:, 1], "g c": X[:, 2],
                         "cat.x": [f"c{i % 3}" for i in range(n)], "y.l": y})


@pytest.fixture(scope="module")
def frames(spark):
    pdf = _pdf()
    odd = spark.createDataFrame(pdf).repartition(3)
    plain = odd.toDF(*PLAIN)
    return odd, plain


def _rows(df):
    """The rows as a sorted pandas frame, columns renamed to plain names."""
    pdf = df.toPandas()
    pdf.columns = [PLAIN_OF.get(c, c) for c in pdf.columns]
    return pdf.sort_values(list(pdf.columns), na_position="first").reset_index(drop=True)


def test_distribution_split_and_weights_take_the_names_as_they_are(frames):
    odd, plain = frames
    assert class_distribution(odd, "y.l").to_dict()["classes"] == class_distribution(plain, "yl").to_dict()["classes"]
    by = _rows(distribution_by(odd, "y.l", "cat.x"))
    assert list(distribution_by(odd, "y.l", "cat.x").columns[:2]) == ["cat.x", "y.l"]
    pd.testing.assert_frame_equal(by, _rows(distribution_by(plain, "yl", "catx")))
    tr, te, info = stratified_split(odd, "y.l", 0.25, seed=5)
    ptr, pte, pinfo = stratified_split(plain, "yl", 0.25, seed=5)
    assert info == pinfo
    pd.testing.assert_frame_equal(_rows(te), _rows(pte))
    pd.testing.assert_frame_equal(_rows(tr), _rows(ptr))
    w, weights = add_class_weights(odd, "y.l", "balanced", weight_col="w.t")
    pw, pweights = add_class_weights(plain, "yl", "balanced", weight_col="wt")
    assert weights == pweights
    assert sorted(r[0] for r in w.select("`w.t`").collect()) == sorted(r[0] for r in pw.select("wt").collect())


@pytest.mark.parametrize("make", [
    lambda label, feats: SMOTE(label_col=label, features=feats, k_neighbors=3, random_state=7, id_cols=["id"]),
    # a class split into groups with halos: the grouping passes, the recall probe
    lambda label, feats: SMOTE(label_col=label, features=feats, k_neighbors=3, random_state=7, id_cols=["id"],
                               max_group_rows=30, recall_sample=20),
    lambda label, feats: RandomOverSampler(label_col=label, features=feats, random_state=7, id_cols=["id"],
                                           max_group_rows=40),
    lambda label, feats: RandomUnderSampler(label_col=label, random_state=7),
], ids=["smote", "smote-groups", "random_over", "random_under"])
def test_samplers_give_the_rows_they_give_under_plain_names(frames, make):
    odd, plain = frames
    s = make("y.l", ["f.a", "f`b", "g c"])
    out = s.fit_resample(odd)
    assert out.columns == [*ODD, "is_synthetic"]
    ref = make("yl", ["fa", "fb", "gc"])
    expected = ref.fit_resample(plain)
    got = _rows(out)
    assert len(got) == expected.count() and s.counts_after() == ref.counts_after()
    pd.testing.assert_frame_equal(got, _rows(expected))
    if isinstance(s, SMOTE):
        assert got["is_synthetic"].sum() > 0
        assert s.summary_["features"] == ["f.a", "f`b", "g c"]
        assert s.summary_["groups"] == ref.summary_["groups"]
        assert s.summary_["neighbour_recall"] == ref.summary_["neighbour_recall"]


def test_a_vector_feature_column_with_a_dotted_name(spark):
    rng = np.random.default_rng(1)
    rows = [(Vectors.dense(rng.normal(size=3).tolist()), int(i % 6 == 0)) for i in range(120)]
    odd = spark.createDataFrame(rows, ["v.x", "y.l"])
    plain = odd.toDF("vx", "yl")
    for cls in (SMOTE, RandomOverSampler):
        got = cls(label_col="y.l", random_state=2, k_neighbors=3).fit_resample(odd) if cls is SMOTE \
            else cls(label_col="y.l", random_state=2).fit_resample(odd)
        exp = cls(label_col="yl", random_state=2, k_neighbors=3).fit_resample(plain) if cls is SMOTE \
            else cls(label_col="yl", random_state=2).fit_resample(plain)
        a = sorted((tuple(r[0].toArray()), r[1], r[2]) for r in got.collect())
        b = sorted((tuple(r[0].toArray()), r[1], r[2]) for r in exp.collect())
        assert got.columns == ["v.x", "y.l", "is_synthetic"] and a == b and len(a) == 200


def test_metrics_take_dotted_label_prediction_and_score_columns(spark):
    rng = np.random.default_rng(4)
    y = (rng.random(300) < 0.2).astype(int)
    s = np.clip(y * 0.4 + rng.random(300) * 0.7, 0, 1)
    pdf = pd.DataFrame({"y.l": y, "p`r": (s >= 0.5).astype(int), "s.c": s})
    odd = spark.createDataFrame(pdf)
    plain = odd.toDF("y", "p", "s")
    got = M.evaluate(odd, "y.l", "p`r", "s.c", pos_label=1)
    exp = M.evaluate(plain, "y", "p", "s", pos_label=1)
    assert got == exp and got["binary"]["roc_auc"] > 0.5
    from sklearn.metrics import roc_auc_score

    assert got["binary"]["roc_auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    at = M.threshold_predictions(odd, "s.c", 0.5, 1, 0, "t.h")
    assert [r[0] for r in at.select("`t.h`").collect()] == pdf["p`r"].tolist()


def test_the_comparison_trains_on_dotted_features_categories_and_weight_column(spark, frames):
    odd, plain = frames
    tr, te, _ = stratified_split(odd, "y.l", 0.3, seed=1)
    ptr, pte, _ = stratified_split(plain, "yl", 0.3, seed=1)
    base = {"strategies": ["none", "class_weight", "smote", "random_under"], "k_neighbors": 3, "seed": 3,
            "validation_size": 0.25}
    got = run_comparison(spark, tr, te, {**base, "label_col": "y.l", "features": ["f.a", "f`b", "g c", "cat.x"],
                                         "categorical": ["cat.x"], "id_cols": ["id"], "weight_col": "w.t"})
    exp = run_comparison(spark, ptr, pte, {**base, "label_col": "yl", "features": ["fa", "fb", "gc", "catx"],
                                           "categorical": ["catx"], "id_cols": ["id"], "weight_col": "wt"})
    for name in base["strategies"]:
        g, e = got["strategies"][name], exp["strategies"][name]
        assert g["metrics"] == e["metrics"], name
        assert g["threshold"]["threshold"] == e["threshold"]["threshold"], name
        assert g["model"]["numeric_features"] == ["f.a", "f`b", "g c"]
        assert g["model"]["categorical_features"] == ["cat.x"]
    assert got["strategies"]["class_weight"]["class_weights"] == exp["strategies"]["class_weight"]["class_weights"]
    assert got["strategies"]["class_weight"]["metrics"] != got["strategies"]["none"]["metrics"]


def test_jobs_read_and_write_dotted_names(spark, job, tmp_path):
    """A CSV header with dots (as pandas or a spreadsheet writes it): the pipeline job runs end
    to end and writes the names back as they came; its report equals the plain-header run's."""
    pdf = _pdf(300, seed=8).drop(columns=["f`b"])  # a CSV header cell holding a backtick is rare; dots are not
    pdf.to_csv(tmp_path / "odd.csv", index=False)
    pdf.rename(columns=PLAIN_OF).to_csv(tmp_path / "plain.csv", index=False)
    common = ["--method", "smote", "--k-neighbors", "3", "--seed", "4", "--id-cols", "id",
              "--categorical", "cat.x", "--strategies", "none,smote", "--validation-size", "0"]
    r = job("pipeline.py", "--input", tmp_path / "odd.csv", "--label-col", "y.l", "--output", tmp_path / "o",
            *common)
    assert r.returncode == 0, r.stderr[-3000:]
    common[common.index("cat.x")] = "catx"
    r = job("pipeline.py", "--input", tmp_path / "plain.csv", "--label-col", "yl", "--output", tmp_path / "p",
            *common)
    assert r.returncode == 0, r.stderr[-3000:]
    odd_rows = spark.read.parquet(str(tmp_path / "o" / "resampled"))
    assert odd_rows.columns == ["id", "f.a", "g c", "cat.x", "y.l", "is_synthetic"]
    pd.testing.assert_frame_equal(_rows(odd_rows), _rows(spark.read.parquet(str(tmp_path / "p" / "resampled"))))
    got = json.loads((tmp_path / "o" / "report.json").read_text())
    exp = json.loads((tmp_path / "p" / "report.json").read_text())
    for name in ("none", "smote"):
        assert got["strategies"][name]["metrics"] == exp["strategies"][name]["metrics"], name
    assert got["strategies"]["smote"]["model"]["numeric_features"] == ["f.a", "g c"]
    dist = json.loads((tmp_path / "o" / "distribution.json").read_text())
    assert dist["label_col"] == "y.l" and sum(c["count"] for c in dist["classes"]) == 300
