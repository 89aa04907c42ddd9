"""Imbalance metrics computed by Spark aggregations on a prediction DataFrame.

Nothing but aggregates reaches the driver: the confusion matrix is one
``groupBy(label, prediction).count()`` (k x k rows); ROC AUC, average precision, the curves and
the best decision threshold come from one ``groupBy(score)`` (one row per distinct score) whose
cumulative sums are taken per score bucket, in Spark SQL (see ``binary_curve``). Every figure is the one
scikit-learn / imbalanced-learn give on the same predictions:

=====================  ================================================================
per-class P/R/F1       ``precision_recall_fscore_support`` (F1 = 2 tp / (true + predicted))
specificity            imbalanced-learn ``sensitivity_specificity_support``
accuracy               ``accuracy_score``
macro / weighted avg   unweighted mean / support-weighted mean over the labels
balanced accuracy      ``balanced_accuracy_score`` (classes absent from y_true are dropped)
geometric mean         imbalanced-learn ``geometric_mean_score`` (average='multiclass')
MCC                    ``matthews_corrcoef`` (0 when undefined)
ROC AUC                ``roc_auc_score`` (ties: one trapezoid step per distinct score)
average precision      ``average_precision_score`` (step-wise, no interpolation)
=====================  ================================================================

Labels are those present in the true or predicted column (scikit-learn's ``unique_labels``).

**Zero division.** A ratio whose denominator is 0 (precision of a class never predicted,
recall of a class absent from the test set, ...) is set to ``zero_division`` (0.0 by
default, as scikit-learn's ``zero_division=0``) and named in ``ill_defined`` so a report can
say which figures are conventions rather than measurements. ROC AUC is ``None`` when the test
set has only one class (scikit-learn returns NaN with a warning; JSON has no NaN); average
precision is then 0.0 without positives, as scikit-learn's (recall set to one everywhere).
"""

from __future__ import annotations

import math

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from .distribution import label_sort_key
from .errors import InputError, MissingColumnError
from .names import col

#: Points kept of each curve for plotting (the AUC itself uses every distinct score).
CURVE_POINTS = 200
#: Distinct scores per bucket of the cumulative-sum pass.
BUCKET_ROWS = 500_000


# -- confusion-matrix metrics -----------------------------------------------------------------

def confusion_matrix(df: DataFrame, label_col: str = "label", prediction_col: str = "prediction"):
    """``(labels, matrix)``: rows are true labels, columns predicted, as scikit-learn's
    ``confusion_matrix``; one Spark aggregation, k x k rows collected."""
    for c, role in ((label_col, "label column"), (prediction_col, "prediction column")):
        if c not in df.columns:
            raise MissingColumnError(c, df.columns, role)
    rows = df.groupBy(col(label_col), col(prediction_col)).count().collect()  # <= k*k rows
    if any(r[0] is None for r in rows) or any(r[1] is None for r in rows):
        raise InputError(
            f"the {label_col!r} or {prediction_col!r} column has null values; metrics need a "
            f"label and a prediction on every row"
        )
    labels = sorted({r[0] for r in rows} | {r[1] for r in rows}, key=label_sort_key)
    idx = {v: i for i, v in enumerate(labels)}
    m = [[0] * len(labels) for _ in labels]
    for t, p, n in rows:
        m[idx[t]][idx[p]] += n
    return labels, m


def _ratio(num, den, what, ill, zero_division):
    if den == 0:
        ill.append(what)
        return float(zero_division)
    return num / den


