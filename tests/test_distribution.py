import json
from collections import Counter

import pytest

from imbal_spark.distribution import class_distribution, distribution_by
from imbal_spark.errors import InputError, MissingColumnError


def test_counts_fractions_ratio_and_nulls(spark):
    labels = [0] * 90 + [1] * 7 + [2] * 3 + [None] * 4
    df = spark.createDataFrame([(i, v) for i, v in enumerate(labels)], "id long, y long").repartition(3)
    d = class_distribution(df, "y").to_dict()
    expected = Counter(v for v in labels if v is not None)
    assert d["total_rows"] == 104 and d["labelled_rows"] == 100 and d["null_labels"] == 4
    assert [c["label"] for c in d["classes"]] == [0, 1, 2]
    assert {c["label"]: c["count"] for c in d["classes"]} == dict(expected)
    assert [c["fraction"] for c in d["classes"]] == pytest.approx([0.90, 0.07, 0.03])
    assert d["majority_class"] == 0 and d["minority_class"] == 2
    assert d["imbalance_ratio"] == pytest.approx(30.0)
    json.dumps(d)  # JSON-serialisable as is


def test_string_labels_and_table(spark):
    df = spark.createDataFrame([("fraud",)] * 2 + [("ok",)] * 8, "label string")
    dist = class_distribution(df, "label")
    assert dist.counts == {"fraud": 2, "ok": 8}
    assert dist.majority == "ok" and dist.minority == "fraud" and dist.imbalance_ratio == 4.0
    table = dist.table()
    assert "fraud" in table and "(minority)" in table and "4.00" in table


def test_by_group_is_a_dataframe_with_per_group_figures(spark):
    rows = [("d1", 0)] * 8 + [("d1", 1)] * 2 + [("d2", 0)] * 3 + [("d2", 1)] * 3 + [("d2", None)]
    df = spark.createDataFrame(rows, "day string, label long")
    out = {(r["day"], r["label"]): r.asDict() for r in distribution_by(df, "label", "day").collect()}
    assert set(out) == {("d1", 0), ("d1", 1), ("d2", 0), ("d2", 1)}
    assert out[("d1", 1)]["count"] == 2 and out[("d1", 1)]["fraction"] == pytest.approx(0.2)
    assert out[("d1", 0)]["imbalance_ratio"] == pytest.approx(4.0)
    assert out[("d1", 0)]["is_majority"] and out[("d1", 1)]["is_minority"]
    assert out[("d2", 0)]["imbalance_ratio"] == pytest.approx(1.0)
    assert out[("d2", 0)]["group_null_labels"] == 1 and out[("d1", 0)]["group_null_labels"] == 0


def test_missing_label_column(spark):
    df = spark.createDataFrame([(1,)], "x long")
    with pytest.raises(MissingColumnError, match=r"label column 'label' is not in the input; available columns: x"):
        class_distribution(df, "label")


def test_not_a_label(spark):
    df = spark.range(0, 1500).withColumnRenamed("id", "y")
    with pytest.raises(InputError, match="more than 1000 distinct values"):
        class_distribution(df, "y")


def test_by_the_label_or_a_name_the_output_uses_is_a_clear_error(spark):
    from imbal_spark.distribution import class_counts, distribution_by

    df = spark.createDataFrame([(0, "a", 1), (1, "b", 2), (0, "b", 3)], "label long, g string, count long")
    with pytest.raises(InputError, match="--by 'label' is the label column"):
        distribution_by(df, "label", "label")
    with pytest.raises(InputError, match="column 'count' has the name of a column of the --by output"):
        distribution_by(df, "label", "count")
    with pytest.raises(InputError, match="column 'count' has the name of a column of the --by output"):
        distribution_by(df, "count", "g")
    assert class_counts(df, "count") == ({1: 1, 2: 1, 3: 1}, 0)  # a label named count is counted
