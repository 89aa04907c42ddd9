"""Stratified split: scikit-learn's per-class counts (oracle: train_test_split), exact rows,
disjoint halves, same split whatever the partitioning."""

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F
from sklearn.model_selection import train_test_split

from imbal_spark import split
from imbal_spark.errors import ConfigError, InputError


def _sk_counts(counts, test_size, seed):
    y = np.concatenate([np.full(n, c) for c, n in counts.items()])
    y_tr, y_te = train_test_split(y, test_size=test_size, stratify=y, random_state=seed)
    lab, tr = np.unique(y_tr, return_counts=True)
    lab2, te = np.unique(y_te, return_counts=True)
    return dict(zip(lab.tolist(), tr.tolist())), dict(zip(lab2.tolist(), te.tolist()))


@pytest.mark.parametrize("counts,test_size,seed", [
    ({0: 900, 1: 100}, 0.3, 42),
    ({0: 631, 1: 70}, 0.2, 0),
    ({0: 5, 1: 5, 2: 5}, 0.5, 1),          # equal remainders: ties broken by the RNG
    ({0: 5, 1: 5, 2: 5}, 0.5, 7),
    ({0: 7, 1: 7, 2: 7, 3: 7}, 0.3, 3),
    ({"a": 13, "b": 29, "c": 2}, 0.37, 11),
    ({0: 1000, 1: 3, 2: 17}, 0.11, 5),
])
def test_split_counts_equal_train_test_split(counts, test_size, seed):
    tr, te = split.split_counts(counts, test_size, seed)
    sk_tr, sk_te = _sk_counts(counts, test_size, seed)
    assert tr == sk_tr
    assert {c: n for c, n in te.items() if n} == sk_te
    assert sum(te.values()) == int(np.ceil(test_size * sum(counts.values())))


def test_bad_split_settings():
    with pytest.raises(InputError, match="class\\(es\\) 1 have fewer than 2 rows"):
        split.split_counts({0: 10, 1: 1}, 0.3, 0)
    with pytest.raises(ConfigError, match="test_size must be a fraction"):
        split.split_counts({0: 10, 1: 10}, 1.5, 0)
    with pytest.raises(InputError, match="fewer than the 3 classes"):
        split.split_counts({0: 2, 1: 2, 2: 2}, 0.1, 0)


def _data(spark, n0, n1, dup=0, parts=3):
    rng = np.random.default_rng(3)
    pdf = pd.DataFrame({"x": rng.normal(size=n0 + n1), "label": [0] * n0 + [1] * n1})
    if dup:  # identical rows: they share a key, the cut-off must still be exact
        pdf = pd.concat([pdf, pd.DataFrame({"x": [0.5] * dup, "label": [0] * dup})], ignore_index=True)
    return spark.createDataFrame(pdf).repartition(parts)


def _counts(df):
    return {r[0]: r[1] for r in df.groupBy("label").count().collect()}


def test_split_rows_exact_disjoint_and_partition_independent(spark):
    df = _data(spark, 450, 50)
    tr, te, info = split.stratified_split(df, "label", 0.3, seed=42)
    assert info["test_counts"] == {0: 135, 1: 15} and info["train_counts"] == {0: 315, 1: 35}
    assert _counts(te) == info["test_counts"] and _counts(tr) == info["train_counts"]
    a = sorted(r.x for r in te.collect())
    b = sorted(r.x for r in tr.collect())
    assert sorted(a + b) == sorted(r.x for r in df.collect())  # disjoint and complete
    # same seed, other partitioning -> same rows; other seed -> other rows
    tr2, te2, _ = split.stratified_split(df.repartition(1), "label", 0.3, seed=42)
    assert sorted(r.x for r in te2.collect()) == a
    _, te3, _ = split.stratified_split(df, "label", 0.3, seed=43)
    assert sorted(r.x for r in te3.collect()) != a


def test_radix_passes_and_duplicate_rows(spark, monkeypatch):
    # a tiny exact threshold forces the radix passes; duplicated rows sit on the cut-off key
    monkeypatch.setattr(split, "EXACT_ROWS", 8)
    # 200 identical rows out of 220 in class 0: the 110th smallest key is surely theirs
    df = _data(spark, 20, 40, dup=200)
    tr, te, info = split.stratified_split(df, "label", 0.5, seed=9)
    assert _counts(te) == info["test_counts"] == {0: 110, 1: 20}
    assert _counts(tr) == info["train_counts"]
    dups_te = te.where("x = 0.5").count()
    dups_tr = tr.where("x = 0.5").count()
    assert dups_te + dups_tr == 200 and 0 < dups_te < 200


