"""Metrics against scikit-learn / imbalanced-learn on the same predictions (oracles).

The predictions are small and collected here, in the test only, to feed the oracles."""

import math

import numpy as np
import pandas as pd
import pytest
from imblearn.metrics import geometric_mean_score, sensitivity_specificity_support
from sklearn import metrics as skm

from imbal_spark import metrics
from imbal_spark.errors import InputError

TOL = 1e-9


def _frame(spark, y, p, s=None):
    d = {"label": list(y), "prediction": list(p)}
    if s is not None:
        d["score"] = [float(v) for v in s]
    return spark.createDataFrame(pd.DataFrame(d)).repartition(3)


def _check_confusion_metrics(m, y, p, zero_division=0.0):
    labels = sorted(set(y) | set(p))
    assert m["labels"] == labels
    assert m["confusion_matrix"] == skm.confusion_matrix(y, p, labels=labels).tolist()
    pr, rc, f1, sup = skm.precision_recall_fscore_support(y, p, labels=labels, zero_division=zero_division)
    _, spec, _ = sensitivity_specificity_support(y, p, labels=labels)
    for i, lab in enumerate(labels):
        c = m["per_class"][lab]
        assert c["precision"] == pytest.approx(pr[i], abs=TOL)
        assert c["recall"] == pytest.approx(rc[i], abs=TOL)
        assert c["f1"] == pytest.approx(f1[i], abs=TOL)
        assert c["support"] == sup[i]
        assert c["specificity"] == pytest.approx(spec[i], abs=TOL)
    for avg, key in (("macro", "macro_avg"), ("weighted", "weighted_avg")):
        P, R, F, _ = skm.precision_recall_fscore_support(y, p, average=avg, zero_division=zero_division)
        assert m[key]["precision"] == pytest.approx(P, abs=TOL)
        assert m[key]["recall"] == pytest.approx(R, abs=TOL)
        assert m[key]["f1"] == pytest.approx(F, abs=TOL)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, p), abs=TOL)
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, p), abs=TOL)
    assert m["geometric_mean"] == pytest.approx(geometric_mean_score(y, p), abs=TOL)
    assert m["mcc"] == pytest.approx(skm.matthews_corrcoef(y, p), abs=TOL)


def test_binary_metrics_equal_sklearn_with_tied_scores(spark):
    rng = np.random.default_rng(0)
    y = (rng.random(600) < 0.12).astype(int)
    s = np.round(np.clip(rng.normal(0.3 + 0.35 * y, 0.2), 0, 1), 1)  # 11 distinct scores: many ties
    p = (s >= 0.5).astype(int)
    m = metrics.evaluate(_frame(spark, y, p, s), score_col="score", pos_label=1, n_points=1000)
    _check_confusion_metrics(m, y, p)
    b = m["binary"]
    assert b["roc_auc"] == pytest.approx(skm.roc_auc_score(y, s), abs=TOL)
    assert b["average_precision"] == pytest.approx(skm.average_precision_score(y, s), abs=TOL)
    assert (b["positives"], b["negatives"], b["distinct_scores"]) == (y.sum(), (1 - y).sum(), len(set(s)))
    # with more plot points than rows every point is kept: the curves are scikit-learn's
    fpr, tpr, thr = skm.roc_curve(y, s, drop_intermediate=False)
    assert np.allclose(b["roc_curve"]["fpr"], fpr) and np.allclose(b["roc_curve"]["tpr"], tpr)
    prec, rec, _ = skm.precision_recall_curve(y, s)
    assert np.allclose(b["pr_curve"]["precision"], prec[:-1][::-1])
    assert np.allclose(b["pr_curve"]["recall"], rec[:-1][::-1])


