"""Class weights as a Spark column, for every MLlib classifier that takes ``weightCol``.

``class_weight='balanced'`` follows scikit-learn: a class ``c`` weighs
``n_rows / (n_classes * n_c)``, computed from one ``groupBy(label).count()``; an explicit
mapping ``{label: weight}`` has its keys converted to the label column's type (YAML and JSON
keys are often strings) and a key naming a class the data does not have is an error, as in
scikit-learn. Classes not named in a mapping weigh 1.0.
"""

from __future__ import annotations

import math

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from .distribution import class_counts, label_sort_key
from .errors import ConfigError, InputError
from .names import col

#: MLlib classifiers without ``weightCol``: asked for class weights, they are refused.
UNWEIGHTED_MODELS = {
    "mlp": "MultilayerPerceptronClassifier",
    "fm": "FMClassifier",
}


def _label_kind(dtype: str) -> str:
    if dtype in ("tinyint", "smallint", "int", "bigint"):
        return "int"
    if dtype in ("float", "double") or dtype.startswith("decimal"):
        return "float"
    if dtype == "boolean":
        return "bool"
    return "str"


def convert_key(key, dtype: str, label_col: str):
    """A mapping key as a value of the label column's type, or a ConfigError naming it."""
    kind = _label_kind(dtype)
    try:
        if kind == "int":
            if isinstance(key, bool):
                raise ValueError
            if isinstance(key, float):
                if not key.is_integer():
                    raise ValueError
                return int(key)
            return int(str(key).strip())
        if kind == "float":
            if isinstance(key, bool):
                raise ValueError
            if dtype.startswith("decimal"):  # Spark gives Decimal values: Decimal("0.1") != 0.1
                from decimal import Decimal, InvalidOperation

                try:
                    d = Decimal(str(key).strip())
                except InvalidOperation:
                    raise ValueError from None
                if not d.is_finite():
                    raise ValueError
                return d
            return float(key)
        if kind == "bool":
            if isinstance(key, bool):
                return key
            s = str(key).strip().lower()
            if s in ("true", "1"):
                return True
            if s in ("false", "0"):
                return False
            raise ValueError
        return str(key)
    except (TypeError, ValueError):
        raise ConfigError(
            f"class_weight key {key!r} is not a value of label column {label_col!r} "
            f"(type {dtype}); use the class labels as keys"
        ) from None


def resolve_class_weights(class_weight, counts: dict, label_col: str, dtype: str) -> dict:
    """``{label: weight}`` for every class of ``counts`` (sorted {label: rows}).

    ``class_weight``: None (all 1.0), ``'balanced'``, or a mapping.
    """
    if not counts:
        raise InputError(f"label column {label_col!r} has no non-null values; nothing to weight")
    if class_weight is None or class_weight == "none":
        return {c: 1.0 for c in counts}
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ConfigError(
                f"class_weight {class_weight!r} is not supported; use 'balanced' or a "
                f"mapping {{label: weight}}"
            )
        n, k = sum(counts.values()), len(counts)
        return {c: n / (k * m) for c, m in counts.items()}
    if not isinstance(class_weight, dict):
        raise ConfigError(f"class_weight must be 'balanced' or a mapping {{label: weight}}, got {class_weight!r}")
    out = {c: 1.0 for c in counts}
    shown = ", ".join(map(str, counts))
    for key, w in class_weight.items():
        label = convert_key(key, dtype, label_col)
        if label not in counts:
            raise ConfigError(
                f"class_weight names class {key!r}, which is not in label column {label_col!r} "
                f"of the training data (classes: {shown}); remove it or fix the label"
            )
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w <= 0:
            raise ConfigError(f"class_weight for class {key!r} must be a positive number, got {w!r}")
        out[label] = float(w)
    return out


def weight_expr(label_col: str, weights: dict):
    """A Column: the weight of each row's class (1.0 for a class not in ``weights``)."""
    expr = None
    for label, w in sorted(weights.items(), key=lambda kv: label_sort_key(kv[0])):
        cond = col(label_col) == F.lit(label)
        expr = F.when(cond, F.lit(float(w))) if expr is None else expr.when(cond, F.lit(float(w)))
    return F.lit(1.0) if expr is None else expr.otherwise(F.lit(1.0))


def add_class_weights(df: DataFrame, label_col: str, class_weight, weight_col: str = "weight",
                      counts: dict | None = None) -> tuple[DataFrame, dict]:
    """``df`` with a ``weight_col`` column, and the resolved ``{label: weight}``.

    ``counts`` (from an earlier ``class_counts``) saves the one aggregation 'balanced' needs.
    """
    if label_col not in df.columns:
        from .errors import MissingColumnError

        raise MissingColumnError(label_col, df.columns, "label column")
    if weight_col in df.columns:
        raise InputError(
            f"the input already has a column {weight_col!r}; pass another --weight-col for the "
            f"class weights"
        )
    if counts is None:
        counts, _ = class_counts(df, label_col)
    dtype = dict(df.dtypes)[label_col]
    weights = resolve_class_weights(class_weight, counts, label_col, dtype)
    return df.withColumn(weight_col, weight_expr(label_col, weights)), weights


def weight_sum(weights: dict, counts: dict) -> float:
    """Σ instance weights of the training rows, from the class counts (no Spark job)."""
    return float(sum(weights.get(c, 1.0) * n for c, n in counts.items()))


def check_weight_support(model: str, weighted: bool) -> None:
    """Refuse class weights for a classifier that cannot take them (never train it unweighted)."""
    if weighted and model in UNWEIGHTED_MODELS:
        raise ConfigError(
            f"model {model!r} (MLlib {UNWEIGHTED_MODELS[model]}) has no weightCol, so it cannot "
            f"use class weights; choose a strategy without class_weight (e.g. smote, "
            f"random_under) or a weighted model (logistic_regression, linear_svc, decision_tree, "
            f"random_forest, gbt, naive_bayes)"
        )