def scores_from_confusion(labels, matrix, zero_division: float = 0.0) -> dict:
    """Every confusion-matrix metric, from ``(labels, matrix)`` (no Spark)."""
    C = np.asarray(matrix, dtype=np.int64)
    n = int(C.sum())
    if n == 0:
        raise InputError("there are no predictions to measure (the test set is empty)")
    tp = np.diag(C)
    true_sum = C.sum(axis=1)
    pred_sum = C.sum(axis=0)
    ill = []
    per_class = {}
    for i, lab in enumerate(labels):
        t, ts, ps = int(tp[i]), int(true_sum[i]), int(pred_sum[i])
        fp, fn = ps - t, ts - t
        tn = n - t - fp - fn
        per_class[lab] = {
            "precision": _ratio(t, ps, f"precision of class {lab} (never predicted)", ill, zero_division),
            "recall": _ratio(t, ts, f"recall of class {lab} (absent from the true labels)", ill, zero_division),
            "f1": _ratio(2.0 * t, float(ts + ps), f"F1 of class {lab} (neither true nor predicted)", ill, zero_division),
            "specificity": _ratio(tn, tn + fp, f"specificity of class {lab} (no rows of other classes)", ill, zero_division),
            "support": ts,
            "tp": t, "fp": fp, "fn": fn, "tn": tn,
        }

    def avg(name, weights=None):
        vals = np.array([per_class[lab][name] for lab in labels], dtype=float)
        if weights is None:
            return float(np.mean(vals))
        w = np.asarray(weights, dtype=float)
        return float(np.average(vals, weights=w)) if w.sum() > 0 else float(zero_division)

    names = ("precision", "recall", "f1", "specificity")
    macro = {m: avg(m) for m in names}
    weighted = {m: avg(m, true_sum) for m in names}
    macro["support"] = weighted["support"] = n

    # balanced accuracy: mean recall over classes that occur in y_true (scikit-learn drops the others)
    present = true_sum > 0
    balanced = float(np.mean(tp[present] / true_sum[present]))
    # geometric mean (imbalanced-learn, average='multiclass'): recalls of all labels, 0 when undefined
    recalls = np.array([per_class[lab]["recall"] if true_sum[i] > 0 else 0.0
                        for i, lab in enumerate(labels)], dtype=float)
    gmean = 0.0 if np.any(recalls == 0) else float(np.exp(np.mean(np.log(recalls))))
    # Matthews correlation, scikit-learn's multiclass formula in float64
    t_sum, p_sum = true_sum.astype(np.float64), pred_sum.astype(np.float64)
    n_correct = float(tp.sum())
    cov_ytyp = n_correct * n - float(np.dot(t_sum, p_sum))
    cov_ypyp = float(n) ** 2 - float(np.dot(p_sum, p_sum))
    cov_ytyt = float(n) ** 2 - float(np.dot(t_sum, t_sum))
    prod = cov_ypyp * cov_ytyt
    mcc = 0.0 if prod == 0 else float(cov_ytyp / np.sqrt(prod))
    if prod == 0:
        ill.append("Matthews correlation (only one class true or predicted)")

    return {
        "labels": list(labels),
        "n": n,
        "confusion_matrix": C.tolist(),
        "per_class": per_class,
        "accuracy": float(n_correct / n),
        "macro_avg": macro,
        "weighted_avg": weighted,
        "balanced_accuracy": balanced,
        "geometric_mean": gmean,
        "mcc": mcc,
        "zero_division": {"value": float(zero_division), "ill_defined": ill},
    }


# -- exact ROC AUC / average precision ------------------------------------------------------

