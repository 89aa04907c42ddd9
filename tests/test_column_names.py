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
    base = {"strategies": ["class_weight", "smote"], "k_neighbors": 3, "seed": 3,
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
    assert got["strategies"]["class_weight"]["model"]["weighted"] and not got["strategies"]["smote"]["model"]["weighted"]


def test_jobs_read_and_write_dotted_names(spark, job, tmp_path):
    """A CSV header with dots (as pandas or a spreadsheet writes it): the pipeline job runs end
    to end and writes the names back as they came; its report equals the plain-header run's."""
    pdf = _pdf(300, seed=8).drop(columns=["f`b"])  # a CSV header cell holding a backtick is rare; dots are not
    pdf.to_csv(tmp_path / "odd.csv", index=False)
    pdf.rename(columns=PLAIN_OF).to_csv(tmp_path / "plain.csv", index=False)
    common = ["--method", "smote", "--k-neighbors", "3", "--seed", "4", "--id-cols", "id",
              "--categorical", "cat.x", "--strategies", "smote", "--validation-size", "0"]
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
    assert got["strategies"]["smote"]["metrics"] == exp["strategies"]["smote"]["metrics"]
    assert got["strategies"]["smote"]["model"]["numeric_features"] == ["f.a", "g c"]
    dist = json.loads((tmp_path / "o" / "distribution.json").read_text())
    assert dist["label_col"] == "y.l" and sum(c["count"] for c in dist["classes"]) == 300


# -- a user's column named like an internal one is never replaced ---------------------------------

def _named(spark, names, n=240, seed=6):
    """Columns f0, f1, extra (floats), label (int): renamed to ``names``."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.2).astype(int)
    X = rng.normal(size=(n, 3)) + y[:, None]
    pdf = pd.DataFrame({"f0": X[:, 0], "f1": X[:, 1], "extra": X[:, 2], "label": y})
    return spark.createDataFrame(pdf).toDF(*names)


@pytest.mark.parametrize("cls,names", [
    (RandomOverSampler, ["f0", "f1", "extra", "_v0"]),   # the label where the copier's values go
    (SMOTE, ["f0", "f1", "extra", "_X0"]),               # ... the kernel's (any case: Spark's match)
    (RandomUnderSampler, ["f0", "f1", "_k1", "_k2"]),    # where the draw keys go
    (RandomUnderSampler, ["f0", "_j", "_k1n", "_r"]),    # where copies are numbered
], ids=["random_over-_v0", "smote-_X0", "random_under-_k1_k2", "random_under-copies"])
def test_samplers_keep_user_columns_named_like_their_internal_ones(spark, cls, names):
    odd = _named(spark, names)
    if names[1] == "_j":  # copies of rows: the under-sampler numbers them
        odd = odd.unionByName(odd.limit(30))
    plain = odd.toDF("f0", "f1", "extra", "label")
    kw = {"k_neighbors": 3} if cls is SMOTE else {}
    got = cls(label_col=names[3], features=names[:2], random_state=1, **kw).fit_resample(odd)
    exp = cls(label_col="label", features=["f0", "f1"], random_state=1, **kw).fit_resample(plain)
    assert got.columns == [*names, "is_synthetic"]
    a, b = got.toPandas(), exp.toPandas()
    a.columns = b.columns
    a, b = (x.sort_values(list(x.columns), na_position="first").reset_index(drop=True) for x in (a, b))
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == exp.count() and a[b.columns[2]].notna().sum() == (~a["is_synthetic"]).sum()


def test_the_split_keeps_user_columns_named_like_its_keys(spark):
    odd = _named(spark, ["_split_key", "_rn", "f1", "y"])
    odd = odd.unionByName(odd.limit(20))  # copies tie at the cut-off
    plain = odd.toDF("a", "b", "f1", "y")
    tr, te, _ = stratified_split(odd, "y", 0.3, seed=2)
    ptr, pte, _ = stratified_split(plain, "y", 0.3, seed=2)
    assert tr.columns == te.columns == ["_split_key", "_rn", "f1", "y"]
    for a, b in ((tr, ptr), (te, pte)):
        x, y = a.toPandas(), b.toPandas()
        x.columns = y.columns
        pd.testing.assert_frame_equal(*(v.sort_values(list(v.columns)).reset_index(drop=True) for v in (x, y)))


def test_training_refuses_a_feature_named_like_a_pipeline_column_and_keeps_row_weight(spark):
    from imbal_spark.errors import InputError
    from imbal_spark.training import fit

    odd = _named(spark, ["f0", "_LABEL_IDX", "extra", "y"])
    with pytest.raises(InputError, match=r"column '_LABEL_IDX' has the name of a column the model pipeline adds "
                                         r"\('_label_idx'\); rename it"):
        fit(odd, "y", [0, 1], numeric=["f0", "_LABEL_IDX"])
    # a feature named like the weight column's internal copy keeps its values
    d = _named(spark, ["f0", "_row_weight", "extra", "y"]).withColumn("w.t", F_when_label())
    plain = d.toDF("f0", "f1", "extra", "y", "wt")
    got = fit(d, "y", [0, 1], numeric=["f0", "_row_weight"], weight_col="w.t").pipeline.stages[-1]
    exp = fit(plain, "y", [0, 1], numeric=["f0", "f1"], weight_col="wt").pipeline.stages[-1]
    assert got.coefficients.toArray().tolist() == exp.coefficients.toArray().tolist()
    assert got.intercept == exp.intercept


def F_when_label():
    from pyspark.sql import functions as F

    return F.when(F.col("y") == 1, F.lit(3.0)).otherwise(F.lit(1.0))


def test_a_label_named_score_is_compared(spark):
    odd = _named(spark, ["f0", "f1", "extra", "score"], n=300)
    plain = odd.toDF("f0", "f1", "extra", "y")
    tr, te, _ = stratified_split(odd, "score", 0.3, seed=1)
    ptr, pte, _ = stratified_split(plain, "y", 0.3, seed=1)
    base = {"strategies": ["none"], "validation_size": 0.3, "seed": 1}
    got = run_comparison(spark, tr, te, {**base, "label_col": "score"})
    exp = run_comparison(spark, ptr, pte, {**base, "label_col": "y"})
    assert got["strategies"]["none"]["metrics"] == exp["strategies"]["none"]["metrics"]
    assert got["strategies"]["none"]["threshold"]["test_metrics"] == exp["strategies"]["none"]["threshold"]["test_metrics"]


def test_a_list_flag_names_columns_holding_commas_and_edge_spaces_in_a_json_array(spark, job, tmp_path):
    """`--features a,b` splits and strips; a JSON array names the columns as they are. SMOTE
    interpolates exactly the named features; the id columns of new rows are null."""
    pdf = _pdf(200, seed=5).drop(columns=["f`b", "cat.x"]).rename(columns={"f.a": "amount, eur", "g c": " x "})
    pdf["other"] = np.arange(200) * 0.5
    spark.createDataFrame(pdf).write.parquet(str(tmp_path / "in"))
    r = job("resample.py", "--input", tmp_path / "in", "--label-col", "y.l", "--method", "smote",
            "--k-neighbors", "3", "--features", '["amount, eur", " x "]', "--id-cols", '["id", "other"]',
            "--output", tmp_path / "o")
    assert r.returncode == 0, r.stderr[-3000:]
    out = spark.read.parquet(str(tmp_path / "o" / "data"))
    assert out.columns == ["id", "amount, eur", " x ", "y.l", "other", "is_synthetic"]
    counts = {r_["y.l"]: r_["count"] for r_ in out.groupBy(out["`y.l`"]).count().collect()}  # two classes
    assert counts[0] == counts[1] == int((pdf["y.l"] == 0).sum())
    new = out.filter("is_synthetic").toPandas()
    assert len(new) == counts[1] - int((pdf["y.l"] == 1).sum())
    # a new row's features lie between minority rows, not copied: interpolated columns vary
    assert new["amount, eur"].nunique() == len(new) and new[" x "].notna().all()
    assert new["id"].isna().all() and new["other"].isna().all()
    # the comma-separated form names other columns, and says so
    r = job("resample.py", "--input", tmp_path / "in", "--label-col", "y.l", "--method", "smote",
            "--features", "amount, eur, x ", "--output", tmp_path / "o2")
    assert r.returncode == 2 and "amount" in r.stderr and "eur" in r.stderr, r.stderr[-2000:]
    assert not (tmp_path / "o2").exists()
