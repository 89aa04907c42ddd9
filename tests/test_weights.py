"""Class weights: scikit-learn's compute_class_weight as oracle, keys matched to the label type,
named errors, and refusal for classifiers without weightCol."""

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.class_weight import compute_class_weight

from imbal_spark import weights
from imbal_spark.errors import ConfigError, InputError


@pytest.fixture(scope="module")
def frames(spark):
    ints = spark.createDataFrame(pd.DataFrame({"x": np.arange(100.0), "label": [0] * 70 + [1] * 25 + [2] * 5}))
    strs = spark.createDataFrame(pd.DataFrame({"x": np.arange(40.0), "label": ["no"] * 31 + ["yes"] * 9}))
    return ints, strs


def _row_weights(df, col="weight"):
    return {r["label"]: r[col] for r in df.select("label", col).distinct().collect()}


def test_balanced_equals_sklearn(frames):
    ints, strs = frames
    for df, y in ((ints, [0] * 70 + [1] * 25 + [2] * 5), (strs, ["no"] * 31 + ["yes"] * 9)):
        out, w = weights.add_class_weights(df, "label", "balanced")
        classes = np.unique(y)
        sk = dict(zip(classes.tolist(), compute_class_weight("balanced", classes=classes, y=y)))
        assert w == pytest.approx(sk, abs=1e-12)
        assert _row_weights(out) == pytest.approx(sk, abs=1e-12)
        # the weights sum to the row count: LR's regParam = 1 / (C * n) as unweighted
        assert weights.weight_sum(w, {c: y.count(c) for c in classes.tolist()}) == pytest.approx(len(y))


def test_mapping_keys_are_matched_to_the_label_type(frames):
    ints, strs = frames
    # JSON / YAML often give string keys for integer labels; unnamed classes weigh 1.0
    out, w = weights.add_class_weights(ints, "label", {"2": 10, 1.0: 3})
    assert w == {0: 1.0, 1: 3.0, 2: 10.0}
    assert _row_weights(out) == {0: 1.0, 1: 3.0, 2: 10.0}
    sk = compute_class_weight({0: 1.0, 1: 3.0, 2: 10.0}, classes=np.array([0, 1, 2]), y=[0, 1, 2])
    assert list(sk) == [w[0], w[1], w[2]]
    _, w = weights.add_class_weights(strs, "label", {"yes": 4.5}, weight_col="w")
    assert w == {"no": 1.0, "yes": 4.5}


def test_mapping_errors_name_the_class(frames):
    ints, _ = frames
    with pytest.raises(ConfigError, match=r"class_weight names class '7', which is not in label column 'label'.*classes: 0, 1, 2"):
        weights.add_class_weights(ints, "label", {"7": 2.0})
    with pytest.raises(ConfigError, match=r"key 'abc' is not a value of label column 'label' \(type bigint\)"):
        weights.add_class_weights(ints, "label", {"abc": 2.0})
    with pytest.raises(ConfigError, match="must be a positive number"):
        weights.add_class_weights(ints, "label", {0: -1})
    with pytest.raises(ConfigError, match="'balance' is not supported"):
        weights.add_class_weights(ints, "label", "balance")
    with pytest.raises(InputError, match="already has a column 'x'"):
        weights.add_class_weights(ints, "label", "balanced", weight_col="x")


@pytest.mark.parametrize("model", ["mlp", "fm"])
def test_models_without_weightcol_are_refused(model):
    with pytest.raises(ConfigError, match=r"has no weightCol, so it cannot use class weights"):
        weights.check_weight_support(model, weighted=True)
    weights.check_weight_support(model, weighted=False)  # unweighted strategies are fine
    weights.check_weight_support("random_forest", weighted=True)


def test_mapping_keys_of_a_decimal_label_match_its_values(spark):
    """Spark gives a decimal label column's values as Decimal, and Decimal("0.1") != 0.1: keys
    become Decimals, so "0.1" names class 0.1."""
    from decimal import Decimal

    from pyspark.sql import functions as F

    df = (spark.createDataFrame(pd.DataFrame({"l": [0] * 6 + [1] * 2}))
          .withColumn("label", (F.col("l") / 10).cast("decimal(3,1)")))
    out, w = weights.add_class_weights(df, "label", {"0.1": 3.0, 0.0: 0.5})
    assert w == {Decimal("0.0"): 0.5, Decimal("0.1"): 3.0}
    assert _row_weights(out) == {Decimal("0.0"): 0.5, Decimal("0.1"): 3.0}
    with pytest.raises(ConfigError, match=r"key 'abc' is not a value of label column 'label' \(type decimal\(3,1\)\)"):
        weights.add_class_weights(df, "label", {"abc": 2.0})