def test_exact_auc_with_many_buckets_and_downsampled_curve(spark, monkeypatch):
    # force the multi-bucket path (offsets carried between buckets and partitions)
    monkeypatch.setattr(metrics, "BUCKET_ROWS", 37)
    rng = np.random.default_rng(1)
    y = (rng.random(900) < 0.1).astype(int)
    s = np.round(rng.normal(0.2 + 0.5 * y, 0.3), 3)  # ~ 600 distinct scores, some ties
    p = (s >= 0.5).astype(int)
    m = metrics.evaluate(_frame(spark, y, p, s), score_col="score", pos_label=1, n_points=25,
                         recall_target=0.8)
    b = m["binary"]
    assert b["distinct_scores"] > 37 * 5
    assert b["roc_auc"] == pytest.approx(skm.roc_auc_score(y, s), abs=TOL)
    assert b["average_precision"] == pytest.approx(skm.average_precision_score(y, s), abs=TOL)
    # downsampled: few points, each one a point of the exact curve, thresholds descending
    fpr, tpr, thr = skm.roc_curve(y, s, drop_intermediate=False)
    exact = {round(t, 9): (f, r) for f, r, t in zip(fpr, tpr, thr)}
    pts = list(zip(b["roc_curve"]["fpr"][1:], b["roc_curve"]["tpr"][1:], b["roc_curve"]["thresholds"][1:]))
    assert 20 <= len(pts) <= 25 + 20
    for f, r, t in pts:
        assert exact[round(t, 9)] == pytest.approx((f, r), abs=1e-12)
    assert b["roc_curve"]["thresholds"][1:] == sorted(b["roc_curve"]["thresholds"][1:], reverse=True)
    # best F1 threshold and the recall-target threshold, by brute force over sklearn's PR curve
    prec, rec, thr = skm.precision_recall_curve(y, s)
    f1 = np.where(prec + rec > 0, 2 * prec * rec / np.where(prec + rec > 0, prec + rec, 1), 0)[:-1]
    best = np.max(f1)
    t_best = max(t for t, f in zip(thr, f1) if abs(f - best) < 1e-12)
    assert b["best_f1"]["f1"] == pytest.approx(best, abs=TOL)
    assert b["best_f1"]["threshold"] == t_best
    t_rec = max(t for t, r in zip(thr, rec[:-1]) if r >= 0.8)
    assert b["recall_threshold"]["threshold"] == t_rec
    assert b["recall_threshold"]["recall"] >= 0.8


def test_multiclass_string_labels_equal_sklearn(spark):
    rng = np.random.default_rng(2)
    classes = np.array(["ant", "bee", "cat", "dog"])
    y = classes[rng.choice(4, size=400, p=[0.6, 0.25, 0.1, 0.05])]
    p = np.where(rng.random(400) < 0.7, y, classes[rng.choice(4, size=400)])
    m = metrics.evaluate(_frame(spark, y, p))
    _check_confusion_metrics(m, list(y), list(p))
    assert "binary" not in m


def test_single_predicted_class_uses_zero_division_convention(spark):
    y = [0] * 90 + [1] * 10
    p = [0] * 100
    m = metrics.evaluate(_frame(spark, y, p, [0.1] * 100), score_col="score", pos_label=1)
    _check_confusion_metrics(m, y, p)
    assert m["per_class"][1]["precision"] == 0.0
    assert m["zero_division"]["value"] == 0.0
    assert any("precision of class 1" in s for s in m["zero_division"]["ill_defined"])
    assert m["binary"]["roc_auc"] == pytest.approx(skm.roc_auc_score(y, [0.1] * 100))  # 0.5: all tied
    # the convention is a parameter, like scikit-learn's zero_division
    m1 = metrics.evaluate(_frame(spark, y, p), zero_division=1.0)
    assert m1["per_class"][1]["precision"] == 1.0
    assert m1["macro_avg"]["precision"] == pytest.approx(
        skm.precision_score(y, p, average="macro", zero_division=1.0), abs=TOL)


def test_test_set_missing_a_class(spark):
    # only class 0 in y_true, the model predicts some 1s: recall of 1 undefined, AUC undefined
    y = [0] * 50
    p = [0] * 45 + [1] * 5
    s = list(np.linspace(0, 1, 50))
    m = metrics.evaluate(_frame(spark, y, p, s), score_col="score", pos_label=1)
    _check_confusion_metrics(m, y, p)
    # scikit-learn: ROC AUC undefined (NaN + warning; None in JSON), AP 0.0 without positives
    assert m["binary"]["roc_auc"] is None and math.isnan(skm.roc_auc_score(y, s))
    assert m["binary"]["average_precision"] == skm.average_precision_score(y, s) == 0.0
    assert len(m["binary"]["ill_defined"]) == 2
    assert any("recall of class 1" in s for s in m["zero_division"]["ill_defined"])


def test_null_scores_and_missing_columns_are_named_errors(spark):
    df = spark.createDataFrame(pd.DataFrame({"label": [0, 1, 1], "prediction": [0, 1, 0],
                                             "score": [0.1, float("nan"), 0.3]}))
    with pytest.raises(InputError, match="score column 'score' has 1 null or NaN"):
        metrics.evaluate(df, score_col="score", pos_label=1)
    with pytest.raises(InputError, match="'pred' is not in the input"):
        metrics.evaluate(df, prediction_col="pred")


def test_threshold_predictions(spark):
    df = _frame(spark, [0, 1, 1, 0], [0, 0, 0, 0], [0.2, 0.6, 0.4, 0.4])
    out = metrics.threshold_predictions(df, "score", 0.4, 1, 0)
    got = sorted(tuple(r) for r in out.select("score", "prediction_at_threshold").collect())
    assert got == [(0.2, 0), (0.4, 1), (0.4, 1), (0.6, 1)]
