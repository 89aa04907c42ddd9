"""MLlib classifiers from config, trained with or without class weights.

Features are assembled from numeric columns (optionally standardised) and categorical
columns (indexed, then one-hot encoded); the label is mapped to ``0..k-1`` in sorted label
order (scikit-learn's ``classes_`` order), so probability column ``i`` is the ``i``-th class.

Logistic regression takes scikit-learn's ``C`` and maps it to MLlib exactly: scikit-learn
minimises ``C * Σ w_i loss_i + ||β||² / 2``, MLlib ``Σ w_i loss_i / Σ w_i + regParam ||β||² / 2``
(``elasticNetParam=0``, ``standardization=False``), so ``regParam = 1 / (C * Σ w_i)``; ``Σ w_i``
comes from the class counts, not from another pass over the data. Without ``C`` or
``regParam`` the default is scikit-learn's ``C=1.0``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from .distribution import label_sort_key
from .errors import ConfigError, InputError, MissingColumnError
from .names import col, fresh, needs_quotes, ref
from .weights import UNWEIGHTED_MODELS, check_weight_support

log = logging.getLogger(__name__)

#: name -> (pyspark.ml.classification class, binary only?)
MODELS = {
    "logistic_regression": ("LogisticRegression", False),
    "linear_svc": ("LinearSVC", True),
    "decision_tree": ("DecisionTreeClassifier", False),
    "random_forest": ("RandomForestClassifier", False),
    "gbt": ("GBTClassifier", True),
    "naive_bayes": ("NaiveBayes", False),
    "mlp": ("MultilayerPerceptronClassifier", False),
    "fm": ("FMClassifier", True),
}
ALIASES = {
    "lr": "logistic_regression", "logistic": "logistic_regression", "logisticregression": "logistic_regression",
    "svm": "linear_svc", "linear_svm": "linear_svc", "linearsvc": "linear_svc",
    "dt": "decision_tree", "tree": "decision_tree", "decisiontreeclassifier": "decision_tree",
    "rf": "random_forest", "randomforestclassifier": "random_forest",
    "gbt_classifier": "gbt", "gradient_boosted_trees": "gbt", "gbtclassifier": "gbt",
    "nb": "naive_bayes", "naivebayes": "naive_bayes",
    "multilayer_perceptron": "mlp", "multilayerperceptronclassifier": "mlp",
    "factorization_machines": "fm", "fmclassifier": "fm",
}
#: scikit-learn spellings accepted for MLlib parameters
SK_PARAMS = {"max_iter": "maxIter", "fit_intercept": "fitIntercept", "l1_ratio": "elasticNetParam",
             "max_depth": "maxDepth", "n_estimators": "numTrees", "min_samples_leaf": "minInstancesPerNode",
             "random_state": "seed", "learning_rate": "stepSize"}
#: Defaults that make a model behave like its scikit-learn counterpart (user params win).
DEFAULTS = {
    "logistic_regression": {"elasticNetParam": 0.0, "standardization": False, "maxIter": 1000},
    "naive_bayes": {"modelType": "gaussian"},  # MLlib's 'multinomial' refuses negative features
}
LABEL_IDX = "_label_idx"
FEATURES = "_features"
INTERNAL = ("is_synthetic",)
WEIGHT_COPY = "_row_weight"
#: Most distinct values of a categorical column: MLlib's StringIndexer brings every value to the
#: driver and the one-hot vector has one slot per value, so an id-like column would swamp both.
MAX_CATEGORIES = 100_000


def canonical_model(name: str) -> str:
    key = str(name).strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key not in MODELS:
        raise ConfigError(
            f"unknown model {name!r}; choose one of {', '.join(MODELS)} "
            f"({', '.join(UNWEIGHTED_MODELS)} cannot take class weights)"
        )
    return key


def resolve_features(df: DataFrame, label_col: str, features=None, categorical=None, id_cols=(),
                     weight_col: str | None = None, exclude=()) -> tuple[list, list]:
    """(numeric feature columns, categorical columns). Without ``features``: every numeric column
    except the label, id columns, the weight column and bookkeeping columns."""
    categorical = list(categorical or [])
    for c in categorical:
        if c not in df.columns:
            raise MissingColumnError(c, df.columns, "categorical column")
    types = dict(df.dtypes)
    skip = {label_col, weight_col, *id_cols, *INTERNAL, *exclude, *categorical}
    if features:
        for c in features:
            if c not in df.columns:
                raise MissingColumnError(c, df.columns, "feature column")
            if c == label_col:
                raise ConfigError(f"the label column {label_col!r} cannot also be a feature; remove it from features")
        numeric = [c for c in features if c not in categorical]
        bad = [c for c in numeric if not _is_numeric(types[c])]
        if bad:
            raise InputError(
                f"feature column {bad[0]!r} has type {types[bad[0]]}, not a number; list it under "
                f"categorical to one-hot encode it, or drop it from features"
            )
    else:
        numeric = [c for c in df.columns if c not in skip and _is_numeric(types[c])]
    if not numeric and not categorical:
        raise InputError(
            f"no feature columns: the input has no numeric column besides {label_col!r} and the "
            f"id columns; pass features or categorical"
        )
    return numeric, categorical


def _is_numeric(t: str) -> bool:
    return t in ("tinyint", "smallint", "int", "bigint", "float", "double") or t.startswith("decimal")


def label_index_expr(label_col: str, classes: list):
    expr = None
    for i, c in enumerate(classes):
        cond = col(label_col) == F.lit(c)
        expr = F.when(cond, F.lit(float(i))) if expr is None else expr.when(cond, F.lit(float(i)))
    return expr  # null for an unknown label (checked before training)


def index_to_label_expr(index_col: str, classes: list):
    expr = None
    for i, c in enumerate(classes):
        cond = F.col(index_col) == F.lit(float(i))
        expr = F.when(cond, F.lit(c)) if expr is None else expr.when(cond, F.lit(c))
    return expr


def internal_names(n_categorical: int) -> list:
    """The columns the model pipeline adds (and MLlib's own outputs)."""
    return [LABEL_IDX, FEATURES, "_features_raw", "prediction", "rawPrediction", "probability",
            *(f"_cat{i}_{s}" for i in range(n_categorical) for s in ("idx", "ohe"))]


def check_internal_names(used: list, n_categorical: int) -> None:
    """A column the model uses may not have the name of one the pipeline adds: it would be
    replaced (a feature named like the label index would leak the label) or refused mid-fit."""
    mine = {n.lower(): n for n in internal_names(n_categorical)}
    clash = [c for c in used if c.lower() in mine]
    if clash:
        raise InputError(f"column {clash[0]!r} has the name of a column the model pipeline adds "
                         f"({mine[clash[0].lower()]!r}); rename it before training")


def check_categories(df: DataFrame, categorical) -> None:
    """One aggregation (HyperLogLog counts, 5% error): a categorical column with more than
    :data:`MAX_CATEGORIES` distinct values is an InputError naming it, before MLlib collects them."""
    if not categorical:
        return
    got = df.agg(*[F.approx_count_distinct(col(c), 0.05).alias(f"_n{i}") for i, c in enumerate(categorical)]).first()
    for i, c in enumerate(categorical):
        if got[i] > MAX_CATEGORIES:
            raise InputError(f"categorical column {c!r} has about {got[i]:,} distinct values, more than "
                             f"{MAX_CATEGORIES:,} (one-hot encoding makes a feature of each); is it an id? "
                             f"Drop it from --categorical or bucket its values first")


def feature_stages(numeric, categorical, scale: bool):
    from pyspark.ml.feature import OneHotEncoder, StandardScaler, StringIndexer, VectorAssembler

    stages, inputs = [], [ref(c) for c in numeric]  # MLlib parses names: quoted
    if categorical:
        # internal names by position: a category column's own name may hold dots or backticks
        idx = [f"_cat{i}_idx" for i in range(len(categorical))]
        ohe = [f"_cat{i}_ohe" for i in range(len(categorical))]
        # scikit-learn's OneHotEncoder(handle_unknown='ignore'): one slot per training category;
        # an unseen category (or null) is indexed as "__unknown", the last value, which dropLast
        # removes, so it encodes as all zeros instead of failing at predict time
        stages.append(StringIndexer(inputCols=[ref(c) for c in categorical], outputCols=idx, handleInvalid="keep",
                                    stringOrderType="alphabetAsc"))
        stages.append(OneHotEncoder(inputCols=idx, outputCols=ohe, dropLast=True))
        inputs += ohe
    raw = "_features_raw" if scale else FEATURES
    stages.append(VectorAssembler(inputCols=inputs, outputCol=raw, handleInvalid="error"))
    if scale:
        # centre and scale like scikit-learn's StandardScaler, except that MLlib divides by the
        # sample std (n-1), scikit-learn by the population std (n): a factor sqrt(n/(n-1))
        stages.append(StandardScaler(inputCol=raw, outputCol=FEATURES, withMean=True, withStd=True))
    return stages


def build_classifier(model: str, params: dict | None, *, n_classes: int, n_inputs: int,
                     weight_col: str | None, weight_sum: float, seed: int | None = None):
    """The configured MLlib estimator (label ``_label_idx``, features ``_features``).

    Returns ``(estimator, resolved params)``; unknown parameters are a ConfigError listing the
    valid ones."""
    from pyspark.ml import classification as mlc

    model = canonical_model(model)
    cls_name, binary_only = MODELS[model]
    if binary_only and n_classes > 2:
        raise ConfigError(
            f"model {model!r} (MLlib {cls_name}) handles two classes only, and the label has "
            f"{n_classes}; use logistic_regression, random_forest, decision_tree or naive_bayes"
        )
    check_weight_support(model, weight_col is not None)
    est = getattr(mlc, cls_name)(featuresCol=FEATURES, labelCol=LABEL_IDX)
    given = {SK_PARAMS.get(k, k): v for k, v in dict(params or {}).items()}
    resolved = dict(DEFAULTS.get(model, {}))
    if model == "logistic_regression":
        if "C" in given and "regParam" in given:
            raise ConfigError("model_params gives both C and regParam; give one (regParam = 1 / (C * sum of weights))")
        if "regParam" not in given:
            C = given.pop("C", 1.0)
            if isinstance(C, bool) or not isinstance(C, (int, float)) or C <= 0:
                raise ConfigError(f"model_params C must be a positive number, got {C!r}")
            resolved["C"] = float(C)
            resolved["regParam"] = 1.0 / (float(C) * weight_sum)
    elif "C" in given:
        raise ConfigError(f"model_params C applies to logistic_regression only, not {model!r}")
    if model == "mlp":
        hidden = given.pop("hidden_layers", [max(2, n_inputs)])
        if not isinstance(hidden, list) or not all(isinstance(h, int) and h > 0 for h in hidden):
            raise ConfigError(f"model_params hidden_layers must be a list of positive integers, got {hidden!r}")
        if "layers" in given:
            raise ConfigError("model_params: give hidden_layers for mlp; input and output sizes come from the data")
        resolved["layers"] = [n_inputs, *hidden, n_classes]
    resolved.update(given)
    if seed is not None and est.hasParam("seed") and "seed" not in resolved:
        resolved["seed"] = int(seed)
    for k in ("featuresCol", "labelCol", "weightCol"):
        if k in resolved:
            raise ConfigError(f"model_params {k!r} is set by imbal-spark; remove it")
    to_set = {}
    for k, v in resolved.items():
        if k == "C":
            continue
        if not est.hasParam(k):
            valid = sorted(p.name for p in est.params if p.name not in ("featuresCol", "labelCol", "weightCol"))
            raise ConfigError(
                f"model_params key {k!r} is not a parameter of MLlib {cls_name}; valid: {', '.join(valid)}"
                + (" (and C)" if model == "logistic_regression" else "")
            )
        to_set[k] = v
    try:
        est.setParams(**to_set) if hasattr(est, "setParams") else None
    except (TypeError, ValueError) as e:
        raise ConfigError(f"model_params for {model!r} are invalid: {e}") from None
    if weight_col is not None:
        est.setWeightCol(weight_col)
    return est, resolved


@dataclass
class FittedModel:
    """A fitted feature + classifier ``PipelineModel`` and what is needed to read its output."""

    pipeline: object  # pyspark.ml.PipelineModel
    label_col: str
    classes: list
    model: str
    params: dict
    numeric: list
    categorical: list
    pos_label: object = None
    weighted: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def binary(self) -> bool:
        return len(self.classes) == 2

    def predict(self, df: DataFrame, prediction_col: str = "prediction_label",
                score_col: str = "score") -> DataFrame:
        """``df`` + the predicted label (original label type) and, for binary problems, the score
        of ``pos_label`` (probability, or the raw margin for a model without probabilities)."""
        from pyspark.ml.functions import vector_to_array

        out = self.pipeline.transform(df)
        out = out.withColumn(prediction_col, index_to_label_expr("prediction", self.classes))
        if self.binary:
            i = self.classes.index(self.pos_label)
            src = "probability" if "probability" in out.columns else "rawPrediction"
            out = out.withColumn(score_col, vector_to_array(F.col(src))[i])
        return out

    def save(self, path: str) -> None:
        self.pipeline.write().overwrite().save(path)

    def describe(self) -> dict:
        return {"model": self.model, "params": self.params, "classes": [str(c) for c in self.classes],
                "pos_label": None if self.pos_label is None else str(self.pos_label),
                "numeric_features": self.numeric, "categorical_features": self.categorical,
                "weighted": self.weighted, **self.extra}


def check_feature_values(df: DataFrame, numeric: list, side: str = "training") -> None:
    """One aggregation: refuse null, NaN or infinite values in the numeric features (MLlib's
    assembler would fail mid-job with a stack trace on nulls and NaN, and train silently on
    infinities), naming each bad column and its row count (a second aggregation, only then)."""
    if not numeric:
        return
    cols = [col(c).cast("double") for c in numeric]
    total = cols[0].isNotNull() & (F.abs(cols[0]) < float("inf"))
    for c in cols[1:]:
        total = total & c.isNotNull() & (F.abs(c) < float("inf"))
    n, ok = df.agg(F.count(F.lit(1)), F.count_if(total)).first()
    if n == ok:
        return
    bad = df.agg(*[F.count_if(c.isNull() | ~(F.abs(c) < float("inf"))) for c in cols]).first()
    what = ", ".join(f"{c!r} ({b} row{'s' if b != 1 else ''})" for c, b in zip(numeric, bad) if b)
    raise InputError(f"feature column(s) with null, NaN or infinite values in the {side} data: {what}; "
                     f"the model needs finite numbers in every feature: drop or impute those rows first")


def fit(df: DataFrame, label_col: str, classes: list, model: str = "logistic_regression",
        params: dict | None = None, *, numeric, categorical=(), scale: bool = False,
        weight_col: str | None = None, weight_sum: float | None = None, seed: int | None = None,
        pos_label=None) -> FittedModel:
    """Fit the feature stages and the classifier on ``df`` (labels must be among ``classes``).

    ``weight_sum``: Σ of ``weight_col`` (or the row count when unweighted), for LR's ``C``.
    """
    from pyspark.ml import Pipeline, PipelineModel

    classes = sorted(classes, key=label_sort_key)
    if len(classes) < 2:
        raise InputError(
            f"the training data has only one class ({classes[0] if classes else 'none'}) in "
            f"{label_col!r}; a classifier needs at least two"
        )
    if weight_sum is None:
        weight_sum = float(df.count()) if weight_col is None else float(df.agg(F.sum(col(weight_col))).first()[0])
    check_internal_names([label_col, *numeric, *categorical, *([weight_col] if weight_col else [])], len(categorical))
    check_categories(df, list(categorical))
    data = df.withColumn(LABEL_IDX, label_index_expr(label_col, classes))
    if weight_col is not None and needs_quotes(weight_col):  # MLlib's weightCol takes a plain name
        copy = fresh(WEIGHT_COPY, data.columns)
        data, weight_col = data.withColumn(copy, col(weight_col)), copy
    feat_model = Pipeline(stages=feature_stages(numeric, list(categorical), scale)).fit(data)
    featured = feat_model.transform(data)
    n_inputs = _vector_size(featured, FEATURES)
    est, resolved = build_classifier(model, params, n_classes=len(classes), n_inputs=n_inputs,
                                     weight_col=weight_col, weight_sum=weight_sum, seed=seed)
    try:
        clf = est.fit(featured)
    except Exception as e:  # Py4JJavaError / IllegalArgumentException from MLlib
        msg = str(e).splitlines()[0][:400]
        if "IllegalArgumentException" in type(e).__name__ or "requirement failed" in str(e):
            raise InputError(f"MLlib {type(est).__name__} refused the training data: {msg}") from None
        raise
    pm = PipelineModel(stages=[*feat_model.stages, clf])
    if pos_label is None and len(classes) == 2:
        pos_label = classes[1]
    extra = {}
    if hasattr(clf, "summary") and hasattr(clf, "hasSummary") and clf.hasSummary:
        try:
            extra["iterations"] = int(clf.summary.totalIterations)
        except Exception:  # summary not available for every model
            pass
    return FittedModel(pipeline=pm, label_col=label_col, classes=classes, model=canonical_model(model),
                       params=resolved, numeric=list(numeric), categorical=list(categorical),
                       pos_label=pos_label, weighted=weight_col is not None, extra=extra)


def _vector_size(df: DataFrame, col: str) -> int:
    meta = df.schema[col].metadata.get("ml_attr", {})
    if "num_attrs" in meta:
        return int(meta["num_attrs"])
    attrs = meta.get("attrs", {})
    n = sum(len(v) for v in attrs.values())
    if n:
        return n
    raise InputError(f"cannot tell the size of the assembled feature vector {col!r}")  # pragma: no cover
