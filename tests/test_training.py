"""Training: LR with scikit-learn's C equals scikit-learn's model (binary, weighted, and
multinomial), weights reach every weightCol classifier (weights == duplicated rows), named
errors for bad models and parameters."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression as SkLR

from imbal_spark import training
from imbal_spark.errors import ConfigError
from imbal_spark.weights import add_class_weights, weight_sum

F = [f"f{i}" for i in range(4)]


def _data(n=240, k=2, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.choice(k, size=n, p=[0.75, 0.25] if k == 2 else None)
    X = rng.normal(size=(n, 4)) + y[:, None] * np.array([1.0, -0.5, 0.3, 0.0])
    pdf = pd.DataFrame(X, columns=F)
    pdf["label"] = y.astype(np.int64)
    pdf["id"] = np.arange(n, dtype=np.int64)
    return pdf


def _probs(spark, model, pdf):
    out = model.predict(spark.createDataFrame(pdf)).select("id", "score", "probability").collect()
    return sorted(out)


def test_lr_with_C_and_balanced_weights_equals_sklearn(spark):
    pdf = _data()
    df = spark.createDataFrame(pdf)
    counts = pdf.label.value_counts().to_dict()
    wdf, w = add_class_weights(df, "label", "balanced", "weight", counts)
    m = training.fit(wdf, "label", [0, 1], "logistic_regression", {"C": 0.05, "tol": 1e-12},
                     numeric=F, weight_col="weight", weight_sum=weight_sum(w, counts))
    assert m.params["regParam"] == pytest.approx(1 / (0.05 * len(pdf)))
    sk = SkLR(C=0.05, class_weight="balanced", tol=1e-12, max_iter=10000).fit(pdf[F], pdf.label)
    lr = m.pipeline.stages[-1]
    assert np.allclose(lr.coefficients.toArray(), sk.coef_[0], atol=1e-5)
    assert lr.intercept == pytest.approx(sk.intercept_[0], abs=1e-5)
    got = np.array([r["score"] for r in sorted(m.predict(df).select("id", "score").collect())])
    assert np.allclose(got, sk.predict_proba(pdf[F])[:, 1], atol=1e-6)


def test_multinomial_lr_equals_sklearn(spark):
    pdf = _data(n=300, k=3, seed=1)
    m = training.fit(spark.createDataFrame(pdf), "label", [0, 1, 2], "lr", {"C": 0.5, "tol": 1e-12},
                     numeric=F, weight_sum=float(len(pdf)))
    sk = SkLR(C=0.5, tol=1e-12, max_iter=10000).fit(pdf[F], pdf.label)
    rows = sorted(m.predict(spark.createDataFrame(pdf)).select("id", "probability", "prediction_label").collect())
    got = np.array([r["probability"].toArray() for r in rows])
    assert np.allclose(got, sk.predict_proba(pdf[F]), atol=1e-6)
    assert [r["prediction_label"] for r in rows] == sk.predict(pdf[F]).tolist()


@pytest.mark.parametrize("model,params", [
    ("logistic_regression", {"C": 1.0, "tol": 1e-12}),
    ("naive_bayes", {}),
    ("decision_tree", {"maxDepth": 3}),
])
def test_integer_weights_equal_duplicated_rows(spark, model, params):
    # weight 3 on class 1 must train the same model as three copies of every class-1 row
    pdf = _data(n=120, seed=2)
    dup = pd.concat([pdf, pdf[pdf.label == 1], pdf[pdf.label == 1]], ignore_index=True)
    counts = pdf.label.value_counts().to_dict()
    wdf, w = add_class_weights(spark.createDataFrame(pdf), "label", {1: 3}, "weight", counts)
    mw = training.fit(wdf, "label", [0, 1], model, params, numeric=F, weight_col="weight",
                      weight_sum=weight_sum(w, counts))
    md = training.fit(spark.createDataFrame(dup), "label", [0, 1], model, params, numeric=F,
                      weight_sum=float(len(dup)))
    assert mw.pipeline.stages[-1].getWeightCol() == "weight"
    sw = np.array([r["score"] for r in sorted(mw.predict(spark.createDataFrame(pdf)).select("id", "score").collect())])
    sd = np.array([r["score"] for r in sorted(md.predict(spark.createDataFrame(pdf)).select("id", "score").collect())])
    assert np.allclose(sw, sd, atol=1e-5)


def test_other_classifiers_take_weights_and_categorical_features(spark):
    pdf = _data(n=160, seed=3)
    pdf["color"] = np.where(pdf.f0 > 0, "red", "blue")
    df = spark.createDataFrame(pdf)
    num, cat = training.resolve_features(df, "label", None, ["color"], ["id"], "weight")
    assert num == F and cat == ["color"]
    counts = pdf.label.value_counts().to_dict()
    wdf, w = add_class_weights(df, "label", "balanced", "weight", counts)
    params = {"random_forest": {"numTrees": 5, "maxDepth": 2}, "gbt": {"maxDepth": 2, "maxIter": 5},
              "linear_svc": {"maxIter": 20}}
    for model, ps in params.items():
        m = training.fit(wdf, "label", [0, 1], model, ps, numeric=num, categorical=cat, scale=True,
                         weight_col="weight", weight_sum=weight_sum(w, counts))
        assert m.pipeline.stages[-1].getWeightCol() == "weight"
        assert m.pipeline.stages[-1].numFeatures == 4 + 2  # one slot per colour seen in training
        p = m.predict(df).select("prediction_label", "score").collect()
        assert {r[0] for r in p} <= {0, 1}
        if model != "linear_svc":  # LinearSVC has no probabilities: its score is the margin
            assert all(0 <= r[1] <= 1 for r in p)
    # a colour never seen in training encodes as zeros instead of failing
    green = spark.createDataFrame(pdf.head(3).assign(color="green"))
    assert m.predict(green).count() == 3


def test_bad_models_and_params(spark):
    with pytest.raises(ConfigError, match="unknown model 'xgboost'; choose one of logistic_regression"):
        training.canonical_model("xgboost")
    kw = dict(n_classes=2, n_inputs=4, weight_col=None, weight_sum=10.0)
    with pytest.raises(ConfigError, match="'maxDepthh' is not a parameter of MLlib DecisionTreeClassifier; valid: .*maxDepth"):
        training.build_classifier("decision_tree", {"maxDepthh": 3}, **kw)
    with pytest.raises(ConfigError, match="C applies to logistic_regression only"):
        training.build_classifier("random_forest", {"C": 1.0}, **kw)
    with pytest.raises(ConfigError, match="both C and regParam"):
        training.build_classifier("lr", {"C": 1.0, "regParam": 0.1}, **kw)
    with pytest.raises(ConfigError, match="handles two classes only, and the label has 3"):
        training.build_classifier("gbt", {}, **{**kw, "n_classes": 3})
    with pytest.raises(ConfigError, match="has no weightCol"):
        training.build_classifier("mlp", {}, **{**kw, "weight_col": "weight"})
    est, resolved = training.build_classifier("mlp", {"hidden_layers": [5]}, **{**kw, "n_classes": 3})
    assert est.getLayers() == [4, 5, 3]
    est, resolved = training.build_classifier("logistic_regression", {"C": 2.0, "max_iter": 50}, **kw)
    assert est.getRegParam() == pytest.approx(1 / 20) and est.getMaxIter() == 50
    assert est.getStandardization() is False and est.getElasticNetParam() == 0.0


def test_an_id_like_categorical_column_is_refused_before_mllib_collects_it(spark, monkeypatch):
    """Distinct values of a categorical column are bounded (StringIndexer brings them all to the
    driver): above the bound, one InputError naming the column; at it, the model trains."""
    from imbal_spark.errors import InputError

    monkeypatch.setattr(training, "MAX_CATEGORIES", 30)  # read on the driver
    pdf = _data(n=200, seed=4)
    pdf["user"] = [f"u{i}" for i in range(200)]            # an id: 200 values
    pdf["shop"] = [f"s{i % 20}" for i in range(200)]       # 20 values
    df = spark.createDataFrame(pdf)
    with pytest.raises(InputError, match=r"categorical column 'user' has about \d+ distinct values, more than 30 "
                                         r".*Drop it from --categorical"):
        training.fit(df, "label", [0, 1], numeric=F, categorical=["shop", "user"])
    m = training.fit(df, "label", [0, 1], numeric=F, categorical=["shop"])
    assert m.pipeline.stages[-1].numFeatures == 4 + 20  # one slot per shop seen