@pytest.mark.parametrize("exact_rows", [10_000, 64], ids=["exact-pass", "radix-passes"])
def test_the_driver_gets_a_row_per_class_not_the_keys(spark, monkeypatch, exact_rows):
    """Cut-off keys are found by a window per class on the executors: each collect of the split
    returns at most a row per class (it used to return every key of a class up to 10,000, or
    4,096 digits per class per radix pass: 10M rows for 1,000 classes). The counts are
    scikit-learn's, the sides disjoint and complete."""
    monkeypatch.setattr(split, "EXACT_ROWS", exact_rows)
    sizes = {c: 150 + 10 * c for c in range(12)}
    pdf = pd.DataFrame({"label": np.repeat(list(sizes), list(sizes.values())),
                        "x": np.arange(sum(sizes.values()), dtype=np.float64)})
    df = spark.createDataFrame(pdf).repartition(3)
    DataFrame = type(df)  # the classic DataFrame class, whose collect every query of the split calls
    got = []
    real = DataFrame.collect

    def counting(self):
        rows = real(self)
        got.append(len(rows))
        return rows

    monkeypatch.setattr(DataFrame, "collect", counting)
    tr, te, info = split.stratified_split(df, "label", 0.25, seed=3)
    monkeypatch.setattr(DataFrame, "collect", real)
    assert got and max(got) <= len(sizes) + 2, got
    assert (info["train_counts"], info["test_counts"]) == _sk_counts(sizes, 0.25, 3)
    assert _counts(te) == info["test_counts"] and _counts(tr) == info["train_counts"]
    assert sorted([r.x for r in te.collect()] + [r.x for r in tr.collect()]) == pdf["x"].tolist()


def test_nan_labels_are_an_error_as_in_the_samplers(spark):
    df = spark.range(6).select(F.col("id").cast("double").alias("x"),
                               F.when(F.col("id") % 3 == 1, F.lit(float("nan"))).otherwise(F.col("id") % 2)
                               .cast("double").alias("label"))  # NaN itself, not null
    with pytest.raises(InputError, match="label column 'label' has 2 NaN value"):
        split.stratified_split(df, "label", 0.3)


def test_null_labels_are_an_error(spark):
    df = spark.createDataFrame(pd.DataFrame({"x": [1.0, 2.0, 3.0], "label": [0.0, None, 1.0]}))
    with pytest.raises(InputError, match="label column 'label' has 1 null"):
        split.stratified_split(df, "label", 0.3)


def test_decimal_labels_are_numbers_in_the_split_and_the_metrics(spark):
    """A decimal label column gives Decimal values: they sort as numbers (2 < 9 < 10), as
    scikit-learn sorts them, not as text ("10" < "2"); the split's tie-breaks follow that order."""
    from decimal import Decimal

    from pyspark.sql import functions as F

    from imbal_spark.metrics import confusion_matrix

    rows = [2] * 5 + [10] * 5 + [9] * 5
    df = (spark.createDataFrame([(v, float(i)) for i, v in enumerate(rows)], "label int, x double")
          .withColumn("label", F.col("label").cast("decimal(4,0)")))
    _, te, info = split.stratified_split(df, "label", 0.3, seed=0)
    y = np.array([Decimal(v) for v in rows], dtype=object)
    _, y_te = train_test_split(y, test_size=0.3, stratify=y, random_state=0)
    lab, n = np.unique(y_te, return_counts=True)
    assert info["test_counts"] == dict(zip(lab.tolist(), n.tolist()))
    assert list(info["test_counts"]) == [Decimal(2), Decimal(9), Decimal(10)]
    assert _counts(te) == info["test_counts"]
    labels, _ = confusion_matrix(df.withColumn("prediction", F.col("label")), "label", "prediction")
    assert labels == [Decimal(2), Decimal(9), Decimal(10)]


def test_rows_differing_only_in_a_map_are_split_by_their_content(spark):
    """Map columns count in a row's key (in canonical form: entries sorted), so rows differing
    only in a map get different keys and the held-out rows, those of smallest key in each class,
    are the same whatever the partitioning; equal maps listed in another order give one key."""
    df = spark.range(400).selectExpr(
        "cast(id % 5 = 0 as int) as label", "1.5 as x",
        "if(id % 2 = 0, map('i', id, 'z', 0), map('z', 0, 'i', id)) as attrs")
    same = df.sparkSession.sql("select map('a', 1, 'b', 2) as m union all select map('b', 2, 'a', 1)")
    assert same.select(split.row_key(same, 7)).distinct().count() == 1
    keys = df.select(F.col("attrs")["i"].alias("i"), "label", split.row_key(df, 7).alias("k")).toPandas()
    assert keys["k"].nunique() == 400
    held = []
    for parts in (1, 4):
        _, te, info = split.stratified_split(df.repartition(parts), "label", 0.25, seed=7)
        held.append(sorted(r.i for r in te.select(F.col("attrs")["i"].alias("i")).collect()))
    assert info["test_counts"] == {0: 80, 1: 20}
    ranked = keys.sort_values("k")
    want = [i for c, n in info["test_counts"].items() for i in ranked[ranked.label == c]["i"][:n]]
    assert held[0] == held[1] == sorted(want)


def test_rows_tied_at_the_cut_off_key_with_variant_and_nested_map_columns(spark, monkeypatch):
    """Identical rows share the cut-off key and are ranked by a second content hash, which any
    column type allows (ordering by the columns failed on variants and maps in arrays)."""
    monkeypatch.setattr(split, "EXACT_ROWS", 8)
    df = spark.range(40).selectExpr("cast(id % 2 as int) as label", "1.0 as x",
                                    "parse_json('{\"a\":1}') as v", "array(map('k', 1)) as am")
    tr, te, info = split.stratified_split(df, "label", 0.25, seed=7)
    assert info["test_counts"] == {0: 5, 1: 5}
    assert _counts(te) == {0: 5, 1: 5} and _counts(tr) == {0: 15, 1: 15}