def binary_curve(df: DataFrame, label_col: str, score_col: str, pos_label,
                 recall_target: float | None = None, n_points: int = CURVE_POINTS) -> dict:
    """Exact ROC AUC and average precision of ``score_col`` for ``pos_label``, plus curve points
    (downsampled) and the thresholds that maximise F1 / first reach ``recall_target``.

    Rows with the same score are one step (as scikit-learn's ``_binary_clf_curve``): the data
    is grouped by distinct score, and running sums are taken over the distinct scores in
    descending order. To keep that scalable the distinct scores are cut into buckets at
    approximate quantiles (a deterministic function of the score, so a recomputed task gives
    the same buckets); each bucket's positive/negative totals (one small aggregation) give it
    its starting offset, and the running sums are a window *partitioned by bucket*, so no
    task ever holds more than ~BUCKET_ROWS distinct scores. Everything is Spark SQL (no
    Python workers); one final aggregation returns the AUC and AP sums, the best thresholds and
    the plotting points. ROC AUC is summed as exact integers: sum of
    ``(fp_i - fp_{i-1}) * (tp_i + tp_{i-1})`` over ``2 * P * N``.
    A threshold ``t`` means "predict ``pos_label`` when score >= t".
    """
    from pyspark.sql import Window

    for c, role in ((label_col, "label column"), (score_col, "score column")):
        if c not in df.columns:
            raise MissingColumnError(c, df.columns, role)
    y = (col(label_col) == F.lit(pos_label)).cast("long")
    g = (df.select(col(score_col).cast("double").alias("s"), y.alias("y"))
         .groupBy("s").agg(F.sum("y").alias("pos"), F.count(F.lit(1)).alias("cnt"))
         .withColumn("neg", F.col("cnt") - F.col("pos")).drop("cnt"))
    g = g.persist()
    try:
        tot = g.agg(F.sum("pos"), F.sum("neg"), F.count(F.lit(1)),
                    F.sum(F.when(F.col("s").isNull() | F.isnan("s"), F.col("pos") + F.col("neg")))).first()
        P, N, distinct, bad = int(tot[0] or 0), int(tot[1] or 0), int(tot[2]), int(tot[3] or 0)
        if bad:
            raise InputError(f"score column {score_col!r} has {bad} null or NaN value(s); the model's scores must be numbers")
        total = P + N
        if total == 0:
            raise InputError("there are no predictions to measure (the test set is empty)")
        n_buckets = max(1, math.ceil(distinct / BUCKET_ROWS))
        if n_buckets > 1:
            from pyspark.ml.feature import Bucketizer

            qs = g.approxQuantile("s", [i / n_buckets for i in range(1, n_buckets)], 1.0 / (10 * n_buckets))
            splits = [-math.inf] + sorted(set(qs) - {-math.inf, math.inf}) + [math.inf]
            gb = Bucketizer(splits=splits, inputCol="s", outputCol="_b").transform(g)
            gb = gb.withColumn("bucket", F.col("_b").cast("int")).drop("_b")
            bt = {r[0]: (int(r[1]), int(r[2])) for r in
                  gb.groupBy("bucket").agg(F.sum("pos"), F.sum("neg")).collect()}  # one row per bucket
            offsets, tp_acc, fp_acc = [], 0, 0
            for b in sorted(bt, reverse=True):  # buckets of higher scores come first
                offsets.append((b, tp_acc, fp_acc))
                tp_acc, fp_acc = tp_acc + bt[b][0], fp_acc + bt[b][1]
            off = df.sparkSession.createDataFrame(offsets, "bucket int, tp0 long, fp0 long")
            gb = gb.join(F.broadcast(off), "bucket")
        else:
            # one bucket, keyed by an expression of a column: a literal key would be folded away and
            # Spark would log that the window has no partition (which is what one bucket means)
            gb = g.withColumn("bucket", (F.col("pos") * 0).cast("int")).withColumn("tp0", F.lit(0).cast("long")) \
                  .withColumn("fp0", F.lit(0).cast("long"))
        w = Window.partitionBy("bucket").orderBy(F.col("s").desc())
        run = w.rowsBetween(Window.unboundedPreceding, Window.currentRow)
        c = (gb.withColumn("tp", F.col("tp0") + F.sum("pos").over(run))
               .withColumn("fp", F.col("fp0") + F.sum("neg").over(run)))
        c = (c.withColumn("ptp", F.col("tp") - F.col("pos")).withColumn("pfp", F.col("fp") - F.col("neg"))
              .withColumn("rows", F.col("tp") + F.col("fp")))
        grid = F.floor(F.col("rows") * n_points / total)
        prev_grid = F.floor((F.col("ptp") + F.col("pfp")) * n_points / total)
        point = F.struct("s", "tp", "fp")
        aggs = [
            F.sum(F.col("neg") * (F.col("tp") + F.col("ptp"))).alias("auc2"),  # exact integers
            F.sum(F.col("pos") * F.col("tp") / F.col("rows")).alias("ap"),
            F.collect_list(F.when(grid != prev_grid, point)).alias("points"),
        ]
        if P:
            f1 = 2.0 * F.col("tp") / (F.col("rows") + F.lit(P))
            aggs.append(F.max(F.struct(f1.alias("f1"), "s", "tp", "fp")).alias("best"))  # ties: highest s
            if recall_target is not None:
                aggs.append(F.max(F.when(F.col("tp") / F.lit(P) >= F.lit(recall_target), point)).alias("rec"))
        r = c.agg(*aggs).first()  # one row: sums, best thresholds, <= n_points + buckets points
    finally:
        g.unpersist()

    out = {
        "pos_label": pos_label, "positives": P, "negatives": N, "distinct_scores": distinct,
        "roc_auc": int(r["auc2"]) / (2.0 * P * N) if P and N else None,
        "average_precision": float(r["ap"]) / P if P else 0.0,
        "ill_defined": ([] if P and N else
                        ["ROC AUC (only one class in the true labels)"]
                        + ([] if P else ["average precision (no positive rows; set to 0.0)"])),
    }
    pts = sorted(((p["s"], p["tp"], p["fp"]) for p in r["points"]), key=lambda t: -t[0])
    out["roc_curve"] = {
        "fpr": [0.0] + [fp / N if N else 0.0 for _, _, fp in pts],
        "tpr": [0.0] + [tp / P if P else 0.0 for _, tp, _ in pts],
        "thresholds": [math.inf] + [s for s, _, _ in pts],
    }
    out["pr_curve"] = {
        "recall": [tp / P if P else 0.0 for _, tp, _ in pts],
        "precision": [tp / (tp + fp) for _, tp, fp in pts],
        "thresholds": [s for s, _, _ in pts],
    }
    if P:
        b = r["best"]
        out["best_f1"] = _at(b["s"], b["tp"], b["fp"], P)
        if recall_target is not None:
            rec = r["rec"]
            out["recall_threshold"] = ({"target": recall_target, **_at(rec["s"], rec["tp"], rec["fp"], P)}
                                       if rec is not None else None)
    elif recall_target is not None:
        out["recall_threshold"] = None
    return out


def _at(s, tp, fp, P):
    return {"threshold": float(s), "precision": tp / (tp + fp) if tp + fp else 0.0,
            "recall": tp / P if P else 0.0, "f1": 2.0 * tp / (tp + fp + P) if P else 0.0}


# -- the whole evaluation ---------------------------------------------------------------------

def evaluate(df: DataFrame, label_col: str = "label", prediction_col: str = "prediction",
             score_col: str | None = None, pos_label=None, zero_division: float = 0.0,
             recall_target: float | None = None, n_points: int = CURVE_POINTS) -> dict:
    """Every metric of the module docstring. ``score_col`` (binary problems): the score of
    ``pos_label`` (e.g. its probability); without it, no ROC/PR figures."""
    labels, matrix = confusion_matrix(df, label_col, prediction_col)
    out = scores_from_confusion(labels, matrix, zero_division)
    if score_col is not None:
        if pos_label is None:
            raise InputError("pos_label is needed with a score column (which class the score is for)")
        out["binary"] = binary_curve(df, label_col, score_col, pos_label, recall_target, n_points)
    return out


def threshold_predictions(df: DataFrame, score_col: str, threshold: float, pos_label, neg_label,
                          out_col: str = "prediction_at_threshold"):
    """``pos_label`` where score >= threshold, else ``neg_label`` (a column, not a collect)."""
    return df.withColumn(out_col, F.when(col(score_col) >= F.lit(float(threshold)), F.lit(pos_label))
                         .otherwise(F.lit(neg_label)))
